package processor_test

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"resub/formats/native"
	"resub/processor"
	"resub/processor/ledger"
	"resub/samples/fleet"
)

// imsiListWorld runs a fleet of n cards up to A's imsi-list step (not
// run): A's authorisation and B's switch request, the cut-over a day
// ahead (every message gets a not-before), the SMSC's per-night cap below
// the fleet, the reset sent with the update (two messages a card), one
// card in the middle not authorised (its line rejected between accepted
// ones). It returns the world, A, and B's imsi-list for A; A logs at
// debug level into the buffer.
func imsiListWorld(t *testing.T, n int) (*world, *processor.Party, string, *bytes.Buffer) {
	w, f, a, b := setup3a(t, n)
	a.Partners["mno-b"].Policy.ResetWithUpdate = true
	a.Partners["smsc"].Policy.PerNightCap = n / 2
	var logs bytes.Buffer
	a.Log = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	cut := w.now.AddDate(0, 0, 1)
	authorised := append(append([]*fleet.Card{}, f.Cards[:n/3]...), f.Cards[n/3+1:]...)
	w.process(a, "m2m", processor.Authorisation{}, w.send("M2M", "MNOA", native.SwitchAuthorisation, n-1, false, "", fleet.AuthorisationRecords(authorised, "MNOB", cut)))
	res := w.process(b, "m2m", &processor.SwitchRequest{Donor: b.Partners["mno-a"]}, w.send("M2M", "MNOB", native.SwitchRequest, n, false, "", fleet.SwitchRequestRecords(f.Cards, "MNOA", cut)))
	return w, a, output(t, res.Outputs, "imsi-list").Path, &logs
}

