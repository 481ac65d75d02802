package ledger_test

import (
	"context"
	"fmt"
	"testing"

	"resub/processor/ledger"
	"resub/processor/ledger/ledgertest"
	"resub/processor/ledger/postgres"
)

// The report stage's page reads cost the same on the last page as on the
// first, on PostgreSQL's plans for the page (the one planned for its
// argument and the generic one a prepared statement falls back to): the
// page walks the staged list by its key and finds every other row by
// key, so no step of the plan handles more rows than a page or two. (A
// join of two staged tables by line had the server merge them from the
// first line on every page: a report of N lines cost N²/page.)
func TestReportPagesWalkTheStageByItsKey(t *testing.T) {
	ctx := context.Background()
	db, err := postgres.Open(ctx, ledgertest.NewDatabase(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	const (
		page  = ledger.ReportPage
		fleet = 30000     // cards: the big tables are bigger than the report
		lines = 12 * page // report lines, one per card, each with a PoR
	)
	err = db.InTx(ctx, func(tx *ledger.Tx) error {
		now := "2026-01-01T00:00:00Z"
		for _, q := range []string{
			`INSERT INTO cards (iccid, imsi, msisdn, state, key_index, created_at, updated_at)
				SELECT '89' || (100000000000000000 + i), '00101' || (1000000000 + i), '46' || (700000000 + i), 'moving', 1, $1::text, $1::text
				FROM generate_series(1, $2::int) AS i`,
			`INSERT INTO ota_messages (iccid, kind, key_index, kvn, counter, tar, msisdn, state, created_at, updated_at)
				SELECT '89' || (100000000000000000 + i), 'imsi-list', 1, 1, 1, 'B00010', '46' || (700000000 + i), 'sent', $1::text, $1::text
				FROM generate_series(1, $2::int) AS i`,
			`INSERT INTO card_secrets (iccid, name, key_index, master_key, blob)
				SELECT '89' || (100000000000000000 + i), n.name, 1, 'm1', '\x00'::bytea
				FROM generate_series(1, $2::int) AS i CROSS JOIN (VALUES ('kic'), ('kid'), ('ki')) AS n(name)
				WHERE $1::text <> ''`,
		} {
			if _, err := tx.Exec(ctx, q, now, fleet); err != nil {
				return err
			}
		}
		for _, tb := range []string{"cards", "ota_messages", "card_secrets"} {
			if _, err := tx.Exec(ctx, `ANALYZE `+tb); err != nil {
				return err
			}
		}
		st, err := tx.StageReport(ctx)
		if err != nil {
			return err
		}
		defer st.Close(ctx)
		for i := 1; i <= lines; i++ {
			if err := st.Add(ctx, i, fmt.Sprint("46", 700000000+i), fmt.Sprint(i), "delivered", "", []byte{byte(i)}); err != nil {
				return err
			}
		}
		if err := st.Index(ctx); err != nil {
			return err
		}
		read := 0
		if err := st.PoRs(ctx, "kic", "kid", func(p *ledger.StagedPoR) error {
			read++
			if p.Line != read || p.Card.ICCID != fmt.Sprint("89", 100000000000000000+read) || p.KIc == nil || p.KID == nil {
				t.Errorf("PoR %d: line %d, card %q, keys %v %v", read, p.Line, p.Card.ICCID, p.KIc, p.KID)
			}
			return nil
		}); err != nil {
			return err
		}
		if read != lines {
			t.Fatalf("%d PoRs read, want %d", read, lines)
		}
		rest := 0
		if err := st.Rest(ctx, func(ledger.ReportLine) error { rest++; return nil }); err != nil {
			return err
		}
		if rest != lines {
			t.Fatalf("%d lines left read, want %d", rest, lines)
		}
		// The second page and the last page but one (both whole): a plan
		// whose steps walk the stage, or a big table, from the start
		// handles many times more rows on the later page.
		pors := func(after int) (string, []any) { return ledger.ReportPoRsPage("kic", "kid", after) }
		checkPageCost(ctx, t, tx, "PoRs", pors, page, page, lines-page-1)
		checkPageCost(ctx, t, tx, "lines left", ledger.ReportRestPage, page, page, lines-page-1)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
