package jobs

import (
	"context"
	"errors"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"resub/jobs/config"
	"resub/jobs/schedule"
	"resub/processor/ledger"
)

// acquireLease takes a job's lease. A lease left by a process of this
// host that no longer exists (killed, or the machine's power lost
// mid-run) is taken over at once rather than blocking the job until it
// expires: owners are "host:pid", and a dead pid on our own host cannot
// be running the job. Two processes taking over together are safe: the
// release names the dead owner, and only one acquisition then wins.
//
// On a server ledger shared by several hosts a pid says nothing: a lease
// there runs to its expiry, which renewal keeps short.
func (r *Runtime) acquireLease(ctx context.Context, job, owner string) error {
	err := r.Ledger.AcquireLease(ctx, job, owner, r.leaseTTL())
	var held *ledger.LeaseHeldError
	if !errors.As(err, &held) || r.Ledger.Dialect().Name != "sqlite" || !deadLocalOwner(held.Owner) {
		return err
	}
	r.Log.Warn("taking over the lease of a process that is gone", "job", job, "owner", held.Owner)
	if err := r.Ledger.ReleaseLease(ctx, job, held.Owner); err != nil {
		return err
	}
	return r.Ledger.AcquireLease(ctx, job, owner, r.leaseTTL())
}

// keepLease renews owner's lease of job every third of its time to live
// until stop is called. When the lease turns out lost (it expired and
// another instance took the job) the returned context is cancelled: the
// run stops, and its transactions were fenced already.
func (r *Runtime) keepLease(ctx context.Context, job, owner string) (context.Context, func()) {
	ctx, cancel := context.WithCancelCause(ctx)
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		ttl := r.leaseTTL()
		tick := time.NewTicker(ttl / 3)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			err := r.Ledger.RenewLease(context.WithoutCancel(ctx), job, owner, ttl)
			var lost *ledger.FencedError
			switch {
			case errors.As(err, &lost):
				r.Log.Error("job lease lost: the run stops and commits nothing more", "job", job, "instance", owner)
				cancel(err)
				return
			case err != nil:
				// The ledger unreachable for a moment: the run's own
				// transactions fail the same way, and the fence holds.
				r.Log.Warn("job lease not renewed", "job", job, "instance", owner, "error", err)
			}
		}
	}()
	return ctx, func() {
		close(done)
		wg.Wait()
		cancel(nil)
	}
}

// deadLocalOwner reports whether owner ("host:pid") names a process of
// this host that does not exist.
func deadLocalOwner(owner string) bool {
	host, pidText, ok := strings.Cut(owner, ":")
	if !ok {
		return false
	}
	me, err := os.Hostname()
	if err != nil || host != me {
		return false
	}
	pid, err := strconv.Atoi(pidText)
	if err != nil || pid <= 0 || pid == os.Getpid() {
		return false
	}
	return !processExists(pid)
}

// ranThisTick reports whether a run of the job started since its latest
// schedule tick: several daemons on one ledger all fire at the tick, the
// lease keeps their runs apart, and this keeps the later ones from
// running the job again for the same tick.
func (r *Runtime) ranThisTick(ctx context.Context, j *config.Job) bool {
	if j.Schedule == "" {
		return false
	}
	last, _, err := r.Ledger.LastRun(ctx, j.Name)
	if err != nil || last == nil {
		return false
	}
	sched, err := schedule.Parse(j.Schedule, j.Zone)
	if err != nil {
		return false
	}
	return sched.Next(last.Started).After(r.now())
}