// The ota-batch the imsi-list step renders from its own stage, as it
// queues the messages, is byte for byte the file the ledger gives for the
// same batch (the renderer of every other batch, and of this one on a
// rerun): several pages, two messages a card, per-night cap and cut-over
// not-befores included.
func TestOTABatchPreparedSameBytesAsLedger(t *testing.T) {
	const n = 1500 // two messages a card: three pages of messages
	w, a, list, logs := imsiListWorld(t, n)
	res := w.process(a, "mno-b", &processor.IMSIList{SMSC: a.Partners["smsc"]}, list)
	if res.Counts.Messages != 2*(n-1) || res.Counts.Rejected != 1 {
		t.Fatalf("imsi-list at A: %+v", res.Counts)
	}
	if !strings.Contains(logs.String(), "ota-batch prepared") {
		t.Fatal("the ota-batch was not rendered from the step's stage")
	}
	o := output(t, res.Outputs, "ota-batch")
	prepared, err := os.ReadFile(o.Path)
	if err != nil {
		t.Fatal(err)
	}
	// The same output rendered again, from the ledger.
	ctx := context.Background()
	if err := a.Ledger.InTx(ctx, func(tx *ledger.Tx) error {
		_, err := tx.Exec(ctx, `UPDATE outputs SET state = ?, path = '' WHERE id = ?`, ledger.OutPlanned, o.ID)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(o.Path); err != nil {
		t.Fatal(err)
	}
	outs, err := a.PendingOutputs(ctx, o.Job)
	if err != nil {
		t.Fatal(err)
	}
	again := output(t, outs, "ota-batch")
	fromLedger, err := os.ReadFile(again.Path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(prepared, fromLedger) {
		t.Fatalf("the prepared ota-batch (%d bytes) differs from the ledger's (%d bytes)\n%s", len(prepared), len(fromLedger), firstDiff(prepared, fromLedger))
	}
	h, recs := w.readOutput(a, again)
	if len(recs) != 2*(n-1) || h.MaxRate != w.prof.Rate || h.Window == "" {
		t.Fatalf("ota-batch: %d records, rate %d, window %q", len(recs), h.MaxRate, h.Window)
	}
	for i, r := range recs {
		if r.Get(native.FieldNotBefore) == "" {
			t.Fatalf("record %d has no not-before", i)
		}
	}
	noCounterReuse(t, a)

	// The ids the stage handed out are taken: the ledger's next message
	// gets a later one.
	var last, next int64
	if err := a.Ledger.QueryRow(ctx, `SELECT MAX(id) FROM ota_messages`).Scan(&last); err != nil {
		t.Fatal(err)
	}
	err = a.Ledger.InTx(ctx, func(tx *ledger.Tx) error {
		var err error
		next, err = tx.InsertMessage(ctx, &ledger.Message{ICCID: recs[0].Get(native.FieldICCID), BatchID: 0, Kind: "probe", KVN: 1, Counter: 1 << 30,
			TAR: "b00011", MSISDN: recs[0].Get(native.FieldMSISDN), State: ledger.MsgReserved})
		return err
	})
	if err != nil || next <= last {
		t.Fatalf("a message after the batch: id %d (the batch's last %d), %v", next, last, err)
	}
}

// A run that stops after the step committed and before its outputs were
// rendered renders them on the rerun from the ledger (the step's
// preparation is gone with the run): the same ota-batch, byte for byte, as
// a run that was not interrupted, and one file of it.
func TestOTABatchRenderedOnceAfterCommit(t *testing.T) {
	const n = 1500
	w1, a1, list1, _ := imsiListWorld(t, n)
	res := w1.process(a1, "mno-b", &processor.IMSIList{SMSC: a1.Partners["smsc"]}, list1)
	want, err := os.ReadFile(output(t, res.Outputs, "ota-batch").Path)
	if err != nil {
		t.Fatal(err)
	}

	w, a, list, logs := imsiListWorld(t, n)
	// The outputs cannot be written: the work commits, the render fails.
	outDir := a.OutDir
	blocker := filepath.Join(t.TempDir(), "not-a-folder")
	if err := os.WriteFile(blocker, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	a.OutDir = filepath.Join(blocker, "out")
	ctx := context.Background()
	in := processor.Input{Partner: a.Partners["mno-b"], Name: filepath.Base(list), Path: list, Job: "mno-b-imsi-list"}
	if _, err := a.ProcessFile(ctx, &processor.IMSIList{SMSC: a.Partners["smsc"]}, in); err == nil {
		t.Fatal("the outputs were rendered into a file's place")
	}
	if !strings.Contains(logs.String(), "ota-batch prepared") {
		t.Fatal("the interrupted run did not prepare the ota-batch")
	}
	if got := countRows(t, a, `SELECT COUNT(*) FROM ota_messages`); got != 2*(n-1) {
		t.Fatalf("%d messages after the interrupted run, want %d", got, 2*(n-1))
	}
	a.OutDir = outDir
	res, err = a.ProcessFile(ctx, &processor.IMSIList{SMSC: a.Partners["smsc"]}, in)
	if err != nil {
		t.Fatal(err)
	}
	var batches []*ledger.Output
	for _, o := range res.Outputs {
		if o.Type == native.OTABatch.Name {
			batches = append(batches, o)
		}
	}
	if len(batches) != 1 {
		t.Fatalf("%d ota-batch outputs after the rerun", len(batches))
	}
	got, err := os.ReadFile(batches[0].Path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("the rerun's ota-batch (%d bytes) differs from an uninterrupted run's (%d bytes)\n%s", len(got), len(want), firstDiff(got, want))
	}
	w.deliverAll(a, res.Outputs)
	if got := countRows(t, a, `SELECT COUNT(*) FROM ota_messages`); got != 2*(n-1) {
		t.Fatalf("%d messages after the rerun, want %d", got, 2*(n-1))
	}
	if got := countRows(t, a, `SELECT COUNT(*) FROM outputs WHERE type = 'ota-batch'`); got != 1 {
		t.Fatalf("%d ota-batch outputs in the ledger", got)
	}
	noCounterReuse(t, a)
}

func countRows(t *testing.T, p *processor.Party, query string) int {
	t.Helper()
	var n int
	if err := p.Ledger.QueryRow(context.Background(), query).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// firstDiff shows where two files part.
func firstDiff(a, b []byte) string {
	i := 0
	for i < len(a) && i < len(b) && a[i] == b[i] {
		i++
	}
	from := max(0, i-80)
	return "at byte " + strconv.Itoa(i) + ":\n" + string(a[from:min(len(a), i+80)]) + "\n---\n" + string(b[from:min(len(b), i+80)])
}
