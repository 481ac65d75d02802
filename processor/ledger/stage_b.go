package ledger

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"
	"time"
)

// HandoverStage is a recipient's handover intake done by sets: the 3a
// records of one file go into a temporary table as they are read (their
// secrets already sealed under the master key: the database may spill the
// table to disk, so nothing in clear ever goes there), then a handful of
// statements judge every line and take the accepted cards, whatever the
// number of records. It lives in one transaction; Close drops the table.
//
// The stage also finds repeated ICCIDs and IMSIs (so that the reader keeps
// nothing per record): every valid line of the file is staged, those
// another path handles (KeysOnly) for their keys alone, and a line that
// repeats an earlier line's ICCID or IMSI is a duplicate before any other
// rule. Take checks that it updated as many cards as it accepted.
type HandoverStage struct {
	t       *Tx
	secrets []string // names of the sealed secrets, in StagedCard.Sealed order
	rows    *Inserter
	vals    []any // one staged row's values, reused
	indexed bool  // the stage's ICCID and IMSI indexes exist
	threeB  int   // 3b lines staged
	// taken is the Take the stage's lines were judged by (nil before):
	// what Provisioned and Answers read back from the stage.
	taken *HandoverTake
}

// StagedCard is one 3a handover record in the stage.
type StagedCard struct {
	Line                int
	ICCID, IMSI, MSISDN string
	// Profile is the record's card profile; ProfileName the name of the
	// profile configured for it here, "" when none is.
	Profile, ProfileName string
	Algorithm            string
	KVN                  int // 0: no key set
	OTAAlg               string
	Counter              int64
	SecretsFP            string
	// Sealed are the card's secrets sealed under the master key (with
	// key index 0), in the order of the stage's secret names; nil where
	// the record carried none.
	Sealed [][]byte
	// Reason and Detail are a verdict reached while staging (a secret
	// that did not unwrap, or unwrapped to a wrong length); an empty
	// Reason is none. It counts only when no rule of Take rejects the
	// line first.
	Reason, Detail string
	// KeysOnly stages a line that another path handles: only its ICCID
	// and IMSI count (for the repeats of later lines).
	KeysOnly bool
	// ThreeB stages a 3b line: no secrets (the manufacturer holds the
	// pair), the card's key index and list length instead; accepted, it
	// waits for its keys (HandoverTake.Requested).
	ThreeB               bool
	KeyIndex, ListLength int
}

// stageTable is the stage: a temporary table, private to the connection
// of the transaction.
const stageTable = "stage_b_handover"

// answersTable keeps, from Take on, the batch records written outside
// the stage before Take (the reader's rejections, cancel records): with
// the stage's own lines, every answer of the file (Answers).
const answersTable = "stage_b_answers"

// stageChunk is how many staged records one INSERT carries.
const stageChunk = 64

// StageHandover creates the stage: secretNames name the sealed secrets
// each staged card carries. A stage left over by an earlier attempt on
// this connection is dropped first.
func (t *Tx) StageHandover(ctx context.Context, secretNames []string) (*HandoverStage, error) {
	s := &HandoverStage{t: t, secrets: secretNames}
	if err := s.drop(ctx); err != nil {
		return nil, err
	}
	var cols strings.Builder
	for i := range secretNames {
		fmt.Fprintf(&cols, ",\n  s%d %s", i, t.d.dialect.Blob)
	}
	ddl := `CREATE TEMP TABLE ` + stageTable + ` (
  line         INTEGER PRIMARY KEY,
  iccid        TEXT NOT NULL,
  imsi         TEXT NOT NULL,
  msisdn       TEXT NOT NULL,
  profile      TEXT NOT NULL,
  profile_name TEXT NOT NULL,
  algorithm    TEXT NOT NULL,
  kvn        INTEGER NOT NULL,
  ota_alg    TEXT NOT NULL,
  counter    BIGINT NOT NULL,
  secrets_fp TEXT NOT NULL,
  reason     TEXT NOT NULL,
  detail     TEXT NOT NULL,
  own        INTEGER NOT NULL,
  three_b    INTEGER NOT NULL,
  key_index  INTEGER NOT NULL,
  list_length INTEGER NOT NULL,
  dup        INTEGER NOT NULL DEFAULT 0` + cols.String() + `
)`
	if _, err := t.tx.ExecContext(ctx, ddl); err != nil {
		return nil, fmt.Errorf("handover stage: %w", err)
	}
	names := []string{"line", "iccid", "imsi", "msisdn", "profile", "profile_name", "algorithm", "kvn", "ota_alg", "counter", "secrets_fp", "reason", "detail", "own",
		"three_b", "key_index", "list_length"}
	for i := range secretNames {
		names = append(names, fmt.Sprintf("s%d", i))
	}
	s.rows = t.Inserter(stageTable, names, stageChunk)
	s.vals = make([]any, 0, len(names))
	return s, nil
}

