package ledger

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"time"
)

// SMPP submission states of a message (smpp_messages.state). The PoR
// verdict stays in ota_messages.state.
const (
	SubQueued      = "queued"      // waiting to be due and submitted
	SubSubmitting  = "submitting"  // recorded before its submit_sm went out
	SubSubmitted   = "submitted"   // every segment accepted (message_id known)
	SubDelivered   = "delivered"   // every segment's receipt says delivered
	SubUndelivered = "undelivered" // a receipt says UNDELIV, EXPIRED, REJECTD or DELETED
	SubFailed      = "failed"      // the SMSC refused a segment (submit_sm_resp error)
	SubUnknown     = "unknown"     // a segment went out and its response never came
	SubExpired     = "expired"     // not submitted within its validity
)

// Segment states (smpp_segments.state).
const (
	SegSubmitting  = "submitting"
	SegSubmitted   = "submitted"
	SegRejected    = "rejected"
	SegUnknown     = "unknown"
	SegUnsent      = "unsent"
	SegDelivered   = "delivered"
	SegUndelivered = "undelivered"
)

// SMPPMessage is a message queued for an SMSC over SMPP.
type SMPPMessage struct {
	MessageID int64
	Partner   string
	State     string
	Night     int
	Segments  int
	Created   time.Time
}

