package jobs

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestUnsafeInboxNamesLoggedOncePerRun: a file whose name carries a
// control character or a bidirectional mark is never picked up, and each
// run says so once per name, escaped.
func TestUnsafeInboxNamesLoggedOncePerRun(t *testing.T) {
	w := newKeyWorld(t, func(w *keyWorld) []string { return []string{w.current.Fingerprint()} })
	var logs bytes.Buffer
	w.log = slog.New(slog.NewJSONHandler(&logs, nil))
	rt, err := w.open(t, w.now)
	if err != nil {
		t.Fatal(err)
	}
	inbox := filepath.Join(w.dir, "drop", "inbox")
	if err := os.MkdirAll(inbox, 0o700); err != nil {
		t.Fatal(err)
	}
	names := []string{"MNOB_MNOA_imsi-result_20261207_000001.\u202etxt.pgp", "MNOB_MNOA_imsi-result\x1b[2J.txt.pgp"}
	for _, n := range names {
		if err := os.WriteFile(filepath.Join(inbox, n), []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	for run := 1; run <= 2; run++ {
		logs.Reset()
		sum, err := rt.RunJob(context.Background(), "imsi-result", RunOptions{Manual: true})
		if err != nil {
			t.Fatal(err)
		}
		if sum.Files != 0 {
			t.Errorf("run %d picked up %d files", run, sum.Files)
		}
		out := logs.String()
		if strings.ContainsAny(out, "\u202e\x1b") {
			t.Errorf("run %d: a raw control character reached the log:\n%s", run, out)
		}
		lines := strings.Split(out, "\n")
		for _, want := range []string{`\\u202e`, `\\x1b`} {
			c := 0
			for _, l := range lines {
				if strings.Contains(l, want) {
					c++
				}
			}
			if c != 1 {
				t.Errorf("run %d: %d log lines with %s, want 1:\n%s", run, c, want, out)
			}
		}
		if c := strings.Count(out, "unsafe name"); c != 2 {
			t.Errorf("run %d: %d unsafe-name lines, want 2:\n%s", run, c, out)
		}
	}
}
