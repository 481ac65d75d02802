package sqlite_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"resub/processor/ledger"
	"resub/processor/ledger/ledgertest"
)

// The ledger's tests run on the engine the test run names
// (RESUB_TEST_LEDGER): SQLite files, or databases of a PostgreSQL server
// standing for the same paths.
func open(t *testing.T, path string, opts ...ledger.Option) *ledger.DB {
	t.Helper()
	return ledgertest.Open(t, path, opts...)
}

// sqliteOnly skips a test of the embedded engine's own mechanics.
func sqliteOnly(t *testing.T) {
	if ledgertest.Postgres() {
		t.Skip("a fact of the SQLite file, not of the ledger")
	}
}

func TestMigrationsFromEmptyAndEachVersion(t *testing.T) {
	ctx := context.Background()
	for from := 0; from <= ledger.SchemaVersion(); from++ {
		t.Run(fmt.Sprintf("from-v%d", from), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "ledger.db")
			old, err := ledgertest.OpenSpecAt(ctx, ledgertest.Spec(t, path), from)
			if err != nil {
				t.Fatal(err)
			}
			if v, _ := old.Version(ctx); v != from {
				t.Fatalf("at version %d, want %d", v, from)
			}
			if from >= 1 {
				// Data written by the old version survives the upgrade.
				err := old.InTx(ctx, func(tx *ledger.Tx) error {
					_, err := tx.InsertCard(ctx, &ledger.Card{ICCID: "8988211000000467285", IMSI: "001010000000001", State: ledger.CardActive})
					return err
				})
				if err != nil {
					t.Fatal(err)
				}
			}
			old.Close()
			db := open(t, path)
			if v, _ := db.Version(ctx); v != ledger.SchemaVersion() {
				t.Fatalf("upgraded to %d, want %d", v, ledger.SchemaVersion())
			}
			if from >= 1 {
				if _, err := db.Card(ctx, "8988211000000467285"); err != nil {
					t.Fatalf("card lost in upgrade: %v", err)
				}
			}
			var n int
			if err := db.SQL().QueryRow(`SELECT COUNT(*) FROM mf_requests`).Scan(&n); err != nil {
				t.Fatalf("table of the last migrations missing: %v", err)
			}
		})
	}
}

func TestRefusesNewerSchema(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "ledger.db")
	db := open(t, path)
	if _, err := db.SQL().Exec(`INSERT INTO schema_migrations (version, applied_at) VALUES (999, 'x')`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	if _, err := ledgertest.OpenSpec(ctx, ledgertest.Spec(t, path)); err == nil || !strings.Contains(err.Error(), "newer") {
		t.Fatalf("want refusal of a newer schema, got %v", err)
	}
}

func TestWALAndFileMode(t *testing.T) {
	sqliteOnly(t)
	path := filepath.Join(t.TempDir(), "ledger.db")
	db := open(t, path)
	var mode string
	if err := db.SQL().QueryRow(`PRAGMA journal_mode`).Scan(&mode); err != nil || mode != "wal" {
		t.Fatalf("journal_mode = %q, %v", mode, err)
	}
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("ledger file mode %v, %v", st.Mode(), err)
	}
}

func TestLease(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 11, 28, 22, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	path := filepath.Join(t.TempDir(), "ledger.db")
	a := open(t, path, ledger.WithClock(clock))
	b := open(t, path, ledger.WithClock(clock))
	if err := a.AcquireLease(ctx, "imsi-list", "host-a", time.Minute); err != nil {
		t.Fatal(err)
	}
	err := b.AcquireLease(ctx, "imsi-list", "host-b", time.Minute)
	var held *ledger.LeaseHeldError
	if !errors.As(err, &held) || held.Owner != "host-a" || !held.Temporary() {
		t.Fatalf("second holder: want LeaseHeldError by host-a, got %v", err)
	}
	if err := a.AcquireLease(ctx, "imsi-list", "host-a", time.Minute); err != nil {
		t.Fatalf("renewal by the holder refused: %v", err)
	}
	if err := b.AcquireLease(ctx, "other-job", "host-b", time.Minute); err != nil {
		t.Fatalf("another job's lease refused: %v", err)
	}
	now = now.Add(61 * time.Second)
	if err := b.AcquireLease(ctx, "imsi-list", "host-b", time.Minute); err != nil {
		t.Fatalf("expired lease not taken over: %v", err)
	}
	if err := a.AcquireLease(ctx, "imsi-list", "host-a", time.Minute); err == nil {
		t.Fatal("old holder took the lease back while the new one holds it")
	}
	if err := b.ReleaseLease(ctx, "imsi-list", "host-b"); err != nil {
		t.Fatal(err)
	}
	if err := a.AcquireLease(ctx, "imsi-list", "host-a", time.Minute); err != nil {
		t.Fatalf("released lease not free: %v", err)
	}
}

