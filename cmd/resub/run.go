package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/term"

	"resub/jobs"
	"resub/jobs/config"
	"resub/jobs/daemon"
	"resub/jobs/metrics"
	"resub/jobs/schedule"
	"resub/processor/ledger"
)

func init() {
	register(&command{name: "run", summary: "run the jobs: the daemon, or one pass now (--once)", run: runRun})
	register(&command{name: "jobs", summary: "list jobs, schedules, next and last runs", run: runJobs})
}

// openRuntime loads the configuration and opens the party's runtime.
func openRuntime(e *env, path string) (*jobs.Runtime, error) {
	if path == "" {
		return nil, usagef("--config FILE is required")
	}
	cfg, err := config.Load(path)
	if err != nil {
		return nil, err
	}
	return jobs.Open(e.ctx, cfg, jobs.Options{Log: e.log})
}

func runRun(e *env, args []string) error {
	fs := e.newFlags("run", "run --config FILE [--once [--job NAME] [--wait DURATION]] [--dry-run] [--metrics-addr ADDR] [--http ADDR]")
	path := fs.String("config", "", "configuration file")
	once := fs.Bool("once", false, "run one pass of every job (or of --job) now and exit")
	job := fs.String("job", "", "with --once: only this job")
	dry := fs.Bool("dry-run", false, "reserve no counter or IMSI and deliver nothing")
	addr := fs.String("metrics-addr", "", "serve Prometheus metrics on this address (e.g. 127.0.0.1:9464)")
	httpAddr := fs.String("http", "", "daemon: serve the status page on this address, and /metrics with it unless --metrics-addr is given")
	wait := fs.Duration("wait", 0, "with --once: an SMPP submission (a-ota-submit) listens for receipts and PoRs until every submitted message is settled or this long")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *job != "" && !*once {
		return usagef("--job goes with --once")
	}
	if *httpAddr != "" && (*once || *dry) {
		return usagef("--http goes with the daemon, not --once or --dry-run (resub serve shows the page alone)")
	}
	if *wait != 0 && !*once {
		return usagef("--wait goes with --once")
	}
	if *wait < 0 {
		return usagef("--wait must not be negative")
	}
	rt, err := openRuntime(e, *path)
	if err != nil {
		return err
	}
	defer rt.Close()
	if *once || *dry {
		names := []string{*job}
		if *job == "" {
			names = names[:0]
			for _, j := range rt.Cfg.Jobs {
				names = append(names, j.Name)
			}
		}
		if f, ok := e.io.err.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
			rt.Progress = func(job string, done, total int) {
				fmt.Fprintf(e.io.err, "\r%s: %d/%d files            ", job, done, total)
				if done == total {
					fmt.Fprintln(e.io.err)
				}
			}
			rt.Party.Progress = func(what string, n int) {
				fmt.Fprintf(e.io.err, "\r  %s: %d   ", what, n)
			}
		}
		var refused []error
		for _, n := range names {
			sum, err := rt.RunJob(e.ctx, n, jobs.RunOptions{Manual: true, DryRun: *dry, Owner: rt.Instance(), Wait: *wait})
			if sum != nil {
				fmt.Fprintln(e.io.out, sum.String())
			}
			var re *jobs.RefusedError
			if errors.As(err, &re) {
				refused = append(refused, err)
				continue
			}
			if err != nil {
				return fmt.Errorf("job %s: %w", n, err)
			}
		}
		if len(refused) > 0 {
			return errors.Join(refused...)
		}
		return nil
	}
	var specs []daemon.Spec
	for _, j := range rt.Cfg.Jobs {
		specs = append(specs, daemon.Spec{Job: runtimeJob{rt: rt, name: j.Name}, Schedule: j.Schedule, Zone: j.Zone, Deadline: j.Deadline.D()})
	}
	reg := prometheus.NewRegistry()
	d, err := daemon.New(daemon.Options{Jobs: specs, Leaser: leaser{rt.Ledger, rt.Cfg.LeaseTTL.D()}, Runs: runs{rt.Ledger}, Owner: rt.Instance(), Log: e.log, MetricsAddr: *addr, Registry: reg})
	if err != nil {
		return err
	}
	rt.Metrics = d.Metrics()
	if *httpAddr != "" {
		// The status page (and /metrics, unless it has its own address)
		// starts first: an address that may not be served stops the
		// daemon before any job runs.
		var extra map[string]http.Handler
		if *addr == "" {
			extra = map[string]http.Handler{"/metrics": metrics.Handler(reg)}
		}
		st, err := startStatus(e, rt.Cfg, rt.Ledger, *httpAddr, extra)
		if err != nil {
			return err
		}
		defer stopStatus(e, st)
	}
	if err := d.Start(e.ctx); err != nil {
		return err
	}
	<-e.ctx.Done()
	stopCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return d.Stop(stopCtx)
}

// runtimeJob is a configured job for the daemon.
type runtimeJob struct {
	rt   *jobs.Runtime
	name string
}

func (j runtimeJob) Name() string { return j.name }
func (j runtimeJob) Run(ctx context.Context) error {
	_, err := j.rt.RunJob(ctx, j.name, jobs.RunOptions{Owner: j.rt.Instance()})
	return err
}

// leaser and runs adapt the ledger to the scheduler.
// The lease lasts the configured lease_ttl (the run renews it), not the
// scheduler's default: a daemon that dies leaves its jobs to the other
// instances soon.
type leaser struct {
	db  *ledger.DB
	ttl time.Duration
}

func (l leaser) Acquire(ctx context.Context, job, owner string, ttl time.Duration) (func() error, error) {
	if l.ttl > 0 {
		ttl = l.ttl
	}
	if err := l.db.AcquireLease(ctx, job, owner, ttl); err != nil {
		return nil, err
	}
	return func() error { return l.db.ReleaseLease(context.Background(), job, owner) }, nil
}

type runs struct{ db *ledger.DB }

func (r runs) LastRun(ctx context.Context, job string) (time.Time, error) {
	last, _, err := r.db.LastRun(ctx, job)
	if err != nil || last == nil {
		return time.Time{}, err
	}
	return last.Started, nil
}

// RecordRun: RunJob records each run in the ledger itself.
func (r runs) RecordRun(context.Context, string, time.Time, time.Time, error) error { return nil }

func runJobs(e *env, args []string) error {
	fs := e.newFlags("jobs", "jobs --config FILE")
	path := fs.String("config", "", "configuration file")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *path == "" {
		return usagef("--config FILE is required")
	}
	cfg, err := config.Load(*path)
	if err != nil {
		return err
	}
	db, err := jobs.OpenLedger(e.ctx, cfg)
	if err != nil {
		return err
	}
	defer db.Close()
	fmt.Fprintf(e.io.out, "%-20s %-18s %-14s %-16s %-20s %-20s %s\n", "JOB", "KIND", "PARTNER", "SCHEDULE", "NEXT", "LAST", "STATUS")
	for _, j := range cfg.Jobs {
		next := "-"
		if ts, err := schedule.Next(j.Schedule, j.Zone, time.Now(), 1); err == nil && len(ts) > 0 {
			next = ts[0].Format("2006-01-02 15:04 MST")
		}
		last, status := "-", "never run"
		if l, _, err := db.LastRun(e.ctx, j.Name); err == nil && l != nil {
			last, status = l.Started.Format("2006-01-02 15:04:05"), l.Status
		}
		fmt.Fprintf(e.io.out, "%-20s %-18s %-14s %-16s %-20s %-20s %s\n", j.Name, j.Kind, j.Partner, j.Schedule+" "+j.Zone, next, last, status)
	}
	return nil
}
