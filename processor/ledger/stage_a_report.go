package ledger

import (
	"context"
	"fmt"
	"strings"
)

// ReportStage is the donor's ota-report intake done by sets: the lines of
// one SMSC report go into a temporary table as they are read; one
// statement lists every line that is its MSISDN's only line and whose
// MSISDN has exactly one outstanding message, with that message; a joined
// read of that list, a page at a time by primary keys, gives each such
// line with its message, its card and the card's sealed OTA key set (the
// caller verifies and judges each PoR in Go); the verdicts the caller
// records go into a second table and are applied by a handful of
// statements, whatever their number. Every other line (no PoR, an MSISDN
// repeated in the report or with several outstanding messages or none, a
// verdict the caller takes line by line) is left to the caller, in line
// order (Rest). It lives in one transaction; Close drops the tables.
// Nothing secret is staged: a PoR is integrity-protected data the card
// sent in clear over the air.
type ReportStage struct {
	t        *Tx
	lines    *Inserter
	verdicts *Inserter
}

// The stage's temporary tables, private to the transaction's connection.
const (
	reportStageTable    = "stage_a_report"
	reportPoRsTable     = "stage_a_report_pors"     // lines to read with their message
	reportVerdictsTable = "stage_a_report_verdicts" // verdicts to apply
	reportRestTable     = "stage_a_report_rest"     // lines left to take one at a time
)

// StagedPoR is a staged report line whose MSISDN has exactly one
// outstanding message: the line, its PoR, the message, its card, and the
// card's sealed OTA keys of the message's key index (nil where the card
// holds none).
type StagedPoR struct {
	Line     int
	PoR      []byte
	Message  *Message
	Card     *Card
	KIc, KID *Secret
	// Late says the MSISDN has messages judged failed: a PoR that does
	// not verify against Message may answer one of them.
	Late bool
}

// ReportLine is a staged line left to be taken one at a time.
type ReportLine struct {
	Line                              int
	MSISDN, MessageID, Status, Detail string
	PoR                               []byte
}

// ReportVerdict is the verdict on one staged PoR, applied by Apply: the
// message gets State, PoRStatus and Detail; Card says what becomes of its
// card.
type ReportVerdict struct {
	Line                     int
	MessageID                int64
	ICCID                    string
	State, PoRStatus, Detail string
	Card                     ReportCardAction
	// CardState is the card's state as read (ReportConfirm: moving).
	CardState string
	// Event is the reason of the card's event; Record the line's record
	// in the batch (its line, batch and ICCID are the verdict's), for
	// ReportConfirm and ReportNote.
	Event  string
	Record BatchRecord
}

// ReportCardAction is what a verdict does to the message's card.
type ReportCardAction int

// The card actions of a verdict.
const (
	ReportKeep    ReportCardAction = iota // nothing
	ReportConfirm                         // moving → confirmed, taking its new IMSI (Record.IMSI)
	ReportNote                            // its state kept, the event recorded (a PoR ignored)
)

// StageReport creates the stage (a stage left over by an earlier attempt
// on this connection is dropped first).
func (t *Tx) StageReport(ctx context.Context) (*ReportStage, error) {
	s := &ReportStage{t: t}
	if err := s.drop(ctx); err != nil {
		return nil, err
	}
	blob := t.d.dialect.Blob
	// The report's lines, and those left to take one at a time.
	lineCols := `(
  line       INTEGER PRIMARY KEY,
  msisdn     TEXT NOT NULL,
  message_id TEXT NOT NULL,
  status     TEXT NOT NULL,
  detail     TEXT NOT NULL,
  por        ` + blob + `
)`
	for _, q := range []string{
		`CREATE TEMP TABLE ` + reportStageTable + ` ` + lineCols,
		`CREATE TEMP TABLE ` + reportVerdictsTable + ` (
  line       INTEGER PRIMARY KEY,
  message_id BIGINT NOT NULL,
  iccid      TEXT NOT NULL,
  state      TEXT NOT NULL,
  por_status TEXT NOT NULL,
  detail     TEXT NOT NULL,
  card       INTEGER NOT NULL,
  card_state TEXT NOT NULL,
  event      TEXT NOT NULL,
  imsi       TEXT NOT NULL,
  status     TEXT NOT NULL,
  reason     TEXT NOT NULL,
  rec_detail TEXT NOT NULL,
  partner    TEXT NOT NULL
)`,
		`CREATE TEMP TABLE ` + reportPoRsTable + ` (line INTEGER PRIMARY KEY, message_id BIGINT NOT NULL, late INTEGER NOT NULL, por ` + blob + ` NOT NULL)`,
		`CREATE TEMP TABLE ` + reportRestTable + ` ` + lineCols,
	} {
		if _, err := t.tx.ExecContext(ctx, q); err != nil {
			return nil, fmt.Errorf("report stage: %w", err)
		}
	}
	s.lines = t.Inserter(reportStageTable, []string{"line", "msisdn", "message_id", "status", "detail", "por"}, stageChunk)
	s.verdicts = t.Inserter(reportVerdictsTable, []string{"line", "message_id", "iccid", "state", "por_status", "detail",
		"card", "card_state", "event", "imsi", "status", "reason", "rec_detail", "partner"}, stageChunk)
	return s, nil
}

