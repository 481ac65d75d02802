package processor_test

import (
	"context"
	"testing"

	"resub/formats/native"
	"resub/processor"
	"resub/processor/ledger"
	"resub/samples/fleet"
)

// TestHandoverOTAAlgorithm: cards imported from the SIM vendor's output
// file (which names no OTA cipher) get the importing profile's algorithm
// recorded with their key set (usim-aes, 16-octet keys: aes-128), and the
// handover carries it. A key set without one is never handed over: the
// card waits, confirmed. B refuses a handover key set without an
// algorithm as INVALID_RECORD.
func TestHandoverOTAAlgorithm(t *testing.T) {
	ctx := context.Background()
	s := startSwitchFrom(t, 3, nil, true)
	w, f, a, b := s.w, s.f, s.a, s.b
	if got := count(t, a, `SELECT COUNT(*) FROM key_sets WHERE kic_alg = 'aes-128' AND kid_alg = 'aes-128'`); got != 3 {
		t.Fatalf("%d of 3 vendor key sets recorded as aes-128", got)
	}
	if s.round(t) {
		t.Fatal("a retry was queued")
	}
	// One card's key set lost its algorithm (a ledger from before it was
	// recorded): it is not handed over.
	noAlg := f.Cards[2].ICCID
	if err := a.Ledger.InTx(ctx, func(tx *ledger.Tx) error {
		_, err := tx.Exec(ctx, `UPDATE key_sets SET kic_alg = '', kid_alg = '' WHERE iccid = ?`, noAlg)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	hres, err := a.RunSweep(ctx, "handover", &processor.Handover{Recipient: a.Partners["mno-b"]}, false)
	if err != nil {
		t.Fatal(err)
	}
	w.deliverAll(a, hres.Outputs)
	if hres.Counts.Records != 2 {
		t.Errorf("handover of %d cards, want 2", hres.Counts.Records)
	}
	if st := cardState(t, a, noAlg); st != ledger.CardConfirmed {
		t.Errorf("the card without algorithm is %s", st)
	}
	ho := output(t, hres.Outputs, "handover")
	_, recs := w.readOutput(a, ho)
	if len(recs) != 2 {
		t.Fatalf("%d handover records", len(recs))
	}
	for _, r := range recs {
		if r.Get(native.FieldOTAAlg) != "aes-128" || r.Get(native.FieldKIc) == "" {
			t.Errorf("card %s handed over with ota-alg %q", r.Get(native.FieldICCID), r.Get(native.FieldOTAAlg))
		}
	}
	s.deliverResults(t)

	// B: the same records, one with its ota-alg removed.
	recs[1].Set(native.FieldOTAAlg, "")
	res := w.process(b, "mno-a", &processor.HandoverIntake{HLR: b.Partners["hlr"]}, w.send("MNOA", "MNOB", native.Handover, 2, false, "tk-ab", func(emit func(*native.Record) error) error {
		for _, r := range recs {
			if err := emit(r); err != nil {
				return err
			}
		}
		return nil
	}))
	if res.Counts.Accepted != 1 || res.Counts.Rejected != 1 {
		t.Errorf("B's intake: %+v", res.Counts)
	}
	_, acks := w.readOutput(b, output(t, res.Outputs, "handover-ack"))
	for _, r := range acks {
		bad := r.Get(native.FieldICCID) == recs[1].Get(native.FieldICCID)
		if bad && (r.Get(native.FieldStatus) != "rejected" || r.Get(native.FieldReason) != processor.ReasonInvalid) {
			t.Errorf("B answered %s %s for the key set without algorithm", r.Get(native.FieldStatus), r.Get(native.FieldReason))
		}
		if !bad && r.Get(native.FieldStatus) != native.StatusProvisioned {
			t.Errorf("B answered %s %s (%s)", r.Get(native.FieldStatus), r.Get(native.FieldReason), r.Get(native.FieldDetail))
		}
	}
	if got := count(t, b, `SELECT COUNT(*) FROM key_sets WHERE kic_alg = 'aes-128'`); got != 1 {
		t.Errorf("B holds %d aes-128 key sets, want 1", got)
	}
}

// TestManufacturerImportOTAAlgorithm: a factory record without ota-alg
// takes the card profile's cipher when the manufacturer knows the profile
// and is refused (INVALID_RECORD) when it does not: no key set is stored
// without its algorithm.
func TestManufacturerImportOTAAlgorithm(t *testing.T) {
	x := setup3b(t, 2, true)
	w, m := x.world, x.m
	blank := func(recs func(func(*native.Record) error) error) func(func(*native.Record) error) error {
		return func(emit func(*native.Record) error) error {
			return recs(func(r *native.Record) error {
				r.Set(native.FieldOTAAlg, "")
				return emit(r)
			})
		}
	}
	// A card set of its own: the world's cards are imported already.
	f, err := fleet.New(fleet.Options{N: 2, ICCIDBody: "8999908", IMSIBase: "001010000300001", Seed: "no-alg", Profile: x.prof.OTA, ListLength: 3})
	if err != nil {
		t.Fatal(err)
	}
	factory := processor.NewTransport(w.tks["tk-factory"])
	delete(m.Profiles, x.prof.Name)
	res := w.process(m, "factory", &processor.ManufacturerImport{Holder: m.Partners["mno-a"]},
		w.send("FACTORY", "MFR", native.Inventory, 1, true, "tk-factory", blank(f.FactoryRecords(factory, x.prof.Name, f.Cards[:1], 1))))
	if res.Counts.Accepted != 0 || res.Counts.Rejected != 1 {
		t.Errorf("without a profile: %+v", res.Counts)
	}
	m.Profiles[x.prof.Name] = x.prof
	res = w.process(m, "factory", &processor.ManufacturerImport{Holder: m.Partners["mno-a"]},
		w.send("FACTORY", "MFR", native.Inventory, 1, true, "tk-factory", blank(f.FactoryRecords(factory, x.prof.Name, f.Cards[1:], 1))))
	if res.Counts.Accepted != 1 {
		t.Errorf("with the profile: %+v", res.Counts)
	}
	if n := count(t, m, `SELECT COUNT(*) FROM key_sets WHERE kic_alg = ''`); n != 0 {
		t.Errorf("%d key sets without algorithm at the manufacturer", n)
	}
	if n := count(t, m, `SELECT COUNT(*) FROM key_sets WHERE iccid = ? AND kic_alg <> ''`, f.Cards[1].ICCID); n != 1 {
		t.Errorf("the card's key set: %d with an algorithm", n)
	}
}
