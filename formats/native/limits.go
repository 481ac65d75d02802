package native

import "fmt"

// Limits bound the work a file can make: a file with more records, or
// more records with problems, than allowed is refused as a whole (the
// reader stops with a problem that is not Recoverable) instead of being
// answered record by record. Zero is no bound. The readers of every input
// type (native, the SIM vendor's file, a partner's CSV) take the same
// Limits.
type Limits struct {
	// MaxRecords bounds the records of a file; a header that announces
	// more (quantity) is refused before any record is read.
	MaxRecords int64
	// MaxRecordErrors bounds the records with problems, and the lines
	// that are problems without being records (empty lines, a header
	// line among the records).
	MaxRecordErrors int64
}

// The limits' refusals.
var (
	ErrTooManyRecords = &refusal{"too many records"}
	ErrTooManyErrors  = &refusal{"too many records with problems"}
)

// Tally counts a file's records and problems against its Limits. The
// zero value (with Limits and File set) is ready.
type Tally struct {
	Limits Limits
	File   string // names the file in problems

	records, bad int64
}

// Quantity checks the number of records a header announces (at line).
func (t *Tally) Quantity(line int, field string, q int64) *ParseError {
	if m := t.Limits.MaxRecords; m > 0 && q > m {
		return &ParseError{File: t.File, Line: line, Field: field, Err: fmt.Errorf("%w: the header announces %d, at most %d are taken", ErrTooManyRecords, q, m)}
	}
	return nil
}

// Record counts the record at line (bad: it has problems). Past a limit
// it returns the problem that ends the file.
func (t *Tally) Record(line int, bad bool) *ParseError {
	t.records++
	if m := t.Limits.MaxRecords; m > 0 && t.records > m {
		return &ParseError{File: t.File, Err: fmt.Errorf("%w: more than %d (line %d is record %d)", ErrTooManyRecords, m, line, t.records)}
	}
	if bad {
		return t.Problem(line)
	}
	return nil
}

// Problem counts a line with problems (a bad record, or a line that is
// no record). Past the limit it returns the problem that ends the file.
func (t *Tally) Problem(line int) *ParseError {
	t.bad++
	if m := t.Limits.MaxRecordErrors; m > 0 && t.bad > m {
		return TooManyErrors(t.File, m, line)
	}
	return nil
}

// TooManyErrors is the problem of a file with more than max records with
// problems, the one past max at line: for a caller that finds some of the
// problems itself (CallerFindsDuplicates) and bounds them as the reader
// would have.
func TooManyErrors(file string, max int64, line int) *ParseError {
	return &ParseError{File: file, Err: fmt.Errorf("%w: more than %d (the last at line %d)", ErrTooManyErrors, max, line)}
}
