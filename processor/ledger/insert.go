package ledger

import (
	"context"
	"fmt"
	"strings"
)

// Inserter adds rows to one table in multi-row INSERT statements: a
// statement for every chunk of rows instead of one a row, which is what a
// step staging a million records pays for. The full chunk's statement is
// prepared once for the transaction. Call Flush after the last row.
type Inserter struct {
	tx    *Tx
	head  string // INSERT INTO t (cols) VALUES
	tuple string // (?, ?, …)
	cols  int
	chunk int
	args  []any
	full  string // the statement of a full chunk
}

// maxInsertArgs keeps a chunk's parameters within every database's limit
// (SQLite allows 32766, PostgreSQL 65535).
const maxInsertArgs = 4096

// Inserter returns an inserter of rows of cols into table, chunk rows a
// statement (bounded so that a statement binds at most maxInsertArgs
// values).
func (t *Tx) Inserter(table string, cols []string, chunk int) *Inserter {
	chunk = max(1, min(chunk, maxInsertArgs/len(cols)))
	in := &Inserter{tx: t, cols: len(cols), chunk: chunk,
		head:  `INSERT INTO ` + table + ` (` + strings.Join(cols, ", ") + `) VALUES `,
		tuple: `(` + strings.TrimSuffix(strings.Repeat("?, ", len(cols)), ", ") + `)`,
	}
	in.full = in.statement(chunk)
	in.args = make([]any, 0, chunk*len(cols))
	return in
}

func (in *Inserter) statement(rows int) string {
	var b strings.Builder
	b.Grow(len(in.head) + rows*(len(in.tuple)+2))
	b.WriteString(in.head)
	for i := range rows {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(in.tuple)
	}
	return b.String()
}

// Add queues one row (one value a column, in order), writing the chunk
// when it is full.
func (in *Inserter) Add(ctx context.Context, vals ...any) error {
	if len(vals) != in.cols {
		return fmt.Errorf("insert: %d values for %d columns", len(vals), in.cols)
	}
	in.args = append(in.args, vals...)
	if len(in.args) == in.chunk*in.cols {
		return in.Flush(ctx)
	}
	return nil
}

// Flush writes the rows queued so far.
func (in *Inserter) Flush(ctx context.Context) error {
	if len(in.args) == 0 {
		return nil
	}
	q := in.full
	if rows := len(in.args) / in.cols; rows != in.chunk {
		q = in.statement(rows)
	}
	_, err := in.tx.Exec(ctx, q, in.args...)
	in.Discard()
	return err
}

// Discard drops the rows queued and not yet written (and their values).
func (in *Inserter) Discard() {
	clear(in.args)
	in.args = in.args[:0]
}
