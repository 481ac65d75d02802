// Package schedule runs named jobs on cron schedules (robfig/cron/v3),
// each in its own time zone, with the guarantees the library lacks:
//
//   - a job never overlaps itself: scheduled and manual runs share one
//     per-process lock, and an optional lease (the ledger's) across
//     processes;
//   - a panic in a job is recovered and logged; the scheduler lives on;
//   - a run missed while the process was down is caught up once at start;
//   - jobs get a context, and Stop waits for the runs in hand, bounded.
//
// CheckDST flags, at configuration time, a schedule that falls into a
// daylight-saving gap (the run is skipped) or overlap (the run happens
// twice) of its zone.
package schedule

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/robfig/cron/v3"
)

// Parse parses a standard 5-field cron expression (or a descriptor such
// as @daily) evaluated in zone (an IANA name; empty means UTC).
func Parse(expr, zone string) (cron.Schedule, error) {
	if strings.HasPrefix(strings.TrimSpace(expr), "CRON_TZ=") || strings.HasPrefix(strings.TrimSpace(expr), "TZ=") {
		return nil, &SpecError{Expr: expr, Zone: zone, Err: errors.New("give the zone separately, not as CRON_TZ=")}
	}
	loc, err := location(zone)
	if err != nil {
		return nil, &SpecError{Expr: expr, Zone: zone, Err: err}
	}
	s, err := cron.ParseStandard("CRON_TZ=" + loc.String() + " " + expr)
	if err != nil {
		return nil, &SpecError{Expr: expr, Zone: zone, Err: err}
	}
	return s, nil
}

func location(zone string) (*time.Location, error) {
	if zone == "" {
		return time.UTC, nil
	}
	return time.LoadLocation(zone)
}

// SpecError is an invalid schedule: a configuration error.
type SpecError struct {
	Expr, Zone string
	Err        error
}

func (e *SpecError) Error() string {
	return fmt.Sprintf("schedule %q (zone %q): %v", e.Expr, e.Zone, e.Err)
}
func (e *SpecError) Unwrap() error     { return e.Err }
func (e *SpecError) ConfigError() bool { return true }

// Next returns the next n run times after t.
func Next(expr, zone string, after time.Time, n int) ([]time.Time, error) {
	s, err := Parse(expr, zone)
	if err != nil {
		return nil, err
	}
	out := make([]time.Time, 0, n)
	t := after
	for range n {
		t = s.Next(t)
		if t.IsZero() {
			break
		}
		out = append(out, t)
	}
	return out, nil
}

// Leaser hands out the job lease that keeps two processes from running
// the same job at once (the ledger implements it). Acquire fails with an
// error whose Temporary() is true while another owner holds the lease.
type Leaser interface {
	Acquire(ctx context.Context, job, owner string, ttl time.Duration) (release func() error, err error)
}

// Runs is the record of past runs (the ledger implements it).
type Runs interface {
	// LastRun returns when the job last started (zero if never).
	LastRun(ctx context.Context, job string) (time.Time, error)
	// RecordRun records a finished run; runErr nil means success.
	RecordRun(ctx context.Context, job string, started, finished time.Time, runErr error) error
}

// ErrBusy is returned by RunNow while the job is running.
var ErrBusy = busyError{}

type busyError struct{}

func (busyError) Error() string   { return "job is already running" }
func (busyError) Temporary() bool { return true }

// Options configures a Scheduler.
type Options struct {
	Leaser   Leaser        // nil: the per-process lock only
	Runs     Runs          // nil: no catch-up, nothing recorded
	Owner    string        // lease owner, e.g. host:pid
	LeaseTTL time.Duration // default 1h: longer than any run
	Log      *slog.Logger  // default discards
	Now      func() time.Time
	// Observe, if set, is called after every run (for metrics).
	Observe func(job string, started time.Time, d time.Duration, err error)
}

// Scheduler runs jobs on their schedules.
type Scheduler struct {
	o    Options
	cron *cron.Cron

	mu      sync.Mutex
	jobs    map[string]*entry
	started bool

	runCtx    context.Context // canceled when Stop's grace ends
	cancelRun context.CancelFunc
	stopping  chan struct{} // closed when Stop begins
	wg        sync.WaitGroup
}

