package jobs

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"resub/jobs/config"
	"resub/processor/ledger"
	"resub/processor/ledger/sqlite"
)

func TestOverdueListsWhatPartnersOwe(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 11, 28, 22, 0, 0, 0, time.UTC)
	clock := now.Add(-72 * time.Hour)
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "l.db"), ledger.WithClock(func() time.Time { return clock }))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	// Three days ago a card was handed over to MNOB; one yesterday.
	for i, iccid := range []string{"8999901000000000013", "8999901000000000021"} {
		if i == 1 {
			clock = now.Add(-24 * time.Hour)
		}
		err := db.InTx(ctx, func(tx *ledger.Tx) error {
			_, err := tx.InsertCard(ctx, &ledger.Card{ICCID: iccid, IMSI: "00101000000000" + string(rune('1'+i)), State: ledger.CardHandedOver, Recipient: "MNOB"})
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	cfg := &config.Config{
		Partners: config.Partners{"mno-b": {Code: "MNOB", Deadlines: map[string]config.Duration{"handover-ack": config.Duration(48 * time.Hour)}}},
		Jobs:     []config.Job{{Name: "handover-ack", Partner: "mno-b", Deadline: config.Duration(24 * time.Hour)}},
	}
	items, err := Overdue(ctx, cfg, db, now)
	if err != nil {
		t.Fatal(err)
	}
	var ack, job bool
	for _, it := range items {
		switch it.What {
		case "handover-ack":
			ack = it.Partner == "mno-b" && it.Count == 1 && it.Oldest.Equal(now.Add(-72*time.Hour))
		case "job handover-ack":
			job = true // never succeeded within its deadline
		}
	}
	if !ack || !job {
		t.Fatalf("overdue items: %+v", items)
	}
}
