package sqlite_test

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"resub/processor/ledger"
)

// A handover batch read a page at a time: every record once, in line
// order, with its card; a card with several key sets of its index on one
// row per key set, never split between pages, gives the highest KVN and
// the lowest without an algorithm; the secrets of the card's index are
// read for the kind that carries them only; a record whose card the
// ledger lacks is read as not found.
func TestHandoverPagesOneRecordEachWholeAcrossPages(t *testing.T) {
	ctx := context.Background()
	db := open(t, filepath.Join(t.TempDir(), "l.db"))
	const batch = 7
	iccid := func(i int) string { return fmt.Sprintf("89%017d", i) }
	err := db.InTx(ctx, func(tx *ledger.Tx) error {
		for i := 1; i <= 9; i++ {
			kind := "3a"
			if i%3 == 0 {
				kind = "3b"
			}
			// Line 5 names a card the ledger does not hold.
			if err := tx.PutBatchRecord(ctx, ledger.BatchRecord{BatchID: batch, Line: i * 10, ICCID: iccid(i), Status: "accepted", Partner: "mno-b", Data: kind}); err != nil {
				return err
			}
			if i == 5 {
				continue
			}
			c := &ledger.Card{ICCID: iccid(i), IMSI: fmt.Sprintf("00101%010d", i), MSISDN: fmt.Sprint(i), State: "handed-over", Profile: "usim", KeyIndex: i % 2, ListLength: 4}
			if _, err := tx.InsertCard(ctx, c); err != nil {
				return err
			}
			// Key sets of the card's index, and one of the other index.
			kvns := []int{1}
			if i == 2 || i == 4 {
				kvns = []int{3, 1, 2} // several: never split, the highest in use
			}
			for _, kvn := range kvns {
				alg := "aes"
				if i == 4 && kvn < 3 {
					alg = ""
				}
				if err := tx.PutKeySet(ctx, iccid(i), ledger.KeySet{KeyIndex: i % 2, KVN: kvn, KIcAlg: alg, KIDAlg: alg, Counter: int64(100*i + kvn)}); err != nil {
					return err
				}
			}
			if err := tx.PutKeySet(ctx, iccid(i), ledger.KeySet{KeyIndex: 1 - i%2, KVN: 9, KIcAlg: "des3", Counter: 5}); err != nil {
				return err
			}
			for _, idx := range []int{0, 1} {
				for _, name := range []string{"ki", "opc", "kic"} {
					if err := tx.PutSecret(ctx, iccid(i), ledger.Secret{Name: name, KeyIndex: idx, MasterKey: "m1", Blob: []byte(fmt.Sprintf("%s-%d-%d", name, i, idx))}); err != nil {
						return err
					}
				}
			}
		}
		// Another batch's record comes in no page.
		return tx.PutBatchRecord(ctx, ledger.BatchRecord{BatchID: batch + 1, Line: 15, ICCID: iccid(1), Status: "accepted", Partner: "mno-b", Data: "3a"})
	})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	var sizes []int
	err = db.HandoverPages(ctx, batch, "mno-b", "3a", []string{"ki", "opc", "kik"}, 2, func(page []ledger.HandoverCard) error {
		sizes = append(sizes, len(page))
		for _, hc := range page {
			var secrets []string
			for _, s := range hc.Secrets {
				secrets = append(secrets, fmt.Sprintf("%s@%d=%s", s.Name, s.KeyIndex, s.Blob))
			}
			got = append(got, fmt.Sprintf("%d %s %s found=%v %s %s idx=%d len=%d ks=%v/%d/%s/%d noalg=%d [%s]", hc.Line, hc.ICCID, hc.Kind, hc.Found,
				hc.IMSI, hc.MSISDN, hc.KeyIndex, hc.ListLength, hc.HasKeySet, hc.KeySet.KVN, hc.KeySet.KIcAlg, hc.KeySet.Counter, hc.NoAlgKVN, strings.Join(secrets, " ")))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"10 8900000000000000001 3a found=true 001010000000001 1 idx=1 len=4 ks=true/1/aes/101 noalg=0 [ki@1=ki-1-1 opc@1=opc-1-1]",
		"20 8900000000000000002 3a found=true 001010000000002 2 idx=0 len=4 ks=true/3/aes/203 noalg=0 [ki@0=ki-2-0 opc@0=opc-2-0]",
		"30 8900000000000000003 3b found=true 001010000000003 3 idx=1 len=4 ks=true/1/aes/301 noalg=0 []",
		"40 8900000000000000004 3a found=true 001010000000004 4 idx=0 len=4 ks=true/3/aes/403 noalg=1 [ki@0=ki-4-0 opc@0=opc-4-0]",
		"50 8900000000000000005 3a found=false   idx=0 len=0 ks=false/0//0 noalg=0 []",
		"60 8900000000000000006 3b found=true 001010000000006 6 idx=0 len=4 ks=true/1/aes/601 noalg=0 []",
		"70 8900000000000000007 3a found=true 001010000000007 7 idx=1 len=4 ks=true/1/aes/701 noalg=0 [ki@1=ki-7-1 opc@1=opc-7-1]",
		"80 8900000000000000008 3a found=true 001010000000008 8 idx=0 len=4 ks=true/1/aes/801 noalg=0 [ki@0=ki-8-0 opc@0=opc-8-0]",
		"90 8900000000000000009 3b found=true 001010000000009 9 idx=1 len=4 ks=true/1/aes/901 noalg=0 []",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("read\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if fmt.Sprint(sizes) != "[2 2 2 2 1]" {
		t.Errorf("pages of %v records, want [2 2 2 2 1]", sizes)
	}
}
