// Package ledgertest opens ledgers for tests on the engine the test run
// names: RESUB_TEST_LEDGER=postgres runs them on the PostgreSQL server of
// RESUB_TEST_POSTGRES (a URL of a user that may create schemas; each
// ledger gets its own schema, dropped at the end of its test), anything
// else on SQLite files. In CI (CI=true) a PostgreSQL run without a server
// fails instead of skipping.
package ledgertest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"

	"resub/processor/ledger"
	"resub/processor/ledger/postgres"
	"resub/processor/ledger/sqlite"
)

// Engine is the engine of this test run: "sqlite" or "postgres".
func Engine() string {
	if os.Getenv("RESUB_TEST_LEDGER") == "postgres" {
		return "postgres"
	}
	return "sqlite"
}

// Postgres reports whether the run is on PostgreSQL.
func Postgres() bool { return Engine() == "postgres" }

// ServerURL is the PostgreSQL server of the tests; a test without one
// fails in CI and is skipped elsewhere, saying why.
func ServerURL(t testing.TB) string {
	t.Helper()
	u := os.Getenv("RESUB_TEST_POSTGRES")
	if u == "" {
		msg := "no PostgreSQL server: set RESUB_TEST_POSTGRES (source .ci/postgres.sh starts one)"
		if os.Getenv("CI") == "true" || Postgres() {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return u
}

var (
	mu     sync.Mutex
	admin  *sql.DB
	byPath = map[string]string{}
)

// NewDatabase makes an empty ledger place on the test server, dropped at
// the end of the test, and returns its URL: a schema of the server's
// database (search_path in the URL), which is made in milliseconds where a
// database takes half a second.
func NewDatabase(t testing.TB) string {
	t.Helper()
	server := ServerURL(t)
	mu.Lock()
	if admin == nil {
		db, err := postgres.OpenSQL(context.Background(), server, nil)
		if err != nil {
			mu.Unlock()
			t.Fatal(err)
		}
		db.SetMaxOpenConns(2)
		admin = db
	}
	a := admin
	mu.Unlock()
	b := make([]byte, 8)
	rand.Read(b)
	name := "resub_test_" + hex.EncodeToString(b)
	if _, err := a.Exec(`CREATE SCHEMA ` + name); err != nil {
		t.Fatalf("create test schema: %v", err)
	}
	t.Cleanup(func() {
		if _, err := a.Exec(`DROP SCHEMA IF EXISTS ` + name + ` CASCADE`); err != nil {
			t.Logf("drop test schema %s: %v", name, err)
		}
	})
	u, err := url.Parse(server)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("search_path", name)
	u.RawQuery = q.Encode()
	return u.String()
}

// Spec names the ledger of path for this run: "sqlite:PATH", or the URL
// of the database standing for path on PostgreSQL (the same database for
// the same path within a test process). Child processes open it with
// OpenSpec.
func Spec(t testing.TB, path string) string {
	t.Helper()
	if !Postgres() {
		return "sqlite:" + path
	}
	mu.Lock()
	u, ok := byPath[path]
	mu.Unlock()
	if ok {
		return u
	}
	u = NewDatabase(t)
	mu.Lock()
	byPath[path] = u
	mu.Unlock()
	t.Cleanup(func() {
		mu.Lock()
		delete(byPath, path)
		mu.Unlock()
	})
	return u
}

// OpenSpec opens a ledger named by Spec (in a child process too).
func OpenSpec(ctx context.Context, spec string, opts ...ledger.Option) (*ledger.DB, error) {
	return OpenSpecAt(ctx, spec, ledger.SchemaVersion(), opts...)
}

// OpenSpecAt opens a ledger named by Spec at schema version target.
func OpenSpecAt(ctx context.Context, spec string, target int, opts ...ledger.Option) (*ledger.DB, error) {
	if path, ok := strings.CutPrefix(spec, "sqlite:"); ok {
		return sqlite.OpenAt(ctx, path, target, opts...)
	}
	if postgres.IsURL(spec) {
		return postgres.OpenAt(ctx, spec, nil, target, opts...)
	}
	return nil, fmt.Errorf("ledgertest: %q is no ledger", spec)
}

// Open opens (creating it) the ledger standing for path, closed at the
// end of the test.
func Open(t testing.TB, path string, opts ...ledger.Option) *ledger.DB {
	t.Helper()
	return OpenAt(t, path, ledger.SchemaVersion(), opts...)
}

// OpenAt is Open migrating only to version target.
func OpenAt(t testing.TB, path string, target int, opts ...ledger.Option) *ledger.DB {
	t.Helper()
	db, err := OpenSpecAt(context.Background(), Spec(t, path), target, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}