type entry struct {
	name, expr, zone string
	sched            cron.Schedule
	run              func(ctx context.Context) error
	lock             sync.Mutex // held during a run: scheduled and manual alike
}

// New returns a scheduler with no jobs.
func New(o Options) *Scheduler {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.LeaseTTL <= 0 {
		o.LeaseTTL = time.Hour
	}
	s := &Scheduler{o: o, jobs: map[string]*entry{}, stopping: make(chan struct{})}
	s.runCtx, s.cancelRun = context.WithCancel(context.Background())
	// Our own wrapper recovers panics; cron.Recover is a second net, and
	// it needs a logger (Recover(nil) crashes).
	s.cron = cron.New(cron.WithLocation(time.UTC), cron.WithChain(cron.Recover(cronLogger{o.Log})))
	return s
}

// Add registers a job. Names are unique.
func (s *Scheduler) Add(name, expr, zone string, run func(ctx context.Context) error) error {
	sched, err := Parse(expr, zone)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, dup := s.jobs[name]; dup {
		return &SpecError{Expr: expr, Zone: zone, Err: fmt.Errorf("job %q added twice", name)}
	}
	e := &entry{name: name, expr: expr, zone: zone, sched: sched, run: run}
	s.jobs[name] = e
	s.cron.Schedule(sched, cron.FuncJob(func() { s.scheduled(e) }))
	return nil
}

// Entry describes a job for `resub jobs`.
type Entry struct {
	Name, Expr, Zone string
	Next             time.Time
}

