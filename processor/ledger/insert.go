package ledger

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// Inserter adds rows to one table in multi-row INSERT statements: a
// statement for every chunk of rows instead of one a row, which is what a
// step staging a million records pays for. The full chunk's statement is
// prepared once for the transaction. On a dialect that bulk-loads (COPY on
// PostgreSQL) the rows go that way instead, copyChunk rows a load. Call
// Flush after the last row.
type Inserter struct {
	tx    *Tx
	table string
	names []string
	// copying: rows are loaded with the dialect's Copy; written: rows
	// were written since the table was last analysed.
	copying, written bool
	head             string // INSERT INTO t (cols) VALUES
	tuple            string // (?, ?, …)
	cols             int
	chunk            int
	args             []any
	full             string // the statement of a full chunk
}

// copyChunk is how many rows one bulk load carries.
const copyChunk = 8192

// maxInsertArgs keeps a chunk's parameters within every database's limit
// (SQLite allows 32766, PostgreSQL 65535).
const maxInsertArgs = 4096

// Inserter returns an inserter of rows of cols into table, chunk rows a
// statement (bounded so that a statement binds at most maxInsertArgs
// values).
func (t *Tx) Inserter(table string, cols []string, chunk int) *Inserter {
	copying := t.conn != nil && t.d.dialect.Copy != nil
	if copying {
		chunk = copyChunk
	} else {
		chunk = max(1, min(chunk, maxInsertArgs/len(cols)))
	}
	in := &Inserter{tx: t, table: table, names: cols, copying: copying, cols: len(cols), chunk: chunk,
		head:  `INSERT INTO ` + table + ` (` + strings.Join(cols, ", ") + `) VALUES `,
		tuple: `(` + strings.TrimSuffix(strings.Repeat("?, ", len(cols)), ", ") + `)`,
	}
	if !copying {
		in.full = in.statement(chunk)
	}
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
		return in.write(ctx)
	}
	return nil
}

// Flush writes the rows queued so far. On a dialect that analyses staged
// tables it then analyses the table: the statements that follow a stage
// join it, and a server's planner knows nothing of a table just filled.
func (in *Inserter) Flush(ctx context.Context) error {
	if err := in.write(ctx); err != nil {
		return err
	}
	if in.written {
		if err := in.tx.analyze(ctx, in.table); err != nil {
			return err
		}
	}
	in.written = false
	return nil
}

// analyze has a server's planner learn a table just filled (a stage, a
// batch written by one statement); nothing where the dialect does not ask
// for it.
func (t *Tx) analyze(ctx context.Context, table string) error {
	if !t.d.dialect.Analyze {
		return nil
	}
	if _, err := t.tx.ExecContext(ctx, `ANALYZE `+table); err != nil {
		return fmt.Errorf("analyze %s: %w", table, err)
	}
	return nil
}

// write writes the rows queued so far.
func (in *Inserter) write(ctx context.Context) error {
	if len(in.args) == 0 {
		return nil
	}
	in.written = true
	if in.copying {
		rows := make([][]any, 0, len(in.args)/in.cols)
		for i := 0; i < len(in.args); i += in.cols {
			rows = append(rows, in.args[i:i+in.cols])
		}
		d := in.tx.d
		if d.observe == nil {
			_, err := d.dialect.Copy(ctx, in.tx.conn, in.table, in.names, rows)
			in.Discard()
			return err
		}
		start := time.Now()
		n, err := d.dialect.Copy(ctx, in.tx.conn, in.table, in.names, rows)
		if err != nil {
			n = -1
		}
		d.observed(ctx, "COPY "+in.table+" ("+strings.Join(in.names, ", ")+") FROM STDIN", start, n, true, err)
		in.Discard()
		return err
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
