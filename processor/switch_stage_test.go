package processor_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"resub/formats/native"
	"resub/processor"
	"resub/processor/ledger"
	"resub/samples/fleet"
)

// switchWorld is a recipient with two small IMSI ranges and cards already
// in its ledger in every state a switch request meets: one waiting for its
// handover (requested), one active, one the donor refused (rejected), one
// released, and an IMSI of the first range allocated out of order.
func switchWorld(t *testing.T, cards []*fleet.Card) (*world, *processor.Party) {
	t.Helper()
	ctx := context.Background()
	w := newWorld(t)
	b := w.party("MNOB", mustRanges(t, "999-99:0000000000-0000099999"), []processor.Range{
		{Name: "b-one", From: "999990000000001", To: "999990000000006"},
		{Name: "b-two", From: "999990000000101", To: "999990000000104"},
	})
	w.partner(b, "m2m", "M2M", "m2m-operator", "", nil, false)
	w.partner(b, "mno-a", "MNOA", "operator", "tk-ab", mustRanges(t, "001-01"), false)
	err := b.Ledger.InTx(ctx, func(tx *ledger.Tx) error {
		for i, st := range map[int]string{1: "requested", 7: ledger.CardActive, 4: "rejected", 11: ledger.CardReleased, 5: "requested", 18: "incoming"} {
			c := &ledger.Card{ICCID: cards[i].ICCID, IMSI: fmt.Sprintf("99999000000090%d", i%10), State: "requested", Owner: "M2M", Source: "MNOA"}
			if _, err := tx.InsertCard(ctx, c); err != nil {
				return err
			}
			if st != "requested" {
				if err := tx.Transition(ctx, c.ICCID, nil, st, "test: earlier", "", nil); err != nil {
					return err
				}
			}
		}
		_, err := tx.Exec(ctx, `INSERT INTO imsi_allocations (imsi, iccid, state, ref, created_at, updated_at) VALUES ('999990000000004', '8999999999999999999', 'retired', 'earlier', '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z')`)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return w, b
}

// switchRecords is a hand-made switch request: ICCID, date, donor a line.
func switchRecords(lines [][3]string) func(func(*native.Record) error) error {
	return func(emit func(*native.Record) error) error {
		r := native.NewRecord(native.SwitchRequest)
		for _, l := range lines {
			r.Set(native.FieldICCID, l[0])
			r.Set(native.FieldCutoverDate, l[1])
			r.Set(native.FieldDonor, l[2])
			if err := emit(r); err != nil {
				return err
			}
		}
		return nil
	}
}

// dumpLedger is what a step leaves in a ledger: every answer, card, card
// event, IMSI allocation and cursor. A card's secrets fingerprint is left
// out: it is keyed by the party's own master key.
func dumpLedger(t *testing.T, p *processor.Party) string {
	t.Helper()
	return dumpQueries(t, p,
		`SELECT batch_id, line, iccid, imsi, status, reason, detail, partner, data FROM batch_records ORDER BY batch_id, line`,
		`SELECT iccid, imsi, msisdn, state, profile, algorithm, owner, source, key_index, list_length, new_imsi, recipient, cutover,
			request_ref, attempts, secrets_fp <> '', created_at, updated_at, released_at, erased_at FROM cards ORDER BY iccid`,
		`SELECT iccid, at, from_state, to_state, reason, ref FROM card_events ORDER BY iccid, id`,
		`SELECT * FROM imsi_allocations ORDER BY imsi`,
		`SELECT * FROM alloc_cursors ORDER BY range_name`,
	)
}

// dumpQueries is every row of each query, as text.
func dumpQueries(t *testing.T, p *processor.Party, queries ...string) string {
	t.Helper()
	var b strings.Builder
	for _, q := range queries {
		rows, err := p.Ledger.Query(context.Background(), q)
		if err != nil {
			t.Fatal(err)
		}
		cols, _ := rows.Columns()
		fmt.Fprintf(&b, "%s\n", q)
		for rows.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				t.Fatal(err)
			}
			fmt.Fprintf(&b, "  %v\n", vals)
		}
		rows.Close()
	}
	return b.String()
}

