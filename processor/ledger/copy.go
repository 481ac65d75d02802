package ledger

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"
	"sort"
	"strings"
)

// CopyRefusal is a copy refused before anything was written: a ledger at
// another schema version, a target that is not empty, different tables.
type CopyRefusal struct{ Reason string }

func (e *CopyRefusal) Error() string { return "ledger copy: " + e.Reason }

// TableCopy is what Copy did to one table.
type TableCopy struct {
	Table  string
	Rows   int64
	Digest string // hex, the same on both sides
}

// CopyReport is a finished copy: every table, with its rows and digest
// checked on the target.
type CopyReport struct {
	Version int
	Tables  []TableCopy
}

// Rows is the number of rows copied in all tables.
func (r *CopyReport) Rows() int64 {
	var n int64
	for _, t := range r.Tables {
		n += t.Rows
	}
	return n
}

// Copy copies every table of the ledger from into the empty ledger to,
// which may run on another engine: rows keep their ids, the id sequences
// go on from where from's are, and secrets travel as the sealed blobs they
// are (nothing is unsealed). Both must be at this resub's schema version
// and hold the same tables; to must hold no row. The source is read in one
// transaction (its writers wait: stop the parties first anyway), the
// target written in one: a copy that fails leaves to empty. Before the
// target commits, every table's row count and digest (a hash of its rows
// that does not depend on their order) are read back from it and compared
// with the source's.
func Copy(ctx context.Context, from, to *DB) (*CopyReport, error) {
	want := SchemaVersion()
	for _, side := range []struct {
		name string
		db   *DB
	}{{"source", from}, {"target", to}} {
		v, err := side.db.Version(ctx)
		if err != nil {
			return nil, fmt.Errorf("ledger copy: %s schema version: %w", side.name, err)
		}
		if v != want {
			return nil, &CopyRefusal{fmt.Sprintf("the %s ledger is at schema version %d, this resub at %d: open it with this resub first", side.name, v, want)}
		}
	}
	rep := &CopyReport{Version: want}
	err := from.InTx(ctx, func(src *Tx) error {
		tables, err := src.tables(ctx)
		if err != nil {
			return err
		}
		return to.InTx(ctx, func(dst *Tx) error {
			have, err := dst.tables(ctx)
			if err != nil {
				return err
			}
			if strings.Join(have, ",") != strings.Join(tables, ",") {
				return &CopyRefusal{fmt.Sprintf("the ledgers hold different tables (source %s; target %s)", strings.Join(tables, " "), strings.Join(have, " "))}
			}
			for _, t := range tables {
				var n int64
				if err := dst.QueryRow(ctx, `SELECT COUNT(*) FROM `+t).Scan(&n); err != nil {
					return err
				}
				if n > 0 {
					return &CopyRefusal{fmt.Sprintf("the target is not empty (%s holds %d rows)", t, n)}
				}
			}
			for _, t := range tables {
				tc, err := copyTable(ctx, src, dst, t)
				if err != nil {
					return fmt.Errorf("ledger copy: %s: %w", t, err)
				}
				rep.Tables = append(rep.Tables, tc)
			}
			// Read everything back from the target before it commits.
			for _, tc := range rep.Tables {
				n, sum, err := dst.digest(ctx, tc.Table, nil)
				if err != nil {
					return fmt.Errorf("ledger copy: %s: read back: %w", tc.Table, err)
				}
				if n != tc.Rows || sum != tc.Digest {
					return fmt.Errorf("ledger copy: %s: the target holds %d rows (digest %s), the source %d (digest %s)", tc.Table, n, sum, tc.Rows, tc.Digest)
				}
			}
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	return rep, nil
}

// tables lists the ledger's tables (its schema table aside), sorted.
func (t *Tx) tables(ctx context.Context) ([]string, error) {
	q := `SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'`
	if t.d.dialect.Name != "sqlite" {
		q = `SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'`
	}
	rows, err := t.Query(ctx, q)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			return nil, err
		}
		if n != "schema_migrations" {
			out = append(out, n)
		}
	}
	sort.Strings(out)
	return out, rows.Err()
}

// copyTable copies one table's rows, returning their count and digest as
// read from the source.
func copyTable(ctx context.Context, src, dst *Tx, table string) (TableCopy, error) {
	tc := TableCopy{Table: table}
	cols, err := src.columns(ctx, table)
	if err != nil {
		return tc, err
	}
	in := dst.Inserter(table, cols, 256)
	n, sum, err := src.digest(ctx, table, func(vals []any) error { return in.Add(ctx, vals...) })
	if err != nil {
		return tc, err
	}
	if err := in.Flush(ctx); err != nil {
		return tc, err
	}
	tc.Rows, tc.Digest = n, sum
	if err := syncSequence(ctx, src, dst, table, cols); err != nil {
		return tc, err
	}
	return tc, nil
}

// columns lists a table's columns, sorted (the same on both engines).
func (t *Tx) columns(ctx context.Context, table string) ([]string, error) {
	rows, err := t.Query(ctx, `SELECT * FROM `+table+` WHERE 1 = 0`)
	if err != nil {
		return nil, err
	}
	cols, err := rows.Columns()
	rows.Close()
	if err != nil {
		return nil, err
	}
	sort.Strings(cols)
	return cols, nil
}

// digest reads every row of table (its columns sorted by name), calling
// each with the row's values when set, and returns the row count and a
// digest: the sum modulo 2^256 of the SHA-256 of each row's canonical
// encoding, which does not depend on the order the engine returns them in.
func (t *Tx) digest(ctx context.Context, table string, each func([]any) error) (int64, string, error) {
	cols, err := t.columns(ctx, table)
	if err != nil {
		return 0, "", err
	}
	rows, err := t.Query(ctx, `SELECT `+strings.Join(cols, ", ")+` FROM `+table)
	if err != nil {
		return 0, "", err
	}
	defer rows.Close()
	vals := make([]any, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	sum := new(big.Int)
	mod := new(big.Int).Lsh(big.NewInt(1), 256)
	h := sha256.New()
	var buf []byte
	var n int64
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return 0, "", err
		}
		buf = buf[:0]
		for i, v := range vals {
			if buf, err = canon(buf, v); err != nil {
				return 0, "", fmt.Errorf("column %s: %w", cols[i], err)
			}
		}
		h.Reset()
		h.Write(buf)
		sum.Add(sum, new(big.Int).SetBytes(h.Sum(nil)))
		sum.Mod(sum, mod)
		n++
		if each != nil {
			if err := each(vals); err != nil {
				return 0, "", err
			}
		}
		clear(vals)
	}
	if err := rows.Err(); err != nil {
		return 0, "", err
	}
	out := make([]byte, 32)
	sum.FillBytes(out)
	return n, hex.EncodeToString(out), nil
}

// canon appends a value's engine-independent encoding: a type letter and
// the value, length-prefixed where it has no fixed width.
func canon(b []byte, v any) ([]byte, error) {
	switch x := v.(type) {
	case nil:
		return append(b, 'n'), nil
	case int64:
		b = append(b, 'i')
		return binary.BigEndian.AppendUint64(b, uint64(x)), nil
	case int32:
		return canon(b, int64(x))
	case string:
		b = append(b, 's')
		b = binary.BigEndian.AppendUint32(b, uint32(len(x)))
		return append(b, x...), nil
	case []byte:
		b = append(b, 'b')
		b = binary.BigEndian.AppendUint32(b, uint32(len(x)))
		return append(b, x...), nil
	}
	return nil, errors.New("a value of an unexpected type")
}

// syncSequence carries a table's id sequence over: the target hands out
// the ids the source would have handed out next.
func syncSequence(ctx context.Context, src, dst *Tx, table string, cols []string) error {
	if !contains(cols, "id") {
		return nil
	}
	last, err := src.sequence(ctx, table)
	if err != nil {
		return err
	}
	var maxID int64
	if err := dst.QueryRow(ctx, `SELECT COALESCE(MAX(id), 0) FROM `+table).Scan(&maxID); err != nil {
		return err
	}
	last = max(last, maxID)
	if last == 0 {
		return nil
	}
	if dst.d.dialect.Name == "sqlite" {
		res, err := dst.Exec(ctx, `UPDATE sqlite_sequence SET seq = ? WHERE name = ?`, last, table)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			_, err = dst.Exec(ctx, `INSERT INTO sqlite_sequence (name, seq) VALUES (?, ?)`, table, last)
		}
		return err
	}
	_, err = dst.Exec(ctx, `SELECT setval(pg_get_serial_sequence(?, 'id'), ?, true)`, table, last)
	return err
}

// sequence is the last id the table's sequence handed out (0: none).
func (t *Tx) sequence(ctx context.Context, table string) (int64, error) {
	var v int64
	var err error
	if t.d.dialect.Name == "sqlite" {
		err = t.QueryRow(ctx, `SELECT COALESCE(MAX(seq), 0) FROM sqlite_sequence WHERE name = ?`, table).Scan(&v)
	} else {
		// last_value is NULL until the sequence handed out a value.
		err = t.QueryRow(ctx, `SELECT COALESCE(MAX(last_value), 0) FROM pg_sequences
			WHERE format('%I.%I', schemaname, sequencename) = pg_get_serial_sequence(?, 'id')`, table).Scan(&v)
	}
	return v, err
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
