package sqlite_test

import (
	"context"
	"path/filepath"
	"testing"

	"resub/processor/ledger"
)

// A line that got an IMSI before under the same reference (a request
// processed again) gets that IMSI again and allocates nothing new; a new
// line gets the next number after the cursor; the stage leaves no table
// behind.
func TestSwitchStageRerunAllocatesNothingNew(t *testing.T) {
	ctx := context.Background()
	db := open(t, filepath.Join(t.TempDir(), "l.db"))
	rng := ledger.IMSIRange{Name: "b-main", From: "999990000000001", To: "999990000000009"}
	var first string
	if err := db.InTx(ctx, func(tx *ledger.Tx) error {
		var err error
		first, err = tx.AllocateIMSI(ctx, rng.Name, rng.From, rng.To, "89001", "req.txt:3")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	take := ledger.SwitchTake{BatchID: 1, State: "requested", Reopen: []string{"rejected"}, Event: "switch request", Owner: "M2M", Ref: "req.txt:",
		Ranges: []ledger.IMSIRange{rng}, Accepted: "requested", Rejected: "rejected",
		OtherState: ledger.Verdict{Reason: "ALREADY_MOVING", Detail: "card is ", DetailEnd: " here"},
		Exhausted:  ledger.Verdict{Reason: "INTERNAL", Detail: "no free IMSI"}}
	err := db.InTx(ctx, func(tx *ledger.Tx) error {
		st, err := tx.StageSwitch(ctx)
		if err != nil {
			return err
		}
		defer st.Close(ctx)
		for _, l := range []ledger.SwitchLine{
			{Line: 3, ICCID: "89001", Partner: "mno-a", Source: "MNOA", Cutover: "2026-12-24"},
			{Line: 4, ICCID: "89002", Partner: "mno-a", Source: "MNOA", Cutover: "2026-12-24"},
		} {
			if err := st.Add(ctx, l); err != nil {
				return err
			}
		}
		out, err := st.Take(ctx, take)
		if err != nil {
			return err
		}
		if out.Accepted != 2 || out.Rejected != 0 || len(out.Partners) != 1 || out.Partners[0] != "mno-a" {
			t.Errorf("outcome %+v", out)
		}
		return st.Close(ctx)
	})
	if err != nil {
		t.Fatal(err)
	}
	for iccid, want := range map[string]string{"89001": first, "89002": "999990000000002"} {
		c, err := db.Card(ctx, iccid)
		if err != nil || c.IMSI != want || c.State != "requested" {
			t.Errorf("card %s: %+v %v, want IMSI %s", iccid, c, err, want)
		}
	}
	var n int
	if err := db.QueryRow(ctx, `SELECT COUNT(*) FROM imsi_allocations`).Scan(&n); err != nil || n != 2 {
		t.Errorf("%d allocations (%v), want 2", n, err)
	}
	var next string
	if err := db.QueryRow(ctx, `SELECT next FROM alloc_cursors WHERE range_name = ?`, rng.Name).Scan(&next); err != nil || next != "999990000000003" {
		t.Errorf("cursor %s (%v)", next, err)
	}
}

// With no range to take from (or every range used up before the file),
// no line gets an IMSI: each is answered with the exhausted verdict, no
// card is made and nothing is allocated.
func TestSwitchStageNoRangeLeftEveryLineExhausted(t *testing.T) {
	ctx := context.Background()
	for _, ranges := range map[string][]ledger.IMSIRange{
		"none":    nil,
		"used up": {{Name: "b-main", From: "999990000000001", To: "999990000000002"}},
	} {
		db := open(t, filepath.Join(t.TempDir(), "l.db"))
		err := db.InTx(ctx, func(tx *ledger.Tx) error {
			_, err := tx.Exec(ctx, `INSERT INTO alloc_cursors (range_name, next) VALUES ('b-main', '999990000000003')`)
			if err != nil {
				return err
			}
			st, err := tx.StageSwitch(ctx)
			if err != nil {
				return err
			}
			defer st.Close(ctx)
			for i, iccid := range []string{"89001", "89002", "89003"} {
				if err := st.Add(ctx, ledger.SwitchLine{Line: i + 3, ICCID: iccid, Partner: "mno-a", Source: "MNOA", Cutover: "2026-12-24"}); err != nil {
					return err
				}
			}
			out, err := st.Take(ctx, ledger.SwitchTake{BatchID: 1, State: "requested", Event: "switch request", Owner: "M2M", Ref: "req.txt:",
				Ranges: ranges, Accepted: "requested", Rejected: "rejected",
				OtherState: ledger.Verdict{Reason: "ALREADY_MOVING", Detail: "card is ", DetailEnd: " here"},
				Exhausted:  ledger.Verdict{Reason: "INTERNAL", Detail: "no free IMSI"}})
			if err != nil {
				return err
			}
			if out.Accepted != 0 || out.Rejected != 3 || len(out.Partners) != 0 {
				t.Errorf("%d ranges: outcome %+v, want 3 rejected", len(ranges), out)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		var answers, cards, allocs int
		if err := db.QueryRow(ctx, `SELECT (SELECT COUNT(*) FROM batch_records WHERE reason = 'INTERNAL' AND imsi = '' AND status = 'rejected'),
			(SELECT COUNT(*) FROM cards), (SELECT COUNT(*) FROM imsi_allocations)`).Scan(&answers, &cards, &allocs); err != nil {
			t.Fatal(err)
		}
		if answers != 3 || cards != 0 || allocs != 0 {
			t.Errorf("%d ranges: %d lines answered exhausted, %d cards, %d allocations; want 3, 0, 0", len(ranges), answers, cards, allocs)
		}
	}
}
