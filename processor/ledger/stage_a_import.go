package ledger

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
)

// ImportStage is the donor's inventory import done by sets: the cards of
// one file go into a temporary table as they are read, their secrets
// already sealed under the master key (the database may spill the table to
// disk, so nothing in clear ever goes there), then a few statements judge
// every line against the ledger and against the earlier lines of the file
// and store the new cards, their secrets, key sets and events and every
// line's answer, whatever the number of records. It lives in one
// transaction; Close drops the table.
//
// As when cards were imported one by one: a card already in the ledger,
// or given by an earlier line of the file, is a no-op when its secrets are
// the same (by fingerprint) and rejected when they differ.
//
// The stage also finds the lines that repeat an earlier line's ICCID or
// IMSI (so that the reader keeps nothing per record): every line the
// reader returned a record for is staged, those it rejected for their
// keys only (KeysOnly), and a repeat is a duplicate before any other rule.
// The stage's indexes are built once the file is staged, unless Repeats
// needs them earlier.
type ImportStage struct {
	t       *Tx
	secrets []string
	rows    *Inserter
	vals    []any
	indexed bool
}

// ImportLine is one card of an inventory in the stage.
type ImportLine struct {
	Line                                    int
	ICCID, IMSI, Profile, Algorithm, Source string
	KeyIndex, ListLength                    int
	KVN                                     int // 0: no key set
	KIcAlg, KIDAlg                          string
	Counter                                 int64
	SecretsFP                               string
	// Sealed are the card's secrets sealed under the master key, in the
	// order of the stage's secret names; nil where the card has none.
	Sealed [][]byte
	// Reason and Detail are a verdict reached while staging; an empty
	// Reason is none. It comes before every rule of Take but the repeats.
	Reason, Detail string
	// KeysOnly stages a line answered elsewhere (the reader rejected it):
	// only its keys count, for the repeats of later lines.
	KeysOnly bool
	// NoICCIDKey and NoIMSIKey leave the line's ICCID or IMSI out of the
	// repeats (a reader finding duplicates would not have remembered it);
	// a KeysOnly line gives "" for a value it leaves out.
	NoICCIDKey, NoIMSIKey bool
}

const importTable = "stage_a_import"

// StageImport creates the stage: secretNames name the sealed secrets each
// staged card carries. A stage left over on this connection is dropped
// first.
func (t *Tx) StageImport(ctx context.Context, secretNames []string) (*ImportStage, error) {
	s := &ImportStage{t: t, secrets: secretNames}
	if err := s.drop(ctx); err != nil {
		return nil, err
	}
	var cols strings.Builder
	for i := range secretNames {
		fmt.Fprintf(&cols, ",\n  s%d %s", i, t.d.dialect.Blob)
	}
	for _, q := range []string{`CREATE TEMP TABLE ` + importTable + ` (
  line        INTEGER PRIMARY KEY,
  iccid       TEXT NOT NULL,
  imsi        TEXT NOT NULL,
  profile     TEXT NOT NULL,
  algorithm   TEXT NOT NULL,
  source      TEXT NOT NULL,
  key_index   INTEGER NOT NULL,
  list_length INTEGER NOT NULL,
  kvn         INTEGER NOT NULL,
  kic_alg     TEXT NOT NULL,
  kid_alg     TEXT NOT NULL,
  counter     BIGINT NOT NULL,
  secrets_fp  TEXT NOT NULL,
  reason      TEXT NOT NULL,
  detail      TEXT NOT NULL,
  known       INTEGER NOT NULL DEFAULT 0,
  had_fp      TEXT NOT NULL DEFAULT '',
  win         INTEGER NOT NULL DEFAULT 0,
  own         INTEGER NOT NULL,
  ki          INTEGER NOT NULL,
  mi          INTEGER NOT NULL,
  di          INTEGER NOT NULL DEFAULT 0,
  dm          INTEGER NOT NULL DEFAULT 0` + cols.String() + `
)`,
	} {
		if _, err := t.tx.ExecContext(ctx, q); err != nil {
			return nil, fmt.Errorf("import stage: %w", err)
		}
	}
	names := []string{"line", "iccid", "imsi", "profile", "algorithm", "source", "key_index", "list_length", "kvn", "kic_alg", "kid_alg", "counter", "secrets_fp", "reason", "detail", "own", "ki", "mi"}
	for i := range secretNames {
		names = append(names, fmt.Sprintf("s%d", i))
	}
	s.rows = t.Inserter(importTable, names, stageChunk)
	s.vals = make([]any, 0, len(names))
	return s, nil
}

