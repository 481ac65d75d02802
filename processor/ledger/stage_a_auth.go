package ledger

import (
	"context"
	"fmt"
)

// AuthorisationStage is the donor's intake of a switch authorisation done
// by sets: the lines go into a temporary table as they are read, then a
// few statements judge them against the cards, record each card's owner
// where none was known, store the authorisations, audit each one and
// answer the rejected lines, whatever the number of records. It lives in
// one transaction; Close drops the table.
type AuthorisationStage struct {
	t    *Tx
	rows *Inserter
	vals []any
}

// AuthorisationLine is one staged authorisation.
type AuthorisationLine struct {
	Line                       int
	ICCID, Recipient, FromDate string
}

const authTable = "stage_a_authorisation"

// StageAuthorisations creates the stage, dropping one left over on this
// connection first.
func (t *Tx) StageAuthorisations(ctx context.Context) (*AuthorisationStage, error) {
	s := &AuthorisationStage{t: t}
	if err := s.drop(ctx); err != nil {
		return nil, err
	}
	for _, q := range []string{`CREATE TEMP TABLE ` + authTable + ` (
  line      INTEGER PRIMARY KEY,
  iccid     TEXT NOT NULL,
  recipient TEXT NOT NULL,
  from_date TEXT NOT NULL,
  reason    TEXT NOT NULL DEFAULT '',
  detail    TEXT NOT NULL DEFAULT ''
)`,
	} {
		if _, err := t.tx.ExecContext(ctx, q); err != nil {
			return nil, fmt.Errorf("authorisation stage: %w", err)
		}
	}
	s.rows = t.Inserter(authTable, []string{"line", "iccid", "recipient", "from_date"}, stageChunk)
	s.vals = make([]any, 0, 4)
	return s, nil
}

// Add stages one line.
func (s *AuthorisationStage) Add(ctx context.Context, l AuthorisationLine) error {
	s.vals = append(s.vals[:0], l.Line, l.ICCID, l.Recipient, l.FromDate)
	if err := s.rows.Add(ctx, s.vals...); err != nil {
		return fmt.Errorf("authorisation stage: %w", err)
	}
	return nil
}

// AuthorisationTake says how Take judges and records the staged lines.
type AuthorisationTake struct {
	BatchID int64
	Partner string // the partner the rejections' answers go to
	Owner   string // the authorising M2M operator
	FileID  int64
	// Event and Ref are the card event of an owner recorded; Action the
	// audit action of each authorisation.
	Event, Ref, Action string
	Rejected           string // the status of a rejected line's record
	// The rules, in order. DuplicateICCID, when it has a reason, rejects a
	// line whose ICCID an earlier line has (Detail + line + DetailEnd +
	// ICCID): the stage finds repeats, so the reader keeps nothing per
	// record.
	DuplicateICCID Verdict
	Unknown        Verdict // no card with the ICCID
	OtherOwner     Verdict // the card belongs to another customer
}

// AuthorisationOutcome counts a Take's lines.
type AuthorisationOutcome struct {
	Accepted, Rejected int
}

