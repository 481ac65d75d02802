package faulttest

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"resub/jobs/config"
	"resub/processor/failpoint"
	"resub/processor/ledger/ledgertest"
	"resub/samples/demo"
)

// pgLeaseTTL is the lease of the PostgreSQL fault tests: short, so that a
// takeover comes within seconds. pgIdle ends a stopped process's open
// transaction (its session) on the server sooner than the lease expires.
const (
	pgLeaseTTL = 5 * time.Second
	pgIdle     = "3000"
)

// onPostgres moves a staged party's SQLite ledger into a new PostgreSQL
// ledger with `resub ledger copy` (the cut-over of the README) and points
// the party's configuration at it, with a short lease. The configuration
// file comes back from the snapshot at the next imsiListStage.
func onPostgres(t *testing.T, resub string, st *demo.Stage, party string) string {
	t.Helper()
	return moveLedger(t, resub, st, party, ledgertest.NewDatabase(t)+"&idle_in_transaction_session_timeout="+pgIdle)
}

// moveLedger copies a staged party's ledger to url and points the
// party's configuration at it.
func moveLedger(t *testing.T, resub string, st *demo.Stage, party, url string) string {
	t.Helper()
	path := st.Config(party)
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(resub, "ledger", "copy", "--from", cfg.Ledger, "--to", url).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "verified") {
		t.Fatalf("resub ledger copy: %v\n%s", err, out)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := yaml.Unmarshal(data, &m); err != nil {
		t.Fatal(err)
	}
	m["ledger"] = url
	m["lease_ttl"] = pgLeaseTTL.String()
	if data, err = yaml.Marshal(m); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return url
}

// runStep runs one pass of a party's job; it returns the exit code (-1:
// killed) and the output.
func runStep(t *testing.T, resub string, st *demo.Stage, party, job string, env ...string) (int, string) {
	t.Helper()
	cmd := exec.Command(resub, "run", "--once", "--job", job, "--config", st.Config(party))
	cmd.Env = append(append(os.Environ(), st.Env()...), env...)
	var buf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &buf, &buf
	err := cmd.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return -1, buf.String()
		}
		return ee.ExitCode(), buf.String()
	} else if err != nil {
		t.Fatal(err)
	}
	return 0, buf.String()
}

// baseline is MNOA's imsi-list step run uninterrupted on the staged
// SQLite ledger: what every PostgreSQL run must leave too.
func baseline(t *testing.T, resub string) (*demo.Stage, crashCase, outcome) {
	t.Helper()
	c := crashCases()[0]
	st := imsiListStage(t)
	if code, out := runStep(t, resub, st, "MNOA", "imsi-list"); code != 0 {
		t.Fatalf("uninterrupted run: exit %d\n%s", code, out)
	}
	want := observe(t, st, c)
	// Back to the staged state for the test itself.
	return imsiListStage(t), c, want
}

// The demo's parties move their SQLite ledgers into PostgreSQL in the
// middle of the cut-over (MNOB's imsi-list waiting at MNOA) and go on:
// MNOA's step leaves exactly what it leaves on SQLite, and MNOB takes
// MNOA's answer on its own PostgreSQL ledger.
func TestPostgresCutOverGoesOn(t *testing.T) {
	resub := resubBinary(t)
	ledgertest.ServerURL(t)
	st, c, want := baseline(t, resub)
	if code, out := runStep(t, resub, st, "MNOB", "imsi-result"); code != 0 {
		t.Fatalf("MNOB before the move: exit %d\n%s", code, out)
	}
	st = imsiListStage(t)
	for _, party := range []string{"MNOA", "MNOB", "MFR"} {
		onPostgres(t, resub, st, party)
	}
	if code, out := runStep(t, resub, st, "MNOA", "imsi-list"); code != 0 {
		t.Fatalf("MNOA on PostgreSQL: exit %d\n%s", code, out)
	}
	sameOutcome(t, observe(t, st, c), want)
	if code, out := runStep(t, resub, st, "MNOB", "imsi-result"); code != 0 {
		t.Fatalf("MNOB on PostgreSQL: exit %d\n%s", code, out)
	}
	got := queryLedger(t, st, "MNOB", []string{`SELECT state, COUNT(*) FROM imsi_allocations GROUP BY state ORDER BY 1`})
	if len(got) == 0 || len(got[`SELECT state, COUNT(*) FROM imsi_allocations GROUP BY state ORDER BY 1`]) == 0 {
		t.Errorf("MNOB's allocations after its imsi-result step on PostgreSQL: %v", got)
	}
}

