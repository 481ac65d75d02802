package jobs

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"resub/processor/ledger"
	"resub/processor/ledger/sqlite"
)

// The slow-statement log names the statement, its duration and job, and
// never an argument; below the threshold it says nothing.
func TestSlowStatementLog(t *testing.T) {
	const (
		secret = "Ki=00112233445566778899aabbccddeeff"
		iccid  = "8988211000000467285"
	)
	run := func(threshold time.Duration) []map[string]any {
		t.Helper()
		ctx := context.Background()
		var buf bytes.Buffer
		log := slog.New(slog.NewJSONHandler(&buf, nil))
		db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "l.db"), ledger.WithStatementObserver(SlowStatementLog(threshold, log)))
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		buf.Reset() // the migrations' statements
		if err := db.AcquireLease(ctx, "handover", "node-1", time.Minute); err != nil {
			t.Fatal(err)
		}
		fenced := ledger.WithFence(ctx, "handover", "node-1")
		err = db.InTx(fenced, func(tx *ledger.Tx) error {
			cols := []string{"at", "actor", "action", "subject", "detail"}
			in := tx.Inserter("audit", cols, 100)
			for range 150 {
				if err := in.Add(fenced, ledger.Stamp(tx.Now()), "test", "slow", iccid, secret); err != nil {
					return err
				}
			}
			return in.Flush(fenced)
		})
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(buf.String(), secret) || strings.Contains(buf.String(), iccid) {
			t.Fatalf("an argument is in the log:\n%s", buf.String())
		}
		var lines []map[string]any
		for _, l := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
			if l == "" {
				continue
			}
			var m map[string]any
			if err := json.Unmarshal([]byte(l), &m); err != nil {
				t.Fatalf("%q: %v", l, err)
			}
			lines = append(lines, m)
		}
		return lines
	}

	lines := run(time.Nanosecond)
	var insert map[string]any
	for _, m := range lines {
		if m["level"] != "WARN" || m["msg"] != "slow ledger statement" {
			t.Errorf("line %v", m)
		}
		if s, _ := m["statement"].(string); strings.HasPrefix(s, "INSERT INTO audit") {
			insert = m
		}
		if s, _ := m["statement"].(string); len(s) > maxLoggedStatement+len("…") {
			t.Errorf("statement of %d bytes logged", len(s))
		}
	}
	if insert == nil {
		t.Fatalf("the Inserter's statement is not logged:\n%v", lines)
	}
	if insert["job"] != "handover" || insert["rows"] == nil || insert["duration"] == nil {
		t.Errorf("the INSERT's line: %v", insert)
	}
	if s := insert["statement"].(string); !strings.Contains(s, "VALUES (?, ?, ?, ?, ?)") {
		t.Errorf("statement %q", s)
	}
	if lines := run(time.Hour); len(lines) != 0 {
		t.Errorf("%d lines under an hour's threshold: %v", len(lines), lines)
	}
}

func TestCut(t *testing.T) {
	for _, tc := range []struct {
		s    string
		n    int
		want string
	}{{"abc", 3, "abc"}, {"abcd", 3, "abc…"}, {"ab…cd", 3, "ab…"}, {"ab…cd", 4, "ab…"}} {
		if got := cut(tc.s, tc.n); got != tc.want {
			t.Errorf("cut(%q, %d) = %q, want %q", tc.s, tc.n, got, tc.want)
		}
	}
}
