package processor_test

import (
	"context"
	"slices"
	"strings"
	"testing"

	"resub/formats/native"
	"resub/formats/ota"
	"resub/processor"
	"resub/processor/ledger"
	"resub/samples/fleet"
)

// switching is a 3a change under way: A accepted B's list and holds the
// ota-batch of the first attempt.
type switching struct {
	w     *world
	f     *fleet.Fleet
	a, b  *processor.Party
	batch *ledger.Output
	// results are A's imsi-results, in the order B must read them.
	results []*ledger.Output
}

// startSwitch runs a 3a change of n cards up to A's first ota-batch;
// prep may set cards apart and rebuild their simulated UICCs.
func startSwitch(t *testing.T, n int, prep func(f *fleet.Fleet)) *switching {
	return startSwitchFrom(t, n, prep, false)
}

// startSwitchFrom is startSwitch with A's inventory from the SIM vendor's
// output file (viaVendor) or a native inventory.
func startSwitchFrom(t *testing.T, n int, prep func(f *fleet.Fleet), viaVendor bool) *switching {
	w, f, a, b := setup3aFrom(t, n, viaVendor)
	if prep != nil {
		prep(f)
		for _, c := range f.Cards {
			w.smsc.Register(c.MSISDN, c.SIM)
		}
	}
	cut := w.now.AddDate(0, 0, 1)
	w.process(a, "m2m", processor.Authorisation{}, w.send("M2M", "MNOA", native.SwitchAuthorisation, n, false, "", fleet.AuthorisationRecords(f.Cards, "MNOB", cut)))
	res := w.process(b, "m2m", &processor.SwitchRequest{Donor: b.Partners["mno-a"]}, w.send("M2M", "MNOB", native.SwitchRequest, n, false, "", fleet.SwitchRequestRecords(f.Cards, "MNOA", cut)))
	res = w.process(a, "mno-b", &processor.IMSIList{SMSC: a.Partners["smsc"]}, output(t, res.Outputs, "imsi-list").Path)
	if res.Counts.Accepted != n {
		t.Fatalf("imsi-list at A: %+v", res.Counts)
	}
	return &switching{w: w, f: f, a: a, b: b, batch: output(t, res.Outputs, "ota-batch"), results: []*ledger.Output{output(t, res.Outputs, "imsi-result")}}
}

// round plays the SMSC on the pending batch and lets A read the report;
// it returns false when A queued no further message.
func (s *switching) round(t *testing.T) bool {
	res := s.w.process(s.a, "smsc", &processor.OTAReport{}, s.w.runSMSC(s.batch, "MNOA"))
	s.collect(res)
	s.batch = nil
	for _, o := range res.Outputs {
		if o.Type == native.OTABatch.Name {
			s.batch = o
		}
	}
	return s.batch != nil
}

func (s *switching) collect(res *processor.Result) {
	for _, o := range res.Outputs {
		if o.Type == native.IMSIResult.Name {
			s.results = append(s.results, o)
		}
	}
}

// outcomes reads A's imsi-results after the first as B does: the last
// answer per ICCID.
func (s *switching) outcomes(t *testing.T) map[string]*native.Record {
	out := map[string]*native.Record{}
	for _, o := range s.results[1:] {
		_, recs := s.w.readOutput(s.a, o)
		for _, r := range recs {
			out[r.Get(native.FieldICCID)] = r
		}
	}
	return out
}

// deliverResults lets B take every imsi-result.
func (s *switching) deliverResults(t *testing.T) {
	for _, o := range s.results {
		s.w.process(s.b, "mno-a", processor.IMSIResultIntake{}, o.Path)
	}
}

func counters(msgs []*ledger.Message) []int64 {
	var out []int64
	for _, m := range msgs {
		out = append(out, m.Counter)
	}
	return out
}