// Add stages one record. Rows are written several to a statement; Take
// writes the rest.
func (s *HandoverStage) Add(ctx context.Context, c StagedCard) error {
	if len(c.Sealed) > len(s.secrets) {
		return fmt.Errorf("handover stage: line %d carries %d secrets, the stage names %d", c.Line, len(c.Sealed), len(s.secrets))
	}
	own, threeB := 1, 0
	if c.KeysOnly {
		own = 0
	}
	if c.ThreeB {
		threeB = 1
		s.threeB++
	}
	s.vals = append(s.vals[:0], c.Line, c.ICCID, c.IMSI, c.MSISDN, c.Profile, c.ProfileName, c.Algorithm, c.KVN, c.OTAAlg, c.Counter, c.SecretsFP, c.Reason, c.Detail, own,
		threeB, c.KeyIndex, c.ListLength)
	for i := range s.secrets {
		// An absent secret is NULL (a nil []byte may bind as an empty
		// blob).
		var b any
		if i < len(c.Sealed) && c.Sealed[i] != nil {
			b = c.Sealed[i]
		}
		s.vals = append(s.vals, b)
	}
	err := s.rows.Add(ctx, s.vals...)
	clear(s.vals)
	if err != nil {
		return fmt.Errorf("handover stage: %w", err)
	}
	return nil
}

// flush writes the rows queued so far and indexes the stage by ICCID and
// IMSI: built once over what is staged when first needed (a file of 3a
// records alone is indexed once, at Take), then kept up by every row
// staged after.
func (s *HandoverStage) flush(ctx context.Context) error {
	if err := s.rows.Flush(ctx); err != nil {
		return fmt.Errorf("handover stage: %w", err)
	}
	if s.indexed {
		return nil
	}
	for _, q := range []string{
		`CREATE INDEX ` + stageTable + `_iccid ON ` + stageTable + ` (iccid)`,
		`CREATE INDEX ` + stageTable + `_imsi ON ` + stageTable + ` (imsi)`,
	} {
		if _, err := s.t.tx.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("handover stage: %w", err)
		}
	}
	s.indexed = true
	return nil
}

// Repeats says whether the staged line at line (staged or not yet)
// repeats the ICCID or the IMSI of an earlier staged line: it returns the
// field, "iccid" or "imsi", or "" when neither. Lines handled outside the
// stage ask it before they act.
func (s *HandoverStage) Repeats(ctx context.Context, line int, iccid, imsi string) (string, error) {
	if err := s.flush(ctx); err != nil {
		return "", err
	}
	for _, k := range []struct{ field, col, val string }{{"iccid", "iccid", iccid}, {"imsi", "imsi", imsi}} {
		if k.val == "" {
			continue
		}
		var n int
		err := s.t.QueryRow(ctx, `SELECT COUNT(*) FROM (SELECT 1 FROM `+stageTable+` WHERE `+k.col+` = ? AND line < ? LIMIT 1) AS d`, k.val, line).Scan(&n)
		if err != nil {
			return "", fmt.Errorf("handover stage: %w", err)
		}
		if n > 0 {
			return k.field, nil
		}
	}
	return "", nil
}

