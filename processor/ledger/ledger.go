// Package ledger is resub's memory: every card with its history, every file
// received and sent, every batch and record, every OTA message and counter,
// IMSI allocations, job runs and leases, and an audit trail that never holds
// a secret.
//
// DB works over database/sql with portable SQL: statements are written once
// with ? placeholders and rebound for the dialect in use. The SQLite driver
// lives in the sqlite sub-package; PostgreSQL follows with its own dialect.
// Every state change runs in a transaction.
package ledger

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Dialect is what differs between the SQL databases the ledger runs on.
type Dialect struct {
	Name string
	// Numbered placeholders ($1, $2 …) instead of ?.
	Numbered bool
	// Types substituted into the migrations.
	AutoID string // an auto-incrementing integer primary key
	Blob   string // a byte string
	// Integer, when set, replaces INTEGER in the migrations (SQLite's
	// INTEGER is 64 bits; a server's may be 32).
	Integer string
	// Busy reports whether an error means "locked, try again".
	Busy func(error) bool
	// Lock, when set, is the first statement of every transaction: it
	// takes the ledger's write lock (SQLite takes it at BEGIN).
	Lock string
	// Copy, when set, bulk-loads rows into a table on the connection a
	// transaction runs on (the Inserter uses it instead of multi-row
	// INSERT statements).
	Copy func(ctx context.Context, conn *sql.Conn, table string, cols []string, rows [][]any) (int64, error)
	// CachesStatements says the driver prepares and keeps statements
	// itself (transactions then prepare none of their own).
	CachesStatements bool
	// Analyze says staged tables are analysed before the statements that
	// join them (a server's planner knows nothing of a table just filled).
	Analyze bool
}

// DB is a ledger on one database.
type DB struct {
	db      *sql.DB
	dialect Dialect
	now     func() time.Time
	rebound map[string]string
	// asIs: open without migrating (a copy's source is not changed).
	asIs bool
	// observe, when set, is told of every statement (see
	// WithStatementObserver).
	observe func(Statement)
}

// Option adjusts a DB.
type Option func(*DB)

// WithClock sets the clock (tests).
func WithClock(now func() time.Time) Option { return func(d *DB) { d.now = now } }

// AsIs opens the ledger without migrating it (Version tells where it is).
func AsIs() Option { return func(d *DB) { d.asIs = true } }

// New wraps an open database, applying the migrations it lacks.
func New(ctx context.Context, db *sql.DB, dialect Dialect, opts ...Option) (*DB, error) {
	d := &DB{db: db, dialect: dialect, now: time.Now}
	for _, o := range opts {
		o(d)
	}
	if d.asIs {
		return d, nil
	}
	if err := d.Migrate(ctx, len(migrations)); err != nil {
		return nil, err
	}
	return d, nil
}

// NewAt is New that stops at schema version target (tests of upgrades).
func NewAt(ctx context.Context, db *sql.DB, dialect Dialect, target int, opts ...Option) (*DB, error) {
	d := &DB{db: db, dialect: dialect, now: time.Now}
	for _, o := range opts {
		o(d)
	}
	if d.asIs {
		return d, nil
	}
	if err := d.Migrate(ctx, target); err != nil {
		return nil, err
	}
	return d, nil
}

// Dialect is the dialect the ledger runs on.
func (d *DB) Dialect() Dialect { return d.dialect }

// Close closes the database.
func (d *DB) Close() error { return d.db.Close() }

// SQL exposes the database for read-only reports and tests.
func (d *DB) SQL() *sql.DB { return d.db }

// Now is the ledger's clock.
func (d *DB) Now() time.Time { return d.now().UTC() }

func (d *DB) q(query string) string {
	if !d.dialect.Numbered {
		return query
	}
	var b strings.Builder
	n := 0
	for i := 0; i < len(query); i++ {
		if query[i] == '?' {
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			continue
		}
		b.WriteByte(query[i])
	}
	return b.String()
}

// Tx is one ledger transaction.
type Tx struct {
	tx sqlTx
	d  *DB
	// conn is the connection the transaction runs on, when the dialect
	// bulk-loads with Copy.
	conn *sql.Conn
	// stmts are the statements prepared in this transaction, by SQL
	// text: a step that runs the same few statements for a million
	// records parses each once. They close with the transaction.
	stmts map[string]*sql.Stmt
	// cursors are the IMSI allocation cursors moved in the transaction,
	// by range, written before it commits.
	cursors map[string]string
}

