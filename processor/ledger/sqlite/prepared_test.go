package sqlite

import (
	"context"
	"path/filepath"
	"testing"

	"resub/processor/ledger"
)

// A transaction reuses its prepared statements; running the same query
// again while the first rows are still being read must not disturb them.
func TestTxSameQueryNested(t *testing.T) {
	ctx := context.Background()
	db := open(t, filepath.Join(t.TempDir(), "l.db"))
	const q = `SELECT iccid FROM cards WHERE state = ? ORDER BY iccid`
	err := db.InTx(ctx, func(tx *ledger.Tx) error {
		for _, id := range []string{"8988211000000467285", "8988211000000467293", "8988211000000467301"} {
			if _, err := tx.InsertCard(ctx, &ledger.Card{ICCID: id, IMSI: "00101" + id[9:19], State: ledger.CardActive}); err != nil {
				return err
			}
		}
		outer, err := tx.Query(ctx, q, ledger.CardActive)
		if err != nil {
			return err
		}
		defer outer.Close()
		var got []string
		for outer.Next() {
			var id string
			if err := outer.Scan(&id); err != nil {
				return err
			}
			got = append(got, id)
			inner, err := tx.Query(ctx, q, ledger.CardActive)
			if err != nil {
				return err
			}
			n := 0
			for inner.Next() {
				n++
			}
			inner.Close()
			var first string
			if err := tx.QueryRow(ctx, q, ledger.CardActive).Scan(&first); err != nil {
				return err
			}
			if n != 3 || first != "8988211000000467285" {
				t.Errorf("inner query: %d rows, first %s", n, first)
			}
		}
		if len(got) != 3 || got[2] != "8988211000000467301" {
			t.Errorf("outer rows %v, want all three in order", got)
		}
		return outer.Err()
	})
	if err != nil {
		t.Fatal(err)
	}
}
