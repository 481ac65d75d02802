package ledger

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
)

// IMSIListStage is the donor's imsi-list step done by sets: the records
// of one file go into a temporary table as they are read, then a few
// statements judge every line by the acceptance rules, record every
// answer, move the accepted cards, reserve their counters and queue their
// messages, whatever the number of records. It lives in one transaction
// and holds no secret; Close drops its tables.
//
// The stage also finds repeated ICCIDs and IMSIs (the reader keeps
// nothing per record): a line that repeats an earlier line's ICCID or IMSI
// is a duplicate before any other rule.
//
// Once Accept has run, Messages hands out the queued messages with what
// rendering their packets needs, from the stage itself: the step renders
// its ota-batch without reading back the rows it has just written.
type IMSIListStage struct {
	t    *Tx
	rows *Inserter
	// Filled by Judge and Accept.
	accepted int
	// The accepted lines run from firstLine to lastLine.
	firstLine, lastLine int
	perCard             int
	firstID             int64 // the id of the messages of firstLine
	batchID             int64
	recip               string
	update, reset       string // the kinds of the messages queued
	// Took, when set, hears how long each set-based statement ran.
	Took func(statement string, d time.Duration)
}

// IMSIListProfile is a card profile configured here, as the stage judges
// and queues by it.
type IMSIListProfile struct {
	Name, TAR, ResetTAR string
	// Indexed: the profile's cards carry a list of key pairs (3b).
	Indexed bool
}

// The stage's temporary tables, private to the transaction's connection.
const (
	imsiStageTable    = "imsi_stage"
	imsiJudgedTable   = "imsi_judged"
	imsiProfilesTable = "imsi_profiles"
)

// StageIMSIList creates the stage with the profiles configured here. A
// stage left over by an earlier attempt on this connection is dropped
// first.
func (t *Tx) StageIMSIList(ctx context.Context, profiles []IMSIListProfile) (*IMSIListStage, error) {
	s := &IMSIListStage{t: t}
	if err := s.drop(ctx); err != nil {
		return nil, err
	}
	for _, q := range []string{
		`CREATE TEMP TABLE ` + imsiStageTable + ` (line INTEGER PRIMARY KEY, iccid TEXT NOT NULL, imsi TEXT NOT NULL,
			cutover TEXT NOT NULL, in_range INTEGER NOT NULL, past INTEGER NOT NULL)`,
		`CREATE TEMP TABLE ` + imsiProfilesTable + ` (name TEXT PRIMARY KEY, tar TEXT NOT NULL, reset_tar TEXT NOT NULL, indexed INTEGER NOT NULL)`,
		`CREATE TEMP TABLE ` + imsiJudgedTable + ` (line INTEGER PRIMARY KEY, iccid TEXT NOT NULL, imsi TEXT NOT NULL, cutover TEXT NOT NULL,
			rule INTEGER NOT NULL, state TEXT, from_date TEXT, profile TEXT, key_index INTEGER, list_length INTEGER,
			kvn INTEGER, last_counter BIGINT, msisdn TEXT, tar TEXT, reset_tar TEXT, old_imsi TEXT)`,
	} {
		if _, err := t.tx.ExecContext(ctx, q); err != nil {
			return nil, fmt.Errorf("imsi-list stage: %w", err)
		}
	}
	for _, p := range profiles {
		indexed := 0
		if p.Indexed {
			indexed = 1
		}
		if _, err := t.Exec(ctx, `INSERT INTO `+imsiProfilesTable+` (name, tar, reset_tar, indexed) VALUES (?, ?, ?, ?)`,
			p.Name, p.TAR, p.ResetTAR, indexed); err != nil {
			return nil, fmt.Errorf("imsi-list stage: %w", err)
		}
	}
	s.rows = t.Inserter(imsiStageTable, []string{"line", "iccid", "imsi", "cutover", "in_range", "past"}, 256)
	return s, nil
}

// Add stages one valid record with the checks that need no ledger: the
// new IMSI in the recipient's ranges, the cut-over date in the past.
func (s *IMSIListStage) Add(ctx context.Context, line int, iccid, imsi, cutover string, inRange, past bool) error {
	if err := s.rows.Add(ctx, line, iccid, imsi, cutover, oneIf(inRange), oneIf(past)); err != nil {
		return fmt.Errorf("imsi-list stage: %w", err)
	}
	return nil
}

func oneIf(b bool) int {
	if b {
		return 1
	}
	return 0
}

