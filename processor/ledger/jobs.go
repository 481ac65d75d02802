package ledger

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// LeaseHeldError says another process holds a job's lease: transient.
type LeaseHeldError struct {
	Job, Owner string
	Until      time.Time
}

func (e *LeaseHeldError) Error() string {
	return fmt.Sprintf("job %s is running elsewhere (lease held by %s until %s)", e.Job, e.Owner, e.Until.Format(time.RFC3339))
}

// Temporary marks the error as safe to retry.
func (e *LeaseHeldError) Temporary() bool { return true }

// AcquireLease takes the lease of job for owner for ttl. It succeeds when
// nobody holds it, when it expired, or when owner already holds it
// (renewal). Otherwise it returns *LeaseHeldError.
func (d *DB) AcquireLease(ctx context.Context, job, owner string, ttl time.Duration) error {
	// One statement, atomic on every engine, outside the write lock: a
	// renewal never waits for a long step of its own job to commit.
	return d.InTx(leaseUpkeep(ctx), func(tx *Tx) error {
		now := d.Now()
		res, err := tx.Exec(ctx, `INSERT INTO leases (job, owner, expires_ms) VALUES (?, ?, ?)
			ON CONFLICT (job) DO UPDATE SET owner = excluded.owner, expires_ms = excluded.expires_ms
			WHERE leases.owner = excluded.owner OR leases.expires_ms <= ?`, job, owner, now.Add(ttl).UnixMilli(), now.UnixMilli())
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n > 0 {
			return err
		}
		var curOwner string
		var curExp int64
		if err := tx.QueryRow(ctx, `SELECT owner, expires_ms FROM leases WHERE job = ?`, job).Scan(&curOwner, &curExp); err != nil {
			return err
		}
		return &LeaseHeldError{Job: job, Owner: curOwner, Until: time.UnixMilli(curExp).UTC()}
	})
}

// RenewLease extends owner's lease of job by ttl from now, only while
// owner holds it (an expired lease nobody took over is still its
// holder's); *FencedError when it does not.
func (d *DB) RenewLease(ctx context.Context, job, owner string, ttl time.Duration) error {
	return d.InTx(leaseUpkeep(ctx), func(tx *Tx) error {
		res, err := tx.Exec(ctx, `UPDATE leases SET expires_ms = ? WHERE job = ? AND owner = ?`,
			d.Now().Add(ttl).UnixMilli(), job, owner)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return &FencedError{Job: job, Owner: owner}
		}
		return nil
	})
}

type upkeepKey struct{}

// leaseUpkeep marks ctx's transactions as the lease's own: unfenced, and
// outside the ledger's write lock (each is one atomic statement).
func leaseUpkeep(ctx context.Context) context.Context {
	return context.WithValue(WithoutFence(ctx), upkeepKey{}, true)
}

func isUpkeep(ctx context.Context) bool {
	b, _ := ctx.Value(upkeepKey{}).(bool)
	return b
}

// Fence is a lease a step's transactions commit under: each commits only
// while the lease is still its owner's, checked in the committing
// transaction itself (a holder that was paused past its expiry, and whose
// job another instance took over, commits nothing). Expiry alone does not
// refuse a commit: until another instance takes the lease the job is
// still the holder's, and a long transaction of its own keeps SQLite's
// renewals waiting. A takeover needs the lease row, which the check locks
// until the commit: it comes before the check (refused) or after the
// commit.
type Fence struct {
	Job, Owner string
}

type fenceKey struct{}

// WithFence returns ctx whose ledger transactions are fenced by the lease
// of job held by owner.
func WithFence(ctx context.Context, job, owner string) context.Context {
	return context.WithValue(ctx, fenceKey{}, &Fence{Job: job, Owner: owner})
}

// FenceOf is the fence ctx carries, or nil.
func FenceOf(ctx context.Context) *Fence {
	f, _ := ctx.Value(fenceKey{}).(*Fence)
	return f
}

// WithoutFence returns ctx without its fence (the lease's own upkeep).
func WithoutFence(ctx context.Context) context.Context {
	if FenceOf(ctx) == nil {
		return ctx
	}
	return context.WithValue(ctx, fenceKey{}, (*Fence)(nil))
}

// FencedError is a transaction refused at commit because its lease is no
// longer its own: another instance took the job over. Transient: the job
// runs again at its next turn, from what the ledger then says.
type FencedError struct {
	Job, Owner string
}

func (e *FencedError) Error() string {
	return fmt.Sprintf("job %s: the lease of %s expired or was taken over; nothing of this transaction was committed", e.Job, e.Owner)
}

// Temporary marks the error as safe to retry.
func (e *FencedError) Temporary() bool { return true }

// fence checks, as the last statement before commit, that the fence's
// lease is still held. On a server engine the statement also locks the
// lease row until the commit, so that a takeover waits for it.
func (t *Tx) fence(ctx context.Context) error {
	f := FenceOf(ctx)
	if f == nil {
		return nil
	}
	res, err := t.tx.ExecContext(ctx, t.d.q(`UPDATE leases SET expires_ms = expires_ms WHERE job = ? AND owner = ?`), f.Job, f.Owner)
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err != nil {
		return err
	} else if n == 0 {
		return &FencedError{Job: f.Job, Owner: f.Owner}
	}
	return nil
}

