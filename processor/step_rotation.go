package processor

import (
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"time"

	"resub/formats/native"
	"resub/formats/ota"
	"resub/processor/ledger"
)

// Rotation is a card profile's OTA key rotation: the recipient of a 3a
// handover replaces the key set the donor handed over, so that the donor's
// copy stops working (TR 33.812 §5.4, alternative 3a step 6).
type Rotation struct {
	// TAR of the security domain that takes PUT KEY (RAM/ISD, typically
	// 000000).
	TAR ota.TAR
	// KVN is the key version written; 0 keeps the current one.
	KVN int
	// Replace: PUT KEY replaces the old key set (P1 = its KVN). Otherwise
	// the new set is added (P1 = 00) and the old one deleted by a DELETE
	// in the same script.
	Replace bool
}

// msgRotate is the message kind of a key rotation: one PUT KEY (and, when
// the new set is added, a DELETE of the old one) on the rotation TAR,
// secured under the key set it replaces.
const msgRotate = "rotate"

// Rotation states in key_rotations.
const (
	rotPending = "pending" // PUT KEY outstanding; new keys sealed as *.next
	rotDone    = "done"    // card confirmed; the ledger holds only the new keys
	rotFailed  = "failed"  // the card refused every attempt; it keeps the old keys
	rotManual  = "manual"  // outcome unknown: the card may hold either set
)

// Pending secrets: the new key set until the card confirms it.
const pendingSuffix = ".next"

// KeyRotation is the recipient's sweep over cards it holds (active) whose
// OTA key set came from a donor's handover and was not rotated yet: each
// gets a fresh key set (crypto/rand, same algorithm and lengths), sealed
// under the master key as pending, and a PUT KEY message for the SMSC,
// secured under the current key set with PoR. The PoR (the OTA report
// step) switches the ledger to the new keys and erases the old ones,
// retries a refusal with a new counter, or leaves an unknown outcome to an
// engineer with both sets kept. The same sweep escalates rotations whose
// message passed its deadline without PoR.
type KeyRotation struct {
	SMSC *Partner
	// Limit caps the cards started per run (0: all).
	Limit int
}

// Name implements SweepStep.
func (s *KeyRotation) Name() string { return "key-rotation" }

// Apply implements SweepStep.
func (s *KeyRotation) Apply(ctx context.Context, w *Work) error {
	if s.SMSC == nil {
		return fmt.Errorf("key rotation: no SMSC partner configured")
	}
	p, tx := w.P, w.Tx
	if err := p.escalateUnanswered(ctx, w); err != nil {
		return err
	}
	ids, err := rotationCandidates(ctx, tx, s.Limit)
	if err != nil {
		return err
	}
	for _, iccid := range ids {
		c, err := tx.Card(ctx, iccid)
		if err != nil {
			return err
		}
		prof := p.Profiles[c.Profile]
		if prof == nil || prof.Rotation == nil {
			continue // the profile does not rotate
		}
		if err := p.startRotation(ctx, w, c, prof); err != nil {
			return fmt.Errorf("card %s: %w", iccid, err)
		}
	}
	if w.Counts.Messages > 0 {
		_, err = w.Plan(ctx, "ota-batch", native.OTABatch.Name, s.SMSC, false)
	}
	return err
}

// rotationCandidates lists active 3a cards that entered by a donor's
// handover (requested -> active), have no rotation yet and no message
// outstanding (whose script would race the key change).
func rotationCandidates(ctx context.Context, tx *ledger.Tx, limit int) ([]string, error) {
	q := `SELECT c.iccid FROM cards c WHERE c.state = ? AND c.key_index = 0
		AND EXISTS (SELECT 1 FROM card_events e WHERE e.iccid = c.iccid AND e.from_state = ? AND e.to_state = ?)
		AND NOT EXISTS (SELECT 1 FROM key_rotations r WHERE r.iccid = c.iccid AND r.key_index = 0)
		AND NOT EXISTS (SELECT 1 FROM ota_messages m WHERE m.iccid = c.iccid AND m.state IN (?, ?))
		ORDER BY c.iccid`
	args := []any{ledger.CardActive, cardRequested, ledger.CardActive, ledger.MsgReserved, ledger.MsgSent}
	if limit > 0 {
		q += ` LIMIT ?`
		args = append(args, limit)
	}
	rows, err := tx.Query(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		out = append(out, id)
	}
	return out, rows.Err()
}

