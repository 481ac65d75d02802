package ledger

import (
	"context"
	"time"
)

// Output states.
const (
	OutPlanned   = "planned"   // decided in the work's transaction
	OutWritten   = "written"   // rendered and encrypted into the data folder
	OutDelivered = "delivered" // put on the partner's drop
)

// Output is a file a unit of work produces. It is planned in the same
// transaction as the ledger changes it reports, so that a rerun renders
// and delivers it exactly once, under the same name.
type Output struct {
	ID         int64
	Job        string
	Source     string // the unit of work: file:N or batch:N
	Renderer   string // how to render it
	Partner    string // local partner name
	Type       string // file type
	BatchID    int64
	Name       string
	Seq        int64
	InReplyTo  string
	InReplySHA string
	Note       string // e.g. why an input was refused
	State      string
	Path       string
	SHA256     string
	Size       int64
	Created    time.Time
}

const outCols = `id, job, source, renderer, partner, type, batch_id, name, seq, in_reply_to, in_reply_sha, note, state, path, sha256, size, created_at`

func scanOut(sc interface{ Scan(...any) error }) (*Output, error) {
	o := &Output{}
	var c string
	if err := sc.Scan(&o.ID, &o.Job, &o.Source, &o.Renderer, &o.Partner, &o.Type, &o.BatchID, &o.Name, &o.Seq, &o.InReplyTo, &o.InReplySHA, &o.Note, &o.State, &o.Path, &o.SHA256, &o.Size, &c); err != nil {
		return nil, err
	}
	o.Created, _ = ParseTime(c)
	return o, nil
}

// PlanOutput records an output to produce. Planning the same (source,
// renderer, partner) again returns the existing row.
func (t *Tx) PlanOutput(ctx context.Context, o *Output) (*Output, error) {
	got, err := scanOut(t.QueryRow(ctx, `SELECT `+outCols+` FROM outputs WHERE source = ? AND renderer = ? AND partner = ?`, o.Source, o.Renderer, o.Partner))
	if err == nil {
		return got, nil
	}
	now := ts(t.Now())
	err = t.QueryRow(ctx, `INSERT INTO outputs (job, source, renderer, partner, type, batch_id, name, seq, in_reply_to, in_reply_sha, note, state, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
		o.Job, o.Source, o.Renderer, o.Partner, o.Type, o.BatchID, o.Name, o.Seq, o.InReplyTo, o.InReplySHA, o.Note, OutPlanned, now, now).Scan(&o.ID)
	if err != nil {
		return nil, err
	}
	o.State = OutPlanned
	o.Created, _ = ParseTime(now)
	return o, nil
}

// SetOutputWritten records where a rendered output is.
func (d *DB) SetOutputWritten(ctx context.Context, id int64, path, sha string, size int64) error {
	return d.InTx(ctx, func(tx *Tx) error {
		_, err := tx.Exec(ctx, `UPDATE outputs SET state = ?, path = ?, sha256 = ?, size = ?, updated_at = ? WHERE id = ?`, OutWritten, path, sha, size, ts(d.Now()), id)
		return err
	})
}

// SetOutputDelivered records a delivered output and its file.
func (d *DB) SetOutputDelivered(ctx context.Context, o *Output) error {
	return d.InTx(ctx, func(tx *Tx) error {
		if _, err := tx.Exec(ctx, `UPDATE outputs SET state = ?, updated_at = ? WHERE id = ? AND state <> ?`, OutDelivered, ts(d.Now()), o.ID, OutDelivered); err != nil {
			return err
		}
		_, err := tx.RecordOutFile(ctx, &File{Partner: o.Partner, Name: o.Name, Type: o.Type, SHA256: o.SHA256, Size: o.Size, Seq: o.Seq, Status: FileDelivered, Job: o.Job, BatchID: o.BatchID})
		return err
	})
}

// Outputs lists the outputs of a source not yet in state (or all when
// state is "").
func (d *DB) Outputs(ctx context.Context, source string) ([]*Output, error) {
	rows, err := d.Query(ctx, `SELECT `+outCols+` FROM outputs WHERE source = ? ORDER BY id`, source)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*Output
	for rows.Next() {
		o, err := scanOut(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, o)
	}
	return out, rows.Err()
}

// PendingOutputs lists outputs planned or written but not delivered.
func (d *DB) PendingOutputs(ctx context.Context, job string) ([]*Output, error) {
	rows, err := d.Query(ctx, `SELECT `+outCols+` FROM outputs WHERE state <> ? AND (? = '' OR job = ?) ORDER BY id`, OutDelivered, job, job)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*Output
	for rows.Next() {
		o, err := scanOut(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, o)
	}
	return out, rows.Err()
}

// SentFile reports whether we delivered a file of that name and SHA-256.
func (d *DB) SentFile(ctx context.Context, name, sha string) bool {
	var n int
	err := d.QueryRow(ctx, `SELECT COUNT(*) FROM files WHERE direction = 'out' AND name = ? AND sha256 = ?`, name, sha).Scan(&n)
	return err == nil && n > 0
}

// LastSeq returns the last sequence number accepted from sender.
func (d *DB) LastSeq(ctx context.Context, sender, receiver, format string) (int64, bool) {
	var last int64
	err := d.QueryRow(ctx, `SELECT last FROM sequences WHERE sender = ? AND receiver = ? AND format = ?`, sender, receiver, format).Scan(&last)
	return last, err == nil
}