// Two instances on one PostgreSQL ledger: the first is killed (kill -9)
// in the middle of MNOA's imsi-list step; the other is kept out while the
// dead one's lease lasts (no pid check across hosts), takes the job over
// once it expired, and the outputs are those of an uninterrupted run.
func TestPostgresTakeoverAfterKill(t *testing.T) {
	resub := resubBinary(t)
	ledgertest.ServerURL(t)
	for _, fp := range []string{failpoint.WorkBeforeCommit, failpoint.AfterCommit, failpoint.AfterRender} {
		t.Run(fp, func(t *testing.T) {
			st, c, want := baseline(t, resub)
			onPostgres(t, resub, st, "MNOA")
			if code, out := runStep(t, resub, st, "MNOA", "imsi-list", failpoint.Env+"="+fp); code != -1 {
				t.Fatalf("failpoint %s: exit %d, want killed\n%s", fp, code, out)
			}
			killed := time.Now()
			code, out := runStep(t, resub, st, "MNOA", "imsi-list")
			if time.Since(killed) < pgLeaseTTL && (code != 3 || !strings.Contains(out, "running elsewhere")) {
				t.Fatalf("second instance while the lease lasts: exit %d, want 3 (lease held)\n%s", code, out)
			}
			time.Sleep(time.Until(killed.Add(pgLeaseTTL + time.Second)))
			if code, out := runStep(t, resub, st, "MNOA", "imsi-list"); code != 0 {
				t.Fatalf("takeover after the lease expired: exit %d\n%s", code, out)
			}
			sameOutcome(t, observe(t, st, c), want)
		})
	}
}

// An instance stopped (SIGSTOP) in the middle of the step past its
// lease: the other instance finishes the step; the first, resumed
// (SIGCONT), commits nothing and delivers nothing.
func TestPostgresStoppedHolderIsFenced(t *testing.T) {
	resub := resubBinary(t)
	ledgertest.ServerURL(t)
	for _, fp := range []string{failpoint.WorkBeforeCommit, failpoint.AfterCommit, failpoint.AfterRender} {
		t.Run(fp, func(t *testing.T) {
			st, c, want := baseline(t, resub)
			onPostgres(t, resub, st, "MNOA")
			cmd := exec.Command(resub, "run", "--once", "--job", "imsi-list", "--config", st.Config("MNOA"))
			cmd.Env = append(append(os.Environ(), st.Env()...), failpoint.Env+"="+fp+":stop")
			var mu sync.Mutex
			var buf bytes.Buffer
			cmd.Stdout, cmd.Stderr = lockedWriter{&mu, &buf}, lockedWriter{&mu, &buf}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			defer cmd.Process.Kill()
			output := func() string { mu.Lock(); defer mu.Unlock(); return buf.String() }
			deadline := time.Now().Add(60 * time.Second)
			for !strings.Contains(output(), "stopping process") {
				if time.Now().After(deadline) {
					t.Fatalf("failpoint %s never reached:\n%s", fp, output())
				}
				time.Sleep(20 * time.Millisecond)
			}
			stopped := time.Now()
			time.Sleep(time.Until(stopped.Add(pgLeaseTTL + time.Second)))
			if code, out := runStep(t, resub, st, "MNOA", "imsi-list"); code != 0 {
				t.Fatalf("the other instance: exit %d\n%s", code, out)
			}
			sameOutcome(t, observe(t, st, c), want)
			if err := cmd.Process.Signal(syscall.SIGCONT); err != nil {
				t.Fatal(err)
			}
			err := cmd.Wait()
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != 3 {
				t.Fatalf("the resumed instance: %v, want exit 3\n%s", err, output())
			}
			// Nothing more: every output still once, the ledger as the
			// other instance left it.
			sameOutcome(t, observe(t, st, c), want)
			t.Logf("resumed instance:\n%s", lastLines(output(), 4))
		})
	}
}

