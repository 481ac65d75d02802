package processor_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"resub/formats/native"
	"resub/processor"
	"resub/processor/ledger"
	"resub/samples/fleet"
)

// ledgerBytes is the size of a party's SQLite ledger with its WAL.
func ledgerBytes(t *testing.T, p *processor.Party) int64 {
	t.Helper()
	var n int64
	for _, suffix := range []string{"", "-wal", "-shm"} {
		if fi, err := os.Stat(filepath.Join(filepath.Dir(p.ScratchDir), "ledger.db"+suffix)); err == nil {
			n += fi.Size()
		}
	}
	return n
}

// listOf is an imsi-list of A's first n cards with new IMSIs from B's
// range.
func listOf(n int, date string) func(func(*native.Record) error) error {
	var recs []listRec
	for i := range n {
		recs = append(recs, listRec{iccid: "", imsi: "99999000000000" + string(rune('1'+i)), date: date})
	}
	return listRecords(recs)
}

// TestEmptyLinesAreNotRecords: a signed imsi-list of a million empty
// lines (a 2 KB file once compressed) yields no records and no answer
// lines, and the ledger barely grows; with limits.max_record_errors it is
// refused as a whole, answered and quarantined.
func TestEmptyLinesAreNotRecords(t *testing.T) {
	w, _, a, _ := setup3a(t, 1)
	blank := func(s string) string { return s + strings.Repeat("\n", 1_000_000) }
	before := ledgerBytes(t, a)
	answers := count(t, a, `SELECT COUNT(*) FROM batch_records`)
	res := w.process(a, "mno-b", &processor.IMSIList{SMSC: a.Partners["smsc"]}, w.sendEdited("MNOB", "MNOA", native.IMSIList, 0, listOf(0, ""), blank))
	if res.Status != ledger.FileDone || res.Counts.Records != 0 || res.Counts.Rejected != 0 {
		t.Fatalf("a million empty lines: %s %+v", res.Status, res.Counts)
	}
	if got := count(t, a, `SELECT COUNT(*) FROM batch_records`); got != answers {
		t.Errorf("%d batch records, was %d", got, answers)
	}
	if grown := ledgerBytes(t, a) - before; grown > 1<<20 {
		t.Errorf("the ledger grew by %d bytes", grown)
	}
	_, recs := w.readOutput(a, output(t, res.Outputs, "imsi-result"))
	if len(recs) != 0 {
		t.Errorf("the answer has %d records", len(recs))
	}

	a.Limits = native.Limits{MaxRecords: 100, MaxRecordErrors: 1000}
	path := w.sendEdited("MNOB", "MNOA", native.IMSIList, 0, listOf(0, ""), blank)
	refused(t, w, a, path, "too many records with problems: more than 1000", "(limits.max_record_errors)")
	if got := count(t, a, `SELECT COUNT(*) FROM batch_records`); got != answers {
		t.Errorf("%d batch records, was %d", got, answers)
	}
}

// refused processes path at A and checks that it was refused as a whole
// for a reason holding every want, quarantined, answered with the reason
// and that nothing of it was applied.
func refused(t *testing.T, w *world, a *processor.Party, path string, want ...string) {
	t.Helper()
	ctx := context.Background()
	cards := count(t, a, `SELECT COUNT(*) FROM cards WHERE state <> 'active'`)
	res, err := a.ProcessFile(ctx, &processor.IMSIList{SMSC: a.Partners["smsc"]}, processor.Input{Partner: a.Partners["mno-b"], Name: filepath.Base(path), Path: path, Job: "imsi-list"})
	var re *processor.RefusedError
	if !errors.As(err, &re) || res == nil || res.Status != ledger.FileQuarantined {
		t.Fatalf("not refused: %+v %v", res, err)
	}
	for _, s := range want {
		if !strings.Contains(res.Reason, s) {
			t.Errorf("reason %q does not say %q", res.Reason, s)
		}
	}
	f, err := a.Ledger.FileByID(ctx, res.FileID)
	if err != nil || f.Status != ledger.FileRefusing {
		t.Errorf("file %+v %v", f, err)
	}
	w.deliverAll(a, res.Outputs)
	h, recs := w.readOutput(a, output(t, res.Outputs, "imsi-result"))
	if h.Refused != res.Reason || len(recs) != 0 {
		t.Errorf("answer: refused %q, %d records", h.Refused, len(recs))
	}
	if got := count(t, a, `SELECT COUNT(*) FROM cards WHERE state <> 'active'`); got != cards {
		t.Errorf("cards changed: %d not active, was %d", got, cards)
	}
	if got := count(t, a, `SELECT COUNT(*) FROM ota_messages`); got != 0 {
		t.Errorf("%d messages", got)
	}
}