// startRotation makes and seals the new key set and queues its message.
func (p *Party) startRotation(ctx context.Context, w *Work, c *ledger.Card, prof *Profile) error {
	tx := w.Tx
	oldKVN, err := currentKVN(ctx, tx, c)
	if err != nil {
		return err
	}
	r := prof.Rotation
	newKVN := r.KVN
	if newKVN == 0 {
		newKVN = oldKVN
	}
	if !r.Replace && newKVN == oldKVN {
		return fmt.Errorf("rotation adds key version %d, which the card uses now", newKVN)
	}
	cur, err := p.cardSecrets(ctx, tx, c.ICCID, c.KeyIndex)
	if err != nil {
		return err
	}
	defer wipe(cur)
	// The fresh keys take the current ones' lengths: those must be what
	// the key set's cipher takes, or the card could not use the new set.
	otaAlg, err := keySetCipher(ctx, tx, c, oldKVN)
	if err != nil {
		return err
	}
	keys := map[string][]byte{}
	for _, name := range []string{SecKIc, SecKID, SecKIK} {
		if b, ok := cur[name]; ok {
			keys[name] = b
		}
	}
	if err := checkSecrets(keys, c.Algorithm, otaAlg); err != nil {
		p.log().Warn("key rotation not started: the card's key set is unusable", "iccid", c.ICCID, "problem", err.Error())
		now := tx.Now().UTC().Format(time.RFC3339Nano)
		_, err := tx.Exec(ctx, `INSERT INTO key_rotations (iccid, key_index, old_kvn, new_kvn, replace_old, state, attempts, reason, created_at, updated_at)
			VALUES (?, ?, ?, ?, ?, ?, 0, ?, ?, ?)`, c.ICCID, c.KeyIndex, oldKVN, newKVN, boolInt(r.Replace), rotFailed, "not started: "+err.Error(), now, now)
		return err
	}
	rnd := p.Rand
	if rnd == nil {
		rnd = rand.Reader
	}
	for _, name := range []string{SecKIc, SecKID, SecKIK} {
		old := cur[name]
		if len(old) == 0 {
			return fmt.Errorf("no %s to rotate", name)
		}
		fresh, err := freshKey(rnd, len(old))
		if err != nil {
			return err
		}
		err = p.seal(ctx, tx, c.ICCID, name+pendingSuffix, c.KeyIndex, fresh)
		clear(fresh)
		if err != nil {
			return err
		}
	}
	now := tx.Now().UTC().Format(time.RFC3339Nano)
	if _, err := tx.Exec(ctx, `INSERT INTO key_rotations (iccid, key_index, old_kvn, new_kvn, replace_old, state, attempts, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, 1, ?, ?)`, c.ICCID, c.KeyIndex, oldKVN, newKVN, boolInt(r.Replace), rotPending, now, now); err != nil {
		return err
	}
	if err := p.queueRotation(ctx, tx, c, prof, w.BatchID, 1, 1); err != nil {
		return err
	}
	w.Counts.Records++
	w.Counts.Messages++
	ref := fmt.Sprintf("%s: key version %d -> %d", w.Source, oldKVN, newKVN)
	return tx.Transition(ctx, c.ICCID, []string{c.State}, c.State, "OTA key rotation sent", ref, nil)
}

// keySetCipher is the cipher recorded for a card's key set (KIc's).
func keySetCipher(ctx context.Context, tx *ledger.Tx, c *ledger.Card, kvn int) (string, error) {
	sets, err := tx.KeySets(ctx, c.ICCID)
	if err != nil {
		return "", err
	}
	for _, k := range sets {
		if k.KeyIndex == c.KeyIndex && k.KVN == kvn {
			return k.KIcAlg, nil
		}
	}
	return "", nil
}

