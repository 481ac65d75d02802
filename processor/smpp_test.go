package processor_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"resub/formats/native"
	"resub/processor"
	"resub/processor/ledger"
	"resub/samples/fleet"
)

// smppMessages lists a card's OTA messages: id, counter, state.
type msgRow struct {
	id, counter int64
	state       string
}

func cardMessages(t *testing.T, p *processor.Party, iccid string) []msgRow {
	t.Helper()
	rows, err := p.Ledger.Query(context.Background(), `SELECT id, counter, state FROM ota_messages WHERE iccid = ? ORDER BY id`, iccid)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []msgRow
	for rows.Next() {
		var m msgRow
		if err := rows.Scan(&m.id, &m.counter, &m.state); err != nil {
			t.Fatal(err)
		}
		out = append(out, m)
	}
	return out
}

func smppState(t *testing.T, p *processor.Party, id int64) string {
	t.Helper()
	var s string
	if err := p.Ledger.QueryRow(context.Background(), `SELECT state FROM smpp_messages WHERE message_id = ?`, id).Scan(&s); err != nil {
		t.Fatal(err)
	}
	return s
}

// setupSMPP runs a 3a change up to A's imsi-list with an SMSC over SMPP:
// the messages are queued, no ota-batch is written.
func setupSMPP(t *testing.T, n int) (*world, *fleet.Fleet, *processor.Party) {
	t.Helper()
	w, f, a, b := setup3a(t, n)
	a.Partners["smsc"].SMPP = true
	cut := w.now.AddDate(0, 0, 1)
	w.process(a, "m2m", processor.Authorisation{}, w.send("M2M", "MNOA", native.SwitchAuthorisation, n, false, "", fleet.AuthorisationRecords(f.Cards, "MNOB", cut)))
	res := w.process(b, "m2m", &processor.SwitchRequest{Donor: b.Partners["mno-a"]}, w.send("M2M", "MNOB", native.SwitchRequest, n, false, "", fleet.SwitchRequestRecords(f.Cards, "MNOA", cut)))
	res = w.process(a, "mno-b", &processor.IMSIList{SMSC: a.Partners["smsc"]}, output(t, res.Outputs, "imsi-list").Path)
	if res.Counts.Messages != n {
		t.Fatalf("imsi-list at A: %+v", res.Counts)
	}
	for _, o := range res.Outputs {
		if o.Type == native.OTABatch.Name {
			t.Fatalf("an ota-batch file was written for an SMSC over SMPP")
		}
	}
	return w, f, a
}