// HandoverTake says how Take judges the staged lines and what it records.
type HandoverTake struct {
	BatchID int64
	Partner string // the partner the records' outcomes go to
	// From is the state a card must be in to be taken; To the state it
	// takes. Event and Ref are the card event's reason and reference.
	From, To, Event, Ref string
	// MasterKey names the key the staged secrets are sealed under.
	MasterKey string
	// IMSIState is what the IMSI allocation of a taken card becomes.
	IMSIState string
	// Accepted and Rejected are the batch record statuses of the lines.
	Accepted, Rejected string
	// Requested is the batch record status of an accepted 3b line,
	// with its key index as data and RequestedPartner as partner (the
	// manufacturer asked for the pair); its card goes to RequestedState
	// with event RequestedEvent, its IMSI allocation unchanged.
	Requested, RequestedPartner, RequestedState, RequestedEvent string
	// The rules, in order: the first that holds rejects a line with its
	// reason code and detail.
	DuplicateICCID Verdict // an earlier line has the ICCID: Detail + line + DetailEnd + ICCID
	DuplicateIMSI  Verdict // an earlier line has the IMSI: Detail + line + DetailEnd + IMSI
	UnknownCard    Verdict // no card with the ICCID
	OtherState     Verdict // the card is not in From: detail is Detail + state + DetailEnd
	OtherIMSI      Verdict // the record's IMSI is not the card's
	NoProfile      Verdict // no profile configured: Detail + the record's profile + DetailEnd
	// Took, when set, is told how long each statement ran.
	Took func(statement string, d time.Duration)
}

// Verdict is a rejection's reason code and detail (around a value where
// the rule names one).
type Verdict struct {
	Reason, Detail, DetailEnd string
}

// HandoverOutcome counts a Take's lines: 3a lines taken, 3b lines whose
// keys are to be requested, lines rejected.
type HandoverOutcome struct {
	Accepted, Requested, Rejected int
}

