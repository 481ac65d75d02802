package bench

import (
	"context"
	"fmt"
	"path/filepath"
	"strconv"
	"time"

	"resub/processor/ledger"
	"resub/processor/ledger/sqlite"
)

// Floor is the engine's floor for a fleet of N cards: the bare statements
// no set-based step can avoid, on the same engine as the parties' ledgers,
// in one transaction — N rows inserted into a temporary staging table (in
// multi-row statements, as the stages stage), one UPDATE of N cards joined
// to it (a card's state and new IMSI: an indexed column and a plain one,
// as every step that moves cards writes), and the N joined rows read back
// (as a step reads what it renders). A stage's time divided by the
// floor's says how far the stage is from what the engine allows.
type Floor struct {
	Insert, Update, Read time.Duration
}

// Total is the floor: the three statements and the commit.
func (f Floor) Total() time.Duration { return f.Insert + f.Update + f.Read }

// floorTable is the floor's staging table.
const floorTable = "bench_floor_stage"

// MeasureFloor measures the engine floor for n cards in a ledger of its
// own under dir (a fresh SQLite ledger, the parties' engine), filled with
// n cards first (not timed).
func MeasureFloor(ctx context.Context, dir string, n int) (Floor, error) {
	db, err := sqlite.Open(ctx, filepath.Join(dir, "floor", "ledger.db"))
	if err != nil {
		return Floor{}, err
	}
	defer db.Close()
	return MeasureFloorOn(ctx, db, n)
}

// MeasureFloorOn is MeasureFloor on an empty ledger db of any engine.
func MeasureFloorOn(ctx context.Context, db *ledger.DB, n int) (Floor, error) {
	var f Floor
	var err error
	// Zero-padded decimal of i in width digits (i < 10^width).
	pad := func(i, width int) string {
		return strconv.FormatInt(int64(i)+pow10[width], 10)[1:]
	}
	iccid := func(i int) string { return "8999902" + pad(i, 12) }
	now := time.Now().UTC().Format(time.RFC3339)
	if err := db.InTx(ctx, func(tx *ledger.Tx) error {
		in := tx.Inserter("cards", []string{"iccid", "imsi", "msisdn", "state", "created_at", "updated_at"}, 256)
		for i := range n {
			if err := in.Add(ctx, iccid(i), "00101"+pad(i, 10), "999100"+pad(i, 6), ledger.CardActive, now, now); err != nil {
				return err
			}
		}
		return in.Flush(ctx)
	}); err != nil {
		return f, fmt.Errorf("floor: cards: %w", err)
	}
	t0 := time.Now()
	err = db.InTx(ctx, func(tx *ledger.Tx) error {
		start := time.Now()
		for _, q := range []string{
			`DROP TABLE IF EXISTS ` + floorTable,
			`CREATE TEMP TABLE ` + floorTable + ` (line INTEGER PRIMARY KEY, iccid TEXT NOT NULL, imsi TEXT NOT NULL)`,
			`CREATE INDEX ` + floorTable + `_iccid ON ` + floorTable + ` (iccid)`,
		} {
			if _, err := tx.Exec(ctx, q); err != nil {
				return err
			}
		}
		in := tx.Inserter(floorTable, []string{"line", "iccid", "imsi"}, 256)
		for i := range n {
			if err := in.Add(ctx, i+1, iccid(i), "99999"+pad(i, 10)); err != nil {
				return err
			}
		}
		if err := in.Flush(ctx); err != nil {
			return err
		}
		f.Insert = time.Since(start)
		start = time.Now()
		res, err := tx.Exec(ctx, `UPDATE cards SET state = ?, new_imsi = s.imsi, updated_at = ? FROM `+floorTable+` s WHERE cards.iccid = s.iccid`,
			ledger.CardMoving, now)
		if err != nil {
			return err
		}
		if m, err := res.RowsAffected(); err != nil || m != int64(n) {
			return fmt.Errorf("floor: %d cards updated, want %d (%v)", m, n, err)
		}
		f.Update = time.Since(start)
		start = time.Now()
		rows, err := tx.Query(ctx, `SELECT s.line, c.iccid, c.imsi, c.msisdn, c.new_imsi FROM `+floorTable+` s JOIN cards c ON c.iccid = s.iccid ORDER BY s.line`)
		if err != nil {
			return err
		}
		defer rows.Close()
		var line, got int
		var a, b, c, d string
		for rows.Next() {
			if err := rows.Scan(&line, &a, &b, &c, &d); err != nil {
				return err
			}
			got++
		}
		if err := rows.Err(); err != nil {
			return err
		}
		if got != n {
			return fmt.Errorf("floor: %d rows read back, want %d", got, n)
		}
		if _, err := tx.Exec(ctx, `DROP TABLE `+floorTable); err != nil {
			return err
		}
		return nil
	})
	if err != nil {
		return f, fmt.Errorf("floor: %w", err)
	}
	// The read and the commit: what the transaction took beyond the
	// insert and the update.
	f.Read = time.Since(t0) - f.Insert - f.Update
	return f, nil
}

var pow10 = [...]int64{1, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12}
