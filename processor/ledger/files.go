package ledger

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// File statuses.
const (
	FileReceived    = "received"    // picked up, not yet verified
	FileProcessing  = "processing"  // verified, records being processed
	FileDone        = "done"        // processed and answered
	FileRefusing    = "refusing"    // refused and answered; not yet moved to quarantine
	FileQuarantined = "quarantined" // refused; waits for reprocessing
	FileDelivered   = "delivered"   // an output delivered to the partner
)

// File is a file received from or sent to a partner.
type File struct {
	ID        int64
	Partner   string
	Direction string // in or out
	Name      string
	Type      string
	SHA256    string
	Size      int64
	Seq       int64
	Status    string
	Reason    string
	Job       string
	BatchID   int64
	Created   time.Time
	Updated   time.Time
}

const fileCols = `id, partner, direction, name, type, sha256, size, seq, status, reason, job, batch_id, created_at, updated_at`

func scanFile(sc interface{ Scan(...any) error }) (*File, error) {
	f := &File{}
	var c, u string
	if err := sc.Scan(&f.ID, &f.Partner, &f.Direction, &f.Name, &f.Type, &f.SHA256, &f.Size, &f.Seq, &f.Status, &f.Reason, &f.Job, &f.BatchID, &c, &u); err != nil {
		return nil, err
	}
	f.Created, _ = ParseTime(c)
	f.Updated, _ = ParseTime(u)
	return f, nil
}

// ReceiveFile records an input file by (partner, name, sha256). If the same
// bytes were seen before it returns that row and seen=true: a completed
// file is never processed again, a quarantined one may be reprocessed.
func (t *Tx) ReceiveFile(ctx context.Context, f *File) (row *File, seen bool, err error) {
	r, err := scanFile(t.QueryRow(ctx, `SELECT `+fileCols+` FROM files WHERE partner = ? AND direction = 'in' AND name = ? AND sha256 = ?`, f.Partner, f.Name, f.SHA256))
	if err == nil {
		return r, true, nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return nil, false, err
	}
	now := ts(t.Now())
	var id int64
	err = t.QueryRow(ctx, `INSERT INTO files (partner, direction, name, type, sha256, size, seq, status, reason, job, batch_id, created_at, updated_at)
		VALUES (?, 'in', ?, ?, ?, ?, ?, ?, '', ?, 0, ?, ?) RETURNING id`,
		f.Partner, f.Name, f.Type, f.SHA256, f.Size, f.Seq, FileReceived, f.Job, now, now).Scan(&id)
	if err != nil {
		return nil, false, err
	}
	cp := *f
	cp.ID, cp.Direction, cp.Status = id, "in", FileReceived
	cp.Created, cp.Updated = t.Now(), t.Now()
	return &cp, false, nil
}

// RecordOutFile records a file we produced.
func (t *Tx) RecordOutFile(ctx context.Context, f *File) (int64, error) {
	now := ts(t.Now())
	var id int64
	err := t.QueryRow(ctx, `INSERT INTO files (partner, direction, name, type, sha256, size, seq, status, reason, job, batch_id, created_at, updated_at)
		VALUES (?, 'out', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
		f.Partner, f.Name, f.Type, f.SHA256, f.Size, f.Seq, f.Status, f.Reason, f.Job, f.BatchID, now, now).Scan(&id)
	return id, err
}

// SetFileStatus moves a file to status with a reason.
func (t *Tx) SetFileStatus(ctx context.Context, id int64, status, reason string) error {
	res, err := t.Exec(ctx, `UPDATE files SET status = ?, reason = ?, updated_at = ? WHERE id = ?`, status, reason, ts(t.Now()), id)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("file %d: %w", id, ErrNotFound)
	}
	return nil
}

// SetFileMeta fills what becomes known after verification.
func (t *Tx) SetFileMeta(ctx context.Context, id int64, typ string, seq, batchID int64) error {
	_, err := t.Exec(ctx, `UPDATE files SET type = ?, seq = ?, batch_id = ?, updated_at = ? WHERE id = ?`, typ, seq, batchID, ts(t.Now()), id)
	return err
}

// FileByID returns one file.
func (d *DB) FileByID(ctx context.Context, id int64) (*File, error) {
	f, err := scanFile(d.QueryRow(ctx, `SELECT `+fileCols+` FROM files WHERE id = ?`, id))
	return f, notFound(err, fmt.Sprintf("file %d", id))
}

// FileByName returns the latest file of that name and direction.
func (d *DB) FileByName(ctx context.Context, direction, name string) (*File, error) {
	f, err := scanFile(d.QueryRow(ctx, `SELECT `+fileCols+` FROM files WHERE direction = ? AND name = ? ORDER BY id DESC LIMIT 1`, direction, name))
	return f, notFound(err, "file "+name)
}

// Files lists files, newest first, optionally of one status.
func (d *DB) Files(ctx context.Context, status string, limit int) ([]*File, error) {
	return d.FilesPage(ctx, status, 0, limit)
}

// NextSeq allocates the next sequence number we send for (sender,
// receiver, format).
func (t *Tx) NextSeq(ctx context.Context, sender, receiver, format string) (int64, error) {
	var last int64
	err := t.QueryRow(ctx, `SELECT last FROM sequences WHERE sender = ? AND receiver = ? AND format = ?`, sender, receiver, format).Scan(&last)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		last = 0
		_, err = t.Exec(ctx, `INSERT INTO sequences (sender, receiver, format, last) VALUES (?, ?, ?, 1)`, sender, receiver, format)
	case err == nil:
		_, err = t.Exec(ctx, `UPDATE sequences SET last = ? WHERE sender = ? AND receiver = ? AND format = ?`, last+1, sender, receiver, format)
	}
	return last + 1, err
}

// SeqProblem says what is wrong with an incoming sequence number.
type SeqProblem struct {
	Want, Got int64
}

func (p *SeqProblem) Error() string {
	if p.Got < p.Want {
		return fmt.Sprintf("sequence number %d repeats (expected %d)", p.Got, p.Want)
	}
	return fmt.Sprintf("sequence number %d leaves a gap (expected %d)", p.Got, p.Want)
}

// CheckSeq compares an incoming file's sequence number with the last one
// accepted from (sender, receiver, format); nil when it is the next.
func (t *Tx) CheckSeq(ctx context.Context, sender, receiver, format string, got int64) error {
	var last int64
	err := t.QueryRow(ctx, `SELECT last FROM sequences WHERE sender = ? AND receiver = ? AND format = ?`, sender, receiver, format).Scan(&last)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return err
	}
	if got != last+1 {
		return &SeqProblem{Want: last + 1, Got: got}
	}
	return nil
}

// AcceptSeq records an incoming sequence number as the last accepted.
func (t *Tx) AcceptSeq(ctx context.Context, sender, receiver, format string, seq int64) error {
	res, err := t.Exec(ctx, `UPDATE sequences SET last = ? WHERE sender = ? AND receiver = ? AND format = ? AND last < ?`, seq, sender, receiver, format, seq)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		_, err = t.Exec(ctx, `INSERT INTO sequences (sender, receiver, format, last) VALUES (?, ?, ?, ?) ON CONFLICT (sender, receiver, format) DO NOTHING`, sender, receiver, format, seq)
	}
	return err
}
