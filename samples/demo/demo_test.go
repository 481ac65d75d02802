package demo

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestDemoEndsWhereItShould(t *testing.T) {
	if testing.Short() {
		t.Skip("the whole exchange")
	}
	var out bytes.Buffer
	dir := t.TempDir()
	res, err := Run(context.Background(), Options{Dir: dir, Out: &out})
	if err != nil {
		t.Fatalf("demo: %v\n%s", err, out.String())
	}
	if !res.OK {
		t.Fatalf("demo ended wrong: %v\n%s", res.Problems, out.String())
	}
	want := map[string]map[string]int{
		"MNOA": {"active": 2, "unknown": 1, "manual": 1, "released": 10},
		"MNOB": {"released": 6, "rejected": 6, "requested": 2},
		"MNOC": {"active": 10},
	}
	for party, states := range want {
		for st, n := range states {
			if got := res.States[party][st]; got != n {
				t.Errorf("%s: %d cards %s, want %d", party, got, st, n)
			}
		}
	}
	// Quarantined inputs: A's unpinned authorisation was reprocessed (so
	// done), the tampered list and the leaking vendor file stay.
	if res.Files["MNOA"]["in quarantined"] != 2 {
		t.Errorf("MNOA quarantined files: %v", res.Files["MNOA"])
	}
	table := out.String()
	for _, s := range []string{"every card ended where it should", "LIST_EXHAUSTED", "security error", "reprocess file:", "PoR(s) did not verify",
		// MNOA over SMPP, MNOB over files.
		"MNOA ota-submit", "PoRs confirmed", "SMSC of MNOB"} {
		if !strings.Contains(table, s) {
			t.Errorf("output lacks %q", s)
		}
	}
	// Nothing is left in clear that should not be: every file between
	// operators on the SFTP server is OpenPGP.
	err = filepath.Walk(filepath.Join(dir, "exchange"), func(path string, fi os.FileInfo, err error) error {
		if err != nil || fi.IsDir() {
			return err
		}
		if !strings.HasSuffix(path, ".pgp") {
			t.Errorf("file in clear on the SFTP server: %s", path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
