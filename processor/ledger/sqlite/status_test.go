package sqlite_test

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"resub/processor/ledger"
)

// The status page's reads answer alike on every engine: each aggregate
// and page runs and agrees with what was written.
func TestStatusReads(t *testing.T) {
	ctx := context.Background()
	db := open(t, filepath.Join(t.TempDir(), "l.db"))
	var batchID, fileID int64
	if err := db.InTx(ctx, func(tx *ledger.Tx) error {
		for i := range 5 {
			c := &ledger.Card{ICCID: fmt.Sprintf("89882110000000%05d", i), IMSI: fmt.Sprintf("00101000000%04d", i),
				State: ledger.CardActive, SecretsFP: "fp", Source: "MNOA"}
			if _, err := tx.InsertCard(ctx, c); err != nil {
				return err
			}
		}
		if err := tx.Transition(ctx, "8988211000000000000", []string{ledger.CardActive}, "requested", "test", "ref", nil); err != nil {
			return err
		}
		f, _, err := tx.ReceiveFile(ctx, &ledger.File{Partner: "mno-a", Direction: "in", Name: "f.txt", SHA256: "00", Status: "received"})
		if err != nil {
			return err
		}
		fileID = f.ID
		batchID, err = tx.CreateBatch(ctx, &ledger.Batch{Job: "j", Partner: "mno-a", Kind: "k", FileID: fileID})
		if err != nil {
			return err
		}
		for line := 1; line <= 3; line++ {
			if err := tx.PutBatchRecord(ctx, ledger.BatchRecord{BatchID: batchID, Line: line, ICCID: fmt.Sprintf("89882110000000%05d", line), Status: "accepted"}); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	tallies, err := db.CardTallies(ctx)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, c := range tallies {
		n += c.N
	}
	if n != 5 {
		t.Errorf("card tallies sum to %d, want 5: %+v", n, tallies)
	}
	if _, err := db.MessageTallies(ctx, time.Now()); err != nil {
		t.Error(err)
	}
	if _, err := db.FailureVerdicts(ctx, 10); err != nil {
		t.Error(err)
	}
	if ft, err := db.FileTallies(ctx); err != nil || len(ft) != 1 || ft[0].N != 1 {
		t.Errorf("file tallies %+v, %v", ft, err)
	}
	changes, last, err := db.StateChanges(ctx, 0)
	if err != nil || last == 0 || len(changes) != 2 {
		// imported (from "") and the transition
		t.Errorf("state changes %+v, last %d, %v", changes, last, err)
	}
	if cards, err := db.CardsPage(ctx, "", "", 3); err != nil || len(cards) != 3 || cards[0].ICCID != "8988211000000000000" {
		t.Errorf("cards page %v, %v", cards, err)
	}
	if cards, err := db.CardsPage(ctx, ledger.CardActive, "8988211000000000001", 10); err != nil || len(cards) != 3 {
		t.Errorf("active cards after the second: %d, %v", len(cards), err)
	}
	if _, err := db.MessagesOfCard(ctx, "8988211000000000000"); err != nil {
		t.Error(err)
	}
	if _, err := db.MessagesOfBatchPage(ctx, batchID, 0, 10); err != nil {
		t.Error(err)
	}
	if recs, err := db.RecordsOfCard(ctx, "8988211000000000001", 10); err != nil || len(recs) != 1 {
		t.Errorf("records of card: %v, %v", recs, err)
	}
	if recs, err := db.RecordsPage(ctx, batchID, "", 1, 10); err != nil || len(recs) != 2 {
		t.Errorf("records after line 1: %v, %v", recs, err)
	}
	if recs, err := db.RecordsPage(ctx, batchID, "accepted", 0, 2); err != nil || len(recs) != 2 {
		t.Errorf("accepted records: %v, %v", recs, err)
	}
	if rt, err := db.RecordTallies(ctx, batchID); err != nil || rt["accepted"] != 3 {
		t.Errorf("record tallies %v, %v", rt, err)
	}
	for _, status := range []string{"", ledger.BatchOpen} {
		if bs, err := db.BatchesPage(ctx, status, 0, 10); err != nil || len(bs) != 1 || bs[0].ID != batchID {
			t.Errorf("batches page (%q): %v, %v", status, bs, err)
		}
		if fs, err := db.FilesPage(ctx, status, 0, 10); err != nil || (status == "" && len(fs) != 1) {
			t.Errorf("files page (%q): %v, %v", status, fs, err)
		}
	}
	if n, _, err := db.OverdueMessageCount(ctx, time.Now()); err != nil || n != 0 {
		t.Errorf("overdue %d, %v", n, err)
	}
}

// The status page sums the card events incrementally after the last ID it
// read. That is right only if an event never commits after one with a
// higher ID: the ledger's write lock (SQLite's, or PostgreSQL's advisory
// lock taken at the start of every write transaction and released after
// its commit is visible) orders the writers. Several writers race a
// reader here; the reader's increments must add up to every event.
func TestStateChangesIncrementalUnderConcurrentWriters(t *testing.T) {
	ctx := context.Background()
	db := open(t, filepath.Join(t.TempDir(), "l.db"))
	const writers, rounds = 4, 15
	if err := db.InTx(ctx, func(tx *ledger.Tx) error {
		for w := range writers {
			c := &ledger.Card{ICCID: fmt.Sprintf("898821100000000%04d", w), IMSI: fmt.Sprintf("0010100000%05d", w),
				State: ledger.CardActive, SecretsFP: "fp", Source: "MNOA"}
			if _, err := tx.InsertCard(ctx, c); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	sum := func(cs []ledger.StateChange) int {
		n := 0
		for _, c := range cs {
			n += c.N
		}
		return n
	}
	seen, after := 0, int64(0)
	read := func() {
		cs, last, err := db.StateChanges(ctx, after)
		if err != nil {
			t.Error(err)
			return
		}
		seen += sum(cs)
		after = last
	}
	read()
	var wg sync.WaitGroup
	done := make(chan struct{})
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			iccid := fmt.Sprintf("898821100000000%04d", w)
			states := []string{ledger.CardActive, "requested"}
			for r := range rounds {
				from, to := states[r%2], states[(r+1)%2]
				if err := db.InTx(ctx, func(tx *ledger.Tx) error {
					if err := tx.Transition(ctx, iccid, []string{from}, to, "test", "ref", nil); err != nil {
						return err
					}
					time.Sleep(time.Millisecond) // between the event and the commit
					return nil
				}); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	go func() { wg.Wait(); close(done) }()
	for running := true; running; {
		select {
		case <-done:
			running = false
		default:
			read()
		}
	}
	read()
	var want int
	if err := db.QueryRow(ctx, `SELECT COUNT(*) FROM card_events WHERE from_state <> to_state`).Scan(&want); err != nil {
		t.Fatal(err)
	}
	if want != writers*(rounds+1) {
		t.Fatalf("%d events, want %d", want, writers*(rounds+1))
	}
	if seen != want {
		t.Errorf("incremental reads summed %d events, the ledger holds %d", seen, want)
	}
}