// CheckFence returns *FencedError when ctx carries a fence whose lease is
// no longer held (nil without a fence).
func (d *DB) CheckFence(ctx context.Context) error {
	f := FenceOf(ctx)
	if f == nil {
		return nil
	}
	ok, err := d.HoldsLease(ctx, f.Job, f.Owner)
	if err != nil {
		return err
	}
	if !ok {
		return &FencedError{Job: f.Job, Owner: f.Owner}
	}
	return nil
}

// HoldsLease reports whether owner still holds job's lease (checked
// before an action outside the ledger, e.g. a delivery).
func (d *DB) HoldsLease(ctx context.Context, job, owner string) (bool, error) {
	var n int
	err := d.QueryRow(ctx, `SELECT COUNT(*) FROM leases WHERE job = ? AND owner = ?`, job, owner).Scan(&n)
	return n > 0, err
}

// ReleaseLease gives up owner's lease of job (no-op if not held by owner).
func (d *DB) ReleaseLease(ctx context.Context, job, owner string) error {
	return d.InTx(leaseUpkeep(ctx), func(tx *Tx) error {
		_, err := tx.Exec(ctx, `DELETE FROM leases WHERE job = ? AND owner = ?`, job, owner)
		return err
	})
}

// JobRun is one run of a job.
type JobRun struct {
	ID       int64
	Job      string
	Owner    string
	Manual   bool
	Started  time.Time
	Finished time.Time
	Status   string // running, ok, failed
	Summary  string
}

// StartRun records the start of a run.
func (d *DB) StartRun(ctx context.Context, job, owner string, manual bool) (int64, error) {
	var id int64
	err := d.InTx(ctx, func(tx *Tx) error {
		m := 0
		if manual {
			m = 1
		}
		return tx.QueryRow(ctx, `INSERT INTO job_runs (job, owner, manual, started_at, status) VALUES (?, ?, ?, ?, 'running') RETURNING id`,
			job, owner, m, ts(d.Now())).Scan(&id)
	})
	return id, err
}

// FinishRun records the end of a run.
func (d *DB) FinishRun(ctx context.Context, id int64, status, summary string) error {
	return d.InTx(ctx, func(tx *Tx) error {
		_, err := tx.Exec(ctx, `UPDATE job_runs SET finished_at = ?, status = ?, summary = ? WHERE id = ?`, ts(d.Now()), status, summary, id)
		return err
	})
}

// AbandonRuns marks the job's runs still recorded as running as cut
// short; call it holding the job's lease.
func (d *DB) AbandonRuns(ctx context.Context, job string) (int64, error) {
	var n int64
	err := d.InTx(ctx, func(tx *Tx) error {
		res, err := tx.Exec(ctx, `UPDATE job_runs SET status = 'cut-short', finished_at = ? WHERE job = ? AND status = 'running'`, ts(d.Now()), job)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	return n, err
}

// LastRun returns the latest run of job, and the latest successful one.
func (d *DB) LastRun(ctx context.Context, job string) (last, lastOK *JobRun, err error) {
	get := func(cond string) (*JobRun, error) {
		r := &JobRun{}
		var started, finished string
		var manual int
		err := d.QueryRow(ctx, `SELECT id, job, owner, manual, started_at, finished_at, status, summary FROM job_runs WHERE job = ? `+cond+` ORDER BY id DESC LIMIT 1`, job).
			Scan(&r.ID, &r.Job, &r.Owner, &manual, &started, &finished, &r.Status, &r.Summary)
		if errors.Is(err, sql.ErrNoRows) {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		r.Manual = manual == 1
		r.Started, _ = ParseTime(started)
		if finished != "" {
			r.Finished, _ = ParseTime(finished)
		}
		return r, nil
	}
	if last, err = get(""); err != nil {
		return nil, nil, err
	}
	lastOK, err = get("AND status = 'ok'")
	return last, lastOK, err
}

// Audit appends to the audit trail. Callers never pass secrets: actor,
// action, subject and detail are identifiers and reasons.
func (t *Tx) Audit(ctx context.Context, actor, action, subject, detail string) error {
	_, err := t.Exec(ctx, `INSERT INTO audit (at, actor, action, subject, detail) VALUES (?, ?, ?, ?, ?)`, ts(t.Now()), actor, action, subject, detail)
	return err
}

// AuditEntry is one line of the audit trail.
type AuditEntry struct {
	At                             time.Time
	Actor, Action, Subject, Detail string
}

// AuditTrail lists the audit trail, oldest first, optionally for one action.
func (d *DB) AuditTrail(ctx context.Context, action string) ([]AuditEntry, error) {
	rows, err := d.Query(ctx, `SELECT at, actor, action, subject, detail FROM audit WHERE (? = '' OR action = ?) ORDER BY id`, action, action)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []AuditEntry
	for rows.Next() {
		var e AuditEntry
		var at string
		if err := rows.Scan(&at, &e.Actor, &e.Action, &e.Subject, &e.Detail); err != nil {
			return nil, err
		}
		e.At, _ = ParseTime(at)
		out = append(out, e)
	}
	return out, rows.Err()
}