// Take judges every staged line and takes the accepted cards: secrets
// and key sets stored (a key set already there keeps the higher counter),
// the card updated and moved from From to To with its event, its IMSI
// allocation moved to IMSIState, and one batch record a line. An accepted
// 3b line moves its card to RequestedState with its key index and list
// length, nothing else.
func (s *HandoverStage) Take(ctx context.Context, o HandoverTake) (HandoverOutcome, error) {
	var out HandoverOutcome
	for _, v := range []Verdict{o.DuplicateICCID, o.DuplicateIMSI, o.UnknownCard, o.OtherState, o.OtherIMSI, o.NoProfile} {
		if v.Reason == "" {
			// An empty reason is how the stage marks an accepted line.
			return out, fmt.Errorf("handover stage: a rule without a reason code")
		}
	}
	if err := s.flush(ctx); err != nil {
		return out, err
	}
	t := s.t
	// The batch's records so far are those written outside the stage:
	// kept aside for Answers (a few, however large the file).
	for _, q := range []string{
		`DROP TABLE IF EXISTS ` + answersTable,
		`CREATE TEMP TABLE ` + answersTable + ` (line INTEGER PRIMARY KEY, iccid TEXT NOT NULL, imsi TEXT NOT NULL, status TEXT NOT NULL,
			reason TEXT NOT NULL, detail TEXT NOT NULL, partner TEXT NOT NULL, data TEXT NOT NULL)`,
	} {
		if _, err := t.tx.ExecContext(ctx, q); err != nil {
			return out, fmt.Errorf("handover stage: answers: %w", err)
		}
	}
	if _, err := t.Exec(ctx, `INSERT INTO `+answersTable+` (line, iccid, imsi, status, reason, detail, partner, data)
		SELECT line, iccid, imsi, status, reason, detail, partner, data FROM batch_records WHERE batch_id = ?`, o.BatchID); err != nil {
		return out, fmt.Errorf("handover stage: answers: %w", err)
	}
	now := ts(t.Now())
	st := stageTable
	earlierICCID := `EXISTS (SELECT 1 FROM ` + st + ` d WHERE d.iccid = ` + st + `.iccid AND d.line < ` + st + `.line)`
	earlierIMSI := `EXISTS (SELECT 1 FROM ` + st + ` d WHERE d.imsi = ` + st + `.imsi AND d.line < ` + st + `.line)`
	steps := []struct {
		what  string
		query string
		args  []any
	}{
		// One pass: a line repeats the ICCID, else the IMSI, of an
		// earlier one (the probes are repeated only for the few that do).
		{"repeated ICCIDs and IMSIs", `UPDATE ` + st + ` SET dup = 1,
			reason = CASE WHEN ` + earlierICCID + ` THEN ? ELSE ? END,
			detail = CASE WHEN ` + earlierICCID + ` THEN ? || line || ? || iccid ELSE ? || line || ? || imsi END
			WHERE own = 1 AND (` + earlierICCID + ` OR (imsi <> '' AND ` + earlierIMSI + `))`,
			[]any{o.DuplicateICCID.Reason, o.DuplicateIMSI.Reason,
				o.DuplicateICCID.Detail, o.DuplicateICCID.DetailEnd, o.DuplicateIMSI.Detail, o.DuplicateIMSI.DetailEnd}},
		// One probe of the cards a line: a line whose card is here, in
		// From, with its IMSI, and whose profile is configured passes;
		// the others (few) are judged by the rules in order.
		{"judge", `UPDATE ` + st + ` SET
			reason = COALESCE((SELECT CASE WHEN c.state <> ? THEN ? WHEN c.imsi <> ` + st + `.imsi THEN ? ELSE ? END
				FROM cards c WHERE c.iccid = ` + st + `.iccid), ?),
			detail = COALESCE((SELECT CASE WHEN c.state <> ? THEN ? || c.state || ? WHEN c.imsi <> ` + st + `.imsi THEN ?
				ELSE ? || ` + st + `.profile || ? END FROM cards c WHERE c.iccid = ` + st + `.iccid), ?)
			WHERE own = 1 AND dup = 0 AND (profile_name = ''
				OR NOT EXISTS (SELECT 1 FROM cards c WHERE c.iccid = ` + st + `.iccid AND c.state = ? AND c.imsi = ` + st + `.imsi))`,
			[]any{o.From, o.OtherState.Reason, o.OtherIMSI.Reason, o.NoProfile.Reason, o.UnknownCard.Reason,
				o.From, o.OtherState.Detail, o.OtherState.DetailEnd, o.OtherIMSI.Detail, o.NoProfile.Detail, o.NoProfile.DetailEnd, o.UnknownCard.Detail,
				o.From}},
	}
	if len(s.secrets) > 0 {
		q, args := secretsFromStage(stageTable, s.secrets, "0", "st.reason = '' AND st.own = 1 AND st.three_b = 0", o.MasterKey)
		steps = append(steps, struct {
			what  string
			query string
			args  []any
		}{"secrets", q, args})
	}
	steps = append(steps, []struct {
		what  string
		query string
		args  []any
	}{
		{"key sets", `INSERT INTO key_sets (iccid, key_index, kvn, kic_alg, kid_alg, counter)
			SELECT iccid, 0, kvn, ota_alg, ota_alg, counter FROM ` + stageTable + ` WHERE reason = '' AND own = 1 AND three_b = 0 AND kvn > 0 ORDER BY line
			ON CONFLICT (iccid, key_index, kvn) DO UPDATE SET kic_alg = excluded.kic_alg, kid_alg = excluded.kid_alg,
			counter = CASE WHEN excluded.counter > key_sets.counter THEN excluded.counter ELSE key_sets.counter END`, nil},
		{"card events", `INSERT INTO card_events (iccid, at, from_state, to_state, reason, ref)
			SELECT iccid, ?, ?, CASE three_b WHEN 1 THEN ? ELSE ? END, CASE three_b WHEN 1 THEN ? ELSE ? END, ?
			FROM ` + stageTable + ` WHERE reason = '' AND own = 1 ORDER BY line`,
			[]any{now, o.From, o.RequestedState, o.To, o.RequestedEvent, o.Event, o.Ref}},
		{"IMSI allocations", `UPDATE imsi_allocations SET state = ?, updated_at = ?
			FROM ` + stageTable + ` s WHERE imsi_allocations.imsi = s.imsi AND s.reason = '' AND s.own = 1 AND s.three_b = 0`,
			[]any{o.IMSIState, now}},
		{"batch records", `INSERT INTO batch_records (batch_id, line, iccid, imsi, status, reason, detail, partner, data)
			SELECT ?, line, iccid, imsi, CASE WHEN reason <> '' THEN ? WHEN three_b = 1 THEN ? ELSE ? END, reason, detail,
				CASE WHEN reason = '' AND three_b = 1 THEN ? ELSE ? END, CASE WHEN reason = '' AND three_b = 1 THEN CAST(key_index AS TEXT) ELSE '' END
			FROM ` + stageTable + ` WHERE own = 1 ORDER BY line
			ON CONFLICT (batch_id, line) DO UPDATE SET iccid = excluded.iccid, imsi = excluded.imsi, status = excluded.status,
			reason = excluded.reason, detail = excluded.detail, partner = excluded.partner, data = excluded.data`,
			[]any{o.BatchID, o.Rejected, o.Requested, o.Accepted, o.RequestedPartner, o.Partner}},
	}...)
	// The card events are written before the cards move (they read the
	// accepted lines only); the cards last, checked against the count.
	took := func(what string, since time.Time) {
		if o.Took != nil {
			o.Took(what, time.Since(since))
		}
	}
	for _, x := range steps {
		t0 := time.Now()
		_, err := t.Exec(ctx, x.query, x.args...)
		took(x.what, t0)
		if err != nil {
			return out, fmt.Errorf("handover stage: %s: %w", x.what, err)
		}
	}
	// A 3a card's secrets and key sets are those of key index 0 (stored
	// there above), whatever index the card was at before: its index is 0.
	t0 := time.Now()
	res, err := t.Exec(ctx, `UPDATE cards SET profile = s.profile_name, algorithm = s.algorithm, secrets_fp = s.secrets_fp, msisdn = s.msisdn, key_index = 0,
		state = ?, updated_at = ? FROM `+stageTable+` s WHERE cards.iccid = s.iccid AND s.reason = '' AND s.own = 1 AND s.three_b = 0 AND cards.state = ?`, o.To, now, o.From)
	if err != nil {
		return out, fmt.Errorf("handover stage: cards: %w", err)
	}
	took("cards", t0)
	moved, err := res.RowsAffected()
	if err != nil {
		return out, err
	}
	if s.threeB > 0 {
		t0 := time.Now()
		res, err := t.Exec(ctx, `UPDATE cards SET profile = s.profile_name, msisdn = s.msisdn, key_index = s.key_index, list_length = s.list_length,
			state = ?, updated_at = ? FROM `+stageTable+` s WHERE cards.iccid = s.iccid AND s.reason = '' AND s.own = 1 AND s.three_b = 1 AND cards.state = ?`,
			o.RequestedState, now, o.From)
		if err != nil {
			return out, fmt.Errorf("handover stage: 3b cards: %w", err)
		}
		took("3b cards", t0)
		n, err := res.RowsAffected()
		if err != nil {
			return out, err
		}
		moved += n
	}
	var all int
	if err := t.QueryRow(ctx, `SELECT COALESCE(SUM(CASE WHEN reason = '' AND three_b = 0 THEN 1 ELSE 0 END), 0),
		COALESCE(SUM(CASE WHEN reason = '' AND three_b = 1 THEN 1 ELSE 0 END), 0), COUNT(*) FROM `+stageTable+` WHERE own = 1`).Scan(&out.Accepted, &out.Requested, &all); err != nil {
		return out, fmt.Errorf("handover stage: counts: %w", err)
	}
	out.Rejected = all - out.Accepted - out.Requested
	if moved != int64(out.Accepted+out.Requested) {
		return out, fmt.Errorf("handover stage: %d lines accepted but %d cards moved (an ICCID staged twice?)", out.Accepted+out.Requested, moved)
	}
	s.taken = &o
	return out, nil
}