// The helper process: run by the tests below as a child.
func TestHelperProcess(t *testing.T) {
	mode := os.Getenv("RESUB_LEDGER_CHILD")
	if mode == "" {
		t.Skip("helper process only")
	}
	ctx := context.Background()
	path := os.Getenv("RESUB_LEDGER_PATH")
	db, err := ledgertest.OpenSpec(ctx, path)
	if err != nil {
		fmt.Println("ERR", err)
		os.Exit(2)
	}
	switch mode {
	case "counters":
		// Reserve counters of one shared key set as fast as possible.
		n, _ := strconv.Atoi(os.Getenv("RESUB_LEDGER_N"))
		for i := 0; i < n; i++ {
			err := db.InTx(ctx, func(tx *ledger.Tx) error {
				c, err := tx.ReserveCounter(ctx, "8988211000000467285", 0, 1, 1)
				if err != nil {
					return err
				}
				_, err = tx.InsertMessage(ctx, &ledger.Message{ICCID: "8988211000000467285", Kind: "update", KVN: 1, Counter: c, TAR: "b00011", State: ledger.MsgReserved})
				return err
			})
			if err != nil {
				fmt.Println("ERR", err)
				os.Exit(2)
			}
		}
		fmt.Println("DONE")
	case "mixed":
		// Allocate IMSIs of one range, take sequence numbers and
		// reserve counters, each in its own transaction.
		n, _ := strconv.Atoi(os.Getenv("RESUB_LEDGER_N"))
		me := os.Getenv("RESUB_LEDGER_ME")
		for i := 0; i < n; i++ {
			err := db.InTx(ctx, func(tx *ledger.Tx) error {
				if _, err := tx.AllocateIMSI(ctx, "b-main", "999990000000001", "999990000999999", fmt.Sprintf("89%s%06d", me, i), "req"); err != nil {
					return err
				}
				seq, err := tx.NextSeq(ctx, "MNOA", "MNOB", "imsi-result")
				if err != nil {
					return err
				}
				_, err = tx.Exec(ctx, `INSERT INTO audit (at, actor, action, subject, detail) VALUES (?, ?, 'seq', ?, '')`, "x", me, strconv.FormatInt(seq, 10))
				return err
			})
			if err != nil {
				fmt.Println("ERR", err)
				os.Exit(2)
			}
		}
		fmt.Println("DONE")
	case "hang":
		// Write inside a transaction, say so, and wait to be killed.
		_ = db.InTx(ctx, func(tx *ledger.Tx) error {
			for i := 0; i < 500; i++ {
				if _, err := tx.InsertCard(ctx, &ledger.Card{ICCID: fmt.Sprintf("89000000000%08d", i), IMSI: "001010000000001", State: ledger.CardActive}); err != nil {
					return err
				}
			}
			fmt.Println("IN-TX")
			time.Sleep(time.Minute)
			return nil
		})
	}
	os.Exit(0)
}

func child(t *testing.T, mode, path string, extra ...string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$")
	cmd.Env = append(os.Environ(), "RESUB_LEDGER_CHILD="+mode, "RESUB_LEDGER_PATH="+ledgertest.Spec(t, path))
	cmd.Env = append(cmd.Env, extra...)
	return cmd
}

