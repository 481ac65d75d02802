package processor_test

import (
	"context"
	"strconv"
	"strings"
	"testing"

	"resub/formats/native"
	"resub/processor"
	"resub/samples/fleet"
)

func releaseRecords(iccid string, idx int, recipient string) func(func(*native.Record) error) error {
	return func(emit func(*native.Record) error) error {
		r := native.NewRecord(native.KeyRelease)
		r.Set(native.FieldICCID, iccid)
		r.Set(native.FieldKeyIndex, strconv.Itoa(idx))
		r.Set(native.FieldRecipient, recipient)
		return emit(r)
	}
}

func requestRecords(id, iccid string, idx int) func(func(*native.Record) error) error {
	return func(emit func(*native.Record) error) error {
		r := native.NewRecord(native.KeyRequest)
		r.Set(native.FieldRequestID, id)
		r.Set(native.FieldICCID, iccid)
		r.Set(native.FieldKeyIndex, strconv.Itoa(idx))
		return emit(r)
	}
}

// auditCount counts the manufacturer's audit lines of action about iccid
// whose detail holds text.
func auditCount(t *testing.T, p *processor.Party, action, iccid, text string) int {
	t.Helper()
	trail, err := p.Ledger.AuditTrail(context.Background(), action)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range trail {
		if e.Subject == iccid && strings.Contains(e.Detail, text) {
			n++
		}
	}
	return n
}