// TestRetries: a card whose counter is ahead of the inventory answers
// "counter low" and is retried once with a counter jumped by the
// configured step, then confirmed; a card that never reaches the SMSC's
// delivery is retried with the next counter; a card far ahead fails every
// attempt and goes to manual action, reported failed / OTA_FAILED to B,
// whose IMSI for it is retired; a card whose script fails after the
// EF_IMSI write (DF GSM's copy missing) is retried whole, then waits for
// an engineer, reported unknown / OTA_INCOMPLETE: B keeps the IMSI out of
// reuse. No counter value is used twice.
func TestRetries(t *testing.T) {
	ctx := context.Background()
	const inv = 5 // the counter the inventory gives
	var jump int64
	s := startSwitch(t, 5, func(f *fleet.Fleet) {
		f.Cards[0].Pairs[0].KeySet.Counter = inv + 5    // behind by less than one jump
		f.Cards[1].Pairs[0].KeySet.Counter = inv + 1000 // behind by more than every jump
		if err := f.BuildSIMs(); err != nil {
			t.Fatal(err)
		}
		// The profile also updates DF GSM's copy of EF_IMSI, which
		// card 4 lacks: its script fails there on every attempt.
		noCopy := f.Cards[4].SIM
		f.Opts.Profile.GSMIMSIPath = ota.Path{0x3f00, 0x7f20, 0x6f07}
		if err := f.BuildSIMs(); err != nil {
			t.Fatal(err)
		}
		f.Cards[4].SIM = noCopy
	})
	w, f, a, b := s.w, s.f, s.a, s.b
	jump = a.OTA.CounterJump
	maxAttempts := a.Partners["mno-b"].Policy.MaxAttempts
	w.smsc.SetUnreachable(f.Cards[3].MSISDN, true)

	rounds := 1
	for s.round(t) {
		w.smsc.SetUnreachable(f.Cards[3].MSISDN, false)
		if rounds++; rounds > 5 {
			t.Fatal("still retrying after 5 rounds")
		}
	}
	if rounds != maxAttempts {
		t.Errorf("%d rounds, want %d", rounds, maxAttempts)
	}

	first := int64(inv + 1)
	tests := []struct {
		name     string
		card     int
		state    string
		counters []int64
		status   string
		reason   string
		detail   string // in what B is told
	}{
		{"counter low, jumped, confirmed", 0, ledger.CardConfirmed, []int64{first, first + jump}, native.StatusCompleted, "", ""},
		{"counter low on every attempt: manual", 1, ledger.CardManual, []int64{first, first + jump, first + 2*jump}, native.StatusFailed, processor.ReasonOTAFailed, "status"},
		{"first attempt confirmed", 2, ledger.CardConfirmed, []int64{first}, native.StatusCompleted, "", ""},
		{"undelivered, retried with the next counter", 3, ledger.CardConfirmed, []int64{first, first + 1}, native.StatusCompleted, "", ""},
		{"a command after the EF_IMSI write fails on every attempt: manual, never failed", 4, ledger.CardManual, []int64{first, first + 1, first + 2}, native.StatusUnknown, processor.ReasonOTAIncomplete, "EF_IMSI written"},
	}
	outcomes := s.outcomes(t)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := f.Cards[tc.card]
			card, err := a.Ledger.Card(ctx, c.ICCID)
			if err != nil {
				t.Fatal(err)
			}
			if card.State != tc.state {
				t.Errorf("state %s, want %s", card.State, tc.state)
			}
			msgs := messages(t, a, c.ICCID)
			if got := counters(msgs); !slices.Equal(got, tc.counters) {
				t.Errorf("counters %v, want %v", got, tc.counters)
			}
			for i, m := range msgs {
				if m.Attempt != i+1 || m.Kind != "update" {
					t.Errorf("message %d: attempt %d kind %s", i, m.Attempt, m.Kind)
				}
			}
			if got := counter(t, a, c.ICCID, 0); got != tc.counters[len(tc.counters)-1] {
				t.Errorf("key set counter %d, last message's %d", got, tc.counters[len(tc.counters)-1])
			}
			want := c.IMSI
			if tc.state == ledger.CardConfirmed {
				want = card.IMSI // the new one
				if card.IMSI == c.IMSI || card.IMSI != card.NewIMSI {
					t.Errorf("confirmed with IMSI %s (new %s, old %s)", card.IMSI, card.NewIMSI, c.IMSI)
				}
			}
			if tc.state != ledger.CardConfirmed && card.IMSI != c.IMSI {
				t.Errorf("A's ledger holds IMSI %s for a card not confirmed", card.IMSI)
			}
			// The script that failed part way (card 4) wrote ADF.USIM's
			// EF_IMSI before the failing command: the card changed; an
			// engineer decides and the IMSI is never reused.
			if tc.card == 4 {
				want = card.NewIMSI
			}
			if c.SIM.IMSI() != want {
				t.Errorf("the card holds %s, want %s", c.SIM.IMSI(), want)
			}
			r := outcomes[c.ICCID]
			if r == nil {
				t.Fatal("B was told no outcome")
			}
			if r.Get(native.FieldStatus) != tc.status || !strings.EqualFold(r.Get(native.FieldReason), tc.reason) {
				t.Errorf("B was told %s %s (%s), want %s %s", r.Get(native.FieldStatus), r.Get(native.FieldReason), r.Get(native.FieldDetail), tc.status, tc.reason)
			}
			if !strings.Contains(r.Get(native.FieldDetail), tc.detail) {
				t.Errorf("B was told %q, want it to say %q", r.Get(native.FieldDetail), tc.detail)
			}
		})
	}
	noCounterReuse(t, a)

	// B: the failed card's IMSI is retired, the changed-but-incomplete
	// card's kept out of reuse (unknown), the others confirmed.
	s.deliverResults(t)
	for i, c := range f.Cards {
		bc, err := b.Ledger.Card(ctx, c.ICCID)
		if err != nil {
			t.Fatal(err)
		}
		want := ledger.IMSIConfirmed
		switch i {
		case 1:
			want = ledger.IMSIRetired
		case 4:
			want = ledger.IMSIUnknown
		}
		if got := imsiState(t, b, bc.IMSI); got != want {
			t.Errorf("card %d: B's IMSI %s is %s, want %s", i, bc.IMSI, got, want)
		}
	}
}

