package processor_test

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"testing"

	"resub/formats/native"
	"resub/processor"
	"resub/processor/ledger"
	"resub/samples/fleet"
)

// A handover mixing 3a, 3b and cancel records, with every rule a 3b
// record meets, alone and on repeats: the set-based intake leaves exactly
// the ledger, the counts, the acknowledgement, the key request and the
// provisioning file that the intake handling 3b records one by one
// leaves on the same input, and the answers listed here.
func TestHandoverIntake3bBySets(t *testing.T) {
	ctx := context.Background()
	const n = 13
	f, err := fleet.New(fleet.Options{N: n, Seed: "intake-3b"})
	if err != nil {
		t.Fatal(err)
	}
	c := f.Cards
	strangers, err := fleet.New(fleet.Options{N: 1, ICCIDBody: "8999907", Seed: "stranger-3b"})
	if err != nil {
		t.Fatal(err)
	}
	type run struct {
		dump                 string
		res                  *processor.Result
		ack, kreq, provision []string
		answers              []string
	}
	do := func(step func(*processor.Party) processor.FileStep) run {
		w := newWorld(t)
		b := w.party("MNOB", mustRanges(t, "999-99:0000000000-0000099999"), []processor.Range{{Name: "b-main", From: "999990000000001", To: "999990000099999"}})
		prof := profile3b(t, "usim-3b", true)
		b.Profiles[prof.Name] = prof
		w.partner(b, "m2m", "M2M", "m2m-operator", "", nil, false)
		w.partner(b, "mno-a", "MNOA", "operator", "tk-ab", mustRanges(t, "001-01"), false)
		w.partner(b, "hlr", "HLRB", "hlr", "tk-aucb", nil, true)
		w.partner(b, "mfr", "MFR", "manufacturer", "tk-mb", nil, false)
		cut := w.now.AddDate(0, 0, 1)
		res := w.process(b, "m2m", &processor.SwitchRequest{Donor: b.Partners["mno-a"]}, w.send("M2M", "MNOB", native.SwitchRequest, n, false, "", fleet.SwitchRequestRecords(c, "MNOA", cut)))
		if res.Counts.Accepted != n {
			t.Fatalf("switch request: %+v", res.Counts)
		}
		imsi := map[string]string{}
		for _, card := range c {
			bc, err := b.Ledger.Card(ctx, card.ICCID)
			if err != nil {
				t.Fatal(err)
			}
			imsi[card.ICCID] = bc.IMSI
		}
		for i, st := range map[int]string{2: ledger.CardActive, 11: "incoming"} {
			if err := b.Ledger.InTx(ctx, func(tx *ledger.Tx) error {
				return tx.Transition(ctx, c[i].ICCID, []string{"requested"}, st, "test: earlier", "", nil)
			}); err != nil {
				t.Fatal(err)
			}
		}
		tk := processor.NewTransport(w.tks["tk-ab"])
		wrap := func(v []byte) string {
			s, err := tk.Wrap(v)
			if err != nil {
				t.Fatal(err)
			}
			return s
		}
		rec3b := func(card *fleet.Card, edit func(handRec)) handRec {
			h := handRec{native.FieldKind: native.Kind3b, native.FieldICCID: card.ICCID, native.FieldIMSI: imsi[card.ICCID], native.FieldMSISDN: card.MSISDN,
				native.FieldProfile: prof.Name, native.FieldKeyIndex: "2", native.FieldKeyListLength: "3", native.FieldCounterRule: "continue"}
			if edit != nil {
				edit(h)
			}
			return h
		}
		rec3a := func(card *fleet.Card) handRec {
			ks := card.Keys(1)
			return handRec{native.FieldKind: native.Kind3a, native.FieldICCID: card.ICCID, native.FieldIMSI: imsi[card.ICCID], native.FieldMSISDN: card.MSISDN,
				native.FieldKi: wrap(card.Ki(1)), native.FieldOPc: wrap(card.OPc), native.FieldAlgorithm: "milenage",
				native.FieldKVN: strconv.Itoa(card.KVN), native.FieldOTAAlg: "aes", native.FieldKIc: wrap(ks.KIc), native.FieldKID: wrap(ks.KID), native.FieldKIK: wrap(ks.KIK),
				native.FieldCounter: "21", native.FieldProfile: w.prof.Name}
		}
		stranger := rec3b(strangers.Cards[0], func(h handRec) { h[native.FieldIMSI] = "999990000099980" })
		recs := []handRec{
			rec3b(c[0], nil),
			rec3a(c[1]),
			stranger,
			rec3b(c[2], nil),
			rec3b(c[3], func(h handRec) { h[native.FieldIMSI] = "999990000099990" }),
			rec3b(c[4], func(h handRec) { h[native.FieldProfile] = "nope" }),
			{native.FieldKind: native.KindCancel, native.FieldICCID: c[5].ICCID},
			rec3b(c[0], func(h handRec) { h[native.FieldIMSI] = "999990000099970" }),
			rec3b(c[6], func(h handRec) { h[native.FieldIMSI] = imsi[c[1].ICCID] }),
			rec3b(c[9], nil),
			{native.FieldKind: native.KindCancel, native.FieldICCID: c[9].ICCID},
			rec3b(c[10], func(h handRec) { h[native.FieldKeyIndex] = "3" }),
			rec3a(c[10]),
			rec3b(c[11], nil),
			// Malformed: the reader's rejection.
			rec3b(c[12], func(h handRec) { h[native.FieldCounterRule] = "sometimes" }),
			rec3b(c[7], nil),
		}
		w.now = w.now.Add(1e9 * 3600)
		res = w.process(b, "mno-a", step(b), w.send("MNOA", "MNOB", native.Handover, len(recs), false, "tk-ab", handRecords(recs)))
		r := run{dump: dumpKeys(t, b), res: res}
		for _, o := range res.Outputs {
			_, got := w.readOutput(b, o)
			switch o.Type {
			case native.HandoverAck.Name:
				r.ack = recordTexts(t, native.HandoverAck, got, nil)
				for _, a := range got {
					r.answers = append(r.answers, a.Get(native.FieldStatus)+" "+a.Get(native.FieldReason))
				}
			case native.KeyRequest.Name:
				r.kreq = recordTexts(t, native.KeyRequest, got, nil)
			case native.Provisioning.Name:
				r.provision = recordTexts(t, native.Provisioning, got, b.Partners["hlr"].Transport)
			}
		}
		return r
	}
	set := do(func(b *processor.Party) processor.FileStep {
		return &processor.HandoverIntake{HLR: b.Partners["hlr"], Manufacturer: b.Partners["mfr"]}
	})
	ref := do(func(b *processor.Party) processor.FileStep {
		return &processor.HandoverIntakePerRecord{HLR: b.Partners["hlr"], Manufacturer: b.Partners["mfr"]}
	})
	if set.dump != ref.dump {
		t.Errorf("ledgers differ:\nset-based:\n%s\none by one:\n%s", set.dump, ref.dump)
	}
	if set.res.Counts != ref.res.Counts {
		t.Errorf("counts %+v, one by one %+v", set.res.Counts, ref.res.Counts)
	}
	for _, x := range []struct {
		what     string
		set, ref []string
	}{{"handover-ack", set.ack, ref.ack}, {"key-request", set.kreq, ref.kreq}, {"provisioning", set.provision, ref.provision}} {
		if !slices.Equal(x.set, x.ref) {
			t.Errorf("%s differs:\n%v\n%v", x.what, x.set, x.ref)
		}
	}
	rej := "rejected "
	want := []string{native.StatusProvisioned + " ", rej + processor.ReasonUnknownICCID, rej + processor.ReasonDuplicate, rej + processor.ReasonInvalid, rej + processor.ReasonProvisioning,
		rej + processor.ReasonDuplicate, rej + processor.ReasonDuplicate, rej + processor.ReasonDuplicate, rej + processor.ReasonDuplicate,
		rej + processor.ReasonDuplicate, rej + processor.ReasonInvalid}
	if fmt.Sprint(set.answers) != fmt.Sprint(want) {
		t.Errorf("answers %q\nwant %q", set.answers, want)
	}
	// Requested: c[0], c[9], c[10] (index 3), c[7]; provisioned: c[1]; cancelled: c[5].
	if len(set.kreq) != 4 || len(set.provision) != 1 || set.res.Counts.Accepted != 6 {
		t.Errorf("%d key requests, %d provisioned, counts %+v", len(set.kreq), len(set.provision), set.res.Counts)
	}
}
