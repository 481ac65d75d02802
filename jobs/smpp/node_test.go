package smpp

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"resub/samples/nodesmsc"
)

// memStore is a Store over a list of segments, recording what comes back.
type memStore struct {
	mu       sync.Mutex
	segs     []Segment
	next     int
	results  []Result
	inbound  []Inbound
	recorded []time.Time // when each Received returned
	delay    time.Duration
	// settled says when a run may end.
	settled func(s *memStore) bool
}

func (m *memStore) Next(_ context.Context, n int) ([]Segment, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []Segment
	for m.next < len(m.segs) && len(out) < n {
		out = append(out, m.segs[m.next])
		m.next++
	}
	return out, nil
}

func (m *memStore) Submitted(_ context.Context, rs []Result) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, r := range rs {
		if r.NotSent {
			// Back in the queue, as the ledger does.
			m.segs = append(m.segs, m.segFor(r.Key))
			continue
		}
		m.results = append(m.results, r)
	}
	return nil
}

func (m *memStore) segFor(k Key) Segment {
	for _, s := range m.segs {
		if s.Key == k {
			return s
		}
	}
	panic("no segment")
}

func (m *memStore) Received(_ context.Context, in []Inbound) error {
	time.Sleep(m.delay)
	m.mu.Lock()
	defer m.mu.Unlock()
	m.inbound = append(m.inbound, in...)
	m.recorded = append(m.recorded, time.Now())
	return nil
}

func (m *memStore) Pending(context.Context) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.next < len(m.segs) || (m.settled != nil && !m.settled(m)) {
		return 1, nil
	}
	return 0, nil
}

func (m *memStore) snapshot() ([]Result, []Inbound) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]Result(nil), m.results...), append([]Inbound(nil), m.inbound...)
}

func testConfig(port int) Config {
	return Config{
		Addr: fmt.Sprintf("127.0.0.1:%d", port), SystemID: "resub-ota", Password: []byte("s3cret"),
		Source: Address{TON: 0, NPI: 1, Addr: "7700"}, Window: 10, Rate: 1000,
		EnquireLink: 30 * time.Second, Timeout: 3 * time.Second,
	}
}

var nodeCreds = map[string]any{"system_id": "resub-ota", "password": "s3cret"}

func scenario(kv ...any) map[string]any {
	m := map[string]any{}
	for k, v := range nodeCreds {
		m[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i].(string)] = kv[i+1]
	}
	return m
}

// otaSegments makes n messages to distinct MSISDNs; every third is
// concatenated over two segments (UDH 070003…017000 / 050003…02).
func otaSegments(n int) []Segment {
	var out []Segment
	for i := 1; i <= n; i++ {
		dest := Address{TON: 1, NPI: 1, Addr: fmt.Sprintf("4915100000%03d", i)}
		if i%3 == 0 {
			ref := byte(i)
			out = append(out,
				Segment{Key: Key{int64(i), 1}, Dest: dest, UD: append([]byte{0x07, 0x00, 0x03, ref, 0x02, 0x01, 0x70, 0x00}, make([]byte, 132)...), Validity: 24 * time.Hour, Priority: 1},
				Segment{Key: Key{int64(i), 2}, Dest: dest, UD: append([]byte{0x05, 0x00, 0x03, ref, 0x02, 0x02}, 0xAA, 0xBB, byte(i)), Validity: 24 * time.Hour, Priority: 1, Last: true})
			continue
		}
		out = append(out, Segment{Key: Key{int64(i), 1}, Dest: dest, UD: []byte{0x02, 0x70, 0x00, 0x00, 0x10, 0x0d, byte(i)}, Validity: 24 * time.Hour, Priority: 1, Last: true})
	}
	return out
}

func allSubmitted(want int) func(*memStore) bool {
	return func(m *memStore) bool { return len(m.results) >= want }
}