func TestConcurrentWritersFromTwoProcesses(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "ledger.db")
	db := open(t, path)
	err := db.InTx(ctx, func(tx *ledger.Tx) error {
		if _, err := tx.InsertCard(ctx, &ledger.Card{ICCID: "8988211000000467285", IMSI: "001010000000001", State: ledger.CardActive}); err != nil {
			return err
		}
		return tx.PutKeySet(ctx, "8988211000000467285", ledger.KeySet{KVN: 1, Counter: 0})
	})
	if err != nil {
		t.Fatal(err)
	}
	const perChild = 150
	var wg sync.WaitGroup
	outs := make([]string, 2)
	for i := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out, err := child(t, "counters", path, "RESUB_LEDGER_N="+strconv.Itoa(perChild)).CombinedOutput()
			outs[i] = string(out)
			if err != nil {
				outs[i] += " exit: " + err.Error()
			}
		}()
	}
	wg.Wait()
	for i, o := range outs {
		if !strings.Contains(o, "DONE") {
			t.Fatalf("child %d: %s", i, o)
		}
	}
	// Every reservation got its own value: 1..300, no repeats, no gaps.
	var n, distinct, max int64
	if err := db.SQL().QueryRow(`SELECT COUNT(*), COUNT(DISTINCT counter), MAX(counter) FROM ota_messages`).Scan(&n, &distinct, &max); err != nil {
		t.Fatal(err)
	}
	if n != 2*perChild || distinct != n || max != n {
		t.Fatalf("messages %d, distinct counters %d, max %d; want %d each", n, distinct, max, 2*perChild)
	}
}

// IMSI allocations and sequence numbers stay unique when two processes
// take them at once (on PostgreSQL: two connections of two processes).
func TestConcurrentAllocationsFromTwoProcesses(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ledger.db")
	db := open(t, path)
	const perChild = 100
	var wg sync.WaitGroup
	outs := make([]string, 2)
	for i := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out, err := child(t, "mixed", path, "RESUB_LEDGER_N="+strconv.Itoa(perChild), fmt.Sprintf("RESUB_LEDGER_ME=%d", i)).CombinedOutput()
			outs[i] = string(out)
			if err != nil {
				outs[i] += " exit: " + err.Error()
			}
		}()
	}
	wg.Wait()
	for i, o := range outs {
		if !strings.Contains(o, "DONE") {
			t.Fatalf("child %d: %s", i, o)
		}
	}
	var n, distinct int
	if err := db.SQL().QueryRow(`SELECT COUNT(*), COUNT(DISTINCT iccid) FROM imsi_allocations`).Scan(&n, &distinct); err != nil {
		t.Fatal(err)
	}
	if n != 2*perChild || distinct != n {
		t.Fatalf("%d allocations for %d cards, want %d each", n, distinct, 2*perChild)
	}
	var maxIMSI string
	if err := db.SQL().QueryRow(`SELECT MAX(imsi) FROM imsi_allocations`).Scan(&maxIMSI); err != nil || maxIMSI != fmt.Sprintf("999990000%06d", 2*perChild) {
		t.Fatalf("highest IMSI %s (%v): numbers skipped or repeated", maxIMSI, err)
	}
	var seqs, distinctSeqs, maxSeq int
	if err := db.SQL().QueryRow(`SELECT COUNT(*), COUNT(DISTINCT subject), MAX(CAST(subject AS INTEGER)) FROM audit WHERE action = 'seq'`).Scan(&seqs, &distinctSeqs, &maxSeq); err != nil {
		t.Fatal(err)
	}
	if seqs != 2*perChild || distinctSeqs != seqs || maxSeq != seqs {
		t.Fatalf("sequence numbers: %d taken, %d distinct, highest %d", seqs, distinctSeqs, maxSeq)
	}
}

