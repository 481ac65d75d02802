package processor_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"strconv"
	"strings"
	"testing"

	"resub/crypto/keywrap"
	"resub/formats/native"
	"resub/formats/ota"
	"resub/processor"
	"resub/processor/ledger"
	"resub/samples/fleet"
)

// profile3b is the 3b card profile of the tests: the 3a profile plus the
// key-index command (absolute index in the last octet) appended to the
// IMSI update, taking effect at the next reset or at once.
func profile3b(t testing.TB, name string, atReset bool) *processor.Profile {
	base := testProfile(t)
	o := *base.OTA
	o.Name = name
	timing := ota.KeyIndexImmediately
	if atReset {
		timing = ota.KeyIndexAtReset
	}
	o.KeyIndex = &ota.KeyIndexCommand{TAR: ota.TAR{0xb0, 0xff, 0x02}, Template: ota.APDU{0x80, 0xe8, 0x00, 0x00, 0x01, 0x00}, IndexOffset: 5, WithUpdate: true, Timing: timing}
	if err := o.Validate(); err != nil {
		t.Fatal(err)
	}
	p := *base
	p.Name, p.OTA, p.ListLength, p.KeyIndexAtReset = name, &o, 3, atReset
	return &p
}

// world3b is A, B, C and the manufacturer with a 3b fleet whose pairs the
// manufacturer holds and whose pair 1 A imported.
type world3b struct {
	*world
	f          *fleet.Fleet
	a, b, c, m *processor.Party
	prof       *processor.Profile
}

const listLen = 3

