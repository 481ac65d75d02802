package ledger

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
)

// KeyStage is a recipient's intake of the manufacturer's key-response (3b)
// done by sets: the answers of one file go into a temporary table as they
// are read (a released pair already sealed under the master key: nothing
// in clear ever goes there), then a few statements judge every line
// against the cards and take or set aside the cards, whatever the number
// of lines. It lives in one transaction; Close drops the table.
//
// A line counts only if its card is waiting for its keys (in the state
// Judge is given) and no earlier line of the file names the card: the
// first answer about a card moves it, so any later one finds it moved.
// Lines that do not count are rejected without an answer.
type KeyStage struct {
	t       *Tx
	secrets []string // names of the sealed secrets, in StagedKeys.Sealed order
	rows    *Inserter
	vals    []any
	// taken is the Take the stage's lines were recorded by (nil before):
	// what Provisioned and Answers read back from the stage.
	taken *KeyTake
}

// StagedKeys is one line of a key-response in the stage.
type StagedKeys struct {
	Line     int
	ICCID    string
	KeyIndex int
	// Released says the manufacturer released the pair; Reason is its
	// reason code (of a refusal).
	Released bool
	Reason   string
	// Algorithm, KVN and OTAAlg are the record's (KVN 0: no key set;
	// OTAAlg "" where the record names none); KIcLen is the length of
	// the unwrapped KIc (0 without one).
	Algorithm string
	KVN       int
	OTAAlg    string
	KIcLen    int
	SecretsFP string
	// Fault is why the wrapped secrets did not unwrap (the whole file
	// is refused if the line counts); Unusable why the unwrapped ones
	// cannot work on the card (their lengths). Either names a field,
	// never a value.
	Fault, Unusable string
	// Sealed are the pair's secrets sealed under the master key (with
	// the line's key index), in the stage's secret names order; nil
	// where the record carried none.
	Sealed [][]byte
}

// Verdicts of a key stage's lines.
const (
	keyTake     = "take"     // the pair completes the card
	keyRefused  = "refused"  // refused by the manufacturer, or another index than the card's
	keyFault    = "fault"    // the secrets did not unwrap
	keyUnusable = "unusable" // the secrets cannot work on the card
)

const keyStageTable = "stage_b_keys"

// keyAnswersTable keeps, from Take on, the batch records written outside
// the stage before Take (the reader's rejections): with the stage's own
// lines, every answer of the file (Answers).
const keyAnswersTable = "stage_b_key_answers"

// StageKeys creates the stage: secretNames name the sealed secrets each
// staged line carries. A stage left over by an earlier attempt on this
// connection is dropped first.
func (t *Tx) StageKeys(ctx context.Context, secretNames []string) (*KeyStage, error) {
	s := &KeyStage{t: t, secrets: secretNames}
	if err := s.drop(ctx); err != nil {
		return nil, err
	}
	var cols strings.Builder
	for i := range secretNames {
		fmt.Fprintf(&cols, ",\n  s%d %s", i, t.d.dialect.Blob)
	}
	ddl := `CREATE TEMP TABLE ` + keyStageTable + ` (
  line       INTEGER PRIMARY KEY,
  iccid      TEXT NOT NULL,
  key_index  INTEGER NOT NULL,
  released   INTEGER NOT NULL,
  mf_reason  TEXT NOT NULL,
  algorithm  TEXT NOT NULL,
  kvn        INTEGER NOT NULL,
  ota_alg    TEXT NOT NULL,
  kic_len    INTEGER NOT NULL,
  secrets_fp TEXT NOT NULL,
  fault      TEXT NOT NULL,
  unusable   TEXT NOT NULL,
  verdict    TEXT NOT NULL DEFAULT '',
  imsi       TEXT NOT NULL DEFAULT '',
  msisdn     TEXT NOT NULL DEFAULT '',
  source     TEXT NOT NULL DEFAULT '',
  profile    TEXT NOT NULL DEFAULT ''` + cols.String() + `
)`
	for _, q := range []string{ddl, `CREATE INDEX ` + keyStageTable + `_iccid ON ` + keyStageTable + ` (iccid)`} {
		if _, err := t.tx.ExecContext(ctx, q); err != nil {
			return nil, fmt.Errorf("key stage: %w", err)
		}
	}
	names := []string{"line", "iccid", "key_index", "released", "mf_reason", "algorithm", "kvn", "ota_alg", "kic_len", "secrets_fp", "fault", "unusable"}
	for i := range secretNames {
		names = append(names, fmt.Sprintf("s%d", i))
	}
	s.rows = t.Inserter(keyStageTable, names, stageChunk)
	s.vals = make([]any, 0, len(names))
	return s, nil
}

