package jobs

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"
)

// TestCancelledRunGivenUp: a run blocked where no context reaches (a
// system call) is given up stopGrace after its cancellation, with a
// transient error, so that RunJob records it and releases its lease; a
// run that returns in time is waited for.
func TestCancelledRunGivenUp(t *testing.T) {
	r := &Runtime{Log: slog.New(slog.DiscardHandler), stopGrace: 100 * time.Millisecond}
	ctx, cancel := context.WithCancel(context.Background())
	block := make(chan struct{})
	defer close(block)
	time.AfterFunc(50*time.Millisecond, cancel)
	start := time.Now()
	sum, err := r.runBounded(ctx, "stuck", func() (*Summary, error) {
		<-block // ignores ctx
		return &Summary{}, nil
	})
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("given up after %s", took)
	}
	var tmp interface{ Temporary() bool }
	if sum != nil || !errors.As(err, &tmp) || !tmp.Temporary() || !errors.Is(err, context.Canceled) {
		t.Fatalf("runBounded = %v, %v; want a transient cancellation", sum, err)
	}

	ctx, cancel = context.WithCancel(context.Background())
	cancel()
	sum, err = r.runBounded(ctx, "prompt", func() (*Summary, error) {
		time.Sleep(20 * time.Millisecond)
		return &Summary{Files: 1}, ctx.Err()
	})
	if sum == nil || sum.Files != 1 || !errors.Is(err, context.Canceled) {
		t.Errorf("a run returning within the grace: %v, %v", sum, err)
	}
}
