package ledger

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// SwitchStage is a recipient's switch request done by sets: the lines of
// one file go into a temporary table as they are read (with the verdicts
// reached without the ledger), then a handful of statements judge every
// line against the cards, one pass over the accepted lines in file order
// hands out the new IMSIs from the ranges, and the cards, their events and
// every line's answer are written by statements over the whole table,
// whatever the number of records. It lives in one transaction; Close drops
// the tables.
//
// An IMSI is never handed out twice: a new one is the next number of a
// range, from its cursor on, that has no allocation (imsi_allocations
// holds every IMSI ever allocated and is keyed by it), and a line that
// got an IMSI before under the same reference (a rerun) gets that one
// again.
//
// A staged row is narrow, since every line pays for each of its values
// being bound, stored and read again: the donor is a small number for
// one of the file's few donors, a line's request reference is the file's
// prefix and its line number (built by the statements that write it), and
// the verdict columns are written only for a line that has one.
type SwitchStage struct {
	t      *Tx
	rows   *Inserter // lines without a verdict
	judged *Inserter // lines with one
	alloc  *Inserter // the IMSIs handed out by Take, a row a line
	vals   []any
	// donors numbers the donors of the lines from 1 (0 is none).
	donors map[switchDonor]int
	taken  *SwitchTake
}

// switchDonor is a donor of staged lines.
type switchDonor struct{ partner, source string }

// SwitchLine is one switch request line in the stage.
type SwitchLine struct {
	Line  int
	ICCID string
	// Partner is the donor partner's name, Source its code ("" when no
	// donor is known: the line carries a verdict).
	Partner, Source string
	Cutover         string // YYYY-MM-DD
	// Reason and Detail are a verdict reached while staging; an empty
	// Reason is none. It comes before every rule of Take.
	Reason, Detail string
}

// The stage's tables: temporary, private to the transaction's connection.
const (
	switchTable      = "stage_b_switch"
	switchAllocTable = "stage_b_switch_alloc"
)

// StageSwitch creates the stage. A stage left over by an earlier attempt
// on this connection is dropped first.
func (t *Tx) StageSwitch(ctx context.Context) (*SwitchStage, error) {
	s := &SwitchStage{t: t, donors: map[switchDonor]int{}}
	if err := s.drop(ctx); err != nil {
		return nil, err
	}
	for _, q := range []string{
		`CREATE TEMP TABLE ` + switchTable + ` (
  line    INTEGER PRIMARY KEY,
  iccid   TEXT NOT NULL,
  donor   INTEGER NOT NULL,
  cutover TEXT NOT NULL,
  reason  TEXT NOT NULL DEFAULT '',
  detail  TEXT NOT NULL DEFAULT '',
  had     TEXT NOT NULL DEFAULT '',
  imsi    TEXT NOT NULL DEFAULT ''
)`,
		`CREATE TEMP TABLE ` + switchAllocTable + ` (line INTEGER PRIMARY KEY, imsi TEXT NOT NULL)`,
	} {
		if _, err := t.tx.ExecContext(ctx, q); err != nil {
			return nil, fmt.Errorf("switch stage: %w", err)
		}
	}
	// Long statements: a statement's run costs more than the narrow
	// rows it carries.
	s.rows = t.Inserter(switchTable, []string{"line", "iccid", "donor", "cutover"}, 512)
	s.judged = t.Inserter(switchTable, []string{"line", "iccid", "donor", "cutover", "reason", "detail"}, stageChunk)
	s.alloc = t.Inserter(switchAllocTable, []string{"line", "imsi"}, 512)
	s.vals = make([]any, 0, 6)
	return s, nil
}

// Add stages one line. Rows are written several to a statement; Take
// writes the rest.
func (s *SwitchStage) Add(ctx context.Context, l SwitchLine) error {
	if s.taken != nil {
		return fmt.Errorf("switch stage: line %d added after Take", l.Line)
	}
	donor := 0
	if l.Partner != "" || l.Source != "" {
		k := switchDonor{l.Partner, l.Source}
		if donor = s.donors[k]; donor == 0 {
			donor = len(s.donors) + 1
			s.donors[k] = donor
		}
	}
	s.vals = append(s.vals[:0], l.Line, l.ICCID, donor, l.Cutover)
	in := s.rows
	if l.Reason != "" || l.Detail != "" {
		s.vals = append(s.vals, l.Reason, l.Detail)
		in = s.judged
	}
	err := in.Add(ctx, s.vals...)
	clear(s.vals)
	if err != nil {
		return fmt.Errorf("switch stage: %w", err)
	}
	return nil
}

