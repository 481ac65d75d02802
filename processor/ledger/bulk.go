package ledger

import (
	"context"
	"fmt"
	"strings"
)

// BatchMessage is one message of a batch with what rendering its packet
// needs and no more (each column read costs a good deal in a million-row
// batch): of the message its ID, ICCID, kind, key index, KVN, counter,
// TAR, MSISDN and concatenation reference; of the card its ICCID, IMSI,
// new IMSI, recipient, key index and profile; and the card's wrapped
// secrets asked for, of the message's key index. Other fields are zero.
type BatchMessage struct {
	Msg     *Message
	Card    *Card
	Secrets []Secret
}

// prefixed qualifies a column list with a table alias.
func prefixed(alias, cols string) string {
	parts := strings.Split(cols, ", ")
	for i, c := range parts {
		parts[i] = alias + "." + c
	}
	return strings.Join(parts, ", ")
}

var cardColsC = prefixed("c", cardCols)

// BatchMessagePages calls fn with the messages of a batch in id order, in
// pages of up to size, each message with its card and those of the card's
// wrapped secrets of the message's key index that are named in names: one
// query a page (plus a count that proves no message lost its card)
// instead of several lookups a message, and memory bounded by the page
// whatever the batch's size. Each page is a new slice: fn may hand it to
// another goroutine.
func (d *DB) BatchMessagePages(ctx context.Context, batchID int64, size int, names []string, fn func([]BatchMessage) error) error {
	if size <= 0 {
		size = 1000
	}
	cols, joins, nameArgs := secretJoins(names, "m.iccid", "m.key_index")
	query := `SELECT m.id, m.iccid, m.kind, m.key_index, m.kvn, m.counter, m.tar, m.msisdn, m.concat_ref,
			c.imsi, c.new_imsi, c.recipient, c.key_index, c.profile, c.cutover` + cols + `
		FROM ota_messages m JOIN cards c ON c.iccid = m.iccid` + joins + `
		WHERE m.batch_id = ? AND m.id > ? ORDER BY m.id LIMIT ?`
	blobs := make([][]byte, len(names))
	var after int64
	for {
		page := make([]BatchMessage, 0, size)
		args := append(append([]any{}, nameArgs...), batchID, after, size)
		rows, err := d.Query(ctx, query, args...)
		if err != nil {
			return err
		}
		for rows.Next() {
			m, c := &Message{BatchID: batchID}, &Card{}
			dest := []any{&m.ID, &m.ICCID, &m.Kind, &m.KeyIndex, &m.KVN, &m.Counter, &m.TAR, &m.MSISDN, &m.ConcatRef,
				&c.IMSI, &c.NewIMSI, &c.Recipient, &c.KeyIndex, &c.Profile, &c.Cutover}
			dest = blobDests(dest, blobs)
			if err := rows.Scan(dest...); err != nil {
				rows.Close()
				return err
			}
			c.ICCID = m.ICCID
			page = append(page, BatchMessage{Msg: m, Card: c, Secrets: secretsFrom(names, blobs, m.KeyIndex)})
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		var n int
		last := after
		if len(page) > 0 {
			last = page[len(page)-1].Msg.ID
		}
		if err := d.QueryRow(ctx, `SELECT COUNT(*) FROM ota_messages WHERE batch_id = ? AND id > ? AND id <= ?`, batchID, after, last).Scan(&n); err != nil {
			return err
		}
		if n != len(page) {
			return fmt.Errorf("batch %d: %d messages after %d have no card in the ledger: %w", batchID, n-len(page), after, ErrNotFound)
		}
		if len(page) == 0 {
			return nil
		}
		if err := fn(page); err != nil {
			return err
		}
		if len(page) < size {
			return nil
		}
		after = last
	}
}

// secretJoins is the select list (", s0.blob, s1.blob …") and the joins
// that read the wrapped secrets named in names, one LEFT JOIN each, of the
// card whose ICCID and key index are the SQL expressions iccid and
// keyIndex. Bind args (the names) before the query's other arguments.
func secretJoins(names []string, iccid, keyIndex string) (cols, joins string, args []any) {
	var c, j strings.Builder
	for i, nm := range names {
		fmt.Fprintf(&c, ", s%d.blob", i)
		fmt.Fprintf(&j, "\n\t\tLEFT JOIN card_secrets s%d ON s%d.iccid = %s AND s%d.key_index = %s AND s%d.name = ?", i, i, iccid, i, keyIndex, i)
		args = append(args, nm)
	}
	return c.String(), j.String(), args
}

// blobDests appends to a row's scan destinations one for each blob,
// emptied first (a NULL leaves it nil), for secretsFrom to read.
func blobDests(dest []any, blobs [][]byte) []any {
	for i := range blobs {
		blobs[i] = nil
		dest = append(dest, &blobs[i])
	}
	return dest
}

// secretsFrom makes the secrets of the blobs read for names (a NULL blob:
// the card has no such secret), in the order of names.
func secretsFrom(names []string, blobs [][]byte, keyIndex int) []Secret {
	var out []Secret
	for i, b := range blobs {
		if b != nil {
			out = append(out, Secret{Name: names[i], KeyIndex: keyIndex, Blob: b})
		}
	}
	return out
}

// BatchProfiles calls fn for each distinct card profile among a batch's
// messages, in the order of their first message.
func (d *DB) BatchProfiles(ctx context.Context, batchID int64, fn func(profile string) error) error {
	rows, err := d.Query(ctx, `SELECT c.profile, MIN(m.id) AS first FROM ota_messages m JOIN cards c ON c.iccid = m.iccid
		WHERE m.batch_id = ? GROUP BY c.profile ORDER BY first`, batchID)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var p string
		var first int64
		if err := rows.Scan(&p, &first); err != nil {
			return err
		}
		if err := fn(p); err != nil {
			return err
		}
	}
	return rows.Err()
}

// PutSecrets stores (or replaces) several wrapped secrets of a card in one
// statement.
func (t *Tx) PutSecrets(ctx context.Context, iccid string, list []Secret) error {
	if len(list) == 0 {
		return nil
	}
	if len(list) == 1 {
		return t.PutSecret(ctx, iccid, list[0])
	}
	var b strings.Builder
	b.WriteString(`INSERT INTO card_secrets (iccid, name, key_index, master_key, blob) VALUES `)
	args := make([]any, 0, 5*len(list))
	for i, s := range list {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString("(?, ?, ?, ?, ?)")
		args = append(args, iccid, s.Name, s.KeyIndex, s.MasterKey, s.Blob)
	}
	b.WriteString(` ON CONFLICT (iccid, name, key_index) DO UPDATE SET master_key = excluded.master_key, blob = excluded.blob`)
	_, err := t.Exec(ctx, b.String(), args...)
	return err
}
