package ledger

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
)

// HandOver is the donor's handover sweep done by sets: every card in
// state From whose recipient is Recipient takes state To, with its event,
// and gets a batch record — numbered in ICCID order, its kind "3b" when
// its profile is one of ThreeB, else "3a" — in a few statements over the
// cards, whatever their number.
type HandOver struct {
	BatchID        int64
	Recipient      string // the recipient's code, as on the cards
	Partner        string // the recipient partner's name, on the records
	From, To       string
	Event, Ref     string
	Status         string   // the batch records' status
	ThreeB         []string // profiles of 3b cards (with a key index)
	Kind3a, Kind3b string   // the batch records' data
	// HoldWithoutOTAAlg leaves in From the cards, not of a ThreeB
	// profile, whose key set in use has no algorithm recorded: the
	// recipient could not use it. They are listed in the outcome.
	HoldWithoutOTAAlg bool
}

// HandOverOutcome counts the cards a HandOver took and lists those it
// held.
type HandOverOutcome struct {
	Cards, ThreeB int
	Held          []string // ICCIDs, in order
}

// HandOver takes the cards of o (see HandOver). The cards are read once,
// by the statement that writes the batch records; the events and the
// cards' new state are written from those records (the batch is the
// sweep's own: its records are exactly the cards taken). The cards held
// are then the recipient's cards still in From, a look-up of the few left
// in that state rather than a second pass over all of them.
func (t *Tx) HandOver(ctx context.Context, o HandOver) (HandOverOutcome, error) {
	var out HandOverOutcome
	now := ts(t.Now())
	kind := `?`
	kindArgs := []any{o.Kind3a}
	if len(o.ThreeB) > 0 {
		kind = `CASE WHEN profile IN (` + placeholders(len(o.ThreeB)) + `) THEN ? ELSE ? END`
		kindArgs = kindArgs[:0]
		for _, p := range o.ThreeB {
			kindArgs = append(kindArgs, p)
		}
		kindArgs = append(kindArgs, o.Kind3b, o.Kind3a)
	}
	// The cards taken: where, with its arguments.
	where := `state = ? AND recipient = ?`
	whereArgs := []any{o.From, o.Recipient}
	hold := false
	if o.HoldWithoutOTAAlg {
		// Every import records the algorithm: a look for a key set
		// without one (a scan of one narrow table) spares a look-up of
		// every card's key set when there is none.
		var n int
		if err := t.QueryRow(ctx, `SELECT COUNT(*) FROM (SELECT 1 FROM key_sets WHERE kic_alg = '' LIMIT 1) k`).Scan(&n); err != nil {
			return out, fmt.Errorf("handover: key sets without algorithm: %w", err)
		}
		hold = n > 0
	}
	if hold {
		held := `EXISTS (SELECT 1 FROM key_sets k WHERE k.iccid = cards.iccid AND k.key_index = cards.key_index AND k.kic_alg = '')`
		if len(o.ThreeB) > 0 {
			held = `profile NOT IN (` + placeholders(len(o.ThreeB)) + `) AND ` + held
			for _, p := range o.ThreeB {
				whereArgs = append(whereArgs, p)
			}
		}
		where += ` AND NOT (` + held + `)`
	}
	args := append([]any{o.BatchID, o.Status, o.Partner}, kindArgs...)
	args = append(args, whereArgs...)
	steps := []struct {
		what  string
		query string
		args  []any
	}{
		{"records", `INSERT INTO batch_records (batch_id, line, iccid, imsi, status, reason, detail, partner, data)
			SELECT ?, ROW_NUMBER() OVER (ORDER BY iccid), iccid, imsi, ?, '', '', ?, ` + kind + `
			FROM cards WHERE ` + where + ` ORDER BY iccid`, args},
		{"events", `INSERT INTO card_events (iccid, at, from_state, to_state, reason, ref)
			SELECT iccid, ?, ?, ?, ?, ? FROM batch_records WHERE batch_id = ? ORDER BY line`,
			[]any{now, o.From, o.To, o.Event, o.Ref, o.BatchID}},
	}
	for _, st := range steps {
		if _, err := t.Exec(ctx, st.query, st.args...); err != nil {
			return out, fmt.Errorf("handover: %s: %w", st.what, err)
		}
	}
	// A server's planner must know the batch just written, or it takes
	// it for empty and joins every card to a scan of it.
	if err := t.analyze(ctx, "batch_records"); err != nil {
		return out, fmt.Errorf("handover: %w", err)
	}
	res, err := t.Exec(ctx, `UPDATE cards SET state = ?, updated_at = ? WHERE state = ? AND recipient = ?
		AND iccid IN (SELECT iccid FROM batch_records WHERE batch_id = ?)`, o.To, now, o.From, o.Recipient, o.BatchID)
	if err != nil {
		return out, fmt.Errorf("handover: cards: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return out, err
	}
	out.Cards = int(n)
	if hold {
		rows, err := t.Query(ctx, `SELECT iccid FROM cards WHERE state = ? AND recipient = ? ORDER BY iccid`, o.From, o.Recipient)
		if err != nil {
			return out, fmt.Errorf("handover: cards held: %w", err)
		}
		for rows.Next() {
			var iccid string
			if err := rows.Scan(&iccid); err != nil {
				rows.Close()
				return out, err
			}
			out.Held = append(out.Held, iccid)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return out, fmt.Errorf("handover: cards held: %w", err)
		}
	}
	if len(o.ThreeB) > 0 {
		if err := t.QueryRow(ctx, `SELECT COUNT(*) FROM batch_records WHERE batch_id = ? AND data = ?`, o.BatchID, o.Kind3b).Scan(&out.ThreeB); err != nil {
			return out, fmt.Errorf("handover: 3b cards: %w", err)
		}
	}
	return out, nil
}

// HandoverCard is one record of a handover batch with what the handover
// file says of its card.
type HandoverCard struct {
	Line  int
	ICCID string // the record's
	Kind  string // the record's data
	// Found says whether the ledger holds the card; the fields below are
	// empty when it does not.
	Found                      bool
	IMSI, MSISDN, Profile, Alg string
	KeyIndex, ListLength       int
	// KeySet is the card's key set in use: of its key index, the highest
	// KVN (HasKeySet false when it has none). NoAlgKVN, when not 0, is
	// the lowest KVN of a key set of that index with no OTA algorithm.
	HasKeySet bool
	KeySet    KeySet
	NoAlgKVN  int
	// Secrets are those of the names asked for that the card has, of its
	// current key index, in the order asked; read only for records of
	// the kind that carries secrets.
	Secrets []Secret
}

// HandoverPages calls fn with a handover batch's records of one partner
// ("" = all) in line order, in pages of up to size records, each with its
// card, its key set in use and, for records whose kind is secretKind, its
// wrapped secrets named in names (HandoverPageBounds, then HandoverPage
// for each page). Each page is a new slice: fn may hand it to another
// goroutine.
func (d *DB) HandoverPages(ctx context.Context, batchID int64, partner, secretKind string, names []string, size int, fn func([]HandoverCard) error) error {
	return d.HandoverPageBounds(ctx, batchID, partner, size, func(b PageBounds) error {
		page, err := d.HandoverPage(ctx, batchID, partner, secretKind, names, b)
		if err != nil {
			return err
		}
		return fn(page)
	})
}

// PageBounds are the lines of one page of a batch's records: those after
// After up to Last, N records.
type PageBounds struct {
	After, Last, N int
}

// HandoverPageBounds calls fn with the bounds of each page of up to size
// of a batch's records of one partner ("" = all), in line order: a query
// of the records' key alone a page, so that the pages can then be read in
// any order, or at once on several connections.
func (d *DB) HandoverPageBounds(ctx context.Context, batchID int64, partner string, size int, fn func(PageBounds) error) error {
	if size <= 0 {
		size = pageSize
	}
	after := -1 << 62
	for {
		b := PageBounds{After: after}
		if err := d.QueryRow(ctx, `SELECT COUNT(*), COALESCE(MAX(line), 0) FROM (SELECT line FROM batch_records
			WHERE batch_id = ? AND (? = '' OR partner = ?) AND line > ? ORDER BY line LIMIT ?) p`,
			batchID, partner, partner, after, size).Scan(&b.N, &b.Last); err != nil {
			return err
		}
		if b.N == 0 {
			return nil
		}
		if err := fn(b); err != nil {
			return err
		}
		if b.N < size {
			return nil
		}
		after = b.Last
	}
}

// HandoverPage reads the records of one page (HandoverPageBounds) of a
// handover batch, each with its card, its key set in use and, for records
// whose kind is secretKind, its wrapped secrets named in names: one query,
// a row a record (a row a key set, for the rare card with several of its
// index, which a page never splits), and nothing read that the file does
// not carry.
func (d *DB) HandoverPage(ctx context.Context, batchID int64, partner, secretKind string, names []string, b PageBounds) ([]HandoverCard, error) {
	var cols, joins strings.Builder
	args := make([]any, 0, 2*len(names)+5)
	for i, nm := range names {
		fmt.Fprintf(&cols, ", s%d.blob", i)
		fmt.Fprintf(&joins, "\n\t\tLEFT JOIN card_secrets s%d ON r.data = ? AND s%d.iccid = c.iccid AND s%d.key_index = c.key_index AND s%d.name = ?", i, i, i, i)
		args = append(args, secretKind, nm)
	}
	args = append(args, batchID, partner, partner, b.After, b.Last)
	rows, err := d.Query(ctx, `SELECT r.line, r.iccid, r.data, c.iccid, c.imsi, c.msisdn, c.profile, c.algorithm, c.key_index, c.list_length,
			k.kvn, k.kic_alg, k.counter`+cols.String()+`
		FROM batch_records r LEFT JOIN cards c ON c.iccid = r.iccid
		LEFT JOIN key_sets k ON k.iccid = c.iccid AND k.key_index = c.key_index`+joins.String()+`
		WHERE r.batch_id = ? AND (? = '' OR r.partner = ?) AND r.line > ? AND r.line <= ? ORDER BY r.line`, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	page := make([]HandoverCard, 0, b.N)
	// The page's secrets and their blobs are held in one slice each,
	// rather than a few allocations a card.
	secrets := make([]Secret, 0, b.N*len(names))
	arena := make([]byte, 0, b.N*len(names)*64)
	blobs := make([]sql.RawBytes, len(names))
	dest := make([]any, 0, 13+len(names))
	for rows.Next() {
		var hc HandoverCard
		var iccid, imsi, msisdn, profile, alg, kicAlg sql.NullString
		var keyIndex, listLength, kvn, counter sql.NullInt64
		dest = append(dest[:0], &hc.Line, &hc.ICCID, &hc.Kind, &iccid, &imsi, &msisdn, &profile, &alg, &keyIndex, &listLength,
			&kvn, &kicAlg, &counter)
		for i := range blobs {
			dest = append(dest, &blobs[i])
		}
		if err := rows.Scan(dest...); err != nil {
			return nil, err
		}
		if k := len(page) - 1; k >= 0 && page[k].Line == hc.Line {
			// Another key set of the same card's index.
			page[k].addKeySet(kvn, kicAlg, counter)
			continue
		}
		hc.Found = iccid.Valid
		hc.IMSI, hc.MSISDN, hc.Profile, hc.Alg = imsi.String, msisdn.String, profile.String, alg.String
		hc.KeyIndex, hc.ListLength = int(keyIndex.Int64), int(listLength.Int64)
		hc.addKeySet(kvn, kicAlg, counter)
		first := len(secrets)
		for i, blob := range blobs {
			if blob == nil {
				continue // the card has no such secret
			}
			at := len(arena)
			arena = append(arena, blob...)
			secrets = append(secrets, Secret{Name: names[i], KeyIndex: hc.KeyIndex, Blob: arena[at:len(arena):len(arena)]})
		}
		if len(secrets) > first {
			hc.Secrets = secrets[first:len(secrets):len(secrets)]
		}
		page = append(page, hc)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if len(page) != b.N {
		return nil, fmt.Errorf("handover batch %d: %d records after line %d, %d read", batchID, b.N, b.After, len(page))
	}
	return page, nil
}

// addKeySet records one key set of the card's key index (a NULL kvn: it
// has none).
func (hc *HandoverCard) addKeySet(kvn sql.NullInt64, kicAlg sql.NullString, counter sql.NullInt64) {
	if !kvn.Valid {
		return
	}
	v := int(kvn.Int64)
	if kicAlg.String == "" && (hc.NoAlgKVN == 0 || v < hc.NoAlgKVN) {
		hc.NoAlgKVN = v
	}
	if !hc.HasKeySet || v > hc.KeySet.KVN {
		hc.HasKeySet = true
		hc.KeySet = KeySet{KeyIndex: hc.KeyIndex, KVN: v, KIcAlg: kicAlg.String, Counter: counter.Int64}
	}
}
