package demo

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"resub/crypto/pgp"
	"resub/formats/native"
	"resub/formats/ota"
	"resub/processor/ledger"
	"resub/samples/fleet"
	"resub/samples/smsc"
)

// Result is what the demo ended with.
type Result struct {
	Dir string
	// States counts each party's cards by state.
	States map[string]map[string]int
	// Want is what they should be.
	Want map[string]map[string]int
	// Files counts each party's files by direction and status.
	Files map[string]map[string]int
	// OK is true when every card ended where it should.
	OK bool
	// Problems lists what did not end where it should.
	Problems []string
	// Cards are the cards of both fleets (3a, then 3b), with their keys:
	// the secrets the demo's input carried (for the leak test).
	Cards []*fleet.Card

	secrets map[string]string // the secrets the configurations referred to
}

// Run plays the demo.
func Run(ctx context.Context, o Options) (*Result, error) {
	if o.Cards3a == 0 {
		o.Cards3a = 10
	}
	if o.Cards3b == 0 {
		o.Cards3b = 4
	}
	if o.Cards3a < 10 {
		return nil, fmt.Errorf("the 3a story needs at least 10 cards")
	}
	w, err := newWorld(o)
	if err != nil {
		return nil, err
	}
	defer w.close()
	w.say("resub demo in %s", w.dir)
	w.say("SFTP server on %s (host key pinned in each party's known_hosts)", w.server.Addr())
	// One SMSC with the simulated UICCs behind it: MNOA submits to it
	// over SMPP; MNOB keeps the file exchange.
	sm := smsc.New()
	sm.Now = w.clock
	w.smppA, err = sm.ServeSMPP("resub-ota", w.envValue(envName("MNOA", "smpp"), 12))
	if err != nil {
		return nil, err
	}
	w.say("simulated SMSC: SMPP on 127.0.0.1:%d for MNOA, ota-batch and ota-report files for MNOB", w.smppA.Port())
	for _, code := range []string{"MNOA", "MNOB", "MNOC", "MFR"} {
		if _, err := w.addParty(code); err != nil {
			return nil, err
		}
	}
	if err := w.setEnv(); err != nil {
		return nil, err
	}
	for _, code := range []string{"MNOA", "MNOB", "MNOC", "MFR"} {
		p := w.parties[code]
		if err := w.writeConfig(p); err != nil {
			return nil, fmt.Errorf("%s configuration: %w", code, err)
		}
		if err := w.open(ctx, p); err != nil {
			return nil, fmt.Errorf("%s: %w", code, err)
		}
	}
	if err := w.story3a(ctx, sm); err != nil {
		return nil, err
	}
	if err := w.story3b(ctx, sm); err != nil {
		return nil, err
	}
	res, err := w.finish(ctx)
	if res != nil {
		res.Cards, res.secrets = w.cards, w.env
	}
	return res, err
}

func (w *world) jobs(ctx context.Context, steps ...[2]string) error {
	for _, s := range steps {
		if _, err := w.runJob(ctx, s[0], s[1]); err != nil {
			return err
		}
	}
	return nil
}

func (w *world) smscFor(ctx context.Context, code string, sm *smsc.SMSC) error {
	if code == "MNOA" && w.smppA != nil {
		return w.submitSMPP(ctx, code)
	}
	if _, err := w.runSMSC(code, sm); err != nil {
		return err
	}
	_, err := w.runJob(ctx, code, "ota-report")
	return err
}