func TestNodeSMPPSubmitFieldsReceiptsAndPoR(t *testing.T) {
	segs := otaSegments(6)
	por := "027100000e0ab00011000000000000000001613200"
	n := nodesmsc.Start(t, scenario("receipt", "DELIVRD", "por", map[string]string{"4915100000003": por}))
	st := &memStore{segs: segs, delay: 100 * time.Millisecond}
	st.settled = func(m *memStore) bool {
		rc, mo := 0, 0
		for _, in := range m.inbound {
			if in.Receipt != nil {
				rc++
			} else {
				mo++
			}
		}
		return rc == len(segs) && mo == 1
	}
	c := &Client{Cfg: testConfig(n.Port), Store: st, Poll: 50 * time.Millisecond}
	stats, err := c.Run(context.Background(), time.Now().Add(20*time.Second), func(p int) bool { return p == 0 })
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	if _, in := st.snapshot(); !st.settled(st) {
		t.Fatalf("not settled: %d inbound: %+v; server: %v", len(in), in, n.All())
	}
	subs := n.PDUs("submit_sm")
	if len(subs) != len(segs) {
		t.Fatalf("server saw %d submit_sm, want %d", len(subs), len(segs))
	}
	for i, ev := range subs {
		sg := segs[i]
		want := map[string]any{
			"esm_class": 64.0, "protocol_id": 127.0, "data_coding": 246.0, "registered_delivery": 1.0, "priority_flag": 1.0,
			"source_addr": "7700", "source_addr_ton": 0.0, "source_addr_npi": 1.0,
			"destination_addr": sg.Dest.Addr, "dest_addr_ton": 1.0, "dest_addr_npi": 1.0,
			"short_message": hex.EncodeToString(sg.UD), "service_type": "",
		}
		if v, _ := ev["validity_seconds"].(float64); v < 86400-60 || v > 86400+60 {
			t.Errorf("submit_sm %d: validity %v s, want a relative 24h", i, ev["validity_seconds"])
		}
		for k, v := range want {
			if ev[k] != v {
				t.Errorf("submit_sm %d (message %d segment %d): %s = %v, want %v", i, sg.Message, sg.Seq, k, ev[k], v)
			}
		}
	}
	bind := n.PDUs("bind_transceiver")
	if len(bind) != 1 || bind[0]["system_id"] != "resub-ota" || bind[0]["interface_version"] != 52.0 {
		t.Errorf("bind as seen: %v", bind)
	}
	res, in := st.snapshot()
	if len(res) != len(segs) || stats.Submitted != len(segs) {
		t.Fatalf("results %d, stats %+v", len(res), stats)
	}
	ids := map[string]bool{}
	for _, r := range res {
		if r.Status != 0 || r.SMSCID == "" || r.Unknown || ids[r.SMSCID] {
			t.Errorf("result %+v", r)
		}
		ids[r.SMSCID] = true
	}
	var mos []Inbound
	for _, x := range in {
		switch {
		case x.Receipt != nil:
			if !ids[x.Receipt.SMSCID] || x.Receipt.State != "DELIVRD" {
				t.Errorf("receipt %+v", x.Receipt)
			}
		default:
			mos = append(mos, x)
		}
	}
	if len(mos) != 1 || hex.EncodeToString(mos[0].UD) != por || mos[0].From.Addr != "4915100000003" || mos[0].To.Addr != "7700" || mos[0].ESMClass != 0x40 {
		t.Errorf("MO PoR as received: %+v", mos)
	}
	// Every deliver_sm was answered, each only after what it carried
	// was recorded.
	resps := n.WaitCount("deliver_sm_resp", len(segs)+1)
	if len(resps) != len(segs)+1 {
		t.Errorf("%d deliver_sm_resp, want %d", len(resps), len(segs)+1)
	}
	st.mu.Lock()
	first := st.recorded[0]
	st.mu.Unlock()
	for _, r := range resps {
		at := time.UnixMilli(int64(r["t"].(float64)))
		if at.Before(first.Add(-time.Millisecond)) {
			t.Errorf("deliver_sm_resp at %v before the first record at %v", at, first)
		}
		if r["command_status"] != 0.0 {
			t.Errorf("deliver_sm_resp status %v", r["command_status"])
		}
	}
	n.WaitFor(func(ev map[string]any) bool { return ev["command"] == "unbind" })
}

