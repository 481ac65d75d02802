package sqlite_test

import (
	"context"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"resub/processor/ledger"
	"resub/processor/ledger/ledgertest"
)

// statementLog keeps what an observer is told (statements of concurrent
// reads come from several goroutines).
type statementLog struct {
	mu  sync.Mutex
	all []ledger.Statement
}

func (l *statementLog) observe(s ledger.Statement) {
	l.mu.Lock()
	l.all = append(l.all, s)
	l.mu.Unlock()
}

func (l *statementLog) reset() {
	l.mu.Lock()
	l.all = nil
	l.mu.Unlock()
}

func (l *statementLog) find(fn func(ledger.Statement) bool) []ledger.Statement {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []ledger.Statement
	for _, s := range l.all {
		if fn(s) {
			out = append(out, s)
		}
	}
	return out
}

// textHas matches a statement whose text holds every one of parts.
func textHas(parts ...string) func(ledger.Statement) bool {
	return func(s ledger.Statement) bool {
		for _, p := range parts {
			if !strings.Contains(s.Text, p) {
				return false
			}
		}
		return true
	}
}

// The observer is told of every statement the ledger runs, in a
// transaction and outside, by its SQL alone: the arguments (here a value
// shaped like a secret, an ICCID and an IMSI) appear in none of them.
func TestStatementObserver(t *testing.T) {
	ctx := context.Background()
	var log statementLog
	db := open(t, filepath.Join(t.TempDir(), "l.db"), ledger.WithStatementObserver(log.observe))
	if len(log.find(textHas("CREATE TABLE cards"))) == 0 {
		t.Error("the migrations' statements were not observed")
	}
	log.reset()

	const (
		secret = "5ec7e7-0PC-a1b2c3d4e5f60718293a4b5c6d7e8f90"
		iccid  = "8988211000000467285"
		imsi   = "001017777123456"
	)
	if err := db.AcquireLease(ctx, "a-imsi-list", "node-1", time.Minute); err != nil {
		t.Fatal(err)
	}
	fenced := ledger.WithFence(ctx, "a-imsi-list", "node-1")
	err := db.InTx(fenced, func(tx *ledger.Tx) error {
		if _, err := tx.InsertCard(ctx, &ledger.Card{ICCID: iccid, IMSI: imsi, State: ledger.CardActive}); err != nil {
			return err
		}
		if _, err := tx.Exec(fenced, `INSERT INTO audit (at, actor, action, subject, detail)
			VALUES (?, ?, ?, ?, ?)`, ledger.Stamp(tx.Now()), "test", "observe", iccid, secret); err != nil {
			return err
		}
		// Three rows two a chunk: a full chunk and the rest at Flush.
		in := tx.Inserter("audit", []string{"at", "actor", "action", "subject", "detail"}, 2)
		for range 3 {
			if err := in.Add(fenced, ledger.Stamp(tx.Now()), "test", "bulk", iccid, secret); err != nil {
				return err
			}
		}
		if err := in.Flush(fenced); err != nil {
			return err
		}
		var n int
		if err := tx.QueryRow(fenced, `SELECT COUNT(*) FROM audit WHERE detail = ?`, secret).Scan(&n); err != nil {
			return err
		}
		if n != 4 {
			t.Errorf("%d audit rows, want 4", n)
		}
		rows, err := tx.Query(fenced, `SELECT subject FROM audit WHERE action = ?`, "bulk")
		if err != nil {
			return err
		}
		for rows.Next() {
		}
		rows.Close()
		rows, err = tx.QueryAll(fenced, `SELECT iccid FROM cards WHERE imsi = ?`, imsi)
		if err != nil {
			return err
		}
		for rows.Next() {
		}
		return rows.Close()
	})
	if err != nil {
		t.Fatal(err)
	}
	var got string
	if err := db.QueryRow(ctx, `SELECT imsi FROM cards WHERE iccid = ?`, iccid).Scan(&got); err != nil || got != imsi {
		t.Fatalf("card read back: %q, %v", got, err)
	}

	one := func(what string, fn func(ledger.Statement) bool) ledger.Statement {
		t.Helper()
		found := log.find(fn)
		if len(found) == 0 {
			t.Fatalf("%s: not observed", what)
		}
		return found[0]
	}
	ex := one("the INSERT", textHas("INSERT INTO audit", "VALUES (", "detail"))
	if !ex.InTx || ex.Rows != 1 || ex.Job != "a-imsi-list" || ex.Duration <= 0 || ex.Failed {
		t.Errorf("the INSERT: %+v", ex)
	}
	if s := one("the card's INSERT", textHas("INSERT INTO cards")); !s.InTx {
		t.Errorf("the card's INSERT: %+v", s)
	}
	for _, what := range []string{"SELECT COUNT(*) FROM audit WHERE detail", "SELECT subject FROM audit", "SELECT iccid FROM cards WHERE imsi"} {
		s := one(what, textHas(what))
		if !s.InTx || s.Rows != -1 || s.Job != "a-imsi-list" {
			t.Errorf("%s: %+v", what, s)
		}
	}
	out := one("the read outside", textHas("SELECT imsi FROM cards WHERE iccid"))
	if out.InTx || out.Job != "" {
		t.Errorf("the read outside a transaction: %+v", out)
	}
	// The lease's own transaction commits unfenced; the step's under its
	// job.
	commit := one("the step's COMMIT", func(s ledger.Statement) bool { return s.Text == "COMMIT" && s.Job == "a-imsi-list" })
	if !commit.InTx || commit.Failed {
		t.Errorf("the COMMIT: %+v", commit)
	}
	one("the step's BEGIN", func(s ledger.Statement) bool { return s.Text == "BEGIN" && s.Job == "a-imsi-list" })
	// The lease's transaction is told apart from the step's: on SQLite
	// its renewals wait for the write lock a step holds, beside it.
	one("the lease's BEGIN", func(s ledger.Statement) bool { return s.Text == "BEGIN (lease upkeep)" && s.Job == "" })
	// The Inserter's flushes: two statements of 2 and 1 rows, or one
	// bulk load of 3 on an engine that loads with COPY.
	var flushed []int64
	for _, s := range log.find(textHas("audit")) {
		if strings.HasPrefix(s.Text, "COPY audit") || (strings.HasPrefix(s.Text, "INSERT INTO audit (at, actor, action, subject, detail) VALUES (")) {
			flushed = append(flushed, s.Rows)
		}
	}
	want := []int64{2, 1}
	if ledgertest.Postgres() {
		want = []int64{3}
	}
	if len(flushed) != len(want) || flushed[0] != want[0] || flushed[len(flushed)-1] != want[len(want)-1] {
		t.Errorf("the Inserter's flushes: rows %v, want %v", flushed, want)
	}
	// No argument in any statement's text.
	for _, s := range log.find(func(ledger.Statement) bool { return true }) {
		for _, v := range []string{secret, iccid, imsi, "node-1"} {
			if strings.Contains(s.Text, v) {
				t.Errorf("statement %q carries an argument", s.Text)
			}
		}
	}
}

