package processor_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"resub/crypto/pgp"
	"resub/formats/native"
	"resub/processor"
	"resub/processor/ledger"
	"resub/samples/fleet"
)

// intakeB is B with n cards requested from A, ready for A's handover.
type intakeB struct {
	w      *world
	b      *processor.Party
	cards  []*fleet.Card
	imsi   map[string]string // B's new IMSI of each card
	prof3b *processor.Profile
	logs   *bytes.Buffer // B's log, at debug level
	tk     processor.Transport
}

func newIntakeB(t *testing.T, n int) *intakeB {
	ctx := context.Background()
	w := newWorld(t)
	b := w.party("MNOB", mustRanges(t, "999-99:0000000000-0000099999"), []processor.Range{{Name: "b-main", From: "999990000000001", To: "999990000099999"}})
	prof3b := profile3b(t, "usim-3b", true)
	b.Profiles[prof3b.Name] = prof3b
	w.partner(b, "m2m", "M2M", "m2m-operator", "", nil, false)
	w.partner(b, "mno-a", "MNOA", "operator", "tk-ab", mustRanges(t, "001-01"), false)
	w.partner(b, "hlr", "HLRB", "hlr", "tk-aucb", nil, true)
	w.partner(b, "mfr", "MFR", "manufacturer", "tk-mb", nil, false)
	var logs bytes.Buffer
	b.Log = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	f, err := fleet.New(fleet.Options{N: n, Seed: "intake-prepared", Profile: w.prof.OTA})
	if err != nil {
		t.Fatal(err)
	}
	res := w.process(b, "m2m", &processor.SwitchRequest{Donor: b.Partners["mno-a"]}, w.send("M2M", "MNOB", native.SwitchRequest, n, false, "", fleet.SwitchRequestRecords(f.Cards, "MNOA", w.now.AddDate(0, 0, 1))))
	if res.Counts.Accepted != n {
		t.Fatalf("switch request: %+v", res.Counts)
	}
	ib := &intakeB{w: w, b: b, cards: f.Cards, imsi: map[string]string{}, prof3b: prof3b, logs: &logs, tk: processor.NewTransport(w.tks["tk-ab"])}
	for _, c := range f.Cards {
		bc, err := b.Ledger.Card(ctx, c.ICCID)
		if err != nil {
			t.Fatal(err)
		}
		ib.imsi[c.ICCID] = bc.IMSI
	}
	return ib
}

func (ib *intakeB) wrap(v []byte) string {
	s, err := ib.tk.Wrap(v)
	if err != nil {
		ib.w.t.Fatal(err)
	}
	return s
}

// rec3a is card i's 3a handover record, counter i.
func (ib *intakeB) rec3a(i int) handRec {
	c := ib.cards[i]
	ks := c.Keys(1)
	return handRec{native.FieldKind: native.Kind3a, native.FieldICCID: c.ICCID, native.FieldIMSI: ib.imsi[c.ICCID], native.FieldMSISDN: c.MSISDN,
		native.FieldKi: ib.wrap(c.Ki(1)), native.FieldOPc: ib.wrap(c.OPc), native.FieldAlgorithm: "milenage",
		native.FieldKVN: strconv.Itoa(c.KVN), native.FieldOTAAlg: "aes", native.FieldKIc: ib.wrap(ks.KIc), native.FieldKID: ib.wrap(ks.KID), native.FieldKIK: ib.wrap(ks.KIK),
		native.FieldCounter: strconv.Itoa(i), native.FieldProfile: ib.w.prof.Name}
}

// rec3b is card i's 3b handover record.
func (ib *intakeB) rec3b(i int) handRec {
	c := ib.cards[i]
	return handRec{native.FieldKind: native.Kind3b, native.FieldICCID: c.ICCID, native.FieldIMSI: ib.imsi[c.ICCID], native.FieldMSISDN: c.MSISDN,
		native.FieldProfile: ib.prof3b.Name, native.FieldKeyIndex: "2", native.FieldKeyListLength: "3", native.FieldCounterRule: "continue"}
}

// handover is A's handover of recs to B, an hour later.
func (ib *intakeB) handover(recs []handRec) string {
	ib.w.now = ib.w.now.Add(3600e9)
	return ib.w.send("MNOA", "MNOB", native.Handover, len(recs), false, "tk-ab", handRecords(recs))
}

