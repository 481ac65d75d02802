package processor_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"resub/formats/native"
	"resub/processor"
	"resub/processor/ledger"
	"resub/processor/ledger/ledgertest"
	"resub/samples/fleet"
)

// handRec is one record of a hand-written handover: field → value.
type handRec map[string]string

func handRecords(recs []handRec) func(func(*native.Record) error) error {
	return func(emit func(*native.Record) error) error {
		r := native.NewRecord(native.Handover)
		for _, h := range recs {
			for _, f := range native.Handover.Fields {
				r.Set(f.Name, h[f.Name])
			}
			if err := emit(r); err != nil {
				return err
			}
		}
		return nil
	}
}

// footprint is everything B's ledger holds about a card: its row, its
// history, its wrapped secrets, its key sets and its IMSI's allocation.
func footprint(t *testing.T, p *processor.Party, iccid string) string {
	t.Helper()
	ctx := context.Background()
	var b bytes.Buffer
	c, err := p.Ledger.Card(ctx, iccid)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(&b, "%+v\n", *c)
	h, err := p.Ledger.History(ctx, iccid)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(&b, "%+v\n", h)
	rows, err := p.Ledger.Query(ctx, `SELECT name, key_index, master_key, blob FROM card_secrets WHERE iccid = ? ORDER BY name, key_index`, iccid)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var s ledger.Secret
		if err := rows.Scan(&s.Name, &s.KeyIndex, &s.MasterKey, &s.Blob); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, "secret %s/%d %s %x\n", s.Name, s.KeyIndex, s.MasterKey, s.Blob)
	}
	rows.Close()
	ks, err := p.Ledger.KeySetsOf(ctx, iccid)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(&b, "%+v\n", ks)
	var st, up string
	if err := p.Ledger.QueryRow(ctx, `SELECT state, updated_at FROM imsi_allocations WHERE imsi = ?`, c.IMSI).Scan(&st, &up); err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(&b, "imsi %s %s %s\n", c.IMSI, st, up)
	return b.String()
}

