package sqlite_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"testing"

	"resub/processor/ledger"
)

const iccid = "8988211000000467285"

func TestCardsImportConflictAndTransitions(t *testing.T) {
	ctx := context.Background()
	db := open(t, filepath.Join(t.TempDir(), "l.db"))
	card := &ledger.Card{ICCID: iccid, IMSI: "001010000000001", State: ledger.CardActive, SecretsFP: "fp1", Source: "batch-1"}
	err := db.InTx(ctx, func(tx *ledger.Tx) error {
		created, err := tx.InsertCard(ctx, card)
		if err != nil || !created {
			t.Fatalf("first import: created=%v err=%v", created, err)
		}
		created, err = tx.InsertCard(ctx, card)
		if err != nil || created {
			t.Fatalf("same card, same secrets: created=%v err=%v", created, err)
		}
		other := *card
		other.SecretsFP = "fp2"
		_, err = tx.InsertCard(ctx, &other)
		var ce *ledger.ConflictError
		if !errors.As(err, &ce) {
			t.Fatalf("same card, other secrets: want ConflictError, got %v", err)
		}
		if err := tx.Transition(ctx, iccid, []string{ledger.CardActive}, ledger.CardMoving, "imsi-list accepted", "file:1 line:3",
			&ledger.CardUpdate{NewIMSI: ledger.Str("999990000000001"), Recipient: ledger.Str("MNOB")}); err != nil {
			t.Fatal(err)
		}
		err = tx.Transition(ctx, iccid, []string{ledger.CardActive}, ledger.CardMoving, "again", "", nil)
		var se *ledger.StateError
		if !errors.As(err, &se) || se.State != ledger.CardMoving {
			t.Fatalf("transition from the wrong state: %v", err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	c, err := db.Card(ctx, iccid)
	if err != nil || c.State != ledger.CardMoving || c.NewIMSI != "999990000000001" || c.Recipient != "MNOB" {
		t.Fatalf("card after transition: %+v %v", c, err)
	}
	h, err := db.History(ctx, iccid)
	if err != nil || len(h) != 2 || h[1].From != ledger.CardActive || h[1].To != ledger.CardMoving {
		t.Fatalf("history: %+v %v", h, err)
	}
	counts, _ := db.CountByState(ctx)
	if counts[ledger.CardMoving] != 1 {
		t.Fatalf("counts: %v", counts)
	}
}

func TestCountersStrictlyIncreasing(t *testing.T) {
	ctx := context.Background()
	db := open(t, filepath.Join(t.TempDir(), "l.db"))
	var got []int64
	err := db.InTx(ctx, func(tx *ledger.Tx) error {
		if err := tx.PutKeySet(ctx, iccid, ledger.KeySet{KVN: 1, Counter: 41}); err != nil {
			return err
		}
		// A later import with a lower counter does not move it back.
		if err := tx.PutKeySet(ctx, iccid, ledger.KeySet{KVN: 1, Counter: 5}); err != nil {
			return err
		}
		for _, step := range []int64{1, 1, 16} {
			c, err := tx.ReserveCounter(ctx, iccid, 0, 1, step)
			if err != nil {
				return err
			}
			got = append(got, c)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []int64{42, 43, 59}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("counters %v, want %v", got, want)
		}
	}
	// A rolled-back reservation is not reused only if committed: a
	// committed one never comes back.
	err = db.InTx(ctx, func(tx *ledger.Tx) error {
		_, err := tx.ReserveCounter(ctx, iccid, 0, 1, 1)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	_ = db.InTx(ctx, func(tx *ledger.Tx) error {
		c, _ := tx.ReserveCounter(ctx, iccid, 0, 1, 1)
		if c != 61 {
			t.Errorf("after commit got %d, want 61", c)
		}
		return nil
	})
	err = db.InTx(ctx, func(tx *ledger.Tx) error {
		if err := tx.PutKeySet(ctx, "8988211000000467293", ledger.KeySet{KVN: 1, Counter: ledger.MaxCounter - 1}); err != nil {
			return err
		}
		_, err := tx.ReserveCounter(ctx, "8988211000000467293", 0, 1, 1)
		return err
	})
	if !errors.Is(err, ledger.ErrCounterExhausted) {
		t.Fatalf("counter at the top: %v", err)
	}
}

func TestIMSIAllocationNeverTwice(t *testing.T) {
	ctx := context.Background()
	db := open(t, filepath.Join(t.TempDir(), "l.db"))
	alloc := func(iccid, ref string) (string, error) {
		var imsi string
		err := db.InTx(ctx, func(tx *ledger.Tx) error {
			var err error
			imsi, err = tx.AllocateIMSI(ctx, "b-main", "999990000000001", "999990000000003", iccid, ref)
			return err
		})
		return imsi, err
	}
	a, _ := alloc("89001", "req1")
	again, _ := alloc("89001", "req1")
	if a != "999990000000001" || again != a {
		t.Fatalf("first %s, rerun %s", a, again)
	}
	// An IMSI in the unknown state is never handed out again.
	_ = db.InTx(ctx, func(tx *ledger.Tx) error { return tx.SetIMSIState(ctx, a, ledger.IMSIUnknown) })
	b, _ := alloc("89001", "req2")
	c, _ := alloc("89002", "req2")
	if b != "999990000000002" || c != "999990000000003" {
		t.Fatalf("got %s %s", b, c)
	}
	if _, err := alloc("89003", "req2"); !errors.Is(err, ledger.ErrRangeExhausted) {
		t.Fatalf("exhausted range: %v", err)
	}
}

// The cursor of a range is the ledger's memory of the numbers handed
// out: within one transaction as across transactions, allocation goes on
// from it, never back to a lower number (even one whose row is gone).
func TestIMSICursorWithinOneTransaction(t *testing.T) {
	ctx := context.Background()
	db := open(t, filepath.Join(t.TempDir(), "l.db"))
	var got []string
	err := db.InTx(ctx, func(tx *ledger.Tx) error {
		for i, iccid := range []string{"89001", "89002", "89003"} {
			imsi, err := tx.AllocateIMSI(ctx, "b-main", "999990000000001", "999990000000999", iccid, "req")
			if err != nil {
				return err
			}
			got = append(got, imsi)
			if i == 0 {
				if _, err := tx.Exec(ctx, `DELETE FROM imsi_allocations WHERE imsi = ?`, imsi); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if got[1] != "999990000000002" || got[2] != "999990000000003" {
		t.Fatalf("allocated %v: went back below the cursor", got)
	}
	var next string
	if err := db.QueryRow(ctx, `SELECT next FROM alloc_cursors WHERE range_name = 'b-main'`).Scan(&next); err != nil || next != "999990000000004" {
		t.Fatalf("cursor after the transaction %q (%v)", next, err)
	}
}

func TestFilesSeenAndSequences(t *testing.T) {
	ctx := context.Background()
	db := open(t, filepath.Join(t.TempDir(), "l.db"))
	err := db.InTx(ctx, func(tx *ledger.Tx) error {
		f := &ledger.File{Partner: "mno-b", Name: "MNOB_MNOA_IMSI-LIST_20261128_000001.csv.pgp", SHA256: "ab", Size: 10}
		row, seen, err := tx.ReceiveFile(ctx, f)
		if err != nil || seen {
			t.Fatalf("first receive: %v %v", seen, err)
		}
		if err := tx.SetFileStatus(ctx, row.ID, ledger.FileDone, ""); err != nil {
			return err
		}
		row2, seen, err := tx.ReceiveFile(ctx, f)
		if err != nil || !seen || row2.Status != ledger.FileDone {
			t.Fatalf("second receive: %+v %v %v", row2, seen, err)
		}
		// Different bytes under the same name: a new file.
		f2 := *f
		f2.SHA256 = "cd"
		if _, seen, _ := tx.ReceiveFile(ctx, &f2); seen {
			t.Fatal("new content treated as seen")
		}
		if err := tx.CheckSeq(ctx, "MNOB", "MNOA", "imsi-list", 1); err != nil {
			t.Fatalf("first seq: %v", err)
		}
		if err := tx.AcceptSeq(ctx, "MNOB", "MNOA", "imsi-list", 1); err != nil {
			return err
		}
		var sp *ledger.SeqProblem
		if err := tx.CheckSeq(ctx, "MNOB", "MNOA", "imsi-list", 1); !errors.As(err, &sp) || sp.Got >= sp.Want {
			t.Fatalf("repeat not reported: %v", err)
		}
		if err := tx.CheckSeq(ctx, "MNOB", "MNOA", "imsi-list", 3); !errors.As(err, &sp) || sp.Got <= sp.Want {
			t.Fatalf("gap not reported: %v", err)
		}
		for want := int64(1); want <= 3; want++ {
			if got, err := tx.NextSeq(ctx, "MNOA", "MNOB", "imsi-result"); err != nil || got != want {
				t.Fatalf("NextSeq = %d %v, want %d", got, err, want)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestAbandonRuns(t *testing.T) {
	ctx := context.Background()
	db := open(t, filepath.Join(t.TempDir(), "l.db"))
	if _, err := db.StartRun(ctx, "imsi-list", "host:1", false); err != nil {
		t.Fatal(err)
	}
	done, err := db.StartRun(ctx, "imsi-list", "host:1", false)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.FinishRun(ctx, done, "ok", ""); err != nil {
		t.Fatal(err)
	}
	if n, err := db.AbandonRuns(ctx, "imsi-list"); err != nil || n != 1 {
		t.Fatalf("abandoned %d, %v; want 1", n, err)
	}
	last, ok, err := db.LastRun(ctx, "imsi-list")
	if err != nil || last.Status != "ok" || ok == nil {
		t.Fatalf("last %+v ok %+v %v", last, ok, err)
	}
	var status string
	if err := db.SQL().QueryRow(`SELECT status FROM job_runs ORDER BY id LIMIT 1`).Scan(&status); err != nil || status != "cut-short" {
		t.Fatalf("first run %q %v", status, err)
	}
}

func TestPagedReadsCrossPages(t *testing.T) {
	ctx := context.Background()
	db := open(t, filepath.Join(t.TempDir(), "l.db"))
	const n = 2345
	err := db.InTx(ctx, func(tx *ledger.Tx) error {
		for i := 0; i < n; i++ {
			id := fmt.Sprintf("89%017d", i)
			if _, err := tx.InsertCard(ctx, &ledger.Card{ICCID: id, IMSI: "001010000000001", State: ledger.CardConfirmed}); err != nil {
				return err
			}
			if err := tx.PutSecret(ctx, id, ledger.Secret{Name: "ki", MasterKey: "mk", Blob: []byte{byte(i)}}); err != nil {
				return err
			}
			if err := tx.PutBatchRecord(ctx, ledger.BatchRecord{BatchID: 7, Line: i + 1, ICCID: id, Status: "accepted"}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	var prev string
	err = db.CardsInState(ctx, ledger.CardConfirmed, func(c *ledger.Card) error {
		if c.ICCID <= prev || seen[c.ICCID] {
			t.Fatalf("card %s out of order or twice", c.ICCID)
		}
		prev, seen[c.ICCID] = c.ICCID, true
		return nil
	})
	if err != nil || len(seen) != n {
		t.Fatalf("cards: %d of %d, %v", len(seen), n, err)
	}
	lines := 0
	if err := db.BatchRecords(ctx, 7, "", "", func(r ledger.BatchRecord) error {
		lines++
		if r.Line != lines {
			t.Fatalf("line %d at position %d", r.Line, lines)
		}
		return nil
	}); err != nil || lines != n {
		t.Fatalf("records %d, %v", lines, err)
	}
	secrets := 0
	if err := db.AllSecrets(ctx, func(string, ledger.Secret) error { secrets++; return nil }); err != nil || secrets != n {
		t.Fatalf("secrets %d, %v", secrets, err)
	}
}
