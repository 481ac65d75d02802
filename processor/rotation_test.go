package processor_test

import (
	"context"
	"testing"
	"time"

	"resub/formats/native"
	"resub/formats/ota"
	"resub/formats/ota/simcard"
	"resub/processor"
	"resub/processor/ledger"
	"resub/samples/fleet"
)

var isdTAR = ota.TAR{0x00, 0x00, 0x00}

// handedToB plays 3a until B holds n cards (active, keys from A's
// handover). The simulated cards have a security domain on the ISD TAR
// unless noISD says otherwise for a card.
func handedToB(t *testing.T, n int, noISD map[int]bool) (*world, *fleet.Fleet, *processor.Party, *processor.Party) {
	w, f, a, b := setup3a(t, n)
	w.prof.Rotation = &processor.Rotation{TAR: isdTAR, Replace: true}
	for i, c := range f.Cards {
		cfg := simcard.Config{ICCID: c.ICCID, IMSI: c.IMSI, MNCLen: f.Opts.MNCLen, USIMTAR: w.prof.OTA.TAR,
			MinSecurity: simcard.MSL{CC: true, Ciphered: true, Counter: true},
			KeySets:     []simcard.KeySet{c.Pairs[0].KeySet}}
		rt := w.prof.OTA.ResetTAR
		cfg.ResetTAR, cfg.ResetAPDU = &rt, w.prof.OTA.ResetAPDU
		if !noISD[i] {
			cfg.ISDTAR = &isdTAR
		}
		sim, err := simcard.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		c.SIM = sim
		w.smsc.Register(c.MSISDN, sim)
	}
	w.partner(b, "smsc", "SMSC", "smsc", "", nil, true)
	cut := w.now.AddDate(0, 0, 1)
	w.process(a, "m2m", processor.Authorisation{}, w.send("M2M", "MNOA", native.SwitchAuthorisation, n, false, "", fleet.AuthorisationRecords(f.Cards, "MNOB", cut)))
	res := w.process(b, "m2m", &processor.SwitchRequest{Donor: b.Partners["mno-a"]}, w.send("M2M", "MNOB", native.SwitchRequest, n, false, "", fleet.SwitchRequestRecords(f.Cards, "MNOA", cut)))
	res = w.process(a, "mno-b", &processor.IMSIList{SMSC: a.Partners["smsc"]}, output(t, res.Outputs, "imsi-list").Path)
	w.process(a, "smsc", &processor.OTAReport{}, w.runSMSC(output(t, res.Outputs, "ota-batch"), "MNOA"))
	hres, err := a.RunSweep(context.Background(), "handover", &processor.Handover{Recipient: a.Partners["mno-b"]}, false)
	if err != nil {
		t.Fatal(err)
	}
	w.deliverAll(a, hres.Outputs)
	res = w.process(b, "mno-a", &processor.HandoverIntake{HLR: b.Partners["hlr"]}, output(t, hres.Outputs, "handover").Path)
	if res.Counts.Accepted != n {
		t.Fatalf("handover at B: %+v", res.Counts)
	}
	return w, f, a, b
}

// rotate runs B's rotation sweep; the SMSC and the cards answer; B reads
// the report. It returns the sweep's and the report's results.
func rotate(t *testing.T, w *world, b *processor.Party) (*processor.Result, *processor.Result) {
	t.Helper()
	res, err := b.RunSweep(context.Background(), "rotation", &processor.KeyRotation{SMSC: b.Partners["smsc"]}, false)
	if err != nil {
		t.Fatal(err)
	}
	w.deliverAll(b, res.Outputs)
	if res.Counts.Messages == 0 {
		return res, nil
	}
	return res, w.process(b, "smsc", &processor.OTAReport{}, w.runSMSC(output(t, res.Outputs, "ota-batch"), "MNOB"))
}

// reportRetries reads the ota-batch of a report that retried.
func (w *world) reportRetries(t *testing.T, b *processor.Party, rep *processor.Result) *processor.Result {
	t.Helper()
	return w.process(b, "smsc", &processor.OTAReport{}, w.runSMSC(output(t, rep.Outputs, "ota-batch"), "MNOB"))
}

