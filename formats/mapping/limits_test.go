package mapping

import (
	"errors"
	"io"
	"os"
	"strings"
	"testing"

	"resub/formats/native"
)

// TestLimits: the partner CSV reader ends a file at the first record past
// MaxRecords, and at the first record with problems past MaxRecordErrors;
// blank lines are no records.
func TestLimits(t *testing.T) {
	m := load(t, "../../samples/partner/imsi-list.mapping.yaml")
	b, err := os.ReadFile("../../samples/partner/MNOB_MNOA_imsi-list_20261130_000001.csv")
	if err != nil {
		t.Fatal(err)
	}
	sample := string(b)
	read := func(text string, l native.Limits) (n, probs int, end error) {
		rd := NewReader(strings.NewReader(text), m, native.IMSIList, "p.csv")
		rd.SetLimits(l)
		for {
			rec, err := rd.Read()
			if err == io.EOF {
				return n, probs, nil
			}
			if rec != nil {
				n++
			}
			if err != nil && !native.Recoverable(err) {
				return n, probs, err
			}
			if err != nil {
				probs++
			}
		}
	}
	if n, p, err := read(sample, native.Limits{MaxRecords: 3, MaxRecordErrors: 1}); n != 3 || p != 0 || err != nil {
		t.Fatalf("at the limits: %d records, %d problems, %v", n, p, err)
	}
	if n, _, err := read(sample, native.Limits{MaxRecords: 2}); n != 2 || !errors.Is(err, native.ErrTooManyRecords) {
		t.Fatalf("three records over a limit of 2: %d, %v", n, err)
	}
	bad := strings.ReplaceAll(sample, ";07.12.2026;", ";31.02.2026;")
	if n, p, err := read(bad, native.Limits{MaxRecordErrors: 2}); n != 2 || p != 2 || !errors.Is(err, native.ErrTooManyErrors) {
		t.Fatalf("three bad records over a limit of 2: %d records, %d problems, %v", n, p, err)
	}
	blank := strings.Replace(sample, "\r\n8999901000000000021F", "\r\n\r\n\n\n8999901000000000021F", 1)
	if n, p, err := read(blank, native.Limits{MaxRecords: 3, MaxRecordErrors: 1}); n != 3 || p != 0 || err != nil {
		t.Fatalf("blank lines: %d records, %d problems, %v", n, p, err)
	}
}
