package ledger

import (
	"context"
	"time"
)

// The read functions below serve the status page: aggregates a query each,
// answered from indexes (migration 8), and lists read a page at a time
// after a key, so that a ledger of a million cards answers as fast as a
// small one. None of them writes.

// CardTally is the number of cards in one state with one recipient and
// source (a donor's cards move to a recipient; a recipient's came from a
// donor, an operator's own from a vendor file).
type CardTally struct {
	Recipient, Source, State string
	N                        int
}

// CardTallies counts cards by recipient, source and state.
func (d *DB) CardTallies(ctx context.Context) ([]CardTally, error) {
	rows, err := d.Query(ctx, `SELECT recipient, source, state, COUNT(*) FROM cards GROUP BY recipient, source, state`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []CardTally
	for rows.Next() {
		var t CardTally
		if err := rows.Scan(&t.Recipient, &t.Source, &t.State, &t.N); err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, rows.Err()
}

// MessageTally is the number of OTA messages of one kind in one state;
// Overdue of them were sent and are past their deadline.
type MessageTally struct {
	Kind, State string
	N, Overdue  int
}

// MessageTallies counts OTA messages by kind and state, and those sent
// whose PoR deadline passed before now.
func (d *DB) MessageTallies(ctx context.Context, now time.Time) ([]MessageTally, error) {
	rows, err := d.Query(ctx, `SELECT kind, state, COUNT(*), SUM(CASE WHEN state = 'sent' AND deadline <> '' AND deadline < ? THEN 1 ELSE 0 END)
		FROM ota_messages GROUP BY state, kind`, ts(now))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []MessageTally
	for rows.Next() {
		var t MessageTally
		if err := rows.Scan(&t.Kind, &t.State, &t.N, &t.Overdue); err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, rows.Err()
}

// VerdictTally is how many messages of a kind ended in one state with one
// reason (the PoR's verdict as the report step worded it).
type VerdictTally struct {
	Kind, State, Detail string
	N                   int
}

// FailureVerdicts lists the reasons of failed and unknown messages, the
// most frequent first, at most limit of them. Confirmed messages are
// counted by MessageTallies: their details name each card's new EF_IMSI.
func (d *DB) FailureVerdicts(ctx context.Context, limit int) ([]VerdictTally, error) {
	rows, err := d.Query(ctx, `SELECT kind, state, detail, COUNT(*) FROM ota_messages WHERE state IN ('failed', 'unknown')
		GROUP BY kind, state, detail ORDER BY COUNT(*) DESC, kind, state, detail LIMIT ?`, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []VerdictTally
	for rows.Next() {
		var v VerdictTally
		if err := rows.Scan(&v.Kind, &v.State, &v.Detail, &v.N); err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// FileTally is the number of files of one partner, direction and status.
type FileTally struct {
	Partner, Direction, Status string
	N                          int
}

// FileTallies counts files by partner, direction and status.
func (d *DB) FileTallies(ctx context.Context) ([]FileTally, error) {
	rows, err := d.Query(ctx, `SELECT partner, direction, status, COUNT(*) FROM files GROUP BY partner, direction, status ORDER BY partner, direction, status`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []FileTally
	for rows.Next() {
		var t FileTally
		if err := rows.Scan(&t.Partner, &t.Direction, &t.Status, &t.N); err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, rows.Err()
}

// StateChange is how many cards went from one state to another within
// one hour (Hour is the hour's start, UTC).
type StateChange struct {
	Hour     time.Time
	From, To string
	N        int
}

// StateChanges sums the card events after event afterID by hour and
// transition (events that keep the state are left out), and returns the
// last event ID it read: a caller keeps the sums and asks only for what
// is new. Events are numbered in commit order, one writer at a time: on
// SQLite by its write lock, on PostgreSQL by the advisory lock every write
// transaction takes first and that is released only once its commit is
// visible (the identity column hands out IDs without per-session caching).
// An event whose ID is below one already read is therefore never committed
// later.
func (d *DB) StateChanges(ctx context.Context, afterID int64) ([]StateChange, int64, error) {
	var last int64
	if err := d.QueryRow(ctx, `SELECT COALESCE(MAX(id), 0) FROM card_events`).Scan(&last); err != nil {
		return nil, 0, err
	}
	if last <= afterID {
		return nil, afterID, nil
	}
	rows, err := d.Query(ctx, `SELECT substr(at, 1, 13), from_state, to_state, COUNT(*) FROM card_events
		WHERE id > ? AND id <= ? AND from_state <> to_state GROUP BY substr(at, 1, 13), from_state, to_state`, afterID, last)
	if err != nil {
		return nil, 0, err
	}
	defer rows.Close()
	var out []StateChange
	for rows.Next() {
		var c StateChange
		var hour string
		if err := rows.Scan(&hour, &c.From, &c.To, &c.N); err != nil {
			return nil, 0, err
		}
		h, err := time.Parse("2006-01-02T15", hour)
		if err != nil {
			continue // not a time the ledger wrote
		}
		c.Hour = h
		out = append(out, c)
	}
	return out, last, rows.Err()
}

// CardsPage lists up to limit cards in state (every state when empty)
// after ICCID after, in ICCID order.
func (d *DB) CardsPage(ctx context.Context, state, after string, limit int) ([]*Card, error) {
	q := `SELECT ` + cardCols + ` FROM cards WHERE iccid > ? ORDER BY iccid LIMIT ?`
	args := []any{after, limit}
	if state != "" {
		q = `SELECT ` + cardCols + ` FROM cards WHERE state = ? AND iccid > ? ORDER BY iccid LIMIT ?`
		args = []any{state, after, limit}
	}
	rows, err := d.Query(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*Card
	for rows.Next() {
		c, err := scanCard(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// MessagesOfCard lists a card's OTA messages, oldest first.
func (d *DB) MessagesOfCard(ctx context.Context, iccid string) ([]*Message, error) {
	return d.messages(ctx, `SELECT `+msgCols+` FROM ota_messages WHERE iccid = ? ORDER BY id`, iccid)
}

// MessagesOfBatchPage lists up to limit messages of a batch after message
// afterID, in ID order.
func (d *DB) MessagesOfBatchPage(ctx context.Context, batchID, afterID int64, limit int) ([]*Message, error) {
	return d.messages(ctx, `SELECT `+msgCols+` FROM ota_messages WHERE batch_id = ? AND id > ? ORDER BY id LIMIT ?`, batchID, afterID, limit)
}

func (d *DB) messages(ctx context.Context, q string, args ...any) ([]*Message, error) {
	rows, err := d.Query(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*Message
	for rows.Next() {
		m, err := scanMsg(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	return out, rows.Err()
}

// RecordsOfCard lists the batch records that name a card, oldest batch
// first, at most limit.
func (d *DB) RecordsOfCard(ctx context.Context, iccid string, limit int) ([]BatchRecord, error) {
	return d.records(ctx, `SELECT `+recordCols+` FROM batch_records WHERE iccid = ? ORDER BY batch_id, line LIMIT ?`, iccid, limit)
}

// RecordsPage lists up to limit records of a batch after line afterLine,
// only those of status when it is not empty.
func (d *DB) RecordsPage(ctx context.Context, batchID int64, status string, afterLine, limit int) ([]BatchRecord, error) {
	if status == "" {
		return d.records(ctx, `SELECT `+recordCols+` FROM batch_records WHERE batch_id = ? AND line > ? ORDER BY line LIMIT ?`, batchID, afterLine, limit)
	}
	return d.records(ctx, `SELECT `+recordCols+` FROM batch_records WHERE batch_id = ? AND line > ? AND status = ? ORDER BY line LIMIT ?`, batchID, afterLine, status, limit)
}

// RecordTallies counts a batch's records by status.
func (d *DB) RecordTallies(ctx context.Context, batchID int64) (map[string]int, error) {
	return d.tally(ctx, `SELECT status, COUNT(*) FROM batch_records WHERE batch_id = ? GROUP BY status`, batchID)
}

func (d *DB) records(ctx context.Context, q string, args ...any) ([]BatchRecord, error) {
	rows, err := d.Query(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []BatchRecord
	for rows.Next() {
		r, err := scanRecord(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// BatchesPage lists up to limit batches before batch ID before (0: the
// newest), newest first, only those of status when it is not empty.
func (d *DB) BatchesPage(ctx context.Context, status string, before int64, limit int) ([]*Batch, error) {
	if before <= 0 {
		before = 1<<62 - 1
	}
	rows, err := d.Query(ctx, `SELECT `+batchCols+` FROM batches WHERE id < ? AND (? = '' OR status = ?) ORDER BY id DESC LIMIT ?`, before, status, status, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*Batch
	for rows.Next() {
		b, err := scanBatch(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, b)
	}
	return out, rows.Err()
}

// FilesPage lists up to limit files before file ID before (0: the
// newest), newest first, only those of status when it is not empty.
func (d *DB) FilesPage(ctx context.Context, status string, before int64, limit int) ([]*File, error) {
	if before <= 0 {
		before = 1<<62 - 1
	}
	rows, err := d.Query(ctx, `SELECT `+fileCols+` FROM files WHERE id < ? AND (? = '' OR status = ?) ORDER BY id DESC LIMIT ?`, before, status, status, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*File
	for rows.Next() {
		f, err := scanFile(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, f)
	}
	return out, rows.Err()
}

// OverdueMessageCount counts the sent messages whose PoR deadline passed
// before now, and the earliest of those deadlines.
func (d *DB) OverdueMessageCount(ctx context.Context, now time.Time) (int, time.Time, error) {
	var n int
	var oldest string
	err := d.QueryRow(ctx, `SELECT COUNT(*), COALESCE(MIN(deadline), '') FROM ota_messages WHERE state = 'sent' AND deadline <> '' AND deadline < ?`, ts(now)).Scan(&n, &oldest)
	if err != nil || n == 0 {
		return 0, time.Time{}, err
	}
	t, _ := ParseTime(oldest)
	return n, t, nil
}

// OutputByID returns one output (an OTA message's file_id names the
// output its batch went out in).
func (d *DB) OutputByID(ctx context.Context, id int64) (*Output, error) {
	o, err := scanOut(d.QueryRow(ctx, `SELECT `+outCols+` FROM outputs WHERE id = ?`, id))
	return o, notFound(err, "output")
}
