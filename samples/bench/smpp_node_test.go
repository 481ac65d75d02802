package bench

import (
	"context"
	"encoding/hex"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"resub/jobs"
	"resub/processor/ledger"
	"resub/samples/fleet"
	"resub/samples/nodesmsc"
)

// TestSMPPCutOverAgainstNodeSMPP: MNOA's OTA loop runs end to end
// against node-smpp, an SMSC the project did not write: A's production
// ota-submit job binds and submits; every submit_sm, as node-smpp decoded
// it, goes to the simulated UICC of its destination once the message's
// segments are all there; the card's PoR comes back through node-smpp as
// a mobile-originated deliver_sm, with node-smpp's own receipts. The
// SMSC throttles twice on the way. Every card ends confirmed and no
// segment went out twice except the throttled ones.
func TestSMPPCutOverAgainstNodeSMPP(t *testing.T) {
	const n = 12
	ctx := context.Background()
	node := nodesmsc.Start(t, map[string]any{"system_id": "resub-bench", "password": "bench-pw", "receipt": "DELIVRD", "throttle": 2})
	w, err := NewSMPPWorld(ctx, filepath.Join(t.TempDir(), "w"), n, nil, SMPPOptions{Port: node.Port, Window: 5, Password: "bench-pw"})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	for _, f := range []func(context.Context) error{w.Generate, w.Import, w.SwitchRequest, w.IMSIList} {
		if err := f(ctx); err != nil {
			t.Fatal(err)
		}
	}
	w.fleet.Opts.Profile = w.a.Party.Profiles[profileName].OTA
	cards := map[string]*fleet.Card{}
	for c := range w.fleet.All() {
		if err := w.fleet.BuildSIM(c); err != nil {
			t.Fatal(err)
		}
		cards[c.MSISDN] = c
	}

	type res struct {
		sum *jobs.Summary
		err error
	}
	done := make(chan res, 1)
	go func() {
		sum, err := w.a.RunJob(ctx, "ota-submit", jobs.RunOptions{Manual: true, Owner: "test", Wait: 30 * time.Second})
		done <- res{sum, err}
	}()
	// The relay: node-smpp's submit_sm to the cards, their PoRs back.
	seen := 0
	parts := map[string][][]byte{}
	sent := map[string]int{}
	accepted := map[int]bool{} // the first two submit_sm are throttled
	var r res
relay:
	for {
		subs := node.PDUs("submit_sm")
		for ; seen < len(subs); seen++ {
			ev := subs[seen]
			ud, _ := hex.DecodeString(ev["short_message"].(string))
			dest := ev["destination_addr"].(string)
			sent[dest+"/"+ev["short_message"].(string)]++
			if seen < 2 {
				continue // throttled: the SMSC did not take it
			}
			accepted[seen] = true
			// Reassembled by the concatenation IE, as a handset does (a
			// throttled segment comes again after the next one).
			parts[dest] = append(parts[dest], ud)
			total, _ := concatOf(ud)
			if len(parts[dest]) != total {
				continue
			}
			slices.SortFunc(parts[dest], func(a, b []byte) int { _, pa := concatOf(a); _, pb := concatOf(b); return pa - pb })
			c := cards[dest]
			if c == nil {
				t.Fatalf("submit_sm to %s: no such card", dest)
			}
			por, err := c.SIM.Receive(parts[dest])
			delete(parts, dest)
			if err != nil {
				t.Fatalf("card %s: %v", dest, err)
			}
			node.Send(map[string]any{"op": "mo", "source": dest, "dest": ev["source_addr"], "ud": hex.EncodeToString(por)})
		}
		select {
		case r = <-done:
			break relay
		case <-node.Notify():
		case <-time.After(50 * time.Millisecond):
		}
	}
	if r.err != nil {
		t.Fatalf("ota-submit: %v", r.err)
	}
	counts, err := w.a.Ledger.CountByState(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if counts[ledger.CardConfirmed] != n {
		t.Fatalf("cards %v after the run: %s", counts, r.sum)
	}
	repeats := 0
	for _, k := range sent {
		repeats += k - 1
	}
	if repeats != 2 {
		t.Errorf("%d repeated submit_sm, want the 2 throttled ones", repeats)
	}
	// Every receipt node-smpp sent was answered after it was recorded.
	var receipts int
	if err := w.a.Ledger.QueryRow(ctx, `SELECT COUNT(*) FROM smpp_events WHERE kind = 'receipt' AND outcome = 'delivered'`).Scan(&receipts); err != nil {
		t.Fatal(err)
	}
	if receipts != len(accepted) {
		t.Errorf("%d receipts recorded, %d segments accepted", receipts, len(accepted))
	}
	t.Log(r.sum)
}

// concatOf reads a UDH's concatenation IE (8-bit reference).
func concatOf(ud []byte) (total, part int) {
	if len(ud) == 0 || int(ud[0])+1 > len(ud) {
		return 1, 1
	}
	h := ud[1 : 1+int(ud[0])]
	for len(h) >= 2 && 2+int(h[1]) <= len(h) {
		if h[0] == 0x00 && h[1] == 3 {
			return int(h[3]), int(h[4])
		}
		h = h[2+int(h[1]):]
	}
	return 1, 1
}