// Add stages one card.
func (s *ImportStage) Add(ctx context.Context, l ImportLine) error {
	if len(l.Sealed) > len(s.secrets) {
		return fmt.Errorf("import stage: line %d carries %d secrets, the stage names %d", l.Line, len(l.Sealed), len(s.secrets))
	}
	s.vals = append(s.vals[:0], l.Line, l.ICCID, l.IMSI, l.Profile, l.Algorithm, l.Source, l.KeyIndex, l.ListLength, l.KVN, l.KIcAlg, l.KIDAlg, l.Counter, l.SecretsFP, l.Reason, l.Detail,
		flag(!l.KeysOnly), flag(!l.NoICCIDKey && l.ICCID != ""), flag(!l.NoIMSIKey && l.IMSI != ""))
	for i := range s.secrets {
		var b any // an absent secret is NULL
		if i < len(l.Sealed) && l.Sealed[i] != nil {
			b = l.Sealed[i]
		}
		s.vals = append(s.vals, b)
	}
	err := s.rows.Add(ctx, s.vals...)
	clear(s.vals)
	if err != nil {
		return fmt.Errorf("import stage: %w", err)
	}
	return nil
}

func flag(b bool) int {
	if b {
		return 1
	}
	return 0
}

// index builds the stage's indexes (by key, for the repeats).
func (s *ImportStage) index(ctx context.Context) error {
	if s.indexed {
		return nil
	}
	for _, q := range []string{
		`CREATE INDEX ` + importTable + `_iccid ON ` + importTable + ` (iccid)`,
		`CREATE INDEX ` + importTable + `_imsi ON ` + importTable + ` (imsi)`,
	} {
		if _, err := s.t.tx.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("import stage: %w", err)
		}
	}
	s.indexed = true
	return nil
}

// Repeats reports whether a staged line before line has the ICCID, and
// whether one has the IMSI ("" for either: not asked), for a line the
// reader rejected: its answer must name a repeat as the reader would.
// Every earlier line must be staged. It is for the few lines a reader
// rejects: the first call builds the stage's indexes, maintained from
// then on.
func (s *ImportStage) Repeats(ctx context.Context, line int, iccid, imsi string) (bool, bool, error) {
	if err := s.rows.Flush(ctx); err != nil {
		return false, false, fmt.Errorf("import stage: %w", err)
	}
	if err := s.index(ctx); err != nil {
		return false, false, err
	}
	var found [2]bool
	for i, k := range []struct{ col, flag, val string }{{"iccid", "ki", iccid}, {"imsi", "mi", imsi}} {
		if k.val == "" {
			continue
		}
		var n int
		err := s.t.QueryRow(ctx, `SELECT COUNT(*) FROM (SELECT 1 FROM `+importTable+` WHERE `+k.col+` = ? AND `+k.flag+` = 1 AND line < ? LIMIT 1) AS d`, k.val, line).Scan(&n)
		if err != nil {
			return false, false, fmt.Errorf("import stage: repeats: %w", err)
		}
		found[i] = n > 0
	}
	return found[0], found[1], nil
}

// ImportTake says how Take judges and records the staged cards.
type ImportTake struct {
	BatchID   int64
	Partner   string // the sender, on the answers
	State     string // a new card's state
	MasterKey string // the key the staged secrets are sealed under
	// Accepted and Rejected are the batch record statuses of the lines.
	Accepted, Rejected string
	// DuplicateICCID and DuplicateIMSI, when they have a reason, reject
	// a line whose ICCID or IMSI an earlier line has (Detail + line +
	// DetailEnd + value), before any other rule; a line repeating both
	// is answered with both, the ICCID first unless IMSIFirst (the order
	// of the file's columns), joined by "; ".
	DuplicateICCID, DuplicateIMSI Verdict
	IMSIFirst                     bool
	// RepeatsWithoutIMSI answers a repeat without its IMSI (as a SIM
	// vendor file's rejected lines are).
	RepeatsWithoutIMSI bool
	// MaxProblems, when not 0, bounds the lines with problems a reader
	// finding duplicates itself would have counted: those staged
	// KeysOnly and the repeats. Past it Take stops, its outcome's TooMany
	// the line past the bound.
	MaxProblems int64
	// OtherSecrets rejects a card already here, or given by an earlier
	// line, with other secrets.
	OtherSecrets Verdict
}

// ImportOutcome counts a Take's lines.
type ImportOutcome struct {
	Accepted, Rejected int
	// TooMany is the line past ImportTake.MaxProblems (0: not past it);
	// nothing was taken then.
	TooMany int
}

