package ledger

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
)

// KeySet is one OTA key set of a card (keys themselves are secrets).
type KeySet struct {
	KeyIndex int // 3b pair index, 0 where not indexed
	KVN      int // key version number 1..15
	KIcAlg   string
	KIDAlg   string
	Counter  int64 // the highest counter value reserved so far
}

// PutKeySet stores a key set; an existing one keeps the higher counter.
func (t *Tx) PutKeySet(ctx context.Context, iccid string, k KeySet) error {
	_, err := t.Exec(ctx, `INSERT INTO key_sets (iccid, key_index, kvn, kic_alg, kid_alg, counter) VALUES (?, ?, ?, ?, ?, ?)
		ON CONFLICT (iccid, key_index, kvn) DO UPDATE SET kic_alg = excluded.kic_alg, kid_alg = excluded.kid_alg,
		counter = CASE WHEN excluded.counter > key_sets.counter THEN excluded.counter ELSE key_sets.counter END`,
		iccid, k.KeyIndex, k.KVN, k.KIcAlg, k.KIDAlg, k.Counter)
	return err
}

// KeySets lists a card's key sets.
func (t *Tx) KeySets(ctx context.Context, iccid string) ([]KeySet, error) {
	rows, err := t.Query(ctx, `SELECT key_index, kvn, kic_alg, kid_alg, counter FROM key_sets WHERE iccid = ? ORDER BY key_index, kvn`, iccid)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []KeySet
	for rows.Next() {
		var k KeySet
		if err := rows.Scan(&k.KeyIndex, &k.KVN, &k.KIcAlg, &k.KIDAlg, &k.Counter); err != nil {
			return nil, err
		}
		out = append(out, k)
	}
	return out, rows.Err()
}

// MaxCounter is the largest value a 5-octet OTA counter can hold; the card
// treats it as blocked.
const MaxCounter = 1<<40 - 1

// ErrCounterExhausted says a key set has no counter values left.
var ErrCounterExhausted = errors.New("OTA counter exhausted")

// ReserveCounter reserves the next counter value of a card's key set,
// stepping by step (1 normally, the configured jump after a counter-low
// answer). The value is durable once the transaction commits: a crash or a
// retry never uses it again.
func (t *Tx) ReserveCounter(ctx context.Context, iccid string, keyIndex, kvn int, step int64) (int64, error) {
	if step < 1 {
		step = 1
	}
	// One statement in the usual case; the reasons for no row (no such
	// key set, or the counter at its top) are told apart only then.
	var next int64
	err := t.QueryRow(ctx, `UPDATE key_sets SET counter = counter + ? WHERE iccid = ? AND key_index = ? AND kvn = ? AND counter + ? < ? RETURNING counter`,
		step, iccid, keyIndex, kvn, step, MaxCounter).Scan(&next)
	if err == nil {
		return next, nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return 0, err
	}
	var cur int64
	err = t.QueryRow(ctx, `SELECT counter FROM key_sets WHERE iccid = ? AND key_index = ? AND kvn = ?`, iccid, keyIndex, kvn).Scan(&cur)
	if err != nil {
		return 0, notFound(err, fmt.Sprintf("key set %d/%d of card %s", keyIndex, kvn, iccid))
	}
	return 0, fmt.Errorf("card %s key set %d: %w", iccid, kvn, ErrCounterExhausted)
}

// Message states.
const (
	MsgReserved  = "reserved"  // counter reserved, not yet in a delivered batch
	MsgSent      = "sent"      // in an ota-batch delivered to the SMSC
	MsgConfirmed = "confirmed" // PoR OK and the script did what it should
	MsgFailed    = "failed"    // PoR with an error, or the script failed
	MsgUnknown   = "unknown"   // no PoR by the deadline, or "more time"
)

// Message is one OTA message (one command packet, maybe several SMS).
type Message struct {
	ID        int64
	ICCID     string
	BatchID   int64
	Kind      string // update, reset, key-index, probe, rotate
	KeyIndex  int
	KVN       int
	Counter   int64
	TAR       string
	MSISDN    string
	ConcatRef int
	Attempt   int
	State     string
	Deadline  time.Time
	PoRStatus string
	Detail    string
	FileID    int64
	Created   time.Time
}