func TestNodeSMPPWindowAndRate(t *testing.T) {
	segs := otaSegments(30) // 40 segments
	n := nodesmsc.Start(t, scenario("hold_ms", 150))
	st := &memStore{segs: segs}
	st.settled = allSubmitted(len(segs))
	cfg := testConfig(n.Port)
	cfg.Window, cfg.Rate = 4, 1000
	c := &Client{Cfg: cfg, Store: st, Poll: 50 * time.Millisecond}
	if _, err := c.Run(context.Background(), time.Now().Add(30*time.Second), func(p int) bool { return p == 0 }); err != nil {
		t.Fatal(err)
	}
	n.Send(map[string]any{"op": "stats"})
	ev := n.WaitFor(func(ev map[string]any) bool { return ev["event"] == "stats" })
	if ev["max_outstanding"] != 4.0 {
		t.Errorf("at most %v submit_sm awaited their response at the server; window is 4", ev["max_outstanding"])
	}
	// Segment order: each message's segments in order.
	subs := n.PDUs("submit_sm")
	for i, ev := range subs {
		if ev["short_message"] != hex.EncodeToString(segs[i].UD) {
			t.Fatalf("submit_sm %d out of order", i)
		}
	}

	// Rate: 20 per second, 21 segments take at least a second.
	segs = otaSegments(16) // 21 segments
	n2 := nodesmsc.Start(t, scenario())
	st2 := &memStore{segs: segs}
	st2.settled = allSubmitted(len(segs))
	cfg = testConfig(n2.Port)
	cfg.Window, cfg.Rate = 100, 20
	c = &Client{Cfg: cfg, Store: st2, Poll: 50 * time.Millisecond}
	if _, err := c.Run(context.Background(), time.Now().Add(30*time.Second), func(p int) bool { return p == 0 }); err != nil {
		t.Fatal(err)
	}
	subs = n2.PDUs("submit_sm")
	if len(subs) != len(segs) {
		t.Fatalf("%d submit_sm", len(subs))
	}
	span := time.Duration(subs[len(subs)-1]["t"].(float64)-subs[0]["t"].(float64)) * time.Millisecond
	if span < 950*time.Millisecond {
		t.Errorf("21 submit_sm at rate 20/s within %v", span)
	}
}

func TestNodeSMPPThrottledResubmitsTheSamePDU(t *testing.T) {
	segs := otaSegments(4)
	n := nodesmsc.Start(t, scenario("throttle", 2, "queue_full", 1))
	st := &memStore{segs: segs}
	st.settled = allSubmitted(len(segs))
	c := &Client{Cfg: testConfig(n.Port), Store: st, Poll: 50 * time.Millisecond}
	stats, err := c.Run(context.Background(), time.Now().Add(30*time.Second), func(p int) bool { return p == 0 })
	if err != nil {
		t.Fatal(err)
	}
	if stats.Throttled != 3 {
		t.Errorf("throttled %d, want 3", stats.Throttled)
	}
	res, _ := st.snapshot()
	seen := map[Key]int{}
	for _, r := range res {
		seen[r.Key]++
		if r.Status != 0 || r.SMSCID == "" {
			t.Errorf("result %+v", r)
		}
	}
	for _, sg := range segs {
		if seen[sg.Key] != 1 {
			t.Errorf("segment %v recorded %d times", sg.Key, seen[sg.Key])
		}
	}
	// The server saw 3 more submit_sm than segments, each a repeat of
	// an earlier PDU's message.
	subs := n.PDUs("submit_sm")
	if len(subs) != len(segs)+3 {
		t.Fatalf("%d submit_sm, want %d", len(subs), len(segs)+3)
	}
	count := map[string]int{}
	for _, ev := range subs {
		count[ev["short_message"].(string)]++
	}
	extra := 0
	for _, v := range count {
		extra += v - 1
	}
	if extra != 3 || len(count) != len(segs) {
		t.Errorf("repeats %d over %d distinct messages", extra, len(count))
	}
}

