package processor

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"resub/formats/native"
	"resub/processor/ledger"
)

// imsiStage is the set-based half of the donor's imsi-list step: the
// records of one file in a staging table, judged and applied with a few
// statements over the whole file. The tables are temporary (the
// connection's own, dropped at the end or with a rolled-back
// transaction) and hold no secret.
type imsiStage struct {
	w *Work
	// reset: the partner's policy sends the reset with the update.
	reset    bool
	rows     *ledger.Inserter
	accepted int
}

// The acceptance rules in the order they are applied: the first that
// holds gives the line's answer. cond is SQL over the staged line s, its
// card c (NULL when unknown), the authorisation a to the recipient and the
// card's profile p here; detail is the SQL text of the answer's detail
// over the judged line (line, iccid, imsi, state, from_date, profile,
// key_index, list_length), with args binding its placeholders.
var imsiRules = []struct {
	reason, cond, detail string
	args                 func(w *Work) []any
}{
	// A repeated ICCID or IMSI: the later line, as the reader would say it.
	{ReasonDuplicate, `EXISTS (SELECT 1 FROM imsi_stage d WHERE d.iccid = s.iccid AND d.line < s.line)`,
		`? || ':' || line || ': ' || ? || ': ' || ? || ': ' || iccid`, duplicateArgs(native.FieldICCID)},
	{ReasonDuplicate, `EXISTS (SELECT 1 FROM imsi_stage d WHERE d.imsi = s.imsi AND d.line < s.line)`,
		`? || ':' || line || ': ' || ? || ': ' || ? || ': ' || imsi`, duplicateArgs(native.FieldIMSI)},
	{ReasonUnknownICCID, `c.iccid IS NULL`, `''`, nil},
	{ReasonAlreadyMoving, `c.state IN (` + sqlList(ledger.CardMoving, ledger.CardConfirmed, ledger.CardUnknown, ledger.CardFailed,
		ledger.CardHandedOver, ledger.CardProvisioned, ledger.CardResetting, ledger.CardManual) + `)`, `'card is ' || state`, nil},
	{ReasonNotActive, `c.state <> ` + sqlList(ledger.CardActive), `'card is ' || state`, nil},
	{ReasonNotAuthorised, `a.iccid IS NULL`, `'no switch authorisation to ' || ?`, func(w *Work) []any { return []any{w.Partner.Code} }},
	{ReasonNotAuthorised, `c.owner <> '' AND a.owner <> c.owner`, `'authorised by another customer than the card''s owner'`, nil},
	{ReasonNotAuthorised, `s.cutover < a.from_date`, `'cut-over before the authorised date ' || from_date`, nil},
	{ReasonNotInRange, `s.in_range = 0`, `''`, nil},
	// Two indexed lookups (cards_imsi, cards_new_imsi) rather than one OR.
	// new_imsi <> '' says nothing new (a staged IMSI is never empty) but
	// tells a planner that counts distinct values (nearly every card's
	// new_imsi is '') that few cards match: without it PostgreSQL scans
	// every card for every line.
	{ReasonIMSIInUse, `EXISTS (SELECT 1 FROM cards x WHERE x.imsi = s.imsi AND x.state NOT IN ('released', 'erased'))
		OR EXISTS (SELECT 1 FROM cards x WHERE x.new_imsi = s.imsi AND x.new_imsi <> '' AND x.state NOT IN ('released', 'erased'))`, `''`, nil},
	{ReasonDatePast, `s.past = 1`, `''`, nil},
	{ReasonInternal, `p.name IS NULL`, `'card profile ' || profile || ' is not configured'`, nil},
	{ReasonListExhausted, `p.indexed = 1 AND c.key_index >= c.list_length`, `'key index ' || key_index || ' of ' || list_length`, nil},
	{ReasonInternal, `c.msisdn = ''`, `'no MSISDN known for the card'`, nil},
}

// duplicateArgs binds a duplicate's detail: file, field and the reader's
// words for it.
func duplicateArgs(field string) func(w *Work) []any {
	return func(w *Work) []any { return []any{w.File.Name, field, native.ErrDuplicate.Error()} }
}

// sqlList quotes constant strings of ours as an SQL list.
func sqlList(vals ...string) string {
	q := make([]string, len(vals))
	for i, v := range vals {
		q[i] = "'" + strings.ReplaceAll(v, "'", "''") + "'"
	}
	return strings.Join(q, ", ")
}