// A transaction under a lease commits only while the lease is its
// holder's: a holder paused past its expiry, whose job another instance
// took over, is refused at commit and leaves nothing behind.
func TestLeaseFencing(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 11, 28, 22, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	path := filepath.Join(t.TempDir(), "ledger.db")
	a := open(t, path, ledger.WithClock(clock))
	b := open(t, path, ledger.WithClock(clock))
	if err := a.AcquireLease(ctx, "imsi-list", "host-a", time.Minute); err != nil {
		t.Fatal(err)
	}
	fenced := ledger.WithFence(ctx, "imsi-list", "host-a")
	insert := func(db *ledger.DB, ctx context.Context, iccid string) error {
		return db.InTx(ctx, func(tx *ledger.Tx) error {
			_, err := tx.InsertCard(ctx, &ledger.Card{ICCID: iccid, IMSI: "001010000000001", State: ledger.CardActive})
			return err
		})
	}
	if err := insert(a, fenced, "8988211000000467285"); err != nil {
		t.Fatalf("holder's commit refused: %v", err)
	}
	// Renewal keeps the lease past its first expiry.
	mu.Lock()
	now = now.Add(50 * time.Second)
	mu.Unlock()
	if err := a.RenewLease(ctx, "imsi-list", "host-a", time.Minute); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	now = now.Add(50 * time.Second)
	mu.Unlock()
	if err := a.CheckFence(fenced); err != nil {
		t.Fatalf("renewed lease reported lost: %v", err)
	}
	if err := b.AcquireLease(ctx, "imsi-list", "host-b", time.Minute); err == nil {
		t.Fatal("a renewed lease was taken over")
	}
	// Paused past the expiry: until another instance takes the job over
	// it is still the holder's.
	mu.Lock()
	now = now.Add(61 * time.Second)
	mu.Unlock()
	if err := a.CheckFence(fenced); err != nil {
		t.Fatalf("an expired lease nobody took is reported lost: %v", err)
	}
	if err := b.AcquireLease(ctx, "imsi-list", "host-b", time.Minute); err != nil {
		t.Fatalf("expired lease not taken over: %v", err)
	}
	var fe *ledger.FencedError
	if err := insert(a, fenced, "8988211000000467293"); !errors.As(err, &fe) || !fe.Temporary() {
		t.Fatalf("old holder's commit: want FencedError, got %v", err)
	}
	if _, err := a.Card(ctx, "8988211000000467293"); !errors.Is(err, ledger.ErrNotFound) {
		t.Fatalf("the refused transaction left its card: %v", err)
	}
	if err := a.RenewLease(ctx, "imsi-list", "host-a", time.Minute); !errors.As(err, &fe) {
		t.Fatalf("old holder renewed a lease it lost: %v", err)
	}
	if err := a.CheckFence(fenced); !errors.As(err, &fe) {
		t.Fatalf("old holder's fence check: %v", err)
	}
	// The new holder commits; the old holder's release takes nothing.
	if err := insert(b, ledger.WithFence(ctx, "imsi-list", "host-b"), "8988211000000467301"); err != nil {
		t.Fatalf("new holder's commit refused: %v", err)
	}
	if err := a.ReleaseLease(ctx, "imsi-list", "host-a"); err != nil {
		t.Fatal(err)
	}
	if err := b.CheckFence(ledger.WithFence(ctx, "imsi-list", "host-b")); err != nil {
		t.Fatalf("the old holder's release freed the new holder's lease: %v", err)
	}
}

func TestKilledTransactionLeavesLedgerConsistent(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "ledger.db")
	db := open(t, path)
	cmd := child(t, "hang", path)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		if strings.Contains(sc.Text(), "IN-TX") {
			break
		}
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	db.Close()
	db = open(t, path)
	var n int
	if err := db.SQL().QueryRow(`SELECT COUNT(*) FROM cards`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Fatalf("%d cards of a killed transaction are visible", n)
	}
	if !ledgertest.Postgres() {
		var check string
		if err := db.SQL().QueryRow(`PRAGMA integrity_check`).Scan(&check); err != nil || check != "ok" {
			t.Fatalf("integrity_check = %q, %v", check, err)
		}
	}
	// The ledger is writable again.
	err = db.InTx(ctx, func(tx *ledger.Tx) error {
		_, err := tx.InsertCard(ctx, &ledger.Card{ICCID: "8988211000000467285", IMSI: "001010000000001", State: ledger.CardActive})
		return err
	})
	if err != nil {
		t.Fatalf("ledger not writable after the crash: %v", err)
	}
}
