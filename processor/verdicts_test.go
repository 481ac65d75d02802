package processor_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"resub/formats/native"
	"resub/formats/ota"
	"resub/processor"
	"resub/processor/ledger"
)

// reportLine is one line of an ota-report written by hand.
type reportLine struct {
	id, msisdn, status, por, detail string
}

// readReport reads the lines of an ota-report the simulated SMSC wrote.
func readReport(t *testing.T, path string) []reportLine {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rd := native.NewReader(f, native.Options{Type: native.OTAReport.Name})
	if _, err := rd.Header(); err != nil {
		t.Fatal(err)
	}
	var out []reportLine
	for {
		rec, err := rd.Read()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, reportLine{rec.Get(native.FieldMessageID), rec.Get(native.FieldMSISDN), rec.Get(native.FieldStatus), rec.Get(native.FieldPoR), rec.Get(native.FieldDetail)})
	}
}

// writeReport writes an ota-report of lines as the SMSC sends it to A.
func (s *switching) writeReport(t *testing.T, lines []reportLine) string {
	t.Helper()
	w := s.w
	w.smscSeq++
	h := &native.Header{Format: native.OTAReport.Name, Version: native.OTAReport.Version, Sender: "SMSC", Receiver: "MNOA", BusinessDate: w.now,
		Sequence: w.smscSeq, Created: w.now.Truncate(time.Second), Batch: "SMSC-forged", Quantity: len(lines)}
	var buf bytes.Buffer
	nw := native.NewWriter(&buf, native.OTAReport)
	cols := make([]string, len(native.OTAReport.Fields))
	for i, f := range native.OTAReport.Fields {
		cols[i] = f.Name
	}
	if err := nw.WriteHeader(h, cols); err != nil {
		t.Fatal(err)
	}
	rec := native.NewRecord(native.OTAReport)
	for _, l := range lines {
		rec.Set(native.FieldMessageID, l.id)
		rec.Set(native.FieldMSISDN, l.msisdn)
		rec.Set(native.FieldStatus, l.status)
		rec.Set(native.FieldTime, w.now.Format(time.RFC3339))
		rec.Set(native.FieldPoR, l.por)
		rec.Set(native.FieldDetail, l.detail)
		if err := nw.Write(rec); err != nil {
			t.Fatal(err)
		}
	}
	if err := nw.Flush(); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(w.dir, "wire", native.NameOf(h, "txt", false).String())
	if err := os.WriteFile(path, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// garble flips the last octet of a PoR (its checksum or padding).
func garble(t *testing.T, por string) string {
	b, err := hex.DecodeString(por)
	if err != nil || len(b) == 0 {
		t.Fatalf("PoR %q", por)
	}
	b[len(b)-1] ^= 0x5a
	return hex.EncodeToString(b)
}

// TestUnverifiedPoR: a PoR that does not verify (a garbled line, a
// stranger's SMS to the OTA short code, an OK status without the
// security the SPI asks for, another TAR) changes no card and no
// message: it is recorded on the message and the card's history and
// counted; the genuine PoR that follows confirms the card. A card that
// only ever gets a forgery stays moving until the deadline, and only
// then becomes unknown (NO_POR).
func TestUnverifiedPoR(t *testing.T) {
	ctx := context.Background()
	s := startSwitch(t, 4, nil)
	w, f, a := s.w, s.f, s.a
	genuine := readReport(t, w.runSMSC(s.batch, "MNOA"))
	if len(genuine) != 4 {
		t.Fatalf("%d report lines", len(genuine))
	}
	for _, l := range genuine {
		if l.por == "" {
			t.Fatalf("no PoR for %s", l.msisdn)
		}
	}
	unsecuredOK := func(l reportLine) string {
		b, _ := hex.DecodeString(l.por)
		tar, _ := ota.ResponseTAR(b)
		return hex.EncodeToString(ota.AppendUnsecuredResponse(nil, tar, 0, ota.StatusOK))
	}
	otherTAR := func(l reportLine) string {
		b, _ := hex.DecodeString(l.por)
		b[6] ^= 0xff
		return hex.EncodeToString(b)
	}
	forged := func(l reportLine, por string) reportLine { l.por = por; return l }
	lines := []reportLine{
		forged(genuine[0], garble(t, genuine[0].por)), genuine[0], // garbled, then genuine
		forged(genuine[1], unsecuredOK(genuine[1])), genuine[1], // OK without security, then genuine
		forged(genuine[2], otherTAR(genuine[2])), genuine[2], // another TAR, then genuine
		forged(genuine[3], garble(t, genuine[3].por)), // a forgery only
	}
	res := w.process(a, "smsc", &processor.OTAReport{}, s.writeReport(t, lines))
	s.collect(res)
	if res.Counts.PoRsIgnored != 4 || res.Counts.Accepted != 3 || res.Counts.Rejected != 4 || res.Counts.Messages != 0 {
		t.Errorf("counts %+v, want 4 ignored, 3 accepted, 4 rejected, no message", res.Counts)
	}
	reasons := []string{"checksum does not verify", "unsecured PoR with status 00", "PoR for TAR", "checksum does not verify"}
	for i, c := range f.Cards {
		hist, err := a.Ledger.History(ctx, c.ICCID)
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, e := range hist {
			if strings.HasPrefix(e.Reason, "PoR ignored: ") && strings.Contains(e.Reason, reasons[i]) && e.From == ledger.CardMoving && e.To == ledger.CardMoving {
				found = true
			}
		}
		if !found {
			t.Errorf("card %d: no event of the ignored PoR (%q) in %+v", i, reasons[i], hist)
		}
		want := ledger.CardConfirmed
		if i == 3 {
			want = ledger.CardMoving
		}
		if st := cardState(t, a, c.ICCID); st != want {
			t.Errorf("card %d is %s, want %s", i, st, want)
		}
	}
	msgs := messages(t, a, f.Cards[3].ICCID)
	if len(msgs) != 1 || msgs[0].State != ledger.MsgSent || !strings.Contains(msgs[0].Detail, "checksum does not verify") {
		t.Errorf("the forged card's message: %+v", msgs[0])
	}
	out := s.outcomes(t)
	if r := out[f.Cards[3].ICCID]; r != nil {
		t.Errorf("B was told %s %s about a card that only got a forgery", r.Get(native.FieldStatus), r.Get(native.FieldReason))
	}
	for _, c := range f.Cards[:3] {
		if r := out[c.ICCID]; r == nil || r.Get(native.FieldStatus) != native.StatusCompleted {
			t.Errorf("card %s: B was told %v", c.ICCID, r)
		}
	}

	// Only the deadline makes the forged card unknown.
	sweep := &processor.OTADeadline{SMSC: a.Partners["smsc"]}
	if res, err := a.RunSweep(ctx, "ota-deadline", sweep, false); err != nil || res.Counts.Records != 0 {
		t.Fatalf("sweep before the deadline: %+v %v", res, err)
	}
	w.now = pastDeadlines(t, a)
	res2, err := a.RunSweep(ctx, "ota-deadline", sweep, false)
	if err != nil {
		t.Fatal(err)
	}
	w.deliverAll(a, res2.Outputs)
	s.collect(res2)
	if st := cardState(t, a, f.Cards[3].ICCID); st != ledger.CardUnknown {
		t.Errorf("the forged card is %s after the deadline", st)
	}
	if r := s.outcomes(t)[f.Cards[3].ICCID]; r == nil || r.Get(native.FieldStatus) != native.StatusUnknown || !strings.EqualFold(r.Get(native.FieldReason), processor.ReasonNoPoR) ||
		!strings.Contains(r.Get(native.FieldDetail), "no verified PoR by the deadline") {
		t.Errorf("after the deadline B was told %v", r)
	}
}

// TestDeliveryReportReasons: a delivery report for one of our messages
// already judged is DUPLICATE; for a message ID we never used,
// UNKNOWN_ICCID; neither changes anything.
func TestDeliveryReportReasons(t *testing.T) {
	s := startSwitch(t, 1, nil)
	w, f, a := s.w, s.f, s.a
	genuine := readReport(t, w.runSMSC(s.batch, "MNOA"))
	late := genuine[0]
	late.status, late.por, late.detail = native.StatusExpired, "", "validity period expired"
	stranger := late
	stranger.id = "MNOA-999999"
	res := w.process(a, "smsc", &processor.OTAReport{}, s.writeReport(t, []reportLine{genuine[0], late, stranger}))
	var got []string
	if err := a.Ledger.BatchRecords(context.Background(), res.BatchID, "", recordRejected, func(r ledger.BatchRecord) error {
		got = append(got, r.Reason)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0] != processor.ReasonDuplicate || got[1] != processor.ReasonUnknownICCID {
		t.Errorf("reasons %v", got)
	}
	if st := cardState(t, a, f.Cards[0].ICCID); st != ledger.CardConfirmed {
		t.Errorf("card is %s", st)
	}
}

const recordRejected = "rejected"

// TestUnmatchedPoR: a PoR for an MSISDN we never sent to is UNKNOWN_ICCID;
// one for a card whose message was already judged is DUPLICATE, never
// UNKNOWN_ICCID, and changes nothing.
func TestUnmatchedPoR(t *testing.T) {
	s := startSwitch(t, 1, nil)
	w, f, a := s.w, s.f, s.a
	genuine := readReport(t, w.runSMSC(s.batch, "MNOA"))
	stranger := genuine[0]
	stranger.msisdn = "999199999999"
	res := w.process(a, "smsc", &processor.OTAReport{}, s.writeReport(t, []reportLine{genuine[0], genuine[0], stranger}))
	if res.Counts.Accepted != 1 || res.Counts.Rejected != 2 {
		t.Errorf("counts %+v", res.Counts)
	}
	var got []string // the rejections, in line order
	if err := a.Ledger.BatchRecords(context.Background(), res.BatchID, "", recordRejected, func(r ledger.BatchRecord) error {
		got = append(got, r.Reason)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0] != processor.ReasonDuplicate || got[1] != processor.ReasonUnknownICCID {
		t.Errorf("reasons %v", got)
	}
	if st := cardState(t, a, f.Cards[0].ICCID); st != ledger.CardConfirmed {
		t.Errorf("card is %s", st)
	}
}

// cardPoR builds the PoR a card would send for message m: secured with
// the card's own keys, or unsecured for an error it could not secure.
func (s *switching) cardPoR(t *testing.T, card int, m *ledger.Message, st ota.Status, data []byte, unsecured bool) string {
	t.Helper()
	tar, _ := ota.ParseTAR(m.TAR)
	if unsecured {
		return hex.EncodeToString(ota.AppendUnsecuredResponse(nil, tar, 0, st))
	}
	ks := s.f.Cards[card].Keys(1)
	pr := s.w.prof.OTA.Params(tar)
	pr.KIc = ota.KIc(byte(pr.KIc)&0x0f | byte(m.KVN)<<4)
	pr.KID = ota.KID(byte(pr.KID)&0x0f | byte(m.KVN)<<4)
	codec, err := ota.NewCodec(pr, ota.Keys{KIc: ks.KIc, KID: ks.KID})
	if err != nil {
		t.Fatal(err)
	}
	por, err := codec.EncodeResponse(nil, uint64(m.Counter), st, data)
	if err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(por)
}

// TestPartialThenRefused: the first attempt's PoR proves the EF_IMSI
// write and a later failure; the retries are refused before running
// (unsecured 01, then a verified counter-high). Although the last answer
// says "not executed", the card changed on the first attempt: it waits
// for an engineer and B is told unknown / OTA_INCOMPLETE, never failed.
func TestPartialThenRefused(t *testing.T) {
	ctx := context.Background()
	s := startSwitch(t, 1, nil)
	w, f, a := s.w, s.f, s.a
	iccid := f.Cards[0].ICCID
	answers := []func(m *ledger.Message) string{
		func(m *ledger.Message) string {
			return s.cardPoR(t, 0, m, ota.StatusOK, ota.AppendCompactResponse(nil, 4, 0x6a82, nil), false)
		},
		func(m *ledger.Message) string { return s.cardPoR(t, 0, m, ota.StatusChecksumFailed, nil, true) },
		func(m *ledger.Message) string { return s.cardPoR(t, 0, m, ota.StatusCounterHigh, nil, false) },
	}
	for i, answer := range answers {
		msgs := messages(t, a, iccid)
		m := msgs[len(msgs)-1]
		if m.State != ledger.MsgSent {
			t.Fatalf("round %d: message %d is %s", i, m.ID, m.State)
		}
		line := reportLine{id: "MNOA-" + strconv.FormatInt(m.ID, 10), msisdn: m.MSISDN, status: native.StatusDelivered, por: answer(m)}
		res := w.process(a, "smsc", &processor.OTAReport{}, s.writeReport(t, []reportLine{line}))
		s.collect(res)
		s.batch = nil
		for _, o := range res.Outputs {
			if o.Type == native.OTABatch.Name {
				s.batch = o
			}
		}
		if res.Counts.PoRsIgnored != 0 {
			t.Errorf("round %d: a PoR was ignored", i)
		}
	}
	if st := cardState(t, a, iccid); st != ledger.CardManual {
		t.Errorf("card is %s, want manual", st)
	}
	msgs := messages(t, a, iccid)
	if len(msgs) != 3 || msgs[0].PoRStatus != "incomplete" {
		t.Errorf("messages %+v", msgs)
	}
	r := s.outcomes(t)[iccid]
	if r == nil || r.Get(native.FieldStatus) != native.StatusUnknown || !strings.EqualFold(r.Get(native.FieldReason), processor.ReasonOTAIncomplete) {
		t.Fatalf("B was told %v", r)
	}
	s.deliverResults(t)
	bc, _ := s.b.Ledger.Card(ctx, iccid)
	if got := imsiState(t, s.b, bc.IMSI); got != ledger.IMSIUnknown {
		t.Errorf("B's IMSI is %s, want unknown (never retired)", got)
	}
}

// TestLatePoR: an unsecured error PoR (unauthenticated: here forged)
// makes A retry; the card's genuine PoR for the first attempt, arriving
// after, still counts: the card is confirmed and B told completed; the
// retry's own PoR finds the card confirmed and changes nothing.
func TestLatePoR(t *testing.T) {
	s := startSwitch(t, 1, nil)
	w, f, a := s.w, s.f, s.a
	iccid := f.Cards[0].ICCID
	genuine := readReport(t, w.runSMSC(s.batch, "MNOA"))
	m := messages(t, a, iccid)[0]
	forged := genuine[0]
	forged.por = s.cardPoR(t, 0, m, ota.StatusChecksumFailed, nil, true)
	res := w.process(a, "smsc", &processor.OTAReport{}, s.writeReport(t, []reportLine{forged}))
	retry := output(t, res.Outputs, "ota-batch")
	if st := cardState(t, a, iccid); st != ledger.CardMoving || len(messages(t, a, iccid)) != 2 {
		t.Fatalf("after the forged error PoR: %s, %d messages", st, len(messages(t, a, iccid)))
	}
	res = w.process(a, "smsc", &processor.OTAReport{}, s.writeReport(t, []reportLine{genuine[0]}))
	s.collect(res)
	if st := cardState(t, a, iccid); st != ledger.CardConfirmed {
		t.Fatalf("after the late genuine PoR the card is %s", st)
	}
	if r := s.outcomes(t)[iccid]; r == nil || r.Get(native.FieldStatus) != native.StatusCompleted {
		t.Errorf("B was told %v", r)
	}
	res = w.process(a, "smsc", &processor.OTAReport{}, w.runSMSC(retry, "MNOA"))
	if res.Counts.Messages != 0 || cardState(t, a, iccid) != ledger.CardConfirmed {
		t.Errorf("the retry's PoR: %+v, card %s", res.Counts, cardState(t, a, iccid))
	}
	noCounterReuse(t, a)
}

// TestLatePoRCorrectsFailed: forged unsecured error PoRs exhaust a card's
// attempts; it waits for an engineer and B is told failed and retires the
// IMSI (never handed out again: the range holding only it is exhausted).
// The card's genuine PoR for the first attempt then arrives. It corrects
// the outcome: proving the whole script, the card is confirmed and B told
// completed; proving the EF_IMSI write and a later failure, the card stays
// manual and B is told unknown / OTA_INCOMPLETE. Either way B reinstates
// the IMSI and awaits the card's handover again.
func TestLatePoRCorrectsFailed(t *testing.T) {
	for _, tc := range []struct {
		name               string
		confirmed          bool
		card, told, reason string
		imsi               string
	}{
		{"whole script", true, ledger.CardConfirmed, native.StatusCompleted, "", ledger.IMSIConfirmed},
		{"EF_IMSI written, then a failure", false, ledger.CardManual, native.StatusUnknown, processor.ReasonOTAIncomplete, ledger.IMSIUnknown},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			s := startSwitch(t, 1, nil)
			w, f, a, b := s.w, s.f, s.a, s.b
			iccid := f.Cards[0].ICCID
			first := messages(t, a, iccid)[0]
			late := reportLine{id: "MNOA-" + strconv.FormatInt(first.ID, 10), msisdn: first.MSISDN, status: native.StatusDelivered,
				por: s.cardPoR(t, 0, first, ota.StatusOK, ota.AppendCompactResponse(nil, 4, 0x6a82, nil), false)}
			if tc.confirmed {
				late = readReport(t, w.runSMSC(s.batch, "MNOA"))[0] // the card takes the first attempt
			}
			for i := 0; i < 3; i++ {
				msgs := messages(t, a, iccid)
				m := msgs[len(msgs)-1]
				forged := reportLine{id: "MNOA-" + strconv.FormatInt(m.ID, 10), msisdn: m.MSISDN, status: native.StatusDelivered,
					por: s.cardPoR(t, 0, m, ota.StatusChecksumFailed, nil, true)}
				s.collect(w.process(a, "smsc", &processor.OTAReport{}, s.writeReport(t, []reportLine{forged})))
			}
			if st := cardState(t, a, iccid); st != ledger.CardManual {
				t.Fatalf("after the forged PoRs the card is %s, want manual", st)
			}
			if r := s.outcomes(t)[iccid]; r == nil || r.Get(native.FieldStatus) != native.StatusFailed {
				t.Fatalf("B was told %v, want failed", r)
			}
			s.deliverResults(t)
			bc, err := b.Ledger.Card(ctx, iccid)
			if err != nil || bc.State != "rejected" || imsiState(t, b, bc.IMSI) != ledger.IMSIRetired {
				t.Fatalf("B: card %+v %v, IMSI %s", bc, err, imsiState(t, b, bc.IMSI))
			}
			err = b.Ledger.InTx(ctx, func(tx *ledger.Tx) error {
				_, err := tx.AllocateIMSI(ctx, "only-the-retired", bc.IMSI, bc.IMSI, "8999901999999999999", "test")
				return err
			})
			if !errors.Is(err, ledger.ErrRangeExhausted) {
				t.Fatalf("allocating the retired IMSI %s: %v; want it never handed out again", bc.IMSI, err)
			}

			res := w.process(a, "smsc", &processor.OTAReport{}, s.writeReport(t, []reportLine{late}))
			if st := cardState(t, a, iccid); st != tc.card {
				t.Errorf("after the late PoR the card is %s, want %s", st, tc.card)
			}
			if res.Counts.Messages != 0 {
				t.Errorf("the late PoR queued %d messages", res.Counts.Messages)
			}
			result := output(t, res.Outputs, "imsi-result")
			s.collect(res)
			r := s.outcomes(t)[iccid]
			if r == nil || r.Get(native.FieldStatus) != tc.told || !strings.EqualFold(r.Get(native.FieldReason), tc.reason) || r.Get(native.FieldIMSI) != bc.IMSI {
				t.Fatalf("B was told %v, want %s %s", r, tc.told, tc.reason)
			}
			w.process(b, "mno-a", processor.IMSIResultIntake{}, result.Path)
			bc, _ = b.Ledger.Card(ctx, iccid)
			if bc.State != "requested" || imsiState(t, b, bc.IMSI) != tc.imsi {
				t.Errorf("B after the correction: card %s, IMSI %s; want requested, %s", bc.State, imsiState(t, b, bc.IMSI), tc.imsi)
			}
			if tc.confirmed {
				// The confirmed card is handed over, and B provisions it.
				hres, err := a.RunSweep(ctx, "handover", &processor.Handover{Recipient: a.Partners["mno-b"]}, false)
				if err != nil || hres.Counts.Records != 1 {
					t.Fatalf("handover: %+v %v", hres, err)
				}
				w.deliverAll(a, hres.Outputs)
				res = w.process(b, "mno-a", &processor.HandoverIntake{HLR: b.Partners["hlr"]}, output(t, hres.Outputs, "handover").Path)
				if res.Counts.Accepted != 1 {
					t.Errorf("handover at B: %+v", res.Counts)
				}
			}
			noCounterReuse(t, a)
		})
	}
}

// TestLatePoRConfirmsUnknown: the first attempt's PoR proves the EF_IMSI
// write and a later failure; the card takes the second attempt, but
// forged unsecured error PoRs for the second and third exhaust its
// attempts: manual, B told unknown. The second attempt's genuine PoR then
// arrives: the card is confirmed and B told completed.
func TestLatePoRConfirmsUnknown(t *testing.T) {
	ctx := context.Background()
	s := startSwitch(t, 1, nil)
	w, f, a, b := s.w, s.f, s.a, s.b
	iccid := f.Cards[0].ICCID
	newest := func() *ledger.Message {
		msgs := messages(t, a, iccid)
		return msgs[len(msgs)-1]
	}
	report := func(m *ledger.Message, por string) *processor.Result {
		line := reportLine{id: "MNOA-" + strconv.FormatInt(m.ID, 10), msisdn: m.MSISDN, status: native.StatusDelivered, por: por}
		res := w.process(a, "smsc", &processor.OTAReport{}, s.writeReport(t, []reportLine{line}))
		s.collect(res)
		return res
	}
	m1 := newest()
	res := report(m1, s.cardPoR(t, 0, m1, ota.StatusOK, ota.AppendCompactResponse(nil, 4, 0x6a82, nil), false))
	genuine := readReport(t, w.runSMSC(output(t, res.Outputs, "ota-batch"), "MNOA"))[0] // the card takes the second attempt
	// That report is held back: its line comes in a later one.
	w.smscSeq--
	for i := 0; i < 2; i++ {
		m := newest()
		report(m, s.cardPoR(t, 0, m, ota.StatusChecksumFailed, nil, true))
	}
	if st := cardState(t, a, iccid); st != ledger.CardManual {
		t.Fatalf("card is %s, want manual", st)
	}
	if r := s.outcomes(t)[iccid]; r == nil || r.Get(native.FieldStatus) != native.StatusUnknown {
		t.Fatalf("B was told %v, want unknown", r)
	}
	res = w.process(a, "smsc", &processor.OTAReport{}, s.writeReport(t, []reportLine{genuine}))
	s.collect(res)
	if st := cardState(t, a, iccid); st != ledger.CardConfirmed {
		t.Errorf("after the late PoR the card is %s, want confirmed", st)
	}
	if r := s.outcomes(t)[iccid]; r == nil || r.Get(native.FieldStatus) != native.StatusCompleted {
		t.Fatalf("B was told %v, want completed", r)
	}
	s.deliverResults(t)
	bc, _ := b.Ledger.Card(ctx, iccid)
	if bc.State != "requested" || imsiState(t, b, bc.IMSI) != ledger.IMSIConfirmed {
		t.Errorf("B: card %s, IMSI %s; want requested, confirmed", bc.State, imsiState(t, b, bc.IMSI))
	}
	noCounterReuse(t, a)
}

// countingVault counts the secrets opened through it.
type countingVault struct {
	processor.Vault
	opened int
}

func (v *countingVault) Open(aad, blob []byte) ([]byte, error) {
	v.opened++
	return v.Vault.Open(aad, blob)
}

// TestPoROpensTheOTAKeysOnce: a PoR is verified and judged with the
// card's OTA key set (KIc, KID) opened once; no other secret of the card
// (Ki, OPc, KIK) is unsealed to judge it.
func TestPoROpensTheOTAKeysOnce(t *testing.T) {
	s := startSwitch(t, 4, nil)
	w, f, a := s.w, s.f, s.a
	report := w.runSMSC(s.batch, "MNOA")
	v := &countingVault{Vault: a.Vault}
	a.Vault = v
	res := w.process(a, "smsc", &processor.OTAReport{}, report)
	if res.Counts.Accepted != 4 {
		t.Fatalf("counts %+v", res.Counts)
	}
	for _, c := range f.Cards {
		if st := cardState(t, a, c.ICCID); st != ledger.CardConfirmed {
			t.Errorf("card %s is %s", c.ICCID, st)
		}
	}
	if v.opened != 2*4 {
		t.Errorf("%d secrets opened for 4 PoRs, want 8 (KIc and KID once each)", v.opened)
	}
}