// A statement that fails is observed as failed, with its text and without
// the error's words (a server's error detail can quote a row's values).
func TestStatementObserverFailed(t *testing.T) {
	ctx := context.Background()
	var log statementLog
	db := open(t, filepath.Join(t.TempDir(), "l.db"), ledger.WithStatementObserver(log.observe))
	err := db.InTx(ctx, func(tx *ledger.Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO no_such_table (x) VALUES (?)`, "8988211000000467285")
		return err
	})
	if err == nil {
		t.Fatal("insert into a missing table did not fail")
	}
	found := log.find(textHas("no_such_table"))
	if len(found) != 1 || !found[0].Failed {
		t.Fatalf("the failed statement: %+v", found)
	}
	if len(log.find(func(s ledger.Statement) bool { return s.Text == "ROLLBACK" })) != 1 {
		t.Error("the ROLLBACK was not observed")
	}
}

// Two observers given at open are both told.
func TestStatementObserverTwo(t *testing.T) {
	var a, b statementLog
	db := open(t, filepath.Join(t.TempDir(), "l.db"), ledger.WithStatementObserver(a.observe), ledger.WithStatementObserver(b.observe))
	if _, err := db.CountByState(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(a.find(textHas("FROM cards"))) == 0 || len(b.find(textHas("FROM cards"))) == 0 {
		t.Error("an observer was not told")
	}
}

func TestStatementKey(t *testing.T) {
	for _, tc := range []struct{ name, in, want string }{
		{"whitespace", "SELECT a,\n\t\tb  FROM t\n WHERE x = ?  ", "SELECT a, b FROM t WHERE x = ?"},
		{"rows of an insert", "INSERT INTO t (a, b) VALUES (?, ?), (?, ?), (?, ?)", "INSERT INTO t (a, b) VALUES (?, ?), …"},
		{"one row", "INSERT INTO t (a, b) VALUES (?, ?)", "INSERT INTO t (a, b) VALUES (?, ?)"},
		{"numbered", "INSERT INTO t (a, b) VALUES ($1, $2), ($3, $4)", "INSERT INTO t (a, b) VALUES ($1, $2), …"},
		{"rows then more", "INSERT INTO t (a) VALUES (?), (?) ON CONFLICT DO NOTHING", "INSERT INTO t (a) VALUES (?), … ON CONFLICT DO NOTHING"},
		{"nested parentheses", "INSERT INTO t (a) VALUES (COALESCE(?, 0)), (COALESCE(?, 0))", "INSERT INTO t (a) VALUES (COALESCE(?, 0)), …"},
		{"select in values", "INSERT INTO t (a) SELECT x FROM u WHERE y IN (?, ?)", "INSERT INTO t (a) SELECT x FROM u WHERE y IN (?, ?)"},
		{"lower case", "insert into t (a) values (?),(?)", "insert into t (a) values (?), …"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := ledger.StatementKey(tc.in); got != tc.want {
				t.Errorf("StatementKey(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
	// The chunks of one Inserter group together.
	if ledger.StatementKey("INSERT INTO t (a) VALUES (?), (?), (?)") != ledger.StatementKey("INSERT INTO t (a) VALUES (?), (?)") {
		t.Error("an Inserter's full and last chunks have different keys")
	}
}

// BenchmarkExecObserver: a prepared one-row statement in a transaction,
// without an observer (a nil check) and with one that does nothing.
func BenchmarkExecObserver(b *testing.B) {
	for _, tc := range []struct {
		name string
		opts []ledger.Option
	}{{"none", nil}, {"observer", []ledger.Option{ledger.WithStatementObserver(func(ledger.Statement) {})}}} {
		b.Run(tc.name, func(b *testing.B) {
			ctx := context.Background()
			db := ledgertest.Open(b, filepath.Join(b.TempDir(), "l.db"), tc.opts...)
			err := db.InTx(ctx, func(tx *ledger.Tx) error {
				for b.Loop() {
					if _, err := tx.Exec(ctx, `SELECT COUNT(*) FROM leases WHERE job = ?`, "x"); err != nil {
						return err
					}
				}
				return nil
			})
			if err != nil {
				b.Fatal(err)
			}
		})
	}
}
