package ledger

import (
	"context"
	"fmt"
)

// MSISDNStage is the donor's MSISDN map intake done by sets: the lines go
// into a temporary table as they are read; one UPDATE gives every known
// card (by ICCID and IMSI) its MSISDN and the others are answered, whatever
// the number of records. It lives in one transaction; Close drops the
// table.
type MSISDNStage struct {
	t    *Tx
	rows *Inserter
	vals []any
}

const msisdnTable = "stage_a_msisdn"

// StageMSISDNs creates the stage, dropping one left over on this
// connection first.
func (t *Tx) StageMSISDNs(ctx context.Context) (*MSISDNStage, error) {
	s := &MSISDNStage{t: t}
	if err := s.drop(ctx); err != nil {
		return nil, err
	}
	for _, q := range []string{`CREATE TEMP TABLE ` + msisdnTable + ` (
  line   INTEGER PRIMARY KEY,
  iccid  TEXT NOT NULL,
  imsi   TEXT NOT NULL,
  msisdn TEXT NOT NULL,
  reason TEXT NOT NULL DEFAULT '',
  detail TEXT NOT NULL DEFAULT ''
)`,
	} {
		if _, err := t.tx.ExecContext(ctx, q); err != nil {
			return nil, fmt.Errorf("msisdn stage: %w", err)
		}
	}
	s.rows = t.Inserter(msisdnTable, []string{"line", "iccid", "imsi", "msisdn"}, stageChunk)
	s.vals = make([]any, 0, 4)
	return s, nil
}

// Add stages one line.
func (s *MSISDNStage) Add(ctx context.Context, line int, iccid, imsi, msisdn string) error {
	s.vals = append(s.vals[:0], line, iccid, imsi, msisdn)
	if err := s.rows.Add(ctx, s.vals...); err != nil {
		return fmt.Errorf("msisdn stage: %w", err)
	}
	return nil
}

// MSISDNTake says how Take records the staged lines.
type MSISDNTake struct {
	BatchID  int64
	Partner  string
	Rejected string // the status of a rejected line's record
	// The rules, in order. The Duplicate verdicts, when they have a
	// reason, reject a line whose ICCID, IMSI or MSISDN an earlier line
	// has (Detail + line + DetailEnd + value): the stage finds repeats, so
	// the reader keeps nothing per record.
	DuplicateICCID, DuplicateIMSI, DuplicateMSISDN Verdict
	Unknown                                        Verdict // no card with the ICCID and IMSI
}

// Take sets the MSISDNs and answers the lines of unknown cards. It
// returns the numbers of lines accepted and rejected.
func (s *MSISDNStage) Take(ctx context.Context, o MSISDNTake) (accepted, rejected int, err error) {
	t := s.t
	if err := s.rows.Flush(ctx); err != nil {
		return 0, 0, fmt.Errorf("msisdn stage: %w", err)
	}
	now := ts(t.Now())
	st := msisdnTable
	type step struct {
		what  string
		query string
		args  []any
	}
	var steps []step
	for _, d := range []struct {
		col string
		v   Verdict
	}{{"iccid", o.DuplicateICCID}, {"imsi", o.DuplicateIMSI}, {"msisdn", o.DuplicateMSISDN}} {
		if d.v.Reason == "" {
			continue
		}
		// Every line after the first of a value, through an index built
		// once the lines are staged (none kept up while staging).
		steps = append(steps, step{"index", `CREATE INDEX ` + st + `_` + d.col + ` ON ` + st + ` (` + d.col + `)`, nil})
		steps = append(steps, step{"repeated " + d.col + "s", `UPDATE ` + st + ` SET reason = ?, detail = ? || line || ? || ` + d.col + `
			WHERE reason = '' AND EXISTS (SELECT 1 FROM ` + st + ` d WHERE d.` + d.col + ` = ` + st + `.` + d.col + ` AND d.line < ` + st + `.line)`,
			[]any{d.v.Reason, d.v.Detail, d.v.DetailEnd}})
	}
	steps = append(steps,
		// Only the unknown lines are written: every line left is a card's.
		step{"unknown cards", `UPDATE ` + st + ` SET reason = ?, detail = ?
			WHERE reason = '' AND NOT EXISTS (SELECT 1 FROM cards c WHERE c.iccid = ` + st + `.iccid AND c.imsi = ` + st + `.imsi)`,
			[]any{o.Unknown.Reason, o.Unknown.Detail}},
		step{"msisdns", `UPDATE cards SET msisdn = s.msisdn, updated_at = ? FROM ` + st + ` s WHERE cards.iccid = s.iccid AND cards.imsi = s.imsi AND s.reason = ''`, []any{now}},
		step{"answers", `INSERT INTO batch_records (batch_id, line, iccid, imsi, status, reason, detail, partner, data)
			SELECT ?, line, iccid, imsi, ?, reason, detail, ?, '' FROM ` + st + ` WHERE reason <> '' ORDER BY line
			ON CONFLICT (batch_id, line) DO UPDATE SET iccid = excluded.iccid, imsi = excluded.imsi, status = excluded.status,
				reason = excluded.reason, detail = excluded.detail, partner = excluded.partner, data = excluded.data`,
			[]any{o.BatchID, o.Rejected, o.Partner}},
	)
	for _, q := range steps {
		if _, err := t.Exec(ctx, q.query, q.args...); err != nil {
			return 0, 0, fmt.Errorf("msisdn stage: %s: %w", q.what, err)
		}
	}
	err = t.QueryRow(ctx, `SELECT COALESCE(SUM(CASE WHEN reason = '' THEN 1 ELSE 0 END), 0), COUNT(*) FROM `+st).Scan(&accepted, &rejected)
	if err != nil {
		return 0, 0, fmt.Errorf("msisdn stage: counts: %w", err)
	}
	return accepted, rejected - accepted, nil
}

// Close drops the stage's table. It is safe to call more than once.
func (s *MSISDNStage) Close(ctx context.Context) error {
	s.rows.Discard()
	return s.drop(ctx)
}

func (s *MSISDNStage) drop(ctx context.Context) error {
	if _, err := s.t.tx.ExecContext(ctx, `DROP TABLE IF EXISTS `+msisdnTable); err != nil {
		return fmt.Errorf("msisdn stage: %w", err)
	}
	return nil
}