// freshKey draws a key of n octets. A two-key 3DES key with equal halves
// would be single DES: drawn again.
func freshKey(rnd io.Reader, n int) ([]byte, error) {
	k := make([]byte, n)
	for {
		if _, err := io.ReadFull(rnd, k); err != nil {
			return nil, fmt.Errorf("random key: %w", err)
		}
		if n != 16 || !bytes.Equal(k[:8], k[8:]) {
			return k, nil
		}
	}
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// queueRotation reserves the next counter of the key set in use and
// records the rotation message on the profile's rotation TAR.
func (p *Party) queueRotation(ctx context.Context, tx *ledger.Tx, c *ledger.Card, prof *Profile, batchID int64, attempt int, step int64) error {
	kvn, err := currentKVN(ctx, tx, c)
	if err != nil {
		return err
	}
	counter, err := tx.ReserveCounter(ctx, c.ICCID, c.KeyIndex, kvn, step)
	if err != nil {
		return err
	}
	id, err := tx.InsertMessage(ctx, &ledger.Message{
		ICCID: c.ICCID, BatchID: batchID, Kind: msgRotate, KeyIndex: c.KeyIndex, KVN: kvn, Counter: counter,
		TAR: prof.Rotation.TAR.String(), MSISDN: c.MSISDN, ConcatRef: int(counter%255) + 1, Attempt: attempt, State: ledger.MsgReserved,
	})
	if err != nil {
		return err
	}
	_, err = tx.Exec(ctx, `UPDATE key_rotations SET message_id = ?, attempts = ?, updated_at = ? WHERE iccid = ? AND key_index = ?`,
		id, attempt, tx.Now().UTC().Format(time.RFC3339Nano), c.ICCID, c.KeyIndex)
	return err
}

// rotationRow is one row of key_rotations.
type rotationRow struct {
	OldKVN, NewKVN int
	Replace        bool
	State          string
	Attempts       int
	MessageID      int64
}

type rowScanner interface{ Scan(...any) error }

func scanRotation(r rowScanner) (*rotationRow, error) {
	var row rotationRow
	var repl int
	if err := r.Scan(&row.OldKVN, &row.NewKVN, &repl, &row.State, &row.Attempts, &row.MessageID); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return nil, ledger.ErrNotFound
		}
		return nil, err
	}
	row.Replace = repl != 0
	return &row, nil
}

const rotationCols = `old_kvn, new_kvn, replace_old, state, attempts, message_id`

// rotationScript is the script of a rotation message: PUT KEY of the
// pending key set, key data under the current KIK (and DELETE of the old
// set when the new one is added beside it). It is rebuilt from the ledger
// whenever it is needed (rendering, judging the PoR) and is the same each
// time: the key encipherment is deterministic.
func (p *Party) rotationScript(ctx context.Context, m *ledger.Message, c *ledger.Card, prof *Profile) ([]ota.APDU, error) {
	row, err := scanRotation(p.Ledger.QueryRow(ctx, `SELECT `+rotationCols+` FROM key_rotations WHERE iccid = ? AND key_index = ?`, c.ICCID, m.KeyIndex))
	if err != nil {
		return nil, fmt.Errorf("rotation of %s: %w", c.ICCID, err)
	}
	typ, err := ota.KeyTypeFor(prof.OTA.KIc)
	if err != nil {
		return nil, err
	}
	sec, err := p.cardSecrets(ctx, nil, c.ICCID, m.KeyIndex)
	if err != nil {
		return nil, err
	}
	defer wipe(sec)
	pk := ota.PutKey{NewKVN: row.NewKVN, FirstID: 1, Type: typ}
	if row.Replace {
		pk.OldKVN = row.OldKVN
	}
	for _, name := range []string{SecKIc, SecKID, SecKIK} {
		k := sec[name+pendingSuffix]
		if len(k) == 0 {
			return nil, fmt.Errorf("rotation of %s: pending %s missing", c.ICCID, name)
		}
		pk.Keys = append(pk.Keys, k)
	}
	put, err := ota.EncodePutKey(pk, sec[SecKIK])
	if err != nil {
		return nil, err
	}
	if row.Replace {
		return []ota.APDU{put}, nil
	}
	return []ota.APDU{put, ota.EncodeDeleteKeySet(row.OldKVN)}, nil
}

