// Package daemon runs resub's jobs on their schedules: `resub run`.
//
// The daemon owns a scheduler (jobs/schedule) and, when asked, an HTTP
// listener for Prometheus metrics. Signals are the caller's business: it
// cancels the context given to Start's caller and calls Stop with a
// deadline. A job's failure is logged and counted; the loop stays alive.
package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"resub/jobs/metrics"
	"resub/jobs/schedule"
)

// Job is one unit of scheduled work: a pickup, a delivery, a step.
type Job interface {
	Name() string
	// Run does one pass. It should check schedule.Stopping(ctx) between
	// files, finish the file in hand, and return when ctx ends.
	Run(ctx context.Context) error
}

// Spec is a job with its schedule.
type Spec struct {
	Job      Job
	Schedule string        // 5-field cron expression or descriptor
	Zone     string        // IANA zone; empty means UTC
	Deadline time.Duration // the job must succeed at least this often; 0: no deadline
}

// Successes is implemented by a run record (the ledger) that knows each
// job's last successful run; the overdue gauge starts from it. Without
// it, a job's deadline runs from the daemon's start.
type Successes interface {
	LastSuccess(ctx context.Context, job string) (time.Time, error)
}

// Options configures a daemon.
type Options struct {
	Jobs   []Spec
	Leaser schedule.Leaser // the ledger's job lease; nil: per-process lock only
	Runs   schedule.Runs   // the ledger's run record; nil: no catch-up
	Owner  string          // lease owner, e.g. host:pid
	Log    *slog.Logger    // default discards
	Now    func() time.Time
	// Registry receives the metrics (a new one if nil); Metrics, when
	// set, is used instead of registering new ones on Registry.
	Registry *prometheus.Registry
	Metrics  *metrics.Metrics
	// MetricsAddr, when set, is where Start serves /metrics.
	MetricsAddr string
	// StopGrace is how long Stop waits after its deadline for canceled
	// jobs to return; default 5s.
	StopGrace time.Duration
}

// Daemon runs jobs on their schedules.
type Daemon struct {
	o     Options
	sched *schedule.Scheduler
	m     *metrics.Metrics

	mu      sync.Mutex
	started bool
	stopped bool
	srv     *http.Server
	ln      net.Listener
	srvDone chan error
}

// New checks the jobs' schedules and registers the metrics.
func New(o Options) (*Daemon, error) {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.StopGrace <= 0 {
		o.StopGrace = 5 * time.Second
	}
	if o.Registry == nil {
		o.Registry = prometheus.NewRegistry()
	}
	m := o.Metrics
	if m == nil {
		var err error
		if m, err = metrics.New(o.Registry, o.Now); err != nil {
			return nil, err
		}
	}
	d := &Daemon{o: o, m: m}
	d.sched = schedule.New(schedule.Options{
		Leaser: o.Leaser, Runs: o.Runs, Owner: o.Owner, Log: o.Log, Now: o.Now,
		Observe: m.ObserveRun,
	})
	var errs []error
	for _, s := range o.Jobs {
		if s.Job == nil {
			errs = append(errs, errors.New("daemon: a job spec without a job"))
			continue
		}
		if err := d.sched.Add(s.Job.Name(), s.Schedule, s.Zone, s.Job.Run); err != nil {
			errs = append(errs, fmt.Errorf("job %s: %w", s.Job.Name(), err))
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return d, nil
}

// Metrics returns the daemon's metrics, to hand drop meters to jobs.
func (d *Daemon) Metrics() *metrics.Metrics { return d.m }

// Entries lists the jobs with their next run times.
func (d *Daemon) Entries() []schedule.Entry { return d.sched.Entries() }

// Start serves metrics (if configured), catches up missed runs and starts
// the schedules. It returns at once.
func (d *Daemon) Start(ctx context.Context) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.started {
		return nil
	}
	d.started = true
	for _, s := range d.o.Jobs {
		var last time.Time
		if sr, ok := d.o.Runs.(Successes); ok {
			var err error
			if last, err = sr.LastSuccess(ctx, s.Job.Name()); err != nil {
				d.o.Log.Error("last success", "job", s.Job.Name(), "error", err)
			}
		}
		d.m.Watch(s.Job.Name(), s.Deadline, last)
	}
	if d.o.MetricsAddr != "" {
		ln, err := net.Listen("tcp", d.o.MetricsAddr)
		if err != nil {
			return &configError{fmt.Errorf("metrics address: %w", err)}
		}
		mux := http.NewServeMux()
		mux.Handle("/metrics", metrics.Handler(d.o.Registry))
		d.ln = ln
		d.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		d.srvDone = make(chan error, 1)
		go func() { d.srvDone <- d.srv.Serve(ln) }()
		d.o.Log.Info("serving metrics", "addr", ln.Addr().String())
	}
	if err := d.sched.Start(ctx); err != nil {
		d.o.Log.Error("catch-up", "error", err)
	}
	d.o.Log.Info("daemon started", "jobs", len(d.o.Jobs))
	return nil
}

// MetricsAddr is the address metrics are served on, once started.
func (d *Daemon) MetricsAddr() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.ln == nil {
		return ""
	}
	return d.ln.Addr().String()
}

// RunOnce runs every job (or the named one) once now, one after the
// other, under the same locks as scheduled runs; it returns the jobs'
// errors joined. It is `resub run --once [--job NAME]`.
func (d *Daemon) RunOnce(ctx context.Context, job string) error {
	var errs []error
	found := false
	for _, s := range d.o.Jobs {
		name := s.Job.Name()
		if job != "" && name != job {
			continue
		}
		found = true
		if err := ctx.Err(); err != nil {
			errs = append(errs, err)
			break
		}
		if err := d.sched.RunNow(ctx, name); err != nil {
			errs = append(errs, fmt.Errorf("job %s: %w", name, err))
		}
	}
	if !found {
		return &configError{fmt.Errorf("no job %q", job)}
	}
	return errors.Join(errs...)
}

// Stop stops the schedules, lets the runs in hand finish until ctx ends
// (then cancels them, waiting StopGrace at most), and stops serving
// metrics. It is idempotent; errors are joined.
func (d *Daemon) Stop(ctx context.Context) error {
	d.mu.Lock()
	if d.stopped {
		d.mu.Unlock()
		return nil
	}
	d.stopped = true
	srv, srvDone := d.srv, d.srvDone
	d.mu.Unlock()
	var errs []error
	errs = append(errs, d.sched.Stop(ctx, d.o.StopGrace))
	if srv != nil {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
		if err := srv.Shutdown(sctx); err != nil {
			srv.Close()
		}
		cancel()
		if err := <-srvDone; err != nil && !errors.Is(err, http.ErrServerClosed) {
			errs = append(errs, err)
		}
	}
	d.o.Log.Info("daemon stopped")
	return errors.Join(errs...)
}

type configError struct{ err error }

func (c *configError) Error() string     { return "daemon: " + c.err.Error() }
func (c *configError) Unwrap() error     { return c.err }
func (c *configError) ConfigError() bool { return true }
