package mapping

import (
	"bufio"
	"fmt"
	"io"
	"strings"
	"time"

	"resub/formats/native"
)

// Writer writes native records in a partner's layout. Errors stick.
type Writer struct {
	w   *bufio.Writer
	c   *compiled
	err error
	eol string
}

// NewWriter returns a writer of type s to w under m.
func NewWriter(w io.Writer, m *Mapping, s *native.Schema) *Writer {
	c, err := m.compile(s)
	eol := "\n"
	if m.CRLF {
		eol = "\r\n"
	}
	return &Writer{w: bufio.NewWriter(w), c: c, err: err, eol: eol}
}

// WriteHeader writes the column names when the mapping has a header line
// (and nothing otherwise).
func (w *Writer) WriteHeader() error {
	if w.err != nil || !w.c.m.Header {
		return w.err
	}
	vals := make([]string, len(w.c.m.Columns))
	for i, col := range w.c.m.Columns {
		vals[i] = col.Name
	}
	return w.line(vals)
}

// Write writes one record.
func (w *Writer) Write(r *native.Record) error {
	if w.err != nil {
		return w.err
	}
	vals := make([]string, len(w.c.fields))
	for i, fi := range w.c.fields {
		if fi < 0 {
			continue
		}
		f := w.c.s.Fields[fi]
		v, err := w.c.fromNative(&f, w.c.layout[i], r.Get(f.Name))
		if err != nil {
			w.err = fmt.Errorf("record %d: %s: %w", r.Line, f.Name, err)
			return w.err
		}
		vals[i] = neutralise(v)
	}
	return w.line(vals)
}

// neutralise keeps a spreadsheet from reading a value as a formula: a
// value that starts with '=', '+', '-', '@', a tab or a carriage return
// (echoed from a partner's rejected record, say) gets a leading
// apostrophe, which spreadsheets take as "text" and do not show. Plain
// numbers ("+4917012345678", "-5") stay as they are.
func neutralise(v string) string {
	if v == "" || !strings.ContainsRune("=+-@\t\r", rune(v[0])) || plainNumber(v) {
		return v
	}
	return "'" + v
}

// plainNumber reports whether v is an optionally signed decimal number.
func plainNumber(v string) bool {
	if v[0] == '+' || v[0] == '-' {
		v = v[1:]
	}
	whole, frac, _ := strings.Cut(v, ".")
	digits := func(s string) bool {
		for _, c := range s {
			if c < '0' || c > '9' {
				return false
			}
		}
		return true
	}
	return whole != "" && digits(whole) && digits(frac)
}

func (w *Writer) line(vals []string) error {
	for i, v := range vals {
		if i > 0 {
			w.w.WriteRune(w.c.delim)
		}
		needs := strings.ContainsRune(v, w.c.delim) || strings.ContainsAny(v, "\"\r\n") || v != strings.TrimSpace(v)
		switch {
		case w.c.quote == "all" || needs && w.c.quote == "minimal":
			w.w.WriteByte('"')
			w.w.WriteString(strings.ReplaceAll(v, `"`, `""`))
			w.w.WriteByte('"')
		case needs:
			w.err = fmt.Errorf("%w: value %q needs quoting, but the partner's quote is none", ErrMapping, v)
			return w.err
		default:
			w.w.WriteString(v)
		}
	}
	_, err := w.w.WriteString(w.eol)
	if err != nil {
		w.err = err
	}
	return w.err
}

// Flush writes buffered data.
func (w *Writer) Flush() error {
	if w.err != nil {
		return w.err
	}
	w.err = w.w.Flush()
	return w.err
}

// fromNative converts a native value to the partner's form.
func (c *compiled) fromNative(f *native.Field, layout, v string) (string, error) {
	if v == "" {
		return "", nil
	}
	switch f.Kind {
	case native.ICCID:
		switch {
		case c.iccid.NoCheckDigit && len(v) == 20:
			return v[:19], nil
		case c.iccid.FPadding && len(v) == 19:
			return v + "F", nil
		}
	case native.MSISDN:
		if c.m.MSISDNPlus {
			return "+" + v, nil
		}
	case native.Hex, native.Segments:
		if c.upper {
			return strings.ToUpper(v), nil
		}
		return strings.ToLower(v), nil
	case native.Wrapped:
		id, h, _ := strings.Cut(v, ":")
		if c.upper {
			return id + ":" + strings.ToUpper(h), nil
		}
		return id + ":" + strings.ToLower(h), nil
	case native.Date, native.Time:
		if layout == "" {
			return v, nil
		}
		in := time.DateOnly
		if f.Kind == native.Time {
			in = time.RFC3339
		}
		t, err := time.Parse(in, v)
		if err != nil {
			return "", fmt.Errorf("%w: %q", native.ErrInvalid, v)
		}
		return t.UTC().Format(layout), nil
	}
	return v, nil
}

// ToNative copies every record of src to dst (whose header the caller
// has written) and returns the count; record problems are collected and
// returned with the records converted.
func ToNative(dst *native.Writer, src *Reader) (int, error) {
	n := 0
	var errs native.ErrorList
	for {
		rec, err := src.Read()
		if err == io.EOF {
			break
		}
		if err != nil && !native.Recoverable(err) {
			return n, err
		}
		errs = append(errs, native.Problems(err)...)
		if rec == nil {
			continue
		}
		if err := dst.Write(rec); err != nil {
			return n, err
		}
		n++
	}
	if err := dst.Flush(); err != nil {
		return n, err
	}
	if len(errs) > 0 {
		return n, errs
	}
	return n, nil
}

// FromNative copies every record of src to dst in the partner's layout.
// It stops at the first record with a problem: a native file is
// converted only when valid.
func FromNative(dst *Writer, src *native.Reader) (int, error) {
	if h, err := src.Header(); h == nil || err != nil {
		return 0, err
	}
	if err := dst.WriteHeader(); err != nil {
		return 0, err
	}
	n := 0
	for {
		rec, err := src.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return n, err
		}
		if err := dst.Write(rec); err != nil {
			return n, err
		}
		n++
	}
	return n, dst.Flush()
}