// oldKeysRefused sends the card a message under A's copy of the keys
// (the key set the donor handed over) with the counter after the card's
// last one and reports whether the card refused it.
func oldKeysRefused(t *testing.T, w *world, c *fleet.Card) bool {
	t.Helper()
	ks := c.Keys(1)
	pr := w.prof.OTA.Params(w.prof.OTA.TAR)
	pr.KIc = ota.KIc(byte(pr.KIc)&0x0f | byte(ks.KVN)<<4)
	pr.KID = ota.KID(byte(pr.KID)&0x0f | byte(ks.KVN)<<4)
	keys := ota.Keys{KIc: ks.KIc, KID: ks.KID}
	last, _ := c.SIM.Counter(ks.KVN)
	msg, err := ota.BuildMessage(pr, keys, w.prof.OTA.Format, last+1, w.prof.OTA.ReadIMSIScript(), 9)
	if err != nil {
		t.Fatal(err)
	}
	por, err := c.SIM.Receive(msg.Segments)
	if err != nil {
		t.Fatal(err)
	}
	codec, err := ota.NewCodec(pr, keys)
	if err != nil {
		t.Fatal(err)
	}
	r, err := codec.DecodeResponse(por)
	if err != nil {
		t.Fatal(err)
	}
	return r.Unsecured && r.Status != ota.StatusOK
}

func rotationState(t *testing.T, p *processor.Party, iccid string) string {
	t.Helper()
	var s string
	if err := p.Ledger.QueryRow(context.Background(), `SELECT state FROM key_rotations WHERE iccid = ?`, iccid).Scan(&s); err != nil {
		t.Fatal(err)
	}
	return s
}

// TestKeyRotation: B rotates the OTA keys of the cards it received from A;
// the cards confirm; afterwards a message under A's copy of the keys is
// refused by each card, B's ledger holds only the new key set, no card is
// rotated twice, and B still reaches the cards under the new keys: it
// changes a card's IMSI for C, with counters going on from the rotation.
func TestKeyRotation(t *testing.T) {
	const n = 3
	w, f, _, b := handedToB(t, n, nil)
	for _, c := range f.Cards {
		if oldKeysRefused(t, w, c) {
			t.Fatal("A's keys refused before the rotation")
		}
	}
	before := map[string]int64{}
	for _, c := range f.Cards {
		before[c.ICCID] = counter(t, b, c.ICCID, 0)
	}
	sweep, rep := rotate(t, w, b)
	if sweep.Counts.Messages != n || rep.Counts.Accepted != n {
		t.Fatalf("sweep %+v, report %+v", sweep.Counts, rep.Counts)
	}
	for i, c := range f.Cards {
		if st := rotationState(t, b, c.ICCID); st != "done" {
			t.Fatalf("card %d: rotation %s", i, st)
		}
		if !oldKeysRefused(t, w, c) {
			t.Errorf("card %d still takes A's keys", i)
		}
		if _, ok := c.SIM.KeySet(c.Keys(1).KVN); !ok {
			t.Errorf("card %d lost its key version", i)
		}
		if got := count(t, b, `SELECT COUNT(*) FROM card_secrets WHERE iccid = ? AND name LIKE '%.next'`, c.ICCID); got != 0 {
			t.Errorf("card %d: %d pending secrets left", i, got)
		}
		if got := count(t, b, `SELECT COUNT(*) FROM card_secrets WHERE iccid = ? AND name IN ('kic', 'kid', 'kik')`, c.ICCID); got != 3 {
			t.Errorf("card %d: %d key secrets", i, got)
		}
		if cardState(t, b, c.ICCID) != ledger.CardActive {
			t.Errorf("card %d: %s", i, cardState(t, b, c.ICCID))
		}
		if got := counter(t, b, c.ICCID, 0); got != before[c.ICCID]+1 {
			t.Errorf("card %d: counter %d, want %d", i, got, before[c.ICCID]+1)
		}
	}
	// Idempotent: nothing left to rotate.
	if again, _ := rotate(t, w, b); again.Counts.Messages != 0 || again.Counts.Records != 0 {
		t.Errorf("second sweep: %+v", again.Counts)
	}

	// B plays donor to C for card 0: the IMSI update goes out under the
	// new keys from B's ledger, and the card confirms it.
	cRanges := mustRanges(t, "888-88:0000000000-0000099999")
	w.partner(b, "mno-c", "MNOC", "operator", "tk-bc", cRanges, false)
	cut := w.now.AddDate(0, 0, 1)
	card := f.Cards[0]
	w.process(b, "m2m", processor.Authorisation{}, w.send("M2M", "MNOB", native.SwitchAuthorisation, 1, false, "", fleet.AuthorisationRecords(f.Cards[:1], "MNOC", cut)))
	newIMSI := "888880000000007"
	res := w.process(b, "mno-c", &processor.IMSIList{SMSC: b.Partners["smsc"]},
		w.send("MNOC", "MNOB", native.IMSIList, 1, false, "", listRecords([]listRec{{card.ICCID, newIMSI, cut.Format("2006-01-02")}})))
	if res.Counts.Accepted != 1 {
		t.Fatalf("imsi-list at B: %+v", res.Counts)
	}
	w.process(b, "smsc", &processor.OTAReport{}, w.runSMSC(output(t, res.Outputs, "ota-batch"), "MNOB"))
	if st := cardState(t, b, card.ICCID); st != ledger.CardConfirmed || card.SIM.IMSI() != newIMSI {
		t.Errorf("B -> C under the new keys: card %s, SIM IMSI %s", st, card.SIM.IMSI())
	}
	if got := counter(t, b, card.ICCID, 0); got != before[card.ICCID]+2 {
		t.Errorf("counter after the update %d, want %d", got, before[card.ICCID]+2)
	}
	noCounterReuse(t, b)
}