// intakeWorld sets up B with n cards requested from A and A's handover of
// them (not processed): 3a records with 3b ones among them, lines
// rejected in the middle by the stage's rules (another IMSI, a Ki that
// does not unwrap, an unknown profile), by the reader (a malformed
// record) and outside the stage (a cancel of a card we never asked for),
// and repeats of earlier lines. B logs at debug level into the buffer.
func intakeWorld(t *testing.T, n int) (*world, *processor.Party, string, *bytes.Buffer) {
	ib := newIntakeB(t, n)
	strangers, err := fleet.New(fleet.Options{N: 1, ICCIDBody: "8999907", Seed: "stranger-prepared"})
	if err != nil {
		t.Fatal(err)
	}
	var recs []handRec
	for i := range ib.cards {
		var h handRec
		if i%13 == 6 {
			h = ib.rec3b(i)
			if i%26 == 19 {
				h[native.FieldCounterRule] = "sometimes" // the reader's rejection
			}
		} else {
			h = ib.rec3a(i)
			switch {
			case i%7 == 3:
				h[native.FieldIMSI] = fmt.Sprintf("9999900001%05d", i)
			case i%11 == 5:
				h[native.FieldKi] = "tk-ab:" + strings.Repeat("00", 24)
			case i%17 == 8:
				h[native.FieldProfile] = "nope"
			}
		}
		recs = append(recs, h)
		switch {
		case i%97 == 50:
			// A repeat of the line just written.
			recs = append(recs, h)
		case i%101 == 60:
			recs = append(recs, handRec{native.FieldKind: native.KindCancel, native.FieldICCID: strangers.Cards[0].ICCID})
		}
	}
	return ib.w, ib.b, ib.handover(recs), ib.logs
}

func intakeStep(b *processor.Party) processor.FileStep {
	return &processor.HandoverIntake{HLR: b.Partners["hlr"], Manufacturer: b.Partners["mfr"]}
}

// rerender renders the outputs of types again from the ledger, as a rerun
// would, and returns them by type.
func rerender(t *testing.T, p *processor.Party, outs []*ledger.Output, types ...string) map[string]*ledger.Output {
	t.Helper()
	ctx := context.Background()
	job := ""
	for _, typ := range types {
		o := output(t, outs, typ)
		job = o.Job
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
	again, err := p.PendingOutputs(ctx, job)
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]*ledger.Output{}
	for _, typ := range types {
		m[typ] = output(t, again, typ)
	}
	return m
}