// Provisioned calls fn with the 3a lines Take accepted, in line order, in
// pages of up to size, as BatchSecretPages gives the batch's records of
// the accepted status: each with its card's identity as Take left it
// and those of its secrets named in names (of the stage's), sealed as
// Take stored them (key index 0, the card's). A secret the line did not
// carry is read from the ledger, as BatchSecretPages would find it. Each
// page is a new slice: fn may hand it to another goroutine.
func (s *HandoverStage) Provisioned(ctx context.Context, names []string, size int, fn func([]CardSecrets) error) error {
	if s.taken == nil {
		return fmt.Errorf("handover stage: provisioned lines asked before Take")
	}
	return provisionedPages(ctx, s.t, provisionedRead{what: "handover stage", table: stageTable, keyIndex: "0",
		where: "st.own = 1 AND st.three_b = 0 AND st.reason = ''", staged: s.secrets}, names, size, fn)
}

// provisionedRead is a stage's read of the lines it provisions, for
// provisionedPages.
type provisionedRead struct {
	what, table string
	// keyIndex is the lines' key index, an expression of the staged line
	// st (the one its secrets are stored at).
	keyIndex string
	// where selects the lines provisioned, whereArgs its arguments.
	where     string
	whereArgs []any
	// staged are the secrets' names in the order of the stage's s0, s1, …
	// columns.
	staged []string
}