// Add stages one line. Rows are written several to a statement; Judge
// writes the rest.
func (s *KeyStage) Add(ctx context.Context, k StagedKeys) error {
	if len(k.Sealed) > len(s.secrets) {
		return fmt.Errorf("key stage: line %d carries %d secrets, the stage names %d", k.Line, len(k.Sealed), len(s.secrets))
	}
	released := 0
	if k.Released {
		released = 1
	}
	s.vals = append(s.vals[:0], k.Line, k.ICCID, k.KeyIndex, released, k.Reason, k.Algorithm, k.KVN, k.OTAAlg, k.KIcLen, k.SecretsFP, k.Fault, k.Unusable)
	for i := range s.secrets {
		var b any
		if i < len(k.Sealed) && k.Sealed[i] != nil {
			b = k.Sealed[i]
		}
		s.vals = append(s.vals, b)
	}
	err := s.rows.Add(ctx, s.vals...)
	clear(s.vals)
	if err != nil {
		return fmt.Errorf("key stage: %w", err)
	}
	return nil
}

// KeyJudgement is what Judge found, for the caller to check against its
// configuration before Take: every donor and every profile of the lines
// that count, each with the first line that needs it, and the first line
// whose secrets did not unwrap.
type KeyJudgement struct {
	Donors   []KeyDonor
	Profiles []KeyProfile
	// Fault is the first counting line whose secrets did not unwrap
	// (Line 0: none).
	Fault struct {
		Line         int
		ICCID, Fault string
	}
}

// KeyDonor is a donor (the card's source) of lines that count, with the
// first of them.
type KeyDonor struct {
	Source string
	Line   int
	ICCID  string
}

// KeyProfile is a card profile of lines that take their card, by the
// length of their KIc: Line is the first such line; NeedsAlg the first
// whose key set names no cipher (0: none), which the profile must imply.
type KeyProfile struct {
	Profile       string
	KIcLen        int
	Line          int
	ICCID         string
	NeedsAlg      int
	NeedsAlgICCID string
}

// Judge writes the staged lines and judges them against the cards in
// state from.
func (s *KeyStage) Judge(ctx context.Context, from string) (KeyJudgement, error) {
	var j KeyJudgement
	if err := s.rows.Flush(ctx); err != nil {
		return j, fmt.Errorf("key stage: %w", err)
	}
	t := s.t
	st := keyStageTable
	_, err := t.Exec(ctx, `UPDATE `+st+` SET
		verdict = CASE WHEN `+st+`.released = 0 OR `+st+`.key_index <> c.key_index THEN ?
			WHEN `+st+`.fault <> '' THEN ? WHEN `+st+`.unusable <> '' THEN ? ELSE ? END,
		imsi = c.imsi, msisdn = c.msisdn, source = c.source, profile = c.profile
		FROM cards c WHERE c.iccid = `+st+`.iccid AND c.state = ?
			AND NOT EXISTS (SELECT 1 FROM `+st+` d WHERE d.iccid = `+st+`.iccid AND d.line < `+st+`.line)`,
		keyRefused, keyFault, keyUnusable, keyTake, from)
	if err != nil {
		return j, fmt.Errorf("key stage: judge: %w", err)
	}
	// Few rows each: one per donor, per profile and KIc length.
	rows, err := t.Query(ctx, `SELECT source, MIN(line) FROM `+st+` WHERE verdict <> '' GROUP BY source ORDER BY source`)
	if err != nil {
		return j, fmt.Errorf("key stage: donors: %w", err)
	}
	for rows.Next() {
		var d KeyDonor
		if err := rows.Scan(&d.Source, &d.Line); err != nil {
			rows.Close()
			return j, err
		}
		j.Donors = append(j.Donors, d)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return j, err
	}
	rows, err = t.Query(ctx, `SELECT profile, kic_len, MIN(line), COALESCE(MIN(CASE WHEN kvn > 0 AND ota_alg = '' THEN line END), 0)
		FROM `+st+` WHERE verdict = ? GROUP BY profile, kic_len ORDER BY profile, kic_len`, keyTake)
	if err != nil {
		return j, fmt.Errorf("key stage: profiles: %w", err)
	}
	for rows.Next() {
		var p KeyProfile
		if err := rows.Scan(&p.Profile, &p.KIcLen, &p.Line, &p.NeedsAlg); err != nil {
			rows.Close()
			return j, err
		}
		j.Profiles = append(j.Profiles, p)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return j, err
	}
	err = t.QueryRow(ctx, `SELECT COUNT(*), COALESCE(MIN(line), 0) FROM `+st+` WHERE verdict = ?`, keyFault).Scan(new(int), &j.Fault.Line)
	if err != nil {
		return j, fmt.Errorf("key stage: faults: %w", err)
	}
	if j.Fault.Line > 0 {
		if err := t.QueryRow(ctx, `SELECT iccid, fault FROM `+st+` WHERE line = ?`, j.Fault.Line).Scan(&j.Fault.ICCID, &j.Fault.Fault); err != nil {
			return j, fmt.Errorf("key stage: faults: %w", err)
		}
	}
	for i := range j.Donors {
		if j.Donors[i].ICCID, err = s.iccidAt(ctx, j.Donors[i].Line); err != nil {
			return j, err
		}
	}
	for i := range j.Profiles {
		p := &j.Profiles[i]
		if p.ICCID, err = s.iccidAt(ctx, p.Line); err != nil {
			return j, err
		}
		if p.NeedsAlg > 0 {
			if p.NeedsAlgICCID, err = s.iccidAt(ctx, p.NeedsAlg); err != nil {
				return j, err
			}
		}
	}
	return j, nil
}

