package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"resub/jobs/config"
	"resub/processor/ledger/ledgertest"
	"resub/samples/demo"
)

// TestOperatorCommandsOnTheDemo runs the demo, then the operator's
// commands against the parties it leaves behind.
func TestOperatorCommandsOnTheDemo(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the whole demo")
	}
	dir := t.TempDir()
	var out bytes.Buffer
	res, err := demo.Run(context.Background(), demo.Options{Dir: dir, Out: &out})
	if err != nil || !res.OK {
		t.Fatalf("demo: %v %v\n%s", err, res, out.String())
	}
	a := filepath.Join(dir, "mnoa", "resub.yaml")
	b := filepath.Join(dir, "mnob", "resub.yaml")
	operatorCommands(t, a, b)
}

// TestOperatorCommandsOnPostgres moves the demo's ledgers into
// PostgreSQL with `resub ledger copy` and runs the same commands there.
func TestOperatorCommandsOnPostgres(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the whole demo")
	}
	ledgertest.ServerURL(t)
	dir := t.TempDir()
	var out bytes.Buffer
	res, err := demo.Run(context.Background(), demo.Options{Dir: dir, Out: &out})
	if err != nil || !res.OK {
		t.Fatalf("demo: %v %v\n%s", err, res, out.String())
	}
	a := filepath.Join(dir, "mnoa", "resub.yaml")
	b := filepath.Join(dir, "mnob", "resub.yaml")
	for _, path := range []string{a, b} {
		cfg, err := config.Load(path)
		if err != nil {
			t.Fatal(err)
		}
		url := ledgertest.NewDatabase(t)
		if code, o, e := runCLI(t, "ledger", "copy", "--from", cfg.Ledger, "--to", url); code != exitOK {
			t.Fatalf("ledger copy: exit %d\n%s\n%s", code, o, e)
		}
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		re := regexp.MustCompile(`(?m)^ledger:.*$`)
		if re.Match(data) {
			data = re.ReplaceAll(data, []byte("ledger: "+url))
		} else {
			data = append([]byte("ledger: "+url+"\n"), data...)
		}
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	operatorCommands(t, a, b)
}

func operatorCommands(t *testing.T, a, b string) {
	t.Helper()
	if code, o, e := runCLI(t, "config", "check", "--config", a); code != exitOK || !strings.Contains(o, "configuration valid") {
		t.Fatalf("config check: %d %s %s", code, o, e)
	}
	code, o, _ := runCLI(t, "cards", "--config", a)
	if code != exitOK || !regexp.MustCompile(`released\s+10`).MatchString(o) || !regexp.MustCompile(`unknown\s+1`).MatchString(o) {
		t.Fatalf("cards: %d\n%s", code, o)
	}
	code, o, _ = runCLI(t, "cards", "--config", a, "8999901000000000047")
	if code != exitOK || !strings.Contains(o, "history:") || !strings.Contains(o, "confirmed") || !strings.Contains(o, "released") {
		t.Fatalf("cards ICCID: %d\n%s", code, o)
	}
	if code, _, _ := runCLI(t, "cards", "--config", a, "8999901000000009999"); code != exitUsage {
		t.Errorf("unknown card: exit %d", code)
	}
	code, o, _ = runCLI(t, "batches", "--config", a, "--status", "quarantined")
	if code != exitOK || !strings.Contains(o, "quarantined") {
		t.Fatalf("batches: %d\n%s", code, o)
	}
	if code, o, _ := runCLI(t, "jobs", "--config", a); code != exitOK || !strings.Contains(o, "imsi-list") || !strings.Contains(o, "ok") {
		t.Fatalf("jobs: %d\n%s", code, o)
	}
	if code, o, _ := runCLI(t, "overdue", "--config", b); code != exitOK || o == "" {
		t.Fatalf("overdue: %d\n%s", code, o)
	}
	if code, o, e := runCLI(t, "run", "--config", a, "--once", "--job", "msisdn", "--dry-run"); code != exitOK || !strings.Contains(o, "job msisdn") {
		t.Fatalf("dry run: %d %s %s", code, o, e)
	}
	// The demo's SFTP server is gone: a transient failure, safe to retry.
	if code, _, e := runCLI(t, "run", "--config", a, "--once", "--job", "imsi-list"); code != exitTransient || !strings.Contains(e, "connection refused") {
		t.Fatalf("unreachable partner: exit %d %s", code, e)
	}

	// The tampered list stays refused when reprocessed; its answer cannot
	// reach MNOB (the demo's server is gone): transient, exit 3.
	m := regexp.MustCompile(`(?m)^(\d+)\s+in\s+mno-b\s+quarantined`).FindStringSubmatch(o2(t, "batches", "--config", a))
	if m == nil {
		t.Fatal("no quarantined file from mno-b at MNOA")
	}
	if code, _, e := runCLI(t, "reprocess", "--config", a, "file:"+m[1]); code != exitTransient || !strings.Contains(e, "integrity check") {
		t.Errorf("reprocess of the tampered file: exit %d, %s", code, e)
	}
	if !regexp.MustCompile(`(?m)^` + m[1] + `\s+in\s+mno-b\s+quarantined`).MatchString(o2(t, "batches", "--config", a)) {
		t.Error("the tampered file left quarantine")
	}
	if code, _, _ := runCLI(t, "reprocess", "--config", a, "file:999999"); code == exitOK {
		t.Error("reprocess of a file that does not exist succeeded")
	}

	// Key rotation: a new master key, the old one as previous.
	cfg, err := os.ReadFile(a)
	if err != nil {
		t.Fatal(err)
	}
	oldRef := regexp.MustCompile(`key: env:(RESUB_DEMO_MNOA_MASTER)`).FindStringSubmatch(string(cfg))
	if oldRef == nil {
		t.Fatalf("no master key reference in\n%s", cfg)
	}
	t.Setenv("RESUB_TEST_NEW_MASTER", strings.Repeat("5a", 32))
	rotated := strings.Replace(string(cfg), "key: env:RESUB_DEMO_MNOA_MASTER", "key: env:RESUB_TEST_NEW_MASTER\n    previous:\n      - id: mnoa-mk-1\n        key: env:RESUB_DEMO_MNOA_MASTER", 1)
	rotated = strings.Replace(rotated, "id: mnoa-mk-1\n    key: env:RESUB_TEST_NEW_MASTER", "id: mnoa-mk-2\n    key: env:RESUB_TEST_NEW_MASTER", 1)
	if err := os.WriteFile(a, []byte(rotated), 0o600); err != nil {
		t.Fatal(err)
	}
	code, o, e := runCLI(t, "keys", "rotate", "--config", a)
	var n int
	fmt.Sscanf(o, "re-wrapped %d", &n)
	if code != exitOK || n == 0 {
		t.Fatalf("keys rotate: %d %s %s\n%s", code, o, e, rotated)
	}
	code, o, _ = runCLI(t, "keys", "rotate", "--config", a)
	if code != exitOK || !strings.HasPrefix(o, "re-wrapped 0 ") {
		t.Fatalf("second rotation: %d %s", code, o)
	}
}

func o2(t *testing.T, args ...string) string {
	t.Helper()
	_, o, _ := runCLI(t, args...)
	return o
}