// QueueSMPP queues a batch's reserved messages for the SMPP partner; the
// per-night cap puts message i of the batch into night i/cap.
func (t *Tx) QueueSMPP(ctx context.Context, partner string, batchID int64, perNight int) (int64, error) {
	if perNight <= 0 {
		perNight = 1 << 30
	}
	now := ts(t.Now())
	res, err := t.Exec(ctx, `INSERT INTO smpp_messages (message_id, partner, state, night, segments, detail, created_at, updated_at)
		SELECT id, ?, ?, (ROW_NUMBER() OVER (ORDER BY id) - 1) / ?, 0, '', ?, ? FROM ota_messages o
		WHERE batch_id = ? AND state = 'reserved' AND NOT EXISTS (SELECT 1 FROM smpp_messages s WHERE s.message_id = o.id)`,
		partner, SubQueued, perNight, now, now, batchID)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// QueuedSMPP lists up to n queued messages of a partner in order.
func (t *Tx) QueuedSMPP(ctx context.Context, partner string, after int64, n int) ([]SMPPMessage, error) {
	rows, err := t.Query(ctx, `SELECT message_id, partner, state, night, segments, created_at FROM smpp_messages
		WHERE partner = ? AND state = ? AND message_id > ? ORDER BY message_id LIMIT ?`, partner, SubQueued, after, n)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []SMPPMessage
	for rows.Next() {
		var m SMPPMessage
		var created string
		if err := rows.Scan(&m.MessageID, &m.Partner, &m.State, &m.Night, &m.Segments, &created); err != nil {
			return nil, err
		}
		m.Created, _ = ParseTime(created)
		out = append(out, m)
	}
	return out, rows.Err()
}

// SMPPMessageOf returns a message's submission row.
func (t *Tx) SMPPMessageOf(ctx context.Context, id int64) (*SMPPMessage, error) {
	var m SMPPMessage
	var created string
	err := t.QueryRow(ctx, `SELECT message_id, partner, state, night, segments, created_at FROM smpp_messages WHERE message_id = ?`, id).
		Scan(&m.MessageID, &m.Partner, &m.State, &m.Night, &m.Segments, &created)
	if err != nil {
		return nil, notFound(err, "SMPP submission of message")
	}
	m.Created, _ = ParseTime(created)
	return &m, nil
}

// MoveSMPPState moves a message from one submission state to another and
// reports whether it was in the first (another run may have moved it).
func (t *Tx) MoveSMPPState(ctx context.Context, id int64, from, to, detail string) (bool, error) {
	res, err := t.Exec(ctx, `UPDATE smpp_messages SET state = ?, detail = ?, updated_at = ? WHERE message_id = ? AND state = ?`, to, detail, ts(t.Now()), id, from)
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// SetSMPPState records a message's submission state.
func (t *Tx) SetSMPPState(ctx context.Context, id int64, state, detail string) error {
	_, err := t.Exec(ctx, `UPDATE smpp_messages SET state = ?, detail = ?, updated_at = ? WHERE message_id = ?`, state, detail, ts(t.Now()), id)
	return err
}

// StartSMPPSubmit records, before anything is sent, that a message's
// segments are being submitted: the message counts as sent from now on
// (its PoR deadline runs), so a crash never lets it be sent again under
// the same counter.
func (t *Tx) StartSMPPSubmit(ctx context.Context, id int64, segments int, deadline time.Time) error {
	now := ts(t.Now())
	if _, err := t.Exec(ctx, `UPDATE smpp_messages SET state = ?, segments = ?, updated_at = ? WHERE message_id = ?`, SubSubmitting, segments, now, id); err != nil {
		return err
	}
	for i := 1; i <= segments; i++ {
		if _, err := t.Exec(ctx, `INSERT INTO smpp_segments (message_id, seq, state, smsc_id, status, receipt, updated_at) VALUES (?, ?, ?, '', 0, '', ?)
			ON CONFLICT (message_id, seq) DO UPDATE SET state = excluded.state, smsc_id = '', status = 0, receipt = '', updated_at = excluded.updated_at`,
			id, i, SegSubmitting, now); err != nil {
			return err
		}
	}
	_, err := t.Exec(ctx, `UPDATE ota_messages SET state = 'sent', deadline = ?, updated_at = ? WHERE id = ? AND state = 'reserved'`, ts(deadline), now, id)
	return err
}

// RequeueSMPP puts a message none of whose segments went out back in the
// queue.
func (t *Tx) RequeueSMPP(ctx context.Context, id int64) error {
	now := ts(t.Now())
	if _, err := t.Exec(ctx, `DELETE FROM smpp_segments WHERE message_id = ?`, id); err != nil {
		return err
	}
	if _, err := t.Exec(ctx, `UPDATE smpp_messages SET state = ?, segments = 0, updated_at = ? WHERE message_id = ?`, SubQueued, now, id); err != nil {
		return err
	}
	_, err := t.Exec(ctx, `UPDATE ota_messages SET state = 'reserved', deadline = '', updated_at = ? WHERE id = ? AND state = 'sent'`, now, id)
	return err
}

// SetSegment records a segment's submit outcome.
func (t *Tx) SetSegment(ctx context.Context, id int64, seq int, state, smscID string, status uint32) error {
	_, err := t.Exec(ctx, `UPDATE smpp_segments SET state = ?, smsc_id = ?, status = ?, updated_at = ? WHERE message_id = ? AND seq = ?`,
		state, smscID, int64(status), ts(t.Now()), id, seq)
	return err
}

// SegmentStates lists a message's segment states in order.
func (t *Tx) SegmentStates(ctx context.Context, id int64) ([]string, error) {
	rows, err := t.Query(ctx, `SELECT state FROM smpp_segments WHERE message_id = ? ORDER BY seq`, id)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, rows.Err()
}

// SegmentBySMSCID finds the segment the SMSC named in a receipt, among
// the partner's messages.
func (t *Tx) SegmentBySMSCID(ctx context.Context, partner, smscID string) (id int64, seq int, err error) {
	err = t.QueryRow(ctx, `SELECT g.message_id, g.seq FROM smpp_segments g JOIN smpp_messages m ON m.message_id = g.message_id
		WHERE g.smsc_id = ? AND m.partner = ? ORDER BY g.message_id DESC LIMIT 1`, smscID, partner).Scan(&id, &seq)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, 0, ErrNotFound
	}
	return id, seq, err
}

// SetSegmentReceipt records a receipt on a segment.
func (t *Tx) SetSegmentReceipt(ctx context.Context, id int64, seq int, state, receipt string) error {
	_, err := t.Exec(ctx, `UPDATE smpp_segments SET state = ?, receipt = ?, updated_at = ? WHERE message_id = ? AND seq = ?`,
		state, receipt, ts(t.Now()), id, seq)
	return err
}

// SegmentsSubmitting lists the partner's messages with a segment still
// recorded as being submitted (a run cut short between sending and
// recording the response).
func (t *Tx) SegmentsSubmitting(ctx context.Context, partner string) ([]int64, error) {
	rows, err := t.Query(ctx, `SELECT DISTINCT g.message_id FROM smpp_segments g JOIN smpp_messages m ON m.message_id = g.message_id
		WHERE g.state = ? AND m.partner = ? ORDER BY g.message_id`, SegSubmitting, partner)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		out = append(out, id)
	}
	return out, rows.Err()
}

