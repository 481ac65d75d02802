package processor_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"strings"
	"testing"

	"resub/formats/native"
	"resub/formats/ota"
	"resub/processor"
	"resub/processor/ledger"
	"resub/samples/fleet"
)

// The handover sweep by sets takes exactly the cards the card-at-a-time
// sweep takes — confirmed, for this recipient; not another recipient's,
// not one still moving, not a 3a card whose key set has no algorithm —
// numbers them in ICCID order, tells 3a from 3b by the profile, and
// leaves the same ledger and the same handover and key-release files.
// The file is read in pages of a few cards, several read at once: the
// records come out once each, in order.
func TestHandoverSweepSameAsPerRecord(t *testing.T) {
	const n = 120 // several cards a core
	defer processor.SetHandoverPageSize(7)()
	run := func(step func(a *processor.Party) processor.SweepStep) (string, *processor.Result, map[string][]string) {
		ctx := context.Background()
		w, f, a, _ := setup3a(t, n)
		w.partner(a, "mfr", "MFR", "manufacturer", "", nil, false)
		w.partner(a, "mno-c", "MNOC", "operator", "tk-bc", nil, false)
		p3b := *w.prof
		o := *w.prof.OTA
		o.Name = "usim-3b"
		o.KeyIndex = &ota.KeyIndexCommand{TAR: ota.TAR{0xb0, 0, 0x20}, Template: ota.APDU{0x80, 0xe2, 0, 0, 1, 0}, IndexOffset: 5}
		p3b.Name, p3b.OTA = "usim-3b", &o
		a.Profiles["usim-3b"] = &p3b
		set := func(i int, state, recipient, profile string) {
			err := a.Ledger.InTx(ctx, func(tx *ledger.Tx) error {
				_, err := tx.Exec(ctx, `UPDATE cards SET state = ?, recipient = ?, profile = ?, new_imsi = imsi,
					key_index = CASE WHEN ? = 'usim-3b' THEN 1 ELSE 0 END, list_length = 4 WHERE iccid = ?`,
					state, recipient, profile, profile, f.Cards[i].ICCID)
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
		}
		for i := range n {
			switch {
			case i%10 == 3:
				set(i, ledger.CardConfirmed, "MNOC", w.prof.Name) // another recipient's
			case i%10 == 5:
				set(i, ledger.CardMoving, "MNOB", w.prof.Name) // not yet confirmed
			case i%10 == 7:
				set(i, ledger.CardActive, "", w.prof.Name)
			case i%4 == 0:
				set(i, ledger.CardConfirmed, "MNOB", "usim-3b")
			default:
				set(i, ledger.CardConfirmed, "MNOB", w.prof.Name)
			}
		}
		// Key sets in use without an algorithm (a ledger from before it
		// was recorded): a 3a card waits, confirmed; a 3b card carries no
		// key set and goes.
		for i := range n {
			if i%10 != 1 && i%20 != 8 {
				continue
			}
			err := a.Ledger.InTx(ctx, func(tx *ledger.Tx) error {
				_, err := tx.Exec(ctx, `UPDATE key_sets SET kic_alg = '', kid_alg = '',
					key_index = (SELECT key_index FROM cards WHERE cards.iccid = key_sets.iccid) WHERE iccid = ?`, f.Cards[i].ICCID)
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
		}
		res, err := a.RunSweep(ctx, "handover", step(a), false)
		if err != nil {
			t.Fatal(err)
		}
		for i := 1; i < n; i += 10 {
			if st := cardState(t, a, f.Cards[i].ICCID); st != ledger.CardConfirmed {
				t.Errorf("card %d, its key set without algorithm, is %s", i, st)
			}
		}
		w.deliverAll(a, res.Outputs)
		files := map[string][]string{}
		tk := processor.NewTransport(w.tks["tk-ab"])
		byICCID := map[string]*fleet.Card{}
		for _, c := range f.Cards {
			byICCID[c.ICCID] = c
		}
		for _, out := range res.Outputs {
			_, recs := w.readOutput(a, out)
			for _, r := range recs {
				var vals []string
				card := byICCID[r.Get(native.FieldICCID)]
				for _, f := range r.Schema().Fields {
					if plain, ok := cardSecretOf(card, f.Name); ok && out.Type == "handover" && r.Get(native.FieldKind) == native.Kind3a {
						// Wrapped afresh for B: it must open under B's
						// transport key to the card's own secret.
						got, err := tk.Unwrap(r.Get(f.Name))
						if err != nil || !bytes.Equal(got, plain) {
							t.Errorf("%s of %s: %x, %v; want the card's %x", f.Name, card.ICCID, got, err, plain)
						}
						vals = append(vals, f.Name+"="+hex.EncodeToString(got))
						continue
					}
					vals = append(vals, f.Name+"="+r.Get(f.Name))
				}
				files[out.Type] = append(files[out.Type], strings.Join(vals, " "))
			}
		}
		return dumpLedger(t, a), res, files
	}
	setDump, res, files := run(func(a *processor.Party) processor.SweepStep {
		return &processor.Handover{Recipient: a.Partners["mno-b"], Manufacturer: a.Partners["mfr"]}
	})
	refDump, refRes, refFiles := run(func(a *processor.Party) processor.SweepStep {
		return &processor.HandoverPerRecord{Recipient: a.Partners["mno-b"], Manufacturer: a.Partners["mfr"]}
	})
	want := 0
	for i := range n {
		if i%10 != 3 && i%10 != 5 && i%10 != 7 && i%10 != 1 {
			want++
		}
	}
	if res.Counts.Records != want || res.Counts.Accepted != want || res.Counts != refRes.Counts {
		t.Errorf("counts %+v, want %d cards; the card-at-a-time sweep counted %+v", res.Counts, want, refRes.Counts)
	}
	if len(files["handover"]) != want || len(files["key-release"]) == 0 || len(files) != 2 {
		t.Errorf("files: %d handover records, %d key-release records, %d files", len(files["handover"]), len(files["key-release"]), len(files))
	}
	// In ICCID order, each card once (the ICCID is a record's second field).
	last := ""
	for i, r := range files["handover"] {
		iccid := strings.Fields(r)[1]
		if iccid <= last {
			t.Errorf("handover record %d: %s after %s", i+1, iccid, last)
		}
		last = iccid
	}
	for typ, recs := range refFiles {
		if strings.Join(recs, "\n") != strings.Join(files[typ], "\n") {
			t.Errorf("%s differs:\nby sets:\n%s\ncard at a time:\n%s", typ, strings.Join(files[typ], "\n"), strings.Join(recs, "\n"))
		}
	}
	if setDump != refDump {
		a, b := strings.Split(setDump, "\n"), strings.Split(refDump, "\n")
		for i := range min(len(a), len(b)) {
			if a[i] != b[i] {
				t.Fatalf("the ledgers differ first at line %d:\nby sets:        %s\ncard at a time: %s", i, a[i], b[i])
			}
		}
		t.Fatalf("the ledgers differ in length: %d and %d lines", len(a), len(b))
	}
}

// cardSecretOf is a fleet card's secret of a handover field.
func cardSecretOf(c *fleet.Card, field string) ([]byte, bool) {
	if c == nil {
		return nil, false
	}
	ks := c.Keys(1)
	switch field {
	case native.FieldKi:
		return c.Ki(1), true
	case native.FieldOPc:
		return c.OPc, true
	case native.FieldKIc:
		return ks.KIc, true
	case native.FieldKID:
		return ks.KID, true
	case native.FieldKIK:
		return ks.KIK, true
	}
	return nil, false
}