// TestKeyRotationNewVersion: the new set gets another key version (2),
// replacing version 1; the ledger's key set row moves with its counter.
func TestKeyRotationNewVersion(t *testing.T) {
	w, f, _, b := handedToB(t, 1, nil)
	w.prof.Rotation.KVN = 2
	c := f.Cards[0]
	old := counter(t, b, c.ICCID, 0)
	rotate(t, w, b)
	if st := rotationState(t, b, c.ICCID); st != "done" {
		t.Fatalf("rotation %s", st)
	}
	sets, err := b.Ledger.KeySetsOf(context.Background(), c.ICCID)
	if err != nil || len(sets) != 1 || sets[0].KVN != 2 || sets[0].Counter != old+1 {
		t.Fatalf("key sets %+v %v", sets, err)
	}
	if _, ok := c.SIM.KeySet(1); ok {
		t.Error("version 1 still on the card")
	}
	if ks, ok := c.SIM.KeySet(2); !ok || ks.Counter != uint64(old+1) {
		t.Errorf("version 2 on the card: %v %+v", ok, ks)
	}
	if !oldKeysRefused(t, w, c) {
		t.Error("A's keys still work")
	}
}

// TestKeyRotationRetry: a card unreachable on the first attempt is retried
// with a new counter and rotated; a card without a security domain on the
// TAR refuses every attempt (PoR "TAR unknown") until the SMSC partner's
// maximum, and keeps its old keys in card and ledger.
func TestKeyRotationRetry(t *testing.T) {
	w, f, _, b := handedToB(t, 2, map[int]bool{1: true})
	maxAttempts := b.Partners["smsc"].Policy.MaxAttempts
	ok, bad := f.Cards[0], f.Cards[1]
	w.smsc.SetUnreachable(ok.MSISDN, true)
	first := counter(t, b, ok.ICCID, 0)
	_, rep := rotate(t, w, b)
	w.smsc.SetUnreachable(ok.MSISDN, false)
	rounds := 1
	for rep.Counts.Messages > 0 {
		if rounds++; rounds > maxAttempts+1 {
			t.Fatal("still retrying")
		}
		rep = w.reportRetries(t, b, rep)
	}
	if rounds != maxAttempts {
		t.Errorf("%d rounds, want %d", rounds, maxAttempts)
	}
	if st := rotationState(t, b, ok.ICCID); st != "done" {
		t.Errorf("reachable card: rotation %s", st)
	}
	if !oldKeysRefused(t, w, ok) {
		t.Error("A's keys still work on the rotated card")
	}
	if st := rotationState(t, b, bad.ICCID); st != "failed" {
		t.Errorf("card without ISD: rotation %s", st)
	}
	if oldKeysRefused(t, w, bad) {
		t.Error("the refusing card lost its keys")
	}
	msgs := messages(t, b, ok.ICCID)
	var rot []*ledger.Message
	for _, m := range msgs {
		if m.Kind == "rotate" {
			rot = append(rot, m)
		}
	}
	if len(rot) != 2 || rot[0].Counter != first+1 || rot[1].Counter <= rot[0].Counter || rot[1].Attempt != 2 {
		t.Errorf("rotation messages of the retried card: %+v", rot)
	}
	if n := len(messages(t, b, bad.ICCID)); n != maxAttempts {
		t.Errorf("refusing card got %d messages, want %d", n, maxAttempts)
	}
	if got := count(t, b, `SELECT COUNT(*) FROM card_secrets WHERE iccid = ? AND name LIKE '%.next'`, bad.ICCID); got != 0 {
		t.Errorf("refusing card: %d pending secrets kept", got)
	}
	noCounterReuse(t, b)
}

