package main

import (
	"bytes"
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"resub/samples/bench"
)

func TestBenchJSON(t *testing.T) {
	code, out, errs := runCLI(t, "--log-level", "error", "bench", "--records", "2000", "--json", "--keep", t.TempDir())
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errs)
	}
	want := []string{"stage", "records", "seconds", "records_per_s", "peak_rss_bytes"}
	var stages []string
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var m map[string]any
		dec := json.NewDecoder(bytes.NewReader([]byte(line)))
		dec.UseNumber()
		if err := dec.Decode(&m); err != nil {
			t.Fatalf("line %q: %v", line, err)
		}
		var keys []string
		for k := range m {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		if w := slices.Sorted(slices.Values(want)); !slices.Equal(keys, w) {
			t.Errorf("line %q: keys %v, want %v", line, keys, w)
		}
		if m["records"] != json.Number("2000") {
			t.Errorf("line %q: records %v", line, m["records"])
		}
		for _, k := range want[2:] {
			if _, err := m[k].(json.Number).Float64(); err != nil {
				t.Errorf("line %q: %s is not a number", line, k)
			}
		}
		stages = append(stages, m["stage"].(string))
	}
	if w := append(slices.Clone(bench.Names), "total"); !slices.Equal(stages, w) {
		t.Errorf("stages %v, want %v", stages, w)
	}
}

func TestBenchUsage(t *testing.T) {
	for _, args := range [][]string{{"bench"}, {"bench", "--records", "-1"}, {"bench", "--records", "10", "extra"}} {
		if code, _, _ := runCLI(t, args...); code != exitUsage {
			t.Errorf("%v: exit %d, want %d", args, code, exitUsage)
		}
	}
}
