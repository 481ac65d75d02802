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

	r := runWithRelay(t, w, node, cards, 30*time.Second)
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
	for _, k := range r.sent {
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
	if receipts != 2*n {
		t.Errorf("%d receipts recorded, %d segments accepted", receipts, 2*n)
	}
	t.Log(r.sum)
}

type relayResult struct {
	sum  *jobs.Summary
	err  error
	sent map[string]int // destination/user data (hex) -> submit_sm seen
}

// runWithRelay runs A's ota-submit job while relaying node-smpp's
// submit_sm to the simulated UICCs and their PoRs back. A submit_sm the
// server refused or throttled never reaches a card.
func runWithRelay(t *testing.T, w *World, node *nodesmsc.Server, cards map[string]*fleet.Card, wait time.Duration) relayResult {
	t.Helper()
	ctx := context.Background()
	done := make(chan relayResult, 1)
	go func() {
		sum, err := w.a.RunJob(ctx, "ota-submit", jobs.RunOptions{Manual: true, Owner: "test", Wait: wait})
		done <- relayResult{sum: sum, err: err}
	}()
	seen := 0
	parts := map[string][][]byte{}
	sent := map[string]int{}
	for {
		subs := node.PDUs("submit_sm")
		for seen < len(subs) {
			ev := subs[seen]
			status, answered := node.Answer(ev)
			if !answered {
				break // not yet: wait for the server's answer
			}
			seen++
			ud, _ := hex.DecodeString(ev["short_message"].(string))
			dest := ev["destination_addr"].(string)
			sent[dest+"/"+ev["short_message"].(string)]++
			if status != 0 {
				continue // the SMSC did not take it
			}
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
		case r := <-done:
			r.sent = sent
			return r
		case <-node.Notify():
		case <-time.After(50 * time.Millisecond):
		}
	}
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

// TestSMPPRefusedDestinationAgainstNodeSMPP: node-smpp refuses every
// submit_sm to one card (ESME_RINVDSTADR): the message never reached the
// card, so it is retried under a new counter, each counter submitted
// once, until the policy's attempts are spent and the card waits for an
// engineer (manual); every other card is confirmed.
func TestSMPPRefusedDestinationAgainstNodeSMPP(t *testing.T) {
	const n = 4
	ctx := context.Background()
	w0, err := fleetOnly(n)
	if err != nil {
		t.Fatal(err)
	}
	bad := w0.Card(0).MSISDN
	node := nodesmsc.Start(t, map[string]any{"system_id": "resub-bench", "password": "bench-pw", "receipt": "DELIVRD", "reject": map[string]int{bad: 0x0B}})
	w, err := NewSMPPWorld(ctx, filepath.Join(t.TempDir(), "w"), n, nil, SMPPOptions{Port: node.Port, Window: 4, Password: "bench-pw"})
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
	r := runWithRelay(t, w, node, cards, 30*time.Second)
	if r.err != nil {
		t.Fatal(r.err)
	}
	counts, _ := w.a.Ledger.CountByState(ctx)
	if counts[ledger.CardConfirmed] != n-1 || counts[ledger.CardManual] != 1 {
		t.Fatalf("cards %v: %s", counts, r.sum)
	}
	for k, v := range r.sent {
		if v != 1 {
			t.Errorf("%s… submitted %d times", k[:40], v)
		}
	}
	rows, err := w.a.Ledger.Query(ctx, `SELECT m.counter, m.state, s.state FROM ota_messages m JOIN smpp_messages s ON s.message_id = m.id WHERE m.msisdn = ? ORDER BY m.id`, bad)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var counters []int64
	for rows.Next() {
		var c int64
		var ms, ss string
		if err := rows.Scan(&c, &ms, &ss); err != nil {
			t.Fatal(err)
		}
		if ms != ledger.MsgFailed || ss != ledger.SubFailed {
			t.Errorf("message with counter %d: %s / %s", c, ms, ss)
		}
		if len(counters) > 0 && c <= counters[len(counters)-1] {
			t.Errorf("counter %d not above %d", c, counters[len(counters)-1])
		}
		counters = append(counters, c)
	}
	if len(counters) != 3 {
		t.Errorf("%d attempts, want the policy's 3", len(counters))
	}
}

// fleetOnly plans the benchmark's fleet (to know its MSISDNs up front).
func fleetOnly(n int) (*fleet.Fleet, error) {
	return fleet.Plan(fleet.Options{N: n, ICCIDBody: "8999901", IMSIBase: "001010000000001", MSISDNBase: "999100000001", Seed: "bench", Counter: 5})
}