// Take judges every staged line and stores the new cards.
func (s *ImportStage) Take(ctx context.Context, o ImportTake) (ImportOutcome, error) {
	var out ImportOutcome
	t := s.t
	if err := s.rows.Flush(ctx); err != nil {
		return out, fmt.Errorf("import stage: %w", err)
	}
	now := ts(t.Now())
	st := importTable
	type step struct {
		what  string
		query string
		args  []any
	}
	var steps []step
	if o.DuplicateICCID.Reason != "" && o.DuplicateIMSI.Reason != "" {
		// The repeats: every line after the first of a key, through the
		// stage's indexes (built now, unless Repeats needed them before).
		if err := s.index(ctx); err != nil {
			return out, err
		}
		for _, k := range []struct{ col, flag, mark string }{{"iccid", "ki", "di"}, {"imsi", "mi", "dm"}} {
			steps = append(steps, step{"repeated " + k.col + "s", `UPDATE ` + st + ` SET ` + k.mark + ` = 1 WHERE ` + k.flag + ` = 1 AND EXISTS
				(SELECT 1 FROM ` + st + ` d WHERE d.` + k.col + ` = ` + st + `.` + k.col + ` AND d.` + k.flag + ` = 1 AND d.line < ` + st + `.line)`, nil})
		}
		iccidDup := `? || line || ? || iccid`
		imsiDup := `? || line || ? || imsi`
		both := iccidDup + ` || '; ' || ` + imsiDup
		bothArgs := []any{o.DuplicateICCID.Detail, o.DuplicateICCID.DetailEnd, o.DuplicateIMSI.Detail, o.DuplicateIMSI.DetailEnd}
		if o.IMSIFirst {
			both = imsiDup + ` || '; ' || ` + iccidDup
			bothArgs = []any{o.DuplicateIMSI.Detail, o.DuplicateIMSI.DetailEnd, o.DuplicateICCID.Detail, o.DuplicateICCID.DetailEnd}
		}
		args := []any{o.DuplicateICCID.Reason, o.DuplicateIMSI.Reason}
		args = append(args, bothArgs...)
		args = append(args, o.DuplicateICCID.Detail, o.DuplicateICCID.DetailEnd, o.DuplicateIMSI.Detail, o.DuplicateIMSI.DetailEnd)
		steps = append(steps, step{"repeats", `UPDATE ` + st + ` SET reason = CASE WHEN di = 1 THEN ? ELSE ? END,
			detail = CASE WHEN di = 1 AND dm = 1 THEN ` + both + ` WHEN di = 1 THEN ` + iccidDup + ` ELSE ` + imsiDup + ` END
			WHERE own = 1 AND (di = 1 OR dm = 1)`, args})
	}
	run := func(steps []step) error {
		for _, q := range steps {
			if _, err := t.Exec(ctx, q.query, q.args...); err != nil {
				return fmt.Errorf("import stage: %s: %w", q.what, err)
			}
		}
		return nil
	}
	if err := run(steps); err != nil {
		return out, err
	}
	if o.MaxProblems > 0 {
		// The reader's rejections and the repeats, in line order: past
		// the bound the file is refused where the reader would have
		// stopped.
		err := t.QueryRow(ctx, `SELECT line FROM `+st+` WHERE own = 0 OR di = 1 OR dm = 1 ORDER BY line LIMIT 1 OFFSET ?`, o.MaxProblems).Scan(&out.TooMany)
		switch {
		case err == nil:
			return out, nil
		case !errors.Is(err, sql.ErrNoRows):
			return out, fmt.Errorf("import stage: problems: %w", err)
		}
	}
	steps = steps[:0]
	steps = append(steps,
		step{"cards here", `UPDATE ` + st + ` SET known = 1, had_fp = c.secrets_fp FROM cards c
			WHERE c.iccid = ` + st + `.iccid AND ` + st + `.reason = '' AND ` + st + `.own = 1`, nil},
		step{"other secrets here", `UPDATE ` + st + ` SET reason = ?, detail = ? WHERE reason = '' AND known = 1 AND had_fp <> secrets_fp`,
			[]any{o.OtherSecrets.Reason, o.OtherSecrets.Detail}},
	)
	// takes are the lines that create their card: the first line of a
	// new card. Once the repeats are found, that is every line left whose
	// ICCID counts in them; the others (no repeats found, or an ICCID
	// that does not count) are judged by ICCID here.
	takes, byICCID := "win = 1", "true"
	if o.DuplicateICCID.Reason != "" {
		takes, byICCID = "(win = 1 OR (ki = 1 AND own = 1 AND known = 0 AND reason = ''))", "ki = 0"
	}
	// The first line that stands for a new card creates it; a later
	// line of the same card meets what it created.
	steps = append(steps,
		step{"first lines", `UPDATE ` + st + ` SET win = 1 WHERE line IN (SELECT line FROM
			(SELECT line, ROW_NUMBER() OVER (PARTITION BY iccid ORDER BY line) AS n FROM ` + st + `
			WHERE reason = '' AND known = 0 AND own = 1 AND ` + byICCID + `) AS f WHERE n = 1)`, nil},
		step{"other secrets in the file", `UPDATE ` + st + ` SET reason = ?, detail = ? WHERE reason = '' AND known = 0 AND own = 1 AND win = 0 AND ` + byICCID + `
			AND secrets_fp <> (SELECT f.secrets_fp FROM ` + st + ` f WHERE f.iccid = ` + st + `.iccid AND f.win = 1)`,
			[]any{o.OtherSecrets.Reason, o.OtherSecrets.Detail}},
	)
	// The card's secrets: one row a secret, made from the line's
	// columns, in line order (no sort: the scan's own order).
	var names, pick strings.Builder
	var secretArgs []any
	for i, name := range s.secrets {
		if i > 0 {
			names.WriteString(" UNION ALL ")
		}
		fmt.Fprintf(&names, "SELECT %d AS i, CAST(? AS TEXT) AS name", i)
		secretArgs = append(secretArgs, name)
		fmt.Fprintf(&pick, " WHEN %d THEN s.s%d", i, i)
	}
	blob := `CASE n.i` + pick.String() + ` END`
	steps = append(steps, []step{
		{"cards", `INSERT INTO cards (` + cardCols + `)
			SELECT iccid, imsi, '', ?, profile, algorithm, '', source, key_index, list_length, '', '', '', '', 0, secrets_fp, ?, ?, '', ''
			FROM ` + st + ` WHERE ` + takes + ` ORDER BY line`, []any{o.State, now, now}},
		{"events", `INSERT INTO card_events (iccid, at, from_state, to_state, reason, ref)
			SELECT iccid, ?, '', ?, 'imported', source FROM ` + st + ` WHERE ` + takes + ` ORDER BY line`, []any{now, o.State}},
		{"key sets", `INSERT INTO key_sets (iccid, key_index, kvn, kic_alg, kid_alg, counter)
			SELECT iccid, key_index, kvn, kic_alg, kid_alg, counter FROM ` + st + ` WHERE ` + takes + ` AND kvn > 0 ORDER BY line
			ON CONFLICT (iccid, key_index, kvn) DO UPDATE SET kic_alg = excluded.kic_alg, kid_alg = excluded.kid_alg,
			counter = CASE WHEN excluded.counter > key_sets.counter THEN excluded.counter ELSE key_sets.counter END`, nil},
	}...)
	if len(s.secrets) > 0 {
		steps = append(steps, step{"secrets", `INSERT INTO card_secrets (iccid, name, key_index, master_key, blob)
			SELECT s.iccid, n.name, s.key_index, ?, ` + blob + ` FROM ` + st + ` s CROSS JOIN (` + names.String() + `) AS n
			WHERE ` + takes + ` AND ` + blob + ` IS NOT NULL ORDER BY s.line
			ON CONFLICT (iccid, name, key_index) DO UPDATE SET master_key = excluded.master_key, blob = excluded.blob`,
			append([]any{o.MasterKey}, secretArgs...)})
	}
	steps = append(steps, step{"answers", `INSERT INTO batch_records (batch_id, line, iccid, imsi, status, reason, detail, partner, data)
		SELECT ?, line, iccid, CASE WHEN ? = 1 AND (di = 1 OR dm = 1) THEN '' ELSE imsi END, CASE WHEN reason = '' THEN ? ELSE ? END, reason, detail, ?, '' FROM ` + st + ` WHERE own = 1 ORDER BY line
		ON CONFLICT (batch_id, line) DO UPDATE SET iccid = excluded.iccid, imsi = excluded.imsi, status = excluded.status,
			reason = excluded.reason, detail = excluded.detail, partner = excluded.partner, data = excluded.data`,
		[]any{o.BatchID, flag(o.RepeatsWithoutIMSI), o.Accepted, o.Rejected, o.Partner}})
	if err := run(steps); err != nil {
		return out, err
	}
	if err := t.QueryRow(ctx, `SELECT COALESCE(SUM(CASE WHEN reason = '' THEN 1 ELSE 0 END), 0), COUNT(*) FROM `+st+` WHERE own = 1`).Scan(&out.Accepted, &out.Rejected); err != nil {
		return out, fmt.Errorf("import stage: counts: %w", err)
	}
	out.Rejected -= out.Accepted
	return out, nil
}

// Close drops the stage's table. It is safe to call more than once.
func (s *ImportStage) Close(ctx context.Context) error {
	s.rows.Discard()
	return s.drop(ctx)
}

func (s *ImportStage) drop(ctx context.Context) error {
	if _, err := s.t.tx.ExecContext(ctx, `DROP TABLE IF EXISTS `+importTable); err != nil {
		return fmt.Errorf("import stage: %w", err)
	}
	return nil
}