// IMSIListJudge says how Judge judges the staged lines and what it
// records. The rules are applied in the order of the fields: the first
// that holds rejects a line with its reason code and detail.
type IMSIListJudge struct {
	BatchID int64
	// Recipient is the recipient's code (authorisations name it),
	// Partner the partner the answers go to.
	Recipient, Partner string
	// Accepted and Rejected are the batch record statuses of the lines.
	Accepted, Rejected string
	// Active is the state a card must be in; Moving the states of a card
	// already moving (its own verdict); Free the states of a card whose
	// IMSI is free again.
	Active string
	Moving []string
	Free   []string

	DuplicateICCID   Verdict // an earlier line has the ICCID: Detail + line + DetailEnd + ICCID
	DuplicateIMSI    Verdict // an earlier line has the IMSI: Detail + line + DetailEnd + IMSI
	UnknownCard      Verdict // no card with the ICCID
	AlreadyMoving    Verdict // the card is in one of Moving: Detail + state + DetailEnd
	NotActive        Verdict // the card is not Active: Detail + state + DetailEnd
	NotAuthorised    Verdict // no authorisation to the recipient
	OtherOwner       Verdict // authorised by another customer than the card's owner
	BeforeAuthorised Verdict // the cut-over before the authorised date: Detail + date + DetailEnd
	NotInRange       Verdict // the new IMSI is not in the recipient's ranges
	IMSIInUse        Verdict // a card not in Free carries the IMSI or awaits it
	DatePast         Verdict // the cut-over date has passed
	NoProfile        Verdict // the card's profile is not configured here: Detail + profile + DetailEnd
	ListExhausted    Verdict // 3b: no key pair left: Detail + key index + DetailEnd + list length
	NoMSISDN         Verdict // no MSISDN known for the card
}

// IMSIListOutcome counts a Judge's lines.
type IMSIListOutcome struct {
	Accepted, Rejected int
}