// TestMaxRecords: an imsi-list with one record more than
// limits.max_records is refused with the reason — before any record when
// its header says so, at the record past the limit when the header lies —
// and so is one with more records with problems than
// limits.max_record_errors.
func TestMaxRecords(t *testing.T) {
	w, f, a, _ := setup3a(t, 4)
	date := w.now.AddDate(0, 0, 1).Format("2006-01-02")
	var recs []listRec
	for i, c := range f.Cards {
		recs = append(recs, listRec{iccid: c.ICCID, imsi: "99999000000000" + string(rune('1'+i)), date: date})
	}
	a.Limits = native.Limits{MaxRecords: 3, MaxRecordErrors: 2}
	refused(t, w, a, w.send("MNOB", "MNOA", native.IMSIList, 4, false, "", listRecords(recs)),
		"quantity: too many records: the header announces 4, at most 3 are taken", "(limits.max_records)")
	lying := w.sendEdited("MNOB", "MNOA", native.IMSIList, 4, listRecords(recs), func(s string) string {
		return strings.Replace(s, "#quantity: 4", "#quantity: 3", 1)
	})
	refused(t, w, a, lying, "too many records: more than 3 (line 14 is record 4)", "(limits.max_records)")

	a.Limits.MaxRecords = 10
	for i := range recs[:3] {
		recs[i].date = "2026-13-01"
	}
	refused(t, w, a, w.send("MNOB", "MNOA", native.IMSIList, 4, false, "", listRecords(recs)),
		"too many records with problems: more than 2", "(limits.max_record_errors)")
}

// TestVendorFileLimits: the SIM vendor's file is bounded like a native
// one: more cards than limits.max_records refuse it before any card.
func TestVendorFileLimits(t *testing.T) {
	w := newWorld(t)
	a := w.party("MNOA", mustRanges(t, "001-01"), nil)
	w.partner(a, "vendor", "VENDOR", "manufacturer", "tk-va", nil, false)
	f, err := fleet.New(fleet.Options{N: 3, Seed: t.Name(), Profile: w.prof.OTA})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := f.WriteVendor(&buf, f.Cards, "MNOA", w.prof.Name, "VB-LIMIT"); err != nil {
		t.Fatal(err)
	}
	a.Limits = native.Limits{MaxRecords: 2}
	path := w.sendRaw("VENDOR", "MNOA", "VENDOR_VB-LIMIT.out.pgp", buf.String())
	res, err := a.ProcessFile(context.Background(), &processor.InventoryImport{Profile: w.prof.Name}, processor.Input{Partner: a.Partners["vendor"], Name: filepath.Base(path), Path: path, Job: "inventory"})
	var re *processor.RefusedError
	if !errors.As(err, &re) || res.Status != ledger.FileQuarantined {
		t.Fatalf("not refused: %+v %v", res, err)
	}
	if !strings.Contains(res.Reason, "too many records: the header announces 3, at most 2 are taken (limits.max_records)") {
		t.Errorf("reason %q", res.Reason)
	}
	if got := count(t, a, `SELECT COUNT(*) FROM cards`); got != 0 {
		t.Errorf("%d cards stored", got)
	}
}
