package processor_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"resub/crypto/pgp"
	"resub/formats/native"
	"resub/processor"
	"resub/processor/ledger"
	"resub/samples/fleet"
)

// listRec is one record of a hand-written imsi-list.
type listRec struct {
	iccid, imsi, date string
}

func listRecords(recs []listRec) func(func(*native.Record) error) error {
	return func(emit func(*native.Record) error) error {
		r := native.NewRecord(native.IMSIList)
		for _, l := range recs {
			r.Set(native.FieldICCID, l.iccid)
			r.Set(native.FieldIMSI, l.imsi)
			r.Set(native.FieldCutoverDate, l.date)
			if err := emit(r); err != nil {
				return err
			}
		}
		return nil
	}
}

// authRecords emits a switch authorisation with one recipient and date
// per card.
func authRecords(cards []*fleet.Card, recipient string, date time.Time) func(func(*native.Record) error) error {
	return fleet.AuthorisationRecords(cards, recipient, date)
}

// TestIMSIListRejections sends A one imsi-list from B with a record for
// every acceptance rule of DESIGN.md and checks the answer of each record
// in the imsi-result B reads, that only accepted cards get an OTA message
// (a rejected card's counter is not reserved) and that rejected cards keep
// their state.
func TestIMSIListRejections(t *testing.T) {
	ctx := context.Background()
	const n = 13
	w, f, a, _ := setup3a(t, n)
	c := f.Cards
	day := func(d int) time.Time { return w.now.AddDate(0, 0, d) }
	date := func(d int) string { return day(d).Format("2006-01-02") }

	// A second customer of A, who does not own the cards.
	kx, err := pgp.GenerateKey("M2MX", "m2mx@test.invalid", pgp.Curve25519, pgp.GenerateOptions{Now: func() time.Time { return w.now.Add(-time.Hour) }})
	if err != nil {
		t.Fatal(err)
	}
	w.keys["M2MX"] = kx
	w.partner(a, "m2mx", "M2MX", "m2m-operator", "", nil, false)

	// The cards' stories before the list.
	authorised := []*fleet.Card{c[0], c[1], c[2], c[7], c[8], c[10], c[11], c[12]}
	w.process(a, "m2m", processor.Authorisation{}, w.send("M2M", "MNOA", native.SwitchAuthorisation, len(authorised), false, "", authRecords(authorised, "MNOB", day(1))))
	// c[4]: authorised to another recipient; c[6]: owned by M2M (its
	// authorisation to MNOC) when M2MX authorises it to MNOB.
	w.process(a, "m2m", processor.Authorisation{}, w.send("M2M", "MNOA", native.SwitchAuthorisation, 2, false, "", authRecords([]*fleet.Card{c[4], c[6]}, "MNOC", day(1))))
	// c[5]: authorised only from a later date than the list's cut-over.
	w.process(a, "m2m", processor.Authorisation{}, w.send("M2M", "MNOA", native.SwitchAuthorisation, 1, false, "", authRecords([]*fleet.Card{c[5]}, "MNOB", day(4))))
	// c[9]: authorised from three days ago (its list date is past).
	w.process(a, "m2m", processor.Authorisation{}, w.send("M2M", "MNOA", native.SwitchAuthorisation, 1, false, "", authRecords([]*fleet.Card{c[9]}, "MNOB", day(-3))))
	res := w.process(a, "m2mx", processor.Authorisation{}, w.send("M2MX", "MNOA", native.SwitchAuthorisation, 1, false, "", authRecords([]*fleet.Card{c[6]}, "MNOB", day(1))))
	if res.Counts.Rejected != 1 || res.Counts.Accepted != 0 {
		t.Fatalf("another customer's authorisation: %+v", res.Counts)
	}
	var reason string
	if err := a.Ledger.QueryRow(ctx, `SELECT reason FROM batch_records WHERE batch_id = ?`, res.BatchID).Scan(&reason); err != nil || reason != processor.ReasonNotAuthorised {
		t.Errorf("another customer's authorisation recorded as %q (%v)", reason, err)
	}
	// c[11]: the card belongs to M2M, yet the authorisation on record
	// says another customer gave it (a ledger the intake never wrote).
	if err := a.Ledger.InTx(ctx, func(tx *ledger.Tx) error {
		return tx.PutAuthorisation(ctx, ledger.Authorisation{ICCID: c[11].ICCID, Recipient: "MNOB", FromDate: date(0), Owner: "M2MX"})
	}); err != nil {
		t.Fatal(err)
	}
	// c[1] was released already.
	if err := a.Ledger.InTx(ctx, func(tx *ledger.Tx) error {
		return tx.Transition(ctx, c[1].ICCID, nil, ledger.CardReleased, "test: released earlier", "", nil)
	}); err != nil {
		t.Fatal(err)
	}
	// c[2] is moving already: an earlier list was accepted.
	const movingIMSI = "999990000000002"
	res = w.process(a, "mno-b", &processor.IMSIList{SMSC: a.Partners["smsc"]}, w.send("MNOB", "MNOA", native.IMSIList, 1, false, "", listRecords([]listRec{{c[2].ICCID, movingIMSI, date(1)}})))
	if res.Counts.Accepted != 1 || res.Counts.Messages != 1 {
		t.Fatalf("first list: %+v", res.Counts)
	}
	counters := map[string]int64{}
	for _, card := range c {
		counters[card.ICCID] = counter(t, a, card.ICCID, 0)
	}

	stranger, err := fleet.New(fleet.Options{N: 1, ICCIDBody: "8999907", Seed: "stranger"})
	if err != nil {
		t.Fatal(err)
	}
	type want struct {
		rec            listRec
		status, reason string
		detail         string // the answer's detail contains it
	}
	cases := []want{
		{listRec{c[0].ICCID, "999990000000010", date(1)}, "accepted", "", ""},
		{listRec{stranger.Cards[0].ICCID, "999990000000011", date(1)}, "rejected", processor.ReasonUnknownICCID, ""},
		{listRec{c[1].ICCID, "999990000000012", date(1)}, "rejected", processor.ReasonNotActive, "card is released"},
		{listRec{c[2].ICCID, "999990000000013", date(1)}, "rejected", processor.ReasonAlreadyMoving, "card is moving"},
		{listRec{c[3].ICCID, "999990000000014", date(1)}, "rejected", processor.ReasonNotAuthorised, "no switch authorisation to MNOB"},
		{listRec{c[4].ICCID, "999990000000015", date(1)}, "rejected", processor.ReasonNotAuthorised, "no switch authorisation to MNOB"},
		{listRec{c[5].ICCID, "999990000000016", date(1)}, "rejected", processor.ReasonNotAuthorised, "cut-over before the authorised date " + date(4)},
		{listRec{c[6].ICCID, "999990000000017", date(1)}, "rejected", processor.ReasonNotAuthorised, ""},
		{listRec{c[11].ICCID, "999990000000018", date(1)}, "rejected", processor.ReasonNotAuthorised, "authorised by another customer than the card's owner"},
		// An IMSI of A's own PLMN: not in B's ranges.
		{listRec{c[7].ICCID, "001010000009999", date(1)}, "rejected", processor.ReasonNotInRange, ""},
		// The IMSI c[2] is moving to.
		{listRec{c[8].ICCID, movingIMSI, date(1)}, "rejected", processor.ReasonIMSIInUse, ""},
		{listRec{c[9].ICCID, "999990000000019", date(-1)}, "rejected", processor.ReasonDatePast, ""},
		// Malformed: a cut-over date that is no date.
		{listRec{c[10].ICCID, "999990000000020", "2026-13-45"}, "rejected", processor.ReasonInvalid, ""},
		// c[0] a second time in the same file.
		{listRec{c[0].ICCID, "999990000000021", date(1)}, "rejected", processor.ReasonDuplicate, "iccid: duplicate within the file: " + c[0].ICCID},
		// c[0]'s new IMSI a second time in the same file.
		{listRec{c[12].ICCID, "999990000000010", date(1)}, "rejected", processor.ReasonDuplicate, "imsi: duplicate within the file: 999990000000010"},
	}
	var recs []listRec
	for _, cs := range cases {
		recs = append(recs, cs.rec)
	}
	list := w.send("MNOB", "MNOA", native.IMSIList, len(recs), false, "", listRecords(recs))
	res = w.process(a, "mno-b", &processor.IMSIList{SMSC: a.Partners["smsc"]}, list)
	if res.Counts.Records != len(cases) || res.Counts.Accepted != 1 || res.Counts.Rejected != len(cases)-1 || res.Counts.Messages != 1 {
		t.Errorf("counts: %+v", res.Counts)
	}

	// B reads the answers.
	h, got := w.readOutput(a, output(t, res.Outputs, "imsi-result"))
	if h.InReplyTo != filepath.Base(list) {
		t.Errorf("imsi-result answers %q", h.InReplyTo)
	}
	if len(got) != len(cases) {
		t.Fatalf("imsi-result has %d records, want %d", len(got), len(cases))
	}
	answers := map[string]*native.Record{}
	for _, r := range got {
		answers[r.Get(native.FieldICCID)+"/"+r.Get(native.FieldIMSI)] = r
	}
	for _, cs := range cases {
		t.Run(cs.status+"-"+cs.reason+"-"+cs.rec.iccid[len(cs.rec.iccid)-3:], func(t *testing.T) {
			r := answers[cs.rec.iccid+"/"+cs.rec.imsi]
			if r == nil {
				t.Fatalf("no answer for %s/%s", cs.rec.iccid, cs.rec.imsi)
			}
			if r.Get(native.FieldStatus) != cs.status || !strings.EqualFold(r.Get(native.FieldReason), cs.reason) || !strings.Contains(r.Get(native.FieldDetail), cs.detail) {
				t.Errorf("%s: %s %s (%s), want %s %s (%s)", cs.rec.iccid, r.Get(native.FieldStatus), r.Get(native.FieldReason), r.Get(native.FieldDetail), cs.status, cs.reason, cs.detail)
			}
		})
	}

	// Only the accepted card got a message; nobody else's counter moved.
	batch := output(t, res.Outputs, "ota-batch")
	_, otaRecs := w.readOutput(a, batch)
	if len(otaRecs) != 1 || otaRecs[0].Get(native.FieldICCID) != c[0].ICCID {
		t.Errorf("ota-batch holds %d messages", len(otaRecs))
	}
	for i, card := range c {
		msgs := messages(t, a, card.ICCID)
		wantMsgs := 0
		if i == 0 || i == 2 {
			wantMsgs = 1
		}
		if len(msgs) != wantMsgs {
			t.Errorf("card %d has %d OTA messages, want %d", i, len(msgs), wantMsgs)
		}
		got := counter(t, a, card.ICCID, 0)
		wantCtr := counters[card.ICCID]
		if i == 0 {
			wantCtr++
		}
		if got != wantCtr {
			t.Errorf("card %d: counter %d, want %d", i, got, wantCtr)
		}
	}
	states := map[int]string{0: ledger.CardMoving, 1: ledger.CardReleased, 2: ledger.CardMoving, 3: ledger.CardActive, 4: ledger.CardActive,
		5: ledger.CardActive, 6: ledger.CardActive, 7: ledger.CardActive, 8: ledger.CardActive, 9: ledger.CardActive, 10: ledger.CardActive, 11: ledger.CardActive, 12: ledger.CardActive}
	for i, st := range states {
		if got := cardState(t, a, c[i].ICCID); got != st {
			t.Errorf("card %d is %s, want %s", i, got, st)
		}
	}
	if card, _ := a.Ledger.Card(ctx, c[0].ICCID); card.NewIMSI != "999990000000010" || card.Recipient != "MNOB" {
		t.Errorf("accepted card: new IMSI %s recipient %s", card.NewIMSI, card.Recipient)
	}

}