// MarkSubmittingUnknown turns a message's segments still being submitted
// into unknown outcomes.
func (t *Tx) MarkSubmittingUnknown(ctx context.Context, id int64) error {
	_, err := t.Exec(ctx, `UPDATE smpp_segments SET state = ?, updated_at = ? WHERE message_id = ? AND state = ?`, SegUnknown, ts(t.Now()), id, SegSubmitting)
	return err
}

// SMPPEvent is one deliver_sm (or submit outcome) as journaled.
type SMPPEvent struct {
	Partner, Kind, MSISDN, SMSCID, State, Data string
	MessageID                                  int64
	Outcome                                    string
}

// AddSMPPEvent journals an event and returns its ID.
func (t *Tx) AddSMPPEvent(ctx context.Context, e SMPPEvent) (int64, error) {
	var id int64
	err := t.QueryRow(ctx, `INSERT INTO smpp_events (partner, kind, msisdn, smsc_id, state, data, message_id, outcome, created_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`, e.Partner, e.Kind, e.MSISDN, e.SMSCID, e.State, e.Data, e.MessageID, e.Outcome, ts(t.Now())).Scan(&id)
	return id, err
}

// SetSMPPEventOutcome records what an event led to.
func (t *Tx) SetSMPPEventOutcome(ctx context.Context, id, messageID int64, outcome string) error {
	_, err := t.Exec(ctx, `UPDATE smpp_events SET message_id = ?, outcome = ? WHERE id = ?`, messageID, outcome, id)
	return err
}

// SMPPAwaited counts the partner's messages that went to the SMSC and
// still wait for their PoR (or their deadline).
func (d *DB) SMPPAwaited(ctx context.Context, partner string) (int, error) {
	var n int
	err := d.QueryRow(ctx, `SELECT COUNT(*) FROM smpp_messages s JOIN ota_messages o ON o.id = s.message_id
		WHERE s.partner = ? AND o.state = 'sent' AND s.state IN (?, ?, ?, ?)`, partner, SubSubmitting, SubSubmitted, SubDelivered, SubUnknown).Scan(&n)
	return n, err
}

// CountSMPP counts a partner's submissions by state.
func (d *DB) CountSMPP(ctx context.Context) (map[string]int, error) {
	return d.countByState(ctx, "smpp_messages")
}

// QueuedSMPPPage lists up to size queued messages of a partner after
// message ID after, each with its card and the named wrapped secrets of
// its key index: one query a page.
func (t *Tx) QueuedSMPPPage(ctx context.Context, partner string, after int64, size int, names []string) ([]SMPPMessage, []BatchMessage, error) {
	cols, joins, nameArgs := secretJoins(names, "m.iccid", "m.key_index")
	query := `SELECT q.night, q.created_at, m.id, m.iccid, m.batch_id, m.kind, m.key_index, m.kvn, m.counter, m.tar, m.msisdn, m.concat_ref, m.state,
			c.imsi, c.new_imsi, c.recipient, c.key_index, c.profile` + cols + `
		FROM smpp_messages q JOIN ota_messages m ON m.id = q.message_id JOIN cards c ON c.iccid = m.iccid` + joins + `
		WHERE q.partner = ? AND q.state = ? AND q.message_id > ? ORDER BY q.message_id LIMIT ?`
	args := append(append([]any{}, nameArgs...), partner, SubQueued, after, size)
	rows, err := t.Query(ctx, query, args...)
	if err != nil {
		return nil, nil, err
	}
	defer rows.Close()
	blobs := make([][]byte, len(names))
	var qs []SMPPMessage
	var page []BatchMessage
	for rows.Next() {
		q := SMPPMessage{Partner: partner, State: SubQueued}
		m, c := &Message{}, &Card{}
		var created string
		dest := []any{&q.Night, &created, &m.ID, &m.ICCID, &m.BatchID, &m.Kind, &m.KeyIndex, &m.KVN, &m.Counter, &m.TAR, &m.MSISDN, &m.ConcatRef, &m.State,
			&c.IMSI, &c.NewIMSI, &c.Recipient, &c.KeyIndex, &c.Profile}
		dest = blobDests(dest, blobs)
		if err := rows.Scan(dest...); err != nil {
			return nil, nil, err
		}
		q.MessageID = m.ID
		q.Created, _ = ParseTime(created)
		c.ICCID = m.ICCID
		qs = append(qs, q)
		page = append(page, BatchMessage{Msg: m, Card: c, Secrets: secretsFrom(names, blobs, m.KeyIndex)})
	}
	return qs, page, rows.Err()
}