// TestUnknownOutcome: a card that never answers stays moving after the
// report; past the PoR deadline the deadline sweep makes it unknown and
// tells B unknown / NO_POR; B keeps that IMSI out of reuse, and a later
// request for another card gets a different IMSI.
func TestUnknownOutcome(t *testing.T) {
	ctx := context.Background()
	s := startSwitch(t, 3, nil)
	w, f, a, b := s.w, s.f, s.a, s.b
	off := f.Cards[1]
	off.SIM.SetOff(true)
	if s.round(t) {
		t.Fatal("a retry was queued")
	}
	if st := cardState(t, a, off.ICCID); st != ledger.CardMoving {
		t.Fatalf("silent card is %s after the report", st)
	}
	// Before the deadline the sweep finds nothing.
	res, err := a.RunSweep(ctx, "ota-deadline", &processor.OTADeadline{SMSC: a.Partners["smsc"]}, false)
	if err != nil || res.Counts.Records != 0 || len(res.Outputs) != 0 {
		t.Fatalf("sweep before the deadline: %+v %v", res, err)
	}
	w.now = pastDeadlines(t, a)
	res, err = a.RunSweep(ctx, "ota-deadline", &processor.OTADeadline{SMSC: a.Partners["smsc"]}, false)
	if err != nil {
		t.Fatal(err)
	}
	w.deliverAll(a, res.Outputs)
	if res.Counts.Records != 1 || res.Counts.Messages != 0 {
		t.Errorf("deadline sweep: %+v", res.Counts)
	}
	for _, o := range res.Outputs {
		if o.Type == native.OTABatch.Name {
			t.Errorf("a 3a card without answer was sent %s", o.Name)
		}
	}
	s.collect(res)
	card, _ := a.Ledger.Card(ctx, off.ICCID)
	if card.State != ledger.CardUnknown {
		t.Errorf("silent card is %s", card.State)
	}
	msgs := messages(t, a, off.ICCID)
	if len(msgs) != 1 || msgs[0].State != ledger.MsgUnknown {
		t.Errorf("silent card's messages: %+v", msgs)
	}
	// Nothing more for it: a second sweep is empty.
	if res, err := a.RunSweep(ctx, "ota-deadline", &processor.OTADeadline{SMSC: a.Partners["smsc"]}, false); err != nil || res.Counts.Records != 0 {
		t.Errorf("second sweep: %+v %v", res, err)
	}
	r := s.outcomes(t)[off.ICCID]
	if r == nil || r.Get(native.FieldStatus) != native.StatusUnknown || !strings.EqualFold(r.Get(native.FieldReason), processor.ReasonNoPoR) || r.Get(native.FieldIMSI) != card.NewIMSI {
		t.Fatalf("B was told %v", r)
	}

	s.deliverResults(t)
	bc, _ := b.Ledger.Card(ctx, off.ICCID)
	unknownIMSI := bc.IMSI
	if got := imsiState(t, b, unknownIMSI); got != ledger.IMSIUnknown {
		t.Fatalf("B's IMSI of the silent card is %s", got)
	}
	// Another card of B's customer asks to move: it gets another IMSI,
	// and the unknown one stays reserved.
	other, err := fleet.New(fleet.Options{N: 1, ICCIDBody: "8999905", IMSIBase: "001010000000900", MSISDNBase: "999100000900", Seed: "other"})
	if err != nil {
		t.Fatal(err)
	}
	req := w.send("M2M", "MNOB", native.SwitchRequest, 2, false, "", fleet.SwitchRequestRecords([]*fleet.Card{other.Cards[0], off}, "MNOA", w.now.AddDate(0, 0, 1)))
	res = w.process(b, "m2m", &processor.SwitchRequest{Donor: b.Partners["mno-a"]}, req)
	if res.Counts.Accepted != 1 || res.Counts.Rejected != 1 {
		t.Errorf("new switch request: %+v", res.Counts)
	}
	nc, err := b.Ledger.Card(ctx, other.Cards[0].ICCID)
	if err != nil {
		t.Fatal(err)
	}
	if nc.IMSI == unknownIMSI || nc.IMSI == "" {
		t.Errorf("new card got IMSI %q (the unknown one is %s)", nc.IMSI, unknownIMSI)
	}
	if got := imsiState(t, b, unknownIMSI); got != ledger.IMSIUnknown {
		t.Errorf("the unknown IMSI is now %s", got)
	}
	if n := count(t, b, `SELECT COUNT(*) FROM imsi_allocations WHERE imsi = ?`, unknownIMSI); n != 1 {
		t.Errorf("the unknown IMSI has %d allocations", n)
	}
	if off.SIM.IMSI() != off.IMSI {
		t.Errorf("the silent card changed to %s", off.SIM.IMSI())
	}
}