func (s *KeyStage) iccidAt(ctx context.Context, line int) (string, error) {
	var iccid string
	if err := s.t.QueryRow(ctx, `SELECT iccid FROM `+keyStageTable+` WHERE line = ?`, line).Scan(&iccid); err != nil {
		return "", fmt.Errorf("key stage: line %d: %w", line, err)
	}
	return iccid, nil
}

// KeyTake says what Take records for the judged lines.
type KeyTake struct {
	BatchID int64
	// From is the state Judge was given; To the state a taken card
	// goes to, Manual the one of a card whose pair was refused or
	// cannot work. Event is a taken card's event reason; Ref every
	// event's reference.
	From, To, Manual, Event, Ref string
	// RefusedEvent and UnusableEvent start the event reasons of the
	// other two (the manufacturer's reason, or why the secrets cannot
	// work, follows).
	RefusedEvent, UnusableEvent string
	MasterKey                   string
	IMSIState                   string // of a taken card's IMSI allocation
	// Accepted and Rejected are the batch record statuses; Refused and
	// Unusable the reason codes and detail prefixes of the rejections.
	Accepted, Rejected string
	Refused, Unusable  Verdict
	// Partners maps each donor (a card's source) to the partner its
	// answers go to; Profiles each card profile to the name recorded.
	Partners, Profiles map[string]string
	// OTAAlgs are the ciphers of the key sets that name none, as the
	// card's profile implies them, by profile and KIc length.
	OTAAlgs []KeyOTAAlg
	// Took, when set, is told how long each statement ran.
	Took func(statement string, d time.Duration)
}

// KeyOTAAlg is the cipher of the key sets of one profile and KIc length.
type KeyOTAAlg struct {
	Profile string
	KIcLen  int
	Alg     string
}

// KeyOutcome counts a Take's lines: those that take their card, those
// rejected with an answer, and those rejected without one (their card
// unknown, not waiting for keys, or named by an earlier line).
type KeyOutcome struct {
	Accepted, Rejected, Ignored int
}