func TestSMPPSubmissionJudgedLikeAReport(t *testing.T) {
	ctx := context.Background()
	w, f, a := setupSMPP(t, 5)
	run, err := a.OpenSMPPRun(ctx, "ota-submit", a.Partners["smsc"])
	if err != nil {
		t.Fatal(err)
	}
	// 21:00 is outside the profile's window 22:00-05:00: nothing is due.
	if segs, err := run.Next(ctx, 100); err != nil || len(segs) != 0 {
		t.Fatalf("outside the window: %d segments, %v", len(segs), err)
	}
	w.now = w.now.Add(90 * time.Minute)
	segs, err := run.Next(ctx, 100)
	if err != nil {
		t.Fatal(err)
	}
	byMsg := map[int64][]processor.SMPPSegment{}
	var order []int64
	for _, s := range segs {
		if len(byMsg[s.Message]) == 0 {
			order = append(order, s.Message)
		}
		if s.Seq != len(byMsg[s.Message])+1 {
			t.Fatalf("segments out of order: %+v", s)
		}
		byMsg[s.Message] = append(byMsg[s.Message], s)
	}
	if len(order) != 5 {
		t.Fatalf("%d messages handed out, want 5", len(order))
	}
	if again, _ := run.Next(ctx, 100); len(again) != 0 {
		t.Fatalf("handed out twice: %d segments", len(again))
	}
	card := map[string]int{}
	for i, c := range f.Cards {
		card[c.MSISDN] = i
	}
	msisdnOf := func(id int64) string { return byMsg[id][0].MSISDN }
	// Every message counts as sent (its deadline runs) before anything
	// goes out.
	for _, id := range order {
		m := cardMessages(t, a, f.Cards[card[msisdnOf(id)]].ICCID)
		if m[0].state != ledger.MsgSent || smppState(t, a, id) != ledger.SubSubmitting {
			t.Fatalf("before sending: %+v, %s", m, smppState(t, a, id))
		}
	}

	ok, rejected, unknown, undelivered, second := order[0], order[1], order[2], order[3], order[4]
	var results []processor.SMPPResult
	for _, id := range order {
		for _, s := range byMsg[id] {
			r := processor.SMPPResult{Message: id, Seq: s.Seq, SMSCID: "s" + string(rune('a'+len(results)))}
			switch id {
			case rejected:
				r.Status, r.SMSCID = 0x0B, ""
			case unknown:
				r.Unknown, r.SMSCID = true, ""
			}
			results = append(results, r)
		}
	}
	if err := run.Submitted(ctx, results); err != nil {
		t.Fatal(err)
	}
	// The cards answer: PoRs as MO messages; one receipt says undelivered.
	var in []processor.SMPPInbound
	for _, id := range []int64{ok, second} {
		var ud [][]byte
		for _, s := range byMsg[id] {
			ud = append(ud, s.UD)
		}
		por, err := f.Cards[card[msisdnOf(id)]].SIM.Receive(ud)
		if err != nil {
			t.Fatal(err)
		}
		in = append(in, processor.SMPPInbound{From: msisdnOf(id), To: "12345", ESMClass: 0x40, UD: por})
	}
	// The second card's PoR comes twice (an SMSC redelivering): the
	// repeat changes nothing.
	in = append(in, in[1])
	var undelivSMSCID string
	for _, r := range results {
		if r.Message == undelivered {
			undelivSMSCID = r.SMSCID
		}
	}
	in = append(in,
		processor.SMPPInbound{From: msisdnOf(undelivered), ESMClass: 0x04, ReceiptID: undelivSMSCID, ReceiptState: "UNDELIV", ReceiptErr: "001"},
		processor.SMPPInbound{From: "491700000000", ESMClass: 0x40, UD: []byte{0x02, 0x71, 0x00, 0x00, 0x0e, 0x0a, 0xb0, 0x00, 0x11, 0, 0, 0, 0, 1, 0, 0}},
		processor.SMPPInbound{Bad: "UDH: underflow"},
	)
	if err := run.Received(ctx, in); err != nil {
		t.Fatal(err)
	}
	state := func(id int64) string {
		c, err := a.Ledger.Card(ctx, f.Cards[card[msisdnOf(id)]].ICCID)
		if err != nil {
			t.Fatal(err)
		}
		return c.State
	}
	for _, id := range []int64{ok, second} {
		if s := state(id); s != ledger.CardConfirmed {
			t.Errorf("card of message %d: %s, want confirmed", id, s)
		}
	}
	// Refused by the SMSC, or not delivered: never reached the card;
	// retried under a new counter, queued for submission.
	for _, id := range []int64{rejected, undelivered} {
		ms := cardMessages(t, a, f.Cards[card[msisdnOf(id)]].ICCID)
		if len(ms) != 2 || ms[0].state != ledger.MsgFailed || ms[1].state != ledger.MsgReserved || ms[1].counter <= ms[0].counter {
			t.Errorf("message %d: %+v", id, ms)
			continue
		}
		if s := smppState(t, a, ms[1].id); s != ledger.SubQueued {
			t.Errorf("retry of %d: %s", id, s)
		}
		if s := state(id); s != ledger.CardMoving {
			t.Errorf("card of message %d: %s", id, s)
		}
	}
	// Outcome unknown: still sent, waits for its deadline; never handed
	// out again.
	if ms := cardMessages(t, a, f.Cards[card[msisdnOf(unknown)]].ICCID); len(ms) != 1 || ms[0].state != ledger.MsgSent || smppState(t, a, unknown) != ledger.SubUnknown {
		t.Errorf("unknown: %+v %s", ms, smppState(t, a, unknown))
	}
	// Unmatched: the stranger's PoR and the repeat (its message is
	// settled).
	if run.Counts.Unmatched != 2 || run.Counts.Bad != 1 || run.Counts.Receipts["UNDELIV"] != 1 || run.Counts.PoRs[ledger.MsgConfirmed] != 2 {
		t.Errorf("counts %+v", run.Counts)
	}
	if n, _ := run.Pending(ctx); n != 3 {
		t.Errorf("pending %d, want 3 (the unknown and the two retries this run queued)", n)
	}
	retry, err := run.Next(ctx, 100)
	if err != nil {
		t.Fatal(err)
	}
	got := map[int64]bool{}
	for _, s := range retry {
		got[s.Message] = true
		if s.Message == unknown {
			t.Errorf("the unknown message was handed out again")
		}
	}
	if len(got) != 2 {
		t.Errorf("retries handed out: %v", got)
	}
	// Every event was journaled.
	var events int
	a.Ledger.QueryRow(ctx, `SELECT COUNT(*) FROM smpp_events`).Scan(&events)
	if events != len(in)+1 { // + the rejection
		t.Errorf("%d events journaled, want %d", events, len(in)+1)
	}
	res, err := run.Close(ctx)
	if err != nil {
		t.Fatal(err)
	}
	result := output(t, res.Outputs, native.IMSIResult.Name)
	if result.Partner != "mno-b" {
		t.Errorf("imsi-result to %s", result.Partner)
	}
}