// TestKeyRotationUnknown: no PoR by the deadline leaves the keys as they
// are in the ledger (both sets kept) and asks for manual action.
func TestKeyRotationUnknown(t *testing.T) {
	ctx := context.Background()
	w, f, _, b := handedToB(t, 1, nil)
	c := f.Cards[0]
	c.SIM.SetOff(true)
	rotate(t, w, b)
	w.now = w.now.Add(72 * time.Hour)
	if _, err := b.RunSweep(ctx, "deadline", &processor.OTADeadline{SMSC: b.Partners["smsc"]}, false); err != nil {
		t.Fatal(err)
	}
	res, _ := rotate(t, w, b)
	if res.Counts.Records != 1 || res.Counts.Messages != 0 {
		t.Errorf("escalation sweep %+v", res.Counts)
	}
	if st := rotationState(t, b, c.ICCID); st != "manual" {
		t.Errorf("rotation %s", st)
	}
	if got := count(t, b, `SELECT COUNT(*) FROM card_secrets WHERE iccid = ? AND name LIKE '%.next'`, c.ICCID); got != 3 {
		t.Errorf("%d pending secrets, want both sets kept", got)
	}
	c.SIM.SetOff(false)
	if oldKeysRefused(t, w, c) {
		t.Error("the card never got the PUT KEY but refuses the old keys")
	}
}

// TestKeyRotationAddAndDelete: with replace off, the new set is added
// under its own version and the old one deleted in the same script.
func TestKeyRotationAddAndDelete(t *testing.T) {
	w, f, _, b := handedToB(t, 1, nil)
	w.prof.Rotation.KVN, w.prof.Rotation.Replace = 3, false
	c := f.Cards[0]
	sweep, _ := rotate(t, w, b)
	if sweep.Counts.Messages != 1 {
		t.Fatalf("sweep %+v", sweep.Counts)
	}
	if st := rotationState(t, b, c.ICCID); st != "done" {
		t.Fatalf("rotation %s", st)
	}
	if _, ok := c.SIM.KeySet(1); ok {
		t.Error("old key set not deleted on the card")
	}
	if _, ok := c.SIM.KeySet(3); !ok {
		t.Error("new key set not on the card")
	}
	sets, err := b.Ledger.KeySetsOf(context.Background(), c.ICCID)
	if err != nil || len(sets) != 1 || sets[0].KVN != 3 {
		t.Fatalf("key sets %+v %v", sets, err)
	}
	if !oldKeysRefused(t, w, c) {
		t.Error("A's keys still work")
	}
}

// TestKeyRotationDryRun: a dry run says what it would send and leaves no
// trace: no rotation row, no pending key, no counter reserved.
func TestKeyRotationDryRun(t *testing.T) {
	_, f, _, b := handedToB(t, 2, nil)
	before := counter(t, b, f.Cards[0].ICCID, 0)
	res, err := b.RunSweep(context.Background(), "rotation", &processor.KeyRotation{SMSC: b.Partners["smsc"]}, true)
	if err != nil || res.Status != "dry-run" || res.Counts.Messages != 2 || len(res.Outputs) != 0 {
		t.Fatalf("dry run: %+v %v", res, err)
	}
	if n := count(t, b, `SELECT COUNT(*) FROM key_rotations`); n != 0 {
		t.Errorf("%d rotation rows", n)
	}
	if n := count(t, b, `SELECT COUNT(*) FROM card_secrets WHERE name LIKE '%.next'`); n != 0 {
		t.Errorf("%d pending secrets", n)
	}
	if got := counter(t, b, f.Cards[0].ICCID, 0); got != before {
		t.Errorf("counter %d, want %d", got, before)
	}
}
