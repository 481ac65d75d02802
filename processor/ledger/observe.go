package ledger

import (
	"context"
	"database/sql"
	"strings"
	"time"
)

// BeginUpkeep is the text of a lease upkeep transaction's start: the
// transactions that take and renew a job's lease, beside the job's own.
const BeginUpkeep = "BEGIN (lease upkeep)"

// Statement is one statement the ledger ran, as an observer is told of it
// (see WithStatementObserver): its SQL and how long it took, never its
// arguments, which can be sealed secrets or a card's identifiers.
type Statement struct {
	// Text is the statement's SQL as run, with its placeholders (a bulk
	// load is "COPY table (columns) FROM STDIN"; a transaction's end is
	// "COMMIT" or "ROLLBACK", its start "BEGIN", or "BEGIN (lease
	// upkeep)" for the transactions that take and renew a job's lease,
	// which run beside the job's own). StatementKey groups
	// texts that differ only in layout or in the rows of a multi-row
	// INSERT.
	Text string
	// Duration is the time to the statement's return (for a prepared
	// statement's first run, its preparation included). A query's rows
	// are read by its caller after it returns, and that reading is not
	// included.
	Duration time.Duration
	// Rows is the number of rows the statement wrote as the driver
	// counts them (an INSERT, UPDATE, DELETE or bulk load; 0 for DDL), or
	// -1 where that is not cheaply known: a query (its rows are read
	// after it returns), BEGIN, COMMIT, ROLLBACK.
	Rows int64
	// InTx says the statement ran in a transaction (InTx), not as a read
	// outside one.
	InTx bool
	// Job is the job whose lease fences the statement's context (see
	// WithFence); empty when there is none.
	Job string
	// Failed says the statement returned an error. The error itself is
	// not given: a server's error detail can quote a row's values.
	Failed bool
}

// WithStatementObserver has fn told of every statement the ledger runs:
// each of a transaction's statements (Tx's Exec, Query, QueryAll and
// QueryRow, the Inserter's chunks or bulk loads, a step's staging DDL and
// ANALYZE, BEGIN, COMMIT and ROLLBACK) and each read outside one. fn is
// called on the statement's goroutine once it returns, from several
// goroutines at once where reads run side by side: it must be quick and
// safe for concurrent use. Given more than once, every fn is told, in the
// order given. Without an observer the ledger pays one nil check a
// statement.
func WithStatementObserver(fn func(Statement)) Option {
	return func(d *DB) {
		if fn == nil {
			return
		}
		if prev := d.observe; prev != nil {
			d.observe = func(s Statement) { prev(s); fn(s) }
			return
		}
		d.observe = fn
	}
}

// observed tells the observer of a statement that started at start.
func (d *DB) observed(ctx context.Context, text string, start time.Time, rows int64, inTx bool, err error) {
	s := Statement{Text: text, Duration: time.Since(start), Rows: rows, InTx: inTx, Failed: err != nil}
	if f := FenceOf(ctx); f != nil {
		s.Job = f.Job
	}
	d.observe(s)
}

// affected is a result's row count for an observer, -1 when unknown.
func affected(res sql.Result, err error) int64 {
	if err != nil || res == nil {
		return -1
	}
	n, err := res.RowsAffected()
	if err != nil {
		return -1
	}
	return n
}

// sqlTx is the database transaction under a Tx. The statements run on it
// directly (a step's staging DDL, ANALYZE, the write lock, the fence) are
// told to the ledger's observer here; Tx's methods, which also run
// prepared statements, tell it of theirs themselves and use the embedded
// transaction's methods.
type sqlTx struct {
	*sql.Tx
	d *DB
}

// ExecContext runs a statement on the transaction, observed.
func (x sqlTx) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	if x.d.observe == nil {
		return x.Tx.ExecContext(ctx, query, args...)
	}
	start := time.Now()
	res, err := x.Tx.ExecContext(ctx, query, args...)
	x.d.observed(ctx, query, start, affected(res, err), true, err)
	return res, err
}

// finish commits or rolls back the transaction, observed as COMMIT or
// ROLLBACK.
func (x sqlTx) finish(ctx context.Context, commit bool) error {
	op, text := x.Tx.Rollback, "ROLLBACK"
	if commit {
		op, text = x.Tx.Commit, "COMMIT"
	}
	if x.d.observe == nil {
		return op()
	}
	start := time.Now()
	err := op()
	x.d.observed(ctx, text, start, -1, true, err)
	return err
}

// StatementKey is the key statements are grouped by in a report of where
// time goes: the text with its whitespace collapsed to single spaces, and
// the rows of a multi-row VALUES list collapsed to the first and "…", so
// that an Inserter's chunks of every size (two rows or more) group
// together.
func StatementKey(text string) string {
	text = strings.Join(strings.Fields(text), " ")
	i := indexFold(text, " VALUES (")
	if i < 0 {
		return text
	}
	// Walk the tuples: (…), (…), … up to the first text that is not one.
	p := i + len(" VALUES ")
	end, tuples := p, 0
	for end < len(text) && text[end] == '(' {
		c := closing(text, end)
		if c < 0 {
			return text
		}
		tuples++
		next := c + 1
		if tuples == 1 {
			p = next
		}
		if strings.HasPrefix(text[next:], ", (") {
			end = next + 2
			continue
		}
		if strings.HasPrefix(text[next:], ",(") {
			end = next + 1
			continue
		}
		end = next
		break
	}
	if tuples < 2 {
		return text
	}
	return text[:p] + ", …" + text[end:]
}

// closing is the index of the parenthesis that closes the one at open, or
// -1 (quoted text is not looked into: statements carry no literals that
// hold parentheses in their VALUES lists).
func closing(s string, open int) int {
	depth := 0
	for i := open; i < len(s); i++ {
		switch s[i] {
		case '(':
			depth++
		case ')':
			depth--
			if depth == 0 {
				return i
			}
		}
	}
	return -1
}

// indexFold is strings.Index ignoring ASCII case.
func indexFold(s, sub string) int {
	for i := 0; i+len(sub) <= len(s); i++ {
		if strings.EqualFold(s[i:i+len(sub)], sub) {
			return i
		}
	}
	return -1
}