// Take records the judged lines: a taken card's secrets and key set are
// stored (a key set already there keeps the higher counter), the card
// updated and moved to To, its IMSI allocation to IMSIState; a card whose
// pair was refused or cannot work moves to Manual; each gets its event
// and its batch record, in line order.
func (s *KeyStage) Take(ctx context.Context, o KeyTake) (KeyOutcome, error) {
	var out KeyOutcome
	t := s.t
	st := keyStageTable
	now := ts(t.Now())
	for _, a := range o.OTAAlgs {
		if _, err := t.Exec(ctx, `UPDATE `+st+` SET ota_alg = ? WHERE verdict = ? AND kvn > 0 AND ota_alg = '' AND profile = ? AND kic_len = ?`,
			a.Alg, keyTake, a.Profile, a.KIcLen); err != nil {
			return out, fmt.Errorf("key stage: ota-alg: %w", err)
		}
	}
	// The batch's records so far are those written outside the stage:
	// kept aside for Answers (a few, however large the file).
	for _, q := range []string{
		`DROP TABLE IF EXISTS ` + keyAnswersTable,
		`CREATE TEMP TABLE ` + keyAnswersTable + ` (line INTEGER PRIMARY KEY, iccid TEXT NOT NULL, imsi TEXT NOT NULL, status TEXT NOT NULL,
			reason TEXT NOT NULL, detail TEXT NOT NULL, partner TEXT NOT NULL, data TEXT NOT NULL)`,
	} {
		if _, err := t.tx.ExecContext(ctx, q); err != nil {
			return out, fmt.Errorf("key stage: answers: %w", err)
		}
	}
	if _, err := t.Exec(ctx, `INSERT INTO `+keyAnswersTable+` (line, iccid, imsi, status, reason, detail, partner, data)
		SELECT line, iccid, imsi, status, reason, detail, partner, data FROM batch_records WHERE batch_id = ?`, o.BatchID); err != nil {
		return out, fmt.Errorf("key stage: answers: %w", err)
	}
	partner, pargs := caseMap("source", o.Partners)
	profile, prargs := caseMap("s.profile", o.Profiles)
	judged := `verdict IN ('` + keyTake + `', '` + keyRefused + `', '` + keyUnusable + `')`
	type step struct {
		what  string
		query string
		args  []any
	}
	var steps []step
	if len(s.secrets) > 0 {
		q, args := secretsFromStage(st, s.secrets, "st.key_index", "st.verdict = ?", o.MasterKey)
		steps = append(steps, step{"secrets", q, append(args, keyTake)})
	}
	steps = append(steps,
		step{"key sets", `INSERT INTO key_sets (iccid, key_index, kvn, kic_alg, kid_alg, counter)
			SELECT iccid, key_index, kvn, ota_alg, ota_alg, 0 FROM ` + st + ` WHERE verdict = ? AND kvn > 0 ORDER BY line
			ON CONFLICT (iccid, key_index, kvn) DO UPDATE SET kic_alg = excluded.kic_alg, kid_alg = excluded.kid_alg,
			counter = CASE WHEN excluded.counter > key_sets.counter THEN excluded.counter ELSE key_sets.counter END`, []any{keyTake}},
		step{"card events", `INSERT INTO card_events (iccid, at, from_state, to_state, reason, ref)
			SELECT iccid, ?, ?, CASE verdict WHEN ? THEN ? ELSE ? END,
				CASE verdict WHEN ? THEN ? WHEN ? THEN ? || mf_reason ELSE ? || unusable END, ?
			FROM ` + st + ` WHERE ` + judged + ` ORDER BY line`,
			[]any{now, o.From, keyTake, o.To, o.Manual, keyTake, o.Event, keyRefused, o.RefusedEvent, o.UnusableEvent, o.Ref}},
		step{"IMSI allocations", `UPDATE imsi_allocations SET state = ?, updated_at = ?
			FROM ` + st + ` s WHERE imsi_allocations.imsi = s.imsi AND s.verdict = ?`, []any{o.IMSIState, now, keyTake}},
		step{"batch records", `INSERT INTO batch_records (batch_id, line, iccid, imsi, status, reason, detail, partner, data)
			SELECT ?, line, iccid, imsi, CASE verdict WHEN ? THEN ? ELSE ? END,
				CASE verdict WHEN ? THEN '' WHEN ? THEN ? ELSE ? END,
				CASE verdict WHEN ? THEN '' WHEN ? THEN ? || mf_reason ELSE ? || unusable END,
				` + partner + `, '' FROM ` + st + ` WHERE ` + judged + ` ORDER BY line
			ON CONFLICT (batch_id, line) DO UPDATE SET iccid = excluded.iccid, imsi = excluded.imsi, status = excluded.status,
			reason = excluded.reason, detail = excluded.detail, partner = excluded.partner, data = excluded.data`,
			append([]any{o.BatchID, keyTake, o.Accepted, o.Rejected,
				keyTake, keyRefused, o.Refused.Reason, o.Unusable.Reason,
				keyTake, keyRefused, o.Refused.Detail, o.Unusable.Detail}, pargs...)},
	)
	for _, x := range steps {
		t0 := time.Now()
		_, err := t.Exec(ctx, x.query, x.args...)
		if o.Took != nil {
			o.Took(x.what, time.Since(t0))
		}
		if err != nil {
			return out, fmt.Errorf("key stage: %s: %w", x.what, err)
		}
	}
	args := []any{keyTake, o.To, o.Manual, keyTake}
	args = append(args, prargs...)
	args = append(args, keyTake, keyTake, now, o.From)
	t0 := time.Now()
	res, err := t.Exec(ctx, `UPDATE cards SET state = CASE s.verdict WHEN ? THEN ? ELSE ? END,
		profile = CASE WHEN s.verdict = ? THEN `+profile+` ELSE cards.profile END,
		algorithm = CASE WHEN s.verdict = ? THEN s.algorithm ELSE cards.algorithm END,
		secrets_fp = CASE WHEN s.verdict = ? THEN s.secrets_fp ELSE cards.secrets_fp END,
		updated_at = ? FROM `+st+` s WHERE cards.iccid = s.iccid AND s.`+judged+` AND cards.state = ?`, args...)
	if o.Took != nil {
		o.Took("cards", time.Since(t0))
	}
	if err != nil {
		return out, fmt.Errorf("key stage: cards: %w", err)
	}
	moved, err := res.RowsAffected()
	if err != nil {
		return out, err
	}
	var total int
	if err := t.QueryRow(ctx, `SELECT COALESCE(SUM(CASE WHEN verdict = ? THEN 1 ELSE 0 END), 0),
		COALESCE(SUM(CASE WHEN `+judged+` THEN 1 ELSE 0 END), 0), COUNT(*) FROM `+st, keyTake).Scan(&out.Accepted, &out.Rejected, &total); err != nil {
		return out, fmt.Errorf("key stage: counts: %w", err)
	}
	if moved != int64(out.Rejected) {
		return out, fmt.Errorf("key stage: %d lines judged but %d cards moved", out.Rejected, moved)
	}
	out.Rejected -= out.Accepted
	out.Ignored = total - out.Accepted - out.Rejected
	taken := o
	taken.Partners, taken.Profiles, taken.OTAAlgs, taken.Took = maps.Clone(o.Partners), maps.Clone(o.Profiles), slices.Clone(o.OTAAlgs), nil
	s.taken = &taken
	return out, nil
}

