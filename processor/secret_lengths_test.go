package processor_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"resub/formats/native"
	"resub/formats/vendor"
	"resub/processor"
	"resub/processor/ledger"
	"resub/samples/fleet"
)

// badSecret is a secret of a length its algorithm does not take, and the
// words its rejection must name.
type badSecret struct {
	name  string // test name
	field string // the secret's field
	n     int    // its length in bytes
}

// badSecrets are the wrong lengths every path must reject (Ki and OPc
// under MILENAGE, the OTA keys under AES).
var badSecrets = []badSecret{
	{"ki-1", native.FieldKi, 1},
	{"ki-15", native.FieldKi, 15},
	{"ki-17", native.FieldKi, 17},
	{"ki-32", native.FieldKi, 32},
	{"kic-5", native.FieldKIc, 5},
	{"opc-3", native.FieldOPc, 3},
}

// secretOf makes a recognisable secret of n bytes.
func secretOf(n, seed int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(0xa0 + seed + 7*i)
	}
	return b
}

// noValue fails when text holds a secret in any of the forms a careless
// message would use.
func noValue(t *testing.T, what, text string, secret []byte, wrapped string) {
	t.Helper()
	for _, form := range []string{hex.EncodeToString(secret), strings.ToUpper(hex.EncodeToString(secret)), base64.StdEncoding.EncodeToString(secret), string(secret)} {
		if len(form) >= 2 && strings.Contains(text, form) {
			t.Errorf("%s holds the secret's value: %q", what, text)
		}
	}
	if wrapped != "" {
		_, h, _ := strings.Cut(wrapped, ":")
		if strings.Contains(text, h) {
			t.Errorf("%s holds the wrapped secret: %q", what, text)
		}
	}
}

