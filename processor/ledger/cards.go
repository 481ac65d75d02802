package ledger

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Card states. A donor's card goes active → moving → (confirmed | failed |
// unknown) → handed-over → provisioned-at-recipient → resetting → released
// (→ erased). A recipient's card enters as incoming and becomes active once
// provisioned. The manufacturer's cards are in mf_cards.
const (
	CardActive      = "active"      // ours, in service
	CardMoving      = "moving"      // accepted for a change; OTA message outstanding
	CardConfirmed   = "confirmed"   // PoR proved the new IMSI
	CardFailed      = "failed"      // change failed; retried up to a limit
	CardManual      = "manual"      // retries exhausted or ambiguous: an engineer decides
	CardUnknown     = "unknown"     // no PoR by the deadline: the card may have changed
	CardHandedOver  = "handed-over" // handover sent to the recipient
	CardProvisioned = "provisioned" // recipient acknowledged provisioning
	CardResetting   = "resetting"   // reset message outstanding
	CardReleased    = "released"    // no longer ours; secrets kept until retention ends
	CardErased      = "erased"      // released and its secrets crypto-erased
	CardIncoming    = "incoming"    // recipient side: handover received, keys pending
	CardCancelled   = "cancelled"   // withdrawn before cut-over
)

// Card is one UICC as the ledger knows it. Secrets are not here: they are
// in card_secrets, wrapped under the master key.
type Card struct {
	ICCID      string
	IMSI       string
	MSISDN     string
	State      string
	Profile    string
	Algorithm  string
	Owner      string // the M2M operator the card belongs to
	Source     string // where it came from (vendor batch, donor)
	KeyIndex   int    // 3b: the key pair the card uses now (0: not 3b)
	ListLength int    // 3b: pairs in the card's list
	NewIMSI    string // pending change
	Recipient  string // partner the card is moving to
	Cutover    string // YYYY-MM-DD
	RequestRef string // the imsi-list record that asked for the change
	Attempts   int
	SecretsFP  string // keyed fingerprint of the secrets (import conflict check)
	Created    time.Time
	Updated    time.Time
	Released   string
	Erased     string
}

const cardCols = `iccid, imsi, msisdn, state, profile, algorithm, owner, source, key_index, list_length, new_imsi, recipient, cutover, request_ref, attempts, secrets_fp, created_at, updated_at, released_at, erased_at`

func scanCard(sc interface{ Scan(...any) error }) (*Card, error) {
	c := &Card{}
	var ts cardTimes
	if err := sc.Scan(c.dest(&ts)...); err != nil {
		return nil, err
	}
	ts.set(c)
	return c, nil
}

// cardTimes are a card's time columns as read.
type cardTimes struct{ created, updated string }

// dest is where a row of cardCols scans to.
func (c *Card) dest(ts *cardTimes) []any {
	return []any{&c.ICCID, &c.IMSI, &c.MSISDN, &c.State, &c.Profile, &c.Algorithm, &c.Owner, &c.Source, &c.KeyIndex, &c.ListLength,
		&c.NewIMSI, &c.Recipient, &c.Cutover, &c.RequestRef, &c.Attempts, &c.SecretsFP, &ts.created, &ts.updated, &c.Released, &c.Erased}
}

func (ts *cardTimes) set(c *Card) {
	c.Created, _ = ParseTime(ts.created)
	c.Updated, _ = ParseTime(ts.updated)
}

// ConflictError says a card was imported again with different secrets.
type ConflictError struct{ ICCID string }

func (e *ConflictError) Error() string {
	return fmt.Sprintf("card %s is already in the ledger with different secrets", e.ICCID)
}

