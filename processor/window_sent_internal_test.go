package processor

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"resub/processor/ledger"
	"resub/processor/ledger/ledgertest"
)

// TestMarkSentDeadlines: a delivered batch's messages are sent, each with
// the deadline of its card's cut-over when that opens after the delivery
// (validity and margin from the window's start on that date), else from
// the delivery; with more cut-over dates than one statement tells apart
// too; messages of other batches and messages already answered are left
// as they are.
func TestMarkSentDeadlines(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 11, 28, 21, 0, 0, 0, time.UTC)
	db := ledgertest.Open(t, filepath.Join(t.TempDir(), "ledger.db"), ledger.WithClock(func() time.Time { return now }))
	prof := &Profile{Name: "p", Window: "22:00-05:00", Validity: 24 * time.Hour}
	p := &Party{Name: "MNOA", Ledger: db, Profiles: map[string]*Profile{"p": prof}, OTA: OTASettings{PoRMargin: time.Hour}, Now: func() time.Time { return now }}
	const dates = maxSentGroups + 7
	type card struct {
		iccid, cutover string
		batch          int64
		state          string
	}
	var cards []card
	for i := range dates + 3 {
		c := card{iccid: fmt.Sprintf("89999010000000%05d", i), batch: 7, state: ledger.MsgReserved}
		switch {
		case i < dates:
			c.cutover = now.AddDate(0, 0, 1+i).Format(time.DateOnly) // later: a deadline from its window
		case i == dates:
			c.cutover = now.AddDate(0, 0, -1).Format(time.DateOnly) // past: from the delivery
		case i == dates+1:
			c.batch = 8 // another batch
		default:
			c.state = ledger.MsgConfirmed // already answered
		}
		cards = append(cards, c)
	}
	ids := map[string]int64{}
	err := db.InTx(ctx, func(tx *ledger.Tx) error {
		for i, c := range cards {
			if _, err := tx.InsertCard(ctx, &ledger.Card{ICCID: c.iccid, IMSI: fmt.Sprintf("00101%010d", i), MSISDN: fmt.Sprintf("999%06d", i),
				State: ledger.CardMoving, Profile: "p", Cutover: c.cutover}); err != nil {
				return err
			}
			id, err := tx.InsertMessage(ctx, &ledger.Message{ICCID: c.iccid, BatchID: c.batch, Kind: msgUpdate, KVN: 1, Counter: int64(i + 1),
				TAR: "b00011", MSISDN: fmt.Sprintf("999%06d", i), State: c.state})
			if err != nil {
				return err
			}
			ids[c.iccid] = id
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	delivered := now.Add(time.Minute)
	if err := db.InTx(ctx, func(tx *ledger.Tx) error { return p.markSent(ctx, tx, 7, 42, delivered) }); err != nil {
		t.Fatal(err)
	}
	err = db.InTx(ctx, func(tx *ledger.Tx) error {
		for _, c := range cards {
			m, err := tx.Message(ctx, ids[c.iccid])
			if err != nil {
				return err
			}
			switch {
			case c.batch != 7 || c.state != ledger.MsgReserved:
				if m.State != c.state || !m.Deadline.IsZero() || m.FileID != 0 {
					t.Errorf("card %s (batch %d, %s): changed to %s, deadline %s, file %d", c.iccid, c.batch, c.state, m.State, m.Deadline, m.FileID)
				}
				continue
			case c.cutover > now.Format(time.DateOnly):
				start, _, _ := prof.cutoverStart(c.cutover)
				if want := start.Add(prof.Validity + time.Hour); !m.Deadline.Equal(want) {
					t.Errorf("card %s (cut-over %s): deadline %s, want %s", c.iccid, c.cutover, m.Deadline, want)
				}
			default:
				if want := delivered.Add(prof.Validity + time.Hour); !m.Deadline.Equal(want) {
					t.Errorf("card %s (cut-over %q): deadline %s, want %s", c.iccid, c.cutover, m.Deadline, want)
				}
			}
			if m.State != ledger.MsgSent || m.FileID != 42 {
				t.Errorf("card %s: %s in file %d", c.iccid, m.State, m.FileID)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	// A batch whose cards share one cut-over: every message its deadline.
	cut := now.AddDate(0, 0, 3).Format(time.DateOnly)
	var one []int64
	err = db.InTx(ctx, func(tx *ledger.Tx) error {
		for i := range 3 {
			iccid := fmt.Sprintf("89999020000000%05d", i)
			if _, err := tx.InsertCard(ctx, &ledger.Card{ICCID: iccid, IMSI: fmt.Sprintf("00102%010d", i), MSISDN: fmt.Sprintf("998%06d", i),
				State: ledger.CardMoving, Profile: "p", Cutover: cut}); err != nil {
				return err
			}
			id, err := tx.InsertMessage(ctx, &ledger.Message{ICCID: iccid, BatchID: 9, Kind: msgUpdate, KVN: 1, Counter: 1,
				TAR: "b00011", MSISDN: fmt.Sprintf("998%06d", i), State: ledger.MsgReserved})
			if err != nil {
				return err
			}
			one = append(one, id)
		}
		return p.markSent(ctx, tx, 9, 43, delivered)
	})
	if err != nil {
		t.Fatal(err)
	}
	start, _, _ := prof.cutoverStart(cut)
	for _, id := range one {
		err := db.InTx(ctx, func(tx *ledger.Tx) error {
			m, err := tx.Message(ctx, id)
			if err == nil && (m.State != ledger.MsgSent || m.FileID != 43 || !m.Deadline.Equal(start.Add(prof.Validity+time.Hour))) {
				t.Errorf("message %d of the one cut-over: %s in file %d, deadline %s", id, m.State, m.FileID, m.Deadline)
			}
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}