func TestNodeSMPPDroppedMidWindowNeverResubmits(t *testing.T) {
	segs := otaSegments(9) // 12 segments
	n := nodesmsc.Start(t, scenario("drop_after", 3, "hold_ms", 300))
	st := &memStore{segs: segs}
	st.settled = func(m *memStore) bool { return len(m.results) >= len(segs) }
	cfg := testConfig(n.Port)
	cfg.Window = 3
	c := &Client{Cfg: cfg, Store: st, Poll: 50 * time.Millisecond}
	stats, err := c.Run(context.Background(), time.Now().Add(30*time.Second), func(p int) bool { return p == 0 })
	if err != nil {
		t.Fatal(err)
	}
	if stats.Sessions != 2 || stats.Unknown != 3 {
		t.Errorf("stats %+v: want 2 sessions and 3 unknown", stats)
	}
	res, _ := st.snapshot()
	unknown := map[Key]bool{}
	for _, r := range res {
		if r.Unknown {
			unknown[r.Key] = true
		}
	}
	if len(unknown) != 3 {
		t.Fatalf("unknown outcomes: %v", unknown)
	}
	// Nothing in flight at the drop went out again.
	count := map[string]int{}
	for _, ev := range n.PDUs("submit_sm") {
		count[ev["short_message"].(string)]++
	}
	for _, sg := range segs {
		want := 1
		if count[hex.EncodeToString(sg.UD)] != want {
			t.Errorf("segment %v submitted %d times", sg.Key, count[hex.EncodeToString(sg.UD)])
		}
	}
}

func TestNodeSMPPWrongPasswordAndUnreachable(t *testing.T) {
	n := nodesmsc.Start(t, scenario())
	cfg := testConfig(n.Port)
	cfg.Password = []byte("wrong")
	c := &Client{Cfg: cfg, Store: &memStore{}}
	_, err := c.Run(context.Background(), time.Now().Add(5*time.Second), nil)
	var be *BindError
	if !errors.As(err, &be) || be.Status != 0x0E {
		t.Fatalf("want bind refused with ESME_RINVPASWD, got %v", err)
	}
	if msg := err.Error(); !containsAll(msg, "ESME_RINVPASWD", "0x0000000e") || containsAll(msg, "wrong") {
		t.Errorf("error text %q", msg)
	}
	// Nobody listening.
	cfg = testConfig(1)
	cfg.Timeout = 500 * time.Millisecond
	c = &Client{Cfg: cfg, Store: &memStore{}}
	_, err = c.Run(context.Background(), time.Now().Add(5*time.Second), nil)
	var ue *UnreachableError
	if !errors.As(err, &ue) {
		t.Fatalf("want unreachable, got %v", err)
	}
}

func TestNodeSMPPReceiptTextAndUnparseable(t *testing.T) {
	segs := otaSegments(2)
	n := nodesmsc.Start(t, scenario("receipt", "UNDELIV", "receipt_text_only", true, "garbage_mo", true))
	st := &memStore{segs: segs}
	st.settled = func(m *memStore) bool { return len(m.inbound) >= 3 }
	c := &Client{Cfg: testConfig(n.Port), Store: st, Poll: 50 * time.Millisecond}
	stats, err := c.Run(context.Background(), time.Now().Add(20*time.Second), func(p int) bool { return p == 0 })
	if err != nil {
		t.Fatal(err)
	}
	_, in := st.snapshot()
	var receipts, bad int
	for _, x := range in {
		switch {
		case x.Bad != "":
			bad++
		case x.Receipt != nil:
			receipts++
			if x.Receipt.State != "UNDELIV" || x.Receipt.SMSCID == "" {
				t.Errorf("receipt %+v", x.Receipt)
			}
		}
	}
	if receipts != 2 || bad != 1 || stats.Bad != 1 {
		t.Errorf("receipts %d, bad %d, stats %+v", receipts, bad, stats)
	}
	// The unparseable one was answered too (permanent application error),
	// and the session went on.
	resps := n.WaitCount("deliver_sm_resp", 3)
	if len(resps) != 3 {
		t.Errorf("%d deliver_sm_resp", len(resps))
	}
	n.WaitFor(func(ev map[string]any) bool { return ev["command"] == "unbind" })
}

