package processor_test

import (
	"context"
	"strings"
	"testing"

	"resub/formats/native"
	"resub/processor"
	"resub/processor/ledger"
	"resub/samples/fleet"
)

// Every rule of the switch authorisation alone and together — unknown
// card, another customer's card, the reader's own rejections — an owner
// recorded where none was known, an authorisation renewed: the set-based
// step gives the answers listed here and leaves exactly the ledger
// (cards, events, authorisations, audit trail, answers) the
// record-at-a-time path leaves on the same input.
func TestAuthorisationJudgesEveryLine(t *testing.T) {
	const n = 12
	strangers, err := fleet.New(fleet.Options{N: 1, ICCIDBody: "8999907", Seed: "stranger"})
	if err != nil {
		t.Fatal(err)
	}
	type line struct {
		iccid, recipient       string
		status, reason, detail string // status "" is accepted (no answer line)
	}
	run := func(step processor.FileStep) (string, processor.Counts, []line, []ledger.BatchRecord) {
		ctx := context.Background()
		w, f, a, _ := setup3a(t, n)
		c := f.Cards
		err := a.Ledger.InTx(ctx, func(tx *ledger.Tx) error {
			for i, owner := range map[int]string{1: "M2M", 2: "OTHER", 5: "OTHER"} {
				if _, err := tx.Exec(ctx, `UPDATE cards SET owner = ? WHERE iccid = ?`, owner, c[i].ICCID); err != nil {
					return err
				}
			}
			return tx.PutAuthorisation(ctx, ledger.Authorisation{ICCID: c[3].ICCID, Recipient: "MNOB", FromDate: "2026-01-01", Owner: "M2M", FileID: 0})
		})
		if err != nil {
			t.Fatal(err)
		}
		bad := []byte(c[9].ICCID)
		bad[len(bad)-1] = '0' + (bad[len(bad)-1]-'0'+1)%10
		lines := []line{
			{c[0].ICCID, "MNOB", "", "", ""},
			{c[1].ICCID, "MNOB", "", "", ""},
			{c[2].ICCID, "MNOB", "rejected", processor.ReasonNotAuthorised, "the card belongs to another customer"},
			{c[3].ICCID, "MNOB", "", "", ""}, // renewed
			{strangers.Cards[0].ICCID, "MNOB", "rejected", processor.ReasonUnknownICCID, ""},
			{c[4].ICCID, "MNOC", "", "", ""},
			{string(bad), "MNOB", "rejected", processor.ReasonInvalid, ""},
			{c[5].ICCID, "MNOC", "rejected", processor.ReasonNotAuthorised, "the card belongs to another customer"},
			{c[0].ICCID, "MNOC", "rejected", processor.ReasonDuplicate, ""},
			{c[6].ICCID, "MNOB", "", "", ""},
		}
		cut := w.now.AddDate(0, 0, 2)
		recs := func(emit func(*native.Record) error) error {
			r := native.NewRecord(native.SwitchAuthorisation)
			for _, l := range lines {
				r.Set(native.FieldICCID, l.iccid)
				r.Set(native.FieldRecipient, l.recipient)
				r.Set(native.FieldCutoverDate, cut.Format("2006-01-02"))
				if err := emit(r); err != nil {
					return err
				}
			}
			return nil
		}
		res := w.process(a, "m2m", step, w.send("M2M", "MNOA", native.SwitchAuthorisation, len(lines), false, "", recs))
		rows, err := a.Ledger.Query(ctx, `SELECT line, status, reason, detail FROM batch_records WHERE batch_id = ? ORDER BY line`, res.BatchID)
		if err != nil {
			t.Fatal(err)
		}
		var answers []ledger.BatchRecord
		for rows.Next() {
			var r ledger.BatchRecord
			if err := rows.Scan(&r.Line, &r.Status, &r.Reason, &r.Detail); err != nil {
				t.Fatal(err)
			}
			answers = append(answers, r)
		}
		rows.Close()
		var b strings.Builder
		b.WriteString(dumpLedger(t, a))
		b.WriteString(dumpQueries(t, a, `SELECT * FROM authorisations ORDER BY iccid, recipient`, `SELECT at, actor, action, subject, detail FROM audit ORDER BY id`))
		return b.String(), res.Counts, lines, answers
	}
	setDump, counts, lines, answers := run(processor.Authorisation{})
	refDump, refCounts, _, _ := run(processor.AuthorisationPerRecord{})

	var wantRejected []line
	for _, l := range lines {
		if l.status != "" {
			wantRejected = append(wantRejected, l)
		}
	}
	if len(answers) != len(wantRejected) {
		t.Fatalf("%d answers, want %d", len(answers), len(wantRejected))
	}
	for i, l := range wantRejected {
		r := answers[i]
		if r.Status != l.status || r.Reason != l.reason || (l.detail != "" && r.Detail != l.detail) {
			t.Errorf("%s to %s: %s %s %q, want %s %s %q", l.iccid, l.recipient, r.Status, r.Reason, r.Detail, l.status, l.reason, l.detail)
		}
	}
	if counts.Accepted != len(lines)-len(wantRejected) || counts != refCounts {
		t.Errorf("counts %+v; the record-at-a-time path's %+v", counts, refCounts)
	}
	if setDump != refDump {
		a, b := strings.Split(setDump, "\n"), strings.Split(refDump, "\n")
		for i := range min(len(a), len(b)) {
			if a[i] != b[i] {
				t.Fatalf("the ledgers differ first at line %d:\nby sets:          %s\nrecord at a time: %s", i, a[i], b[i])
			}
		}
		t.Fatalf("the ledgers differ in length: %d and %d lines", len(a), len(b))
	}
}