// judgeRotation applies a rotation message's verdict: on a verified PoR
// OK the ledger switches the card to the new key set and erases the old
// keys; a refusal is retried with a new counter up to the SMSC's maximum
// attempts; an unknown outcome changes nothing in the keys and asks for
// manual action. moreTime is a verified PoR 08: the card may still run
// the PUT KEY later, so it is unknown, never retried.
func (p *Party) judgeRotation(ctx context.Context, w *Work, m *ledger.Message, c *ledger.Card, v ota.Verdict, moreTime bool) error {
	tx := w.Tx
	if moreTime {
		v = ota.Verdict{Outcome: ota.OutcomeUnknown, Reason: "PoR 08: more time needed"}
	}
	if err := tx.SetMessageState(ctx, m.ID, msgState(v.Outcome), "", v.Reason); err != nil {
		return err
	}
	row, err := scanRotation(tx.QueryRow(ctx, `SELECT `+rotationCols+` FROM key_rotations WHERE iccid = ? AND key_index = ?`, c.ICCID, m.KeyIndex))
	if err != nil {
		return err
	}
	log := p.log().With("iccid", c.ICCID, "message", m.ID, "outcome", v.Outcome.String())
	if row.State != rotPending || row.MessageID != m.ID {
		log.Info("report for a rotation message no longer outstanding", "rotation", row.State)
		return nil
	}
	ref := fmt.Sprintf("message %d", m.ID)
	if v.Outcome == ota.OutcomeConfirmed && row.Replace {
		// The card answers PUT KEY with the new version and the KCVs.
		want, err := p.pendingResponse(ctx, tx, c, m.KeyIndex, row.NewKVN)
		if err != nil {
			return err
		}
		if !bytes.Equal(v.Result.Data, want) {
			v = ota.Verdict{Outcome: ota.OutcomeUnknown, Reason: "PoR OK but the card reports other key check values"}
		}
	}
	switch v.Outcome {
	case ota.OutcomePending:
		return nil
	case ota.OutcomeConfirmed:
		if err := p.switchKeys(ctx, tx, c, m.KeyIndex, row); err != nil {
			return err
		}
		log.Info("OTA keys rotated", "from_kvn", row.OldKVN, "to_kvn", row.NewKVN)
		if err := setRotation(ctx, tx, c.ICCID, m.KeyIndex, rotDone, "PoR confirmed"); err != nil {
			return err
		}
		return tx.Transition(ctx, c.ICCID, []string{c.State}, c.State, fmt.Sprintf("OTA keys rotated: key version %d -> %d", row.OldKVN, row.NewKVN), ref, nil)
	case ota.OutcomeUnknown:
		log.Warn("OTA key rotation outcome unknown: manual action; both key sets kept", "reason", v.Reason)
		if err := setRotation(ctx, tx, c.ICCID, m.KeyIndex, rotManual, v.Reason); err != nil {
			return err
		}
		return tx.Transition(ctx, c.ICCID, []string{c.State}, c.State, "OTA key rotation unknown: "+v.Reason, ref, nil)
	}
	maxAttempts := 3
	if w.Partner != nil && w.Partner.Policy.MaxAttempts > 0 {
		maxAttempts = w.Partner.Policy.MaxAttempts
	}
	if row.Attempts < maxAttempts {
		log.Warn("OTA key rotation failed; retrying with a new counter", "reason", v.Reason, "attempt", row.Attempts+1)
		step := int64(1)
		if p.OTA.CounterJump > 1 {
			step = p.OTA.CounterJump // the refusal may be a counter answer
		}
		prof := p.Profiles[c.Profile]
		if prof == nil || prof.Rotation == nil {
			return fmt.Errorf("card %s: profile %s has no rotation", c.ICCID, c.Profile)
		}
		if err := p.queueRotation(ctx, tx, c, prof, w.BatchID, row.Attempts+1, step); err != nil {
			return err
		}
		w.Counts.Messages++
		return nil
	}
	log.Warn("OTA key rotation failed; retries exhausted: the card keeps its old keys", "reason", v.Reason)
	if _, err := tx.Exec(ctx, `DELETE FROM card_secrets WHERE iccid = ? AND key_index = ? AND name IN (?, ?, ?)`,
		c.ICCID, m.KeyIndex, SecKIc+pendingSuffix, SecKID+pendingSuffix, SecKIK+pendingSuffix); err != nil {
		return err
	}
	if err := setRotation(ctx, tx, c.ICCID, m.KeyIndex, rotFailed, v.Reason); err != nil {
		return err
	}
	return tx.Transition(ctx, c.ICCID, []string{c.State}, c.State, "OTA key rotation failed: "+v.Reason, ref, nil)
}

// pendingResponse is what the card answers to the PUT KEY of the pending
// set: the new key version and the KCVs.
func (p *Party) pendingResponse(ctx context.Context, tx *ledger.Tx, c *ledger.Card, keyIndex, kvn int) ([]byte, error) {
	prof := p.Profiles[c.Profile]
	if prof == nil {
		return nil, fmt.Errorf("card %s: profile %s not configured", c.ICCID, c.Profile)
	}
	typ, err := ota.KeyTypeFor(prof.OTA.KIc)
	if err != nil {
		return nil, err
	}
	sec, err := p.cardSecrets(ctx, tx, c.ICCID, keyIndex)
	if err != nil {
		return nil, err
	}
	defer wipe(sec)
	pk := ota.PutKey{NewKVN: kvn, Type: typ}
	for _, name := range []string{SecKIc, SecKID, SecKIK} {
		pk.Keys = append(pk.Keys, sec[name+pendingSuffix])
	}
	return ota.PutKeyResponse(pk)
}