// TestManufacturerRefusals: the manufacturer releases a pair only to the
// operator the holder of the previous index released it to; every other
// key-release and key-request is refused with its reason in the answer
// and in the audit trail; a request ID again gets the same answer without
// a second release.
func TestManufacturerRefusals(t *testing.T) {
	ctx := context.Background()
	x := setup3b(t, 3, true)
	w, m := x.world, x.m
	cx, cy, cz := x.f.Cards[0], x.f.Cards[1], x.f.Cards[2]
	// A card with a list of one pair.
	short, err := fleet.New(fleet.Options{N: 1, ICCIDBody: "8999906", IMSIBase: "001010000200001", Seed: "short", Profile: x.prof.OTA, ListLength: 1})
	if err != nil {
		t.Fatal(err)
	}
	cw := short.Cards[0]
	w.process(m, "factory", &processor.ManufacturerImport{Holder: m.Partners["mno-a"]},
		w.send("FACTORY", "MFR", native.Inventory, 1, true, "tk-factory", short.FactoryRecords(processor.NewTransport(w.tks["tk-factory"]), x.prof.Name, short.Cards, 1)))
	stranger, err := fleet.New(fleet.Options{N: 1, ICCIDBody: "8999907", Seed: "stranger"})
	if err != nil {
		t.Fatal(err)
	}
	unknown := stranger.Cards[0].ICCID

	release := func(from string, iccid string, idx int, to string) *processor.Result {
		return w.process(m, m.PartnerByCode(from).Name, processor.KeyReleaseIntake{}, w.send(from, "MFR", native.KeyRelease, 1, false, "", releaseRecords(iccid, idx, to)))
	}
	request := func(from, id, iccid string, idx int) (*processor.Result, *native.Record) {
		res := w.process(m, m.PartnerByCode(from).Name, processor.KeyRequestIntake{}, w.send(from, "MFR", native.KeyRequest, 1, false, "", requestRecords(id, iccid, idx)))
		o := output(t, res.Outputs, "key-response")
		pt := m.Partners[o.Partner]
		_, recs := w.readFile(o.Path, "MFR", pt.Code, false)
		if len(recs) != 1 {
			t.Fatalf("key-response with %d records", len(recs))
		}
		return res, recs[0]
	}

	// Valid: A releases index 2 of x and z to B; B fetches z's.
	if res := release("MNOA", cx.ICCID, 2, "MNOB"); res.Counts.Accepted != 1 {
		t.Fatalf("A's release of x: %+v", res.Counts)
	}
	if res := release("MNOA", cz.ICCID, 2, "MNOB"); res.Counts.Accepted != 1 {
		t.Fatalf("A's release of z: %+v", res.Counts)
	}
	res, zResp := request("MNOB", "B-z-2", cz.ICCID, 2)
	if res.Counts.Accepted != 1 || zResp.Get(native.FieldStatus) != native.StatusReleased || zResp.Get(native.FieldKi) == "" {
		t.Fatalf("B's request for z: %+v %s", res.Counts, zResp.Get(native.FieldStatus))
	}

	t.Run("key-release", func(t *testing.T) {
		tests := []struct {
			name, from, iccid string
			idx               int
			to, reason        string
		}{
			{"by someone who is not the holder", "MNOB", cy.ICCID, 2, "MNOC", processor.ReasonNotAuthorised},
			{"not the next index", "MNOA", cy.ICCID, 3, "MNOB", processor.ReasonKeyIndex},
			{"beyond the list", "MNOA", cw.ICCID, 2, "MNOB", processor.ReasonListExhausted},
			{"an unknown card", "MNOA", unknown, 2, "MNOB", processor.ReasonUnknownICCID},
			{"to an operator nobody knows", "MNOA", cy.ICCID, 2, "MNOX", processor.ReasonInvalid},
			{"by the former holder", "MNOA", cz.ICCID, 3, "MNOC", processor.ReasonNotAuthorised},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				res := release(tc.from, tc.iccid, tc.idx, tc.to)
				if res.Counts.Rejected != 1 || res.Counts.Accepted != 0 {
					t.Errorf("counts %+v", res.Counts)
				}
				var reason string
				if err := m.Ledger.QueryRow(ctx, `SELECT reason FROM batch_records WHERE batch_id = ?`, res.BatchID).Scan(&reason); err != nil || reason != tc.reason {
					t.Errorf("reason %q, want %s (%v)", reason, tc.reason, err)
				}
				if auditCount(t, m, "key-release-refused", tc.iccid, tc.reason) != 1 {
					t.Errorf("refusal not audited")
				}
				if got := count(t, m, `SELECT COUNT(*) FROM mf_releases WHERE iccid = ? AND key_index = ?`, tc.iccid, tc.idx); got != 0 {
					t.Errorf("recorded as a release")
				}
			})
		}
	})

	t.Run("key-request", func(t *testing.T) {
		tests := []struct {
			name, from, id, iccid string
			idx                   int
			reason                string
		}{
			{"wrong operator", "MNOC", "C-x-2", cx.ICCID, 2, processor.ReasonNotAuthorised},
			{"index not released", "MNOB", "B-y-2", cy.ICCID, 2, processor.ReasonNotAuthorised},
			{"below the card's current index", "MNOB", "B-z-1", cz.ICCID, 1, processor.ReasonKeyIndex},
			{"the former holder's index", "MNOA", "A-z-1", cz.ICCID, 1, processor.ReasonKeyIndex},
			{"beyond the list", "MNOB", "B-z-4", cz.ICCID, 4, processor.ReasonListExhausted},
			{"an unknown card", "MNOB", "B-u-2", unknown, 2, processor.ReasonUnknownICCID},
			{"a request ID reused for another card", "MNOB", "B-z-2", cx.ICCID, 2, processor.ReasonDuplicate},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				res, r := request(tc.from, tc.id, tc.iccid, tc.idx)
				if res.Counts.Rejected != 1 || res.Counts.Accepted != 0 {
					t.Errorf("counts %+v", res.Counts)
				}
				if r.Get(native.FieldStatus) != native.StatusRefused || !strings.EqualFold(r.Get(native.FieldReason), tc.reason) || r.Get(native.FieldICCID) != tc.iccid {
					t.Errorf("answer %s %s for %s, want refused %s", r.Get(native.FieldStatus), r.Get(native.FieldReason), r.Get(native.FieldICCID), tc.reason)
				}
				for _, f := range []string{native.FieldKi, native.FieldOPc, native.FieldKIc, native.FieldKID, native.FieldKIK} {
					if r.Get(f) != "" {
						t.Errorf("a refusal carries %s", f)
					}
				}
				if auditCount(t, m, "key-request-refused", tc.iccid, tc.id) != 1 {
					t.Errorf("refusal not audited once")
				}
			})
		}
	})

	// Nothing changed hands: x is still A's at 1, released to B; z is B's.
	for _, c := range []struct {
		card   *fleet.Card
		holder string
		idx    int
	}{{cx, "MNOA", 1}, {cy, "MNOA", 1}, {cz, "MNOB", 2}, {cw, "MNOA", 1}} {
		var holder string
		var idx int
		if err := m.Ledger.QueryRow(ctx, `SELECT holder, holder_index FROM mf_cards WHERE iccid = ?`, c.card.ICCID).Scan(&holder, &idx); err != nil || holder != c.holder || idx != c.idx {
			t.Errorf("%s: holder %s at %d, want %s at %d (%v)", c.card.ICCID, holder, idx, c.holder, c.idx, err)
		}
	}

	// B asks again with the same request ID: the same answer, no second
	// release.
	res, again := request("MNOB", "B-z-2", cz.ICCID, 2)
	if res.Counts.Accepted != 1 || again.Get(native.FieldStatus) != native.StatusReleased {
		t.Fatalf("the same request again: %+v %s %s", res.Counts, again.Get(native.FieldStatus), again.Get(native.FieldReason))
	}
	tb := m.Partners["mno-b"].Transport
	for _, f := range []string{native.FieldKi, native.FieldOPc, native.FieldKIc, native.FieldKID} {
		first, err1 := tb.Unwrap(zResp.Get(f))
		second, err2 := tb.Unwrap(again.Get(f))
		if err1 != nil || err2 != nil || string(first) != string(second) {
			t.Errorf("%s differs between the answers (%v %v)", f, err1, err2)
		}
	}
	if got := count(t, m, `SELECT COUNT(*) FROM mf_requests WHERE requester = 'MNOB' AND request_id = 'B-z-2'`); got != 1 {
		t.Errorf("%d rows for the request", got)
	}
	if got := auditCount(t, m, "key-released", cz.ICCID, "B-z-2"); got != 1 {
		t.Errorf("z released %d times", got)
	}
}
