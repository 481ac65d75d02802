package schedule_test

import (
	"context"
	"errors"
	"log/slog"
	"reflect"
	"sync"
	"testing"
	"time"

	"resub/jobs/schedule"
)

func TestCheckDST(t *testing.T) {
	from := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	wall := func(y int, m time.Month, d, h, min int) time.Time { return time.Date(y, m, d, h, min, 0, 0, time.UTC) }
	for _, tc := range []struct {
		name, expr, zone string
		skipped, doubled []time.Time
	}{
		// EU: last Sunday of March 02:00 -> 03:00, last Sunday of October 03:00 -> 02:00.
		{"paris 02:30", "30 2 * * *", "Europe/Paris", []time.Time{wall(2026, 3, 29, 2, 30)}, []time.Time{wall(2026, 10, 25, 2, 30)}},
		{"paris 04:00", "0 4 * * *", "Europe/Paris", nil, nil},
		{"paris sundays 02:15", "15 2 * * 0", "Europe/Paris", []time.Time{wall(2026, 3, 29, 2, 15)}, []time.Time{wall(2026, 10, 25, 2, 15)}},
		{"paris mondays 02:15", "15 2 * * 1", "Europe/Paris", nil, nil},
		// US: second Sunday of March 02:00 -> 03:00, first Sunday of November 02:00 -> 01:00.
		{"new york 01:30", "30 1 * * *", "America/New_York", nil, []time.Time{wall(2026, 11, 1, 1, 30)}},
		{"new york 02:30", "30 2 * * *", "America/New_York", []time.Time{wall(2026, 3, 8, 2, 30)}, nil},
		{"utc", "30 2 * * *", "", nil, nil},
		{"no dst", "30 2 * * *", "Asia/Tokyo", nil, nil},
		{"interval", "@every 15m", "Europe/Paris", nil, nil},
		{"hourly", "@hourly", "Europe/Paris", []time.Time{wall(2026, 3, 29, 2, 0)}, []time.Time{wall(2026, 10, 25, 2, 0)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := schedule.CheckDST(tc.expr, tc.zone, from)
			if tc.skipped == nil && tc.doubled == nil {
				if err != nil {
					t.Fatalf("CheckDST = %v, want nil", err)
				}
				return
			}
			var de *schedule.DSTError
			if !errors.As(err, &de) {
				t.Fatalf("CheckDST = %v, want a DSTError", err)
			}
			if !reflect.DeepEqual(de.Skipped, tc.skipped) || !reflect.DeepEqual(de.Doubled, tc.doubled) {
				t.Errorf("skipped %v doubled %v, want %v %v", de.Skipped, de.Doubled, tc.skipped, tc.doubled)
			}
		})
	}
}

func TestParse(t *testing.T) {
	for _, tc := range []struct{ expr, zone string }{
		{"* * * *", ""}, {"0 0 * * * *", ""}, {"0 6 * * *", "Mars/Olympus"}, {"CRON_TZ=UTC 0 6 * * *", ""},
	} {
		if _, err := schedule.Parse(tc.expr, tc.zone); err == nil {
			t.Errorf("Parse(%q, %q) accepted", tc.expr, tc.zone)
		}
	}
	got, err := schedule.Next("0 6 * * 1-5", "Europe/Paris", time.Date(2026, 3, 27, 12, 0, 0, 0, time.UTC), 3)
	if err != nil {
		t.Fatal(err)
	}
	want := []time.Time{
		time.Date(2026, 3, 30, 4, 0, 0, 0, time.UTC), // Monday, after the change to CEST (UTC+2)
		time.Date(2026, 3, 31, 4, 0, 0, 0, time.UTC),
		time.Date(2026, 4, 1, 4, 0, 0, 0, time.UTC),
	}
	for i := range want {
		if !got[i].Equal(want[i]) {
			t.Errorf("Next[%d] = %v, want %v", i, got[i].UTC(), want[i])
		}
	}
}

// memRuns and memLeaser stand in for the ledger, which implements these
// interfaces against SQLite.
type memRuns struct {
	mu   sync.Mutex
	last map[string]time.Time
	runs []string
}

func (m *memRuns) LastRun(_ context.Context, job string) (time.Time, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.last[job], nil
}

func (m *memRuns) RecordRun(_ context.Context, job string, started, _ time.Time, err error) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.last[job] = started
	m.runs = append(m.runs, job)
	return nil
}

type heldError struct{}

func (heldError) Error() string   { return "lease held" }
func (heldError) Temporary() bool { return true }

type memLeaser struct {
	mu    sync.Mutex
	owner map[string]string
}

func (l *memLeaser) Acquire(_ context.Context, job, owner string, _ time.Duration) (func() error, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if o, ok := l.owner[job]; ok && o != owner {
		return nil, heldError{}
	}
	l.owner[job] = owner
	return func() error {
		l.mu.Lock()
		defer l.mu.Unlock()
		delete(l.owner, job)
		return nil
	}, nil
}

func stop(t *testing.T, s *schedule.Scheduler) {
	t.Helper()
	if err := s.Stop(context.Background(), time.Second); err != nil {
		t.Fatal(err)
	}
}