func containsAll(s string, subs ...string) bool {
	for _, x := range subs {
		if !contains(s, x) {
			return false
		}
	}
	return true
}

func contains(s, sub string) bool {
	return len(sub) == 0 || (len(s) >= len(sub) && (s[:len(sub)] == sub || contains(s[1:], sub)))
}

func TestNodeSMPPTransmitterAndReceiver(t *testing.T) {
	segs := otaSegments(3)
	n := nodesmsc.Start(t, scenario("receipt", "DELIVRD"))
	st := &memStore{segs: segs}
	st.settled = func(m *memStore) bool { return len(m.inbound) >= len(segs) }
	cfg := testConfig(n.Port)
	cfg.Split = true
	c := &Client{Cfg: cfg, Store: st, Poll: 50 * time.Millisecond}
	if _, err := c.Run(context.Background(), time.Now().Add(20*time.Second), func(p int) bool { return p == 0 }); err != nil {
		t.Fatal(err)
	}
	if len(n.WaitCount("bind_transmitter", 1)) != 1 || len(n.WaitCount("bind_receiver", 1)) != 1 || len(n.PDUs("bind_transceiver")) != 0 {
		t.Fatalf("binds: %v", n.All())
	}
	// Submissions on the transmitter, receipts answered on the receiver.
	var txConn, rxConn float64
	for _, ev := range n.All() {
		switch ev["command"] {
		case "bind_transmitter":
			txConn = ev["conn"].(float64)
		case "bind_receiver":
			rxConn = ev["conn"].(float64)
		}
	}
	for _, ev := range n.PDUs("submit_sm") {
		if ev["conn"] != txConn {
			t.Errorf("submit_sm on connection %v, the transmitter is %v", ev["conn"], txConn)
		}
	}
	resps := n.WaitCount("deliver_sm_resp", len(segs))
	for _, ev := range resps {
		if ev["conn"] != rxConn {
			t.Errorf("deliver_sm_resp on connection %v, the receiver is %v", ev["conn"], rxConn)
		}
	}
	if len(resps) != len(segs) {
		t.Errorf("%d receipts answered", len(resps))
	}
	if _, in := st.snapshot(); len(in) != len(segs) {
		t.Errorf("%d receipts recorded", len(in))
	}
}

func TestNodeSMPPEnquireLinkWhenIdle(t *testing.T) {
	n := nodesmsc.Start(t, scenario())
	st := &memStore{}
	cfg := testConfig(n.Port)
	cfg.EnquireLink = 200 * time.Millisecond
	c := &Client{Cfg: cfg, Store: st, Poll: 50 * time.Millisecond}
	// Nothing to do: the session stays bound until the deadline, alive.
	if _, err := c.Run(context.Background(), time.Now().Add(1200*time.Millisecond), func(int) bool { return false }); err != nil {
		t.Fatal(err)
	}
	if got := n.WaitCount("enquire_link", 3); len(got) < 3 {
		t.Errorf("%d enquire_link in 1.2 s at a 200 ms interval", len(got))
	}
}

func TestNodeSMPPResponseTimeoutIsUnknown(t *testing.T) {
	segs := otaSegments(2)
	n := nodesmsc.Start(t, scenario("hold_ms", 1500))
	st := &memStore{segs: segs}
	st.settled = allSubmitted(len(segs))
	cfg := testConfig(n.Port)
	cfg.Timeout = 300 * time.Millisecond
	c := &Client{Cfg: cfg, Store: st, Poll: 50 * time.Millisecond}
	stats, err := c.Run(context.Background(), time.Now().Add(10*time.Second), func(p int) bool { return p == 0 })
	if err != nil {
		t.Fatal(err)
	}
	res, _ := st.snapshot()
	for _, r := range res {
		if !r.Unknown {
			t.Errorf("result %+v: want unknown (no response in time)", r)
		}
	}
	if len(res) != len(segs) || stats.Unknown != len(segs) || stats.Sessions < 1 {
		t.Errorf("%d results, stats %+v", len(res), stats)
	}
	if got := len(n.PDUs("submit_sm")); got != len(segs) {
		t.Errorf("%d submit_sm: an unanswered one went out again", got)
	}
}