// newIMSIStage creates the staging tables of one file and records the
// profiles configured here.
func newIMSIStage(ctx context.Context, w *Work) (*imsiStage, error) {
	st := &imsiStage{w: w, reset: w.Partner.Policy.ResetWithUpdate,
		rows: w.Tx.Inserter("imsi_stage", []string{"line", "iccid", "imsi", "cutover", "in_range", "past"}, 256)}
	for _, q := range []string{
		`DROP TABLE IF EXISTS imsi_stage`,
		`DROP TABLE IF EXISTS imsi_judged`,
		`DROP TABLE IF EXISTS imsi_profiles`,
		`CREATE TEMP TABLE imsi_stage (line INTEGER PRIMARY KEY, iccid TEXT NOT NULL, imsi TEXT NOT NULL,
			cutover TEXT NOT NULL, in_range INTEGER NOT NULL, past INTEGER NOT NULL)`,
		`CREATE TEMP TABLE imsi_profiles (name TEXT PRIMARY KEY, tar TEXT NOT NULL, reset_tar TEXT NOT NULL, indexed INTEGER NOT NULL)`,
		`CREATE TEMP TABLE imsi_judged (line INTEGER PRIMARY KEY, iccid TEXT NOT NULL, imsi TEXT NOT NULL, cutover TEXT NOT NULL,
			rule INTEGER NOT NULL, state TEXT, from_date TEXT, profile TEXT, key_index INTEGER, list_length INTEGER,
			kvn INTEGER, msisdn TEXT, tar TEXT, reset_tar TEXT)`,
	} {
		if _, err := w.Tx.Exec(ctx, q); err != nil {
			return nil, fmt.Errorf("imsi-list staging: %w", err)
		}
	}
	for _, prof := range w.P.Profiles {
		indexed := 0
		if prof.OTA.KeyIndex != nil {
			indexed = 1
		}
		if _, err := w.Tx.Exec(ctx, `INSERT INTO imsi_profiles (name, tar, reset_tar, indexed) VALUES (?, ?, ?, ?)`,
			prof.Name, prof.OTA.TAR.String(), prof.OTA.ResetTAR.String(), indexed); err != nil {
			return nil, err
		}
	}
	return st, nil
}

// add stages one valid record with the checks that need no ledger.
func (st *imsiStage) add(ctx context.Context, line int, iccid, imsi, cutover string, inRange, past bool) error {
	return st.rows.Add(ctx, line, iccid, imsi, cutover, boolInt(inRange), boolInt(past))
}