// Add stages one report line (por nil: a delivery report without PoR).
func (s *ReportStage) Add(ctx context.Context, line int, msisdn, messageID, status, detail string, por []byte) error {
	var p any
	if len(por) > 0 {
		p = por
	}
	if err := s.lines.Add(ctx, line, msisdn, messageID, status, detail, p); err != nil {
		return fmt.Errorf("report stage: %w", err)
	}
	return nil
}

// Index writes the staged lines still held, indexes them by MSISDN and
// lists, in one statement, the lines PoRs reads: those that carry a PoR,
// are the only line of their MSISDN in the report, and whose MSISDN has
// exactly one outstanding (sent) message, each with that message and
// whether the MSISDN has messages judged failed (StagedPoR.Late).
// Call it once, after the last Add and before PoRs.
//
// The stage leads (CROSS JOIN keeps it the outer loop in SQLite) and each
// line finds its MSISDN's messages by ota_messages_match; the state is
// compared through an expression (concatenated with the empty string),
// so that SQLite never searches the state-led index instead (every
// outstanding message of the fleet, for every line). Made once for the whole report, the list lets a server
// pick a plan for the whole set, where a paged query would be planned (and
// run) again for every page.
func (s *ReportStage) Index(ctx context.Context) error {
	if err := s.lines.Flush(ctx); err != nil {
		return fmt.Errorf("report stage: %w", err)
	}
	t := s.t
	if _, err := t.Exec(ctx, `CREATE INDEX `+reportStageTable+`_msisdn ON `+reportStageTable+` (msisdn)`); err != nil {
		return fmt.Errorf("report stage: %w", err)
	}
	_, err := t.Exec(ctx, `INSERT INTO `+reportPoRsTable+` (line, message_id, late, por)
		SELECT s.line, m.id,
			CASE WHEN EXISTS (SELECT 1 FROM ota_messages f WHERE f.msisdn = s.msisdn AND f.state || '' = ?) THEN 1 ELSE 0 END, s.por
		FROM `+reportStageTable+` s CROSS JOIN ota_messages m
		WHERE s.por IS NOT NULL AND m.msisdn = s.msisdn AND m.state || '' = ?
			AND NOT EXISTS (SELECT 1 FROM `+reportStageTable+` d WHERE d.msisdn = s.msisdn AND d.line <> s.line)
			AND NOT EXISTS (SELECT 1 FROM ota_messages o WHERE o.msisdn = s.msisdn AND o.id <> m.id AND o.state || '' = ?)`,
		MsgFailed, MsgSent, MsgSent)
	if err != nil {
		return fmt.Errorf("report stage: PoRs: %w", err)
	}
	return t.analyze(ctx, reportPoRsTable)
}

// reportPage is how many staged PoRs PoRs reads at a time.
const reportPage = 512

// PoRs calls fn, in line order, with each line Index listed, its message,
// the message's card and the card's sealed KIc and KID of the message's
// key index (secret names kic and kid). It reads in pages of a joined
// query (the list's primary key leads, every other table is found by its
// key), each read whole before fn sees its lines, so fn may write in the
// transaction.
func (s *ReportStage) PoRs(ctx context.Context, kic, kid string, fn func(*StagedPoR) error) error {
	q := porsQuery
	after := 0 // lines count from 1
	page := make([]*StagedPoR, 0, reportPage)
	for {
		page = page[:0]
		rows, err := s.t.Query(ctx, q, after, kic, kid)
		if err != nil {
			return fmt.Errorf("report stage: PoRs: %w", err)
		}
		for rows.Next() {
			p := &StagedPoR{Message: &Message{}, Card: &Card{}}
			var mts msgTimes
			var cts cardTimes
			var ai, bi *int
			var am, bm *string
			var ab, bb []byte
			dest := append([]any{&p.Line, &p.Late, &p.PoR}, p.Message.dest(&mts)...)
			dest = append(dest, p.Card.dest(&cts)...)
			dest = append(dest, &ai, &am, &ab, &bi, &bm, &bb)
			if err := rows.Scan(dest...); err != nil {
				rows.Close()
				return fmt.Errorf("report stage: PoRs: %w", err)
			}
			mts.set(p.Message)
			cts.set(p.Card)
			if ab != nil {
				p.KIc = &Secret{Name: kic, KeyIndex: *ai, MasterKey: *am, Blob: ab}
			}
			if bb != nil {
				p.KID = &Secret{Name: kid, KeyIndex: *bi, MasterKey: *bm, Blob: bb}
			}
			page = append(page, p)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("report stage: PoRs: %w", err)
		}
		for _, p := range page {
			if err := fn(p); err != nil {
				return err
			}
		}
		if len(page) < reportPage {
			return nil
		}
		after = page[len(page)-1].Line
	}
}

