package ledger

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// Batch statuses.
const (
	BatchOpen   = "open"
	BatchDone   = "done"
	BatchFailed = "failed"
)

// Batch is one unit of work of a job: usually one input file.
type Batch struct {
	ID                          int64
	Job, Partner, Kind          string
	FileID                      int64
	Status                      string
	Records, Accepted, Rejected int
	Reason                      string
	Created, Updated            time.Time
}

// CreateBatch opens a batch.
func (t *Tx) CreateBatch(ctx context.Context, b *Batch) (int64, error) {
	now := ts(t.Now())
	var id int64
	err := t.QueryRow(ctx, `INSERT INTO batches (job, partner, kind, file_id, status, records, accepted, rejected, reason, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, 0, 0, 0, '', ?, ?) RETURNING id`, b.Job, b.Partner, b.Kind, b.FileID, BatchOpen, now, now).Scan(&id)
	return id, err
}

// analyzedBatch is the number of records from which a finished batch
// has a server's planner learn the records table again.
const analyzedBatch = 10000

// FinishBatch records a batch's counts and status. A batch of many
// records (analyzedBatch) has a server's planner learn them (ANALYZE,
// in the transaction that wrote them): their outputs are read back a
// page at a time by (batch, line) once it commits, and a planner that
// still takes the table for what it held before scans and sorts every
// record left for each page.
func (t *Tx) FinishBatch(ctx context.Context, id int64, status string, records, accepted, rejected int, reason string) error {
	_, err := t.Exec(ctx, `UPDATE batches SET status = ?, records = ?, accepted = ?, rejected = ?, reason = ?, updated_at = ? WHERE id = ?`,
		status, records, accepted, rejected, reason, ts(t.Now()), id)
	if err != nil || records < analyzedBatch {
		return err
	}
	return t.analyze(ctx, "batch_records")
}

// BatchRecord is one record of a batch and what became of it.
type BatchRecord struct {
	BatchID int64
	Line    int
	ICCID   string
	IMSI    string
	Status  string
	Reason  string // a reason code
	Detail  string // for people (never a secret)
	Partner string // the partner the outcome goes to
	Data    string // step-specific (e.g. the cut-over date)
}

// PutBatchRecord stores (or replaces) one record's outcome.
func (t *Tx) PutBatchRecord(ctx context.Context, r BatchRecord) error {
	_, err := t.Exec(ctx, `INSERT INTO batch_records (batch_id, line, iccid, imsi, status, reason, detail, partner, data) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (batch_id, line) DO UPDATE SET iccid = excluded.iccid, imsi = excluded.imsi, status = excluded.status,
		reason = excluded.reason, detail = excluded.detail, partner = excluded.partner, data = excluded.data`,
		r.BatchID, r.Line, r.ICCID, r.IMSI, r.Status, r.Reason, r.Detail, r.Partner, r.Data)
	return err
}

// CountBatchRecords counts a batch's records for one partner ("" = all)
// and status ("" = all).
func (d *DB) CountBatchRecords(ctx context.Context, batchID int64, partner, status string) (int, error) {
	var n int
	err := d.QueryRow(ctx, `SELECT COUNT(*) FROM batch_records WHERE batch_id = ? AND (? = '' OR partner = ?) AND (? = '' OR status = ?)`,
		batchID, partner, partner, status, status).Scan(&n)
	return n, err
}

// BatchRecords calls fn for a batch's records of one partner ("" = all)
// and status ("" = all), in line order, reading in pages.
func (d *DB) BatchRecords(ctx context.Context, batchID int64, partner, status string, fn func(BatchRecord) error) error {
	return eachPage(ctx, d, func(last *BatchRecord) (string, []any) {
		after := -1 << 62
		if last != nil {
			after = last.Line
		}
		return batchRecordsPage(batchID, partner, status, after)
	}, scanRecord, fn)
}

// batchRecordsPage is the statement and arguments of a page of
// BatchRecords after line after.
func batchRecordsPage(batchID int64, partner, status string, after int) (string, []any) {
	return `SELECT ` + recordCols + ` FROM batch_records
			WHERE batch_id = ? AND (? = '' OR partner = ?) AND (? = '' OR status = ?) AND line > ? ORDER BY line LIMIT ` + fmt.Sprint(pageSize),
		[]any{batchID, partner, partner, status, status, after}
}

const recordCols = `batch_id, line, iccid, imsi, status, reason, detail, partner, data`

func scanRecord(sc *sql.Rows) (BatchRecord, error) {
	var r BatchRecord
	err := sc.Scan(&r.BatchID, &r.Line, &r.ICCID, &r.IMSI, &r.Status, &r.Reason, &r.Detail, &r.Partner, &r.Data)
	return r, err
}

const batchCols = `id, job, partner, kind, file_id, status, records, accepted, rejected, reason, created_at, updated_at`

func scanBatch(sc interface{ Scan(...any) error }) (*Batch, error) {
	b := &Batch{}
	var c, u string
	if err := sc.Scan(&b.ID, &b.Job, &b.Partner, &b.Kind, &b.FileID, &b.Status, &b.Records, &b.Accepted, &b.Rejected, &b.Reason, &c, &u); err != nil {
		return nil, err
	}
	b.Created, _ = ParseTime(c)
	b.Updated, _ = ParseTime(u)
	return b, nil
}

// Batch returns one batch.
func (d *DB) Batch(ctx context.Context, id int64) (*Batch, error) {
	b, err := scanBatch(d.QueryRow(ctx, `SELECT `+batchCols+` FROM batches WHERE id = ?`, id))
	return b, notFound(err, "batch")
}

// Batches lists batches, newest first, optionally of one status.
func (d *DB) Batches(ctx context.Context, status string, limit int) ([]*Batch, error) {
	return d.BatchesPage(ctx, status, 0, limit)
}

// QueryRowsBatch calls fn for a batch's records of one status, inside the
// transaction (the work that wrote them has not committed yet).
func (t *Tx) QueryRowsBatch(ctx context.Context, batchID int64, status string, fn func(BatchRecord)) error {
	rows, err := t.Query(ctx, `SELECT `+recordCols+` FROM batch_records WHERE batch_id = ? AND status = ? ORDER BY line`, batchID, status)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		r, err := scanRecord(rows)
		if err != nil {
			return err
		}
		fn(r)
	}
	return rows.Err()
}