// maxTxStmts bounds the prepared statements a transaction keeps (texts
// built at run time would otherwise grow the map without end).
const maxTxStmts = 256

// stmt returns the prepared statement of query, preparing it on first
// use; nil when the transaction keeps no more statements (the caller then
// runs the query unprepared). A statement that does not prepare is an
// error: on a server it has also ended the transaction.
func (t *Tx) stmt(ctx context.Context, query string) (*sql.Stmt, error) {
	if s, ok := t.stmts[query]; ok {
		return s, nil
	}
	if t.d.dialect.CachesStatements || len(t.stmts) >= maxTxStmts {
		return nil, nil
	}
	s, err := t.tx.PrepareContext(ctx, t.d.q(query))
	if err != nil {
		return nil, err
	}
	if t.stmts == nil {
		t.stmts = make(map[string]*sql.Stmt)
	}
	t.stmts[query] = s
	return s, nil
}

// Exec runs a statement in the transaction.
func (t *Tx) Exec(ctx context.Context, query string, args ...any) (sql.Result, error) {
	if t.d.observe == nil {
		return t.exec(ctx, query, args)
	}
	start := time.Now()
	res, err := t.exec(ctx, query, args)
	t.d.observed(ctx, t.d.q(query), start, affected(res, err), true, err)
	return res, err
}

func (t *Tx) exec(ctx context.Context, query string, args []any) (sql.Result, error) {
	s, err := t.stmt(ctx, query)
	if err != nil {
		return nil, err
	}
	if s != nil {
		return s.ExecContext(ctx, args...)
	}
	return t.tx.Tx.ExecContext(ctx, t.d.q(query), args...)
}

// Query runs a query in the transaction. It is not served from the
// prepared statements: the driver keeps one cursor a prepared statement,
// so a caller that runs the same query again while iterating the first
// rows would otherwise reset them. On a server engine a transaction reads
// one result at a time: read the rows to the end (or close them) before
// the transaction's next statement.
func (t *Tx) Query(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	if t.d.observe == nil {
		return t.tx.QueryContext(ctx, t.d.q(query), args...)
	}
	q := t.d.q(query)
	start := time.Now()
	rows, err := t.tx.QueryContext(ctx, q, args...)
	t.d.observed(ctx, q, start, -1, true, err)
	return rows, err
}

// QueryAll runs a query in the transaction through its prepared
// statement, like Exec: for a query run once per record of a hot path.
// The caller reads the rows to the end (or closes them) before running
// the same query text again, as the statement's cursor is shared.
func (t *Tx) QueryAll(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	if t.d.observe == nil {
		return t.queryAll(ctx, query, args)
	}
	start := time.Now()
	rows, err := t.queryAll(ctx, query, args)
	t.d.observed(ctx, t.d.q(query), start, -1, true, err)
	return rows, err
}

func (t *Tx) queryAll(ctx context.Context, query string, args []any) (*sql.Rows, error) {
	s, err := t.stmt(ctx, query)
	if err != nil {
		return nil, err
	}
	if s != nil {
		return s.QueryContext(ctx, args...)
	}
	return t.tx.QueryContext(ctx, t.d.q(query), args...)
}

// QueryRow runs a one-row query in the transaction. Scan the row before
// running the same query text again (the statement is shared).
func (t *Tx) QueryRow(ctx context.Context, query string, args ...any) *sql.Row {
	if t.d.observe == nil {
		return t.queryRow(ctx, query, args)
	}
	start := time.Now()
	row := t.queryRow(ctx, query, args)
	t.d.observed(ctx, t.d.q(query), start, -1, true, row.Err())
	return row
}

func (t *Tx) queryRow(ctx context.Context, query string, args []any) *sql.Row {
	if s, err := t.stmt(ctx, query); s != nil && err == nil {
		return s.QueryRowContext(ctx, args...)
	}
	return t.tx.QueryRowContext(ctx, t.d.q(query), args...)
}

// Now is the transaction's clock.
func (t *Tx) Now() time.Time { return t.d.Now() }

