package faulttest

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"resub/jobs"
	"resub/jobs/config"
	"resub/samples/demo"
)

// TestTwoDaemonsOneLedger runs two `resub run` daemons on one
// configuration and ledger, every job scheduled every second, for a few
// seconds: no job ever runs in both at once (the runs in job_runs never
// overlap), no job runs twice for one tick, and the staged imsi-list is
// handled once.
func TestTwoDaemonsOneLedger(t *testing.T) { twoDaemons(t, false) }

// TestTwoDaemonsOnPostgres is the same with MNOA's ledger moved into
// PostgreSQL (two instances, as on two hosts).
func TestTwoDaemonsOnPostgres(t *testing.T) { twoDaemons(t, true) }

func twoDaemons(t *testing.T, onPG bool) {
	resub := resubBinary(t)
	ctx := context.Background()
	st := imsiListStage(t)
	if onPG {
		onPostgres(t, resub, st, "MNOA")
	}
	rt := openParty(t, st, "MNOA", func(cfg map[string]any) {
		for _, j := range cfg["jobs"].([]any) {
			j.(map[string]any)["schedule"] = "@every 1s"
		}
	})
	cfgPath := filepath.Join(filepath.Dir(st.Config("MNOA")), "resub-edited.yaml")
	rt.Close()

	began := time.Now()
	var cmds []*exec.Cmd
	var outs []*bytes.Buffer
	for range 2 {
		cmd := exec.Command(resub, "run", "--config", cfgPath)
		cmd.Env = append(os.Environ(), st.Env()...)
		var buf bytes.Buffer
		cmd.Stdout, cmd.Stderr = &buf, &buf
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		cmds, outs = append(cmds, cmd), append(outs, &buf)
	}
	// Let them run a few ticks: the job_runs rows are the evidence, the
	// time only gives the daemons a chance to collide.
	time.Sleep(5 * time.Second)
	for _, c := range cmds {
		c.Process.Signal(syscall.SIGTERM)
	}
	for i, c := range cmds {
		if err := c.Wait(); err != nil {
			t.Errorf("daemon %d: %v\n%s", i, err, outs[i])
		}
	}

	cfg, err := config.Load(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	db, err := jobs.OpenLedger(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query(ctx, `SELECT job, owner, started_at, finished_at, status FROM job_runs ORDER BY job, started_at`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	type run struct {
		owner         string
		start, finish time.Time
		status        string
	}
	byJob := map[string][]run{}
	owners := map[string]bool{}
	for rows.Next() {
		var job, owner, s, f, status string
		if err := rows.Scan(&job, &owner, &s, &f, &status); err != nil {
			t.Fatal(err)
		}
		r := run{owner: owner, status: status}
		if r.start, err = time.Parse(time.RFC3339Nano, s); err != nil {
			t.Fatalf("started_at %q: %v", s, err)
		}
		if r.start.Before(began) {
			continue // the staging's own runs
		}
		if r.finish, err = time.Parse(time.RFC3339Nano, f); err != nil {
			t.Fatalf("run of %s by %s never finished (%q)", job, owner, f)
		}
		byJob[job] = append(byJob[job], r)
		owners[owner] = true
	}
	if len(owners) < 2 {
		t.Logf("only %d daemon(s) ever ran a job: %v", len(owners), owners)
	}
	total := 0
	for job, runs := range byJob {
		ticks := map[int64]int{}
		for i, r := range runs {
			total++
			if r.status != "ok" {
				t.Errorf("%s run by %s: %s", job, r.owner, r.status)
			}
			if i > 0 && r.start.Before(runs[i-1].finish) {
				t.Errorf("%s: a run by %s started at %s, before the run by %s ended (%s)", job, r.owner, r.start.Format(time.RFC3339Nano), runs[i-1].owner, runs[i-1].finish.Format(time.RFC3339Nano))
			}
			ticks[r.start.Unix()]++
		}
		for tick, n := range ticks {
			if n > 1 {
				t.Errorf("%s ran %d times in the tick of %s", job, n, time.Unix(tick, 0).UTC().Format(time.RFC3339))
			}
		}
	}
	t.Logf("%d runs of %d jobs by %d daemons", total, len(byJob), len(owners))
	if total == 0 {
		t.Fatal("no run recorded")
	}
	names, _ := demo.Files(st.DropDir("MNOA", "smsc", "outbox"))
	n := 0
	for _, nm := range names {
		if strings.Contains(nm, "_ota-batch_") {
			n++
		}
	}
	if n != 1 {
		t.Errorf("%d OTA batches delivered, want 1", n)
	}
}
