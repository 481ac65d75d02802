package fleet

import (
	"bufio"
	"fmt"
	"io"
	"iter"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	"resub/crypto/pgp"
	"resub/formats/native"
)

// Envelope says how a file travels: encrypted to To and signed by Signer,
// or in clear when To is empty.
type Envelope struct {
	To     []*pgp.Key
	Signer *pgp.Key
	Armor  bool
	Now    func() time.Time
}

// Header is the sender's side of a native header.
type Header struct {
	Sender, Receiver string
	Sequence         int
	Date             time.Time
	TransportKey     string
	KCV              []byte
	Batch            string
}

// WriteFile writes a native file of schema into dir under its rule name,
// wrapped in env, and returns its path. records emits the records; n is
// their number (the header's quantity).
func WriteFile(dir string, schema *native.Schema, h Header, env Envelope, n int, records func(emit func(*native.Record) error) error) (string, error) {
	if h.Date.IsZero() {
		h.Date = time.Now().UTC()
	}
	y, m, d := h.Date.Date()
	hdr := &native.Header{Format: schema.Name, Version: schema.Version, Sender: h.Sender, Receiver: h.Receiver,
		BusinessDate: time.Date(y, m, d, 0, 0, 0, 0, time.UTC), Sequence: h.Sequence, Created: h.Date.Truncate(time.Second),
		Batch: h.Batch, TransportKey: h.TransportKey, KCV: h.KCV, Quantity: n}
	if hdr.Batch == "" {
		hdr.Batch = h.Sender + "-" + strconv.Itoa(h.Sequence)
	}
	if schema == native.OTABatch {
		hdr.MaxRate, hdr.Window = 100, "00:00-23:59"
	}
	name := native.NameOf(hdr, "txt", len(env.To) > 0).String()
	path := filepath.Join(dir, name)
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return "", err
	}
	defer os.Remove(tmp)
	var sink io.WriteCloser = nopCloser{f}
	if len(env.To) > 0 {
		sink, err = pgp.Encrypt(f, env.To, env.Signer, pgp.EncryptOptions{Armor: env.Armor, FileName: pgp.PlaintextName(name), Now: env.Now})
		if err != nil {
			f.Close()
			return "", err
		}
	}
	bw := bufio.NewWriter(sink)
	w := native.NewWriter(bw, schema)
	cols := make([]string, len(schema.Fields))
	for i, fd := range schema.Fields {
		cols[i] = fd.Name
	}
	if err := w.WriteHeader(hdr, cols); err != nil {
		f.Close()
		return "", err
	}
	if err := records(w.Write); err != nil {
		f.Close()
		return "", err
	}
	for _, step := range []func() error{w.Flush, bw.Flush, sink.Close, f.Sync, f.Close} {
		if err := step(); err != nil {
			f.Close()
			return "", err
		}
	}
	return path, os.Rename(tmp, path)
}

type nopCloser struct{ io.Writer }

func (nopCloser) Close() error { return nil }

// Wrapper wraps a secret for a file (a partner's transport key).
type Wrapper interface {
	Wrap(plain []byte) (string, error)
}

// InventoryRecords emits the native inventory of the fleet's cards (as
// the donor imports it): secrets wrapped by w, the key set of index 1.
func (f *Fleet) InventoryRecords(w Wrapper, profile string, cards []*Card) func(emit func(*native.Record) error) error {
	return f.InventorySeq(w, profile, slices.Values(cards))
}

