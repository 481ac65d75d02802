package main

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"resub/processor/ledger"
	"resub/processor/ledger/ledgertest"
	"resub/processor/ledger/sqlite"
)

func seedLedger(t *testing.T, path string) {
	t.Helper()
	ctx := context.Background()
	db, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	err = db.InTx(ctx, func(tx *ledger.Tx) error {
		if _, err := tx.InsertCard(ctx, &ledger.Card{ICCID: "8988211000000467285", IMSI: "001010000000001", State: ledger.CardActive}); err != nil {
			return err
		}
		return tx.PutSecret(ctx, "8988211000000467285", ledger.Secret{Name: "ki", MasterKey: "mk-1", Blob: []byte("sealed")})
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestLedgerCopyCommand(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "src.db")
	seedLedger(t, src)
	dst := "sqlite:" + filepath.Join(dir, "dst.db")
	code, o, e := runCLI(t, "ledger", "copy", "--from", "sqlite:"+src, "--to", dst)
	if code != exitOK || !strings.Contains(o, "card_secrets") || !strings.Contains(o, "verified") {
		t.Fatalf("copy: exit %d\n%s\n%s", code, o, e)
	}
	// Again into the same target: not empty.
	if code, _, e := runCLI(t, "ledger", "copy", "--from", "sqlite:"+src, "--to", dst); code != exitUsage || !strings.Contains(e, "not empty") {
		t.Errorf("copy into a non-empty ledger: exit %d %s", code, e)
	}
	if code, _, e := runCLI(t, "ledger", "copy", "--from", "sqlite:"+filepath.Join(dir, "none.db"), "--to", "sqlite:"+filepath.Join(dir, "x.db")); code != exitUsage || !strings.Contains(e, "no ledger") {
		t.Errorf("copy of a missing ledger: exit %d %s", code, e)
	}
	for _, args := range [][]string{
		{"--from", "sqlite:" + src, "--to", "postgres://resub:hunter2@db.example/resub"},
		{"--from", "sqlite:" + src, "--to", "postgres://resub@db.example/resub", "--to-password", "hunter2"},
	} {
		code, o, e := runCLI(t, append([]string{"ledger", "copy"}, args...)...)
		if code != exitUsage || strings.Contains(o+e, "hunter2") {
			t.Errorf("%v: exit %d, output %s %s", args, code, o, e)
		}
	}
	t.Run("to-postgres", func(t *testing.T) {
		url := ledgertest.NewDatabase(t)
		code, o, e := runCLI(t, "ledger", "copy", "--from", "sqlite:"+src, "--to", url)
		if code != exitOK || !strings.Contains(o, "verified") {
			t.Fatalf("copy to PostgreSQL: exit %d\n%s\n%s", code, o, e)
		}
	})
}