// judge applies the acceptance rules to every staged line (rule 0:
// accepted, otherwise the number of the first rule that rejects it) and
// records every line's answer for the recipient.
func (st *imsiStage) judge(ctx context.Context) error {
	w := st.w
	if err := st.rows.Flush(ctx); err != nil {
		return err
	}
	// Repeated ICCIDs and IMSIs are found here, not by the reader (which
	// would hold every one of them in memory).
	t0 := time.Now()
	for _, q := range []string{`CREATE INDEX imsi_stage_iccid ON imsi_stage (iccid)`, `CREATE INDEX imsi_stage_imsi ON imsi_stage (imsi)`} {
		if _, err := w.Tx.Exec(ctx, q); err != nil {
			return fmt.Errorf("imsi-list staging: %w", err)
		}
	}
	st.took("index the stage", t0)
	var rule strings.Builder
	rule.WriteString("CASE")
	for i, r := range imsiRules {
		fmt.Fprintf(&rule, "\n\t\t\tWHEN %s THEN %d", r.cond, i+1)
	}
	rule.WriteString(" ELSE 0 END")
	t0 = time.Now()
	_, err := w.Tx.Exec(ctx, `INSERT INTO imsi_judged (line, iccid, imsi, cutover, rule, state, from_date, profile, key_index, list_length, kvn, msisdn, tar, reset_tar)
		SELECT s.line, s.iccid, s.imsi, s.cutover, `+rule.String()+`,
			c.state, a.from_date, c.profile, c.key_index, c.list_length,
			(SELECT MIN(k.kvn) FROM key_sets k WHERE k.iccid = c.iccid AND k.key_index = c.key_index),
			c.msisdn, p.tar, p.reset_tar
		FROM imsi_stage s
		LEFT JOIN cards c ON c.iccid = s.iccid
		LEFT JOIN authorisations a ON a.iccid = s.iccid AND a.recipient = ?
		LEFT JOIN imsi_profiles p ON p.name = c.profile
		ORDER BY s.line`, w.Partner.Code)
	st.took("judge", t0)
	if err != nil {
		return fmt.Errorf("imsi-list: judge: %w", err)
	}
	var reason, detail strings.Builder
	reason.WriteString("CASE rule")
	detail.WriteString("CASE rule")
	var args []any
	for i, r := range imsiRules {
		fmt.Fprintf(&reason, " WHEN %d THEN %s", i+1, sqlList(r.reason))
		fmt.Fprintf(&detail, " WHEN %d THEN %s", i+1, r.detail)
		if r.args != nil {
			args = append(args, r.args(w)...)
		}
	}
	reason.WriteString(" ELSE '' END")
	detail.WriteString(" ELSE '' END")
	args = append([]any{w.BatchID}, args...)
	args = append(args, w.Partner.Name)
	t0 = time.Now()
	_, err = w.Tx.Exec(ctx, `INSERT INTO batch_records (batch_id, line, iccid, imsi, status, reason, detail, partner, data)
		SELECT ?, line, iccid, imsi, CASE WHEN rule = 0 THEN `+sqlList(recordAccepted)+` ELSE `+sqlList(recordRejected)+` END,
			`+reason.String()+`, `+detail.String()+`, ?, ''
		FROM imsi_judged ORDER BY line`, args...)
	st.took("answers", t0)
	if err != nil {
		return fmt.Errorf("imsi-list: answers: %w", err)
	}
	var rejected int
	if err := w.Tx.QueryRow(ctx, `SELECT COALESCE(SUM(CASE WHEN rule = 0 THEN 1 ELSE 0 END), 0), COALESCE(SUM(CASE WHEN rule = 0 THEN 0 ELSE 1 END), 0) FROM imsi_judged`).
		Scan(&st.accepted, &rejected); err != nil {
		return err
	}
	w.Counts.Rejected += rejected
	return nil
}