func TestCatchUp(t *testing.T) {
	now := time.Date(2026, 5, 10, 12, 0, 0, 0, time.UTC)
	runs := &memRuns{last: map[string]time.Time{
		"missed":  now.Add(-36 * time.Hour), // its 06:00 run today did not happen
		"current": now.Add(-6 * time.Hour),  // ran at 06:00 today
	}}
	s := schedule.New(schedule.Options{Runs: runs, Now: func() time.Time { return now }, Log: slog.New(slog.DiscardHandler)})
	var mu sync.Mutex
	count := map[string]int{}
	for _, name := range []string{"missed", "current", "never"} {
		if err := s.Add(name, "0 6 * * *", "UTC", func(context.Context) error {
			mu.Lock()
			count[name]++
			mu.Unlock()
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	stop(t, s) // waits for the catch-up run
	if want := map[string]int{"missed": 1}; !reflect.DeepEqual(count, want) {
		t.Errorf("runs = %v, want %v", count, want)
	}
	if !runs.last["missed"].Equal(now) {
		t.Errorf("last run not recorded: %v", runs.last["missed"])
	}
}

func TestNoOverlapAndSharedLock(t *testing.T) {
	leaser := &memLeaser{owner: map[string]string{}}
	release := make(chan struct{})
	entered := make(chan struct{}, 1)
	job := func(context.Context) error {
		entered <- struct{}{}
		<-release
		return nil
	}
	a := schedule.New(schedule.Options{Leaser: leaser, Owner: "host-a:1"})
	b := schedule.New(schedule.Options{Leaser: leaser, Owner: "host-b:2"})
	for _, s := range []*schedule.Scheduler{a, b} {
		if err := s.Add("pickup", "*/5 * * * *", "", job); err != nil {
			t.Fatal(err)
		}
	}
	done := make(chan error)
	go func() { done <- a.RunNow(context.Background(), "pickup") }()
	<-entered
	// A second run in the same process is refused by the lock...
	if err := a.RunNow(context.Background(), "pickup"); !errors.Is(err, schedule.ErrBusy) {
		t.Errorf("second run in process: %v, want ErrBusy", err)
	}
	// ...and in another process by the lease; both are temporary.
	err := b.RunNow(context.Background(), "pickup")
	var tmp interface{ Temporary() bool }
	if !errors.As(err, &tmp) || !tmp.Temporary() {
		t.Errorf("run in another process while leased: %v, want a temporary error", err)
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	// Free again.
	if err := b.RunNow(context.Background(), "pickup"); err != nil {
		t.Errorf("run after release: %v", err)
	}
	<-entered
	stop(t, a)
	stop(t, b)
}

func TestPanicRecovered(t *testing.T) {
	runs := &memRuns{last: map[string]time.Time{}}
	s := schedule.New(schedule.Options{Runs: runs, Log: slog.New(slog.DiscardHandler)})
	n := 0
	if err := s.Add("boom", "@daily", "", func(context.Context) error {
		n++
		if n == 1 {
			panic("index out of range")
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	err := s.RunNow(context.Background(), "boom")
	var pe *schedule.PanicError
	if !errors.As(err, &pe) || pe.Value != "index out of range" || len(pe.Stack) == 0 {
		t.Fatalf("RunNow = %v, want a PanicError with a stack", err)
	}
	if err := s.RunNow(context.Background(), "boom"); err != nil {
		t.Fatalf("run after a panic: %v", err)
	}
	if len(runs.runs) != 2 {
		t.Errorf("recorded %d runs, want 2", len(runs.runs))
	}
	stop(t, s)
}

func TestStopIsBounded(t *testing.T) {
	s := schedule.New(schedule.Options{})
	entered := make(chan struct{})
	if err := s.Add("slow", "@daily", "", func(ctx context.Context) error {
		close(entered)
		select {
		case <-schedule.Stopping(ctx): // the file in hand would finish here
		}
		<-ctx.Done()
		return ctx.Err()
	}); err != nil {
		t.Fatal(err)
	}
	go s.RunNow(context.Background(), "slow")
	<-entered
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // deadline already passed: Stop cancels the run
	if err := s.Stop(ctx, 10*time.Second); err == nil {
		t.Error("Stop past its deadline returned nil")
	}
	if err := s.RunNow(context.Background(), "slow"); err == nil {
		t.Error("RunNow after Stop succeeded")
	}
}

// signalHandler reports log records whose message matches.
type signalHandler struct {
	slog.Handler
	msg string
	ch  chan struct{}
}

func (h signalHandler) Handle(ctx context.Context, r slog.Record) error {
	if r.Message == h.msg {
		select {
		case h.ch <- struct{}{}:
		default:
		}
	}
	return nil
}

func (h signalHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h signalHandler) WithAttrs([]slog.Attr) slog.Handler       { return h }

// TestScheduledRunSkippedWhileRunning: the clock's run of a job that is
// still running (here: started by hand) is skipped, not queued.
func TestScheduledRunSkippedWhileRunning(t *testing.T) {
	skipped := make(chan struct{}, 1)
	log := slog.New(signalHandler{Handler: slog.DiscardHandler, msg: "job still running; this run is skipped", ch: skipped})
	s := schedule.New(schedule.Options{Log: log})
	release := make(chan struct{})
	entered := make(chan struct{}, 10)
	var mu sync.Mutex
	runs := 0
	if err := s.Add("tick", "@every 1s", "", func(context.Context) error {
		mu.Lock()
		runs++
		mu.Unlock()
		entered <- struct{}{}
		<-release
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	done := make(chan error)
	go func() { done <- s.RunNow(context.Background(), "tick") }()
	<-entered
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	<-skipped // the clock fired while the manual run held the lock
	mu.Lock()
	if runs != 1 {
		t.Errorf("%d runs while the first was in progress, want 1", runs)
	}
	mu.Unlock()
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	stop(t, s)
}
