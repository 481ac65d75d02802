package mapping

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"resub/formats/ident"
	"resub/formats/native"
)

// Reader reads a partner's CSV file as native records of one type.
// Values come out in native form (ICCID canonical, MSISDN without '+',
// dates YYYY-MM-DD); their full validation is the native reader's, on
// the converted file. Errors are *native.ParseError (recoverable, see
// native.Recoverable) except I/O and syntax errors the CSV cannot recover
// from.
type Reader struct {
	file   string
	c      *compiled
	cr     *csv.Reader
	lr     *lineLimiter
	perm   []int // file column -> mapping column
	header bool
	fatal  error
	line   int
	tally  native.Tally
}

// SetLimits bounds the records and the records with problems the reader
// takes, as native.Options.Limits does for native files: past them Read
// ends the file with native.ErrTooManyRecords or native.ErrTooManyErrors.
// Blank lines are not records (encoding/csv skips them).
func (r *Reader) SetLimits(l native.Limits) { r.tally.Limits = l }

// stop ends the file with a problem past a limit.
func (r *Reader) stop(p *native.ParseError) (*native.Record, error) {
	r.fatal = native.Fatal(p)
	return nil, r.fatal
}

// NewReader returns a reader of r, a partner file of type s. file names
// it in errors. The mapping is checked against s on the first Read.
func NewReader(r io.Reader, m *Mapping, s *native.Schema, file string) *Reader {
	max := m.MaxLineLength
	if max <= 0 {
		max = 16 << 10
	}
	lr := &lineLimiter{r: r, max: max}
	rd := &Reader{file: file, lr: lr, tally: native.Tally{File: file}}
	c, err := m.compile(s)
	if err != nil {
		rd.fatal = err
		return rd
	}
	rd.c = c
	rd.cr = csv.NewReader(lr)
	rd.cr.Comma = c.delim
	rd.cr.FieldsPerRecord = -1
	rd.cr.ReuseRecord = true
	if c.quote == "none" {
		rd.cr.LazyQuotes = true
	}
	rd.header = m.Header
	return rd
}

func (r *Reader) perr(line int, field string, err error) *native.ParseError {
	return &native.ParseError{File: r.file, Line: line, Field: field, Err: err}
}

// Read returns the next record in native form.
func (r *Reader) Read() (*native.Record, error) {
	if r.fatal != nil {
		return nil, r.fatal
	}
	rec, err := r.cr.Read()
	if err != nil {
		var pe *csv.ParseError
		switch {
		case err == io.EOF:
			r.fatal = io.EOF
		case errors.Is(err, errLineTooLong):
			line, _ := r.cr.FieldPos(0)
			r.fatal = native.Fatal(r.perr(max(line, 1), "", fmt.Errorf("%w: a record of more than %d bytes", native.ErrLineTooLong, r.lr.max)))
		case errors.As(err, &pe) && errors.Is(err, csv.ErrFieldCount):
			r.lr.reset()
			if p := r.tally.Record(pe.StartLine, true); p != nil {
				return r.stop(p)
			}
			return nil, r.perr(pe.StartLine, "", native.ErrFieldCount)
		case errors.As(err, &pe):
			r.fatal = native.Fatal(r.perr(pe.StartLine, "", fmt.Errorf("%w: %v", native.ErrInvalid, pe.Err)))
		default:
			r.fatal = err
		}
		return nil, r.fatal
	}
	r.lr.reset()
	line, _ := r.cr.FieldPos(0)
	if r.header {
		r.header = false
		if err := r.mapHeader(rec, line); err != nil {
			return nil, err
		}
		return r.Read()
	}
	if r.perm == nil {
		r.perm = make([]int, len(r.c.fields))
		for i := range r.perm {
			r.perm[i] = i
		}
	}
	if len(rec) != len(r.perm) {
		if p := r.tally.Record(line, true); p != nil {
			return r.stop(p)
		}
		return nil, r.perr(line, "", fmt.Errorf("%w: %d, want %d", native.ErrFieldCount, len(rec), len(r.perm)))
	}
	out := native.NewRecord(r.c.s)
	out.Line = line
	var errs native.ErrorList
	for i, mc := range r.perm {
		if mc < 0 {
			continue
		}
		fi := r.c.fields[mc]
		if fi < 0 {
			continue
		}
		f := r.c.s.Fields[fi]
		v, err := r.c.toNative(&f, r.c.layout[mc], strings.TrimSpace(rec[i]))
		if err != nil {
			errs = append(errs, r.perr(line, r.c.m.Columns[mc].Name, err))
		}
		out.Set(f.Name, v)
	}
	if p := r.tally.Record(line, len(errs) > 0); p != nil {
		return r.stop(p)
	}
	if len(errs) > 0 {
		return out, errs
	}
	return out, nil
}

func (r *Reader) mapHeader(names []string, line int) error {
	var errs native.ErrorList
	r.perm = make([]int, len(names))
	found := make([]bool, len(r.c.m.Columns))
	for i, n := range names {
		r.perm[i] = -1
		for mc, col := range r.c.m.Columns {
			if strings.EqualFold(strings.TrimSpace(n), col.Name) {
				r.perm[i] = mc
				found[mc] = true
			}
		}
		if r.perm[i] < 0 {
			errs = append(errs, r.perr(line, n, native.ErrUnknownColumn))
		}
	}
	for mc, ok := range found {
		if !ok && r.c.fields[mc] >= 0 {
			f := r.c.s.Fields[r.c.fields[mc]]
			err := r.perr(line, r.c.m.Columns[mc].Name, native.ErrMissingColumn)
			if f.Required {
				r.fatal = native.Fatal(append(errs, err)...)
				return r.fatal
			}
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return errs
	}
	return nil
}

// toNative converts one partner value to the native form of field f.
func (c *compiled) toNative(f *native.Field, layout, v string) (string, error) {
	if v == "" {
		return "", nil
	}
	switch f.Kind {
	case native.ICCID:
		return ident.NormalizeICCID(v, c.iccid)
	case native.MSISDN:
		return strings.TrimPrefix(v, "+"), nil
	case native.Date, native.Time:
		if layout == "" {
			return v, nil
		}
		t, err := time.ParseInLocation(layout, v, time.UTC)
		if err != nil {
			return v, fmt.Errorf("%w: %q is not %s", native.ErrInvalid, v, layout)
		}
		if f.Kind == native.Date {
			return t.Format(time.DateOnly), nil
		}
		return t.Format(time.RFC3339), nil
	}
	return v, nil
}

var errLineTooLong = errors.New("line too long")

// lineLimiter bounds the bytes the CSV reader may pull for one record
// (quoted values may span lines), so that no input can grow its buffers
// without bound. The CSV reader reads ahead by at most its 4 KiB buffer,
// so the bound holds within that.
type lineLimiter struct {
	r    io.Reader
	max  int
	cur  int
	line int
}

func (l *lineLimiter) Read(p []byte) (int, error) {
	n, err := l.r.Read(p)
	for i := 0; i < n; i++ {
		if p[i] == '\n' {
			l.line++
		}
	}
	if l.cur += n; l.cur > l.max+4096 {
		return n, errLineTooLong
	}
	return n, err
}

// reset starts the count of a new record.
func (l *lineLimiter) reset() { l.cur = 0 }