// provisionedPages calls fn with the lines r selects, in line order, in
// pages of up to size, each with those of its secrets named in names,
// sealed as the stage holds them or, for a line without one, as the
// ledger holds it at the line's key index. Each page is a new slice: fn
// may hand it to another goroutine.
func provisionedPages(ctx context.Context, t *Tx, r provisionedRead, names []string, size int, fn func([]CardSecrets) error) error {
	if size <= 0 {
		size = pageSize
	}
	var cols strings.Builder
	var args []any
	for _, name := range names {
		i := slices.Index(r.staged, name)
		if i < 0 {
			return fmt.Errorf("%s: no secret %s staged", r.what, name)
		}
		// COALESCE reads the ledger only for a line without the secret.
		fmt.Fprintf(&cols, `, COALESCE(st.s%d, (SELECT k.blob FROM card_secrets k WHERE k.iccid = st.iccid AND k.key_index = %s AND k.name = ?))`, i, r.keyIndex)
		args = append(args, name)
	}
	query := `SELECT st.line, st.iccid, st.imsi, st.msisdn, st.algorithm, ` + r.keyIndex + cols.String() + `
		FROM ` + r.table + ` st WHERE ` + r.where + ` AND st.line > ? ORDER BY st.line LIMIT ?`
	args = append(append(args, r.whereArgs...), 0, size)
	// Lines are numbered from 1 (and fit the stage's INTEGER column).
	after := &args[len(args)-2]
	*after = -1
	blobs := make([][]byte, len(names))
	dest := make([]any, 0, 6+len(names))
	for {
		page := make([]CardSecrets, 0, size)
		rows, err := t.Query(ctx, query, args...)
		if err != nil {
			return fmt.Errorf("%s: provisioned: %w", r.what, err)
		}
		for rows.Next() {
			cs := CardSecrets{Found: true}
			dest = append(dest[:0], &cs.Line, &cs.ICCID, &cs.IMSI, &cs.MSISDN, &cs.Algorithm, &cs.KeyIndex)
			dest = blobDests(dest, blobs)
			if err := rows.Scan(dest...); err != nil {
				rows.Close()
				return fmt.Errorf("%s: provisioned: %w", r.what, err)
			}
			cs.Secrets = secretsFrom(names, blobs, cs.KeyIndex)
			page = append(page, cs)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("%s: provisioned: %w", r.what, err)
		}
		if len(page) == 0 {
			return nil
		}
		if err := fn(page); err != nil {
			return err
		}
		if len(page) < size {
			return nil
		}
		*after = page[len(page)-1].Line
	}
}