// porsQuery is a page of PoRs (arguments: the last line read, the names
// of KIc and KID). The page is cut from the list alone, by its key, and
// only then joined: each of its rows finds its message, card and secrets
// by their keys. Joined to another table of the stage by line, the list
// had a server merge the two from the first line on, on every page: a
// report of N lines read N²/page rows. Limited inside, the page is a
// page's rows whatever the plan (a generic plan of the prepared statement
// takes a range of the list for a third of it); materialised, it carries
// no statistics a planner could read as "these messages are the first
// ones" and merge the messages table from its first row on for every page.
var porsQuery = `WITH x AS MATERIALIZED (SELECT line, message_id, late, por FROM ` + reportPoRsTable + ` WHERE line > ? ORDER BY line LIMIT ` + fmt.Sprint(reportPage) + `)
		SELECT x.line, x.late, x.por, ` + prefixCols("m.", msgCols) + `, ` + prefixCols("c.", cardCols) + `,
			a.key_index, a.master_key, a.blob, b.key_index, b.master_key, b.blob
		FROM x
		CROSS JOIN ota_messages m
		CROSS JOIN cards c
		LEFT JOIN card_secrets a ON a.iccid = m.iccid AND a.name = ? AND a.key_index = m.key_index
		LEFT JOIN card_secrets b ON b.iccid = m.iccid AND b.name = ? AND b.key_index = m.key_index
		WHERE m.id = x.message_id AND c.iccid = m.iccid
		ORDER BY x.line`

// prefixCols qualifies each column of a column list.
func prefixCols(prefix, cols string) string {
	parts := strings.Split(cols, ", ")
	for i, c := range parts {
		parts[i] = prefix + c
	}
	return strings.Join(parts, ", ")
}

// Judged records the verdict on one staged PoR (written several to a
// statement; Apply writes the rest).
func (s *ReportStage) Judged(ctx context.Context, v ReportVerdict) error {
	r := v.Record
	if err := s.verdicts.Add(ctx, v.Line, v.MessageID, v.ICCID, v.State, v.PoRStatus, v.Detail,
		int(v.Card), v.CardState, v.Event, r.IMSI, r.Status, r.Reason, r.Detail, r.Partner); err != nil {
		return fmt.Errorf("report stage: %w", err)
	}
	return nil
}

// ReportApplied counts what Apply did.
type ReportApplied struct {
	Messages, Confirmed, Noted int
}