// accept moves the accepted cards to moving and queues their messages:
// the update (and, by the partner's policy, the reset after it), each
// with a counter reserved from the card's key set in this transaction,
// in line order. It returns the number of accepted cards.
func (st *imsiStage) accept(ctx context.Context) (int, error) {
	w := st.w
	if st.accepted == 0 {
		return 0, nil
	}
	var iccid string
	var keyIndex int
	err := w.Tx.QueryRow(ctx, `SELECT iccid, key_index FROM imsi_judged WHERE rule = 0 AND kvn IS NULL ORDER BY line LIMIT 1`).Scan(&iccid, &keyIndex)
	if err == nil {
		return 0, fmt.Errorf("card %s has no OTA key set for index %d", iccid, keyIndex)
	} else if !errors.Is(err, sql.ErrNoRows) {
		return 0, err
	}
	// One outstanding message per card.
	var id int64
	var kind string
	err = w.Tx.QueryRow(ctx, `SELECT j.iccid, m.id, m.kind FROM imsi_judged j JOIN ota_messages m ON m.iccid = j.iccid
		WHERE j.rule = 0 AND m.state IN (?, ?) ORDER BY j.line LIMIT 1`, ledger.MsgReserved, ledger.MsgSent).Scan(&iccid, &id, &kind)
	if err == nil {
		return 0, fmt.Errorf("card %s already has message %d (%s) outstanding", iccid, id, kind)
	} else if !errors.Is(err, sql.ErrNoRows) {
		return 0, err
	}
	now := ledger.Stamp(w.Tx.Now())
	t0 := time.Now()
	res, err := w.Tx.Exec(ctx, `UPDATE cards SET state = ?, updated_at = ?, new_imsi = j.imsi, recipient = ?, cutover = j.cutover,
			request_ref = ? || ':' || j.line, attempts = 1
		FROM imsi_judged j WHERE j.rule = 0 AND cards.iccid = j.iccid AND cards.state = ?`,
		ledger.CardMoving, now, w.Partner.Code, w.Source, ledger.CardActive)
	st.took("move cards", t0)
	if err != nil {
		return 0, fmt.Errorf("imsi-list: move cards: %w", err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return 0, err
	} else if int(n) != st.accepted {
		return 0, fmt.Errorf("imsi-list: %d cards moved, %d accepted", n, st.accepted)
	}
	t0 = time.Now()
	_, err = w.Tx.Exec(ctx, `INSERT INTO card_events (iccid, at, from_state, to_state, reason, ref)
		SELECT iccid, ?, ?, ?, 'imsi-list accepted', ? || ':' || line FROM imsi_judged WHERE rule = 0 ORDER BY line`,
		now, ledger.CardActive, ledger.CardMoving, w.Source)
	st.took("card events", t0)
	if err != nil {
		return 0, err
	}
	// Counters: the update takes the next value, the reset the one after.
	perCard := int64(1)
	if st.reset {
		perCard = 2
	}
	t0 = time.Now()
	res, err = w.Tx.Exec(ctx, `UPDATE key_sets SET counter = counter + ?
		FROM imsi_judged j WHERE j.rule = 0 AND key_sets.iccid = j.iccid AND key_sets.key_index = j.key_index AND key_sets.kvn = j.kvn
			AND key_sets.counter < ?`, perCard, ledger.MaxCounter-perCard)
	st.took("reserve counters", t0)
	if err != nil {
		return 0, fmt.Errorf("imsi-list: reserve counters: %w", err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return 0, err
	} else if int(n) != st.accepted {
		err := w.Tx.QueryRow(ctx, `SELECT j.iccid, j.kvn FROM imsi_judged j JOIN key_sets k ON k.iccid = j.iccid AND k.key_index = j.key_index AND k.kvn = j.kvn
			WHERE j.rule = 0 AND k.counter >= ? ORDER BY j.line LIMIT 1`, ledger.MaxCounter-perCard).Scan(&iccid, &keyIndex)
		if err != nil {
			return 0, fmt.Errorf("imsi-list: %d counters reserved, %d accepted", n, st.accepted)
		}
		return 0, fmt.Errorf("card %s key set %d: %w", iccid, keyIndex, ledger.ErrCounterExhausted)
	}
	msgs := `SELECT j.line, 0 AS seq, '` + msgUpdate + `' AS kind, j.iccid, j.key_index, j.kvn, k.counter - ? AS counter, j.tar, j.msisdn
		FROM imsi_judged j JOIN key_sets k ON k.iccid = j.iccid AND k.key_index = j.key_index AND k.kvn = j.kvn WHERE j.rule = 0`
	args := []any{w.BatchID, ledger.MsgReserved, now, now, perCard - 1}
	if st.reset {
		msgs += `
		UNION ALL
		SELECT j.line, 1 AS seq, '` + msgReset + `' AS kind, j.iccid, j.key_index, j.kvn, k.counter AS counter, j.reset_tar, j.msisdn
		FROM imsi_judged j JOIN key_sets k ON k.iccid = j.iccid AND k.key_index = j.key_index AND k.kvn = j.kvn WHERE j.rule = 0`
	}
	t0 = time.Now()
	_, err = w.Tx.Exec(ctx, `INSERT INTO ota_messages (iccid, batch_id, kind, key_index, kvn, counter, tar, msisdn, concat_ref, attempt,
			state, deadline, por_status, detail, file_id, created_at, updated_at)
		SELECT iccid, ?, kind, key_index, kvn, counter, tar, msisdn, counter % 255 + 1, 1, ?, '', '', '', 0, ?, ?
		FROM (`+msgs+`) q ORDER BY line, seq`, args...)
	st.took("queue messages", t0)
	if err != nil {
		return 0, fmt.Errorf("imsi-list: queue messages: %w", err)
	}
	w.Counts.Accepted += st.accepted
	w.Counts.Messages += st.accepted * int(perCard)
	return st.accepted, nil
}

// took logs how long one of the set-based statements ran (debug).
func (st *imsiStage) took(what string, since time.Time) {
	st.w.P.log().Debug("imsi-list statement", "file", st.w.File.Name, "statement", what, "seconds", time.Since(since).Seconds())
}

// drop removes the staging tables (the transaction's end would leave
// them for the next file on the same connection).
func (st *imsiStage) drop(ctx context.Context) error {
	if st == nil || st.w.Tx == nil {
		return nil
	}
	for _, t := range []string{"imsi_stage", "imsi_judged", "imsi_profiles"} {
		if _, err := st.w.Tx.Exec(ctx, `DROP TABLE IF EXISTS `+t); err != nil {
			return err
		}
	}
	return nil
}
