package ledger

import (
	"context"
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
type ImportStage struct {
	t       *Tx
	secrets []string
	rows    *Inserter
	vals    []any
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
	// Reason is none. It comes before every rule of Take.
	Reason, Detail string
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
  win         INTEGER NOT NULL DEFAULT 0` + cols.String() + `
)`,
		`CREATE INDEX ` + importTable + `_iccid ON ` + importTable + ` (iccid)`,
	} {
		if _, err := t.tx.ExecContext(ctx, q); err != nil {
			return nil, fmt.Errorf("import stage: %w", err)
		}
	}
	names := []string{"line", "iccid", "imsi", "profile", "algorithm", "source", "key_index", "list_length", "kvn", "kic_alg", "kid_alg", "counter", "secrets_fp", "reason", "detail"}
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
	s.vals = append(s.vals[:0], l.Line, l.ICCID, l.IMSI, l.Profile, l.Algorithm, l.Source, l.KeyIndex, l.ListLength, l.KVN, l.KIcAlg, l.KIDAlg, l.Counter, l.SecretsFP, l.Reason, l.Detail)
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

// ImportTake says how Take judges and records the staged cards.
type ImportTake struct {
	BatchID   int64
	Partner   string // the sender, on the answers
	State     string // a new card's state
	MasterKey string // the key the staged secrets are sealed under
	// Accepted and Rejected are the batch record statuses of the lines.
	Accepted, Rejected string
	// OtherSecrets rejects a card already here, or given by an earlier
	// line, with other secrets.
	OtherSecrets Verdict
}

// ImportOutcome counts a Take's lines.
type ImportOutcome struct {
	Accepted, Rejected int
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
	steps := []step{
		{"cards here", `UPDATE ` + st + ` SET known = 1, had_fp = (SELECT c.secrets_fp FROM cards c WHERE c.iccid = ` + st + `.iccid)
			WHERE reason = '' AND EXISTS (SELECT 1 FROM cards c WHERE c.iccid = ` + st + `.iccid)`, nil},
		{"other secrets here", `UPDATE ` + st + ` SET reason = ?, detail = ? WHERE reason = '' AND known = 1 AND had_fp <> secrets_fp`,
			[]any{o.OtherSecrets.Reason, o.OtherSecrets.Detail}},
		// The first line that stands for a new card creates it; a later
		// line of the same card meets what it created.
		{"first lines", `UPDATE ` + st + ` SET win = 1 WHERE reason = '' AND known = 0 AND line =
			(SELECT MIN(f.line) FROM ` + st + ` f WHERE f.iccid = ` + st + `.iccid AND f.reason = '' AND f.known = 0)`, nil},
		{"other secrets in the file", `UPDATE ` + st + ` SET reason = ?, detail = ? WHERE reason = '' AND known = 0 AND win = 0 AND secrets_fp <>
			(SELECT f.secrets_fp FROM ` + st + ` f WHERE f.iccid = ` + st + `.iccid AND f.win = 1)`,
			[]any{o.OtherSecrets.Reason, o.OtherSecrets.Detail}},
		{"cards", `INSERT INTO cards (` + cardCols + `)
			SELECT iccid, imsi, '', ?, profile, algorithm, '', source, key_index, list_length, '', '', '', '', 0, secrets_fp, ?, ?, '', ''
			FROM ` + st + ` WHERE win = 1 ORDER BY line`, []any{o.State, now, now}},
		{"events", `INSERT INTO card_events (iccid, at, from_state, to_state, reason, ref)
			SELECT iccid, ?, '', ?, 'imported', source FROM ` + st + ` WHERE win = 1 ORDER BY line`, []any{now, o.State}},
		{"key sets", `INSERT INTO key_sets (iccid, key_index, kvn, kic_alg, kid_alg, counter)
			SELECT iccid, key_index, kvn, kic_alg, kid_alg, counter FROM ` + st + ` WHERE win = 1 AND kvn > 0 ORDER BY line
			ON CONFLICT (iccid, key_index, kvn) DO UPDATE SET kic_alg = excluded.kic_alg, kid_alg = excluded.kid_alg,
			counter = CASE WHEN excluded.counter > key_sets.counter THEN excluded.counter ELSE key_sets.counter END`, nil},
	}
	for i, name := range s.secrets {
		steps = append(steps, step{"secret " + name, fmt.Sprintf(`INSERT INTO card_secrets (iccid, name, key_index, master_key, blob)
			SELECT iccid, ?, key_index, ?, s%d FROM `+st+` WHERE win = 1 AND s%d IS NOT NULL ORDER BY line
			ON CONFLICT (iccid, name, key_index) DO UPDATE SET master_key = excluded.master_key, blob = excluded.blob`, i, i),
			[]any{name, o.MasterKey}})
	}
	steps = append(steps, step{"answers", `INSERT INTO batch_records (batch_id, line, iccid, imsi, status, reason, detail, partner, data)
		SELECT ?, line, iccid, imsi, CASE WHEN reason = '' THEN ? ELSE ? END, reason, detail, ?, '' FROM ` + st + ` WHERE true ORDER BY line
		ON CONFLICT (batch_id, line) DO UPDATE SET iccid = excluded.iccid, imsi = excluded.imsi, status = excluded.status,
			reason = excluded.reason, detail = excluded.detail, partner = excluded.partner, data = excluded.data`,
		[]any{o.BatchID, o.Accepted, o.Rejected, o.Partner}})
	for _, q := range steps {
		if _, err := t.Exec(ctx, q.query, q.args...); err != nil {
			return out, fmt.Errorf("import stage: %s: %w", q.what, err)
		}
	}
	if err := t.QueryRow(ctx, `SELECT COALESCE(SUM(CASE WHEN reason = '' THEN 1 ELSE 0 END), 0), COUNT(*) FROM `+st).Scan(&out.Accepted, &out.Rejected); err != nil {
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