// plaintext is the text of output o of party p as its partner reads it:
// the PGP layer (its session key is new every time) opened and verified.
func (w *world) plaintext(p *processor.Party, o *ledger.Output) []byte {
	w.t.Helper()
	pt := p.Partners[o.Partner]
	if pt.PGPOff {
		return readFile(w.t, o.Path)
	}
	open := func() (io.ReadCloser, error) { return os.Open(o.Path) }
	v, err := pgp.Open(open, pgp.DecryptOptions{Keys: []*pgp.Key{w.keys[pt.Code]}, Signers: []*pgp.Key{w.keys[p.Name].Public()},
		Now: func() time.Time { return w.now }})
	if err != nil {
		w.t.Fatalf("%s: %v", o.Path, err)
	}
	rc, err := v.Plaintext()
	if err != nil {
		w.t.Fatal(err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		w.t.Fatal(err)
	}
	return b
}

func readFile(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// The provisioning file, the acknowledgement and the key request (of the
// 3b lines) the intake renders from its stage are byte for byte those the
// ledger gives for the same batch (the renderers of the key response, and
// of the intake on a rerun): several pages, 3a and 3b lines, rejections
// of every kind in the middle, repeats.
func TestHandoverIntakePreparedSameBytesAsLedger(t *testing.T) {
	const n = 2600 // three pages of cards
	w, b, file, logs := intakeWorld(t, n)
	res := w.process(b, "mno-a", intakeStep(b), file)
	if res.Counts.Accepted == 0 || res.Counts.Rejected < n/5 {
		t.Fatalf("intake: %+v", res.Counts)
	}
	types := []string{"handover-ack", "provisioning", "key-request"}
	prepared := map[string][]byte{}
	for _, typ := range types {
		if !strings.Contains(logs.String(), typ+" prepared") {
			t.Fatalf("the %s was not rendered from the step's stage", typ)
		}
		prepared[typ] = w.plaintext(b, output(t, res.Outputs, typ))
	}
	again := rerender(t, b, res.Outputs, types...)
	for typ, o := range again {
		got := w.plaintext(b, o)
		if !bytes.Equal(prepared[typ], got) {
			t.Fatalf("the prepared %s (%d bytes) differs from the ledger's (%d bytes)\n%s", typ, len(prepared[typ]), len(got), firstDiff(prepared[typ], got))
		}
	}
	_, acks := w.readOutput(b, again["handover-ack"])
	_, provs := w.readOutput(b, again["provisioning"])
	_, reqs := w.readOutput(b, again["key-request"])
	var rejected, provisioned, requested int
	for _, r := range acks {
		switch r.Get(native.FieldStatus) {
		case native.StatusProvisioned:
			provisioned++
		case "rejected":
			rejected++
		}
	}
	requested = countRows(t, b, `SELECT COUNT(*) FROM batch_records WHERE status = 'requested' AND batch_id = `+strconv.FormatInt(res.BatchID, 10))
	if provisioned != len(provs) || rejected != res.Counts.Rejected || provisioned+requested != res.Counts.Accepted || requested == 0 || len(reqs) != requested {
		t.Fatalf("ack: %d provisioned, %d rejected; %d provisioning records, %d requested, %d key requests; counts %+v",
			provisioned, rejected, len(provs), requested, len(reqs), res.Counts)
	}
	for _, reason := range []string{processor.ReasonDuplicate, processor.ReasonUnknownICCID, processor.ReasonInvalid, processor.ReasonProvisioning} {
		if !ackHas(acks, reason) {
			t.Errorf("no ack line rejected with %s", reason)
		}
	}
}

// ownKeysOut is the text of an output of party p of type typ without
// what differs from one test world to another: the input's checksum, the
// check value of the HLR's transport key, and the Ki and OPc wrapped
// under it (unwrapped, in hex).
func ownKeysOut(t *testing.T, p *processor.Party, typ string, text []byte) []byte {
	t.Helper()
	var out []byte
	for line := range bytes.Lines(text) {
		switch {
		case bytes.HasPrefix(line, []byte("#in-reply-to-sha256:")), bytes.HasPrefix(line, []byte("#transport-kcv:")):
			continue
		case typ == "provisioning" && !bytes.HasPrefix(line, []byte("#")) && !bytes.HasPrefix(line, []byte("iccid|")):
			f := strings.Split(strings.TrimSuffix(string(line), "\n"), "|")
			for _, i := range []int{3, 4} {
				if f[i] == "" {
					continue
				}
				plain, err := p.Partners["hlr"].Transport.Unwrap(f[i])
				if err != nil {
					t.Fatalf("provisioning field %d: %v", i, err)
				}
				f[i] = hex.EncodeToString(plain)
			}
			line = []byte(strings.Join(f, "|") + "\n")
		}
		out = append(out, line...)
	}
	return out
}

func ackHas(acks []*native.Record, reason string) bool {
	for _, r := range acks {
		if r.Get(native.FieldReason) == reason {
			return true
		}
	}
	return false
}

// A run that stops after the intake committed and before its outputs
// were rendered renders them on the rerun from the ledger: one
// provisioning file and one acknowledgement, byte for byte those of a run
// that was not interrupted.
func TestHandoverIntakeRenderedOnceAfterCommit(t *testing.T) {
	const n = 1200
	w1, b1, file1, _ := intakeWorld(t, n)
	res := w1.process(b1, "mno-a", intakeStep(b1), file1)
	want := map[string][]byte{}
	for _, typ := range []string{"handover-ack", "provisioning", "key-request"} {
		want[typ] = ownKeysOut(t, b1, typ, w1.plaintext(b1, output(t, res.Outputs, typ)))
	}

	w, b, file, logs := intakeWorld(t, n)
	outDir := b.OutDir
	blocker := filepath.Join(t.TempDir(), "not-a-folder")
	if err := os.WriteFile(blocker, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	b.OutDir = filepath.Join(blocker, "out")
	ctx := context.Background()
	in := processor.Input{Partner: b.Partners["mno-a"], Name: filepath.Base(file), Path: file, Job: "mno-a-handover"}
	if _, err := b.ProcessFile(ctx, intakeStep(b), in); err == nil {
		t.Fatal("the outputs were rendered into a file's place")
	}
	for _, typ := range []string{"handover-ack", "provisioning", "key-request"} {
		if !strings.Contains(logs.String(), typ+" prepared") {
			t.Fatalf("the interrupted run did not prepare the %s", typ)
		}
	}
	if entries, err := os.ReadDir(b.ScratchDir); err != nil || len(entries) != 0 {
		t.Fatalf("scratch folder after the interrupted run: %d entries, %v", len(entries), err)
	}
	b.OutDir = outDir
	res, err := b.ProcessFile(ctx, intakeStep(b), in)
	if err != nil {
		t.Fatal(err)
	}
	for typ, wantBytes := range want {
		var got []*ledger.Output
		for _, o := range res.Outputs {
			if o.Type == typ {
				got = append(got, o)
			}
		}
		if len(got) != 1 {
			t.Fatalf("%d %s outputs after the rerun", len(got), typ)
		}
		text := w.plaintext(b, got[0])
		if typ == "handover-ack" {
			// The input's checksum is its own world's (its PGP layer
			// differs); the rest is the same.
			sum := sha256.Sum256(readFile(t, file))
			if !bytes.Contains(text, []byte("#in-reply-to-sha256: "+hex.EncodeToString(sum[:])+"\n")) {
				t.Fatalf("the rerun's ack does not answer its input:\n%.400s", text)
			}
		}
		if b := ownKeysOut(t, b, typ, text); !bytes.Equal(b, wantBytes) {
			t.Fatalf("the rerun's %s (%d bytes) differs from an uninterrupted run's (%d bytes)\n%s", typ, len(b), len(wantBytes), firstDiff(b, wantBytes))
		}
		if c := countRows(t, b, `SELECT COUNT(*) FROM outputs WHERE type = '`+typ+`'`); c != 1 {
			t.Fatalf("%d %s outputs in the ledger", c, typ)
		}
	}
	w.deliverAll(b, res.Outputs)
}

// Cards B has seen before: one back from an earlier handover whose record
// now carries no OPc (B's ledger still holds the one it had), one that
// moved along its key list while it was away (key index 2). The
// provisioning file from the stage is still the ledger's, byte for byte,
// and the HLR gets the keys just handed over: the taken card is at key
// index 0, where its secrets were stored.
func TestHandoverIntakePreparedCardsSeenBefore(t *testing.T) {
	ctx := context.Background()
	ib := newIntakeB(t, 4)
	w, b := ib.w, ib.b
	res := w.process(b, "mno-a", intakeStep(b), ib.handover([]handRec{ib.rec3a(0), ib.rec3a(1)}))
	if res.Counts.Accepted != 2 {
		t.Fatalf("first handover: %+v", res.Counts)
	}
	back, moved := ib.cards[0].ICCID, ib.cards[2].ICCID
	if err := b.Ledger.InTx(ctx, func(tx *ledger.Tx) error {
		if err := tx.Transition(ctx, back, []string{ledger.CardActive}, "requested", "test: handed back", "", nil); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `UPDATE cards SET key_index = 2 WHERE iccid = ?`, moved)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	noOPc := ib.rec3a(0)
	delete(noOPc, native.FieldOPc)
	res = w.process(b, "mno-a", intakeStep(b), ib.handover([]handRec{noOPc, ib.rec3a(2), ib.rec3a(3)}))
	if res.Counts.Accepted != 3 || res.Counts.Rejected != 0 {
		t.Fatalf("second handover: %+v", res.Counts)
	}
	if !strings.Contains(ib.logs.String(), "provisioning prepared") {
		t.Fatal("the provisioning file was not rendered from the step's stage")
	}
	prov := output(t, res.Outputs, "provisioning")
	prepared := w.plaintext(b, prov)
	again := rerender(t, b, res.Outputs, "provisioning")["provisioning"]
	if got := w.plaintext(b, again); !bytes.Equal(prepared, got) {
		t.Fatalf("the prepared provisioning differs from the ledger's\n%s", firstDiff(prepared, got))
	}
	_, recs := w.readOutput(b, again)
	if len(recs) != 3 {
		t.Fatalf("%d provisioning records", len(recs))
	}
	hlr := b.Partners["hlr"].Transport
	for i, r := range recs {
		ki, err := hlr.Unwrap(r.Get(native.FieldKi))
		if err != nil || !bytes.Equal(ki, ib.cards[[]int{0, 2, 3}[i]].Ki(1)) {
			t.Errorf("record %d (%s): Ki %x, %v", i, r.Get(native.FieldICCID), ki, err)
		}
	}
	if c, err := b.Ledger.Card(ctx, moved); err != nil || c.KeyIndex != 0 {
		t.Fatalf("card taken by a 3a handover: key index %v, %v", c.KeyIndex, err)
	}
}