// Judge applies the acceptance rules to every staged line and records
// every line's answer (a batch record a line).
func (s *IMSIListStage) Judge(ctx context.Context, o IMSIListJudge) (IMSIListOutcome, error) {
	var out IMSIListOutcome
	t := s.t
	if err := s.rows.Flush(ctx); err != nil {
		return out, fmt.Errorf("imsi-list stage: %w", err)
	}
	s.batchID, s.recip = o.BatchID, o.Recipient
	rules := []struct {
		v      Verdict
		cond   string
		detail string // SQL over the judged line
		args   []any  // the condition's arguments
	}{
		{o.DuplicateICCID, `EXISTS (SELECT 1 FROM ` + imsiStageTable + ` d WHERE d.iccid = s.iccid AND d.line < s.line)`,
			`? || line || ? || iccid`, nil},
		{o.DuplicateIMSI, `EXISTS (SELECT 1 FROM ` + imsiStageTable + ` d WHERE d.imsi = s.imsi AND d.line < s.line)`,
			`? || line || ? || imsi`, nil},
		{o.UnknownCard, `c.iccid IS NULL`, `?`, nil},
		{o.AlreadyMoving, `c.state IN (` + placeholders(len(o.Moving)) + `)`, `? || state || ?`, strArgs(o.Moving)},
		{o.NotActive, `c.state <> ?`, `? || state || ?`, []any{o.Active}},
		{o.NotAuthorised, `a.iccid IS NULL`, `?`, nil},
		{o.OtherOwner, `c.owner <> '' AND a.owner <> c.owner`, `?`, nil},
		{o.BeforeAuthorised, `s.cutover < a.from_date`, `? || from_date || ?`, nil},
		{o.NotInRange, `s.in_range = 0`, `?`, nil},
		// Two indexed lookups (cards_imsi, cards_new_imsi) rather than
		// one OR. new_imsi <> '' says nothing new (a staged IMSI is never
		// empty) but tells a planner that counts distinct values (nearly
		// every card's new_imsi is '') that few cards match: without it
		// PostgreSQL scans every card for every line.
		{o.IMSIInUse, `EXISTS (SELECT 1 FROM cards x WHERE x.imsi = s.imsi AND x.state NOT IN (` + placeholders(len(o.Free)) + `))
		OR EXISTS (SELECT 1 FROM cards x WHERE x.new_imsi = s.imsi AND x.new_imsi <> '' AND x.state NOT IN (` + placeholders(len(o.Free)) + `))`,
			`?`, append(strArgs(o.Free), strArgs(o.Free)...)},
		{o.DatePast, `s.past = 1`, `?`, nil},
		{o.NoProfile, `p.name IS NULL`, `? || profile || ?`, nil},
		{o.ListExhausted, `p.indexed = 1 AND c.key_index >= c.list_length`, `? || key_index || ? || list_length`, nil},
		{o.NoMSISDN, `c.msisdn = ''`, `?`, nil},
	}
	var rule, reason, detail strings.Builder
	var ruleArgs, answerArgs []any
	rule.WriteString("CASE")
	reason.WriteString("CASE rule")
	detail.WriteString("CASE rule")
	for i, r := range rules {
		if r.v.Reason == "" {
			// An empty reason would read as accepted.
			return out, fmt.Errorf("imsi-list stage: rule %d without a reason code", i+1)
		}
		fmt.Fprintf(&rule, "\n\t\t\tWHEN %s THEN %d", r.cond, i+1)
		ruleArgs = append(ruleArgs, r.args...)
		fmt.Fprintf(&reason, " WHEN %d THEN ?", i+1)
		fmt.Fprintf(&detail, " WHEN %d THEN %s", i+1, r.detail)
	}
	rule.WriteString(" ELSE 0 END")
	reason.WriteString(" ELSE '' END")
	detail.WriteString(" ELSE '' END")
	for _, r := range rules {
		answerArgs = append(answerArgs, r.v.Reason)
	}
	for i, r := range rules {
		switch strings.Count(r.detail, "?") {
		case 1:
			answerArgs = append(answerArgs, r.v.Detail)
		case 2:
			answerArgs = append(answerArgs, r.v.Detail, r.v.DetailEnd)
		default:
			return out, fmt.Errorf("imsi-list stage: rule %d: detail %q", i+1, r.detail)
		}
	}
	t0 := time.Now()
	for _, q := range []string{`CREATE INDEX ` + imsiStageTable + `_iccid ON ` + imsiStageTable + ` (iccid)`,
		`CREATE INDEX ` + imsiStageTable + `_imsi ON ` + imsiStageTable + ` (imsi)`} {
		if _, err := t.tx.ExecContext(ctx, q); err != nil {
			return out, fmt.Errorf("imsi-list stage: %w", err)
		}
	}
	s.took("index the stage", t0)
	t0 = time.Now()
	_, err := t.Exec(ctx, `INSERT INTO `+imsiJudgedTable+` (line, iccid, imsi, cutover, rule, state, from_date, profile, key_index, list_length,
			kvn, last_counter, msisdn, tar, reset_tar, old_imsi)
		SELECT s.line, s.iccid, s.imsi, s.cutover, `+rule.String()+`,
			c.state, a.from_date, c.profile, c.key_index, c.list_length,
			(SELECT MIN(k.kvn) FROM key_sets k WHERE k.iccid = c.iccid AND k.key_index = c.key_index),
			(SELECT k.counter FROM key_sets k WHERE k.iccid = c.iccid AND k.key_index = c.key_index ORDER BY k.kvn LIMIT 1),
			c.msisdn, p.tar, p.reset_tar, c.imsi
		FROM `+imsiStageTable+` s
		LEFT JOIN cards c ON c.iccid = s.iccid
		LEFT JOIN authorisations a ON a.iccid = s.iccid AND a.recipient = ?
		LEFT JOIN `+imsiProfilesTable+` p ON p.name = c.profile
		ORDER BY s.line`, append(ruleArgs, o.Recipient)...)
	s.took("judge", t0)
	if err != nil {
		return out, fmt.Errorf("imsi-list stage: judge: %w", err)
	}
	// Every later statement of the stage, and each page of Messages,
	// joins the judged lines: a server's planner that knows nothing of
	// them misjudges a page (at 300,000 cards PostgreSQL's first pages
	// of Messages, planned for their arguments, took seconds each).
	if err := t.analyze(ctx, imsiJudgedTable); err != nil {
		return out, fmt.Errorf("imsi-list stage: %w", err)
	}
	t0 = time.Now()
	args := append([]any{o.BatchID, o.Accepted, o.Rejected}, answerArgs...)
	args = append(args, o.Partner)
	_, err = t.Exec(ctx, `INSERT INTO batch_records (batch_id, line, iccid, imsi, status, reason, detail, partner, data)
		SELECT ?, line, iccid, imsi, CASE WHEN rule = 0 THEN ? ELSE ? END,
			`+reason.String()+`, `+detail.String()+`, ?, ''
		FROM `+imsiJudgedTable+` ORDER BY line`, args...)
	s.took("answers", t0)
	if err != nil {
		return out, fmt.Errorf("imsi-list stage: answers: %w", err)
	}
	if err := t.QueryRow(ctx, `SELECT COALESCE(SUM(CASE WHEN rule = 0 THEN 1 ELSE 0 END), 0), COALESCE(SUM(CASE WHEN rule = 0 THEN 0 ELSE 1 END), 0),
			COALESCE(MIN(CASE WHEN rule = 0 THEN line END), 0), COALESCE(MAX(CASE WHEN rule = 0 THEN line END), 0) FROM `+imsiJudgedTable).
		Scan(&out.Accepted, &out.Rejected, &s.firstLine, &s.lastLine); err != nil {
		return out, fmt.Errorf("imsi-list stage: counts: %w", err)
	}
	s.accepted = out.Accepted
	return out, nil
}

