// Package sqlite opens the ledger on an embedded SQLite file (pure Go, no
// cgo) in WAL mode, with a busy timeout so that several processes can
// share one file, and write transactions that take the write lock at
// BEGIN (no lock upgrades, no deadlocks between writers).
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"

	"modernc.org/sqlite"

	"resub/processor/ledger"
)

// Dialect is SQLite's.
var Dialect = ledger.Dialect{
	Name:   "sqlite",
	AutoID: "INTEGER PRIMARY KEY AUTOINCREMENT",
	Blob:   "BLOB",
	Busy:   isBusy,
}

func isBusy(err error) bool {
	var se *sqlite.Error
	if errors.As(err, &se) {
		c := se.Code() & 0xff
		return c == 5 || c == 6 // SQLITE_BUSY, SQLITE_LOCKED
	}
	return false
}

// DSN is the driver string for path.
func DSN(path string) string {
	v := url.Values{}
	v.Add("_pragma", "busy_timeout(15000)")
	v.Add("_pragma", "journal_mode(WAL)")
	v.Add("_pragma", "synchronous(FULL)")
	v.Add("_pragma", "foreign_keys(ON)")
	v.Set("_txlock", "immediate")
	return "file:" + path + "?" + v.Encode()
}

// Open opens (creating if needed) the ledger file at path and migrates it.
func Open(ctx context.Context, path string, opts ...ledger.Option) (*ledger.DB, error) {
	return OpenAt(ctx, path, ledger.SchemaVersion(), opts...)
}

// OpenAt opens the ledger and migrates it only to version target.
func OpenAt(ctx context.Context, path string, target int, opts ...ledger.Option) (*ledger.DB, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("ledger folder: %w", err)
	}
	db, err := sql.Open("sqlite", DSN(path))
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(8)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("ledger %s: %w", path, err)
	}
	// The ledger holds wrapped secrets only, but it is still nobody
	// else's business.
	_ = os.Chmod(path, 0o600)
	l, err := ledger.NewAt(ctx, db, Dialect, target, opts...)
	if err != nil {
		db.Close()
		return nil, err
	}
	return l, nil
}