// TestHandoverIntakeJudgesEveryLine sends B one handover whose records hit
// every rejection rule of the intake, alone and together (where the first
// rule in order must win), among accepted 3a records, a cancel, a
// malformed record and records that repeat an earlier one's ICCID or IMSI. It checks each line's answer in the handover-ack, what
// B now holds of each accepted card (and what its HLR is told), and that
// nothing of a rejected card changed.
func TestHandoverIntakeJudgesEveryLine(t *testing.T) {
	ctx := context.Background()
	const n = 13
	w, f, _, b := setup3a(t, n)
	c := f.Cards
	cut := w.now.AddDate(0, 0, 1)
	res := w.process(b, "m2m", &processor.SwitchRequest{Donor: b.Partners["mno-a"]}, w.send("M2M", "MNOB", native.SwitchRequest, n, false, "", fleet.SwitchRequestRecords(c, "MNOA", cut)))
	if res.Counts.Accepted != n {
		t.Fatalf("switch request: %+v", res.Counts)
	}
	imsi := map[string]string{}
	for _, card := range c {
		bc, err := b.Ledger.Card(ctx, card.ICCID)
		if err != nil {
			t.Fatal(err)
		}
		imsi[card.ICCID] = bc.IMSI
	}
	// c[2] was provisioned here already; c[6] waits for its keys.
	for i, st := range map[int]string{2: ledger.CardActive, 6: "incoming"} {
		if err := b.Ledger.InTx(ctx, func(tx *ledger.Tx) error {
			return tx.Transition(ctx, c[i].ICCID, []string{"requested"}, st, "test: earlier", "", nil)
		}); err != nil {
			t.Fatal(err)
		}
	}
	strangers, err := fleet.New(fleet.Options{N: 2, ICCIDBody: "8999907", Seed: "stranger"})
	if err != nil {
		t.Fatal(err)
	}

	tk := processor.NewTransport(w.tks["tk-ab"])
	wrap := func(v []byte) string {
		s, err := tk.Wrap(v)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	// A Ki whose wrapping does not verify (last digit changed).
	badKi := func(card *fleet.Card) string {
		s := []byte(wrap(card.Ki(1)))
		if s[len(s)-1] == '0' {
			s[len(s)-1] = '1'
		} else {
			s[len(s)-1] = '0'
		}
		return string(s)
	}
	_, unwrapErr := tk.Unwrap(badKi(c[5]))
	if unwrapErr == nil {
		t.Fatal("a changed wrapping unwrapped")
	}
	rec3a := func(card *fleet.Card, edit func(handRec)) handRec {
		ks := card.Keys(1)
		h := handRec{
			native.FieldKind: native.Kind3a, native.FieldICCID: card.ICCID, native.FieldIMSI: imsi[card.ICCID], native.FieldMSISDN: card.MSISDN,
			native.FieldKi: wrap(card.Ki(1)), native.FieldOPc: wrap(card.OPc), native.FieldAlgorithm: "milenage",
			native.FieldKVN: strconv.Itoa(card.KVN), native.FieldOTAAlg: "aes", native.FieldKIc: wrap(ks.KIc), native.FieldKID: wrap(ks.KID), native.FieldKIK: wrap(ks.KIK),
			native.FieldCounter: "21", native.FieldProfile: w.prof.Name,
		}
		if edit != nil {
			edit(h)
		}
		return h
	}
	stranger := func(i int, kiField string) handRec {
		s := strangers.Cards[i]
		h := rec3a(s, nil)
		h[native.FieldIMSI] = "99999000009998" + strconv.Itoa(i)
		if kiField != "" {
			h[native.FieldKi] = kiField
		}
		return h
	}
	const (
		accepted = native.StatusProvisioned
		rejected = "rejected"
	)
	type want struct {
		rec                    handRec
		status, reason, detail string
	}
	cases := []want{
		{rec3a(c[0], nil), accepted, "", ""},
		// No OPc, no OTA key set.
		{rec3a(c[1], func(h handRec) {
			for _, f := range []string{native.FieldOPc, native.FieldKVN, native.FieldOTAAlg, native.FieldKIc, native.FieldKID, native.FieldKIK, native.FieldCounter} {
				delete(h, f)
			}
			h[native.FieldAlgorithm] = "comp128v3"
		}), accepted, "", ""},
		{stranger(0, ""), rejected, processor.ReasonUnknownICCID, "we did not request this card"},
		{rec3a(c[2], nil), rejected, processor.ReasonDuplicate, "card is active here"},
		{rec3a(c[3], func(h handRec) { h[native.FieldIMSI] = "999990000099990" }), rejected, processor.ReasonInvalid, "IMSI differs from the one we allocated"},
		{rec3a(c[4], func(h handRec) { h[native.FieldProfile] = "nope" }), rejected, processor.ReasonProvisioning, "card profile nope unknown here"},
		{rec3a(c[5], func(h handRec) { h[native.FieldKi] = badKi(c[5]) }), rejected, processor.ReasonInvalid, "ki: " + unwrapErr.Error()},
		// Two rules at once: the first in order answers.
		{rec3a(c[6], func(h handRec) { h[native.FieldKi] = badKi(c[6]) }), rejected, processor.ReasonDuplicate, "card is incoming here"},
		{rec3a(c[7], func(h handRec) { h[native.FieldIMSI] = "999990000099991"; h[native.FieldProfile] = "nope" }), rejected, processor.ReasonInvalid, "IMSI differs from the one we allocated"},
		{rec3a(c[8], func(h handRec) { h[native.FieldProfile] = "nope"; h[native.FieldKi] = badKi(c[8]) }), rejected, processor.ReasonProvisioning, "card profile nope unknown here"},
		// A cancel among them: no answer line, the card withdrawn.
		{handRec{native.FieldKind: native.KindCancel, native.FieldICCID: c[9].ICCID}, "", "", ""},
		{stranger(1, badKi(strangers.Cards[1])), rejected, processor.ReasonUnknownICCID, "we did not request this card"},
		// Malformed: the reader's rejection.
		{rec3a(c[10], func(h handRec) { h[native.FieldAlgorithm] = "nonsense" }), rejected, processor.ReasonInvalid, ""},
		{rec3a(c[11], nil), accepted, "", ""},
		// Repeats of an earlier line (the later line is the duplicate):
		// c[0]'s ICCID with another IMSI, c[11]'s IMSI on another card,
		// a cancel of c[1] (accepted above), and c[9] again after its
		// cancel.
		{rec3a(c[0], func(h handRec) { h[native.FieldIMSI] = "999990000099970" }), rejected, processor.ReasonDuplicate, "iccid: duplicate within the file: " + c[0].ICCID},
		{rec3a(c[12], func(h handRec) { h[native.FieldIMSI] = imsi[c[11].ICCID] }), rejected, processor.ReasonDuplicate, "imsi: duplicate within the file: " + imsi[c[11].ICCID]},
		{handRec{native.FieldKind: native.KindCancel, native.FieldICCID: c[1].ICCID}, rejected, processor.ReasonDuplicate, "iccid: duplicate within the file: " + c[1].ICCID},
		{rec3a(c[9], nil), rejected, processor.ReasonDuplicate, "iccid: duplicate within the file: " + c[9].ICCID},
	}
	acceptedCards := []*fleet.Card{c[0], c[1], c[11]}
	rejectedCards := []*fleet.Card{c[2], c[3], c[4], c[5], c[6], c[7], c[8], c[10], c[12]}
	before := map[string]string{}
	for _, card := range rejectedCards {
		before[card.ICCID] = footprint(t, b, card.ICCID)
	}

	var recs []handRec
	for _, cs := range cases {
		recs = append(recs, cs.rec)
	}
	w.now = w.now.Add(time.Hour)
	handover := w.send("MNOA", "MNOB", native.Handover, len(recs), false, "tk-ab", handRecords(recs))
	res = w.process(b, "mno-a", &processor.HandoverIntake{HLR: b.Partners["hlr"]}, handover)
	if res.Counts.Records != len(cases) || res.Counts.Accepted != 4 || res.Counts.Rejected != len(cases)-4 {
		t.Errorf("counts: %+v", res.Counts)
	}

	// The answers, line by line (a cancel that is taken gets none).
	h, got := w.readOutput(b, output(t, res.Outputs, "handover-ack"))
	if len(got) != len(cases)-1 {
		t.Fatalf("handover-ack has %d records, want %d", len(got), len(cases)-1)
	}
	k := 0
	for i, cs := range cases {
		if cs.status == "" {
			continue
		}
		r := got[k]
		k++
		t.Run(strconv.Itoa(i)+"-"+cs.status+"-"+cs.reason, func(t *testing.T) {
			if r.Get(native.FieldICCID) != cs.rec[native.FieldICCID] {
				t.Fatalf("answer for %s, want %s", r.Get(native.FieldICCID), cs.rec[native.FieldICCID])
			}
			if r.Get(native.FieldStatus) != cs.status || r.Get(native.FieldReason) != cs.reason {
				t.Errorf("%s %s (%s), want %s %s", r.Get(native.FieldStatus), r.Get(native.FieldReason), r.Get(native.FieldDetail), cs.status, cs.reason)
			}
			detail := r.Get(native.FieldDetail)
			if cs.reason == processor.ReasonDuplicate && (strings.HasPrefix(cs.detail, native.FieldICCID+": ") || strings.HasPrefix(cs.detail, native.FieldIMSI+": ")) {
				// The reader's words: file, line, field, value.
				if !strings.HasPrefix(detail, h.InReplyTo+":") || !strings.HasSuffix(detail, ": "+cs.detail) {
					t.Errorf("detail %q, want %s:<line>: %s", detail, h.InReplyTo, cs.detail)
				}
			} else if cs.detail != "" && detail != cs.detail {
				t.Errorf("detail %q, want %q", detail, cs.detail)
			}
		})
	}
	var lines int
	if err := b.Ledger.QueryRow(ctx, `SELECT COUNT(DISTINCT line) FROM batch_records WHERE batch_id = ?`, res.BatchID).Scan(&lines); err != nil || lines != len(cases)-1 {
		t.Errorf("batch records on %d distinct lines (%v), want %d", lines, err, len(cases)-1)
	}

	// Rejected cards: nothing changed.
	for _, card := range rejectedCards {
		if after := footprint(t, b, card.ICCID); after != before[card.ICCID] {
			t.Errorf("rejected card %s changed:\n%s\nnow:\n%s", card.ICCID, before[card.ICCID], after)
		}
	}
	for i := range strangers.Cards {
		if st := cardState(t, b, strangers.Cards[i].ICCID); st != "" {
			t.Errorf("unknown card %d entered the ledger as %s", i, st)
		}
	}
	if st := cardState(t, b, c[9].ICCID); st != ledger.CardCancelled {
		t.Errorf("cancelled card is %s", st)
	}
	if st := imsiState(t, b, imsi[c[9].ICCID]); st != ledger.IMSIRetired {
		t.Errorf("cancelled card's IMSI is %s", st)
	}

	// Accepted cards: active with what the donor sent.
	source := "file:" + strconv.FormatInt(res.FileID, 10)
	for _, card := range acceptedCards {
		bc, err := b.Ledger.Card(ctx, card.ICCID)
		if err != nil {
			t.Fatal(err)
		}
		alg, opc, nSecrets := "milenage", card.OPc, 5
		var kic, kid, kik []byte
		ks := card.Keys(1)
		kic, kid, kik = ks.KIc, ks.KID, ks.KIK
		if card == c[1] {
			alg, opc, nSecrets = "comp128v3", nil, 1
			kic, kid, kik = nil, nil, nil
		}
		if bc.State != ledger.CardActive || bc.Profile != w.prof.Name || bc.Algorithm != alg || bc.MSISDN != card.MSISDN || bc.IMSI != imsi[card.ICCID] {
			t.Errorf("accepted card %s: %+v", card.ICCID, bc)
		}
		if fp := b.Vault.Fingerprint(card.Ki(1), opc, kic, kid, kik); bc.SecretsFP != fp {
			t.Errorf("card %s: secrets fingerprint %q, want %q", card.ICCID, bc.SecretsFP, fp)
		}
		if got := count(t, b, `SELECT COUNT(*) FROM card_secrets WHERE iccid = ? AND key_index = 0 AND master_key = ?`, card.ICCID, b.Vault.KeyID()); got != nSecrets {
			t.Errorf("card %s: %d secrets, want %d", card.ICCID, got, nSecrets)
		}
		sets, err := b.Ledger.KeySetsOf(ctx, card.ICCID)
		if err != nil {
			t.Fatal(err)
		}
		wantSets := []ledger.KeySet{{KeyIndex: 0, KVN: card.KVN, KIcAlg: "aes", KIDAlg: "aes", Counter: 21}}
		if card == c[1] {
			wantSets = nil
		}
		if fmt.Sprint(sets) != fmt.Sprint(wantSets) {
			t.Errorf("card %s: key sets %+v, want %+v", card.ICCID, sets, wantSets)
		}
		h, err := b.Ledger.History(ctx, card.ICCID)
		if err != nil {
			t.Fatal(err)
		}
		last := h[len(h)-1]
		if last.From != "requested" || last.To != ledger.CardActive || last.Reason != "provisioned" || last.Ref != source || !last.At.Equal(w.now) {
			t.Errorf("card %s: last event %+v", card.ICCID, last)
		}
		if st := imsiState(t, b, bc.IMSI); st != ledger.IMSIConfirmed {
			t.Errorf("card %s: IMSI %s", card.ICCID, st)
		}
	}

	// The HLR gets exactly the accepted cards, keys under its own
	// transport key.
	_, prov := w.readOutput(b, output(t, res.Outputs, "provisioning"))
	if len(prov) != len(acceptedCards) {
		t.Fatalf("provisioning has %d records, want %d", len(prov), len(acceptedCards))
	}
	auc := processor.NewTransport(w.tks["tk-aucb"])
	for i, r := range prov {
		card := acceptedCards[i]
		if r.Get(native.FieldICCID) != card.ICCID || r.Get(native.FieldIMSI) != imsi[card.ICCID] || r.Get(native.FieldMSISDN) != card.MSISDN {
			t.Errorf("provisioning record %d: %s %s %s", i, r.Get(native.FieldICCID), r.Get(native.FieldIMSI), r.Get(native.FieldMSISDN))
		}
		ki, err := auc.Unwrap(r.Get(native.FieldKi))
		if err != nil || !bytes.Equal(ki, card.Ki(1)) {
			t.Errorf("provisioning record %d: Ki does not match (%v)", i, err)
		}
		if card == c[1] {
			if r.Get(native.FieldOPc) != "" || r.Get(native.FieldAlgorithm) != "comp128v3" {
				t.Errorf("provisioning record %d: OPc %q algorithm %s", i, r.Get(native.FieldOPc), r.Get(native.FieldAlgorithm))
			}
			continue
		}
		opc, err := auc.Unwrap(r.Get(native.FieldOPc))
		if err != nil || !bytes.Equal(opc, card.OPc) {
			t.Errorf("provisioning record %d: OPc does not match (%v)", i, err)
		}
	}
}

// TestHandoverStageLeavesNothing runs the stage in a transaction that
// fails and then again on the same connection: the second starts empty,
// and once closed no stage table is left on the connection.
func TestHandoverStageLeavesNothing(t *testing.T) {
	ctx := context.Background()
	db := ledgertest.Open(t, filepath.Join(t.TempDir(), "ledger.db"))
	db.SQL().SetMaxOpenConns(1) // every transaction on the same connection
	stageTables := func() int {
		t.Helper()
		var n int
		q := `SELECT COUNT(*) FROM sqlite_temp_master WHERE type = 'table'`
		if ledgertest.Postgres() {
			q = `SELECT COUNT(*) FROM pg_tables WHERE schemaname LIKE 'pg_temp%'`
		}
		if err := db.SQL().QueryRowContext(ctx, q).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	names := []string{"ki", "opc"}
	rules := ledger.HandoverTake{BatchID: 1, Rejected: "rejected", UnknownCard: ledger.Verdict{Reason: "UNKNOWN", Detail: "who?"},
		DuplicateICCID: ledger.Verdict{Reason: "DUP"}, DuplicateIMSI: ledger.Verdict{Reason: "DUP"},
		OtherState: ledger.Verdict{Reason: "STATE"}, OtherIMSI: ledger.Verdict{Reason: "IMSI"}, NoProfile: ledger.Verdict{Reason: "PROFILE"}}
	card := ledger.StagedCard{Line: 7, ICCID: "8988211000000467285", IMSI: "999990000000001", Sealed: [][]byte{{1, 2}, nil}}
	boom := errors.New("boom")
	err := db.InTx(ctx, func(tx *ledger.Tx) error {
		st, err := tx.StageHandover(ctx, names)
		if err != nil {
			return err
		}
		if err := st.Add(ctx, card); err != nil {
			return err
		}
		if _, err := st.Take(ctx, rules); err != nil {
			return err
		}
		return boom // Close never runs
	})
	if !errors.Is(err, boom) {
		t.Fatalf("first attempt: %v", err)
	}
	if n := stageTables(); n != 0 {
		t.Errorf("%d temporary tables after a rollback", n)
	}
	var out ledger.HandoverOutcome
	err = db.InTx(ctx, func(tx *ledger.Tx) error {
		st, err := tx.StageHandover(ctx, names)
		if err != nil {
			return err
		}
		if err := st.Add(ctx, card); err != nil {
			return err
		}
		if out, err = st.Take(ctx, rules); err != nil {
			return err
		}
		return st.Close(ctx)
	})
	if err != nil {
		t.Fatal(err)
	}
	if out.Accepted != 0 || out.Rejected != 1 {
		t.Errorf("outcome %+v", out)
	}
	if n := stageTables(); n != 0 {
		t.Errorf("%d temporary tables after Close", n)
	}
	var reason, detail string
	if err := db.QueryRow(ctx, `SELECT reason, detail FROM batch_records WHERE batch_id = 1 AND line = 7`).Scan(&reason, &detail); err != nil || reason != "UNKNOWN" || detail != "who?" {
		t.Errorf("batch record %q %q (%v)", reason, detail, err)
	}
	if n := count(t, &processor.Party{Ledger: db}, `SELECT COUNT(*) FROM card_secrets`); n != 0 {
		t.Errorf("%d secrets stored for an unknown card", n)
	}
}

// TestHandoverIntakeManyCards hands B more cards than the sealing
// workers hold at once, with rejections spread among them: every line is
// answered in file order, and every accepted card holds its own keys and
// counter (the lines were not mixed up on their way through the workers).
func TestHandoverIntakeManyCards(t *testing.T) {
	ctx := context.Background()
	n := 1500
	if testing.Short() {
		n = 300
	}
	w := newWorld(t)
	bRanges := mustRanges(t, "999-99:0000000000-0000099999")
	b := w.party("MNOB", bRanges, []processor.Range{{Name: "b-main", From: "999990000000001", To: "999990000099999"}})
	w.partner(b, "m2m", "M2M", "m2m-operator", "", nil, false)
	w.partner(b, "mno-a", "MNOA", "operator", "tk-ab", mustRanges(t, "001-01"), false)
	w.partner(b, "hlr", "HLRB", "hlr", "tk-aucb", nil, true)
	f, err := fleet.New(fleet.Options{N: n, Seed: t.Name(), Profile: w.prof.OTA})
	if err != nil {
		t.Fatal(err)
	}
	res := w.process(b, "m2m", &processor.SwitchRequest{Donor: b.Partners["mno-a"]}, w.send("M2M", "MNOB", native.SwitchRequest, n, false, "", fleet.SwitchRequestRecords(f.Cards, "MNOA", w.now.AddDate(0, 0, 1))))
	if res.Counts.Accepted != n {
		t.Fatalf("switch request: %+v", res.Counts)
	}
	tk := processor.NewTransport(w.tks["tk-ab"])
	// Line i: rejected for its IMSI when i%7 == 3, for a Ki that does
	// not unwrap when i%11 == 5 (and accepted otherwise); counter i.
	wantAccepted := 0
	emit := func(emit func(*native.Record) error) error {
		r := native.NewRecord(native.Handover)
		for i, c := range f.Cards {
			bc, err := b.Ledger.Card(ctx, c.ICCID)
			if err != nil {
				return err
			}
			ks := c.Keys(1)
			vals := map[string]string{native.FieldKind: native.Kind3a, native.FieldICCID: c.ICCID, native.FieldIMSI: bc.IMSI, native.FieldMSISDN: c.MSISDN,
				native.FieldAlgorithm: "milenage", native.FieldKVN: strconv.Itoa(c.KVN), native.FieldOTAAlg: "aes",
				native.FieldCounter: strconv.Itoa(i), native.FieldProfile: w.prof.Name}
			for name, v := range map[string][]byte{native.FieldKi: c.Ki(1), native.FieldOPc: c.OPc, native.FieldKIc: ks.KIc, native.FieldKID: ks.KID, native.FieldKIK: ks.KIK} {
				if vals[name], err = tk.Wrap(v); err != nil {
					return err
				}
			}
			switch {
			case i%7 == 3:
				vals[native.FieldIMSI] = fmt.Sprintf("9999900001%05d", i)
			case i%11 == 5:
				vals[native.FieldKi] = "tk-ab:" + strings.Repeat("00", 24)
			default:
				wantAccepted++
			}
			for _, fd := range native.Handover.Fields {
				r.Set(fd.Name, vals[fd.Name])
			}
			if err := emit(r); err != nil {
				return err
			}
		}
		return nil
	}
	res = w.process(b, "mno-a", &processor.HandoverIntake{HLR: b.Partners["hlr"]}, w.send("MNOA", "MNOB", native.Handover, n, false, "tk-ab", emit))
	if res.Counts.Records != n || res.Counts.Accepted != wantAccepted || res.Counts.Rejected != n-wantAccepted {
		t.Fatalf("counts %+v, want %d accepted of %d", res.Counts, wantAccepted, n)
	}
	_, ack := w.readOutput(b, output(t, res.Outputs, "handover-ack"))
	if len(ack) != n {
		t.Fatalf("handover-ack has %d records, want %d", len(ack), n)
	}
	for i, r := range ack {
		c := f.Cards[i]
		want := native.StatusProvisioned
		if i%7 == 3 || i%11 == 5 {
			want = "rejected"
		}
		if r.Get(native.FieldICCID) != c.ICCID || r.Get(native.FieldStatus) != want {
			t.Fatalf("ack line %d: %s %s (%s), want %s %s", i, r.Get(native.FieldICCID), r.Get(native.FieldStatus), r.Get(native.FieldDetail), c.ICCID, want)
		}
		if want != native.StatusProvisioned {
			if st := cardState(t, b, c.ICCID); st != "requested" {
				t.Errorf("rejected card %d is %s", i, st)
			}
			continue
		}
		bc, err := b.Ledger.Card(ctx, c.ICCID)
		if err != nil {
			t.Fatal(err)
		}
		ks := c.Keys(1)
		if fp := b.Vault.Fingerprint(c.Ki(1), c.OPc, ks.KIc, ks.KID, ks.KIK); bc.State != ledger.CardActive || bc.SecretsFP != fp {
			t.Errorf("card %d: %s, fingerprint %s want %s", i, bc.State, bc.SecretsFP, fp)
		}
		if got := counter(t, b, c.ICCID, 0); got != int64(i) {
			t.Errorf("card %d: counter %d", i, got)
		}
	}
	_, prov := w.readOutput(b, output(t, res.Outputs, "provisioning"))
	if len(prov) != wantAccepted {
		t.Fatalf("provisioning has %d records, want %d", len(prov), wantAccepted)
	}
	auc := processor.NewTransport(w.tks["tk-aucb"])
	byICCID := f.ByICCID()
	for _, r := range prov {
		c := byICCID[r.Get(native.FieldICCID)]
		ki, err := auc.Unwrap(r.Get(native.FieldKi))
		if c == nil || err != nil || !bytes.Equal(ki, c.Ki(1)) {
			t.Fatalf("provisioning of %s: Ki does not match (%v)", r.Get(native.FieldICCID), err)
		}
	}
}
