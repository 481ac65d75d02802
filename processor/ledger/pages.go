package ledger

import (
	"context"
	"database/sql"
)

// pageSize is how many rows a paged read takes at a time.
const pageSize = 1000

// eachPage reads a long result a page at a time, so that no cursor stays
// open while fn works (fn may write to the ledger) and memory holds one
// page. query returns the statement and arguments of the page after last
// (nil for the first page); the statement ends with LIMIT pageSize in key
// order.
func eachPage[T any](ctx context.Context, d *DB, query func(last *T) (string, []any), scan func(*sql.Rows) (T, error), fn func(T) error) error {
	var last *T
	for {
		q, args := query(last)
		rows, err := d.Query(ctx, q, args...)
		if err != nil {
			return err
		}
		page := make([]T, 0, pageSize)
		for rows.Next() {
			v, err := scan(rows)
			if err != nil {
				rows.Close()
				return err
			}
			page = append(page, v)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		for _, v := range page {
			if err := fn(v); err != nil {
				return err
			}
		}
		if len(page) < pageSize {
			return nil
		}
		last = &page[len(page)-1]
	}
}
