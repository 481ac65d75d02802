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
	return d.InTx(ctx, func(tx *Tx) error {
		now := d.Now()
		exp := now.Add(ttl).UnixMilli()
		var curOwner string
		var curExp int64
		err := tx.QueryRow(ctx, `SELECT owner, expires_ms FROM leases WHERE job = ?`, job).Scan(&curOwner, &curExp)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			_, err = tx.Exec(ctx, `INSERT INTO leases (job, owner, expires_ms) VALUES (?, ?, ?)`, job, owner, exp)
			return err
		case err != nil:
			return err
		case curOwner != owner && curExp > now.UnixMilli():
			return &LeaseHeldError{Job: job, Owner: curOwner, Until: time.UnixMilli(curExp).UTC()}
		}
		_, err = tx.Exec(ctx, `UPDATE leases SET owner = ?, expires_ms = ? WHERE job = ?`, owner, exp, job)
		return err
	})
}

// ReleaseLease gives up owner's lease of job (no-op if not held by owner).
func (d *DB) ReleaseLease(ctx context.Context, job, owner string) error {
	return d.InTx(ctx, func(tx *Tx) error {
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