// InventorySeq is InventoryRecords over a sequence of cards (All).
func (f *Fleet) InventorySeq(w Wrapper, profile string, cards iter.Seq[*Card]) func(emit func(*native.Record) error) error {
	return func(emit func(*native.Record) error) error {
		rec := native.NewRecord(native.Inventory)
		for c := range cards {
			set := func(field string, v []byte) error {
				s, err := w.Wrap(v)
				if err != nil {
					return err
				}
				rec.Set(field, s)
				return nil
			}
			rec.Set(native.FieldICCID, c.ICCID)
			rec.Set(native.FieldIMSI, c.IMSI)
			ks := c.Keys(1)
			for _, kv := range []struct {
				f string
				v []byte
			}{{native.FieldKi, c.Ki(1)}, {native.FieldOPc, c.OPc}, {native.FieldKIc, ks.KIc}, {native.FieldKID, ks.KID}, {native.FieldKIK, ks.KIK}} {
				if err := set(kv.f, kv.v); err != nil {
					return err
				}
			}
			rec.Set(native.FieldAlgorithm, "milenage")
			rec.Set(native.FieldKVN, strconv.Itoa(c.KVN))
			rec.Set(native.FieldOTAAlg, otaAlgName(f.Opts.OTAAlg))
			rec.Set(native.FieldCounter, strconv.FormatUint(f.Opts.Counter, 10))
			rec.Set(native.FieldProfile, profile)
			if f.Opts.ListLength > 0 {
				rec.Set(native.FieldKeyIndex, "1")
				rec.Set(native.FieldKeyListLength, strconv.Itoa(f.Opts.ListLength))
			}
			if err := emit(rec); err != nil {
				return err
			}
		}
		return nil
	}
}

func otaAlgName(a string) string {
	switch a {
	case "3des":
		return "3des-2key"
	}
	return a
}

// MSISDNRecords emits the MSISDN map of cards.
func MSISDNRecords(cards []*Card) func(emit func(*native.Record) error) error {
	return MSISDNSeq(slices.Values(cards))
}

// MSISDNSeq is MSISDNRecords over a sequence of cards.
func MSISDNSeq(cards iter.Seq[*Card]) func(emit func(*native.Record) error) error {
	return func(emit func(*native.Record) error) error {
		rec := native.NewRecord(native.MSISDNMap)
		for c := range cards {
			rec.Set(native.FieldICCID, c.ICCID)
			rec.Set(native.FieldIMSI, c.IMSI)
			rec.Set(native.FieldMSISDN, c.MSISDN)
			if err := emit(rec); err != nil {
				return err
			}
		}
		return nil
	}
}

// AuthorisationRecords emits a switch authorisation of cards to recipient.
func AuthorisationRecords(cards []*Card, recipient string, date time.Time) func(emit func(*native.Record) error) error {
	return AuthorisationSeq(slices.Values(cards), recipient, date)
}

// AuthorisationSeq is AuthorisationRecords over a sequence of cards.
func AuthorisationSeq(cards iter.Seq[*Card], recipient string, date time.Time) func(emit func(*native.Record) error) error {
	return func(emit func(*native.Record) error) error {
		rec := native.NewRecord(native.SwitchAuthorisation)
		for c := range cards {
			rec.Set(native.FieldICCID, c.ICCID)
			rec.Set(native.FieldRecipient, recipient)
			rec.Set(native.FieldCutoverDate, date.Format("2006-01-02"))
			if err := emit(rec); err != nil {
				return err
			}
		}
		return nil
	}
}

// SwitchRequestRecords emits a switch request for cards held by donor.
func SwitchRequestRecords(cards []*Card, donor string, date time.Time) func(emit func(*native.Record) error) error {
	return SwitchRequestSeq(slices.Values(cards), donor, date)
}

// SwitchRequestSeq is SwitchRequestRecords over a sequence of cards.
func SwitchRequestSeq(cards iter.Seq[*Card], donor string, date time.Time) func(emit func(*native.Record) error) error {
	return func(emit func(*native.Record) error) error {
		rec := native.NewRecord(native.SwitchRequest)
		for c := range cards {
			rec.Set(native.FieldICCID, c.ICCID)
			rec.Set(native.FieldCutoverDate, date.Format("2006-01-02"))
			rec.Set(native.FieldDonor, donor)
			if err := emit(rec); err != nil {
				return err
			}
		}
		return nil
	}
}

// ByICCID indexes cards.
func (f *Fleet) ByICCID() map[string]*Card {
	m := make(map[string]*Card, len(f.Cards))
	for _, c := range f.Cards {
		m[c.ICCID] = c
	}
	return m
}

// String describes the fleet for logs.
func (f *Fleet) String() string {
	return fmt.Sprintf("%d cards from %s", len(f.Cards), f.Opts.ICCIDBody)
}