func strArgs(vals []string) []any {
	out := make([]any, len(vals))
	for i, v := range vals {
		out[i] = v
	}
	return out
}

// IMSIListAccept says how Accept moves the accepted cards and what it
// queues for each.
type IMSIListAccept struct {
	// From is the state the accepted cards are in, To the state they
	// take; Event is the card event's reason, Ref the prefix of the
	// card's request reference (Ref:line), also the event's.
	From, To, Event, Ref string
	// Update is the kind of the message every accepted card gets (on its
	// profile's TAR); Reset, when set, the kind of a second message on
	// the profile's reset TAR, with the counter after the update's.
	Update, Reset string
	// State is the queued messages' state.
	State string
}

// Accept moves the accepted cards to To, with their events, and queues
// their messages, each with a counter reserved from the card's key set in
// use, in line order. It refuses (and changes nothing the transaction
// keeps) when an accepted card has no key set in use, already has a
// message outstanding (in one of outstanding), or has no counter values
// left.
func (s *IMSIListStage) Accept(ctx context.Context, o IMSIListAccept, outstanding []string) (int, error) {
	if s.accepted == 0 {
		return 0, nil
	}
	t := s.t
	var iccid string
	var keyIndex int
	err := t.QueryRow(ctx, `SELECT iccid, key_index FROM `+imsiJudgedTable+` WHERE rule = 0 AND kvn IS NULL ORDER BY line LIMIT 1`).Scan(&iccid, &keyIndex)
	if err == nil {
		return 0, fmt.Errorf("card %s has no OTA key set for index %d", iccid, keyIndex)
	} else if !errors.Is(err, sql.ErrNoRows) {
		return 0, err
	}
	// One outstanding message per card.
	var id int64
	var kind string
	err = t.QueryRow(ctx, `SELECT j.iccid, m.id, m.kind FROM `+imsiJudgedTable+` j JOIN ota_messages m ON m.iccid = j.iccid
		WHERE j.rule = 0 AND m.state IN (`+placeholders(len(outstanding))+`) ORDER BY j.line LIMIT 1`, strArgs(outstanding)...).Scan(&iccid, &id, &kind)
	if err == nil {
		return 0, fmt.Errorf("card %s already has message %d (%s) outstanding", iccid, id, kind)
	} else if !errors.Is(err, sql.ErrNoRows) {
		return 0, err
	}
	now := ts(t.Now())
	t0 := time.Now()
	res, err := t.Exec(ctx, `UPDATE cards SET state = ?, updated_at = ?, new_imsi = j.imsi, recipient = ?, cutover = j.cutover,
			request_ref = ? || ':' || j.line, attempts = 1
		FROM `+imsiJudgedTable+` j WHERE j.rule = 0 AND cards.iccid = j.iccid AND cards.state = ?`,
		o.To, now, s.recip, o.Ref, o.From)
	s.took("move cards", t0)
	if err != nil {
		return 0, fmt.Errorf("imsi-list stage: move cards: %w", err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return 0, err
	} else if int(n) != s.accepted {
		return 0, fmt.Errorf("imsi-list stage: %d cards moved, %d accepted", n, s.accepted)
	}
	t0 = time.Now()
	_, err = t.Exec(ctx, `INSERT INTO card_events (iccid, at, from_state, to_state, reason, ref)
		SELECT iccid, ?, ?, ?, ?, ? || ':' || line FROM `+imsiJudgedTable+` WHERE rule = 0 ORDER BY line`,
		now, o.From, o.To, o.Event, o.Ref)
	s.took("card events", t0)
	if err != nil {
		return 0, fmt.Errorf("imsi-list stage: card events: %w", err)
	}
	// Counters: the update takes the next value, the reset the one after.
	perCard := 1
	if o.Reset != "" {
		perCard = 2
	}
	t0 = time.Now()
	res, err = t.Exec(ctx, `UPDATE key_sets SET counter = counter + ?
		FROM `+imsiJudgedTable+` j WHERE j.rule = 0 AND key_sets.iccid = j.iccid AND key_sets.key_index = j.key_index AND key_sets.kvn = j.kvn
			AND key_sets.counter < ?`, perCard, MaxCounter-perCard)
	s.took("reserve counters", t0)
	if err != nil {
		return 0, fmt.Errorf("imsi-list stage: reserve counters: %w", err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return 0, err
	} else if int(n) != s.accepted {
		var kvn int
		err := t.QueryRow(ctx, `SELECT j.iccid, j.kvn FROM `+imsiJudgedTable+` j JOIN key_sets k ON k.iccid = j.iccid AND k.key_index = j.key_index AND k.kvn = j.kvn
			WHERE j.rule = 0 AND k.counter >= ? ORDER BY j.line LIMIT 1`, MaxCounter-perCard).Scan(&iccid, &kvn)
		if err != nil {
			return 0, fmt.Errorf("imsi-list stage: %d counters reserved, %d accepted", n, s.accepted)
		}
		return 0, fmt.Errorf("card %s key set %d: %w", iccid, kvn, ErrCounterExhausted)
	}
	// The messages' ids are handed out here, card after card in line
	// order (the update, then the reset), each line's from its number:
	// Messages knows every message's id without reading it back. A
	// rejected line between accepted ones leaves its ids unused.
	first, err := t.reserveIDs(ctx, "ota_messages", int64(s.lastLine-s.firstLine+1)*int64(perCard))
	if err != nil {
		return 0, fmt.Errorf("imsi-list stage: message ids: %w", err)
	}
	// The counters as the judge read them, before the reservation
	// above: the update takes the next value, the reset the one after.
	msgs := `SELECT line, 0 AS seq, ? AS kind, iccid, key_index, kvn, last_counter + 1 AS counter, tar, msisdn
		FROM ` + imsiJudgedTable + ` WHERE rule = 0`
	args := []any{first, s.firstLine, perCard, s.batchID, o.State, now, now, o.Update}
	if o.Reset != "" {
		msgs += `
		UNION ALL
		SELECT line, 1 AS seq, ? AS kind, iccid, key_index, kvn, last_counter + 2 AS counter, reset_tar, msisdn
		FROM ` + imsiJudgedTable + ` WHERE rule = 0`
		args = append(args, o.Reset)
	}
	t0 = time.Now()
	_, err = t.Exec(ctx, `INSERT INTO ota_messages (id, iccid, batch_id, kind, key_index, kvn, counter, tar, msisdn, concat_ref, attempt,
			state, deadline, por_status, detail, file_id, created_at, updated_at)
		SELECT ? + (line - ?) * ? + seq, iccid, ?, kind, key_index, kvn, counter, tar, msisdn, counter % 255 + 1, 1, ?, '', '', '', 0, ?, ?
		FROM (`+msgs+`) q ORDER BY line, seq`, args...)
	s.took("queue messages", t0)
	if err != nil {
		return 0, fmt.Errorf("imsi-list stage: queue messages: %w", err)
	}
	s.perCard, s.firstID, s.update, s.reset = perCard, first, o.Update, o.Reset
	return s.accepted, nil
}

// Messages calls fn with the messages Accept queued, in id order (card
// after card in line order), in pages of up to size, each with what
// rendering its packet needs (as BatchMessagePages gives it): of the
// message its id, ICCID, kind, key index, KVN, counter, TAR, MSISDN and
// concatenation reference; of the card its IMSI before the change, new
// IMSI, recipient, key index, profile and cut-over date; and those of the
// card's wrapped secrets of the message's key index named in names. It
// reads the stage and the secrets, one query a page, never the messages
// or the cards just written. Each page is a new slice: fn may hand it to
// another goroutine.
func (s *IMSIListStage) Messages(ctx context.Context, size int, names []string, fn func([]BatchMessage) error) error {
	if s.accepted == 0 || s.perCard == 0 {
		return nil
	}
	if size <= 0 {
		size = 1000
	}
	cols, joins, nameArgs := secretJoins(names, "j.iccid", "j.key_index")
	query := `SELECT j.line, j.iccid, j.imsi, j.cutover, j.profile, j.key_index, j.kvn, j.msisdn, j.tar, j.reset_tar, j.old_imsi, j.last_counter` + cols + `
		FROM ` + imsiJudgedTable + ` j` + joins + `
		WHERE j.rule = 0 AND j.line > ? ORDER BY j.line LIMIT ?`
	blobs := make([][]byte, len(names))
	lines := max(1, size/s.perCard)
	after, read := -1, 0 // lines are numbered from 1
	for {
		page := make([]BatchMessage, 0, lines*s.perCard)
		rows, err := s.t.Query(ctx, query, append(append([]any{}, nameArgs...), after, lines)...)
		if err != nil {
			return fmt.Errorf("imsi-list stage: messages: %w", err)
		}
		n := 0
		for rows.Next() {
			var line int
			var resetTAR string
			var counter int64
			c := &Card{Recipient: s.recip}
			m := &Message{BatchID: s.batchID, Kind: s.update}
			dest := []any{&line, &m.ICCID, &c.NewIMSI, &c.Cutover, &c.Profile, &m.KeyIndex, &m.KVN, &m.MSISDN, &m.TAR, &resetTAR, &c.IMSI, &counter}
			dest = blobDests(dest, blobs)
			if err := rows.Scan(dest...); err != nil {
				rows.Close()
				return err
			}
			c.ICCID, c.KeyIndex = m.ICCID, m.KeyIndex
			secrets := secretsFrom(names, blobs, m.KeyIndex)
			// The counter the judge read: the update takes the next
			// value, the reset the one after.
			m.ID = s.firstID + int64(line-s.firstLine)*int64(s.perCard)
			m.Counter = counter + 1
			m.ConcatRef = int(m.Counter%255) + 1
			page = append(page, BatchMessage{Msg: m, Card: c, Secrets: secrets})
			if s.perCard == 2 {
				r := *m
				r.ID, r.Kind, r.TAR, r.Counter = m.ID+1, s.reset, resetTAR, counter+2
				r.ConcatRef = int(r.Counter%255) + 1
				page = append(page, BatchMessage{Msg: &r, Card: c, Secrets: secrets})
			}
			read++
			after = line
			n++
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("imsi-list stage: messages: %w", err)
		}
		if n == 0 {
			break
		}
		if err := fn(page); err != nil {
			return err
		}
		if n < lines {
			break
		}
	}
	if read != s.accepted {
		return fmt.Errorf("imsi-list stage: %d accepted lines read for their messages, %d accepted", read, s.accepted)
	}
	return nil
}

// reserveIDs hands out n consecutive ids of a table whose id the
// database assigns (the transaction holds the write lock, so nobody else
// takes them): the rows are then inserted with these ids.
func (t *Tx) reserveIDs(ctx context.Context, table string, n int64) (int64, error) {
	if n <= 0 {
		return 0, nil
	}
	if t.d.dialect.Name == "sqlite" {
		// AUTOINCREMENT never hands out an id at or below the largest
		// ever used; an explicit larger id moves its sequence on.
		last, err := t.sequence(ctx, table)
		if err != nil {
			return 0, err
		}
		var maxID int64
		if err := t.QueryRow(ctx, `SELECT COALESCE(MAX(id), 0) FROM `+table).Scan(&maxID); err != nil {
			return 0, err
		}
		return max(last, maxID) + 1, nil
	}
	var first int64
	if err := t.QueryRow(ctx, `SELECT nextval(pg_get_serial_sequence(?, 'id'))`, table).Scan(&first); err != nil {
		return 0, err
	}
	if n > 1 {
		if _, err := t.Exec(ctx, `SELECT setval(pg_get_serial_sequence(?, 'id'), ?, true)`, table, first+n-1); err != nil {
			return 0, err
		}
	}
	return first, nil
}

func (s *IMSIListStage) took(what string, since time.Time) {
	if s.Took != nil {
		s.Took(what, time.Since(since))
	}
}

// Close drops the stage's tables (the transaction's end would leave them
// for the next file on the same connection). It is safe to call more than
// once.
func (s *IMSIListStage) Close(ctx context.Context) error {
	if s == nil {
		return nil
	}
	s.rows.Discard()
	return s.drop(ctx)
}

func (s *IMSIListStage) drop(ctx context.Context) error {
	for _, tb := range []string{imsiStageTable, imsiJudgedTable, imsiProfilesTable} {
		if _, err := s.t.tx.ExecContext(ctx, `DROP TABLE IF EXISTS `+tb); err != nil {
			return fmt.Errorf("imsi-list stage: %w", err)
		}
	}
	return nil
}
