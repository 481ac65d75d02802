package processor_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"resub/crypto/pgp"
	"resub/formats/native"
	"resub/processor"
	"resub/processor/ledger"
	"resub/samples/fleet"
)

// resend makes the next w.send of that kind reuse the last sequence
// number: the partner sends a file under the same name again.
func (w *world) resend(from, to string, schema *native.Schema) {
	w.seqs[from+">"+to+">"+schema.Name]--
}

// ledgerTotals counts what a unit of work leaves behind.
type ledgerTotals struct{ files, batches, outputs, messages, allocations int }

func totals(t *testing.T, p *processor.Party) ledgerTotals {
	return ledgerTotals{
		files:       count(t, p, `SELECT COUNT(*) FROM files WHERE direction = 'in'`),
		batches:     count(t, p, `SELECT COUNT(*) FROM batches`),
		outputs:     count(t, p, `SELECT COUNT(*) FROM outputs`),
		messages:    count(t, p, `SELECT COUNT(*) FROM ota_messages`),
		allocations: count(t, p, `SELECT COUNT(*) FROM imsi_allocations`),
	}
}

// TestDuplicatePickup processes the same files twice at B and at A: the
// second time is skipped — no second batch, IMSI, message or output.
func TestDuplicatePickup(t *testing.T) {
	const n = 3
	w, f, a, b := setup3a(t, n)
	cut := w.now.AddDate(0, 0, 1)
	w.process(a, "m2m", processor.Authorisation{}, w.send("M2M", "MNOA", native.SwitchAuthorisation, n, false, "", fleet.AuthorisationRecords(f.Cards, "MNOB", cut)))

	req := w.send("M2M", "MNOB", native.SwitchRequest, n, false, "", fleet.SwitchRequestRecords(f.Cards, "MNOA", cut))
	res := w.process(b, "m2m", &processor.SwitchRequest{Donor: b.Partners["mno-a"]}, req)
	list := output(t, res.Outputs, "imsi-list")
	before := totals(t, b)
	again := w.process(b, "m2m", &processor.SwitchRequest{Donor: b.Partners["mno-a"]}, req)
	if again.Status != "skipped" || len(again.Outputs) != 0 || again.FileID != res.FileID {
		t.Errorf("switch request again: %+v", again)
	}
	if after := totals(t, b); after != before {
		t.Errorf("B after the same switch request again: %+v, before %+v", after, before)
	}

	res = w.process(a, "mno-b", &processor.IMSIList{SMSC: a.Partners["smsc"]}, list.Path)
	if res.Counts.Messages != n {
		t.Fatalf("imsi-list: %+v", res.Counts)
	}
	ctr := counter(t, a, f.Cards[0].ICCID, 0)
	before = totals(t, a)
	again = w.process(a, "mno-b", &processor.IMSIList{SMSC: a.Partners["smsc"]}, list.Path)
	if again.Status != "skipped" || len(again.Outputs) != 0 || again.Counts.Messages != 0 {
		t.Errorf("imsi-list again: %+v", again)
	}
	if after := totals(t, a); after != before {
		t.Errorf("A after the same imsi-list again: %+v, before %+v", after, before)
	}
	if got := counter(t, a, f.Cards[0].ICCID, 0); got != ctr {
		t.Errorf("counter moved from %d to %d on a duplicate pickup", ctr, got)
	}
	for _, c := range f.Cards {
		if m := messages(t, a, c.ICCID); len(m) != 1 {
			t.Errorf("card %s has %d messages", c.ICCID, len(m))
		}
	}
}