// TestNodeSMPPStopRecordsWhatCame: a run stopped (SIGTERM in the daemon)
// sends nothing more, waits for the responses in flight, records them and
// gives back what it took but never sent.
func TestNodeSMPPStopRecordsWhatCame(t *testing.T) {
	segs := otaSegments(12)
	n := nodesmsc.Start(t, scenario("hold_ms", 400))
	st := &memStore{segs: segs}
	cfg := testConfig(n.Port)
	cfg.Window = 3
	c := &Client{Cfg: cfg, Store: st, Poll: 50 * time.Millisecond}
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(200*time.Millisecond, cancel)
	if _, err := c.Run(ctx, time.Now().Add(10*time.Second), func(int) bool { return false }); err != nil && !errors.Is(err, context.Canceled) {
		t.Fatal(err)
	}
	res, _ := st.snapshot()
	sent := len(n.WaitCount("submit_sm", 1))
	if sent == 0 || len(res) != sent {
		t.Fatalf("%d submit_sm went out, %d outcomes recorded", sent, len(res))
	}
	for _, r := range res {
		if r.Unknown || r.SMSCID == "" {
			t.Errorf("result %+v: the response was awaited and recorded", r)
		}
	}
	st.mu.Lock()
	back := len(st.segs) - len(segs) // given back (NotSent) and queued again
	st.mu.Unlock()
	if sent+back < 3 || sent >= len(segs) {
		t.Errorf("%d sent, %d given back", sent, back)
	}
}

// TestNodeSMPPStopFinishesAStartedMessage: a run stopped between the
// segments of a concatenated message still sends the rest of it (a card
// can use only a whole message), then gives back only whole messages.
func TestNodeSMPPStopFinishesAStartedMessage(t *testing.T) {
	var segs []Segment
	for _, s := range otaSegments(12) {
		if s.Key.Seq > 1 || !s.Last {
			segs = append(segs, s) // the two-segment messages only
		}
	}
	n := nodesmsc.Start(t, scenario("hold_ms", 300))
	st := &memStore{segs: segs}
	cfg := testConfig(n.Port)
	cfg.Window = 1
	c := &Client{Cfg: cfg, Store: st, Poll: 50 * time.Millisecond}
	ctx, cancel := context.WithCancel(context.Background())
	// The run is told to stop once the SMSC has the first segment, whose
	// response it holds 300 ms.
	go func() {
		n.WaitCount("submit_sm", 1)
		cancel()
	}()
	if _, err := c.Run(ctx, time.Now().Add(10*time.Second), func(int) bool { return false }); err != nil && !errors.Is(err, context.Canceled) {
		t.Fatal(err)
	}
	res, _ := st.snapshot()
	sent := map[int64][]int{}
	for _, r := range res {
		sent[r.Key.Message] = append(sent[r.Key.Message], r.Key.Seq)
	}
	if len(sent) == 0 || len(sent) == len(segs)/2 {
		t.Fatalf("%d of %d messages went out: the stop did not land mid-run", len(sent), len(segs)/2)
	}
	for msg, seqs := range sent {
		if len(seqs) != 2 {
			t.Errorf("message %d: segments %v went out, a card cannot use a part", msg, seqs)
		}
	}
	st.mu.Lock()
	back := st.segs[len(segs):]
	st.mu.Unlock()
	for _, s := range back {
		if s.Key.Seq == 2 && sent[s.Key.Message] != nil {
			t.Errorf("segment %v given back although its message's first went out", s.Key)
		}
	}
	if got := len(n.PDUs("submit_sm")); got != len(res) {
		t.Errorf("%d submit_sm, %d outcomes recorded", got, len(res))
	}
}
