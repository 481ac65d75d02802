package sqlite_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"

	"resub/processor/ledger"
	"resub/processor/ledger/ledgertest"
)

// A transaction reuses its prepared statements; running the same query
// again while the first rows are still being read must not disturb them.
func TestTxSameQueryNested(t *testing.T) {
	ctx := context.Background()
	db := open(t, filepath.Join(t.TempDir(), "l.db"))
	const q = `SELECT iccid FROM cards WHERE state = ? ORDER BY iccid`
	refused := false
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
			if ledgertest.Postgres() {
				// A server transaction reads one result at a time: the
				// nested query is refused, never answered wrongly.
				if err == nil {
					inner.Close()
					t.Fatal("nested query in a PostgreSQL transaction was not refused")
				}
				refused = true
				return err
			}
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
	if refused {
		return
	}
	if err != nil {
		t.Fatal(err)
	}
}

// The inserter writes every row once, in order, across full chunks and
// the last partial one, and refuses a row of the wrong width.
func TestInserterChunks(t *testing.T) {
	ctx := context.Background()
	db := open(t, filepath.Join(t.TempDir(), "l.db"))
	const n = 1000
	err := db.InTx(ctx, func(tx *ledger.Tx) error {
		if _, err := tx.Exec(ctx, `CREATE TEMP TABLE rows_in (line INTEGER PRIMARY KEY, name TEXT NOT NULL, blob `+db.Dialect().Blob+`)`); err != nil {
			return err
		}
		in := tx.Inserter("rows_in", []string{"line", "name", "blob"}, 64)
		if err := in.Add(ctx, 1, "short"); err == nil {
			t.Error("a row of two values for three columns was taken")
		}
		for i := 1; i <= n; i++ {
			if err := in.Add(ctx, i, fmt.Sprintf("row-%d", i), []byte{byte(i)}); err != nil {
				return err
			}
		}
		if err := in.Flush(ctx); err != nil {
			return err
		}
		if err := in.Flush(ctx); err != nil { // nothing left: no-op
			return err
		}
		var count, sum int
		if err := tx.QueryRow(ctx, `SELECT COUNT(*), SUM(line) FROM rows_in WHERE name = 'row-' || line AND length(blob) = 1`).Scan(&count, &sum); err != nil {
			return err
		}
		if count != n || sum != n*(n+1)/2 {
			t.Errorf("%d rows, sum of lines %d", count, sum)
		}
		var name string
		if err := tx.QueryRow(ctx, `SELECT name FROM rows_in WHERE line = ?`, n).Scan(&name); err != nil || name != fmt.Sprintf("row-%d", n) {
			t.Errorf("last row: %q %v", name, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
