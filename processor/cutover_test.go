package processor_test

import (
	"context"
	"testing"
	"time"

	"resub/formats/native"
	"resub/processor"
	"resub/processor/ledger"
	"resub/samples/fleet"
)

// TestCutoverNotBefore: an imsi-list with a cut-over date a week ahead
// queues the cards' messages at once, but every message of the ota-batch
// carries a not-before at the opening of the profile's window on that date
// (the profile's zone, here Europe/Berlin), the header's #window is the
// window in UTC, and the PoR deadline runs from the not-before, not from
// the delivery: the deadline sweep leaves the messages alone until then.
func TestCutoverNotBefore(t *testing.T) {
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Skip("no zoneinfo")
	}
	ctx := context.Background()
	const n = 2
	w, f, a, b := setup3a(t, n)
	w.prof.Zone = berlin // window 22:00-05:00 Berlin
	cut := w.now.AddDate(0, 0, 7)
	w.process(a, "m2m", processor.Authorisation{}, w.send("M2M", "MNOA", native.SwitchAuthorisation, n, false, "", fleet.AuthorisationRecords(f.Cards, "MNOB", cut)))
	res := w.process(b, "m2m", &processor.SwitchRequest{Donor: b.Partners["mno-a"]}, w.send("M2M", "MNOB", native.SwitchRequest, n, false, "", fleet.SwitchRequestRecords(f.Cards, "MNOA", cut)))
	res = w.process(a, "mno-b", &processor.IMSIList{SMSC: a.Partners["smsc"]}, output(t, res.Outputs, "imsi-list").Path)
	if res.Counts.Accepted != n {
		t.Fatalf("imsi-list at A: %+v", res.Counts)
	}
	batch := output(t, res.Outputs, "ota-batch")
	h, recs := w.readOutput(a, batch)
	y, m, d := cut.Date()
	want := time.Date(y, m, d, 22, 0, 0, 0, berlin).UTC().Format(time.RFC3339) // 21:00Z in December
	for _, r := range recs {
		if got := r.Get(native.FieldNotBefore); got != want {
			t.Errorf("message %s: not-before %q, want %q", r.Get(native.FieldMessageID), got, want)
		}
	}
	if h.Window != "21:00-04:00" {
		t.Errorf("#window %q, want the Berlin window in UTC (21:00-04:00)", h.Window)
	}
	nb, _ := time.Parse(time.RFC3339, want)
	for _, c := range f.Cards {
		msgs := messages(t, a, c.ICCID)
		if len(msgs) != 1 || msgs[0].State != ledger.MsgSent || !msgs[0].Deadline.Equal(nb.Add(w.prof.Validity+a.OTA.PoRMargin)) {
			t.Errorf("card %s: messages %+v, want a deadline from the not-before %s", c.ICCID, msgs[0], want)
		}
	}
	// A day later, the messages (not yet submitted) are not overdue.
	w.now = w.now.Add(w.prof.Validity + a.OTA.PoRMargin + time.Minute)
	if sw, err := a.RunSweep(ctx, "ota-deadline", &processor.OTADeadline{SMSC: a.Partners["smsc"]}, false); err != nil || sw.Counts.Records != 0 {
		t.Errorf("deadline sweep before the cut-over: %+v %v", sw, err)
	}
}