const msgCols = `id, iccid, batch_id, kind, key_index, kvn, counter, tar, msisdn, concat_ref, attempt, state, deadline, por_status, detail, file_id, created_at`

func scanMsg(sc interface{ Scan(...any) error }) (*Message, error) {
	m := &Message{}
	var ts msgTimes
	if err := sc.Scan(m.dest(&ts)...); err != nil {
		return nil, err
	}
	ts.set(m)
	return m, nil
}

// msgTimes are a message's time columns as read.
type msgTimes struct{ deadline, created string }

// dest is where a row of msgCols scans to.
func (m *Message) dest(ts *msgTimes) []any {
	return []any{&m.ID, &m.ICCID, &m.BatchID, &m.Kind, &m.KeyIndex, &m.KVN, &m.Counter, &m.TAR, &m.MSISDN, &m.ConcatRef, &m.Attempt, &m.State,
		&ts.deadline, &m.PoRStatus, &m.Detail, &m.FileID, &ts.created}
}

func (ts *msgTimes) set(m *Message) {
	if ts.deadline != "" {
		m.Deadline, _ = ParseTime(ts.deadline)
	}
	m.Created, _ = ParseTime(ts.created)
}

// InsertMessage records a message whose counter was reserved in the same
// transaction.
func (t *Tx) InsertMessage(ctx context.Context, m *Message) (int64, error) {
	now := ts(t.Now())
	dl := ""
	if !m.Deadline.IsZero() {
		dl = ts(m.Deadline)
	}
	var id int64
	err := t.QueryRow(ctx, `INSERT INTO ota_messages (iccid, batch_id, kind, key_index, kvn, counter, tar, msisdn, concat_ref, attempt, state, deadline, por_status, detail, file_id, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, '', '', ?, ?, ?) RETURNING id`,
		m.ICCID, m.BatchID, m.Kind, m.KeyIndex, m.KVN, m.Counter, m.TAR, m.MSISDN, m.ConcatRef, m.Attempt, m.State, dl, m.FileID, now, now).Scan(&id)
	return id, err
}

// Outstanding returns the card's message that still waits for an answer
// (reserved or sent), or nil.
func (t *Tx) Outstanding(ctx context.Context, iccid string) (*Message, error) {
	m, err := scanMsg(t.QueryRow(ctx, `SELECT `+msgCols+` FROM ota_messages WHERE iccid = ? AND state IN ('reserved', 'sent') ORDER BY id DESC LIMIT 1`, iccid))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	return m, err
}

// MatchMessage finds the message a PoR answers, by (MSISDN, TAR, counter).
func (t *Tx) MatchMessage(ctx context.Context, msisdn, tar string, counter int64) (*Message, error) {
	m, err := scanMsg(t.QueryRow(ctx, `SELECT `+msgCols+` FROM ota_messages WHERE msisdn = ? AND tar = ? AND counter = ? ORDER BY id DESC LIMIT 1`, msisdn, tar, counter))
	return m, notFound(err, fmt.Sprintf("message to %s TAR %s counter %d", msisdn, tar, counter))
}

// MessagesIn returns the messages to an MSISDN in the given state, the
// newest first. The state is checked in Go, not in SQL: with it there,
// SQLite searches by the state-led index (every message in that state)
// instead of the one led by the MSISDN (a card has a handful).
func (t *Tx) MessagesIn(ctx context.Context, msisdn, state string) ([]*Message, error) {
	rows, err := t.QueryAll(ctx, `SELECT `+msgCols+` FROM ota_messages WHERE msisdn = ? ORDER BY id DESC`, msisdn)
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
		if m.State == state {
			out = append(out, m)
		}
	}
	return out, rows.Err()
}

// Message returns one message.
func (t *Tx) Message(ctx context.Context, id int64) (*Message, error) {
	m, err := scanMsg(t.QueryRow(ctx, `SELECT `+msgCols+` FROM ota_messages WHERE id = ?`, id))
	return m, notFound(err, fmt.Sprintf("message %d", id))
}

