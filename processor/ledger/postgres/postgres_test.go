package postgres_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"resub/processor/ledger"
	"resub/processor/ledger/ledgertest"
	"resub/processor/ledger/postgres"
	"resub/processor/ledger/sqlite"
)

func TestCheckURL(t *testing.T) {
	for _, tc := range []struct{ url, want string }{
		{"postgres://resub@db.example:5432/resub?sslmode=verify-full&sslrootcert=/etc/resub/ca.pem", ""},
		{"postgresql://resub@db.example/resub", ""},
		{"postgres://resub:pw-in-url@db.example/resub", "holds a password"},
		{"postgres://resub@db.example/resub?password=pw-in-url", "password parameter"},
		{"postgres://resub@db.example", "names no database"},
		{"postgres:///resub", "names no host"},
		{"mysql://db.example/resub", "not a postgres"},
	} {
		err := postgres.CheckURL(tc.url)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: refused: %v", tc.url, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s: want %q, got %v", tc.url, tc.want, err)
		case err != nil && strings.Contains(err.Error(), "pw-in-url"):
			t.Errorf("%s: the password is in the error: %v", tc.url, err)
		}
	}
	if r := postgres.Redact("postgres://resub:pw-in-url@db.example/resub"); strings.Contains(r, "pw-in-url") {
		t.Errorf("Redact kept the password: %s", r)
	}
}

// A server that is not there is a transient failure (exit 3), and the
// error never carries the password.
func TestUnreachableServerIsTransient(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err = postgres.Open(ctx, "postgres://resub@"+addr+"/resub?sslmode=disable&connect_timeout=2", []byte("pw-secret"))
	if err == nil {
		t.Fatal("opened a ledger on a closed port")
	}
	if !postgres.Unreachable(err) {
		t.Errorf("a closed port is not reported unreachable: %v", err)
	}
	if strings.Contains(err.Error(), "pw-secret") {
		t.Errorf("the password is in the error: %v", err)
	}
}