// InTx runs fn in a transaction, committing if it returns nil. Taking
// the write lock is retried a few times while the database is busy; once
// fn has run (it may have consumed a stream), nothing is retried and a
// busy database is returned as a transient error.
func (d *DB) InTx(ctx context.Context, fn func(*Tx) error) error {
	var err error
	for attempt := 0; attempt < 8; attempt++ {
		var began bool
		began, err = d.inTx(ctx, fn)
		busy := err != nil && d.dialect.Busy != nil && d.dialect.Busy(err)
		if busy && began {
			return &BusyError{Err: err}
		}
		if !busy {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Duration(10<<attempt) * time.Millisecond):
		}
	}
	return &BusyError{Err: err}
}

// inTx runs one transaction; began says whether fn was called.
func (d *DB) inTx(ctx context.Context, fn func(*Tx) error) (began bool, err error) {
	t := &Tx{d: d}
	var start time.Time
	if d.observe != nil {
		start = time.Now()
	}
	var sqltx *sql.Tx
	if d.dialect.Copy != nil {
		if t.conn, err = d.db.Conn(ctx); err != nil {
			return false, err
		}
		defer t.conn.Close()
		sqltx, err = t.conn.BeginTx(ctx, nil)
	} else {
		sqltx, err = d.db.BeginTx(ctx, nil)
	}
	if d.observe != nil {
		// The connection's wait is the BEGIN's; on SQLite it takes the
		// write lock, which can wait for another writer. A lease's own
		// transaction is told apart: its renewals wait for the lock
		// while a step's long transaction holds it, beside the step.
		text := "BEGIN"
		if isUpkeep(ctx) {
			text = BeginUpkeep
		}
		d.observed(ctx, text, start, -1, true, err)
	}
	if err != nil {
		return false, err
	}
	t.tx = sqlTx{Tx: sqltx, d: d}
	tx := t.tx
	defer func() {
		if p := recover(); p != nil {
			_ = tx.finish(ctx, false)
			panic(p)
		}
	}()
	if d.dialect.Lock != "" && !isUpkeep(ctx) {
		if _, err := tx.ExecContext(ctx, d.dialect.Lock); err != nil {
			_ = tx.finish(ctx, false)
			return false, err
		}
	}
	if err := fn(t); err != nil {
		_ = tx.finish(ctx, false)
		return true, err
	}
	if err := t.writeCursors(ctx); err != nil {
		_ = tx.finish(ctx, false)
		return true, err
	}
	if err := t.fence(ctx); err != nil {
		_ = tx.finish(ctx, false)
		return true, err
	}
	return true, tx.finish(ctx, true)
}

// Query runs a read query outside a transaction.
func (d *DB) Query(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	if d.observe == nil {
		return d.db.QueryContext(ctx, d.q(query), args...)
	}
	q := d.q(query)
	start := time.Now()
	rows, err := d.db.QueryContext(ctx, q, args...)
	d.observed(ctx, q, start, -1, false, err)
	return rows, err
}

// QueryRow runs a one-row read query outside a transaction.
func (d *DB) QueryRow(ctx context.Context, query string, args ...any) *sql.Row {
	if d.observe == nil {
		return d.db.QueryRowContext(ctx, d.q(query), args...)
	}
	q := d.q(query)
	start := time.Now()
	row := d.db.QueryRowContext(ctx, q, args...)
	d.observed(ctx, q, start, -1, false, row.Err())
	return row
}

// BusyError is a database that stayed locked: transient, retry later.
type BusyError struct{ Err error }

func (e *BusyError) Error() string   { return "ledger busy: " + e.Err.Error() }
func (e *BusyError) Unwrap() error   { return e.Err }
func (e *BusyError) Temporary() bool { return true }

// ErrNotFound is returned when a looked-up row does not exist.
var ErrNotFound = errors.New("not found in the ledger")

func ts(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

// Stamp is a time as the ledger stores it (set-based statements bind it
// once for every row they write).
func Stamp(t time.Time) string { return ts(t) }

// ParseTime reads a time stored by the ledger.
func ParseTime(s string) (time.Time, error) { return time.Parse(time.RFC3339Nano, s) }

func notFound(err error, what string) error {
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("%s: %w", what, ErrNotFound)
	}
	return err
}