// InsertCard adds a card. The same card again with the same secrets
// fingerprint is a no-op (created=false); with different secrets it is a
// *ConflictError.
func (t *Tx) InsertCard(ctx context.Context, c *Card) (created bool, err error) {
	var fp string
	err = t.QueryRow(ctx, `SELECT secrets_fp FROM cards WHERE iccid = ?`, c.ICCID).Scan(&fp)
	if err == nil {
		if fp != c.SecretsFP {
			return false, &ConflictError{ICCID: c.ICCID}
		}
		return false, nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return false, err
	}
	now := ts(t.Now())
	_, err = t.Exec(ctx, `INSERT INTO cards (`+cardCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, '', '')`,
		c.ICCID, c.IMSI, c.MSISDN, c.State, c.Profile, c.Algorithm, c.Owner, c.Source, c.KeyIndex, c.ListLength,
		c.NewIMSI, c.Recipient, c.Cutover, c.RequestRef, c.Attempts, c.SecretsFP, now, now)
	if err != nil {
		return false, err
	}
	_, err = t.Exec(ctx, `INSERT INTO card_events (iccid, at, from_state, to_state, reason, ref) VALUES (?, ?, '', ?, 'imported', ?)`, c.ICCID, now, c.State, c.Source)
	return true, err
}

// Card returns one card (tx view).
func (t *Tx) Card(ctx context.Context, iccid string) (*Card, error) {
	c, err := scanCard(t.QueryRow(ctx, `SELECT `+cardCols+` FROM cards WHERE iccid = ?`, iccid))
	return c, notFound(err, "card "+iccid)
}

// Card returns one card.
func (d *DB) Card(ctx context.Context, iccid string) (*Card, error) {
	c, err := scanCard(d.QueryRow(ctx, `SELECT `+cardCols+` FROM cards WHERE iccid = ?`, iccid))
	return c, notFound(err, "card "+iccid)
}

// StateError says a card was not in a state that allows the change.
type StateError struct {
	ICCID, State string
	Want         []string
}

func (e *StateError) Error() string {
	return fmt.Sprintf("card %s is %s, not %s", e.ICCID, e.State, strings.Join(e.Want, " or "))
}

// CardUpdate lists the fields a transition may change; nil leaves a field.
type CardUpdate struct {
	IMSI, MSISDN, NewIMSI, Recipient, Cutover, RequestRef, Owner *string
	KeyIndex, Attempts                                           *int
	Released, Erased                                             *string
}

// Str and Int make CardUpdate fields.
func Str(s string) *string { return &s }
func Int(i int) *int       { return &i }

// Transition moves a card from one of the states in from to state to,
// applying upd, and records the event with reason and ref. A card in
// another state gives *StateError and changes nothing.
func (t *Tx) Transition(ctx context.Context, iccid string, from []string, to, reason, ref string, upd *CardUpdate) error {
	if len(from) == 1 {
		// One expected state: update on condition, and read the state
		// only when the card was not in it.
		sets, args := transitionSets(to, t.Now(), upd)
		args = append(args, iccid, from[0])
		res, err := t.Exec(ctx, `UPDATE cards SET `+sets+` WHERE iccid = ? AND state = ?`, args...)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 1 {
			_, err := t.Exec(ctx, `INSERT INTO card_events (iccid, at, from_state, to_state, reason, ref) VALUES (?, ?, ?, ?, ?, ?)`, iccid, args[1], from[0], to, reason, ref)
			return err
		}
	}
	var cur string
	if err := t.QueryRow(ctx, `SELECT state FROM cards WHERE iccid = ?`, iccid).Scan(&cur); err != nil {
		return notFound(err, "card "+iccid)
	}
	ok := len(from) == 0
	for _, f := range from {
		if f == cur {
			ok = true
		}
	}
	if !ok {
		return &StateError{ICCID: iccid, State: cur, Want: from}
	}
	sets, args := transitionSets(to, t.Now(), upd)
	now := args[1]
	args = append(args, iccid)
	if _, err := t.Exec(ctx, `UPDATE cards SET `+sets+` WHERE iccid = ?`, args...); err != nil {
		return err
	}
	_, err := t.Exec(ctx, `INSERT INTO card_events (iccid, at, from_state, to_state, reason, ref) VALUES (?, ?, ?, ?, ?, ?)`, iccid, now, cur, to, reason, ref)
	return err
}

// transitionSets is the SET list of a transition to state to with upd, and
// its arguments (args[1] is the time stamp).
func transitionSets(to string, at time.Time, upd *CardUpdate) (string, []any) {
	sets := []string{"state = ?", "updated_at = ?"}
	args := []any{to, ts(at)}
	if upd != nil {
		add := func(col string, v any) { sets = append(sets, col+" = ?"); args = append(args, v) }
		if upd.IMSI != nil {
			add("imsi", *upd.IMSI)
		}
		if upd.MSISDN != nil {
			add("msisdn", *upd.MSISDN)
		}
		if upd.NewIMSI != nil {
			add("new_imsi", *upd.NewIMSI)
		}
		if upd.Recipient != nil {
			add("recipient", *upd.Recipient)
		}
		if upd.Cutover != nil {
			add("cutover", *upd.Cutover)
		}
		if upd.RequestRef != nil {
			add("request_ref", *upd.RequestRef)
		}
		if upd.Owner != nil {
			add("owner", *upd.Owner)
		}
		if upd.KeyIndex != nil {
			add("key_index", *upd.KeyIndex)
		}
		if upd.Attempts != nil {
			add("attempts", *upd.Attempts)
		}
		if upd.Released != nil {
			add("released_at", *upd.Released)
		}
		if upd.Erased != nil {
			add("erased_at", *upd.Erased)
		}
	}
	return strings.Join(sets, ", "), args
}

// SetMSISDN records a card's MSISDN (from the operator's own map).
func (t *Tx) SetMSISDN(ctx context.Context, iccid, imsi, msisdn string) error {
	res, err := t.Exec(ctx, `UPDATE cards SET msisdn = ?, updated_at = ? WHERE iccid = ? AND imsi = ?`, msisdn, ts(t.Now()), iccid, imsi)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("card %s with IMSI %s: %w", iccid, imsi, ErrNotFound)
	}
	return nil
}

// CardEvent is one step of a card's history.
type CardEvent struct {
	At       time.Time
	From, To string
	Reason   string
	Ref      string
}

// History lists a card's events, oldest first.
func (d *DB) History(ctx context.Context, iccid string) ([]CardEvent, error) {
	rows, err := d.Query(ctx, `SELECT at, from_state, to_state, reason, ref FROM card_events WHERE iccid = ? ORDER BY id`, iccid)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []CardEvent
	for rows.Next() {
		var e CardEvent
		var at string
		if err := rows.Scan(&at, &e.From, &e.To, &e.Reason, &e.Ref); err != nil {
			return nil, err
		}
		e.At, _ = ParseTime(at)
		out = append(out, e)
	}
	return out, rows.Err()
}

// CountByState counts cards per state.
func (d *DB) CountByState(ctx context.Context) (map[string]int, error) {
	return d.countByState(ctx, "cards")
}

// countByState counts the rows of table per state.
func (d *DB) countByState(ctx context.Context, table string) (map[string]int, error) {
	return d.tally(ctx, `SELECT state, COUNT(*) FROM `+table+` GROUP BY state`)
}

// tally reads (key, count) rows into a map.
func (d *DB) tally(ctx context.Context, q string, args ...any) (map[string]int, error) {
	rows, err := d.Query(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var s string
		var n int
		if err := rows.Scan(&s, &n); err != nil {
			return nil, err
		}
		out[s] = n
	}
	return out, rows.Err()
}

// CardsInState calls fn for each card in state, in ICCID order, reading
// in pages so that no cursor stays open while fn writes.
func (d *DB) CardsInState(ctx context.Context, state string, fn func(*Card) error) error {
	return eachPage(ctx, d, func(last **Card) (string, []any) {
		after := ""
		if last != nil {
			after = (*last).ICCID
		}
		return `SELECT ` + cardCols + ` FROM cards WHERE state = ? AND iccid > ? ORDER BY iccid LIMIT 1000`, []any{state, after}
	}, func(r *sql.Rows) (*Card, error) { return scanCard(r) }, fn)
}

// Secret is one wrapped secret of a card.
type Secret struct {
	Name      string // ki, opc, kic1, kid1, kik1 …
	KeyIndex  int    // 3b pair index (0 where not indexed)
	MasterKey string // ID of the master key that wrapped it
	Blob      []byte
}

// PutSecret stores (or replaces) a wrapped secret.
func (t *Tx) PutSecret(ctx context.Context, iccid string, s Secret) error {
	_, err := t.Exec(ctx, `INSERT INTO card_secrets (iccid, name, key_index, master_key, blob) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (iccid, name, key_index) DO UPDATE SET master_key = excluded.master_key, blob = excluded.blob`,
		iccid, s.Name, s.KeyIndex, s.MasterKey, s.Blob)
	return err
}

// Secrets returns a card's wrapped secrets of one key index.
func (t *Tx) Secrets(ctx context.Context, iccid string, keyIndex int) ([]Secret, error) {
	rows, err := t.QueryAll(ctx, `SELECT name, key_index, master_key, blob FROM card_secrets WHERE iccid = ? AND key_index = ? ORDER BY name`, iccid, keyIndex)
	if err != nil {
		return nil, err
	}
	return scanSecrets(rows)
}

// SecretPair returns two of a card's wrapped secrets of one key index,
// by name (those of them it holds): the OTA key set of a PoR, without
// the others.
func (t *Tx) SecretPair(ctx context.Context, iccid string, keyIndex int, a, b string) ([]Secret, error) {
	rows, err := t.QueryAll(ctx, `SELECT name, key_index, master_key, blob FROM card_secrets WHERE iccid = ? AND key_index = ? AND name IN (?, ?) ORDER BY name`, iccid, keyIndex, a, b)
	if err != nil {
		return nil, err
	}
	return scanSecrets(rows)
}

func scanSecrets(rows *sql.Rows) ([]Secret, error) {
	defer rows.Close()
	var out []Secret
	for rows.Next() {
		var s Secret
		if err := rows.Scan(&s.Name, &s.KeyIndex, &s.MasterKey, &s.Blob); err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, rows.Err()
}

// EraseSecrets deletes a card's wrapped secrets (crypto-erasure: the
// blobs are gone, and the master key never wrapped anything else of it).
func (t *Tx) EraseSecrets(ctx context.Context, iccid string) error {
	_, err := t.Exec(ctx, `DELETE FROM card_secrets WHERE iccid = ?`, iccid)
	return err
}

// AllSecrets calls fn for every wrapped secret (key rotation), in pages.
func (d *DB) AllSecrets(ctx context.Context, fn func(iccid string, s Secret) error) error {
	type row struct {
		iccid string
		s     Secret
	}
	return eachPage(ctx, d, func(last *row) (string, []any) {
		var l row
		if last != nil {
			l = *last
		}
		return `SELECT iccid, name, key_index, master_key, blob FROM card_secrets
			WHERE (iccid > ?) OR (iccid = ? AND name > ?) OR (iccid = ? AND name = ? AND key_index > ?)
			ORDER BY iccid, name, key_index LIMIT 1000`, []any{l.iccid, l.iccid, l.s.Name, l.iccid, l.s.Name, l.s.KeyIndex}
	}, func(r *sql.Rows) (row, error) {
		var v row
		err := r.Scan(&v.iccid, &v.s.Name, &v.s.KeyIndex, &v.s.MasterKey, &v.s.Blob)
		return v, err
	}, func(v row) error { return fn(v.iccid, v.s) })
}

// SecretsOf returns a card's wrapped secrets of one key index, outside a
// transaction (rendering).
func (d *DB) SecretsOf(ctx context.Context, iccid string, keyIndex int) ([]Secret, error) {
	rows, err := d.Query(ctx, `SELECT name, key_index, master_key, blob FROM card_secrets WHERE iccid = ? AND key_index = ? ORDER BY name`, iccid, keyIndex)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Secret
	for rows.Next() {
		var s Secret
		if err := rows.Scan(&s.Name, &s.KeyIndex, &s.MasterKey, &s.Blob); err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, rows.Err()
}

// KeySetsOf lists a card's key sets outside a transaction.
func (d *DB) KeySetsOf(ctx context.Context, iccid string) ([]KeySet, error) {
	rows, err := d.Query(ctx, `SELECT key_index, kvn, kic_alg, kid_alg, counter FROM key_sets WHERE iccid = ? ORDER BY key_index, kvn`, iccid)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []KeySet
	for rows.Next() {
		var k KeySet
		if err := rows.Scan(&k.KeyIndex, &k.KVN, &k.KIcAlg, &k.KIDAlg, &k.Counter); err != nil {
			return nil, err
		}
		out = append(out, k)
	}
	return out, rows.Err()
}