// Every rule of the switch request alone and together, the IMSIs handed
// out in file order from the first range (skipping a number allocated
// before), then the second, until both run out: the set-based step gives
// the answers listed here, and leaves exactly the ledger and the
// imsi-list the record-at-a-time path leaves on the same input.
func TestSwitchRequestJudgesEveryLine(t *testing.T) {
	f, err := fleet.New(fleet.Options{N: 20, Seed: "switch-stage"})
	if err != nil {
		t.Fatal(err)
	}
	c := f.Cards
	w0, _ := switchWorld(t, c) // for the dates only
	future := w0.now.AddDate(0, 0, 3).Format("2006-01-02")
	past := w0.now.AddDate(0, 0, -1).Format("2006-01-02")
	badICCID := []byte(c[19].ICCID)
	badICCID[len(badICCID)-1] = '0' + (badICCID[len(badICCID)-1]-'0'+1)%10
	const (
		ok       = "requested"
		rejected = "rejected"
	)
	cases := []struct {
		iccid, date, donor     string
		status, reason, detail string
		imsi                   string
	}{
		{c[0].ICCID, future, "MNOA", ok, "", "", "999990000000001"},
		{c[1].ICCID, future, "MNOA", rejected, processor.ReasonAlreadyMoving, "card is requested here", ""},
		{c[2].ICCID, past, "MNOA", rejected, processor.ReasonDatePast, "cut-over date " + past + " is past", ""},
		{c[3].ICCID, future, "ZZZZ", rejected, processor.ReasonInvalid, "no donor operator known for this card", ""},
		// A card the donor refused earlier is requested again.
		{c[4].ICCID, future, "MNOA", ok, "", "", "999990000000002"},
		// Two rules at once: the first in order answers.
		{c[5].ICCID, past, "MNOA", rejected, processor.ReasonDatePast, "cut-over date " + past + " is past", ""},
		{c[6].ICCID, past, "ZZZZ", rejected, processor.ReasonInvalid, "no donor operator known for this card", ""},
		{c[7].ICCID, future, "MNOA", rejected, processor.ReasonAlreadyMoving, "card is active here", ""},
		// The reader's rejections.
		{string(badICCID), future, "MNOA", rejected, processor.ReasonInvalid, "", ""},
		{c[0].ICCID, future, "MNOA", rejected, processor.ReasonDuplicate, "", ""},
		// 999990000000004 was allocated before: skipped.
		{c[9].ICCID, future, "", ok, "", "", "999990000000003"},
		{c[11].ICCID, future, "MNOA", ok, "", "", "999990000000005"},
		{c[12].ICCID, future, "MNOA", ok, "", "", "999990000000006"},
		// The first range has run out: the second.
		{c[13].ICCID, future, "MNOA", ok, "", "", "999990000000101"},
		{c[14].ICCID, future, "MNOA", ok, "", "", "999990000000102"},
		{c[15].ICCID, future, "MNOA", ok, "", "", "999990000000103"},
		{c[16].ICCID, future, "MNOA", ok, "", "", "999990000000104"},
		{c[17].ICCID, future, "MNOA", rejected, processor.ReasonInternal, "no free IMSI in our ranges", ""},
		// Moving and no IMSI left: the card's state answers.
		{c[18].ICCID, future, "MNOA", rejected, processor.ReasonAlreadyMoving, "card is incoming here", ""},
		{c[10].ICCID, past, "MNOA", rejected, processor.ReasonDatePast, "cut-over date " + past + " is past", ""},
	}
	var lines [][3]string
	for _, cs := range cases {
		lines = append(lines, [3]string{cs.iccid, cs.date, cs.donor})
	}
	run := func(step func(donor *processor.Partner) processor.FileStep) (string, *processor.Result, []*native.Record, *world, *processor.Party) {
		w, b := switchWorld(t, c)
		res := w.process(b, "m2m", step(b.Partners["mno-a"]), w.send("M2M", "MNOB", native.SwitchRequest, len(lines), false, "", switchRecords(lines)))
		_, list := w.readOutput(b, output(t, res.Outputs, "imsi-list"))
		return dumpLedger(t, b), res, list, w, b
	}
	setDump, res, list, _, b := run(func(d *processor.Partner) processor.FileStep { return &processor.SwitchRequest{Donor: d} })
	refDump, refRes, refList, _, _ := run(func(d *processor.Partner) processor.FileStep { return &processor.SwitchRequestPerRecord{Donor: d} })

	rows, err := b.Ledger.Query(context.Background(), `SELECT status, reason, detail, imsi, partner FROM batch_records WHERE batch_id = ? ORDER BY line`, res.BatchID)
	if err != nil {
		t.Fatal(err)
	}
	var answers []ledger.BatchRecord
	for rows.Next() {
		var r ledger.BatchRecord
		if err := rows.Scan(&r.Status, &r.Reason, &r.Detail, &r.IMSI, &r.Partner); err != nil {
			t.Fatal(err)
		}
		answers = append(answers, r)
	}
	rows.Close()
	if len(answers) != len(cases) {
		t.Fatalf("%d answers for %d lines", len(answers), len(cases))
	}

	accepted := 0
	var wantList []string
	for i, cs := range cases {
		r := answers[i]
		if r.Status != cs.status || r.Reason != cs.reason || (cs.detail != "" && r.Detail != cs.detail) || r.IMSI != cs.imsi {
			t.Errorf("line %d (%s): %s %s %q %s, want %s %s %q %s", i+1, cs.iccid, r.Status, r.Reason, r.Detail, r.IMSI, cs.status, cs.reason, cs.detail, cs.imsi)
		}
		if cs.status == ok {
			accepted++
			wantList = append(wantList, cs.iccid+" "+cs.imsi+" "+cs.date)
		}
	}
	if res.Counts.Accepted != accepted || res.Counts.Rejected != len(cases)-accepted || res.Counts != refRes.Counts {
		t.Errorf("counts %+v, want %d accepted of %d; the record-at-a-time path counted %+v", res.Counts, accepted, len(cases), refRes.Counts)
	}
	var gotList, gotRefList []string
	for _, r := range list {
		gotList = append(gotList, r.Get(native.FieldICCID)+" "+r.Get(native.FieldIMSI)+" "+r.Get(native.FieldCutoverDate))
	}
	for _, r := range refList {
		gotRefList = append(gotRefList, r.Get(native.FieldICCID)+" "+r.Get(native.FieldIMSI)+" "+r.Get(native.FieldCutoverDate))
	}
	if strings.Join(gotList, "\n") != strings.Join(wantList, "\n") || strings.Join(gotRefList, "\n") != strings.Join(wantList, "\n") {
		t.Errorf("imsi-list\n%s\nthe record-at-a-time path's\n%s\nwant\n%s", strings.Join(gotList, "\n"), strings.Join(gotRefList, "\n"), strings.Join(wantList, "\n"))
	}
	if setDump != refDump {
		t.Errorf("the ledgers differ\nby sets:\n%s\nrecord at a time:\n%s", setDump, refDump)
	}
}

