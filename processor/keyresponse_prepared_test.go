package processor_test

import (
	"bytes"
	"context"
	"fmt"
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

// keyPagesWorld is a key world of n cards waiting for the manufacturer's
// pairs at index 2, from two donors (every fifth card from MNOC), some
// not waiting (active here) and some unknown here, and the
// manufacturer's answer about each (not processed): pairs released with
// and without a key set and its cipher, one without an OPc, refusals,
// another index than the card's, a Ki of a length Milenage does not
// take, repeats of a line and lines the reader rejects in the middle. B
// logs at debug level into the buffer.
func keyPagesWorld(t *testing.T, n int) (*keyWorld, string, *bytes.Buffer) {
	t.Helper()
	ctx := context.Background()
	w, b, prof := keyParty(t)
	var logs bytes.Buffer
	b.Log = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	f, err := fleet.Plan(fleet.Options{N: n, Seed: "key-pages"})
	if err != nil {
		t.Fatal(err)
	}
	err = b.Ledger.InTx(ctx, func(tx *ledger.Tx) error {
		in := tx.Inserter("cards", []string{"iccid", "imsi", "msisdn", "state", "profile", "owner", "source", "key_index", "list_length", "created_at", "updated_at"}, 64)
		for i := range n {
			if i%29 == 3 {
				continue // unknown here
			}
			state, source := "incoming", "MNOA"
			if i%23 == 7 {
				state = ledger.CardActive
			}
			if i%5 == 2 {
				source = "MNOC"
			}
			c := f.Card(i)
			if err := in.Add(ctx, c.ICCID, fmt.Sprintf("99999%010d", i), c.MSISDN, state, prof.Name, "M2M", source, 2, 3, "2026-01-01T00:00:00Z", "2026-01-01T00:00:00Z"); err != nil {
				return err
			}
		}
		if err := in.Flush(ctx); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `INSERT INTO imsi_allocations (imsi, iccid, state, ref, created_at, updated_at)
			SELECT imsi, iccid, 'pending', 'earlier', created_at, updated_at FROM cards`)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	rel := native.StatusReleased
	var lines []keyLine
	for i := range n {
		c := f.Card(i)
		l := keyLine{iccid: c.ICCID, index: "2", status: rel, ki: 16, kic: 16, kvn: "1", otaAlg: "aes-128"}
		switch {
		case i%11 == 5:
			l = keyLine{iccid: c.ICCID, index: "2", status: native.StatusRefused, reason: "NOT_AUTHORISED"}
		case i%13 == 6:
			l.index = "3"
		case i%17 == 8:
			l.ki = 8
		case i%19 == 9:
			l.kvn, l.kic = "", 0
		case i%31 == 4:
			l.otaAlg = "" // the card's profile implies it
		case i%37 == 1:
			l.noOPc = true
		}
		lines = append(lines, l)
		switch {
		case i%97 == 50:
			lines = append(lines, l)
		case i%101 == 60:
			bad := []byte(c.ICCID)
			bad[len(bad)-1] = '0' + (bad[len(bad)-1]-'0'+1)%10
			lines = append(lines, keyLine{iccid: string(bad), index: "2", status: rel, ki: 16})
		}
	}
	x := &keyWorld{world: w, b: b}
	return x, x.send(lines), &logs
}

func keyStep(b *processor.Party) processor.FileStep {
	return &processor.KeyResponseIntake{HLR: b.Partners["hlr"]}
}

// keyOutputs are the outputs of a key-response by type and partner.
func keyOutputs(t *testing.T, outs []*ledger.Output) map[string]*ledger.Output {
	t.Helper()
	m := map[string]*ledger.Output{}
	for _, o := range outs {
		k := o.Type + " " + o.Partner
		if m[k] != nil {
			t.Fatalf("two %s outputs", k)
		}
		m[k] = o
	}
	return m
}

// rerenderAll renders every output of outs again from the ledger, as a
// rerun would, and returns them by type and partner.
func rerenderAll(t *testing.T, p *processor.Party, outs []*ledger.Output) map[string]*ledger.Output {
	t.Helper()
	ctx := context.Background()
	for _, o := range outs {
		if err := p.Ledger.InTx(ctx, func(tx *ledger.Tx) error {
			_, err := tx.Exec(ctx, `UPDATE outputs SET state = ?, path = '' WHERE id = ?`, ledger.OutPlanned, o.ID)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		if err := os.Remove(o.Path); err != nil {
			t.Fatal(err)
		}
	}
	again, err := p.PendingOutputs(ctx, outs[0].Job)
	if err != nil {
		t.Fatal(err)
	}
	return keyOutputs(t, again)
}

// keyOutputsWant are the outputs a key pages world's answer gives.
var keyOutputsWant = []string{"handover-ack mno-a", "handover-ack mno-c", "provisioning hlr"}

// The acknowledgements to both donors and the provisioning file the
// key-response intake renders from its stage are byte for byte those the
// ledger gives for the same batch (the renderers of every other batch,
// and of this one on a rerun): several pages, lines of every kind in the
// middle.
func TestKeyResponsePreparedSameBytesAsLedger(t *testing.T) {
	const n = 2600 // three pages of cards
	x, file, logs := keyPagesWorld(t, n)
	b := x.b
	res := x.process(b, "mfr", keyStep(b), file)
	if res.Counts.Accepted < n/2 || res.Counts.Rejected < n/10 {
		t.Fatalf("key-response: %+v", res.Counts)
	}
	if got := strings.Count(logs.String(), "handover-ack prepared"); got != 2 {
		t.Fatalf("%d acknowledgements rendered from the step's stage, want 2", got)
	}
	if !strings.Contains(logs.String(), "provisioning prepared") {
		t.Fatal("the provisioning file was not rendered from the step's stage")
	}
	outs := keyOutputs(t, res.Outputs)
	if len(outs) != len(keyOutputsWant) {
		t.Fatalf("outputs %v", outs)
	}
	prepared := map[string][]byte{}
	for _, k := range keyOutputsWant {
		if outs[k] == nil {
			t.Fatalf("no %s", k)
		}
		prepared[k] = x.plaintext(b, outs[k])
	}
	again := rerenderAll(t, b, res.Outputs)
	for _, k := range keyOutputsWant {
		got := x.plaintext(b, again[k])
		if !bytes.Equal(prepared[k], got) {
			t.Fatalf("the prepared %s (%d bytes) differs from the ledger's (%d bytes)\n%s", k, len(prepared[k]), len(got), firstDiff(prepared[k], got))
		}
	}
	// What the files say agrees with the counts: every taken card
	// provisioned and acknowledged, every rejection with an answer
	// acknowledged (the reader's go to no donor), the rest unanswered.
	_, provs := x.readOutput(b, again["provisioning hlr"])
	var provisioned, rejected int
	for _, k := range keyOutputsWant[:2] {
		_, acks := x.readOutput(b, again[k])
		for _, r := range acks {
			switch r.Get(native.FieldStatus) {
			case native.StatusProvisioned:
				provisioned++
			case "rejected":
				rejected++
			}
		}
		for _, reason := range []string{processor.ReasonKeyIndex, processor.ReasonInvalid} {
			if !ackHas(acks, reason) {
				t.Errorf("%s: no line rejected with %s", k, reason)
			}
		}
	}
	readerRejected := countRows(t, b, fmt.Sprintf(`SELECT COUNT(*) FROM batch_records WHERE batch_id = %d AND partner = 'mfr'`, res.BatchID))
	if provisioned != res.Counts.Accepted || len(provs) != provisioned || readerRejected == 0 || rejected+readerRejected >= res.Counts.Rejected {
		t.Fatalf("acks: %d provisioned, %d rejected; %d provisioning records; %d rejected by the reader; counts %+v",
			provisioned, rejected, len(provs), readerRejected, res.Counts)
	}
	noOPc := 0
	for _, r := range provs {
		if r.Get(native.FieldOPc) == "" {
			noOPc++
		}
	}
	if noOPc == 0 {
		t.Error("no card provisioned without an OPc")
	}
}

// A run that stops after the key-response committed and before its
// outputs were rendered renders them on the rerun from the ledger: each
// once, byte for byte those of a run that was not interrupted, and no
// spill left behind.
func TestKeyResponseRenderedOnceAfterCommit(t *testing.T) {
	const n = 1200
	x1, file1, _ := keyPagesWorld(t, n)
	res := x1.process(x1.b, "mfr", keyStep(x1.b), file1)
	want := map[string][]byte{}
	for k, o := range keyOutputs(t, res.Outputs) {
		want[k] = ownKeysOut(t, x1.b, o.Type, x1.plaintext(x1.b, o))
	}
	if len(want) != len(keyOutputsWant) {
		t.Fatalf("outputs of the uninterrupted run: %v", res.Outputs)
	}

	x, file, logs := keyPagesWorld(t, n)
	b := x.b
	outDir := b.OutDir
	blocker := filepath.Join(t.TempDir(), "not-a-folder")
	if err := os.WriteFile(blocker, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	b.OutDir = filepath.Join(blocker, "out")
	ctx := context.Background()
	in := processor.Input{Partner: b.Partners["mfr"], Name: filepath.Base(file), Path: file, Job: "mfr-key-response"}
	if _, err := b.ProcessFile(ctx, keyStep(b), in); err == nil {
		t.Fatal("the outputs were rendered into a file's place")
	}
	for _, typ := range []string{"handover-ack", "provisioning"} {
		if !strings.Contains(logs.String(), typ+" prepared") {
			t.Fatalf("the interrupted run did not prepare the %s", typ)
		}
	}
	if entries, err := os.ReadDir(b.ScratchDir); err != nil || len(entries) != 0 {
		t.Fatalf("scratch folder after the interrupted run: %d entries, %v", len(entries), err)
	}
	taken := countRows(t, b, `SELECT COUNT(*) FROM card_secrets`)
	b.OutDir = outDir
	res, err := b.ProcessFile(ctx, keyStep(b), in)
	if err != nil {
		t.Fatal(err)
	}
	got := keyOutputs(t, res.Outputs)
	for k, wantBytes := range want {
		o := got[k]
		if o == nil {
			t.Fatalf("no %s after the rerun", k)
		}
		if text := ownKeysOut(t, b, o.Type, x.plaintext(b, o)); !bytes.Equal(text, wantBytes) {
			t.Fatalf("the rerun's %s (%d bytes) differs from an uninterrupted run's (%d bytes)\n%s", k, len(text), len(wantBytes), firstDiff(text, wantBytes))
		}
	}
	for typ, c := range map[string]int{"handover-ack": 2, "provisioning": 1} {
		if got := countRows(t, b, `SELECT COUNT(*) FROM outputs WHERE type = '`+typ+`'`); got != c {
			t.Fatalf("%d %s outputs in the ledger, want %d", got, typ, c)
		}
	}
	if after := countRows(t, b, `SELECT COUNT(*) FROM card_secrets`); after != taken {
		t.Fatalf("the rerun changed the secrets: %d, then %d", taken, after)
	}
	x.deliverAll(b, res.Outputs)
}

// A card B takes a pair for a second time at the same index (sent back to
// wait for its keys), the second answer without an OPc: B's ledger keeps
// the OPc of the first. The provisioning file from the stage is still the
// ledger's, byte for byte, and the HLR gets the new Ki with the OPc kept.
func TestKeyResponsePreparedCardSeenBefore(t *testing.T) {
	ctx := context.Background()
	f, err := fleet.New(fleet.Options{N: 14, Seed: "key-prepared-again"})
	if err != nil {
		t.Fatal(err)
	}
	c := f.Cards
	x := newKeyWorld(t, c, func(int) string { return "MNOA" })
	b := x.b
	var logs bytes.Buffer
	b.Log = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	rel := native.StatusReleased
	res := x.process(b, "mfr", keyStep(b), x.send([]keyLine{{iccid: c[0].ICCID, index: "2", status: rel, ki: 16, kic: 16, kvn: "1", otaAlg: "aes-128"}}))
	if res.Counts.Accepted != 1 {
		t.Fatalf("first answer: %+v", res.Counts)
	}
	if err := b.Ledger.InTx(ctx, func(tx *ledger.Tx) error {
		return tx.Transition(ctx, c[0].ICCID, []string{ledger.CardActive}, "incoming", "test: keys asked again", "", nil)
	}); err != nil {
		t.Fatal(err)
	}
	res = x.process(b, "mfr", keyStep(b), x.send([]keyLine{
		{iccid: c[1].ICCID, index: "2", status: rel, ki: 16, kic: 16, kvn: "1", otaAlg: "aes-128"},
		{iccid: c[0].ICCID, index: "2", status: rel, ki: 16, kic: 16, kvn: "1", otaAlg: "aes-128", noOPc: true},
	}))
	if res.Counts.Accepted != 2 || res.Counts.Rejected != 0 {
		t.Fatalf("second answer: %+v", res.Counts)
	}
	if strings.Count(logs.String(), "provisioning prepared") != 2 {
		t.Fatal("the provisioning files were not rendered from the step's stage")
	}
	prov := output(t, res.Outputs, "provisioning")
	prepared := x.plaintext(b, prov)
	again := rerender(t, b, res.Outputs, "provisioning")["provisioning"]
	if got := x.plaintext(b, again); !bytes.Equal(prepared, got) {
		t.Fatalf("the prepared provisioning differs from the ledger's\n%s", firstDiff(prepared, got))
	}
	_, recs := x.readOutput(b, again)
	if len(recs) != 2 || recs[1].Get(native.FieldICCID) != c[0].ICCID {
		t.Fatalf("%d provisioning records", len(recs))
	}
	// keyRecords' bytes: seed*31 + byte index + line index.
	seq := func(seed, line int) []byte {
		v := make([]byte, 16)
		for i := range v {
			v[i] = byte(seed*31 + i + line)
		}
		return v
	}
	hlr := b.Partners["hlr"].Transport
	ki, err := hlr.Unwrap(recs[1].Get(native.FieldKi))
	if err != nil || !bytes.Equal(ki, seq(1, 1)) {
		t.Errorf("Ki %x, %v: want the second answer's", ki, err)
	}
	opc, err := hlr.Unwrap(recs[1].Get(native.FieldOPc))
	if err != nil || !bytes.Equal(opc, seq(2, 0)) {
		t.Errorf("OPc %x, %v: want the first answer's", opc, err)
	}
}