// Entries lists the jobs by name with their next run after now.
func (s *Scheduler) Entries() []Entry {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.o.Now()
	out := make([]Entry, 0, len(s.jobs))
	for _, e := range s.jobs {
		out = append(out, Entry{Name: e.name, Expr: e.expr, Zone: e.zone, Next: e.sched.Next(now)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Start catches up missed runs and starts the clock. ctx bounds only the
// catch-up queries.
func (s *Scheduler) Start(ctx context.Context) error {
	s.mu.Lock()
	if s.started {
		s.mu.Unlock()
		return nil
	}
	s.started = true
	var missed []*entry
	var errs []error
	if s.o.Runs != nil {
		now := s.o.Now()
		for _, e := range s.jobs {
			last, err := s.o.Runs.LastRun(ctx, e.name)
			if err != nil {
				errs = append(errs, fmt.Errorf("job %s: last run: %w", e.name, err))
				continue
			}
			if !last.IsZero() && !e.sched.Next(last).After(now) {
				missed = append(missed, e)
			}
		}
	}
	s.mu.Unlock()
	sort.Slice(missed, func(i, j int) bool { return missed[i].name < missed[j].name })
	for _, e := range missed {
		s.o.Log.Info("catching up a run missed while down", "job", e.name)
		if !s.enter() {
			break
		}
		go func() {
			defer s.wg.Done()
			if err := s.runEntered(s.runCtx, e); errors.Is(err, ErrBusy) {
				s.o.Log.Warn("job already running; catch-up skipped", "job", e.name)
			}
		}()
	}
	s.cron.Start()
	return errors.Join(errs...)
}

// scheduled is a run started by the clock or the catch-up: it is skipped
// while the job is running.
func (s *Scheduler) scheduled(e *entry) {
	if err := s.runLocked(s.runCtx, e); errors.Is(err, ErrBusy) {
		s.o.Log.Warn("job still running; this run is skipped", "job", e.name)
	}
}

// RunNow runs a job now, under the same lock as its scheduled runs. It
// returns ErrBusy (temporary) if the job is running in this process, the
// lease's error if another process runs it, or the job's error.
func (s *Scheduler) RunNow(ctx context.Context, name string) error {
	s.mu.Lock()
	e, ok := s.jobs[name]
	s.mu.Unlock()
	if !ok {
		return &SpecError{Err: fmt.Errorf("no job %q", name)}
	}
	return s.runLocked(ctx, e)
}

func (s *Scheduler) runLocked(ctx context.Context, e *entry) error {
	if !s.enter() {
		return errStopping
	}
	defer s.wg.Done()
	return s.runEntered(ctx, e)
}

// runEntered runs e under its lock and lease; the caller has counted the
// run in (enter). Stop's deadline cancels ctx.
func (s *Scheduler) runEntered(ctx context.Context, e *entry) (err error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stopCancel := context.AfterFunc(s.runCtx, cancel)
	defer stopCancel()
	if !e.lock.TryLock() {
		return ErrBusy
	}
	defer e.lock.Unlock()
	if s.o.Leaser != nil {
		release, err := s.o.Leaser.Acquire(ctx, e.name, s.o.Owner, s.o.LeaseTTL)
		if err != nil {
			s.o.Log.Warn("job lease not acquired; run skipped", "job", e.name, "error", err)
			return err
		}
		defer func() {
			if rerr := release(); rerr != nil {
				s.o.Log.Error("job lease release", "job", e.name, "error", rerr)
			}
		}()
	}
	ctx = context.WithValue(ctx, stoppingKey{}, s.stopping)
	started := s.o.Now()
	s.o.Log.Info("job started", "job", e.name)
	err = s.call(ctx, e)
	finished := s.o.Now()
	d := finished.Sub(started)
	if err != nil {
		s.o.Log.Error("job failed", "job", e.name, "duration", d, "error", err)
	} else {
		s.o.Log.Info("job done", "job", e.name, "duration", d)
	}
	if s.o.Observe != nil {
		s.o.Observe(e.name, started, d, err)
	}
	if s.o.Runs != nil {
		if rerr := s.o.Runs.RecordRun(context.WithoutCancel(ctx), e.name, started, finished, err); rerr != nil {
			s.o.Log.Error("recording the run", "job", e.name, "error", rerr)
		}
	}
	return err
}

// PanicError is a job's panic, recovered.
type PanicError struct {
	Job   string
	Value any
	Stack []byte
}

func (p *PanicError) Error() string { return fmt.Sprintf("job %s panicked: %v", p.Job, p.Value) }

func (s *Scheduler) call(ctx context.Context, e *entry) (err error) {
	defer func() {
		if v := recover(); v != nil {
			pe := &PanicError{Job: e.name, Value: v, Stack: debug.Stack()}
			s.o.Log.Error("job panicked", "job", e.name, "panic", fmt.Sprint(v), "stack", string(pe.Stack))
			err = pe
		}
	}()
	return e.run(ctx)
}

// enter counts a run in, unless the scheduler is stopping.
func (s *Scheduler) enter() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	select {
	case <-s.stopping:
		return false
	default:
		s.wg.Add(1)
		return true
	}
}

var errStopping = &stoppingError{}

type stoppingError struct{}

func (*stoppingError) Error() string   { return "scheduler is stopping" }
func (*stoppingError) Temporary() bool { return true }

type stoppingKey struct{}

// Stopping returns a channel that is closed when the scheduler running
// the job begins to stop: a job finishes the file in hand and returns.
// It is nil (never closed) outside a scheduler.
func Stopping(ctx context.Context) <-chan struct{} {
	ch, _ := ctx.Value(stoppingKey{}).(chan struct{})
	return ch
}

// Stop stops the clock, asks running jobs to finish (Stopping) and waits
// for them until ctx ends; then it cancels their context and waits up to
// grace more. It is idempotent.
func (s *Scheduler) Stop(ctx context.Context, grace time.Duration) error {
	s.mu.Lock()
	select {
	case <-s.stopping:
	default:
		close(s.stopping)
	}
	s.mu.Unlock()
	s.cron.Stop() // no new runs; runs in hand are counted in wg
	done := make(chan struct{})
	go func() {
		s.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		s.cancelRun()
		return nil
	case <-ctx.Done():
	}
	s.cancelRun()
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-done:
		return fmt.Errorf("schedule: jobs were canceled at the stop deadline: %w", ctx.Err())
	case <-t.C:
		return fmt.Errorf("schedule: jobs still running %s after the stop deadline", grace)
	}
}

// cronLogger adapts slog to cron.Logger.
type cronLogger struct{ l *slog.Logger }

func (c cronLogger) Info(msg string, kv ...any) { c.l.Debug("cron: "+msg, kv...) }
func (c cronLogger) Error(err error, msg string, kv ...any) {
	c.l.Error("cron: "+msg, append(kv, "error", err)...)
}