// vendorFile writes the SIM vendor's output file for cards, encrypted to
// A and signed by the vendor, into A's vendor inbox.
func (w *world) vendorFile(f *fleet.Fleet, cards []*fleet.Card, profile, batch string, edit func(string) string) error {
	var buf bytes.Buffer
	if err := f.WriteVendor(&buf, cards, "MNOA", profile, batch); err != nil {
		return err
	}
	text := buf.String()
	if edit != nil {
		text = edit(text)
	}
	name := "VENDOR_" + batch + ".out.pgp"
	path := filepath.Join(w.dropDir("MNOA", "vendor", "inbox"), name)
	out, err := os.OpenFile(path+".part", os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	enc, err := pgp.Encrypt(out, []*pgp.Key{w.keys["MNOA"].Public()}, w.keys["VENDOR"], pgp.EncryptOptions{FileName: pgp.PlaintextName(name), Now: w.clock})
	if err != nil {
		out.Close()
		return err
	}
	if _, err := enc.Write([]byte(text)); err != nil {
		out.Close()
		return err
	}
	if err := enc.Close(); err != nil {
		out.Close()
		return err
	}
	if err := out.Close(); err != nil {
		return err
	}
	return os.Rename(path+".part", path)
}

func (w *world) story3a(ctx context.Context, sm *smsc.SMSC) error {
	n := w.o.Cards3a
	aProf := w.parties["MNOA"].rt.Party.Profiles["usim-aes"].OTA
	f, err := fleet.New(fleet.Options{N: n, ICCIDBody: "8999901", IMSIBase: "001010000000001", MSISDNBase: "999100000001", Seed: "demo-3a", Profile: aProf, Counter: 5})
	if err != nil {
		return err
	}
	w.cards = append(w.cards, f.Cards...)
	// Card 3 has seen more messages than the vendor's file says.
	f.Cards[3].Pairs[0].KeySet.Counter = 12
	// Card 9 is an older USIM without EF_EPSLOCI: its script stops after
	// the EF_IMSI write, on every attempt.
	f.Cards[9].Absent = []uint16{ota.FIDEPSLOCI}
	if err := f.BuildSIMs(); err != nil {
		return err
	}
	for _, c := range f.Cards {
		sm.Register(c.MSISDN, c.SIM)
	}
	// Someone sends a forged PoR for card 8 to MNOA's OTA short code.
	sm.SetSpoofed(f.Cards[8].MSISDN, true)
	// Card 1's device answers nothing.
	f.Cards[1].SIM.SetOff(true)
	cut := w.clock().AddDate(0, 0, 1)

	w.say("\n== 3a: MNOA hands %d cards over to MNOB over the air ==", n)
	w.say("  the SIM vendor delivers its output file; the BSS the MSISDNs")
	if err := w.vendorFile(f, f.Cards, "usim-aes", "VB-3A-1", nil); err != nil {
		return err
	}
	if _, err := w.send(w.dropDir("MNOA", "bss", "inbox"), "BSS", "MNOA", native.MSISDNMap, n, true, nil, fleet.MSISDNRecords(f.Cards)); err != nil {
		return err
	}
	if err := w.jobs(ctx, [2]string{"MNOA", "inventory"}, [2]string{"MNOA", "msisdn"}); err != nil {
		return err
	}

	w.say("  the M2M operator authorises the move at MNOA (all cards but #2), signing with a key MNOA has not pinned yet")
	auth := append(append([]*fleet.Card{}, f.Cards[:2]...), f.Cards[3:]...)
	if _, err := w.sendSigned(w.dropDir("MNOA", "m2m", "inbox"), "M2M", "M2M2", "MNOA", native.SwitchAuthorisation, len(auth), false, nil, fleet.AuthorisationRecords(auth, "MNOB", cut)); err != nil {
		return err
	}
	if err := w.jobs(ctx, [2]string{"MNOA", "authorisation"}); err != nil {
		return err
	}
	w.say("  MNOA's operator pins the M2M operator's new key and reprocesses the quarantined file")
	a := w.parties["MNOA"]
	partners := a.cfg["partners"].(map[string]any)
	m2m := partners["m2m"].(map[string]any)
	pg := w.pgpOf("M2M")
	pg["public_keys"] = append(pg["public_keys"].([]string), filepath.Join(w.dir, "keys", "M2M2.pub.asc"))
	pg["fingerprints"] = append(pg["fingerprints"].([]string), w.keys["M2M2"].Fingerprint())
	m2m["pgp"] = pg
	writeKey(w, "M2M2")
	if err := w.writeConfig(a); err != nil {
		return err
	}
	if err := w.open(ctx, a); err != nil {
		return err
	}
	files, err := a.rt.Ledger.Files(ctx, ledger.FileQuarantined, 10)
	if err != nil || len(files) == 0 {
		return fmt.Errorf("no quarantined authorisation at MNOA: %v", err)
	}
	sum, err := a.rt.Reprocess(ctx, fmt.Sprintf("file:%d", files[0].ID))
	if err != nil {
		return fmt.Errorf("reprocess: %w", err)
	}
	w.say("    MNOA reprocess file:%d: %d record(s) accepted", files[0].ID, sum.Accepted)

	w.say("  the M2M operator asks MNOB for the change; MNOB allocates IMSIs and sends its list to MNOA")
	if _, err := w.send(w.dropDir("MNOB", "m2m", "inbox"), "M2M", "MNOB", native.SwitchRequest, n, false, nil, fleet.SwitchRequestRecords(f.Cards, "MNOA", cut)); err != nil {
		return err
	}
	if err := w.jobs(ctx, [2]string{"MNOB", "switch-request"}); err != nil {
		return err
	}
	w.say("  someone flips a byte of the list on the SFTP server; MNOA refuses it and tells MNOB")
	inbox := w.exchangeDir("MNOB-to-MNOA")
	entries, _ := os.ReadDir(inbox)
	var listName string
	var original []byte
	for _, e := range entries {
		if strings.Contains(e.Name(), "_imsi-list_") {
			listName = e.Name()
		}
	}
	if listName == "" {
		return fmt.Errorf("MNOB's imsi-list did not arrive")
	}
	if original, err = os.ReadFile(filepath.Join(inbox, listName)); err != nil {
		return err
	}
	tampered := append([]byte(nil), original...)
	tampered[len(tampered)/2] ^= 0x01
	if err := os.WriteFile(filepath.Join(inbox, listName), tampered, 0o600); err != nil {
		return err
	}
	if err := w.jobs(ctx, [2]string{"MNOA", "imsi-list"}, [2]string{"MNOB", "imsi-result"}); err != nil {
		return err
	}
	w.say("  MNOB's operator delivers the list again; MNOA checks every record and sends the OTA batch")
	if err := os.WriteFile(filepath.Join(inbox, listName+".part"), original, 0o600); err != nil {
		return err
	}
	if err := os.Rename(filepath.Join(inbox, listName+".part"), filepath.Join(inbox, listName)); err != nil {
		return err
	}
	if err := w.jobs(ctx, [2]string{"MNOA", "imsi-list"}, [2]string{"MNOB", "imsi-result"}); err != nil {
		return err
	}
	w.say("  the SMSC delivers; the cards check each secured packet and answer with proofs of receipt")
	if err := w.smscFor(ctx, "MNOA", sm); err != nil {
		return err
	}
	if err := w.spoofIgnored(ctx, f.Cards[8]); err != nil {
		return err
	}
	w.say("  a forged PoR for card #8 did not verify: recorded, counted, nothing changed; its own PoR confirmed it")
	sm.SetSpoofed(f.Cards[8].MSISDN, false)
	w.say("  card #3 answered 'counter low': MNOA retried it with a new counter")
	w.say("  card #9 has no EF_EPSLOCI: its PoR proves the EF_IMSI write, then 6A82; MNOA retries the whole script")
	if err := w.smscFor(ctx, "MNOA", sm); err != nil {
		return err
	}
	if err := w.smscFor(ctx, "MNOA", sm); err != nil {
		return err
	}
	w.say("  card #9 stopped after the EF_IMSI write on every attempt: it waits for an engineer (manual); MNOB hears 'unknown', never 'failed'")
	if err := w.jobs(ctx, [2]string{"MNOB", "imsi-result"}); err != nil {
		return err
	}
	w.say("  the cut-over day comes and a day passes: card #1 never answered, its outcome is unknown (never 'failed': it may have changed)")
	w.skip(50 * time.Hour)
	if err := w.jobs(ctx, [2]string{"MNOA", "ota-deadline"}, [2]string{"MNOB", "imsi-result"}); err != nil {
		return err
	}
	w.say("  MNOA hands the confirmed cards over; MNOB provisions its HLR/AuC and acknowledges; MNOA resets and releases")
	if err := w.jobs(ctx, [2]string{"MNOA", "handover"}, [2]string{"MNOB", "handover-in"}, [2]string{"MNOA", "handover-ack"}); err != nil {
		return err
	}
	if err := w.smscFor(ctx, "MNOA", sm); err != nil {
		return err
	}
	for i, c := range f.Cards {
		if i >= 3 && c.SIM.IMSI()[:5] != "99999" {
			return fmt.Errorf("card %s still holds IMSI %s", c.ICCID, c.SIM.IMSI())
		}
	}

	// Card 9 is not MNOB's: it waits for an engineer at MNOA.
	moved := append(append([]*fleet.Card{}, f.Cards[3:9]...), f.Cards[10:]...)
	w.say("\n== 3a again: MNOB, now the donor, hands the %d cards over to MNOC ==", len(moved))
	cut2 := w.clock().AddDate(0, 0, 1)
	if _, err := w.send(w.dropDir("MNOB", "m2m", "inbox"), "M2M", "MNOB", native.SwitchAuthorisation, len(moved), false, nil, fleet.AuthorisationRecords(moved, "MNOC", cut2)); err != nil {
		return err
	}
	if _, err := w.send(w.dropDir("MNOC", "m2m", "inbox"), "M2M", "MNOC", native.SwitchRequest, len(moved), false, nil, fleet.SwitchRequestRecords(moved, "MNOB", cut2)); err != nil {
		return err
	}
	if err := w.jobs(ctx, [2]string{"MNOB", "authorisation"}, [2]string{"MNOC", "switch-request"}, [2]string{"MNOB", "imsi-list"}, [2]string{"MNOC", "imsi-result"}); err != nil {
		return err
	}
	if err := w.smscFor(ctx, "MNOB", sm); err != nil {
		return err
	}
	if err := w.jobs(ctx, [2]string{"MNOC", "imsi-result"}, [2]string{"MNOB", "handover"}, [2]string{"MNOC", "handover-in"}, [2]string{"MNOB", "handover-ack"}); err != nil {
		return err
	}
	return w.smscFor(ctx, "MNOB", sm)
}

// writeKey publishes an actor's public key in the shared keys folder.
func writeKey(w *world, code string) {
	f, err := os.OpenFile(filepath.Join(w.dir, "keys", code+".pub.asc"), os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return
	}
	defer f.Close()
	_ = w.keys[code].WritePublic(f, true)
}

// spoofIgnored checks that the forged PoR for card c changed nothing at
// MNOA: it is in the card's history as ignored, and the card's own PoR
// confirmed it.
func (w *world) spoofIgnored(ctx context.Context, c *fleet.Card) error {
	db := w.parties["MNOA"].rt.Ledger
	hist, err := db.History(ctx, c.ICCID)
	if err != nil {
		return err
	}
	ignored := false
	for _, e := range hist {
		if strings.HasPrefix(e.Reason, "PoR ignored: ") {
			ignored = true
		}
	}
	card, err := db.Card(ctx, c.ICCID)
	if err != nil {
		return err
	}
	if !ignored || card.State != ledger.CardConfirmed {
		return fmt.Errorf("card %s after a forged PoR: %s, ignored event %v", c.ICCID, card.State, ignored)
	}
	return nil
}
