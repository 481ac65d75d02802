package processor_test

import (
	"testing"

	"resub/formats/native"
	"resub/processor"
	"resub/samples/fleet"
)

// With the reset-with-update policy every accepted card gets two
// messages in the same batch: the update on the next counter value, then
// the reset on the one after, card after card in the list's order.
func TestIMSIListResetWithUpdate(t *testing.T) {
	const n = 4
	w, f, a, b := setup3a(t, n)
	a.Partners["mno-b"].Policy.ResetWithUpdate = true
	cut := w.now.AddDate(0, 0, 1)
	w.process(a, "m2m", processor.Authorisation{}, w.send("M2M", "MNOA", native.SwitchAuthorisation, n, false, "", fleet.AuthorisationRecords(f.Cards, "MNOB", cut)))
	res := w.process(b, "m2m", &processor.SwitchRequest{Donor: b.Partners["mno-a"]}, w.send("M2M", "MNOB", native.SwitchRequest, n, false, "", fleet.SwitchRequestRecords(f.Cards, "MNOA", cut)))
	before := map[string]int64{}
	for _, c := range f.Cards {
		before[c.ICCID] = counter(t, a, c.ICCID, 0)
	}
	res = w.process(a, "mno-b", &processor.IMSIList{SMSC: a.Partners["smsc"]}, output(t, res.Outputs, "imsi-list").Path)
	if res.Counts.Accepted != n || res.Counts.Messages != 2*n {
		t.Fatalf("imsi-list at A: %+v", res.Counts)
	}
	_, recs := w.readOutput(a, output(t, res.Outputs, "ota-batch"))
	if len(recs) != 2*n {
		t.Fatalf("ota-batch has %d messages, want %d", len(recs), 2*n)
	}
	prof := w.prof.OTA
	for i, c := range f.Cards {
		if got := recs[2*i].Get(native.FieldICCID) + recs[2*i+1].Get(native.FieldICCID); got != c.ICCID+c.ICCID {
			t.Errorf("batch messages %d and %d are for %s, want %s twice", 2*i, 2*i+1, got, c.ICCID)
		}
		msgs := messages(t, a, c.ICCID)
		if len(msgs) != 2 {
			t.Fatalf("card %d has %d messages", i, len(msgs))
		}
		up, rs := msgs[0], msgs[1]
		if up.Kind != "update" || rs.Kind != "reset" {
			t.Errorf("card %d: messages %s, %s", i, up.Kind, rs.Kind)
		}
		if up.Counter != before[c.ICCID]+1 || rs.Counter != before[c.ICCID]+2 || counter(t, a, c.ICCID, 0) != before[c.ICCID]+2 {
			t.Errorf("card %d: counters %d, %d from %d", i, up.Counter, rs.Counter, before[c.ICCID])
		}
		if up.TAR != prof.TAR.String() || rs.TAR != prof.ResetTAR.String() {
			t.Errorf("card %d: TARs %s, %s", i, up.TAR, rs.TAR)
		}
		if up.ConcatRef != int(up.Counter%255)+1 || up.MSISDN != c.MSISDN {
			t.Errorf("card %d: concatenation reference %d, MSISDN %s", i, up.ConcatRef, up.MSISDN)
		}
	}
	noCounterReuse(t, a)
}