func TestSMPPCrashBetweenSendAndRecord(t *testing.T) {
	ctx := context.Background()
	w, f, a := setupSMPP(t, 2)
	w.now = w.now.Add(90 * time.Minute)
	run, err := a.OpenSMPPRun(ctx, "ota-submit", a.Partners["smsc"])
	if err != nil {
		t.Fatal(err)
	}
	segs, err := run.Next(ctx, 100)
	if err != nil || len(segs) == 0 {
		t.Fatal(segs, err)
	}
	// The first message's segments are recorded as never written (the
	// session ended before sending them), then the process dies.
	var notSent []processor.SMPPResult
	for _, s := range segs {
		if s.Message == segs[0].Message {
			notSent = append(notSent, processor.SMPPResult{Message: s.Message, Seq: s.Seq, NotSent: true})
		}
	}
	if err := run.Submitted(ctx, notSent); err != nil {
		t.Fatal(err)
	}
	// The next run: what was recorded as being submitted is unknown.
	run2, err := a.OpenSMPPRun(ctx, "ota-submit", a.Partners["smsc"])
	if err != nil {
		t.Fatal(err)
	}
	again, err := run2.Next(ctx, 100)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range again {
		if s.Message != segs[0].Message {
			t.Errorf("message %d handed out again after a crash", s.Message)
		}
	}
	if len(again) == 0 {
		t.Errorf("the message never sent was not handed out again")
	}
	for _, c := range f.Cards {
		ms := cardMessages(t, a, c.ICCID)
		if len(ms) != 1 || ms[0].state != ledger.MsgSent {
			t.Errorf("card %s: %+v", c.ICCID, ms)
			continue
		}
		if ms[0].id != segs[0].Message && smppState(t, a, ms[0].id) != ledger.SubUnknown {
			t.Errorf("message %d: %s, want unknown", ms[0].id, smppState(t, a, ms[0].id))
		}
	}
	// The deadline sweep settles the unknown one like any unanswered
	// message.
	w.now = w.now.Add(26 * time.Hour)
	if _, err := a.RunSweep(ctx, "deadline", &processor.OTADeadline{SMSC: a.Partners["smsc"]}, false); err != nil {
		t.Fatal(err)
	}
	for _, c := range f.Cards {
		card, _ := a.Ledger.Card(ctx, c.ICCID)
		if card.State != ledger.CardUnknown {
			t.Errorf("card %s: %s after the deadline", c.ICCID, card.State)
		}
	}
}