// Answers calls fn, in line order, with the batch records of the file
// that go to Take's partner with Take's accepted or rejected status (what
// BatchRecords gives of them once the work commits): the stage's own
// lines as Take judged them, merged with the records written outside the
// stage before Take. It reads a page at a time from each.
func (s *HandoverStage) Answers(ctx context.Context, size int, fn func(BatchRecord) error) error {
	o := s.taken
	if o == nil {
		return fmt.Errorf("handover stage: answers asked before Take")
	}
	if size <= 0 {
		size = pageSize
	}
	own := &answerPages{t: s.t, what: "handover stage", size: size, after: -1, query: `SELECT line, iccid, imsi, CASE WHEN reason <> '' THEN ? ELSE ? END, reason, detail, ?, '' FROM ` + stageTable + `
		WHERE own = 1 AND (reason <> '' OR three_b = 0) AND line > ? ORDER BY line LIMIT ?`, args: []any{o.Rejected, o.Accepted, o.Partner}}
	// A line of the stage's own is answered by Take (its record replaced
	// any written before).
	outside := &answerPages{t: s.t, what: "handover stage", size: size, after: -1, query: `SELECT line, iccid, imsi, status, reason, detail, partner, data FROM ` + answersTable + ` a
		WHERE partner = ? AND status IN (?, ?) AND NOT EXISTS (SELECT 1 FROM ` + stageTable + ` st WHERE st.line = a.line AND st.own = 1)
		AND line > ? ORDER BY line LIMIT ?`, args: []any{o.Partner, o.Accepted, o.Rejected}}
	return mergeAnswers(ctx, o.BatchID, own, outside, fn)
}

// Requests calls fn, in line order, with the batch records of the file
// that go to Take's RequestedPartner with Take's Requested status (what
// BatchRecords gives of them once the work commits): the 3b lines Take
// accepted, their key index as data, merged with any such record written
// outside the stage before Take. It reads a page at a time from each.
func (s *HandoverStage) Requests(ctx context.Context, size int, fn func(BatchRecord) error) error {
	o := s.taken
	if o == nil {
		return fmt.Errorf("handover stage: requests asked before Take")
	}
	if size <= 0 {
		size = pageSize
	}
	own := &answerPages{t: s.t, what: "handover stage", size: size, after: -1, query: `SELECT line, iccid, imsi, ?, reason, detail, ?, CAST(key_index AS TEXT) FROM ` + stageTable + `
		WHERE own = 1 AND reason = '' AND three_b = 1 AND line > ? ORDER BY line LIMIT ?`, args: []any{o.Requested, o.RequestedPartner}}
	outside := &answerPages{t: s.t, what: "handover stage", size: size, after: -1, query: `SELECT line, iccid, imsi, status, reason, detail, partner, data FROM ` + answersTable + ` a
		WHERE partner = ? AND status = ? AND NOT EXISTS (SELECT 1 FROM ` + stageTable + ` st WHERE st.line = a.line AND st.own = 1)
		AND line > ? ORDER BY line LIMIT ?`, args: []any{o.RequestedPartner, o.Requested}}
	return mergeAnswers(ctx, o.BatchID, own, outside, fn)
}

// mergeAnswers calls fn with the rows of own and outside merged in line
// order, as records of batch batchID.
func mergeAnswers(ctx context.Context, batchID int64, own, outside *answerPages, fn func(BatchRecord) error) error {
	for {
		a, err := own.peek(ctx)
		if err != nil {
			return err
		}
		b, err := outside.peek(ctx)
		if err != nil {
			return err
		}
		var next *answerPages
		switch {
		case a == nil && b == nil:
			return nil
		case b == nil || (a != nil && a.Line < b.Line):
			next = own
		default:
			next = outside
		}
		r := next.page[0]
		next.page = next.page[1:]
		r.BatchID = batchID
		if err := fn(r); err != nil {
			return err
		}
	}
}

// answerPages reads the rows of one query a page at a time, by line.
type answerPages struct {
	t     *Tx
	what  string // whose rows, for errors
	size  int
	query string
	args  []any
	after int // the last line read (-1 before the first page: lines are numbered from 1)
	page  []BatchRecord
	done  bool
}

// peek is the next row (nil at the end).
func (ap *answerPages) peek(ctx context.Context) (*BatchRecord, error) {
	if len(ap.page) == 0 && !ap.done {
		if err := ap.read(ctx); err != nil {
			return nil, err
		}
	}
	if len(ap.page) == 0 {
		return nil, nil
	}
	return &ap.page[0], nil
}