// TestCorrectedFile: a partner's file refused as a whole (its quantity
// disagrees with its records) and then sent again corrected under the
// same name is a new file and a new batch; the same name with a sequence
// already accepted is refused as a repeat and changes nothing.
func TestCorrectedFile(t *testing.T) {
	ctx := context.Background()
	const n = 4
	w, f, a, _ := setup3a(t, n)
	cut := w.now.AddDate(0, 0, 1)
	step := processor.Authorisation{}

	// Its last record was lost: the header says 4 records, the file
	// holds 3.
	bad := w.sendEdited("M2M", "MNOA", native.SwitchAuthorisation, n, fleet.AuthorisationRecords(f.Cards, "MNOB", cut), func(s string) string {
		lines := strings.SplitAfter(s, "\n")
		return strings.Join(lines[:len(lines)-2], "")
	})
	_, err := a.ProcessFile(ctx, step, processor.Input{Partner: a.Partners["m2m"], Name: filepath.Base(bad), Path: bad, Job: "auth"})
	var re *processor.RefusedError
	if !errors.As(err, &re) {
		t.Fatalf("short file: %v", err)
	}
	// Refused and answered; quarantined once the caller has moved it.
	badRow, err := a.Ledger.FileByName(ctx, "in", filepath.Base(bad))
	if err != nil || badRow.Status != ledger.FileRefusing {
		t.Fatalf("short file row: %+v %v", badRow, err)
	}
	if err := a.Quarantined(ctx, badRow.ID); err != nil {
		t.Fatal(err)
	}
	if badRow, err = a.Ledger.FileByName(ctx, "in", filepath.Base(bad)); err != nil || badRow.Status != ledger.FileQuarantined {
		t.Fatalf("short file row after the move: %+v %v", badRow, err)
	}
	if got := count(t, a, `SELECT COUNT(*) FROM authorisations`); got != 0 {
		t.Errorf("a refused file left %d authorisations", got)
	}

	w.resend("M2M", "MNOA", native.SwitchAuthorisation)
	good := w.send("M2M", "MNOA", native.SwitchAuthorisation, n, false, "", fleet.AuthorisationRecords(f.Cards, "MNOB", cut))
	if filepath.Base(good) != filepath.Base(bad) {
		t.Fatalf("corrected file is %s, first was %s", filepath.Base(good), filepath.Base(bad))
	}
	res := w.process(a, "m2m", step, good)
	if res.Status != ledger.FileDone || res.FileID == badRow.ID || res.BatchID == 0 || res.Counts.Accepted != n {
		t.Errorf("corrected file: %+v (first file %d)", res, badRow.ID)
	}
	if got := count(t, a, `SELECT COUNT(*) FROM authorisations`); got != n {
		t.Errorf("%d authorisations after the corrected file, want %d", got, n)
	}
	if row, _ := a.Ledger.FileByID(ctx, badRow.ID); row.Status != ledger.FileQuarantined {
		t.Errorf("the refused version is now %s", row.Status)
	}

	// The same name once more with other bytes: the sequence was used.
	w.resend("M2M", "MNOA", native.SwitchAuthorisation)
	third := w.send("M2M", "MNOA", native.SwitchAuthorisation, 1, false, "", fleet.AuthorisationRecords(f.Cards[:1], "MNOC", cut))
	before := totals(t, a)
	r3, err := a.ProcessFile(ctx, step, processor.Input{Partner: a.Partners["m2m"], Name: filepath.Base(third), Path: third, Job: "auth"})
	if !errors.As(err, &re) || r3.Status != ledger.FileQuarantined {
		t.Fatalf("repeated sequence: %+v %v", r3, err)
	}
	if after := totals(t, a); after.batches != before.batches || after.files != before.files+1 {
		t.Errorf("repeated sequence: %+v, before %+v", after, before)
	}
	if got := count(t, a, `SELECT COUNT(*) FROM authorisations WHERE recipient = 'MNOC'`); got != 0 {
		t.Errorf("a refused repeat recorded %d authorisations", got)
	}
}