// Thousands of lines (several pages of the allocation pass, several
// windows of allocated numbers), a range with every seventh number
// allocated before that runs out midway: the set-based step leaves
// exactly the ledger the record-at-a-time path leaves.
func TestSwitchRequestManyLinesSameAsPerRecord(t *testing.T) {
	const n = 6000
	f, err := fleet.New(fleet.Options{N: n, Seed: "switch-many"})
	if err != nil {
		t.Fatal(err)
	}
	run := func(step func(donor *processor.Partner) processor.FileStep) (string, processor.Counts) {
		ctx := context.Background()
		w := newWorld(t)
		b := w.party("MNOB", mustRanges(t, "999-99:0000000000-0000099999"), []processor.Range{
			{Name: "b-one", From: "999990000010000", To: "999990000014999"},
			{Name: "b-two", From: "999990000020000", To: "999990000029999"},
		})
		w.partner(b, "m2m", "M2M", "m2m-operator", "", nil, false)
		w.partner(b, "mno-a", "MNOA", "operator", "tk-ab", mustRanges(t, "001-01"), false)
		err := b.Ledger.InTx(ctx, func(tx *ledger.Tx) error {
			in := tx.Inserter("imsi_allocations", []string{"imsi", "iccid", "state", "ref", "created_at", "updated_at"}, 256)
			for v := 10000; v < 15000; v += 7 {
				if err := in.Add(ctx, fmt.Sprintf("9999900000%05d", v), "8999999999999999999", "retired", "earlier", "2026-01-01T00:00:00Z", "2026-01-01T00:00:00Z"); err != nil {
					return err
				}
			}
			// An IMSI of another length, between the range's bounds in
			// text order, takes nothing from it.
			if err := in.Add(ctx, "99999000001001", "8999999999999999998", "retired", "earlier", "2026-01-01T00:00:00Z", "2026-01-01T00:00:00Z"); err != nil {
				return err
			}
			return in.Flush(ctx)
		})
		if err != nil {
			t.Fatal(err)
		}
		res := w.process(b, "m2m", step(b.Partners["mno-a"]), w.send("M2M", "MNOB", native.SwitchRequest, n, false, "",
			fleet.SwitchRequestRecords(f.Cards, "MNOA", w.now.AddDate(0, 0, 1))))
		return dumpLedger(t, b), res.Counts
	}
	setDump, counts := run(func(d *processor.Partner) processor.FileStep { return &processor.SwitchRequest{Donor: d} })
	refDump, refCounts := run(func(d *processor.Partner) processor.FileStep { return &processor.SwitchRequestPerRecord{Donor: d} })
	if counts.Accepted != n || counts != refCounts {
		t.Errorf("counts %+v; the record-at-a-time path's %+v", counts, refCounts)
	}
	if setDump != refDump {
		a, b := strings.Split(setDump, "\n"), strings.Split(refDump, "\n")
		for i := range min(len(a), len(b)) {
			if a[i] != b[i] {
				t.Fatalf("the ledgers differ first at line %d:\nby sets:          %s\nrecord at a time: %s", i, a[i], b[i])
			}
		}
		t.Fatalf("the ledgers differ in length: %d and %d lines", len(a), len(b))
	}
}