// TestHandoverSecretLengths: a validly signed handover whose secrets
// unwrap to lengths their algorithms do not take is answered
// INVALID_RECORD naming the field, never the value; the cards are not
// provisioned, not sent to the HLR/AuC and not acknowledged as
// provisioned. A TUAK card with a 32-byte Ki and TOPc goes through.
func TestHandoverSecretLengths(t *testing.T) {
	ctx := context.Background()
	n := len(badSecrets) + 2
	w, f, _, b := setup3a(t, n)
	c := f.Cards
	cut := w.now.AddDate(0, 0, 1)
	res := w.process(b, "m2m", &processor.SwitchRequest{Donor: b.Partners["mno-a"]}, w.send("M2M", "MNOB", native.SwitchRequest, n, false, "", fleet.SwitchRequestRecords(c, "MNOA", cut)))
	if res.Counts.Accepted != n {
		t.Fatalf("switch request: %+v", res.Counts)
	}
	tk := processor.NewTransport(w.tks["tk-ab"])
	wrap := func(v []byte) string {
		s, err := tk.Wrap(v)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	var recs []handRec
	wrapped := map[string]string{}
	for i, card := range c {
		bc, err := b.Ledger.Card(ctx, card.ICCID)
		if err != nil {
			t.Fatal(err)
		}
		ks := card.Keys(1)
		h := handRec{
			native.FieldKind: native.Kind3a, native.FieldICCID: card.ICCID, native.FieldIMSI: bc.IMSI, native.FieldMSISDN: card.MSISDN,
			native.FieldKi: wrap(card.Ki(1)), native.FieldOPc: wrap(card.OPc), native.FieldAlgorithm: "milenage",
			native.FieldKVN: strconv.Itoa(card.KVN), native.FieldOTAAlg: "aes", native.FieldKIc: wrap(ks.KIc), native.FieldKID: wrap(ks.KID), native.FieldKIK: wrap(ks.KIK),
			native.FieldCounter: "21", native.FieldProfile: w.prof.Name,
		}
		switch {
		case i < len(badSecrets):
			bs := badSecrets[i]
			h[bs.field] = wrap(secretOf(bs.n, i))
			wrapped[card.ICCID] = h[bs.field]
		case i == len(badSecrets)+1:
			h[native.FieldAlgorithm] = "tuak"
			h[native.FieldKi] = wrap(secretOf(32, i))
			h[native.FieldOPc] = wrap(secretOf(32, i+1))
		}
		recs = append(recs, h)
	}
	w.now = w.now.Add(1)
	res = w.process(b, "mno-a", &processor.HandoverIntake{HLR: b.Partners["hlr"]}, w.send("MNOA", "MNOB", native.Handover, n, false, "tk-ab", handRecords(recs)))
	if res.Counts.Accepted != 2 || res.Counts.Rejected != len(badSecrets) {
		t.Errorf("counts %+v, want 2 accepted and %d rejected", res.Counts, len(badSecrets))
	}
	_, ack := w.readOutput(b, output(t, res.Outputs, "handover-ack"))
	if len(ack) != n {
		t.Fatalf("handover-ack has %d records, want %d", len(ack), n)
	}
	for i, bs := range badSecrets {
		t.Run(bs.name, func(t *testing.T) {
			r := ack[i]
			if r.Get(native.FieldICCID) != c[i].ICCID || r.Get(native.FieldStatus) != "rejected" || r.Get(native.FieldReason) != processor.ReasonInvalid {
				t.Fatalf("answer %s %s %s (%s)", r.Get(native.FieldICCID), r.Get(native.FieldStatus), r.Get(native.FieldReason), r.Get(native.FieldDetail))
			}
			d := r.Get(native.FieldDetail)
			if !strings.HasPrefix(d, bs.field+": ") || !strings.Contains(d, strconv.Itoa(bs.n)+" bytes") {
				t.Errorf("detail %q does not name the field and its length", d)
			}
			noValue(t, "detail", d, secretOf(bs.n, i), wrapped[c[i].ICCID])
			if st := cardState(t, b, c[i].ICCID); st != "requested" {
				t.Errorf("card is %s", st)
			}
			if got := count(t, b, `SELECT COUNT(*) FROM card_secrets WHERE iccid = ?`, c[i].ICCID); got != 0 {
				t.Errorf("%d secrets kept", got)
			}
		})
	}
	for _, r := range ack[len(badSecrets):] {
		if r.Get(native.FieldStatus) != native.StatusProvisioned {
			t.Errorf("card %s: %s %s (%s)", r.Get(native.FieldICCID), r.Get(native.FieldStatus), r.Get(native.FieldReason), r.Get(native.FieldDetail))
		}
	}
	_, prov := w.readOutput(b, output(t, res.Outputs, "provisioning"))
	if len(prov) != 2 {
		t.Fatalf("provisioning has %d records, want 2", len(prov))
	}
	for _, r := range prov {
		if r.Get(native.FieldICCID) != c[len(badSecrets)].ICCID && r.Get(native.FieldICCID) != c[len(badSecrets)+1].ICCID {
			t.Errorf("card %s sent to the HLR/AuC", r.Get(native.FieldICCID))
		}
	}
}

// TestInventorySecretLengths: the donor's native inventory and the SIM
// vendor's file with encrypted secrets reject a card whose secrets unwrap
// to a wrong length; nothing of it is stored.
func TestInventorySecretLengths(t *testing.T) {
	n := len(badSecrets) + 1
	var (
		w    *world
		a    *processor.Party
		f    *fleet.Fleet
		wrap *processor.KeyTransport
		bad  map[string]int
	)
	fresh := func(t *testing.T) {
		w = newWorld(t)
		a = w.party("MNOA", mustRanges(t, "001-01"), nil)
		w.partner(a, "vendor", "VENDOR", "manufacturer", "tk-va", nil, false)
		var err error
		if f, err = fleet.New(fleet.Options{N: n, Seed: "secret-lengths", Profile: w.prof.OTA}); err != nil {
			t.Fatal(err)
		}
		wrap = processor.NewTransport(w.tks["tk-va"])
		bad = map[string]int{}
		for i := range badSecrets {
			bad[f.Cards[i].ICCID] = i
		}
	}
	check := func(t *testing.T, res *processor.Result, wrapped map[string]string) {
		t.Helper()
		if res.Counts.Accepted != 1 || res.Counts.Rejected != len(badSecrets) {
			t.Errorf("counts %+v", res.Counts)
		}
		for i, bs := range badSecrets {
			var reason, detail string
			if err := a.Ledger.QueryRow(context.Background(), `SELECT reason, detail FROM batch_records WHERE batch_id = ? AND iccid = ?`, res.BatchID, f.Cards[i].ICCID).Scan(&reason, &detail); err != nil {
				t.Fatalf("%s: %v", bs.name, err)
			}
			if reason != processor.ReasonInvalid || !strings.Contains(detail, bs.field+": ") {
				t.Errorf("%s: %s %q", bs.name, reason, detail)
			}
			noValue(t, bs.name+" detail", detail, secretOf(bs.n, i), wrapped[f.Cards[i].ICCID])
			if st := cardState(t, a, f.Cards[i].ICCID); st != "" {
				t.Errorf("%s: card stored as %s", bs.name, st)
			}
		}
		if got := count(t, a, `SELECT COUNT(DISTINCT iccid) FROM card_secrets`); got != 1 {
			t.Errorf("secrets of %d cards stored", got)
		}
	}

	t.Run("native", func(t *testing.T) {
		fresh(t)
		wrapped := map[string]string{}
		recs := func(emit func(*native.Record) error) error {
			return f.InventoryRecords(wrap, w.prof.Name, f.Cards)(func(r *native.Record) error {
				if i, ok := bad[r.Get(native.FieldICCID)]; ok {
					s, err := wrap.Wrap(secretOf(badSecrets[i].n, i))
					if err != nil {
						return err
					}
					r.Set(badSecrets[i].field, s)
					wrapped[r.Get(native.FieldICCID)] = s
				}
				return emit(r)
			})
		}
		check(t, w.process(a, "vendor", &processor.InventoryImport{}, w.send("VENDOR", "MNOA", native.Inventory, n, false, "tk-va", recs)), wrapped)
	})

	t.Run("vendor file", func(t *testing.T) {
		fresh(t)
		// The vendor's convention: the column holds the ciphertext of
		// a wrapped field, the header names the key.
		enc := func(v []byte) []byte {
			s, err := wrap.Wrap(v)
			if err != nil {
				t.Fatal(err)
			}
			_, h, _ := strings.Cut(s, ":")
			b, _ := hex.DecodeString(h)
			return b
		}
		var buf bytes.Buffer
		vw := vendor.NewWriter(&buf)
		h := &vendor.Header{Customer: "MNOA", Quantity: n, Type: "USIM", Profile: w.prof.Name, Batch: "VB-LEN", Algorithm: "MILENAGE", TransportKey: "tk-va"}
		if err := vw.WriteHeader(h, []string{"ICCID", "IMSI", "KI", "OPC", "KIC1", "KID1", "KIK1"}); err != nil {
			t.Fatal(err)
		}
		wrapped := map[string]string{}
		for i, c := range f.Cards {
			ks := c.Keys(1)
			vals := map[string][]byte{native.FieldKi: c.Ki(1), native.FieldOPc: c.OPc, native.FieldKIc: ks.KIc}
			if i < len(badSecrets) {
				vals[badSecrets[i].field] = secretOf(badSecrets[i].n, i)
			}
			vc := &vendor.Card{ICCID: c.ICCID, IMSI: c.IMSI, Encrypted: true, Ki: enc(vals[native.FieldKi]), OPc: enc(vals[native.FieldOPc]), Counter: -1,
				KeySets: []vendor.KeySet{{KVN: 1, KIc: enc(vals[native.FieldKIc]), KID: enc(ks.KID), KIK: enc(ks.KIK)}}}
			if i < len(badSecrets) {
				var ct []byte
				switch badSecrets[i].field {
				case native.FieldKi:
					ct = vc.Ki
				case native.FieldOPc:
					ct = vc.OPc
				default:
					ct = vc.KeySets[0].KIc
				}
				wrapped[c.ICCID] = "tk-va:" + strings.ToUpper(hex.EncodeToString(ct))
			}
			if err := vw.Write(vc); err != nil {
				t.Fatal(err)
			}
		}
		if err := vw.Flush(); err != nil {
			t.Fatal(err)
		}
		path := w.sendRaw("VENDOR", "MNOA", "VENDOR_VB-LEN.out.pgp", buf.String())
		res, err := a.ProcessFile(context.Background(), &processor.InventoryImport{Profile: w.prof.Name}, processor.Input{Partner: a.Partners["vendor"], Name: filepath.Base(path), Path: path, Job: "inventory"})
		if err != nil {
			t.Fatal(err)
		}
		check(t, res, wrapped)
	})
}

// TestManufacturerImportSecretLengths: the manufacturer's own import
// rejects a pair whose secrets unwrap to a wrong length.
func TestManufacturerImportSecretLengths(t *testing.T) {
	n := len(badSecrets) + 1
	w := newWorld(t)
	m := w.party("MFR", nil, nil)
	w.partner(m, "factory", "VENDOR", "internal", "tk-va", nil, true)
	w.partner(m, "mno-a", "MNOA", "operator", "tk-ma", nil, false)
	f, err := fleet.New(fleet.Options{N: n, Seed: t.Name(), Profile: w.prof.OTA, ListLength: 3})
	if err != nil {
		t.Fatal(err)
	}
	wrap := processor.NewTransport(w.tks["tk-va"])
	recs := func(emit func(*native.Record) error) error {
		i := 0
		return f.FactoryRecords(wrap, w.prof.Name, f.Cards, 1)(func(r *native.Record) error {
			if i < len(badSecrets) {
				s, err := wrap.Wrap(secretOf(badSecrets[i].n, i))
				if err != nil {
					return err
				}
				r.Set(badSecrets[i].field, s)
			}
			i++
			return emit(r)
		})
	}
	res := w.process(m, "factory", &processor.ManufacturerImport{Holder: m.Partners["mno-a"]}, w.send("VENDOR", "MFR", native.Inventory, n, true, "tk-va", recs))
	if res.Counts.Accepted != 1 || res.Counts.Rejected != len(badSecrets) {
		t.Errorf("counts %+v", res.Counts)
	}
	for i, bs := range badSecrets {
		var reason, detail string
		if err := m.Ledger.QueryRow(context.Background(), `SELECT reason, detail FROM batch_records WHERE batch_id = ? AND iccid = ?`, res.BatchID, f.Cards[i].ICCID).Scan(&reason, &detail); err != nil {
			t.Fatalf("%s: %v", bs.name, err)
		}
		if reason != processor.ReasonInvalid || !strings.HasPrefix(detail, bs.field+": ") {
			t.Errorf("%s: %s %q", bs.name, reason, detail)
		}
		noValue(t, bs.name, detail, secretOf(bs.n, i), "")
		if got := count(t, m, `SELECT COUNT(*) FROM card_secrets WHERE iccid = ?`, f.Cards[i].ICCID); got != 0 {
			t.Errorf("%s: %d secrets stored", bs.name, got)
		}
	}
}

// TestKeyRotationRefusesWrongLengths: a card whose OTA key set in the
// ledger has a wrong length (from before intake checked lengths) gets no
// rotation: fresh keys of that length would be no better. The sweep goes
// on with the other cards and says why.
func TestKeyRotationRefusesWrongLengths(t *testing.T) {
	ctx := context.Background()
	w, f, _, b := handedToB(t, 2, nil)
	bad := f.Cards[0]
	if err := b.Ledger.InTx(ctx, func(tx *ledger.Tx) error {
		blob, err := b.Vault.Seal([]byte(bad.ICCID+"/kic/0"), secretOf(5, 0))
		if err != nil {
			return err
		}
		return tx.PutSecret(ctx, bad.ICCID, ledger.Secret{Name: "kic", KeyIndex: 0, MasterKey: b.Vault.KeyID(), Blob: blob})
	}); err != nil {
		t.Fatal(err)
	}
	res, err := b.RunSweep(ctx, "rotation", &processor.KeyRotation{SMSC: b.Partners["smsc"]}, false)
	if err != nil {
		t.Fatal(err)
	}
	w.deliverAll(b, res.Outputs)
	if res.Counts.Messages != 1 {
		t.Errorf("rotation messages %d, want 1 (the good card only)", res.Counts.Messages)
	}
	var state, reason string
	if err := b.Ledger.QueryRow(ctx, `SELECT state, reason FROM key_rotations WHERE iccid = ?`, bad.ICCID).Scan(&state, &reason); err != nil {
		t.Fatal(err)
	}
	if state != "failed" || !strings.Contains(reason, "kic: ") || !strings.Contains(reason, "5 bytes") {
		t.Errorf("rotation of the bad card: %s %q", state, reason)
	}
	noValue(t, "reason", reason, secretOf(5, 0), "")
	if got := count(t, b, `SELECT COUNT(*) FROM card_secrets WHERE iccid = ? AND name LIKE '%.next'`, bad.ICCID); got != 0 {
		t.Errorf("%d pending keys made for the bad card", got)
	}
}

// TestKeyResponseSecretLengths: a manufacturer's key-response whose pair
// unwraps to lengths the algorithms do not take provisions nothing: the
// card waits for an engineer, the donor's acknowledgement says
// INVALID_RECORD naming the field, and the HLR/AuC gets only the good card.
func TestKeyResponseSecretLengths(t *testing.T) {
	ctx := context.Background()
	n := len(badSecrets) + 1
	x := setup3b(t, n, true)
	w, d, r := x.world, x.a, x.b
	cards := x.f.Cards
	res := x.request(t, d, r, cards)
	res = w.process(d, "smsc", &processor.OTAReport{}, w.runSMSCTo(output(t, res.Outputs, "ota-batch"), d.Name))
	w.process(r, "mno-a", processor.IMSIResultIntake{}, output(t, res.Outputs, "imsi-result").Path)
	hres, err := d.RunSweep(ctx, "handover", &processor.Handover{Recipient: d.Partners["mno-b"], Manufacturer: d.Partners["mfr"]}, false)
	if err != nil {
		t.Fatal(err)
	}
	w.deliverAll(d, hres.Outputs)
	w.process(x.m, "mno-a", processor.KeyReleaseIntake{}, output(t, hres.Outputs, "key-release").Path)
	res = w.process(r, "mno-a", &processor.HandoverIntake{HLR: r.Partners["hlr"], Manufacturer: r.Partners["mfr"]}, output(t, hres.Outputs, "handover").Path)
	if res.Counts.Accepted != n {
		t.Fatalf("handover intake: %+v", res.Counts)
	}
	res = w.process(x.m, "mno-b", processor.KeyRequestIntake{}, output(t, res.Outputs, "key-request").Path)
	_, recs := w.readOutput(x.m, output(t, res.Outputs, "key-response"))
	if len(recs) != n {
		t.Fatalf("key-response has %d records", len(recs))
	}
	// The manufacturer's answer, as it would be had its data been
	// wrong: the same records, one secret of each bad card replaced.
	mb := processor.NewTransport(w.tks["tk-mb"])
	byICCID := map[string]int{}
	for i, c := range cards {
		byICCID[c.ICCID] = i
	}
	wrapped := map[string]string{}
	edited := func(emit func(*native.Record) error) error {
		for _, rec := range recs {
			if i := byICCID[rec.Get(native.FieldICCID)]; i < len(badSecrets) {
				s, err := mb.Wrap(secretOf(badSecrets[i].n, i))
				if err != nil {
					return err
				}
				rec.Set(badSecrets[i].field, s)
				wrapped[rec.Get(native.FieldICCID)] = s
			}
			if err := emit(rec); err != nil {
				return err
			}
		}
		return nil
	}
	res = w.process(r, "mfr", &processor.KeyResponseIntake{HLR: r.Partners["hlr"]}, w.send("MFR", "MNOB", native.KeyResponse, n, false, "tk-mb", edited))
	if res.Counts.Accepted != 1 || res.Counts.Rejected != len(badSecrets) {
		t.Errorf("key response counts %+v", res.Counts)
	}
	_, ack := w.readOutput(r, output(t, res.Outputs, "handover-ack"))
	got := map[string]*native.Record{}
	for _, rec := range ack {
		got[rec.Get(native.FieldICCID)] = rec
	}
	for i, bs := range badSecrets {
		c := cards[i]
		a := got[c.ICCID]
		if a == nil || a.Get(native.FieldStatus) != "rejected" || a.Get(native.FieldReason) != processor.ReasonInvalid || !strings.Contains(a.Get(native.FieldDetail), bs.field+": ") {
			t.Errorf("%s: acknowledged %v", bs.name, a)
			continue
		}
		noValue(t, bs.name+" detail", a.Get(native.FieldDetail), secretOf(bs.n, i), wrapped[c.ICCID])
		if st := cardState(t, r, c.ICCID); st != ledger.CardManual {
			t.Errorf("%s: card is %s", bs.name, st)
		}
		if got := count(t, r, `SELECT COUNT(*) FROM card_secrets WHERE iccid = ?`, c.ICCID); got != 0 {
			t.Errorf("%s: %d secrets kept", bs.name, got)
		}
	}
	_, prov := w.readOutput(r, output(t, res.Outputs, "provisioning"))
	if len(prov) != 1 || prov[0].Get(native.FieldICCID) != cards[len(badSecrets)].ICCID {
		t.Errorf("provisioning: %d records", len(prov))
	}
}
