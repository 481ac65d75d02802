package processor_test

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"resub/formats/native"
	"resub/processor"
	"resub/processor/ledger"
	"resub/samples/fleet"
)

// preparedSwitchWorld is B with two donors and cards already here in
// states a request meets, and a switch request of n lines to it (not
// processed) that spans several pages: lines for either donor, lines
// rejected in the middle by the step (a past date, an unknown donor), by
// the stage (a card already moving, a repeated ICCID) and by the reader
// (a malformed ICCID). B logs at debug level into the buffer.
func preparedSwitchWorld(t *testing.T, n int) (*world, *processor.Party, string, *bytes.Buffer) {
	t.Helper()
	ctx := context.Background()
	w := newWorld(t)
	b := w.party("MNOB", mustRanges(t, "999-99:0000000000-0000099999"), []processor.Range{
		{Name: "b-one", From: "999990000000001", To: "999990000001500"},
		{Name: "b-two", From: "999990000010001", To: "999990000019999"},
	})
	w.partner(b, "m2m", "M2M", "m2m-operator", "", nil, false)
	w.partner(b, "mno-a", "MNOA", "operator", "tk-ab", mustRanges(t, "001-01"), false)
	w.partner(b, "mno-c", "MNOC", "operator", "tk-bc", mustRanges(t, "001-02"), false)
	var logs bytes.Buffer
	b.Log = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	f, err := fleet.New(fleet.Options{N: n, Seed: "switch-prepared"})
	if err != nil {
		t.Fatal(err)
	}
	c := f.Cards
	// Cards here already: moving (rejected), refused by their donor
	// before (requested again).
	if err := b.Ledger.InTx(ctx, func(tx *ledger.Tx) error {
		for i := 40; i < n; i += 211 {
			card := &ledger.Card{ICCID: c[i].ICCID, IMSI: c[i].IMSI, State: "requested", Owner: "M2M", Source: "MNOA"}
			if _, err := tx.InsertCard(ctx, card); err != nil {
				return err
			}
			if i%2 == 0 {
				if err := tx.Transition(ctx, card.ICCID, nil, "rejected", "test: earlier", "", nil); err != nil {
					return err
				}
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	future := w.now.AddDate(0, 0, 3).Format("2006-01-02")
	later := w.now.AddDate(0, 0, 9).Format("2006-01-02")
	past := w.now.AddDate(0, 0, -1).Format("2006-01-02")
	var lines [][3]string
	for i, card := range c {
		l := [3]string{card.ICCID, future, "MNOA"}
		switch {
		case i%3 == 1:
			l[2], l[1] = "MNOC", later
		case i%29 == 7:
			l[1] = past
		case i%31 == 9:
			l[2] = "ZZZZ"
		case i%37 == 11:
			bad := []byte(card.ICCID)
			bad[len(bad)-1] = '0' + (bad[len(bad)-1]-'0'+1)%10
			l[0] = string(bad)
		}
		lines = append(lines, l)
		if i%97 == 50 {
			lines = append(lines, l) // a repeat of the line just written
		}
	}
	file := w.send("M2M", "MNOB", native.SwitchRequest, len(lines), false, "", switchRecords(lines))
	return w, b, file, &logs
}

func switchStep(b *processor.Party) processor.FileStep {
	return &processor.SwitchRequest{Donor: b.Partners["mno-a"]}
}

// imsiLists is the text of each imsi-list among outs, by donor.
func imsiLists(t *testing.T, w *world, b *processor.Party, outs []*ledger.Output) map[string][]byte {
	t.Helper()
	m := map[string][]byte{}
	for _, o := range outs {
		if o.Type == native.IMSIList.Name {
			if _, ok := m[o.Partner]; ok {
				t.Fatalf("two imsi-lists for %s", o.Partner)
			}
			m[o.Partner] = w.plaintext(b, o)
		}
	}
	return m
}

// The imsi-list of each donor the switch request renders from its stage
// is byte for byte the one the ledger gives for the same batch (the
// renderer of a rerun): several pages, two donors, rejections of every
// kind in the middle, a range used up midway.
func TestSwitchRequestPreparedSameBytesAsLedger(t *testing.T) {
	const n = 2600 // three pages of answers
	w, b, file, logs := preparedSwitchWorld(t, n)
	res := w.process(b, "m2m", switchStep(b), file)
	if res.Counts.Accepted < n/2 || res.Counts.Rejected < n/20 {
		t.Fatalf("switch request: %+v", res.Counts)
	}
	if c := strings.Count(logs.String(), "imsi-list prepared"); c != 2 {
		t.Fatalf("%d imsi-lists rendered from the step's stage, want 2", c)
	}
	prepared := imsiLists(t, w, b, res.Outputs)
	if len(prepared) != 2 {
		t.Fatalf("imsi-lists for %d donors", len(prepared))
	}
	ctx := context.Background()
	job := ""
	for _, o := range res.Outputs {
		if o.Type != native.IMSIList.Name {
			continue
		}
		job = o.Job
		if err := b.Ledger.InTx(ctx, func(tx *ledger.Tx) error {
			_, err := tx.Exec(ctx, `UPDATE outputs SET state = ?, path = '' WHERE id = ?`, ledger.OutPlanned, o.ID)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		if err := os.Remove(o.Path); err != nil {
			t.Fatal(err)
		}
	}
	again, err := b.PendingOutputs(ctx, job)
	if err != nil {
		t.Fatal(err)
	}
	fromLedger := imsiLists(t, w, b, again)
	accepted := 0
	for donor, want := range prepared {
		got := fromLedger[donor]
		if !bytes.Equal(want, got) {
			t.Fatalf("the prepared imsi-list for %s (%d bytes) differs from the ledger's (%d bytes)\n%s", donor, len(want), len(got), firstDiff(want, got))
		}
		_, recs := w.readOutput(b, output(t, againFor(again, donor), native.IMSIList.Name))
		accepted += len(recs)
	}
	if accepted != res.Counts.Accepted {
		t.Fatalf("%d records in the imsi-lists, %d lines accepted", accepted, res.Counts.Accepted)
	}
}

// againFor is the outputs of outs for partner.
func againFor(outs []*ledger.Output, partner string) []*ledger.Output {
	var l []*ledger.Output
	for _, o := range outs {
		if o.Partner == partner {
			l = append(l, o)
		}
	}
	return l
}

// A run that stops after the switch request committed and before its
// imsi-lists were rendered renders them on the rerun from the ledger:
// one for each donor, byte for byte those of a run that was not
// interrupted, and nothing of the preparation left on disk.
func TestSwitchRequestRenderedOnceAfterCommit(t *testing.T) {
	const n = 1200
	w1, b1, file1, _ := preparedSwitchWorld(t, n)
	res := w1.process(b1, "m2m", switchStep(b1), file1)
	want := imsiLists(t, w1, b1, res.Outputs)
	if len(want) != 2 {
		t.Fatalf("imsi-lists for %d donors", len(want))
	}

	w, b, file, logs := preparedSwitchWorld(t, n)
	outDir := b.OutDir
	blocker := filepath.Join(t.TempDir(), "not-a-folder")
	if err := os.WriteFile(blocker, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	b.OutDir = filepath.Join(blocker, "out")
	ctx := context.Background()
	in := processor.Input{Partner: b.Partners["m2m"], Name: filepath.Base(file), Path: file, Job: "m2m-" + native.SwitchRequest.Name}
	if _, err := b.ProcessFile(ctx, switchStep(b), in); err == nil {
		t.Fatal("the outputs were rendered into a file's place")
	}
	if c := strings.Count(logs.String(), "imsi-list prepared"); c != 2 {
		t.Fatalf("the interrupted run prepared %d imsi-lists, want 2", c)
	}
	if entries, err := os.ReadDir(b.ScratchDir); err != nil || len(entries) != 0 {
		t.Fatalf("scratch folder after the interrupted run: %d entries, %v", len(entries), err)
	}
	b.OutDir = outDir
	res, err := b.ProcessFile(ctx, switchStep(b), in)
	if err != nil {
		t.Fatal(err)
	}
	if c := strings.Count(logs.String(), "imsi-list prepared"); c != 2 {
		t.Fatalf("the rerun prepared the imsi-lists again (%d in all)", c)
	}
	got := imsiLists(t, w, b, res.Outputs)
	for donor, wantBytes := range want {
		if !bytes.Equal(got[donor], wantBytes) {
			t.Fatalf("the rerun's imsi-list for %s (%d bytes) differs from an uninterrupted run's (%d bytes)\n%s", donor, len(got[donor]), len(wantBytes), firstDiff(got[donor], wantBytes))
		}
	}
	if c := countRows(t, b, `SELECT COUNT(*) FROM outputs WHERE type = 'imsi-list'`); c != 2 {
		t.Fatalf("%d imsi-list outputs in the ledger", c)
	}
	w.deliverAll(b, res.Outputs)
}
