package ledger

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sort"
	"strconv"
)

// IMSI allocation states. An allocated IMSI is never handed out again,
// whatever becomes of it: unknown outcomes and failures keep it reserved.
const (
	IMSIAllocated = "allocated" // sent to the donor in an imsi-list
	IMSIConfirmed = "confirmed" // the card now carries it
	IMSIUnknown   = "unknown"   // the outcome is not known: never reallocated
	IMSIRetired   = "retired"   // the change was refused; kept out of reuse
)

// ErrRangeExhausted says an IMSI range has no free numbers left.
var ErrRangeExhausted = errors.New("IMSI range exhausted")

// AllocateIMSI hands out the next free IMSI of the inclusive range
// [from, to] (same length, digits) for iccid. The same (iccid, ref) asking
// again gets the same IMSI, so a rerun allocates nothing new.
func (t *Tx) AllocateIMSI(ctx context.Context, rangeName, from, to, iccid, ref string) (string, error) {
	var have string
	err := t.QueryRow(ctx, `SELECT imsi FROM imsi_allocations WHERE iccid = ? AND ref = ?`, iccid, ref).Scan(&have)
	if err == nil {
		return have, nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return "", err
	}
	lo, err1 := strconv.ParseUint(from, 10, 64)
	hi, err2 := strconv.ParseUint(to, 10, 64)
	if err1 != nil || err2 != nil || len(from) != len(to) || lo > hi {
		return "", fmt.Errorf("IMSI range %s: bad bounds %s-%s", rangeName, from, to)
	}
	// The cursor moves in the transaction and is written once, before
	// it commits: rewriting one row for every allocation of a file would
	// leave a server engine a chain of a row's versions to walk each time.
	next, cached := t.cursors[rangeName]
	err = nil
	if !cached {
		err = t.QueryRow(ctx, `SELECT next FROM alloc_cursors WHERE range_name = ?`, rangeName).Scan(&next)
	}
	cur := lo
	if err == nil {
		if v, perr := strconv.ParseUint(next, 10, 64); perr == nil && v > cur {
			cur = v
		}
	} else if !errors.Is(err, sql.ErrNoRows) {
		return "", err
	}
	width := len(from)
	for ; cur <= hi; cur++ {
		imsi := fmt.Sprintf("%0*d", width, cur)
		var taken int
		if err := t.QueryRow(ctx, `SELECT COUNT(*) FROM imsi_allocations WHERE imsi = ?`, imsi).Scan(&taken); err != nil {
			return "", err
		}
		if taken > 0 {
			continue
		}
		now := ts(t.Now())
		if _, err := t.Exec(ctx, `INSERT INTO imsi_allocations (imsi, iccid, state, ref, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)`,
			imsi, iccid, IMSIAllocated, ref, now, now); err != nil {
			return "", err
		}
		if t.cursors == nil {
			t.cursors = map[string]string{}
		}
		t.cursors[rangeName] = fmt.Sprintf("%0*d", width, cur+1)
		return imsi, nil
	}
	return "", fmt.Errorf("%s: %w", rangeName, ErrRangeExhausted)
}

// writeCursors stores the allocation cursors the transaction moved.
func (t *Tx) writeCursors(ctx context.Context) error {
	names := make([]string, 0, len(t.cursors))
	for n := range t.cursors {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if _, err := t.Exec(ctx, `INSERT INTO alloc_cursors (range_name, next) VALUES (?, ?) ON CONFLICT (range_name) DO UPDATE SET next = excluded.next`,
			n, t.cursors[n]); err != nil {
			return err
		}
	}
	t.cursors = nil
	return nil
}

// SetIMSIState records what became of an allocated IMSI.
func (t *Tx) SetIMSIState(ctx context.Context, imsi, state string) error {
	_, err := t.Exec(ctx, `UPDATE imsi_allocations SET state = ?, updated_at = ? WHERE imsi = ?`, state, ts(t.Now()), imsi)
	return err
}

// IMSIInUse reports whether an IMSI is carried by a card in the ledger or
// pending for one.
func (t *Tx) IMSIInUse(ctx context.Context, imsi string) (bool, error) {
	var n int
	// Two indexed lookups (cards_imsi, cards_new_imsi) rather than one
	// OR, which the planner may answer with a scan of every card. An
	// empty IMSI is in use by nobody; new_imsi <> '' keeps a server's
	// plan for any IMSI (nearly every card's new_imsi is '') on the index.
	if imsi == "" {
		return false, nil
	}
	err := t.QueryRow(ctx, `SELECT
		(SELECT COUNT(*) FROM cards WHERE imsi = ? AND state NOT IN ('released', 'erased')) +
		(SELECT COUNT(*) FROM cards WHERE new_imsi = ? AND new_imsi <> '' AND state NOT IN ('released', 'erased'))`, imsi, imsi).Scan(&n)
	return n > 0, err
}

// Authorisation is the M2M operator's permission to move a card.
type Authorisation struct {
	ICCID, Recipient, FromDate, Owner string
	FileID                            int64
}

// PutAuthorisation records (or renews) an authorisation.
func (t *Tx) PutAuthorisation(ctx context.Context, a Authorisation) error {
	_, err := t.Exec(ctx, `INSERT INTO authorisations (iccid, recipient, from_date, owner, file_id) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (iccid, recipient) DO UPDATE SET from_date = excluded.from_date, owner = excluded.owner, file_id = excluded.file_id`,
		a.ICCID, a.Recipient, a.FromDate, a.Owner, a.FileID)
	return err
}

// Authorisation returns the authorisation to move iccid to recipient.
func (t *Tx) Authorisation(ctx context.Context, iccid, recipient string) (*Authorisation, error) {
	a := &Authorisation{}
	err := t.QueryRow(ctx, `SELECT iccid, recipient, from_date, owner, file_id FROM authorisations WHERE iccid = ? AND recipient = ?`, iccid, recipient).
		Scan(&a.ICCID, &a.Recipient, &a.FromDate, &a.Owner, &a.FileID)
	return a, notFound(err, "authorisation of "+iccid)
}
