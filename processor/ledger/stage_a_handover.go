package ledger

import (
	"context"
	"fmt"
	"slices"
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

// HandOver takes the cards of o (see HandOver).
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
	if o.HoldWithoutOTAAlg {
		held := `EXISTS (SELECT 1 FROM key_sets k WHERE k.iccid = cards.iccid AND k.key_index = cards.key_index AND k.kic_alg = '')`
		var heldArgs []any
		if len(o.ThreeB) > 0 {
			held = `profile NOT IN (` + placeholders(len(o.ThreeB)) + `) AND ` + held
			for _, p := range o.ThreeB {
				heldArgs = append(heldArgs, p)
			}
		}
		rows, err := t.Query(ctx, `SELECT iccid FROM cards WHERE `+where+` AND `+held+` ORDER BY iccid`, append(slices.Clone(whereArgs), heldArgs...)...)
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
		if len(out.Held) > 0 {
			where += ` AND NOT (` + held + `)`
			whereArgs = append(whereArgs, heldArgs...)
		}
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
			SELECT iccid, ?, state, ?, ?, ? FROM cards WHERE ` + where + ` ORDER BY iccid`,
			append([]any{now, o.To, o.Event, o.Ref}, whereArgs...)},
	}
	for _, st := range steps {
		if _, err := t.Exec(ctx, st.query, st.args...); err != nil {
			return out, fmt.Errorf("handover: %s: %w", st.what, err)
		}
	}
	res, err := t.Exec(ctx, `UPDATE cards SET state = ?, updated_at = ? WHERE `+where, append([]any{o.To, now}, whereArgs...)...)
	if err != nil {
		return out, fmt.Errorf("handover: cards: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return out, err
	}
	out.Cards = int(n)
	if len(o.ThreeB) > 0 {
		if err := t.QueryRow(ctx, `SELECT COUNT(*) FROM batch_records WHERE batch_id = ? AND data = ?`, o.BatchID, o.Kind3b).Scan(&out.ThreeB); err != nil {
			return out, fmt.Errorf("handover: 3b cards: %w", err)
		}
	}
	return out, nil
}
