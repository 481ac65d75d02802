package processor

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"testing"

	"resub/formats/native"
	"resub/processor/ledger"
)

// A prepared output's spill holds nothing readable: it is gone from the
// scratch folder as soon as it is made, its bytes never show a record's
// value (each chunk sealed), it gives back every record in order, and
// closing it leaves nothing. (That any change of a spill is refused is
// crypto/spill's to test.)
func TestPreparedSpillSealed(t *testing.T) {
	dir := t.TempDir()
	o := &ledger.Output{ID: 7, BatchID: 3, Type: native.Provisioning.Name}
	pr, err := newPrepared(dir, o, native.Provisioning)
	if err != nil {
		t.Fatal(err)
	}
	defer pr.close()
	if entries, err := os.ReadDir(dir); err != nil || len(entries) != 0 {
		t.Fatalf("scratch folder holds %d entries while the spill is open (%v)", len(entries), err)
	}
	const n = 3000 // several chunks
	secret := func(i int) string { return fmt.Sprintf("tk-aucb:%048x", i*7919+1) }
	rec := native.NewRecord(native.Provisioning)
	for i := range n {
		rec.Set(native.FieldICCID, fmt.Sprintf("89999010000%08d", i))
		rec.Set(native.FieldKi, secret(i))
		rec.Set(native.FieldOPc, "")
		rec.Set(native.FieldAlgorithm, "milenage")
		if err := pr.write(rec); err != nil {
			t.Fatal(err)
		}
	}
	if err := pr.finish(); err != nil {
		t.Fatal(err)
	}
	sealed, err := pr.sp.Sealed()
	if err != nil {
		t.Fatal(err)
	}
	disk, err := io.ReadAll(sealed)
	if err != nil {
		t.Fatal(err)
	}
	if len(disk) < n*40 {
		t.Fatalf("spill of %d bytes for %d records", len(disk), n)
	}
	for _, v := range []string{"tk-aucb:", "milenage", "8999901"} {
		if bytes.Contains(disk, []byte(v)) {
			t.Fatalf("the spill shows %q in clear", v)
		}
	}
	i := 0
	err = pr.replay(context.Background(), func(r *native.Record) error {
		if r.Get(native.FieldKi) != secret(i) || r.Get(native.FieldICCID) != fmt.Sprintf("89999010000%08d", i) {
			return fmt.Errorf("record %d read back as %s", i, r.Get(native.FieldICCID))
		}
		i++
		return nil
	})
	if err != nil || i != n {
		t.Fatalf("replay: %d records, %v", i, err)
	}
	pr.close()
	if entries, err := os.ReadDir(dir); err != nil || len(entries) != 0 {
		t.Fatalf("scratch folder holds %d entries after close (%v)", len(entries), err)
	}
}
