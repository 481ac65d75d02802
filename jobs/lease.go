package jobs

import (
	"context"
	"errors"
	"os"
	"strconv"
	"strings"

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
func (r *Runtime) acquireLease(ctx context.Context, job, owner string) error {
	err := r.Ledger.AcquireLease(ctx, job, owner, leaseTTL)
	var held *ledger.LeaseHeldError
	if !errors.As(err, &held) || !deadLocalOwner(held.Owner) {
		return err
	}
	r.Log.Warn("taking over the lease of a process that is gone", "job", job, "owner", held.Owner)
	if err := r.Ledger.ReleaseLease(ctx, job, held.Owner); err != nil {
		return err
	}
	return r.Ledger.AcquireLease(ctx, job, owner, leaseTTL)
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