// SMPPStart is one message about to be submitted.
type SMPPStart struct {
	ID       int64
	Segments int
	Deadline time.Time
}

// StartSMPPSubmits is StartSMPPSubmit for many messages in a few
// statements. It claims only messages still queued (another run on the
// same ledger may have taken some since they were read) and returns the
// IDs it claimed: only those may be sent.
func (t *Tx) StartSMPPSubmits(ctx context.Context, ms []SMPPStart) (map[int64]bool, error) {
	claimed := map[int64]bool{}
	if len(ms) == 0 {
		return claimed, nil
	}
	now := ts(t.Now())
	const chunk = 200
	for i := 0; i < len(ms); i += chunk {
		part := ms[i:min(i+chunk, len(ms))]
		ids := make([]any, len(part))
		for j, m := range part {
			ids[j] = m.ID
		}
		rows, err := t.Query(ctx, `UPDATE smpp_messages SET state = ?, updated_at = ? WHERE state = ? AND message_id IN (`+placeholders(len(ids))+`) RETURNING message_id`,
			append([]any{SubSubmitting, now, SubQueued}, ids...)...)
		if err != nil {
			return nil, err
		}
		for rows.Next() {
			var id int64
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return nil, err
			}
			claimed[id] = true
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, err
		}
		var vals []string
		var args []any
		byDeadline := map[time.Time][]any{}
		for _, m := range part {
			if !claimed[m.ID] {
				continue
			}
			byDeadline[m.Deadline] = append(byDeadline[m.Deadline], m.ID)
			for s := 1; s <= m.Segments; s++ {
				vals = append(vals, "(?, ?, ?, '', 0, '', ?)")
				args = append(args, m.ID, s, SegSubmitting, now)
			}
		}
		if len(vals) == 0 {
			continue
		}
		if _, err := t.Exec(ctx, `INSERT INTO smpp_segments (message_id, seq, state, smsc_id, status, receipt, updated_at) VALUES `+strings.Join(vals, ", ")+`
			ON CONFLICT (message_id, seq) DO UPDATE SET state = excluded.state, smsc_id = '', status = 0, receipt = '', updated_at = excluded.updated_at`, args...); err != nil {
			return nil, err
		}
		if _, err := t.Exec(ctx, `UPDATE smpp_messages SET segments = (SELECT COUNT(*) FROM smpp_segments g WHERE g.message_id = smpp_messages.message_id)
			WHERE state = ? AND message_id IN (`+placeholders(len(ids))+`)`, append([]any{SubSubmitting}, ids...)...); err != nil {
			return nil, err
		}
		for dl, ids := range byDeadline {
			if _, err := t.Exec(ctx, `UPDATE ota_messages SET state = 'sent', deadline = ?, updated_at = ? WHERE state = 'reserved' AND id IN (`+placeholders(len(ids))+`)`,
				append([]any{ts(dl), now}, ids...)...); err != nil {
				return nil, err
			}
		}
	}
	return claimed, nil
}

