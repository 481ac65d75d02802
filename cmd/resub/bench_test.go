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

// With --statements --json each stage object keeps its keys and gains its
// statements, every kind of them: the import's include its INSERT INTO
// cards, take no more than the stage, and end with the time outside them.
func TestBenchStatementsJSON(t *testing.T) {
	code, out, errs := runCLI(t, "--log-level", "error", "bench", "--records", "300", "--statements", "--json")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errs)
	}
	type statement struct {
		Statement string   `json:"statement"`
		Calls     *int     `json:"calls"`
		Seconds   *float64 `json:"seconds"`
		Share     *float64 `json:"share"`
		XFloor    *float64 `json:"x_floor"`
		Rows      *int64   `json:"rows"`
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != len(bench.Names)+1 {
		t.Fatalf("%d lines:\n%s", len(lines), out)
	}
	var sawImport bool
	for _, line := range lines {
		var m map[string]json.RawMessage
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("line %q: %v", line, err)
		}
		for _, k := range []string{"stage", "records", "seconds", "records_per_s", "peak_rss_bytes", "floor_seconds", "x_floor", "statements"} {
			if _, ok := m[k]; !ok {
				t.Errorf("line %.80q: no key %s", line, k)
			}
		}
		var stage string
		var secs, floor float64
		var stmts []statement
		json.Unmarshal(m["stage"], &stage)
		json.Unmarshal(m["seconds"], &secs)
		json.Unmarshal(m["floor_seconds"], &floor)
		if err := json.Unmarshal(m["statements"], &stmts); err != nil || len(stmts) == 0 {
			t.Fatalf("stage %s: statements %s (%v)", stage, m["statements"], err)
		}
		if stage == "import" && len(stmts) <= topStatements+2 {
			t.Errorf("stage %s: %d statement lines, not every kind", stage, len(stmts))
		}
		last := stmts[len(stmts)-1]
		if last.Statement != outsideStatements || last.Calls == nil || *last.Calls != 0 {
			t.Errorf("stage %s: last statement line %+v", stage, last)
		}
		var sum float64
		var cards bool
		for _, st := range stmts {
			if st.Calls == nil || st.Seconds == nil || st.Share == nil || st.XFloor == nil || st.Rows == nil {
				t.Fatalf("stage %s: statement line with a key missing: %s", stage, m["statements"])
			}
			if strings.HasPrefix(st.Statement, otherStatements) {
				t.Errorf("stage %s: %q in the JSON form", stage, st.Statement)
			}
			// x_floor is rounded to 0.01.
			if d := *st.XFloor*floor - *st.Seconds; d > 0.006*floor || d < -0.006*floor {
				t.Errorf("stage %s: %.60q x_floor %v × floor %v is not its %v s", stage, st.Statement, *st.XFloor, floor, *st.Seconds)
			}
			if st.Statement != outsideStatements {
				sum += *st.Seconds
			}
			if strings.HasPrefix(st.Statement, "INSERT INTO cards (") {
				cards = true
			}
			for _, v := range []string{"8999901", "00101000"} {
				if strings.Contains(st.Statement, v) {
					t.Errorf("stage %s: statement %q carries an identifier", stage, st.Statement)
				}
			}
		}
		if stage != "import" {
			continue
		}
		sawImport = true
		// The stage's seconds are rounded to the millisecond, each
		// statement's to the microsecond.
		tol := 0.0005 + 0.0000005*float64(len(stmts))
		if sum > secs+tol {
			t.Errorf("the import's statements take %.6f s, the stage %.3f s", sum, secs)
		}
		if !cards {
			t.Errorf("no INSERT INTO cards among the import's statements: %s", m["statements"])
		}
		// Outside is the stage less the time some statement ran: at
		// least the stage less the statements' sum (they may overlap),
		// never more than the stage.
		if o := *last.Seconds; o < secs-sum-tol || o > secs+tol {
			t.Errorf("outside statements %.3f s, the stage %.3f s less its statements %.3f s", o, secs, sum)
		}
	}
	if !sawImport {
		t.Error("no import stage")
	}
}

// The text form gives each stage's statements under its line; without
// --statements it stays as it was (TestBenchTextFloor).
func TestBenchStatementsText(t *testing.T) {
	code, out, errs := runCLI(t, "--log-level", "error", "bench", "--records", "300", "--statements")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errs)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if !strings.HasSuffix(lines[1], "x floor") || !strings.Contains(lines[2], "statement") {
		t.Errorf("headers %q, %q", lines[1], lines[2])
	}
	stage := ""
	outside := map[string]bool{}
	for _, l := range lines[3:] {
		if !strings.HasPrefix(l, " ") {
			stage = strings.Fields(l)[0]
			continue
		}
		if strings.HasSuffix(l, outsideStatements) {
			outside[stage] = true
		}
	}
	for _, name := range append(slices.Clone(bench.Names), "total") {
		if !outside[name] {
			t.Errorf("stage %s: no statement lines ending with %q:\n%s", name, outsideStatements, out)
		}
	}
	if !strings.Contains(out, "  INSERT INTO ") || !strings.Contains(out, "  "+otherStatements+" (") {
		t.Errorf("no INSERT INTO or %s line:\n%s", otherStatements, out)
	}
}
