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
	want := []string{"stage", "records", "seconds", "records_per_s", "peak_rss_bytes", "floor_seconds", "x_floor"}
	var stages []string
	var floor float64
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
		// Every stage that works the ledger is slower than the bare
		// statements of the floor; the floor is the same on every line.
		fl, _ := m["floor_seconds"].(json.Number).Float64()
		x, _ := m["x_floor"].(json.Number).Float64()
		secs, _ := m["seconds"].(json.Number).Float64()
		if fl <= 0 || (floor != 0 && fl != floor) {
			t.Errorf("line %q: floor_seconds %v (first line %v)", line, fl, floor)
		}
		floor = fl
		if want := secs / fl; x <= 0 || x < 0.95*want-0.01 || x > 1.05*want+0.01 {
			t.Errorf("line %q: x_floor %v × floor %v is not the stage's %v s", line, x, fl, secs)
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

// The text form says what the floor is made of and gives each stage's
// multiple of it.
func TestBenchTextFloor(t *testing.T) {
	code, out, errs := runCLI(t, "--log-level", "error", "bench", "--records", "300")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errs)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if !strings.HasPrefix(lines[0], "engine floor for 300 records: ") || !strings.Contains(lines[0], "one UPDATE joined to it") {
		t.Errorf("first line %q", lines[0])
	}
	if !strings.HasSuffix(lines[1], "x floor") {
		t.Errorf("header %q", lines[1])
	}
	if len(lines) != 2+len(bench.Names)+1 {
		t.Errorf("%d lines:\n%s", len(lines), out)
	}
}