// Provisioned calls fn with the lines Take took, in line order, in pages
// of up to size, as BatchSecretPages gives the batch's records of the
// accepted status once the work commits: each with its card's identity
// as Take left it and those of its secrets named in names (of the
// stage's), sealed as Take stored them (at the line's key index, the
// card's). A secret the line did not carry is read from the ledger, as
// BatchSecretPages would find it. Each page is a new slice: fn may hand
// it to another goroutine.
func (s *KeyStage) Provisioned(ctx context.Context, names []string, size int, fn func([]CardSecrets) error) error {
	if s.taken == nil {
		return fmt.Errorf("key stage: provisioned lines asked before Take")
	}
	return provisionedPages(ctx, s.t, provisionedRead{what: "key stage", table: keyStageTable, keyIndex: "st.key_index",
		where: "st.verdict = ?", whereArgs: []any{keyTake}, staged: s.secrets}, names, size, fn)
}

// Answers calls fn, in line order, with the batch records of the file
// that go to partner with Take's accepted or rejected status (what
// BatchRecords gives of them once the work commits): the stage's lines
// of the donors Take maps to partner, as Take recorded them, merged with
// the records written outside the stage before Take. It reads a page at
// a time from each.
func (s *KeyStage) Answers(ctx context.Context, partner string, size int, fn func(BatchRecord) error) error {
	o := s.taken
	if o == nil {
		return fmt.Errorf("key stage: answers asked before Take")
	}
	if size <= 0 {
		size = pageSize
	}
	if partner == "" {
		// Take records the partner of a source it does not map as ''.
		return fmt.Errorf("key stage: answers to no partner")
	}
	// The donors (card sources) whose answers go to partner.
	var sources []string
	for src, name := range o.Partners {
		if name == partner {
			sources = append(sources, src)
		}
	}
	slices.Sort(sources)
	judged := `verdict IN ('` + keyTake + `', '` + keyRefused + `', '` + keyUnusable + `')`
	ownArgs := []any{keyTake, o.Accepted, o.Rejected, keyTake, keyRefused, o.Refused.Reason, o.Unusable.Reason,
		keyTake, keyRefused, o.Refused.Detail, o.Unusable.Detail, partner}
	inSources := "1 = 0"
	if len(sources) > 0 {
		inSources = "source IN (?" + strings.Repeat(", ?", len(sources)-1) + ")"
		for _, src := range sources {
			ownArgs = append(ownArgs, src)
		}
	}
	own := &answerPages{t: s.t, what: "key stage", size: size, after: -1, query: `SELECT line, iccid, imsi, CASE verdict WHEN ? THEN ? ELSE ? END,
		CASE verdict WHEN ? THEN '' WHEN ? THEN ? ELSE ? END,
		CASE verdict WHEN ? THEN '' WHEN ? THEN ? || mf_reason ELSE ? || unusable END, ?, ''
		FROM ` + keyStageTable + ` WHERE ` + judged + ` AND ` + inSources + ` AND line > ? ORDER BY line LIMIT ?`, args: ownArgs}
	// A line the stage judged is answered by Take (its record replaced
	// any written before).
	outside := &answerPages{t: s.t, what: "key stage", size: size, after: -1, query: `SELECT line, iccid, imsi, status, reason, detail, partner, data FROM ` + keyAnswersTable + ` a
		WHERE partner = ? AND status IN (?, ?) AND NOT EXISTS (SELECT 1 FROM ` + keyStageTable + ` st WHERE st.line = a.line AND st.` + judged + `)
		AND line > ? ORDER BY line LIMIT ?`, args: []any{partner, o.Accepted, o.Rejected}}
	return mergeAnswers(ctx, o.BatchID, own, outside, fn)
}