// Apply applies every recorded verdict: the messages take their state,
// PoR status and detail; the cards to confirm move from moving to
// confirmed with their new IMSI, those to note keep their state (the
// time they changed is now); each card confirmed or noted gets its event
// (ref "message ID") and its line's record in batch batchID. A card no
// longer in the state its verdict read is an error: nothing else in this
// transaction moves it.
func (s *ReportStage) Apply(ctx context.Context, batchID int64) (ReportApplied, error) {
	var out ReportApplied
	if err := s.verdicts.Flush(ctx); err != nil {
		return out, fmt.Errorf("report stage: %w", err)
	}
	t := s.t
	now := ts(t.Now())
	v := reportVerdictsTable
	exec := func(what, query string, args ...any) (int, error) {
		res, err := t.Exec(ctx, query, args...)
		if err != nil {
			return 0, fmt.Errorf("report: %s: %w", what, err)
		}
		n, err := res.RowsAffected()
		return int(n), err
	}
	var err error
	if out.Messages, err = exec("messages", `UPDATE ota_messages SET state = v.state, por_status = v.por_status, detail = v.detail, updated_at = ?
		FROM `+v+` v WHERE ota_messages.id = v.message_id`, now); err != nil {
		return out, err
	}
	if out.Confirmed, err = exec("cards confirmed", `UPDATE cards SET state = ?, updated_at = ?, imsi = v.imsi
		FROM `+v+` v WHERE v.card = ? AND cards.iccid = v.iccid AND cards.state = ?`, CardConfirmed, now, ReportConfirm, CardMoving); err != nil {
		return out, err
	}
	if out.Noted, err = exec("cards noted", `UPDATE cards SET updated_at = ?
		FROM `+v+` v WHERE v.card = ? AND cards.iccid = v.iccid AND cards.state = v.card_state`, now, ReportNote); err != nil {
		return out, err
	}
	var confirm, note int
	if err := t.QueryRow(ctx, `SELECT COALESCE(SUM(CASE WHEN card = ? THEN 1 ELSE 0 END), 0), COALESCE(SUM(CASE WHEN card = ? THEN 1 ELSE 0 END), 0) FROM `+v,
		ReportConfirm, ReportNote).Scan(&confirm, &note); err != nil {
		return out, err
	}
	if confirm != out.Confirmed || note != out.Noted {
		return out, fmt.Errorf("report: %d cards confirmed and %d noted, the verdicts confirm %d and note %d", out.Confirmed, out.Noted, confirm, note)
	}
	steps := []struct {
		what, query string
		args        []any
	}{
		{"card events", `INSERT INTO card_events (iccid, at, from_state, to_state, reason, ref)
			SELECT iccid, ?, card_state, CASE WHEN card = ? THEN ? ELSE card_state END, event, 'message ' || message_id
			FROM ` + v + ` WHERE card <> ? ORDER BY line`,
			[]any{now, ReportConfirm, CardConfirmed, ReportKeep}},
		{"records", `INSERT INTO batch_records (batch_id, line, iccid, imsi, status, reason, detail, partner, data)
			SELECT ?, line, iccid, imsi, status, reason, rec_detail, partner, '' FROM ` + v + ` WHERE card <> ? ORDER BY line`,
			[]any{batchID, ReportKeep}},
	}
	for _, st := range steps {
		if _, err := t.Exec(ctx, st.query, st.args...); err != nil {
			return out, fmt.Errorf("report: %s: %w", st.what, err)
		}
	}
	return out, nil
}

// Rest calls fn, in line order, with each staged line that has no
// verdict recorded (listed once, in one statement), in pages read whole
// before fn sees them (fn may write in the transaction). Call it once.
func (s *ReportStage) Rest(ctx context.Context, fn func(ReportLine) error) error {
	if err := s.verdicts.Flush(ctx); err != nil {
		return fmt.Errorf("report stage: %w", err)
	}
	t := s.t
	_, err := t.Exec(ctx, `INSERT INTO `+reportRestTable+` (line, msisdn, message_id, status, detail, por)
		SELECT s.line, s.msisdn, s.message_id, s.status, s.detail, s.por FROM `+reportStageTable+` s
		WHERE NOT EXISTS (SELECT 1 FROM `+reportVerdictsTable+` v WHERE v.line = s.line)`)
	if err != nil {
		return fmt.Errorf("report stage: lines: %w", err)
	}
	if err := t.analyze(ctx, reportRestTable); err != nil {
		return err
	}
	q := restQuery
	after := 0 // lines count from 1
	var page []ReportLine
	for {
		page = page[:0]
		rows, err := s.t.Query(ctx, q, after)
		if err != nil {
			return fmt.Errorf("report stage: lines: %w", err)
		}
		for rows.Next() {
			var l ReportLine
			if err := rows.Scan(&l.Line, &l.MSISDN, &l.MessageID, &l.Status, &l.Detail, &l.PoR); err != nil {
				rows.Close()
				return fmt.Errorf("report stage: lines: %w", err)
			}
			page = append(page, l)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("report stage: lines: %w", err)
		}
		for _, l := range page {
			if err := fn(l); err != nil {
				return err
			}
		}
		if len(page) < reportPage {
			return nil
		}
		after = page[len(page)-1].Line
	}
}

// restQuery is a page of the lines left (argument: the last line read),
// read from their own table by its key alone (see porsQuery).
var restQuery = `SELECT line, msisdn, message_id, status, detail, por FROM ` + reportRestTable + `
		WHERE line > ? ORDER BY line LIMIT ` + fmt.Sprint(reportPage)

// Close drops the stage's tables (the transaction's end would leave them
// for the next work on the same connection).
func (s *ReportStage) Close(ctx context.Context) error {
	if s == nil {
		return nil
	}
	s.lines.Discard()
	s.verdicts.Discard()
	return s.drop(ctx)
}

func (s *ReportStage) drop(ctx context.Context) error {
	for _, tb := range []string{reportRestTable, reportVerdictsTable, reportPoRsTable, reportStageTable} {
		if _, err := s.t.tx.ExecContext(ctx, `DROP TABLE IF EXISTS `+tb); err != nil {
			return fmt.Errorf("report stage: %w", err)
		}
	}
	return nil
}
