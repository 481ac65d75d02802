package ledger_test

import (
	"context"
	"testing"

	"resub/processor/ledger"
	"resub/processor/ledger/ledgertest"
	"resub/processor/ledger/postgres"
)

// A batch written by sets and finished has a server's planner know its
// records before they are read back a page at a time: each page is read
// by the records' key from where the last one ended, not by a scan and a
// sort of the whole table (what a planner that takes the table for
// nearly empty picks, for every page: N²/page rows).
func TestFinishedBatchReadByItsKey(t *testing.T) {
	ctx := context.Background()
	db, err := postgres.Open(ctx, ledgertest.NewDatabase(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	const (
		records = 20000
		page    = 1000
	)
	var batchID int64
	err = db.InTx(ctx, func(tx *ledger.Tx) error {
		if batchID, err = tx.CreateBatch(ctx, &ledger.Batch{Job: "switch-request", Partner: "m2m", Kind: "switch-request"}); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO batch_records (batch_id, line, iccid, imsi, status, partner)
			SELECT $1::bigint, i, '89' || (100000000000000000 + i), '00101' || (1000000000 + i), 'requested', 'mno-a'
			FROM generate_series(1, $2::int) AS i`, batchID, records); err != nil {
			return err
		}
		return tx.FinishBatch(ctx, batchID, ledger.BatchDone, records, records, 0, "")
	})
	if err != nil {
		t.Fatal(err)
	}
	read := 0
	if err := db.BatchRecords(ctx, batchID, "mno-a", "requested", func(r ledger.BatchRecord) error {
		read++
		if r.Line != read {
			t.Fatalf("record %d: line %d", read, r.Line)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if read != records {
		t.Fatalf("%d records read, want %d", read, records)
	}
	err = db.InTx(ctx, func(tx *ledger.Tx) error {
		for _, f := range []struct{ partner, status string }{{"mno-a", "requested"}, {"", ""}} {
			q, args := ledger.BatchRecordsPage(batchID, f.partner, f.status, records/2)
			checkPageBound(ctx, t, tx, "records of "+f.partner+" "+f.status, q, args, page)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