// TestSMPPReceiptBeforeItsResponse: with two sessions a receipt can
// overtake the submit_sm_resp it is about; it is kept and applied once
// the response is recorded.
func TestSMPPReceiptBeforeItsResponse(t *testing.T) {
	ctx := context.Background()
	w, _, a := setupSMPP(t, 1)
	w.now = w.now.Add(90 * time.Minute)
	run, err := a.OpenSMPPRun(ctx, "ota-submit", a.Partners["smsc"])
	if err != nil {
		t.Fatal(err)
	}
	segs, err := run.Next(ctx, 10)
	if err != nil || len(segs) == 0 {
		t.Fatal(segs, err)
	}
	var in []processor.SMPPInbound
	var rs []processor.SMPPResult
	for i, s := range segs {
		id := fmt.Sprintf("early-%d", i)
		in = append(in, processor.SMPPInbound{From: s.MSISDN, ESMClass: 0x04, ReceiptID: id, ReceiptState: "DELIVRD"})
		rs = append(rs, processor.SMPPResult{Message: s.Message, Seq: s.Seq, SMSCID: id})
	}
	if err := run.Received(ctx, in); err != nil {
		t.Fatal(err)
	}
	if err := run.Submitted(ctx, rs); err != nil {
		t.Fatal(err)
	}
	if s := smppState(t, a, segs[0].Message); s != ledger.SubDelivered {
		t.Errorf("message %d: %s, want delivered", segs[0].Message, s)
	}
	var unmatched int
	a.Ledger.QueryRow(ctx, `SELECT COUNT(*) FROM smpp_events WHERE outcome = 'unmatched'`).Scan(&unmatched)
	if unmatched != 0 {
		t.Errorf("%d receipts still unmatched", unmatched)
	}
}

// TestSMPPNotSubmittedWithinValidity: a message the SMSC could not take
// before its validity ran out never reached the card: it is judged as
// not delivered and retried under a new counter.
func TestSMPPNotSubmittedWithinValidity(t *testing.T) {
	ctx := context.Background()
	w, f, a := setupSMPP(t, 1)
	w.now = w.now.Add(72*time.Hour + 2*time.Hour) // 23:00, three days on
	run, err := a.OpenSMPPRun(ctx, "ota-submit", a.Partners["smsc"])
	if err != nil {
		t.Fatal(err)
	}
	segs, err := run.Next(ctx, 10)
	if err != nil || len(segs) != 0 {
		t.Fatalf("an expired message was handed out: %d segments, %v", len(segs), err)
	}
	ms := cardMessages(t, a, f.Cards[0].ICCID)
	if len(ms) != 2 || ms[0].state != ledger.MsgFailed || smppState(t, a, ms[0].id) != ledger.SubExpired || ms[1].counter <= ms[0].counter {
		t.Fatalf("messages %+v", ms)
	}
	if run.Counts.Expired != 1 || run.Counts.Retries != 1 {
		t.Errorf("counts %+v", run.Counts)
	}
	segs, err = run.Next(ctx, 10)
	if err != nil || len(segs) == 0 || segs[0].Message != ms[1].id {
		t.Fatalf("the retry was not handed out: %+v %v", segs, err)
	}
}

// TestSMPPTwoRunsNeverShareAMessage: two runs on one ledger (two jobs, or
// two daemons) read the same queued messages; only the one that claims a
// message first may send it.
func TestSMPPTwoRunsNeverShareAMessage(t *testing.T) {
	ctx := context.Background()
	w, _, a := setupSMPP(t, 3)
	w.now = w.now.Add(90 * time.Minute)
	var ids []int64
	rows, err := a.Ledger.Query(ctx, `SELECT message_id FROM smpp_messages ORDER BY message_id`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var id int64
		rows.Scan(&id)
		ids = append(ids, id)
	}
	rows.Close()
	starts := make([]ledger.SMPPStart, len(ids))
	for i, id := range ids {
		starts[i] = ledger.SMPPStart{ID: id, Segments: 2, Deadline: w.now.Add(25 * time.Hour)}
	}
	var first, second map[int64]bool
	if err := a.Ledger.InTx(ctx, func(tx *ledger.Tx) (err error) { first, err = tx.StartSMPPSubmits(ctx, starts); return }); err != nil {
		t.Fatal(err)
	}
	if err := a.Ledger.InTx(ctx, func(tx *ledger.Tx) (err error) { second, err = tx.StartSMPPSubmits(ctx, starts); return }); err != nil {
		t.Fatal(err)
	}
	if len(first) != len(ids) || len(second) != 0 {
		t.Fatalf("claimed %d then %d of %d", len(first), len(second), len(ids))
	}
	run, err := a.OpenSMPPRun(ctx, "ota-submit-2", a.Partners["smsc"])
	if err != nil {
		t.Fatal(err)
	}
	if segs, err := run.Next(ctx, 100); err != nil || len(segs) != 0 {
		t.Fatalf("a second run was handed %d segments of claimed messages (%v)", len(segs), err)
	}
}