// IMSIRange is an inclusive range of IMSIs of one length, named for its
// allocation cursor.
type IMSIRange struct {
	Name, From, To string
}

// SwitchTake says how Take judges the staged lines and what it records.
type SwitchTake struct {
	BatchID int64
	// State is what an accepted card becomes; Reopen the states in which
	// a card already here may be requested again. Event is the reason of
	// the card event of a reopened card (a new card's is "imported", as
	// for every card that enters the ledger).
	State  string
	Reopen []string
	Event  string
	Owner  string // the requesting M2M operator
	// Ref is the prefix of the lines' request references: a line's is
	// Ref followed by its line number (a rerun of the same file has the
	// same references, and gets the IMSIs it had).
	Ref string
	// Ranges are ours, in the order they are used.
	Ranges []IMSIRange
	// Accepted and Rejected are the batch record statuses of the lines.
	Accepted, Rejected string
	// DuplicateICCID, when it has a reason, rejects a line whose ICCID an
	// earlier line has (Detail + line + DetailEnd + ICCID), before every
	// other rule and the staged verdicts: the stage finds repeats, so
	// the reader keeps nothing per record.
	DuplicateICCID Verdict
	// The rules, in order after the staged verdicts: the first that holds
	// rejects a line.
	OtherState Verdict // the card is here in a state not in Reopen: Detail + state + DetailEnd
	Exhausted  Verdict // no free IMSI left in any range
	// Took, when set, is told how long each statement ran.
	Took func(statement string, d time.Duration)
}

// SwitchOutcome counts a Take's lines and names the donors of the
// accepted ones (sorted).
type SwitchOutcome struct {
	Accepted, Rejected int
	Partners           []string
}

// switchPage is how many lines the allocation pass reads at a time.
const switchPage = 1024

