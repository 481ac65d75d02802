package native

import (
	"errors"
	"io"
	"strings"
	"testing"
)

// readLimited reads a file to its end: the records returned, every problem,
// and the error that ended it (nil at io.EOF).
func readLimited(text string, o Options) (records int, probs []*ParseError, end error) {
	rd := NewReader(strings.NewReader(text), o)
	h, err := rd.Header()
	if h == nil {
		return 0, Problems(err), err
	}
	probs = Problems(err)
	for {
		rec, err := rd.Read()
		if err == io.EOF {
			return records, probs, nil
		}
		if rec != nil {
			records++
		}
		if err != nil && !Recoverable(err) {
			return records, append(probs, Problems(err)...), err
		}
		probs = append(probs, Problems(err)...)
	}
}

// TestEmptyLinesAreNotRecords: a file of a million empty lines among its
// records reads as its records and one problem for all the empty lines.
func TestEmptyLinesAreNotRecords(t *testing.T) {
	il := sample(t, "imsi-list")
	head, recs, _ := strings.Cut(il, "cutover-date\n")
	head += "cutover-date\n"
	text := head + strings.Repeat("\n", 1_000_000) + recs + "\n\n"
	n, probs, end := readLimited(text, Options{Type: "imsi-list"})
	if end != nil || n != 3 {
		t.Fatalf("%d records, end %v", n, end)
	}
	if len(probs) != 1 || !errors.Is(probs[0], ErrEmptyLine) || probs[0].Line != 11 {
		t.Fatalf("problems %v, want one empty-line problem at line 11", probs)
	}
	if !strings.Contains(probs[0].Error(), "1000002 in the records") {
		t.Errorf("problem %q does not count the empty lines", probs[0])
	}
	// Bounded like records with problems.
	n, probs, end = readLimited(text, Options{Type: "imsi-list", Limits: Limits{MaxRecordErrors: 1000}})
	if end == nil || Recoverable(end) || !errors.Is(end, ErrTooManyErrors) || n != 0 {
		t.Fatalf("with a limit of 1000: %d records, end %v", n, end)
	}
	var re interface{ Refused() bool }
	if !errors.As(end, &re) || !re.Refused() {
		t.Errorf("%v does not refuse the file", end)
	}
}

// TestMaxRecords: a header announcing more records than allowed is
// refused before any record; a file with more records than allowed (its
// header lying) ends at the first record past the limit.
func TestMaxRecords(t *testing.T) {
	il := sample(t, "imsi-list")
	n, _, end := readLimited(il, Options{Type: "imsi-list", Limits: Limits{MaxRecords: 3}})
	if end != nil || n != 3 {
		t.Fatalf("at the limit: %d records, %v", n, end)
	}
	rd := NewReader(strings.NewReader(il), Options{Type: "imsi-list", Limits: Limits{MaxRecords: 2}})
	h, err := rd.Header()
	if h != nil || !errors.Is(err, ErrTooManyRecords) || Recoverable(err) {
		t.Fatalf("quantity 3 over a limit of 2: header %v, %v", h, err)
	}
	if ps := Problems(err); len(ps) == 0 || ps[len(ps)-1].Field != HQuantity || ps[len(ps)-1].Line != 9 {
		t.Errorf("problem not at the quantity line: %v", ps)
	}
	lying := strings.Replace(il, "#quantity: 3", "#quantity: 1", 1)
	n, _, end = readLimited(lying, Options{Type: "imsi-list", Limits: Limits{MaxRecords: 2}})
	if !errors.Is(end, ErrTooManyRecords) || Recoverable(end) || n != 2 {
		t.Fatalf("three records over a limit of 2: %d records, %v", n, end)
	}
	if !strings.Contains(end.Error(), "more than 2 (line 13 is record 3)") {
		t.Errorf("message %q", end)
	}
}

// TestMaxRecordErrors: records with problems are answered one by one up
// to the limit; the one past it ends the file.
func TestMaxRecordErrors(t *testing.T) {
	il := sample(t, "imsi-list")
	bad := strings.ReplaceAll(il, "|2026-12-07", "|2026-13-07")
	n, probs, end := readLimited(bad, Options{Type: "imsi-list", Limits: Limits{MaxRecordErrors: 3}})
	if end != nil || n != 3 || len(probs) != 3 {
		t.Fatalf("three bad records at a limit of 3: %d records, %d problems, %v", n, len(probs), end)
	}
	n, probs, end = readLimited(bad, Options{Type: "imsi-list", Limits: Limits{MaxRecordErrors: 2}})
	if !errors.Is(end, ErrTooManyErrors) || n != 2 || len(probs) != 3 {
		t.Fatalf("three bad records at a limit of 2: %d records, %d problems, %v", n, len(probs), end)
	}
}
