package processor_test

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"resub/crypto/pgp"
	"resub/formats/native"
	"resub/processor"
	"resub/processor/ledger"
)

// Helpers that look at what the parties produced: the files as their
// receiver reads them, and the ledgers' OTA messages and counters.

// readFile reads a native file as its receiver does: decrypted with the
// receiver's key and verified against the sender's (clear files are read
// as they are). It returns the header and every record, each cloned.
func (w *world) readFile(path, sender, receiver string, clear bool) (*native.Header, []*native.Record) {
	w.t.Helper()
	open := func() (io.ReadCloser, error) { return os.Open(path) }
	plain := open
	if !clear {
		v, err := pgp.Open(open, pgp.DecryptOptions{Keys: []*pgp.Key{w.keys[receiver]}, Signers: []*pgp.Key{w.keys[sender].Public()},
			Now: func() time.Time { return w.now }})
		if err != nil {
			w.t.Fatalf("%s: %v", path, err)
		}
		plain = v.Plaintext
	}
	rc, err := plain()
	if err != nil {
		w.t.Fatal(err)
	}
	defer rc.Close()
	rd := native.NewReader(rc, native.Options{File: path, Sender: sender, Receiver: receiver})
	h, err := rd.Header()
	if err != nil {
		w.t.Fatalf("%s: header: %v", path, err)
	}
	var recs []*native.Record
	for {
		r, err := rd.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			w.t.Fatalf("%s: %v", path, err)
		}
		recs = append(recs, r.Clone())
	}
	if len(recs) != h.Quantity {
		w.t.Fatalf("%s: quantity %d, %d records", path, h.Quantity, len(recs))
	}
	return h, recs
}

// readOutput reads an output of party p (sender) as its partner reads it.
func (w *world) readOutput(p *processor.Party, o *ledger.Output) (*native.Header, []*native.Record) {
	w.t.Helper()
	pt := p.Partners[o.Partner]
	return w.readFile(o.Path, p.Name, pt.Code, pt.PGPOff)
}

// messages lists a card's OTA messages at p in id order.
func messages(t testing.TB, p *processor.Party, iccid string) []*ledger.Message {
	t.Helper()
	ctx := context.Background()
	rows, err := p.Ledger.Query(ctx, `SELECT id FROM ota_messages WHERE iccid = ? ORDER BY id`, iccid)
	if err != nil {
		t.Fatal(err)
	}
	var ids []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	rows.Close()
	var out []*ledger.Message
	err = p.Ledger.InTx(ctx, func(tx *ledger.Tx) error {
		for _, id := range ids {
			m, err := tx.Message(ctx, id)
			if err != nil {
				return err
			}
			out = append(out, m)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// counter is the highest counter reserved for a card's key set of index
// idx at p.
func counter(t testing.TB, p *processor.Party, iccid string, idx int) int64 {
	t.Helper()
	sets, err := p.Ledger.KeySetsOf(context.Background(), iccid)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range sets {
		if k.KeyIndex == idx {
			return k.Counter
		}
	}
	t.Fatalf("card %s has no key set of index %d at %s", iccid, idx, p.Name)
	return 0
}

// noCounterReuse fails if any (card, key index, KVN, counter) was used by
// two messages of p.
func noCounterReuse(t testing.TB, p *processor.Party) {
	t.Helper()
	var n int
	err := p.Ledger.QueryRow(context.Background(), `SELECT COUNT(*) FROM (SELECT iccid, key_index, kvn, counter FROM ota_messages
		GROUP BY iccid, key_index, kvn, counter HAVING COUNT(*) > 1) AS d`).Scan(&n)
	if err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Errorf("%s: %d counter values used by more than one message", p.Name, n)
	}
}

// cardState is a card's state at p ("" when p does not know it).
func cardState(t testing.TB, p *processor.Party, iccid string) string {
	t.Helper()
	c, err := p.Ledger.Card(context.Background(), iccid)
	if errors.Is(err, ledger.ErrNotFound) {
		return ""
	}
	if err != nil {
		t.Fatal(err)
	}
	return c.State
}

// imsiState is the state of an IMSI in p's allocations ("" when none).
func imsiState(t testing.TB, p *processor.Party, imsi string) string {
	t.Helper()
	var s string
	err := p.Ledger.QueryRow(context.Background(), `SELECT state FROM imsi_allocations WHERE imsi = ?`, imsi).Scan(&s)
	if err != nil {
		return ""
	}
	return s
}

// count runs a COUNT(*) query on p's ledger.
func count(t testing.TB, p *processor.Party, query string, args ...any) int {
	t.Helper()
	var n int
	if err := p.Ledger.QueryRow(context.Background(), query, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return n
}

// sendEdited is send for a file whose text edit changes before it is
// encrypted and signed: a partner's faulty file.
func (w *world) sendEdited(from, to string, schema *native.Schema, n int, recs func(func(*native.Record) error) error, edit func(string) string) string {
	w.t.Helper()
	clearPath := w.send(from, to, schema, n, true, "", recs)
	text, err := os.ReadFile(clearPath)
	if err != nil {
		w.t.Fatal(err)
	}
	os.Remove(clearPath)
	return w.sendRaw(from, to, filepath.Base(clearPath)+".pgp", edit(string(text)))
}

// sendRaw encrypts text from sender to receiver under name in the wire
// folder and returns its path.
func (w *world) sendRaw(from, to, name, text string) string {
	w.t.Helper()
	path := filepath.Join(w.dir, "wire", name)
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		w.t.Fatal(err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		w.t.Fatal(err)
	}
	defer f.Close()
	enc, err := pgp.Encrypt(f, []*pgp.Key{w.keys[to].Public()}, w.keys[from], pgp.EncryptOptions{FileName: name, Now: w.clock})
	if err != nil {
		w.t.Fatal(err)
	}
	if _, err := io.WriteString(enc, text); err != nil {
		w.t.Fatal(err)
	}
	if err := enc.Close(); err != nil {
		w.t.Fatal(err)
	}
	return path
}

// runSMSCTo is runSMSC with the report's sequence counted per receiver
// (several donors share the simulated SMSC).
func (w *world) runSMSCTo(batch *ledger.Output, receiver string) string {
	w.t.Helper()
	key := "SMSC>" + receiver
	w.seqs[key]++
	saved := w.smscSeq
	w.smscSeq = w.seqs[key] - 1
	path := w.runSMSC(batch, receiver)
	w.smscSeq = saved
	return path
}

// pastDeadlines is a minute after the last PoR deadline of p's sent
// messages: the time at which the deadline sweep takes them all.
func pastDeadlines(t testing.TB, p *processor.Party) time.Time {
	t.Helper()
	var last string
	if err := p.Ledger.QueryRow(context.Background(), `SELECT COALESCE(MAX(deadline), '') FROM ota_messages WHERE state = 'sent'`).Scan(&last); err != nil || last == "" {
		t.Fatalf("no deadline: %q %v", last, err)
	}
	d, err := ledger.ParseTime(last)
	if err != nil {
		t.Fatal(err)
	}
	return d.Add(time.Minute)
}
