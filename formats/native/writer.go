package native

import (
	"bufio"
	"fmt"
	"io"
	"strings"
)

// Writer writes a native file. Call WriteHeader once, then Write for each
// record, then Flush. Errors stick: once one occurs every later call
// returns it. Values are written as given except hex, which is written
// lower case; a value holding '|' or a line break is refused. Flush
// reports ErrQuantity when the records written differ from the header's
// quantity.
type Writer struct {
	w      *bufio.Writer
	schema *Schema
	cols   []int
	quant  int
	count  int
	err    error
	cases  []caseMode // by column
	buf    []byte
}

// NewWriter returns a writer of type s to w.
func NewWriter(w io.Writer, s *Schema) *Writer {
	return &Writer{w: bufio.NewWriterSize(w, 64<<10), schema: s, quant: -1}
}

// WriteHeader writes the header and the column line. columns lists the
// fields to write, in order; nil writes every field of the type. It sets
// h.Format to the writer's type (and h.Version when zero), so that NameOf
// names the file.
func (w *Writer) WriteHeader(h *Header, columns []string) error {
	if w.err != nil {
		return w.err
	}
	if columns == nil {
		for _, f := range w.schema.Fields {
			columns = append(columns, f.Name)
		}
	}
	w.cols = make([]int, len(columns))
	w.cases = make([]caseMode, len(columns))
	for i, c := range columns {
		fi := w.schema.Index(c)
		if fi < 0 {
			w.err = fmt.Errorf("%w: %s has no field %q", ErrUnknownColumn, w.schema.Name, c)
			return w.err
		}
		w.cols[i] = fi
		switch k := w.schema.Fields[fi].Kind; {
		case k == Wrapped:
			w.cases[i] = lowerAfterColon
		case k == Enum && c == FieldReason:
			w.cases[i] = upper
		case k == Hex || k == Segments || k == Enum:
			w.cases[i] = lower
		}
	}
	h.Format = w.schema.Name
	if h.Version == 0 {
		h.Version = w.schema.Version
	}
	if err := h.write(w.w, w.schema); err != nil {
		w.err = err
		return err
	}
	w.w.WriteString(strings.Join(columns, "|"))
	w.w.WriteByte('\n')
	w.quant = h.Quantity
	return nil
}

// Write writes one record of the writer's type.
func (w *Writer) Write(r *Record) error {
	if w.err != nil {
		return w.err
	}
	if w.cols == nil {
		w.err = fmt.Errorf("native: Write before WriteHeader")
		return w.err
	}
	if r.schema != w.schema {
		w.err = fmt.Errorf("native: record of type %s written to a %s file", r.schema.Name, w.schema.Name)
		return w.err
	}
	b := w.buf[:0]
	for i, fi := range w.cols {
		if i > 0 {
			b = append(b, '|')
		}
		v := r.vals[fi]
		if strings.ContainsAny(v, "|\n\r") {
			w.err = fmt.Errorf("%w: %s of record %d holds '|' or a line break", ErrInvalid, w.schema.Fields[fi].Name, w.count+1)
			return w.err
		}
		b = w.cases[i].append(b, v)
	}
	b = append(b, '\n')
	w.buf = b
	if _, err := w.w.Write(b); err != nil {
		w.err = err
		return err
	}
	w.count++
	return nil
}

// Flush writes buffered data and checks the quantity.
func (w *Writer) Flush() error {
	if w.err != nil {
		return w.err
	}
	if err := w.w.Flush(); err != nil {
		w.err = err
		return err
	}
	if w.quant >= 0 && w.count != w.quant {
		w.err = fmt.Errorf("%w: header says %d, %d written", ErrQuantity, w.quant, w.count)
	}
	return w.err
}

// Error returns the sticky error, if any.
func (w *Writer) Error() error { return w.err }

// caseMode is how the writer normalises a column's letters.
type caseMode uint8

const (
	asIs            caseMode = iota
	lower                    // hex and enums
	lowerAfterColon          // wrapped secrets: the key ID keeps its case
	upper                    // reason codes
)

func (m caseMode) append(b []byte, v string) []byte {
	if m == asIs {
		return append(b, v...)
	}
	on := m != lowerAfterColon
	for j := 0; j < len(v); j++ {
		c := v[j]
		switch {
		case !on:
			on = c == ':'
		case m == upper && c >= 'a' && c <= 'z':
			c -= 'a' - 'A'
		case m != upper && c >= 'A' && c <= 'Z':
			c += 'a' - 'A'
		}
		b = append(b, c)
	}
	return b
}