// Take judges every staged line, hands out the IMSIs, creates or reopens
// the cards and records every line's answer.
func (s *SwitchStage) Take(ctx context.Context, o SwitchTake) (SwitchOutcome, error) {
	var out SwitchOutcome
	t := s.t
	if s.taken != nil {
		return out, errors.New("switch stage: taken twice")
	}
	s.taken = &o
	for _, in := range []*Inserter{s.rows, s.judged} {
		if err := in.Flush(ctx); err != nil {
			return out, fmt.Errorf("switch stage: %w", err)
		}
	}
	exec := func(what, q string, args ...any) error {
		since := time.Now()
		if _, err := t.Exec(ctx, q, args...); err != nil {
			return fmt.Errorf("switch stage: %s: %w", what, err)
		}
		if o.Took != nil {
			o.Took(what, time.Since(since))
		}
		return nil
	}
	now := ts(t.Now())
	reopen := `''`
	var reopenArgs []any
	if len(o.Reopen) > 0 {
		reopen = placeholders(len(o.Reopen))
		for _, st := range o.Reopen {
			reopenArgs = append(reopenArgs, st)
		}
	}
	if o.DuplicateICCID.Reason != "" {
		// The index is made once the lines are in: sorting them once
		// costs less than keeping it in order line by line. One scan of
		// it finds the ICCIDs that repeat, and only their lines are
		// looked at again (not a lookup for every line).
		if err := exec("index", `CREATE INDEX `+switchTable+`_iccid ON `+switchTable+` (iccid)`); err != nil {
			return out, err
		}
		if err := exec("repeated ICCIDs", `UPDATE `+switchTable+` SET reason = ?, detail = ? || CAST(line AS TEXT) || ? || iccid
			WHERE iccid IN (SELECT iccid FROM `+switchTable+` GROUP BY iccid HAVING COUNT(*) > 1)
			AND EXISTS (SELECT 1 FROM `+switchTable+` d WHERE d.iccid = `+switchTable+`.iccid AND d.line < `+switchTable+`.line)`,
			o.DuplicateICCID.Reason, o.DuplicateICCID.Detail, o.DuplicateICCID.DetailEnd); err != nil {
			return out, err
		}
	}
	// A line's request reference, in a statement over the stage as s.
	const ref = `? || CAST(s.line AS TEXT)`
	steps := []struct {
		what  string
		query string
		args  []any
	}{
		{"cards here", `UPDATE ` + switchTable + ` SET had = (SELECT c.state FROM cards c WHERE c.iccid = ` + switchTable + `.iccid)
			WHERE EXISTS (SELECT 1 FROM cards c WHERE c.iccid = ` + switchTable + `.iccid)`, nil},
		{"cards moving", `UPDATE ` + switchTable + ` SET reason = ?, detail = ? || had || ?
			WHERE reason = '' AND had <> '' AND had NOT IN (` + reopen + `)`,
			append([]any{o.OtherState.Reason, o.OtherState.Detail, o.OtherState.DetailEnd}, reopenArgs...)},
		{"earlier allocations", `UPDATE ` + switchTable + ` SET imsi = (SELECT a.imsi FROM imsi_allocations a WHERE a.iccid = ` + switchTable + `.iccid AND a.ref = ? || CAST(` + switchTable + `.line AS TEXT))
			WHERE reason = '' AND EXISTS (SELECT 1 FROM imsi_allocations a WHERE a.iccid = ` + switchTable + `.iccid AND a.ref = ? || CAST(` + switchTable + `.line AS TEXT))`,
			[]any{o.Ref, o.Ref}},
	}
	for _, st := range steps {
		if err := exec(st.what, st.query, st.args...); err != nil {
			return out, err
		}
	}
	since := time.Now()
	short, err := s.allocate(ctx, o.Ranges, o.Ref, now)
	if err != nil {
		return out, err
	}
	if o.Took != nil {
		o.Took("allocation", time.Since(since))
	}
	source, sourceArgs := s.donorColumn(func(d switchDonor) string { return d.source })
	partner, partnerArgs := s.donorColumn(func(d switchDonor) string { return d.partner })
	steps = []struct {
		what  string
		query string
		args  []any
	}{
		{"exhausted", `UPDATE ` + switchTable + ` SET reason = ?, detail = ? WHERE reason = '' AND imsi = '' AND line >= ?`,
			[]any{o.Exhausted.Reason, o.Exhausted.Detail, short}},
		{"reopened cards' events", `INSERT INTO card_events (iccid, at, from_state, to_state, reason, ref)
			SELECT s.iccid, ?, s.had, ?, ?, ` + ref + ` FROM ` + switchTable + ` s WHERE s.reason = '' AND s.had <> '' ORDER BY s.line`,
			[]any{now, o.State, o.Event, o.Ref}},
		{"reopened cards", `UPDATE cards SET state = ?, updated_at = ?, imsi = ` + switchIMSI + `, cutover = s.cutover, request_ref = ` + ref + `, owner = ?, recipient = ''
			FROM ` + switchTable + ` s LEFT JOIN ` + switchAllocTable + ` a ON a.line = s.line WHERE cards.iccid = s.iccid AND s.reason = '' AND s.had <> ''`,
			[]any{o.State, now, o.Ref, o.Owner}},
		{"new cards", `INSERT INTO cards (` + cardCols + `)
			SELECT s.iccid, ` + switchIMSI + `, '', ?, '', '', ?, ` + source + `, 0, 0, '', '', s.cutover, ` + ref + `, 0, '', ?, ?, '', ''
			FROM ` + switchLines + ` WHERE s.reason = '' AND s.had = '' ORDER BY s.line`,
			slices.Concat([]any{o.State, o.Owner}, sourceArgs, []any{o.Ref, now, now})},
		{"new cards' events", `INSERT INTO card_events (iccid, at, from_state, to_state, reason, ref)
			SELECT s.iccid, ?, '', ?, 'imported', ` + source + ` FROM ` + switchTable + ` s
			WHERE s.reason = '' AND s.had = '' ORDER BY s.line`,
			slices.Concat([]any{now, o.State}, sourceArgs)},
		{"answers", `INSERT INTO batch_records (batch_id, line, iccid, imsi, status, reason, detail, partner, data)
			SELECT ?, s.line, s.iccid, CASE WHEN s.reason = '' THEN ` + switchIMSI + ` ELSE '' END, CASE WHEN s.reason = '' THEN ? ELSE ? END,
				s.reason, s.detail, ` + partner + `, CASE WHEN s.reason = '' THEN s.cutover ELSE '' END
			FROM ` + switchLines + ` ORDER BY s.line
			ON CONFLICT (batch_id, line) DO UPDATE SET iccid = excluded.iccid, imsi = excluded.imsi, status = excluded.status,
				reason = excluded.reason, detail = excluded.detail, partner = excluded.partner, data = excluded.data`,
			slices.Concat([]any{o.BatchID, o.Accepted, o.Rejected}, partnerArgs)},
	}
	for _, st := range steps {
		if err := exec(st.what, st.query, st.args...); err != nil {
			return out, err
		}
	}
	if err := t.QueryRow(ctx, `SELECT COALESCE(SUM(CASE WHEN reason = '' THEN 1 ELSE 0 END), 0), COUNT(*) FROM `+switchTable).Scan(&out.Accepted, &out.Rejected); err != nil {
		return out, fmt.Errorf("switch stage: counts: %w", err)
	}
	out.Rejected -= out.Accepted
	// The donors of accepted lines: a scan that stops at the first for
	// each of the file's few donors.
	seen := map[string]bool{}
	for d, id := range s.donors {
		if seen[d.partner] {
			continue
		}
		var accepted bool
		if err := t.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM `+switchTable+` WHERE donor = ? AND reason = '')`, id).Scan(&accepted); err != nil {
			return out, fmt.Errorf("switch stage: donors: %w", err)
		}
		if accepted {
			seen[d.partner] = true
			out.Partners = append(out.Partners, d.partner)
		}
	}
	slices.Sort(out.Partners)
	return out, nil
}

// The lines with their IMSI, for the statements that write what the
// lines' answers and cards hold: a line's IMSI is the one it had (a
// rerun) or the one the allocation pass handed out, read where it is
// rather than copied into every line.
const (
	switchIMSI  = `COALESCE(a.imsi, s.imsi)`
	switchLines = switchTable + ` s LEFT JOIN ` + switchAllocTable + ` a ON a.line = s.line`
)

// donorColumn is an expression of the stage's line s for a value of its
// donor (of, "" for none) and its arguments: a CASE over the file's few
// donors, which costs a line less than a join.
func (s *SwitchStage) donorColumn(of func(switchDonor) string) (string, []any) {
	if len(s.donors) == 0 {
		return `''`, nil
	}
	byID := make([]switchDonor, len(s.donors)+1)
	for d, id := range s.donors {
		byID[id] = d
	}
	var b strings.Builder
	args := make([]any, 0, len(s.donors))
	b.WriteString(`CASE s.donor`)
	for id := 1; id < len(byID); id++ {
		b.WriteString(` WHEN ` + strconv.Itoa(id) + ` THEN CAST(? AS TEXT)`)
		args = append(args, of(byID[id]))
	}
	b.WriteString(` ELSE '' END`)
	return b.String(), args
}

// donorIDs are the numbers of the donors of partner in the stage, and
// their placeholders.
func (s *SwitchStage) donorIDs(partner string) ([]any, string) {
	var ids []any
	for d, id := range s.donors {
		if d.partner == partner {
			ids = append(ids, id)
		}
	}
	return ids, placeholders(len(ids))
}

// Requested calls fn, in line order, with the batch records Take wrote
// for the lines it accepted for the donor partner (what the ledger's
// BatchRecords gives of them with the accepted status once the work
// commits), reading a page of size lines at a time.
func (s *SwitchStage) Requested(ctx context.Context, partner string, size int, fn func(BatchRecord) error) error {
	o := s.taken
	if o == nil {
		return errors.New("switch stage: answers asked before Take")
	}
	if size <= 0 {
		size = pageSize
	}
	q, ids := s.requestedQuery(partner)
	if len(ids) == 0 {
		return nil
	}
	page := make([]BatchRecord, 0, size)
	for after := int64(-1 << 31); ; {
		page = page[:0]
		rows, err := s.t.Query(ctx, q, slices.Concat(ids, []any{after, size})...)
		if err != nil {
			return fmt.Errorf("switch stage: answers: %w", err)
		}
		for rows.Next() {
			r := BatchRecord{BatchID: o.BatchID, Status: o.Accepted, Partner: partner}
			if err := rows.Scan(&r.Line, &r.ICCID, &r.IMSI, &r.Data); err != nil {
				rows.Close()
				return fmt.Errorf("switch stage: answers: %w", err)
			}
			page = append(page, r)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("switch stage: answers: %w", err)
		}
		for _, r := range page {
			if err := fn(r); err != nil {
				return err
			}
		}
		if len(page) < size {
			return nil
		}
		after = int64(page[len(page)-1].Line)
	}
}

// requestedQuery is Requested's page read (its arguments: ids, the line
// after which the page starts, the page's size), nil ids when partner is
// none of the file's donors. The page is cut from the staged lines alone,
// by their key, before each finds its IMSI: a join of the two staged
// tables had PostgreSQL merge them from the first line on every page, N²
// over a file of N lines (at a million, a minute of the step).
func (s *SwitchStage) requestedQuery(partner string) (string, []any) {
	ids, in := s.donorIDs(partner)
	if len(ids) == 0 {
		return "", nil
	}
	return `WITH p AS MATERIALIZED (SELECT line, iccid, imsi, cutover FROM ` + switchTable + `
			WHERE donor IN (` + in + `) AND reason = '' AND line > ? ORDER BY line LIMIT ?)
		SELECT p.line, p.iccid, COALESCE(a.imsi, p.imsi), p.cutover
		FROM p LEFT JOIN ` + switchAllocTable + ` a ON a.line = p.line ORDER BY p.line`, ids
}

// allocate is the one pass that hands out new IMSIs: the accepted lines
// without one, a page of line numbers at a time in line order, each get
// the next free number of the first range that has one. The numbers
// already allocated are read a window at a time, from the cursor up, so
// that a number is skipped without a query of its own. The pass writes
// only (line, IMSI) pairs; the allocations are written from them and the
// stage by one statement, before a window of another range is read (the
// ranges may overlap) and at the end. Each range's cursor ends past its
// last number handed out. It returns the first line left without an
// IMSI because every range is exhausted (past every line when none).
func (s *SwitchStage) allocate(ctx context.Context, ranges []IMSIRange, ref, now string) (short int64, err error) {
	t := s.t
	type rng struct {
		IMSIRange
		lo, hi, cur uint64
		width       int
		used        bool
		after       uint64 // one past the last number handed out
		// taken holds the allocated numbers of [cur, winHi].
		taken map[uint64]bool
		winHi uint64
		ready bool
	}
	rs := make([]*rng, 0, len(ranges))
	for _, r := range ranges {
		lo, err1 := strconv.ParseUint(r.From, 10, 64)
		hi, err2 := strconv.ParseUint(r.To, 10, 64)
		if err1 != nil || err2 != nil || len(r.From) != len(r.To) || lo > hi {
			return 0, fmt.Errorf("IMSI range %s: bad bounds %s-%s", r.Name, r.From, r.To)
		}
		x := &rng{IMSIRange: r, lo: lo, hi: hi, cur: lo, width: len(r.From), taken: map[uint64]bool{}}
		var next string
		err := t.QueryRow(ctx, `SELECT next FROM alloc_cursors WHERE range_name = ?`, r.Name).Scan(&next)
		if err == nil {
			if v, perr := strconv.ParseUint(next, 10, 64); perr == nil && v > x.cur {
				x.cur = v
			}
		} else if !errors.Is(err, sql.ErrNoRows) {
			return 0, err
		}
		rs = append(rs, x)
	}
	// The allocations of the lines after written, in line order; pending
	// says some are not written yet, from range pendingFrom on.
	written, pending, pendingFrom := int64(-1<<31), false, 0
	var last int64
	writeAllocations := func() error {
		if !pending {
			return nil
		}
		if err := s.alloc.Flush(ctx); err != nil {
			return err
		}
		if _, err := t.Exec(ctx, `INSERT INTO imsi_allocations (imsi, iccid, state, ref, created_at, updated_at)
			SELECT a.imsi, s.iccid, ?, ? || CAST(s.line AS TEXT), ?, ? FROM `+switchAllocTable+` a JOIN `+switchTable+` s ON s.line = a.line
			WHERE a.line > ? ORDER BY a.line`, IMSIAllocated, ref, now, now, written); err != nil {
			return err
		}
		written, pending = last, false
		return nil
	}
	format := func(v uint64, width int) string {
		d := strconv.FormatUint(v, 10)
		for len(d) < width {
			d = "0" + d
		}
		return d
	}
	const window = 4096
	// loadWindow reads the allocated numbers of r from cur on.
	loadWindow := func(ri int) error {
		r := rs[ri]
		if pending && pendingFrom < ri {
			// Another range's numbers of this pass must count.
			if err := writeAllocations(); err != nil {
				return err
			}
		}
		r.winHi = min(r.hi, r.cur+window-1)
		clear(r.taken)
		rows, err := t.Query(ctx, `SELECT imsi FROM imsi_allocations WHERE imsi >= ? AND imsi <= ?`, format(r.cur, r.width), format(r.winHi, r.width))
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var imsi string
			if err := rows.Scan(&imsi); err != nil {
				return err
			}
			if len(imsi) != r.width {
				continue // another range's length, between ours in text order
			}
			if v, err := strconv.ParseUint(imsi, 10, 64); err == nil {
				r.taken[v] = true
			}
		}
		r.ready = true
		return rows.Err()
	}
	// next is the next free number of range ri, or false when it has
	// none left.
	next := func(ri int) (uint64, bool, error) {
		r := rs[ri]
		for r.cur <= r.hi {
			if !r.ready || r.cur > r.winHi {
				if err := loadWindow(ri); err != nil {
					return 0, false, err
				}
			}
			v := r.cur
			r.cur++
			if !r.taken[v] {
				return v, true, nil
			}
		}
		return 0, false, nil
	}
	if len(rs) == 0 {
		return -1 << 31, nil // no range: every line is short of an IMSI
	}
	page := make([]int64, 0, switchPage)
	after, ri := int64(-1<<31), 0 // before every line (line is a 32-bit INTEGER on a server)
	short = 1<<31 - 1
	for ri < len(rs) {
		page = page[:0]
		rows, err := t.Query(ctx, `SELECT line FROM `+switchTable+` WHERE reason = '' AND imsi = '' AND line > ? ORDER BY line LIMIT ?`, after, switchPage)
		if err != nil {
			return 0, fmt.Errorf("switch stage: allocation: %w", err)
		}
		for rows.Next() {
			var l int64
			if err := rows.Scan(&l); err != nil {
				rows.Close()
				return 0, err
			}
			page = append(page, l)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return 0, err
		}
		if len(page) == 0 {
			break
		}
		after = page[len(page)-1]
		for _, l := range page {
			var v uint64
			found := false
			for ri < len(rs) {
				var err error
				if v, found, err = next(ri); err != nil {
					return 0, fmt.Errorf("switch stage: allocation: %w", err)
				}
				if found {
					break
				}
				ri++
			}
			if !found {
				// Every range is exhausted: this line and the rest stay
				// without an IMSI.
				short = l
				break
			}
			r := rs[ri]
			r.used, r.after = true, v+1
			if !pending {
				pending, pendingFrom = true, ri
			}
			last = l
			if err := s.alloc.Add(ctx, l, format(v, r.width)); err != nil {
				return 0, fmt.Errorf("switch stage: allocation: %w", err)
			}
		}
	}
	if err := writeAllocations(); err != nil {
		return 0, fmt.Errorf("switch stage: allocation: %w", err)
	}
	for _, r := range rs {
		if !r.used {
			continue
		}
		if _, err := t.Exec(ctx, `INSERT INTO alloc_cursors (range_name, next) VALUES (?, ?) ON CONFLICT (range_name) DO UPDATE SET next = excluded.next`,
			r.Name, format(r.after, r.width)); err != nil {
			return 0, fmt.Errorf("switch stage: cursor of %s: %w", r.Name, err)
		}
	}
	return short, nil
}

// Close drops the stage's tables. It is safe to call more than once.
func (s *SwitchStage) Close(ctx context.Context) error {
	for _, in := range []*Inserter{s.rows, s.judged, s.alloc} {
		if in != nil {
			in.Discard()
		}
	}
	return s.drop(ctx)
}

func (s *SwitchStage) drop(ctx context.Context) error {
	for _, tb := range []string{switchTable, switchAllocTable} {
		if _, err := s.t.tx.ExecContext(ctx, `DROP TABLE IF EXISTS `+tb); err != nil {
			return fmt.Errorf("switch stage: %w", err)
		}
	}
	return nil
}

// placeholders is "?, ?, …" for n values.
func placeholders(n int) string {
	return strings.TrimSuffix(strings.Repeat("?, ", n), ", ")
}
