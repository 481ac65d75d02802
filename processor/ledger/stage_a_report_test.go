package ledger_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
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
		checkPageCost(ctx, t, tx, "PoRs", pors, page, lines-page-1)
		checkPageCost(ctx, t, tx, "lines left", ledger.ReportRestPage, page, lines-page-1)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// checkPageCost runs a page read after line first and after line last
// under EXPLAIN ANALYZE, with the plan made for its arguments and with
// the generic plan of its prepared statement, and fails the test where
// the later page's plan handled more rows than the earlier one's (the
// rows each step returned, over all its loops) by more than a quarter.
func checkPageCost(ctx context.Context, t *testing.T, tx *ledger.Tx, what string, pageQuery func(after int) (string, []any), first, last int) {
	t.Helper()
	q, _ := pageQuery(first)
	if _, err := tx.Exec(ctx, `PREPARE page_read AS `+q); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	defer tx.Exec(ctx, `DEALLOCATE page_read`)
	defer tx.Exec(ctx, `SET LOCAL plan_cache_mode = auto`)
	for _, mode := range []string{"force_custom_plan", "force_generic_plan"} {
		if _, err := tx.Exec(ctx, `SET LOCAL plan_cache_mode = `+mode); err != nil {
			t.Fatal(err)
		}
		var handled [2]float64
		var steps [2][]string
		for i, after := range []int{first, last} {
			_, args := pageQuery(after)
			lits := make([]string, len(args))
			for i, a := range args {
				switch a := a.(type) {
				case string:
					lits[i] = "'" + strings.ReplaceAll(a, "'", "''") + "'"
				default:
					lits[i] = fmt.Sprint(a)
				}
			}
			var out string
			if err := tx.QueryRow(ctx, `EXPLAIN (ANALYZE, FORMAT JSON) EXECUTE page_read(`+strings.Join(lits, ", ")+`)`).Scan(&out); err != nil {
				t.Fatalf("%s: %v", what, err)
			}
			var plans []struct{ Plan planNode }
			if err := json.Unmarshal([]byte(out), &plans); err != nil || len(plans) != 1 {
				t.Fatalf("%s: plan %s: %v", what, out, err)
			}
			if got, want := plans[0].Plan.Rows, float64(ledger.ReportPage); got != want {
				t.Fatalf("%s (%s): the page after line %d has %v rows, want %v", what, mode, after, got, want)
			}
			plans[0].Plan.walk(func(n planNode) {
				handled[i] += n.Rows * n.Loops
				steps[i] = append(steps[i], fmt.Sprintf("%s %s %s: %v rows", n.Type, n.Relation, n.Index, n.Rows*n.Loops))
			})
		}
		if handled[1] > handled[0]*1.25 {
			t.Errorf("%s (%s): the page after line %d handled %v rows, the page after line %d %v\n%s\n---\n%s",
				what, mode, first, handled[0], last, handled[1], strings.Join(steps[0], "\n"), strings.Join(steps[1], "\n"))
		}
	}
}

// planNode is a step of a plan as EXPLAIN (FORMAT JSON) gives it.
type planNode struct {
	Type     string     `json:"Node Type"`
	Relation string     `json:"Relation Name"`
	Index    string     `json:"Index Name"`
	Rows     float64    `json:"Actual Rows"`
	Loops    float64    `json:"Actual Loops"`
	Plans    []planNode `json:"Plans"`
}

func (n planNode) walk(fn func(planNode)) {
	fn(n)
	for _, c := range n.Plans {
		c.walk(fn)
	}
}