// SetMessageState records a message's outcome.
func (t *Tx) SetMessageState(ctx context.Context, id int64, state, porStatus, detail string) error {
	_, err := t.Exec(ctx, `UPDATE ota_messages SET state = ?, por_status = ?, detail = ?, updated_at = ? WHERE id = ?`, state, porStatus, detail, ts(t.Now()), id)
	return err
}

// MarkBatchSent moves a batch's reserved messages to sent, with file and
// deadline.
func (t *Tx) MarkBatchSent(ctx context.Context, batchID, fileID int64, deadline time.Time) error {
	_, err := t.Exec(ctx, `UPDATE ota_messages SET state = 'sent', file_id = ?, deadline = ?, updated_at = ? WHERE batch_id = ? AND state = 'reserved'`,
		fileID, ts(deadline), ts(t.Now()), batchID)
	return err
}

// MarkBatchSentWhere is MarkBatchSent for the batch's reserved messages
// that also meet cond (an SQL condition on ota_messages with its args).
func (t *Tx) MarkBatchSentWhere(ctx context.Context, batchID, fileID int64, deadline time.Time, cond string, args ...any) error {
	_, err := t.Exec(ctx, `UPDATE ota_messages SET state = 'sent', file_id = ?, deadline = ?, updated_at = ? WHERE batch_id = ? AND state = 'reserved' AND `+cond,
		append([]any{fileID, ts(deadline), ts(t.Now()), batchID}, args...)...)
	return err
}

// SentDeadline is the PoR deadline of the messages, among a batch's,
// whose cards have the profile and cut-over date.
type SentDeadline struct {
	Profile, Cutover string
	Deadline         time.Time
}

// MarkBatchSentBy is MarkBatchSent where some messages' deadlines depend
// on their cards' profile and cut-over date (by): one pass over the
// batch's reserved messages, each card looked up once; a message whose
// card matches none of by takes deadline.
func (t *Tx) MarkBatchSentBy(ctx context.Context, batchID, fileID int64, deadline time.Time, by []SentDeadline) error {
	if len(by) == 0 {
		return t.MarkBatchSent(ctx, batchID, fileID, deadline)
	}
	var cases strings.Builder
	args := []any{fileID, ts(t.Now())}
	for _, d := range by {
		cases.WriteString(" WHEN c.profile = ? AND c.cutover = ? THEN ?")
		args = append(args, d.Profile, d.Cutover, ts(d.Deadline))
	}
	args = append(args, ts(deadline), batchID)
	_, err := t.Exec(ctx, `UPDATE ota_messages SET state = 'sent', file_id = ?, updated_at = ?,
		deadline = COALESCE((SELECT CASE`+cases.String()+` END FROM cards c WHERE c.iccid = ota_messages.iccid), ?)
		WHERE batch_id = ? AND state = 'reserved'`, args...)
	return err
}

// MessagesOfBatch calls fn for each message of a batch in id order.
func (d *DB) MessagesOfBatch(ctx context.Context, batchID int64, fn func(*Message) error) error {
	return eachPage(ctx, d, func(last **Message) (string, []any) {
		var after int64
		if last != nil {
			after = (*last).ID
		}
		return `SELECT ` + msgCols + ` FROM ota_messages WHERE batch_id = ? AND id > ? ORDER BY id LIMIT 1000`, []any{batchID, after}
	}, func(r *sql.Rows) (*Message, error) { return scanMsg(r) }, fn)
}

// OverdueMessages lists sent messages whose deadline passed.
func (d *DB) OverdueMessages(ctx context.Context, now time.Time) ([]*Message, error) {
	return d.messages(ctx, `SELECT `+msgCols+` FROM ota_messages WHERE state = 'sent' AND deadline <> '' AND deadline < ? ORDER BY id`, ts(now))
}

// CountMessages counts messages per state.
func (d *DB) CountMessages(ctx context.Context) (map[string]int, error) {
	return d.countByState(ctx, "ota_messages")
}
