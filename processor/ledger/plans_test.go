package ledger_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"resub/processor/ledger"
)

// The plans a PostgreSQL server makes for the ledger's page reads, for
// the tests that pin a page's cost to the page.

// planModes are the plans a prepared statement runs: the one made for
// its arguments, and the generic one it may fall back to.
var planModes = []string{"force_custom_plan", "force_generic_plan"}

// explainPage prepares a page read and runs it under EXPLAIN ANALYZE with
// each of args, in plan mode mode; fn gets the plan of each.
func explainPage(ctx context.Context, t *testing.T, tx *ledger.Tx, mode, query string, args [][]any, fn func(int, planNode)) {
	t.Helper()
	if _, err := tx.Exec(ctx, `PREPARE page_read AS `+query); err != nil {
		t.Fatal(err)
	}
	defer tx.Exec(ctx, `DEALLOCATE page_read`)
	if _, err := tx.Exec(ctx, `SET LOCAL plan_cache_mode = `+mode); err != nil {
		t.Fatal(err)
	}
	defer tx.Exec(ctx, `SET LOCAL plan_cache_mode = auto`)
	for i, a := range args {
		lits := make([]string, len(a))
		for j, v := range a {
			switch v := v.(type) {
			case string:
				lits[j] = "'" + strings.ReplaceAll(v, "'", "''") + "'"
			default:
				lits[j] = fmt.Sprint(v)
			}
		}
		var out string
		if err := tx.QueryRow(ctx, `EXPLAIN (ANALYZE, FORMAT JSON) EXECUTE page_read(`+strings.Join(lits, ", ")+`)`).Scan(&out); err != nil {
			t.Fatal(err)
		}
		var plans []struct{ Plan planNode }
		if err := json.Unmarshal([]byte(out), &plans); err != nil || len(plans) != 1 {
			t.Fatalf("plan %s: %v", out, err)
		}
		fn(i, plans[0].Plan)
	}
}

// checkPageCost runs a page read after line first and after line last
// (each a whole page of size rows), with each plan mode, and fails the
// test where the later page's plan handled more rows than the earlier
// one's (the rows each step returned, over all its loops) by more than a
// quarter: a plan that walks a table from its start on every page.
func checkPageCost(ctx context.Context, t *testing.T, tx *ledger.Tx, what string, pageQuery func(after int) (string, []any), size, first, last int) {
	t.Helper()
	q, a0 := pageQuery(first)
	_, a1 := pageQuery(last)
	for _, mode := range planModes {
		var handled [2]float64
		var steps [2][]string
		explainPage(ctx, t, tx, mode, q, [][]any{a0, a1}, func(i int, p planNode) {
			if p.Rows != float64(size) {
				t.Fatalf("%s (%s): the page after line %d has %v rows, want %d", what, mode, []int{first, last}[i], p.Rows, size)
			}
			p.walk(func(n planNode) {
				handled[i] += n.Rows * n.Loops
				steps[i] = append(steps[i], n.String())
			})
		})
		if handled[1] > handled[0]*1.25 {
			t.Errorf("%s (%s): the page after line %d handled %v rows, the page after line %d %v\n%s\n---\n%s",
				what, mode, first, handled[0], last, handled[1], strings.Join(steps[0], "\n"), strings.Join(steps[1], "\n"))
		}
	}
}

// checkPageBound runs a page read with each plan mode and fails the test
// where a step of its plan handled more than twice the page's rows: a
// scan of the whole table for every page.
func checkPageBound(ctx context.Context, t *testing.T, tx *ledger.Tx, what, query string, args []any, size int) {
	t.Helper()
	for _, mode := range planModes {
		explainPage(ctx, t, tx, mode, query, [][]any{args}, func(_ int, p planNode) {
			if p.Rows != float64(size) {
				t.Fatalf("%s (%s): the page has %v rows, want %d", what, mode, p.Rows, size)
			}
			p.walk(func(n planNode) {
				if n.Rows*n.Loops > float64(2*size) {
					t.Errorf("%s (%s): %s for a page of %d", what, mode, n, size)
				}
			})
		})
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

func (n planNode) String() string {
	s := n.Type
	if n.Relation != "" {
		s += " on " + n.Relation
	}
	if n.Index != "" {
		s += " by " + n.Index
	}
	return fmt.Sprintf("%s: %v rows", s, n.Rows*n.Loops)
}

func (n planNode) walk(fn func(planNode)) {
	fn(n)
	for _, c := range n.Plans {
		c.walk(fn)
	}
}
