package vendor

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"resub/formats/native"
)

// TestLimits: the vendor reader refuses a file whose Quantity is above
// MaxRecords before any card, ends one with more cards (its header lying)
// at the first past the limit, and one with more bad cards than
// MaxRecordErrors at the first past that; blank lines are no cards.
func TestLimits(t *testing.T) {
	sample := string(open(t, "../../samples/vendor-3a.out"))
	read := func(text string, l native.Limits) ([]*Card, []*native.ParseError, error) {
		_, cards, probs, err := readAll(t, strings.NewReader(text), Options{File: "v.out", Limits: l})
		return cards, probs, err
	}
	if cards, probs, err := read(sample, native.Limits{MaxRecords: 3, MaxRecordErrors: 1}); err != nil || len(cards) != 3 || len(probs) != 0 {
		t.Fatalf("at the limits: %d cards, %v, %v", len(cards), probs, err)
	}

	rd := NewReader(strings.NewReader(sample), Options{File: "v.out", Limits: native.Limits{MaxRecords: 2}})
	h, err := rd.Header()
	if h != nil || !errors.Is(err, native.ErrTooManyRecords) || native.Recoverable(err) {
		t.Fatalf("Quantity 3 over a limit of 2: %v, %v", h, err)
	}

	lying := strings.Replace(sample, "Quantity        : 3", "Quantity        : 1", 1)
	cards, _, err := read(lying, native.Limits{MaxRecords: 2})
	if !errors.Is(err, native.ErrTooManyRecords) || native.Recoverable(err) || len(cards) != 2 {
		t.Fatalf("three cards over a limit of 2: %d cards, %v", len(cards), err)
	}

	bad := strings.ReplaceAll(sample, " 0002 1234 ", " 0002 1234 12 ")
	bad = strings.ReplaceAll(bad, " 0004 1234 ", " 0004 1234 12 ")
	bad = strings.ReplaceAll(bad, " 0008 1234 ", " 0008 1234 12 ")
	cards, probs, err := read(bad, native.Limits{MaxRecordErrors: 2})
	if !errors.Is(err, native.ErrTooManyErrors) || len(probs) != 3 || len(cards) != 0 {
		t.Fatalf("three bad cards over a limit of 2: %d cards, %d problems, %v", len(cards), len(probs), err)
	}

	var blank bytes.Buffer
	blank.WriteString(sample)
	blank.WriteString(strings.Repeat("\n", 100_000))
	cards, probs, err = read(blank.String(), native.Limits{MaxRecords: 3, MaxRecordErrors: 1})
	if err != nil || len(cards) != 3 || len(probs) != 0 {
		t.Fatalf("blank lines: %d cards, %v, %v", len(cards), probs, err)
	}
}