// Ranges that overlap (nothing in the configuration forbids it): the
// second range, once the first runs out, skips every number the first
// handed out in the same run, as it skips those allocated before; no IMSI
// is handed out twice and the ledger is the record-at-a-time path's.
func TestSwitchRequestOverlappingRangesSameAsPerRecord(t *testing.T) {
	const n = 5000
	f, err := fleet.New(fleet.Options{N: n, Seed: "switch-overlap"})
	if err != nil {
		t.Fatal(err)
	}
	run := func(step func(donor *processor.Partner) processor.FileStep) (string, processor.Counts) {
		w := newWorld(t)
		b := w.party("MNOB", mustRanges(t, "999-99:0000000000-0000099999"), []processor.Range{
			// 3000 numbers, then a range over its last 2000 and 4000 more.
			{Name: "b-one", From: "999990000010000", To: "999990000012999"},
			{Name: "b-two", From: "999990000011000", To: "999990000016999"},
		})
		w.partner(b, "m2m", "M2M", "m2m-operator", "", nil, false)
		w.partner(b, "mno-a", "MNOA", "operator", "tk-ab", mustRanges(t, "001-01"), false)
		res := w.process(b, "m2m", step(b.Partners["mno-a"]), w.send("M2M", "MNOB", native.SwitchRequest, n, false, "",
			fleet.SwitchRequestRecords(f.Cards, "MNOA", w.now.AddDate(0, 0, 1))))
		return dumpLedger(t, b), res.Counts
	}
	setDump, counts := run(func(d *processor.Partner) processor.FileStep { return &processor.SwitchRequest{Donor: d} })
	refDump, refCounts := run(func(d *processor.Partner) processor.FileStep { return &processor.SwitchRequestPerRecord{Donor: d} })
	if counts.Accepted != n || counts != refCounts {
		t.Errorf("counts %+v; the record-at-a-time path's %+v", counts, refCounts)
	}
	// 3000 from the first range, then 2000 of the second's numbers after
	// the first's end: the cursors say where each stopped.
	for _, want := range []string{"[b-one 999990000013000]", "[b-two 999990000015000]"} {
		if !strings.Contains(setDump, want) {
			t.Errorf("no cursor %s", want)
		}
	}
	if setDump != refDump {
		a, b := strings.Split(setDump, "\n"), strings.Split(refDump, "\n")
		for i := range min(len(a), len(b)) {
			if a[i] != b[i] {
				t.Fatalf("the ledgers differ first at line %d:\nby sets:          %s\nrecord at a time: %s", i, a[i], b[i])
			}
		}
		t.Fatalf("the ledgers differ in length: %d and %d lines", len(a), len(b))
	}
}