// SettleSubmitted marks submitted those of the messages whose every
// segment the SMSC accepted, and returns how many.
func (t *Tx) SettleSubmitted(ctx context.Context, ids []int64) (int64, error) {
	var n int64
	const chunk = 500
	for i := 0; i < len(ids); i += chunk {
		part := ids[i:min(i+chunk, len(ids))]
		args := []any{SubSubmitted, ts(t.Now()), SubSubmitting, SegSubmitted, SegDelivered}
		for _, id := range part {
			args = append(args, id)
		}
		res, err := t.Exec(ctx, `UPDATE smpp_messages SET state = ?, updated_at = ? WHERE state = ?
			AND NOT EXISTS (SELECT 1 FROM smpp_segments g WHERE g.message_id = smpp_messages.message_id AND g.state NOT IN (?, ?))
			AND message_id IN (`+placeholders(len(part))+`)`, args...)
		if err != nil {
			return n, err
		}
		k, _ := res.RowsAffected()
		n += k
	}
	return n, nil
}

// SettleDelivered marks a message delivered once every segment's receipt
// says so (and no other outcome settled it).
func (t *Tx) SettleDelivered(ctx context.Context, id int64) error {
	_, err := t.Exec(ctx, `UPDATE smpp_messages SET state = ?, updated_at = ? WHERE message_id = ? AND state IN (?, ?, ?)
		AND NOT EXISTS (SELECT 1 FROM smpp_segments g WHERE g.message_id = ? AND g.state <> ?)`,
		SubDelivered, ts(t.Now()), id, SubSubmitted, SubUnknown, SubSubmitting, id, SegDelivered)
	return err
}

// JournaledReceipt is a receipt kept in the journal.
type JournaledReceipt struct {
	ID                     int64
	SMSCID, State, Outcome string
}

// UnmatchedReceipts lists the journaled receipts, still unmatched, for
// any of the SMSC message_ids.
func (t *Tx) UnmatchedReceipts(ctx context.Context, partner string, smscIDs []string) ([]JournaledReceipt, error) {
	var out []JournaledReceipt
	const chunk = 500
	for i := 0; i < len(smscIDs); i += chunk {
		part := smscIDs[i:min(i+chunk, len(smscIDs))]
		args := []any{partner}
		for _, s := range part {
			args = append(args, s)
		}
		rows, err := t.Query(ctx, `SELECT id, smsc_id, state FROM smpp_events WHERE partner = ? AND kind = 'receipt' AND message_id = 0
			AND outcome LIKE 'unmatched%' AND smsc_id IN (`+placeholders(len(part))+`) ORDER BY id`, args...)
		if err != nil {
			return nil, err
		}
		for rows.Next() {
			var r JournaledReceipt
			if err := rows.Scan(&r.ID, &r.SMSCID, &r.State); err != nil {
				rows.Close()
				return nil, err
			}
			out = append(out, r)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// SegmentOutcome is one segment's submit outcome.
type SegmentOutcome struct {
	MessageID int64
	Seq       int
	State     string
	SMSCID    string
	Status    uint32
}

// SetSegments records many segments' submit outcomes, a few hundred a
// statement.
func (t *Tx) SetSegments(ctx context.Context, os []SegmentOutcome) error {
	now := ts(t.Now())
	const chunk = 200
	for i := 0; i < len(os); i += chunk {
		part := os[i:min(i+chunk, len(os))]
		vals := make([]string, len(part))
		args := make([]any, 0, 6*len(part))
		for j, o := range part {
			vals[j] = "(?, ?, ?, ?, ?, '', ?)"
			args = append(args, o.MessageID, o.Seq, o.State, o.SMSCID, int64(o.Status), now)
		}
		if _, err := t.Exec(ctx, `INSERT INTO smpp_segments (message_id, seq, state, smsc_id, status, receipt, updated_at) VALUES `+strings.Join(vals, ", ")+`
			ON CONFLICT (message_id, seq) DO UPDATE SET state = excluded.state, smsc_id = excluded.smsc_id, status = excluded.status, updated_at = excluded.updated_at`, args...); err != nil {
			return err
		}
	}
	return nil
}
