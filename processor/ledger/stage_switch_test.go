package ledger_test

import (
	"context"
	"fmt"
	"testing"

	"resub/processor/ledger"
	"resub/processor/ledger/ledgertest"
	"resub/processor/ledger/postgres"
)

// The switch stage's page of a donor's accepted lines (the imsi-list
// rendered from the stage) costs the same on the last page as on the
// first, on PostgreSQL's plans for the page: it is cut from the staged
// lines by their key before each finds its IMSI. (A join of the two
// staged tables had the server merge them from the first line on every
// page: a minute of the step at a million lines.)
func TestSwitchRequestedPagesWalkTheStageByItsKey(t *testing.T) {
	ctx := context.Background()
	db, err := postgres.Open(ctx, ledgertest.NewDatabase(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	const (
		page  = 1000
		lines = 12 * page
	)
	take := ledger.SwitchTake{BatchID: 1, State: "requested", Event: "switch request", Owner: "M2M", Ref: "req.txt:",
		Ranges:   []ledger.IMSIRange{{Name: "r1", From: "999990000000000", To: "999990000999999"}},
		Accepted: "requested", Rejected: "rejected",
		OtherState: ledger.Verdict{Reason: "ALREADY_MOVING", Detail: "card is ", DetailEnd: " here"},
		Exhausted:  ledger.Verdict{Reason: "INTERNAL", Detail: "no free IMSI"}}
	err = db.InTx(ctx, func(tx *ledger.Tx) error {
		st, err := tx.StageSwitch(ctx)
		if err != nil {
			return err
		}
		defer st.Close(ctx)
		for i := 1; i <= lines; i++ {
			if err := st.Add(ctx, ledger.SwitchLine{Line: i, ICCID: fmt.Sprint(89000000000000000 + i), Partner: "mno-a", Source: "MNOA", Cutover: "2026-12-24"}); err != nil {
				return err
			}
		}
		out, err := st.Take(ctx, take)
		if err != nil {
			return err
		}
		if out.Accepted != lines {
			t.Fatalf("outcome %+v", out)
		}
		read := 0
		if err := st.Requested(ctx, "mno-a", page, func(r ledger.BatchRecord) error {
			read++
			if r.Line != read || r.ICCID != fmt.Sprint(89000000000000000+read) || r.IMSI != fmt.Sprintf("99999%010d", read-1) {
				t.Errorf("line %d: %+v", read, r)
			}
			return nil
		}); err != nil {
			return err
		}
		if read != lines {
			t.Fatalf("%d lines read, want %d", read, lines)
		}
		for _, tb := range []string{"stage_b_switch", "stage_b_switch_alloc"} {
			if _, err := tx.Exec(ctx, `ANALYZE `+tb); err != nil {
				return err
			}
		}
		requested := func(after int) (string, []any) { return st.RequestedPage("mno-a", after, page) }
		checkPageCost(ctx, t, tx, "requested", requested, page, page, lines-page-1)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