// switchKeys makes the pending key set the card's: sealed under the names
// in use (the old blobs overwritten), the pending ones deleted, the key
// set row moved to the new version with the counter carried over.
func (p *Party) switchKeys(ctx context.Context, tx *ledger.Tx, c *ledger.Card, keyIndex int, row *rotationRow) error {
	sec, err := p.cardSecrets(ctx, tx, c.ICCID, keyIndex)
	if err != nil {
		return err
	}
	defer wipe(sec)
	for _, name := range []string{SecKIc, SecKID, SecKIK} {
		k := sec[name+pendingSuffix]
		if len(k) == 0 {
			return fmt.Errorf("card %s: pending %s missing", c.ICCID, name)
		}
		if err := p.seal(ctx, tx, c.ICCID, name, keyIndex, k); err != nil {
			return err
		}
	}
	if _, err := tx.Exec(ctx, `DELETE FROM card_secrets WHERE iccid = ? AND key_index = ? AND name IN (?, ?, ?)`,
		c.ICCID, keyIndex, SecKIc+pendingSuffix, SecKID+pendingSuffix, SecKIK+pendingSuffix); err != nil {
		return err
	}
	if row.NewKVN == row.OldKVN {
		return nil
	}
	sets, err := tx.KeySets(ctx, c.ICCID)
	if err != nil {
		return err
	}
	for _, k := range sets {
		if k.KeyIndex != keyIndex || k.KVN != row.OldKVN {
			continue
		}
		if _, err := tx.Exec(ctx, `DELETE FROM key_sets WHERE iccid = ? AND key_index = ? AND kvn = ?`, c.ICCID, keyIndex, row.OldKVN); err != nil {
			return err
		}
		k.KVN = row.NewKVN
		return tx.PutKeySet(ctx, c.ICCID, k)
	}
	return fmt.Errorf("card %s: key set %d not in the ledger", c.ICCID, row.OldKVN)
}

func setRotation(ctx context.Context, tx *ledger.Tx, iccid string, keyIndex int, state, reason string) error {
	if len(reason) > 200 {
		reason = reason[:200]
	}
	_, err := tx.Exec(ctx, `UPDATE key_rotations SET state = ?, reason = ?, updated_at = ? WHERE iccid = ? AND key_index = ?`,
		state, reason, tx.Now().UTC().Format(time.RFC3339Nano), iccid, keyIndex)
	return err
}

// escalateUnanswered moves rotations whose message the deadline sweep
// found unanswered to manual action: the card may or may not hold the
// new keys, so the ledger keeps both and switches nothing.
func (p *Party) escalateUnanswered(ctx context.Context, w *Work) error {
	tx := w.Tx
	rows, err := tx.Query(ctx, `SELECT r.iccid, r.key_index, r.message_id FROM key_rotations r
		JOIN ota_messages m ON m.id = r.message_id WHERE r.state = ? AND m.state = ? ORDER BY r.iccid`, rotPending, ledger.MsgUnknown)
	if err != nil {
		return err
	}
	type stale struct {
		iccid string
		idx   int
		msg   int64
	}
	var list []stale
	for rows.Next() {
		var s stale
		if err := rows.Scan(&s.iccid, &s.idx, &s.msg); err != nil {
			rows.Close()
			return err
		}
		list = append(list, s)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	for _, s := range list {
		p.log().Warn("OTA key rotation unanswered: manual action; both key sets kept", "iccid", s.iccid, "message", s.msg)
		if err := setRotation(ctx, tx, s.iccid, s.idx, rotManual, "no PoR by the deadline"); err != nil {
			return err
		}
		c, err := tx.Card(ctx, s.iccid)
		if err != nil {
			return err
		}
		if err := tx.Transition(ctx, s.iccid, []string{c.State}, c.State, "OTA key rotation unanswered: manual action", fmt.Sprintf("message %d", s.msg), nil); err != nil {
			return err
		}
		w.Counts.Records++
	}
	return nil
}