func (ap *answerPages) read(ctx context.Context) error {
	rows, err := ap.t.Query(ctx, ap.query, append(append([]any{}, ap.args...), ap.after, ap.size)...)
	if err != nil {
		return fmt.Errorf("%s: answers: %w", ap.what, err)
	}
	defer rows.Close()
	page := ap.page[:0]
	for rows.Next() {
		var r BatchRecord
		if err := rows.Scan(&r.Line, &r.ICCID, &r.IMSI, &r.Status, &r.Reason, &r.Detail, &r.Partner, &r.Data); err != nil {
			return fmt.Errorf("%s: answers: %w", ap.what, err)
		}
		page = append(page, r)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("%s: answers: %w", ap.what, err)
	}
	ap.page = page
	if len(page) < ap.size {
		ap.done = true
	}
	if len(page) > 0 {
		ap.after = page[len(page)-1].Line
	}
	return nil
}

// Close drops the stage's tables. It is safe to call more than once.
func (s *HandoverStage) Close(ctx context.Context) error {
	s.rows.Discard()
	return s.drop(ctx)
}

func (s *HandoverStage) drop(ctx context.Context) error {
	for _, table := range []string{stageTable, answersTable} {
		if _, err := s.t.tx.ExecContext(ctx, `DROP TABLE IF EXISTS `+table); err != nil {
			return fmt.Errorf("handover stage: %w", err)
		}
	}
	return nil
}

// CardSecrets is one record of a batch with what a file about its card
// needs: the card's identity and some of its wrapped secrets.
type CardSecrets struct {
	Line  int
	ICCID string // the record's
	// Found says whether the ledger holds the card; the fields below are
	// empty when it does not.
	Found                   bool
	IMSI, MSISDN, Algorithm string
	KeyIndex                int
	// Secrets are those of the names asked for that the card has, of its
	// current key index, in the order asked.
	Secrets []Secret
}

// BatchSecretPages calls fn with a batch's records of one status in line
// order, in pages of up to size, each with its card's identity and those
// of its wrapped secrets named in names: one query a page, one row a
// record, and nothing read that the caller did not ask for (no key sets,
// no time stamps). Each page is a new slice: fn may hand it to another
// goroutine.
func (d *DB) BatchSecretPages(ctx context.Context, batchID int64, status string, names []string, size int, fn func([]CardSecrets) error) error {
	if size <= 0 {
		size = pageSize
	}
	cols, joins, args := secretJoins(names, "c.iccid", "c.key_index")
	query := `SELECT r.line, r.iccid, c.iccid, c.imsi, c.msisdn, c.algorithm, c.key_index` + cols + `
		FROM batch_records r LEFT JOIN cards c ON c.iccid = r.iccid` + joins + `
		WHERE r.batch_id = ? AND r.status = ? AND r.line > ? ORDER BY r.line LIMIT ?`
	args = append(args, batchID, status, 0, size)
	after := &args[len(args)-2]
	*after = -1 << 62
	blobs := make([][]byte, len(names))
	dest := make([]any, 0, 7+len(names))
	for {
		page := make([]CardSecrets, 0, size)
		rows, err := d.Query(ctx, query, args...)
		if err != nil {
			return err
		}
		for rows.Next() {
			var cs CardSecrets
			var iccid, imsi, msisdn, alg sql.NullString
			var idx sql.NullInt64
			dest = append(dest[:0], &cs.Line, &cs.ICCID, &iccid, &imsi, &msisdn, &alg, &idx)
			dest = blobDests(dest, blobs)
			if err := rows.Scan(dest...); err != nil {
				rows.Close()
				return err
			}
			cs.Found, cs.IMSI, cs.MSISDN, cs.Algorithm, cs.KeyIndex = iccid.Valid, imsi.String, msisdn.String, alg.String, int(idx.Int64)
			cs.Secrets = secretsFrom(names, blobs, cs.KeyIndex)
			page = append(page, cs)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		if len(page) == 0 {
			return nil
		}
		if err := fn(page); err != nil {
			return err
		}
		if len(page) < size {
			return nil
		}
		*after = page[len(page)-1].Line
	}
}
