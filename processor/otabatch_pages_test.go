package processor_test

import (
	"bytes"
	"context"
	"strconv"
	"testing"

	"resub/formats/native"
	"resub/formats/ota"
	"resub/processor"
	"resub/samples/fleet"
)

// An OTA batch of several pages, built on every core with one rekeyed
// encoder a worker: each record, in message order, is the message its
// card opens with its own keys (taken from the fleet, not the ledger), on
// the counter reserved for it, carrying the update script for its new
// IMSI, cut into the segments the one-message path gives.
func TestOTABatchPagesEveryCardsOwnMessage(t *testing.T) {
	const n = 2500 // two full pages and a part, more messages than cores
	w, f, a, b := setup3a(t, n)
	cut := w.now.AddDate(0, 0, 1)
	w.process(a, "m2m", processor.Authorisation{}, w.send("M2M", "MNOA", native.SwitchAuthorisation, n, false, "", fleet.AuthorisationRecords(f.Cards, "MNOB", cut)))
	res := w.process(b, "m2m", &processor.SwitchRequest{Donor: b.Partners["mno-a"]}, w.send("M2M", "MNOB", native.SwitchRequest, n, false, "", fleet.SwitchRequestRecords(f.Cards, "MNOA", cut)))
	res = w.process(a, "mno-b", &processor.IMSIList{SMSC: a.Partners["smsc"]}, output(t, res.Outputs, "imsi-list").Path)
	if res.Counts.Messages != n {
		t.Fatalf("imsi-list at A: %+v", res.Counts)
	}
	_, recs := w.readOutput(a, output(t, res.Outputs, "ota-batch"))
	if len(recs) != n {
		t.Fatalf("ota-batch has %d messages, want %d", len(recs), n)
	}
	byICCID := map[string]*fleet.Card{}
	for _, c := range f.Cards {
		byICCID[c.ICCID] = c
	}
	prof := w.prof.OTA
	seen := map[string]bool{}
	for i, r := range recs {
		iccid := r.Get(native.FieldICCID)
		c := byICCID[iccid]
		if c == nil || seen[iccid] {
			t.Fatalf("record %d: card %q unknown or twice", i, iccid)
		}
		seen[iccid] = true
		msgs := messages(t, a, iccid)
		if len(msgs) != 1 {
			t.Fatalf("card %s has %d messages", iccid, len(msgs))
		}
		m := msgs[0]
		card, err := a.Ledger.Card(context.Background(), iccid)
		if err != nil || card.NewIMSI == "" {
			t.Fatalf("card %s: %v", iccid, err)
		}
		newIMSI := card.NewIMSI
		if r.Get(native.FieldMessageID) != "MNOA-"+strconv.FormatInt(m.ID, 10) {
			t.Errorf("record %d: message id %s, want the message of %s (%d)", i, r.Get(native.FieldMessageID), iccid, m.ID)
		}
		segs, err := r.Segments(native.FieldSegments)
		if err != nil {
			t.Fatal(err)
		}
		ks := c.Keys(1)
		p := prof.Params(prof.TAR)
		p.KIc = ota.KIc(byte(p.KIc)&0x0f | byte(ks.KVN)<<4)
		p.KID = ota.KID(byte(p.KID)&0x0f | byte(ks.KVN)<<4)
		apdus, _, err := prof.UpdateScript(ota.Change{NewIMSI: newIMSI, NewMNCLen: 2, OldMNCLen: 2})
		if err != nil {
			t.Fatal(err)
		}
		want, err := ota.BuildMessage(p, ota.Keys{KIc: ks.KIc, KID: ks.KID}, prof.Format, uint64(m.Counter), apdus, byte(m.ConcatRef))
		if err != nil {
			t.Fatal(err)
		}
		if len(segs) != len(want.Segments) {
			t.Fatalf("record %d (%s): %d segments, want %d", i, iccid, len(segs), len(want.Segments))
		}
		for k := range segs {
			if !bytes.Equal(segs[k], want.Segments[k]) {
				t.Fatalf("record %d (%s) segment %d:\n got %x\nwant %x", i, iccid, k, segs[k], want.Segments[k])
			}
		}
	}
}