// TestReprocessQuarantined: B's imsi-list signed by a key A has not
// pinned is quarantined and answered with a refusal; once the key is
// pinned, the same bytes run again and are processed (same file row).
func TestReprocessQuarantined(t *testing.T) {
	ctx := context.Background()
	const n = 3
	w, f, a, b := setup3a(t, n)
	cut := w.now.AddDate(0, 0, 1)
	w.process(a, "m2m", processor.Authorisation{}, w.send("M2M", "MNOA", native.SwitchAuthorisation, n, false, "", fleet.AuthorisationRecords(f.Cards, "MNOB", cut)))
	res := w.process(b, "m2m", &processor.SwitchRequest{Donor: b.Partners["mno-a"]}, w.send("M2M", "MNOB", native.SwitchRequest, n, false, "", fleet.SwitchRequestRecords(f.Cards, "MNOA", cut)))
	list := output(t, res.Outputs, "imsi-list")

	// A knows B's old key only.
	old, err := pgp.GenerateKey("MNOB", "old@test.invalid", pgp.Curve25519, pgp.GenerateOptions{Now: w.clock})
	if err != nil {
		t.Fatal(err)
	}
	pb := a.Partners["mno-b"]
	pb.PublicKeys, pb.Fingerprints = []*pgp.Key{old.Public()}, []string{old.Fingerprint()}
	in := processor.Input{Partner: pb, Name: list.Name, Path: list.Path, Job: "imsi-list"}
	step := &processor.IMSIList{SMSC: a.Partners["smsc"]}
	r1, err := a.ProcessFile(ctx, step, in)
	var re *processor.RefusedError
	if !errors.As(err, &re) || r1.Status != ledger.FileQuarantined {
		t.Fatalf("unpinned signer: %+v %v", r1, err)
	}
	refusal := output(t, r1.Outputs, "imsi-result")
	// Interrupted before the input was moved: the rerun resumes the
	// refusal, and answers nothing twice.
	again, err := a.ProcessFile(ctx, step, in)
	if !errors.As(err, &re) || again.FileID != r1.FileID || len(again.Outputs) != 1 || again.Outputs[0].ID != refusal.ID {
		t.Fatalf("rerun before the move: %+v %v", again, err)
	}
	if err := a.Quarantined(ctx, r1.FileID); err != nil {
		t.Fatal(err)
	}
	// Encrypted to the key A knows.
	cur := w.keys["MNOB"]
	w.keys["MNOB"] = old
	h, recs := w.readOutput(a, refusal)
	w.keys["MNOB"] = cur
	if h.Refused == "" || len(recs) != 0 || h.InReplyTo != list.Name {
		t.Errorf("refusal: refused %q, %d records, in reply to %q", h.Refused, len(recs), h.InReplyTo)
	}
	w.deliverAll(a, r1.Outputs)
	if got := count(t, a, `SELECT COUNT(*) FROM ota_messages`); got != 0 {
		t.Errorf("a quarantined list made %d messages", got)
	}
	for _, c := range f.Cards {
		if st := cardState(t, a, c.ICCID); st != ledger.CardActive {
			t.Errorf("card %s is %s after a refused list", c.ICCID, st)
		}
	}

	// B's key is pinned: the same bytes again.
	pb.PublicKeys, pb.Fingerprints = []*pgp.Key{w.keys["MNOB"].Public()}, []string{w.keys["MNOB"].Fingerprint()}
	r2, err := a.ProcessFile(ctx, step, in)
	if err != nil {
		t.Fatal(err)
	}
	if r2.Status != ledger.FileDone || r2.FileID != r1.FileID || r2.Counts.Accepted != n || r2.Counts.Messages != n {
		t.Fatalf("reprocessed: %+v", r2)
	}
	w.deliverAll(a, r2.Outputs)
	if err := a.Complete(ctx, r2.FileID); err != nil {
		t.Fatal(err)
	}
	row, _ := a.Ledger.FileByID(ctx, r1.FileID)
	if row.Status != ledger.FileDone {
		t.Errorf("file is %s after reprocessing", row.Status)
	}
	_, recs = w.readOutput(a, output(t, r2.Outputs, "imsi-result"))
	if len(recs) != n {
		t.Errorf("imsi-result after reprocessing: %d records", len(recs))
	}
	for _, r := range recs {
		if r.Get(native.FieldStatus) != native.StatusAccepted {
			t.Errorf("%s: %s", r.Get(native.FieldICCID), r.Get(native.FieldStatus))
		}
	}
	output(t, r2.Outputs, "ota-batch")
	// A third time: done, skipped.
	r3, err := a.ProcessFile(ctx, step, in)
	if err != nil || r3.Status != "skipped" {
		t.Errorf("third time: %+v %v", r3, err)
	}
}