// Take judges every staged line and records the accepted ones.
func (s *AuthorisationStage) Take(ctx context.Context, o AuthorisationTake) (AuthorisationOutcome, error) {
	var out AuthorisationOutcome
	t := s.t
	if err := s.rows.Flush(ctx); err != nil {
		return out, fmt.Errorf("authorisation stage: %w", err)
	}
	now := ts(t.Now())
	st := authTable
	for _, q := range []struct {
		what  string
		query string
		args  []any
	}{
		// Every line after the first of an ICCID, through an index built
		// once the lines are staged (none kept up while staging).
		{"index", `CREATE INDEX ` + st + `_iccid ON ` + st + ` (iccid)`, nil},
		{"repeated ICCIDs", `UPDATE ` + st + ` SET reason = ?, detail = ? || line || ? || iccid
			WHERE ? <> '' AND EXISTS (SELECT 1 FROM ` + st + ` d WHERE d.iccid = ` + st + `.iccid AND d.line < ` + st + `.line)`,
			[]any{o.DuplicateICCID.Reason, o.DuplicateICCID.Detail, o.DuplicateICCID.DetailEnd, o.DuplicateICCID.Reason}},
		// Only the rejected lines are written; the cards' owners are read
		// where they are needed (the events before the owners change).
		// One look at each line's card: none (unknown), or another
		// customer's.
		{"unknown cards and other owners", `UPDATE ` + st + `
			SET reason = CASE WHEN EXISTS (SELECT 1 FROM cards c WHERE c.iccid = ` + st + `.iccid) THEN ? ELSE ? END,
				detail = CASE WHEN EXISTS (SELECT 1 FROM cards c WHERE c.iccid = ` + st + `.iccid) THEN ? ELSE ? END
			WHERE reason = '' AND NOT EXISTS (SELECT 1 FROM cards c WHERE c.iccid = ` + st + `.iccid AND (c.owner = '' OR c.owner = ?))`,
			[]any{o.OtherOwner.Reason, o.Unknown.Reason, o.OtherOwner.Detail, o.Unknown.Detail, o.Owner}},
		{"owners' events", `INSERT INTO card_events (iccid, at, from_state, to_state, reason, ref)
			SELECT c.iccid, ?, c.state, c.state, ?, ? FROM ` + st + ` s JOIN cards c ON c.iccid = s.iccid
			WHERE s.reason = '' AND c.owner = '' ORDER BY s.line`, []any{now, o.Event, o.Ref}},
		{"owners", `UPDATE cards SET owner = ?, updated_at = ? FROM ` + st + ` s
			WHERE cards.iccid = s.iccid AND s.reason = '' AND cards.owner = ''`, []any{o.Owner, now}},
		{"authorisations", `INSERT INTO authorisations (iccid, recipient, from_date, owner, file_id)
			SELECT iccid, recipient, from_date, ?, ? FROM ` + st + ` WHERE reason = '' ORDER BY line
			ON CONFLICT (iccid, recipient) DO UPDATE SET from_date = excluded.from_date, owner = excluded.owner, file_id = excluded.file_id`,
			[]any{o.Owner, o.FileID}},
		{"audit", `INSERT INTO audit (at, actor, action, subject, detail)
			SELECT ?, ?, ?, iccid, 'to ' || recipient || ' from ' || from_date || ' line ' || line FROM ` + st + ` WHERE reason = '' ORDER BY line`,
			[]any{now, o.Owner, o.Action}},
		{"answers", `INSERT INTO batch_records (batch_id, line, iccid, imsi, status, reason, detail, partner, data)
			SELECT ?, line, iccid, '', ?, reason, detail, ?, '' FROM ` + st + ` WHERE reason <> '' ORDER BY line
			ON CONFLICT (batch_id, line) DO UPDATE SET iccid = excluded.iccid, imsi = excluded.imsi, status = excluded.status,
				reason = excluded.reason, detail = excluded.detail, partner = excluded.partner, data = excluded.data`,
			[]any{o.BatchID, o.Rejected, o.Partner}},
	} {
		if _, err := t.Exec(ctx, q.query, q.args...); err != nil {
			return out, fmt.Errorf("authorisation stage: %s: %w", q.what, err)
		}
	}
	if err := t.QueryRow(ctx, `SELECT COALESCE(SUM(CASE WHEN reason = '' THEN 1 ELSE 0 END), 0), COUNT(*) FROM `+st).Scan(&out.Accepted, &out.Rejected); err != nil {
		return out, fmt.Errorf("authorisation stage: counts: %w", err)
	}
	out.Rejected -= out.Accepted
	return out, nil
}

// Close drops the stage's table. It is safe to call more than once.
func (s *AuthorisationStage) Close(ctx context.Context) error {
	s.rows.Discard()
	return s.drop(ctx)
}

func (s *AuthorisationStage) drop(ctx context.Context) error {
	if _, err := s.t.tx.ExecContext(ctx, `DROP TABLE IF EXISTS `+authTable); err != nil {
		return fmt.Errorf("authorisation stage: %w", err)
	}
	return nil
}
