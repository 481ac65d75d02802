package ledger_test

import (
	"context"
	"fmt"
	"testing"

	"resub/processor/ledger"
	"resub/processor/ledger/ledgertest"
	"resub/processor/ledger/postgres"
)

// The imsi-list stage has a server's planner learn its judged lines as
// soon as they are judged: every later statement of the stage and every
// page of its messages joins them, and a planner that knows nothing of a
// table just filled misjudges each join (the first pages of the messages
// took seconds each at 300,000 cards).
func TestIMSIListJudgedLinesAnalysed(t *testing.T) {
	ctx := context.Background()
	db, err := postgres.Open(ctx, ledgertest.NewDatabase(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	const lines = 3000
	err = db.InTx(ctx, func(tx *ledger.Tx) error {
		st, err := tx.StageIMSIList(ctx, []ledger.IMSIListProfile{{Name: "usim", TAR: "B00010", ResetTAR: "B00011"}})
		if err != nil {
			return err
		}
		defer st.Close(ctx)
		for i := 1; i <= lines; i++ {
			if err := st.Add(ctx, i, fmt.Sprint("89", 100000000000000000+i), fmt.Sprint("00102", 1000000000+i), "2027-01-01", true, false); err != nil {
				return err
			}
		}
		v := func(reason string) ledger.Verdict { return ledger.Verdict{Reason: reason} }
		out, err := st.Judge(ctx, ledger.IMSIListJudge{BatchID: 1, Recipient: "mno-b", Partner: "mno-b", Accepted: "accepted", Rejected: "rejected",
			Active: "active", Moving: []string{"moving"}, Free: []string{"released"},
			DuplicateICCID: v("DUPLICATE"), DuplicateIMSI: v("DUPLICATE"), UnknownCard: v("UNKNOWN_ICCID"), AlreadyMoving: v("MOVING"),
			NotActive: v("NOT_ACTIVE"), NotAuthorised: v("NOT_AUTHORISED"), OtherOwner: v("NOT_AUTHORISED"), BeforeAuthorised: v("DATE"),
			NotInRange: v("RANGE"), IMSIInUse: v("IMSI_IN_USE"), DatePast: v("DATE_PAST"), NoProfile: v("PROFILE"),
			ListExhausted: v("LIST"), NoMSISDN: v("MSISDN")})
		if err != nil {
			return err
		}
		if out.Rejected != lines || out.Accepted != 0 {
			t.Errorf("%+v, want every line rejected (no such card)", out)
		}
		var tuples float64
		if err := tx.QueryRow(ctx, `SELECT reltuples FROM pg_class WHERE oid = 'pg_temp.imsi_judged'::regclass`).Scan(&tuples); err != nil {
			return err
		}
		if tuples != lines {
			t.Errorf("the judged lines were not analysed: reltuples %v, want %d", tuples, lines)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