func setup3b(t *testing.T, n int, atReset bool) *world3b {
	w := newWorld(t)
	key := make([]byte, 16)
	rand.Read(key)
	tk, err := keywrap.NewTransportKey("tk-factory", key, keywrap.AESKWP, keywrap.TransportKeyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	w.tks["tk-factory"] = tk
	prof := profile3b(t, "usim-3b", atReset)

	ownA := mustRanges(t, "001-01")
	ownB := mustRanges(t, "999-99:0000000000-0000099999")
	ownC := mustRanges(t, "999-98:0000000000-0000099999")
	a := w.party("MNOA", ownA, nil)
	b := w.party("MNOB", ownB, []processor.Range{{Name: "b-main", From: "999990000000001", To: "999990000099999"}})
	c := w.party("MNOC", ownC, []processor.Range{{Name: "c-main", From: "999980000000001", To: "999980000099999"}})
	m := w.party("MFR", nil, nil)
	for _, p := range []*processor.Party{a, b, c} {
		p.Profiles[prof.Name] = prof
		w.partner(p, "m2m", "M2M", "m2m-operator", "", nil, false)
		w.partner(p, "smsc", "SMSC", "smsc", "", nil, true)
	}
	w.partner(a, "vendor", "VENDOR", "manufacturer", "tk-va", nil, false)
	w.partner(a, "bss", "BSS", "hlr", "", nil, true)
	w.partner(a, "mno-b", "MNOB", "operator", "tk-ab", ownB, false)
	w.partner(a, "mfr", "MFR", "manufacturer", "tk-ma", nil, false)
	w.partner(b, "mno-a", "MNOA", "operator", "tk-ab", ownA, false)
	w.partner(b, "mno-c", "MNOC", "operator", "tk-bc", ownC, false)
	w.partner(b, "hlr", "HLRB", "hlr", "tk-aucb", nil, true)
	w.partner(b, "mfr", "MFR", "manufacturer", "tk-mb", nil, false)
	w.partner(c, "mno-b", "MNOB", "operator", "tk-bc", ownB, false)
	w.partner(c, "hlr", "HLRC", "hlr", "tk-aucc", nil, true)
	w.partner(c, "mfr", "MFR", "manufacturer", "tk-mc", nil, false)
	w.partner(m, "factory", "FACTORY", "internal", "tk-factory", nil, true)
	w.partner(m, "mno-a", "MNOA", "operator", "tk-ma", nil, false)
	w.partner(m, "mno-b", "MNOB", "operator", "tk-mb", nil, false)
	w.partner(m, "mno-c", "MNOC", "operator", "tk-mc", nil, false)

	f, err := fleet.New(fleet.Options{N: n, ICCIDBody: "8999902", IMSIBase: "001010000100001", MSISDNBase: "999100000501", Seed: t.Name(),
		Profile: prof.OTA, ListLength: listLen, KeyIndexAtReset: atReset})
	if err != nil {
		t.Fatal(err)
	}
	if err := f.BuildSIMs(); err != nil {
		t.Fatal(err)
	}
	for _, card := range f.Cards {
		w.smsc.Register(card.MSISDN, card.SIM)
	}

	// The manufacturer's own data: every pair, one file per index.
	factory := processor.NewTransport(tk)
	for i := 1; i <= listLen; i++ {
		res := w.process(m, "factory", &processor.ManufacturerImport{Holder: m.Partners["mno-a"]},
			w.send("FACTORY", "MFR", native.Inventory, n, true, "tk-factory", f.FactoryRecords(factory, prof.Name, f.Cards, i)))
		if res.Counts.Accepted != n {
			t.Fatalf("manufacturer import of index %d: %+v", i, res.Counts)
		}
	}
	// A: pair 1 and the list length only.
	vendor := processor.NewTransport(w.tks["tk-va"])
	res := w.process(a, "vendor", &processor.InventoryImport{}, w.send("VENDOR", "MNOA", native.Inventory, n, false, "tk-va", f.InventoryRecords(vendor, prof.Name, f.Cards)))
	if res.Counts.Accepted != n {
		t.Fatalf("A's inventory: %+v", res.Counts)
	}
	w.process(a, "bss", processor.MSISDNImport{}, w.send("BSS", "MNOA", native.MSISDNMap, n, true, "", fleet.MSISDNRecords(f.Cards)))
	return &world3b{world: w, f: f, a: a, b: b, c: c, m: m, prof: prof}
}

// request runs the M2M operator's authorisation at d and switch request
// at r, r's imsi-list and d's answer to it, which r takes; it returns d's
// result.
func (x *world3b) request(t *testing.T, d, r *processor.Party, cards []*fleet.Card) *processor.Result {
	w, n := x.world, len(cards)
	cut := w.now.AddDate(0, 0, 1)
	dr, rd := d.PartnerByCode(r.Name), r.PartnerByCode(d.Name)
	w.process(d, "m2m", processor.Authorisation{}, w.send("M2M", d.Name, native.SwitchAuthorisation, n, false, "", fleet.AuthorisationRecords(cards, r.Name, cut)))
	res := w.process(r, "m2m", &processor.SwitchRequest{Donor: rd}, w.send("M2M", r.Name, native.SwitchRequest, n, false, "", fleet.SwitchRequestRecords(cards, d.Name, cut)))
	if res.Counts.Accepted != n {
		t.Fatalf("%s: switch request: %+v", r.Name, res.Counts)
	}
	res = w.process(d, dr.Name, &processor.IMSIList{SMSC: d.Partners["smsc"]}, output(t, res.Outputs, "imsi-list").Path)
	w.process(r, rd.Name, processor.IMSIResultIntake{}, output(t, res.Outputs, "imsi-result").Path)
	return res
}

// hop moves cards from donor d to recipient r with every 3b step, checking
// the files on the way.
func (x *world3b) hop(t *testing.T, d, r *processor.Party, cards []*fleet.Card) {
	ctx := context.Background()
	w, n := x.world, len(cards)
	dr, rd := d.PartnerByCode(r.Name), r.PartnerByCode(d.Name)
	mfrD, mfrR := x.m.PartnerByCode(d.Name), x.m.PartnerByCode(r.Name)
	res := x.request(t, d, r, cards)
	if res.Counts.Accepted != n || res.Counts.Messages != n {
		t.Fatalf("%s: imsi-list: %+v", d.Name, res.Counts)
	}
	from := cards[0].SIM
	cur, _ := from.KeyIndex()
	next := cur + 1

	// The update carries the key-index command with the absolute index.
	res = w.process(d, "smsc", &processor.OTAReport{}, w.runSMSCTo(output(t, res.Outputs, "ota-batch"), d.Name))
	if res.Counts.Accepted != n || res.Counts.Messages != 0 {
		t.Fatalf("%s: report: %+v", d.Name, res.Counts)
	}
	w.process(r, rd.Name, processor.IMSIResultIntake{}, output(t, res.Outputs, "imsi-result").Path)
	for _, c := range cards {
		if st := cardState(t, d, c.ICCID); st != ledger.CardConfirmed {
			t.Fatalf("%s: card %s is %s", d.Name, c.ICCID, st)
		}
		got, pending := c.SIM.KeyIndex()
		if x.prof.KeyIndexAtReset && (got != cur || pending != next) {
			t.Errorf("card %s after the update: index %d pending %d, want %d pending %d", c.ICCID, got, pending, cur, next)
		}
	}

	// Donor: key-release to the manufacturer, handover without secrets.
	hres, err := d.RunSweep(ctx, "handover", &processor.Handover{Recipient: dr, Manufacturer: d.Partners["mfr"]}, false)
	if err != nil {
		t.Fatal(err)
	}
	w.deliverAll(d, hres.Outputs)
	if hres.Counts.Records != n {
		t.Fatalf("%s: handover: %+v", d.Name, hres.Counts)
	}
	release := output(t, hres.Outputs, "key-release")
	_, recs := w.readOutput(d, release)
	for _, rec := range recs {
		if rec.Get(native.FieldKeyIndex) != strconv.Itoa(next) || rec.Get(native.FieldRecipient) != r.Name {
			t.Errorf("key-release: index %s to %s", rec.Get(native.FieldKeyIndex), rec.Get(native.FieldRecipient))
		}
	}
	handover := output(t, hres.Outputs, "handover")
	_, recs = w.readOutput(d, handover)
	if len(recs) != n {
		t.Errorf("handover: %d records", len(recs))
	}
	for _, rec := range recs {
		for _, f := range []string{native.FieldKi, native.FieldOPc, native.FieldKIc, native.FieldKID, native.FieldKIK, native.FieldCounter} {
			if v := rec.Get(f); v != "" {
				t.Errorf("3b handover carries %s", f)
			}
		}
		if rec.Get(native.FieldKind) != native.Kind3b || rec.Get(native.FieldKeyIndex) != strconv.Itoa(next) || rec.Get(native.FieldKeyListLength) != strconv.Itoa(listLen) ||
			rec.Get(native.FieldProfile) != x.prof.Name || rec.Get(native.FieldCounterRule) == "" {
			t.Errorf("handover record: kind %s index %s of %s profile %s counter rule %q", rec.Get(native.FieldKind), rec.Get(native.FieldKeyIndex),
				rec.Get(native.FieldKeyListLength), rec.Get(native.FieldProfile), rec.Get(native.FieldCounterRule))
		}
	}

	// Manufacturer takes the release; recipient asks for the keys.
	res = w.process(x.m, mfrD.Name, processor.KeyReleaseIntake{}, release.Path)
	if res.Counts.Accepted != n {
		t.Fatalf("key-release: %+v", res.Counts)
	}
	res = w.process(r, rd.Name, &processor.HandoverIntake{HLR: r.Partners["hlr"], Manufacturer: r.Partners["mfr"]}, handover.Path)
	if res.Counts.Accepted != n {
		t.Fatalf("%s: handover intake: %+v", r.Name, res.Counts)
	}
	for _, o := range res.Outputs {
		if o.Type == native.Provisioning.Name {
			t.Errorf("%s provisioned before it had the keys", r.Name)
		}
	}
	// The (empty) acknowledgement keeps the sequence.
	if ack := output(t, res.Outputs, "handover-ack"); ack != nil {
		if _, recs := w.readOutput(r, ack); len(recs) != 0 {
			t.Errorf("first handover-ack has %d records", len(recs))
		}
		w.process(d, dr.Name, &processor.HandoverAck{SMSC: d.Partners["smsc"]}, ack.Path)
	}
	kreq := output(t, res.Outputs, "key-request")
	_, recs = w.readOutput(r, kreq)
	for _, rec := range recs {
		if rec.Get(native.FieldKeyIndex) != strconv.Itoa(next) || rec.Get(native.FieldRequestID) == "" {
			t.Errorf("key-request: %s index %s", rec.Get(native.FieldRequestID), rec.Get(native.FieldKeyIndex))
		}
	}
	res = w.process(x.m, mfrR.Name, processor.KeyRequestIntake{}, kreq.Path)
	if res.Counts.Accepted != n {
		t.Fatalf("key-request: %+v", res.Counts)
	}
	kresp := output(t, res.Outputs, "key-response")
	_, recs = w.readOutput(x.m, kresp)
	byICCID := fleetIndex(x.f)
	for _, rec := range recs {
		c := byICCID[rec.Get(native.FieldICCID)]
		if rec.Get(native.FieldStatus) != native.StatusReleased {
			t.Fatalf("key-response: %s %s", rec.Get(native.FieldStatus), rec.Get(native.FieldReason))
		}
		ki, err := mfrR.Transport.Unwrap(rec.Get(native.FieldKi))
		if err != nil || !bytes.Equal(ki, c.Ki(next)) {
			t.Errorf("key-response for %s: not the Ki of index %d (%v)", c.ICCID, next, err)
		}
	}

	// Recipient: provisioning and the acknowledgement.
	res = w.process(r, "mfr", &processor.KeyResponseIntake{HLR: r.Partners["hlr"]}, kresp.Path)
	if res.Counts.Accepted != n {
		t.Fatalf("%s: key response: %+v", r.Name, res.Counts)
	}
	_, recs = w.readOutput(r, output(t, res.Outputs, "provisioning"))
	hlr := r.Partners["hlr"].Transport
	for _, rec := range recs {
		c := byICCID[rec.Get(native.FieldICCID)]
		ki, err := hlr.Unwrap(rec.Get(native.FieldKi))
		if err != nil || !bytes.Equal(ki, c.Ki(next)) {
			t.Errorf("provisioning of %s: not the Ki of index %d (%v)", c.ICCID, next, err)
		}
		if rec.Get(native.FieldMSISDN) != c.MSISDN {
			t.Errorf("provisioning of %s: MSISDN %s", c.ICCID, rec.Get(native.FieldMSISDN))
		}
	}
	ack := output(t, res.Outputs, "handover-ack")
	if _, recs := w.readOutput(r, ack); len(recs) != n {
		t.Errorf("handover-ack: %d records", len(recs))
	}

	// Donor: reset under the old key, then release.
	res = w.process(d, dr.Name, &processor.HandoverAck{SMSC: d.Partners["smsc"]}, ack.Path)
	if x.prof.KeyIndexAtReset {
		if res.Counts.Messages != n {
			t.Fatalf("%s: ack: %+v", d.Name, res.Counts)
		}
		w.process(d, "smsc", &processor.OTAReport{}, w.runSMSCTo(output(t, res.Outputs, "ota-batch"), d.Name))
	}
	for _, c := range cards {
		if st := cardState(t, d, c.ICCID); st != ledger.CardReleased {
			t.Errorf("%s: card %s is %s", d.Name, c.ICCID, st)
		}
		if got, pending := c.SIM.KeyIndex(); got != next || pending != 0 {
			t.Errorf("card %s at index %d (pending %d), want %d", c.ICCID, got, pending, next)
		}
		if !bytes.Equal(c.SIM.Ki(), c.Ki(next)) {
			t.Errorf("card %s does not use the Ki of index %d", c.ICCID, next)
		}
		rc, err := r.Ledger.Card(ctx, c.ICCID)
		if err != nil || rc.State != ledger.CardActive || rc.KeyIndex != next || rc.ListLength != listLen || rc.IMSI != c.SIM.IMSI() || rc.MSISDN != c.MSISDN {
			t.Errorf("%s: card %+v %v (SIM holds %s)", r.Name, rc, err, c.SIM.IMSI())
		}
		if got := imsiState(t, r, rc.IMSI); got != ledger.IMSIConfirmed {
			t.Errorf("%s: IMSI %s is %s", r.Name, rc.IMSI, got)
		}
		// The donor's messages: the update (with the key-index command)
		// and the reset, both under its own index, counters in order.
		msgs := messages(t, d, c.ICCID)
		var kinds []string
		for i, m := range msgs {
			kinds = append(kinds, m.Kind)
			if m.KeyIndex != cur || m.Counter != int64(i+1) || m.State != ledger.MsgConfirmed {
				t.Errorf("%s: message %d of %s: index %d counter %d %s", d.Name, i, c.ICCID, m.KeyIndex, m.Counter, m.State)
			}
		}
		want := "update reset"
		if !x.prof.KeyIndexAtReset {
			// The card answers only to the next pair once the update
			// ran: there is no reset to send under the old one.
			want = "update"
		}
		if strings.Join(kinds, " ") != want {
			t.Errorf("%s: messages of %s: %v, want %s", d.Name, c.ICCID, kinds, want)
		}
		// The recipient holds the pair of its index only.
		if got := count(t, r, `SELECT COUNT(*) FROM card_secrets WHERE iccid = ? AND key_index <> ?`, c.ICCID, next); got != 0 {
			t.Errorf("%s holds %d secrets of %s at another index than %d", r.Name, got, c.ICCID, next)
		}
		if got := count(t, r, `SELECT COUNT(*) FROM card_secrets WHERE iccid = ? AND key_index = ?`, c.ICCID, next); got == 0 {
			t.Errorf("%s holds no secret of %s at index %d", r.Name, c.ICCID, next)
		}
		if got := counter(t, r, c.ICCID, next); got != 0 {
			t.Errorf("%s: counter of index %d starts at %d", r.Name, next, got)
		}
	}
	var holder string
	var idx int
	if err := x.m.Ledger.QueryRow(ctx, `SELECT holder, holder_index FROM mf_cards WHERE iccid = ?`, cards[0].ICCID).Scan(&holder, &idx); err != nil || holder != r.Name || idx != next {
		t.Errorf("manufacturer: holder %s index %d (%v)", holder, idx, err)
	}
}

func fleetIndex(f *fleet.Fleet) map[string]*fleet.Card { return f.ByICCID() }

// TestFlow3b runs 3b A -> B -> C through the manufacturer, then C's
// attempt to move the cards on, refused LIST_EXHAUSTED before any message.
func TestFlow3b(t *testing.T) {
	ctx := context.Background()
	const n = 3
	x := setup3b(t, n, true)
	w, f, a, b, c, m := x.world, x.f, x.a, x.b, x.c, x.m

	x.hop(t, a, b, f.Cards)
	x.hop(t, b, c, f.Cards)

	// C holds index 3 of 3: the list is exhausted.
	res := x.request(t, c, b, f.Cards)
	if res.Counts.Rejected != n || res.Counts.Messages != 0 {
		t.Fatalf("exhausted: %+v", res.Counts)
	}
	for _, o := range res.Outputs {
		if o.Type == native.OTABatch.Name {
			t.Errorf("an ota-batch for exhausted cards: %s", o.Name)
		}
	}
	_, recs := w.readOutput(c, output(t, res.Outputs, "imsi-result"))
	for _, r := range recs {
		if r.Get(native.FieldStatus) != native.StatusRejected || !strings.EqualFold(r.Get(native.FieldReason), processor.ReasonListExhausted) {
			t.Errorf("%s: %s %s", r.Get(native.FieldICCID), r.Get(native.FieldStatus), r.Get(native.FieldReason))
		}
	}
	if got := count(t, c, `SELECT COUNT(*) FROM ota_messages`); got != 0 {
		t.Errorf("C has %d OTA messages", got)
	}

	for _, card := range f.Cards {
		if got := counter(t, c, card.ICCID, listLen); got != 0 {
			t.Errorf("C reserved counter %d of an exhausted card", got)
		}
		if st := cardState(t, c, card.ICCID); st != ledger.CardActive {
			t.Errorf("C: card %s is %s", card.ICCID, st)
		}
		bc, _ := b.Ledger.Card(ctx, card.ICCID)
		if bc.State != "rejected" || imsiState(t, b, bc.IMSI) != ledger.IMSIRetired {
			t.Errorf("B: card %s is %s, its new IMSI %s", card.ICCID, bc.State, imsiState(t, b, bc.IMSI))
		}
		if cur, _ := card.SIM.KeyIndex(); cur != listLen || card.SIM.Resets() != 2 {
			t.Errorf("card %s at index %d after %d resets", card.ICCID, cur, card.SIM.Resets())
		}
		// A never held anything beyond pair 1, and its messages used it.
		if got := count(t, a, `SELECT COUNT(*) FROM card_secrets WHERE iccid = ? AND key_index > 1`, card.ICCID); got != 0 {
			t.Errorf("A holds %d secrets of %s beyond index 1", got, card.ICCID)
		}
		if got := count(t, a, `SELECT COUNT(*) FROM card_secrets WHERE iccid = ? AND key_index = 1`, card.ICCID); got == 0 {
			t.Errorf("A holds no pair 1 of %s", card.ICCID)
		}
	}
	if got := count(t, a, `SELECT COUNT(*) FROM key_sets WHERE key_index <> 1`); got != 0 {
		t.Errorf("A has %d key sets beyond index 1", got)
	}
	for _, p := range []*processor.Party{a, b, c} {
		noCounterReuse(t, p)
	}
	// The manufacturer's record of who released what to whom.
	if got := count(t, m, `SELECT COUNT(*) FROM mf_releases WHERE key_index = 2 AND released_by = 'MNOA' AND recipient = 'MNOB'`); got != n {
		t.Errorf("releases of index 2: %d", got)
	}
	if got := count(t, m, `SELECT COUNT(*) FROM mf_releases WHERE key_index = 3 AND released_by = 'MNOB' AND recipient = 'MNOC'`); got != n {
		t.Errorf("releases of index 3: %d", got)
	}
	if got := count(t, m, `SELECT COUNT(*) FROM mf_requests WHERE outcome = 'released'`); got != 2*n {
		t.Errorf("released requests: %d", got)
	}
}

// TestFlow3bImmediate: a profile whose key index takes effect at once:
// the update's PoR still proves the change, and the donor releases the
// card after the recipient's acknowledgement without a reset.
func TestFlow3bImmediate(t *testing.T) {
	x := setup3b(t, 2, false)
	x.hop(t, x.a, x.b, x.f.Cards)
	x.hop(t, x.b, x.c, x.f.Cards)
	for _, c := range x.f.Cards {
		if c.SIM.Resets() != 0 {
			t.Errorf("card %s reset %d times", c.ICCID, c.SIM.Resets())
		}
	}
}