// The inserter loads rows with COPY on PostgreSQL, in chunks, and
// analyses the table once the rows are in.
func TestInserterCopiesAndAnalyses(t *testing.T) {
	ctx := context.Background()
	u := ledgertest.NewDatabase(t)
	sqlDB, err := postgres.OpenSQL(ctx, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	copies := 0
	d := postgres.Dialect
	d.Copy = func(ctx context.Context, conn *sql.Conn, table string, cols []string, rows [][]any) (int64, error) {
		copies++
		return postgres.Dialect.Copy(ctx, conn, table, cols, rows)
	}
	db, err := ledger.New(ctx, sqlDB, d)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	const n = 20000
	err = db.InTx(ctx, func(tx *ledger.Tx) error {
		if _, err := tx.Exec(ctx, `CREATE TEMP TABLE copied (line INTEGER PRIMARY KEY, name TEXT NOT NULL, blob BYTEA)`); err != nil {
			return err
		}
		in := tx.Inserter("copied", []string{"line", "name", "blob"}, 64)
		for i := 1; i <= n; i++ {
			var b any
			if i%2 == 0 {
				b = []byte{byte(i)}
			}
			if err := in.Add(ctx, i, fmt.Sprintf("row-%d", i), b); err != nil {
				return err
			}
		}
		if err := in.Flush(ctx); err != nil {
			return err
		}
		var count, nulls, sum int64
		if err := tx.QueryRow(ctx, `SELECT COUNT(*), COUNT(*) - COUNT(blob), SUM(line) FROM copied WHERE name = 'row-' || line`).Scan(&count, &nulls, &sum); err != nil {
			return err
		}
		if count != n || nulls != n/2 || sum != n*(n+1)/2 {
			t.Errorf("%d rows, %d nulls, sum of lines %d", count, nulls, sum)
		}
		var tuples float64
		if err := tx.QueryRow(ctx, `SELECT reltuples FROM pg_class WHERE oid = 'pg_temp.copied'::regclass`).Scan(&tuples); err != nil {
			return err
		}
		if tuples != n {
			t.Errorf("the table was not analysed after the load: reltuples %v", tuples)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if copies != 3 {
		t.Errorf("%d loads for %d rows, want 3 COPYs", copies, n)
	}
}

// Two ledgers in two schemas of one database keep apart, and their write
// locks do not wait for each other.
func TestSchemasAreSeparateLedgers(t *testing.T) {
	ctx := context.Background()
	a := open(t, ledgertest.NewDatabase(t))
	b := open(t, ledgertest.NewDatabase(t))
	hold := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- a.InTx(ctx, func(tx *ledger.Tx) error {
			if _, err := tx.InsertCard(ctx, &ledger.Card{ICCID: "8988211000000467285", IMSI: "001010000000001", State: ledger.CardActive}); err != nil {
				return err
			}
			<-hold
			return nil
		})
	}()
	time.Sleep(100 * time.Millisecond)
	start := time.Now()
	err := b.InTx(ctx, func(tx *ledger.Tx) error {
		_, err := tx.InsertCard(ctx, &ledger.Card{ICCID: "8988211000000467293", IMSI: "001010000000002", State: ledger.CardActive})
		return err
	})
	if err != nil || time.Since(start) > 2*time.Second {
		t.Fatalf("second ledger's write: %v after %s", err, time.Since(start))
	}
	close(hold)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if _, err := b.Card(ctx, "8988211000000467285"); !errors.Is(err, ledger.ErrNotFound) {
		t.Fatalf("a card of ledger a is in ledger b: %v", err)
	}
}

func open(t *testing.T, u string) *ledger.DB {
	t.Helper()
	db, err := postgres.Open(context.Background(), u, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// fill writes a little of everything into a ledger: cards with sealed
// secrets, events, messages, sequences; the last event is then deleted so
// that the id sequence is ahead of the highest id.
func fill(t *testing.T, db *ledger.DB) {
	t.Helper()
	ctx := context.Background()
	err := db.InTx(ctx, func(tx *ledger.Tx) error {
		for i := range 20 {
			iccid := fmt.Sprintf("89882110000004%05d", i)
			if _, err := tx.InsertCard(ctx, &ledger.Card{ICCID: iccid, IMSI: fmt.Sprintf("0010100000%05d", i), State: ledger.CardActive, SecretsFP: "fp"}); err != nil {
				return err
			}
			if err := tx.PutSecret(ctx, iccid, ledger.Secret{Name: "ki", MasterKey: "mk-1", Blob: []byte{0, byte(i), 0xff, 'x'}}); err != nil {
				return err
			}
			if err := tx.PutKeySet(ctx, iccid, ledger.KeySet{KVN: 1, Counter: int64(i) << 33}); err != nil {
				return err
			}
			if _, err := tx.ReserveCounter(ctx, iccid, 0, 1, 1); err != nil {
				return err
			}
			if err := tx.PutAuthorisation(ctx, ledger.Authorisation{ICCID: iccid, Recipient: "MNOB", FromDate: "2026-12-08", Owner: "M2M", FileID: int64(i)}); err != nil {
				return err
			}
			if err := tx.Transition(ctx, iccid, []string{ledger.CardActive}, ledger.CardMoving, "test", "ref 'quoted'", nil); err != nil {
				return err
			}
		}
		if _, err := tx.NextSeq(ctx, "MNOA", "MNOB", "imsi-result"); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `DELETE FROM card_events WHERE id = (SELECT MAX(id) FROM card_events)`)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

func nextEventID(t *testing.T, db *ledger.DB) int64 {
	t.Helper()
	ctx := context.Background()
	var id int64
	err := db.InTx(ctx, func(tx *ledger.Tx) error {
		return tx.QueryRow(ctx, `INSERT INTO card_events (iccid, at, from_state, to_state) VALUES ('x', 'now', 'a', 'b') RETURNING id`).Scan(&id)
	})
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// A ledger moves from SQLite to PostgreSQL and back: every row, ids and
// sequences kept, secrets as the same sealed bytes, digests equal; a
// non-empty target and a target at another schema version are refused.
func TestCopyBetweenEngines(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	src, err := sqlite.Open(ctx, filepath.Join(dir, "src.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	fill(t, src)
	pg := open(t, ledgertest.NewDatabase(t))
	rep, err := ledger.Copy(ctx, src, pg)
	if err != nil {
		t.Fatal(err)
	}
	byTable := map[string]ledger.TableCopy{}
	for _, tc := range rep.Tables {
		byTable[tc.Table] = tc
	}
	if byTable["cards"].Rows != 20 || byTable["card_secrets"].Rows != 20 || byTable["key_sets"].Rows != 20 || byTable["authorisations"].Rows != 20 ||
		byTable["card_events"].Rows != 39 || byTable["ota_messages"].Rows != 0 {
		t.Errorf("copied %+v", rep.Tables)
	}
	var blob []byte
	if err := pg.QueryRow(ctx, `SELECT blob FROM card_secrets WHERE iccid = ?`, "8988211000000400007").Scan(&blob); err != nil || string(blob) != "\x00\x07\xffx" {
		t.Errorf("sealed blob %x (%v)", blob, err)
	}
	var counter int64
	if err := pg.QueryRow(ctx, `SELECT counter FROM key_sets WHERE iccid = ?`, "8988211000000400019").Scan(&counter); err != nil || counter != 19<<33+1 {
		t.Errorf("64-bit counter %d (%v)", counter, err)
	}
	// The sequence goes on after the deleted event, as the source's would.
	if a, b := nextEventID(t, src), nextEventID(t, pg); a != 41 || b != 41 {
		t.Errorf("next event ids: source %d, copy %d; want 41", a, b)
	}
	if _, err := ledger.Copy(ctx, src, pg); err == nil || !strings.Contains(err.Error(), "not empty") {
		t.Errorf("copy into a non-empty ledger: %v", err)
	}
	// And back into a new SQLite file.
	back, err := sqlite.Open(ctx, filepath.Join(dir, "back.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer back.Close()
	rep2, err := ledger.Copy(ctx, pg, back)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range rep2.Tables {
		if tc.Table != "card_events" && tc.Digest != byTable[tc.Table].Digest {
			t.Errorf("%s: digest after the round trip %s, before %s", tc.Table, tc.Digest, byTable[tc.Table].Digest)
		}
	}
	if id := nextEventID(t, back); id != 42 {
		t.Errorf("next event id after the round trip %d, want 42", id)
	}
	old, err := postgres.OpenAt(ctx, ledgertest.NewDatabase(t), nil, ledger.SchemaVersion()-1)
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()
	if _, err := ledger.Copy(ctx, src, old); err == nil || !strings.Contains(err.Error(), "schema version") {
		t.Errorf("copy into an older schema: %v", err)
	}
}

// The password comes by reference or from PGPASSFILE, never from the URL,
// and a refused login never prints it.
func TestPasswordAndPassfile(t *testing.T) {
	const pw = "pw-9f2c-not-in-errors"
	srv := ledgertest.StartServerWithPassword(t, pw)
	ctx := context.Background()
	t.Setenv("PGPASSFILE", filepath.Join(t.TempDir(), "none"))
	if _, err := postgres.Open(ctx, srv.URL(), nil); err == nil {
		t.Fatal("a login without a password was accepted")
	}
	_, err := postgres.Open(ctx, srv.URL(), []byte("wrong-"+pw))
	if err == nil || postgres.Unreachable(err) {
		t.Fatalf("a wrong password: %v", err)
	}
	if strings.Contains(err.Error(), pw) {
		t.Errorf("the password is in the error: %v", err)
	}
	db, err := postgres.Open(ctx, srv.URL(), []byte(pw))
	if err != nil {
		t.Fatalf("the password given: %v", err)
	}
	db.Close()
	passfile := filepath.Join(t.TempDir(), "pgpass")
	if err := os.WriteFile(passfile, []byte(fmt.Sprintf("127.0.0.1:%d:*:postgres:%s\n", srv.Port(), pw)), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PGPASSFILE", passfile)
	db, err = postgres.Open(ctx, srv.URL(), nil)
	if err != nil {
		t.Fatalf("the password from PGPASSFILE: %v", err)
	}
	db.Close()
}

// TestLocaleOrderedDatabaseRefused: a database sorting text by a locale
// (here ICU's en-US, which the server has whatever the machine's locales)
// is refused at open, naming the remedy; byte order is accepted.
func TestLocaleOrderedDatabaseRefused(t *testing.T) {
	server := ledgertest.ServerURL(t)
	ctx := context.Background()
	admin, err := postgres.OpenSQL(ctx, server, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	name := fmt.Sprintf("resub_test_icu_%d", time.Now().UnixNano())
	if _, err := admin.Exec(`CREATE DATABASE ` + name + ` TEMPLATE template0 LOCALE_PROVIDER icu ICU_LOCALE 'en-US' LOCALE 'C.UTF-8'`); err != nil {
		t.Skipf("this server cannot make an ICU database: %v", err)
	}
	t.Cleanup(func() { admin.Exec(`DROP DATABASE IF EXISTS ` + name) })
	u, err := url.Parse(server)
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/" + name
	_, err = postgres.Open(ctx, u.String(), nil)
	if err == nil || !strings.Contains(err.Error(), "byte order") || !strings.Contains(err.Error(), name) {
		t.Fatalf("ICU-ordered database opened: %v", err)
	}
	// The test server's own database is C.UTF-8: accepted.
	db, err := postgres.Open(ctx, ledgertest.NewDatabase(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
}