// sameOutcome compares a PostgreSQL run with the uninterrupted one. The
// OTA batch's message ids are the ledger's message ids: a PostgreSQL
// sequence does not roll back, so the ids a killed transaction drew are
// skipped (never reused), and the rerun's messages number on from there.
// They are compared as distinct and increasing; everything else as is.
func sameOutcome(t *testing.T, got, want outcome) {
	t.Helper()
	compareOutcome(t, renumber(t, got), renumber(t, want), false)
}

func renumber(t *testing.T, o outcome) outcome {
	t.Helper()
	files := map[string][][]string{}
	for label, list := range o.Files {
		for _, f := range list {
			f = append([]string(nil), f...)
			if strings.Contains(f[0], "_ota-batch_") {
				last := int64(0)
				for i := 2; i < len(f); i++ {
					id, rest, _ := strings.Cut(f[i], "|")
					party, num, _ := strings.Cut(id, "-")
					n, err := strconv.ParseInt(num, 10, 64)
					if err != nil || n <= last {
						t.Errorf("%s: message id %s does not follow %d", f[0], id, last)
					}
					last = n
					f[i] = party + "-#|" + rest
				}
			}
			files[label] = append(files[label], f)
		}
	}
	o.Files = files
	return o
}

// The PostgreSQL server restarted in the middle of MNOA's step: the run
// fails as a transient failure (exit 3), and the rerun finishes with the
// outputs of an uninterrupted run.
func TestPostgresServerRestartMidRun(t *testing.T) {
	resub := resubBinary(t)
	for _, fp := range []string{failpoint.WorkBeforeCommit, failpoint.AfterCommit} {
		t.Run(fp, func(t *testing.T) {
			st, c, want := baseline(t, resub)
			srv := ledgertest.StartServer(t)
			moveLedger(t, resub, st, "MNOA", srv.URL())
			cmd := exec.Command(resub, "run", "--once", "--job", "imsi-list", "--config", st.Config("MNOA"))
			cmd.Env = append(append(os.Environ(), st.Env()...), failpoint.Env+"="+fp+":stop")
			var mu sync.Mutex
			var buf bytes.Buffer
			cmd.Stdout, cmd.Stderr = lockedWriter{&mu, &buf}, lockedWriter{&mu, &buf}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			defer cmd.Process.Kill()
			output := func() string { mu.Lock(); defer mu.Unlock(); return buf.String() }
			deadline := time.Now().Add(60 * time.Second)
			for !strings.Contains(output(), "stopping process") {
				if time.Now().After(deadline) {
					t.Fatalf("failpoint %s never reached:\n%s", fp, output())
				}
				time.Sleep(20 * time.Millisecond)
			}
			// The server restarts while the step is in the middle.
			srv.Stop(t)
			srv.Start(t)
			if err := cmd.Process.Signal(syscall.SIGCONT); err != nil {
				t.Fatal(err)
			}
			err := cmd.Wait()
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != 3 {
				t.Fatalf("run across the restart: %v, want exit 3\n%s", err, output())
			}
			// The rerun; the interrupted run's lease may outlive it.
			end := time.Now().Add(pgLeaseTTL + 5*time.Second)
			for {
				code, out := runStep(t, resub, st, "MNOA", "imsi-list")
				if code == 0 {
					break
				}
				if code != 3 || time.Now().After(end) {
					t.Fatalf("rerun: exit %d\n%s", code, out)
				}
				time.Sleep(500 * time.Millisecond)
			}
			sameOutcome(t, observe(t, st, c), want)
		})
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  *bytes.Buffer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
