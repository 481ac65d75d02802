package processor_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"resub/formats/native"
	"resub/processor"
	"resub/processor/ledger"
)

// TestProbe3b: after an unanswered 3b switch, A reads EF_IMSI under the
// old key before anything else. A card that did not change goes back to
// active; a card that changed (its new IMSI read back under the old key,
// or a security error because it uses the next pair already) goes to
// manual action as switched, unconfirmed. No update is ever sent again.
func TestProbe3b(t *testing.T) {
	tests := []struct {
		name    string
		atReset bool
		// lost: the card got the update but its report never reached A;
		// otherwise the card was off.
		lost      bool
		state     string
		index     int
		newIMSI   bool
		reasonHas string
	}{
		{"card off: unchanged, back to active", true, false, ledger.CardActive, 1, false, "unchanged"},
		{"report lost, index at reset: new IMSI under the old key", true, true, ledger.CardManual, 1, true, "switched, unconfirmed"},
		{"report lost, index at once: security error under the old key", false, true, ledger.CardManual, 2, true, "switched, unconfirmed"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			x := setup3b(t, 2, tc.atReset)
			w, a, b := x.world, x.a, x.b
			silent, other := x.f.Cards[0], x.f.Cards[1]
			res := x.request(t, a, b, x.f.Cards)
			batch := output(t, res.Outputs, "ota-batch")
			if tc.lost {
				// The SMSC delivers, the cards change, the report is lost.
				w.runSMSCTo(batch, "MNOA")
				if cur, pending := silent.SIM.KeyIndex(); cur+pending < 2 {
					t.Fatalf("the card did not take the update: index %d pending %d", cur, pending)
				}
			} else {
				silent.SIM.SetOff(true)
				res = w.process(a, "smsc", &processor.OTAReport{}, w.runSMSCTo(batch, "MNOA"))
				if st := cardState(t, a, other.ICCID); st != ledger.CardConfirmed {
					t.Fatalf("the other card is %s", st)
				}
				silent.SIM.SetOff(false)
			}
			if st := cardState(t, a, silent.ICCID); st != ledger.CardMoving {
				t.Fatalf("silent card is %s before the deadline", st)
			}

			w.now = pastDeadlines(t, a)
			sweep, err := a.RunSweep(ctx, "ota-deadline", &processor.OTADeadline{SMSC: a.Partners["smsc"]}, false)
			if err != nil {
				t.Fatal(err)
			}
			w.deliverAll(a, sweep.Outputs)
			if st := cardState(t, a, silent.ICCID); st != ledger.CardUnknown {
				t.Fatalf("silent card is %s after the deadline", st)
			}
			_, recs := w.readOutput(a, output(t, sweep.Outputs, "imsi-result"))
			if len(recs) == 0 || recs[0].Get(native.FieldStatus) != native.StatusUnknown {
				t.Errorf("B was not told unknown")
			}
			probe := output(t, sweep.Outputs, "ota-batch")
			_, probes := w.readOutput(a, probe)
			// Lost reports: both cards are probed.
			want := map[string]bool{silent.ICCID: true, other.ICCID: tc.lost}
			for _, p := range probes {
				if !want[p.Get(native.FieldICCID)] {
					t.Errorf("probe for %s", p.Get(native.FieldICCID))
				}
			}
			if len(probes) != len(want)-1 && !tc.lost || tc.lost && len(probes) != 2 {
				t.Fatalf("probe batch: %d messages", len(probes))
			}
			msgs := messages(t, a, silent.ICCID)
			if len(msgs) != 2 || msgs[1].Kind != "probe" || msgs[1].KeyIndex != 1 || msgs[1].Counter <= msgs[0].Counter {
				t.Fatalf("messages after the deadline: %+v", msgs)
			}

			res = w.process(a, "smsc", &processor.OTAReport{}, w.runSMSCTo(probe, "MNOA"))
			for _, o := range res.Outputs {
				if o.Type == native.OTABatch.Name {
					t.Errorf("the probe's answer queued %s", o.Name)
				}
			}
			card, err := a.Ledger.Card(ctx, silent.ICCID)
			if err != nil {
				t.Fatal(err)
			}
			if card.State != tc.state {
				t.Errorf("after the probe: %s, want %s", card.State, tc.state)
			}
			hist, err := a.Ledger.History(ctx, silent.ICCID)
			if err != nil || len(hist) == 0 || !strings.Contains(hist[len(hist)-1].Reason, tc.reasonHas) {
				t.Errorf("last event %+v, want a reason with %q (%v)", hist[len(hist)-1], tc.reasonHas, err)
			}
			if tc.state == ledger.CardActive && (card.NewIMSI != "" || card.IMSI != silent.IMSI) {
				t.Errorf("back to active with IMSI %s, new %q", card.IMSI, card.NewIMSI)
			}
			if changed := silent.SIM.IMSI() != silent.IMSI; changed != tc.newIMSI {
				t.Errorf("the card holds %s", silent.SIM.IMSI())
			}
			if cur, _ := silent.SIM.KeyIndex(); cur != tc.index {
				t.Errorf("the card is at index %d, want %d", cur, tc.index)
			}

			// No resend: the update once, the probe once; later sweeps
			// find nothing.
			msgs = messages(t, a, silent.ICCID)
			kinds := []string{}
			for _, m := range msgs {
				kinds = append(kinds, m.Kind)
			}
			if strings.Join(kinds, " ") != "update probe" {
				t.Errorf("messages: %v", kinds)
			}
			w.now = w.now.Add(48 * time.Hour)
			if sweep, err := a.RunSweep(ctx, "ota-deadline", &processor.OTADeadline{SMSC: a.Partners["smsc"]}, false); err != nil || sweep.Counts.Messages != 0 {
				t.Errorf("a later sweep: %+v %v", sweep, err)
			}
			if n := len(messages(t, a, silent.ICCID)); n != 2 {
				t.Errorf("%d messages in the end", n)
			}
			noCounterReuse(t, a)
			if got := count(t, a, `SELECT COUNT(*) FROM card_secrets WHERE key_index > 1`); got != 0 {
				t.Errorf("A holds %d secrets beyond index 1", got)
			}
		})
	}
}