// The MSISDN map by sets: known cards get their MSISDN, an unknown ICCID
// and a known ICCID with another IMSI are answered, a line that repeats an
// earlier line's ICCID, IMSI or MSISDN is a duplicate in the reader's
// words (the stage finds them); the ledger is the one the record-at-a-time intake
// leaves.
func TestMSISDNMapSameAsPerRecord(t *testing.T) {
	const n = 8
	strangers, err := fleet.New(fleet.Options{N: 1, ICCIDBody: "8999907", Seed: "stranger"})
	if err != nil {
		t.Fatal(err)
	}
	run := func(step processor.FileStep) (string, processor.Counts) {
		w, f, a, _ := setup3a(t, n)
		c := f.Cards
		lines := [][3]string{
			{c[0].ICCID, c[0].IMSI, "49170000000001"},
			{strangers.Cards[0].ICCID, strangers.Cards[0].IMSI, "49170000000002"},
			{c[1].ICCID, c[2].IMSI, "49170000000003"}, // another card's IMSI
			{c[3].ICCID, c[3].IMSI, "49170000000004"},
			{c[4].ICCID, c[4].IMSI, "49170000000005"},
			// Repeats of an earlier line: its IMSI, its MSISDN, its ICCID.
			{c[5].ICCID, c[0].IMSI, "49170000000006"},
			{c[6].ICCID, c[6].IMSI, "49170000000001"},
			{c[0].ICCID, c[7].IMSI, "49170000000008"},
		}
		recs := func(emit func(*native.Record) error) error {
			r := native.NewRecord(native.MSISDNMap)
			for _, l := range lines {
				r.Set(native.FieldICCID, l[0])
				r.Set(native.FieldIMSI, l[1])
				r.Set(native.FieldMSISDN, l[2])
				if err := emit(r); err != nil {
					return err
				}
			}
			return nil
		}
		res := w.process(a, "bss", step, w.send("BSS", "MNOA", native.MSISDNMap, len(lines), true, "", recs))
		return dumpLedger(t, a), res.Counts
	}
	setDump, counts := run(processor.MSISDNImport{})
	refDump, refCounts := run(processor.MSISDNImportPerRecord{})
	if counts.Accepted != 3 || counts.Rejected != 5 || counts != refCounts {
		t.Errorf("counts %+v, want 3 accepted and 5 rejected; the record-at-a-time path's %+v", counts, refCounts)
	}
	if !strings.Contains(setDump, "no card with this ICCID and IMSI") || !strings.Contains(setDump, "49170000000005") {
		t.Errorf("no answer for the unknown card or no MSISDN set:\n%s", setDump)
	}
	if setDump != refDump {
		a, b := strings.Split(setDump, "\n"), strings.Split(refDump, "\n")
		for i := range min(len(a), len(b)) {
			if a[i] != b[i] {
				t.Fatalf("the ledgers differ first at line %d:\nby sets:          %s\nrecord at a time: %s", i, a[i], b[i])
			}
		}
		t.Fatalf("the ledgers differ in length: %d and %d lines", len(a), len(b))
	}
}

// A repeated MSISDN of any length is a duplicate: the stage compares the
// values themselves (the reader's compact keys took only MSISDNs of 14
// or 15 digits).
func TestMSISDNMapRepeatedShortMSISDN(t *testing.T) {
	w, f, a, _ := setup3a(t, 3)
	c := f.Cards
	recs := func(emit func(*native.Record) error) error {
		r := native.NewRecord(native.MSISDNMap)
		for i, m := range []string{"491700000001", "491700000001"} {
			r.Set(native.FieldICCID, c[i].ICCID)
			r.Set(native.FieldIMSI, c[i].IMSI)
			r.Set(native.FieldMSISDN, m)
			if err := emit(r); err != nil {
				return err
			}
		}
		return nil
	}
	res := w.process(a, "bss", processor.MSISDNImport{}, w.send("BSS", "MNOA", native.MSISDNMap, 2, true, "", recs))
	if res.Counts.Accepted != 1 || res.Counts.Rejected != 1 {
		t.Fatalf("counts %+v", res.Counts)
	}
	var reason, detail string
	if err := a.Ledger.QueryRow(context.Background(), `SELECT reason, detail FROM batch_records WHERE batch_id = ?`, res.BatchID).Scan(&reason, &detail); err != nil {
		t.Fatal(err)
	}
	if reason != processor.ReasonDuplicate || !strings.HasSuffix(detail, ": msisdn: duplicate within the file: 491700000001") {
		t.Errorf("answer %s %q", reason, detail)
	}
}