// caseMap is an SQL expression mapping col by m (keys in a fixed order),
// ” for any other value, and its arguments.
func caseMap(col string, m map[string]string) (string, []any) {
	if len(m) == 0 {
		return "''", nil
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var b strings.Builder
	args := make([]any, 0, 2*len(m))
	b.WriteString("CASE " + col)
	for _, k := range keys {
		b.WriteString(" WHEN ? THEN ?")
		args = append(args, k, m[k])
	}
	b.WriteString(" ELSE '' END")
	return b.String(), args
}

// secretsFromStage is the statement storing the sealed secrets of a
// stage's lines (columns s0, s1 … by names, NULL where absent), one pass
// over the stage: each line meets the list of names and picks its column
// by number. keyIndex is the key index expression, where the condition
// on the stage's lines (alias st); the caller appends where's arguments.
func secretsFromStage(table string, names []string, keyIndex, where, masterKey string) (string, []any) {
	var list, pick strings.Builder
	args := []any{masterKey}
	for i, name := range names {
		if i > 0 {
			list.WriteString(", ")
		}
		fmt.Fprintf(&list, "(%d, ?)", i)
		fmt.Fprintf(&pick, " WHEN %d THEN st.s%d", i, i)
		args = append(args, name)
	}
	return `INSERT INTO card_secrets (iccid, name, key_index, master_key, blob)
			SELECT iccid, name, key_index, ?, blob FROM (
				SELECT st.line AS line, st.iccid AS iccid, ` + keyIndex + ` AS key_index, n.column2 AS name, CASE n.column1` + pick.String() + ` END AS blob
				FROM ` + table + ` st CROSS JOIN (VALUES ` + list.String() + `) AS n
				WHERE ` + where + `) AS x
			WHERE blob IS NOT NULL
			ON CONFLICT (iccid, name, key_index) DO UPDATE SET master_key = excluded.master_key, blob = excluded.blob`, args
}

// Close drops the stage's table. It is safe to call more than once.
func (s *KeyStage) Close(ctx context.Context) error {
	s.rows.Discard()
	return s.drop(ctx)
}

func (s *KeyStage) drop(ctx context.Context) error {
	for _, table := range []string{keyStageTable, keyAnswersTable} {
		if _, err := s.t.tx.ExecContext(ctx, `DROP TABLE IF EXISTS `+table); err != nil {
			return fmt.Errorf("key stage: %w", err)
		}
	}
	return nil
}
