// Package mapping reads and writes a partner's CSV variant of any native
// type, under a per-partner column mapping, and converts it to and from
// the native layout. See README.md.
package mapping

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"resub/formats/ident"
	"resub/formats/native"
)

// Mapping is one partner's layout of one type (configuration key
// partners.<id>.columns.<type>).
type Mapping struct {
	// Columns in file order: the partner's name and the native field it
	// holds ("" = a column resub ignores on read and leaves empty on write).
	Columns []Column `yaml:"columns"`
	// Delimiter is one character (default ","); "\t" or "tab" for tabs.
	Delimiter string `yaml:"delimiter,omitempty"`
	// Quote: "minimal" (default: RFC 4180, quotes only where needed),
	// "all" (every value quoted on write), "none" (no quoting: a value
	// holding the delimiter or a quote is an error).
	Quote string `yaml:"quote,omitempty"`
	// Header: the first line names the columns. On read, the names are
	// matched case-insensitively and may come in any order.
	Header bool `yaml:"header,omitempty"`
	// HexCase of hex values written: "lower" (default) or "upper". Read
	// accepts either.
	HexCase string `yaml:"hex-case,omitempty"`
	// CRLF line ends on write (read accepts LF and CRLF).
	CRLF bool `yaml:"crlf,omitempty"`
	// The partner's ICCID conventions (see ident.ICCIDOptions).
	ICCIDNoCheckDigit bool `yaml:"iccid-no-check-digit,omitempty"`
	ICCIDFPadding     bool `yaml:"iccid-f-padding,omitempty"`
	// MSISDNPlus: the partner writes MSISDNs with a leading '+'.
	MSISDNPlus bool `yaml:"msisdn-plus,omitempty"`
	// MaxLineLength bounds a line on read (default 16 KiB).
	MaxLineLength int `yaml:"max-line-length,omitempty"`
}

// Column maps one partner column.
type Column struct {
	Name  string `yaml:"name"`
	Field string `yaml:"field,omitempty"`
	// Format of a date or time column in the partner's file, written with
	// the tokens YYYY MM DD hh mm ss (e.g. "YYYYMMDD", "DD.MM.YYYY",
	// "YYYY-MM-DD hh:mm:ss", taken as UTC). Empty: the native form.
	Format string `yaml:"format,omitempty"`
}

// ErrMapping reports a mapping that cannot work for the type.
var ErrMapping = errors.New("column mapping")

// compiled is a Mapping checked against a schema.
type compiled struct {
	m      *Mapping
	s      *native.Schema
	delim  rune
	fields []int    // by column: schema field index, -1 ignored
	layout []string // by column: Go time layout, "" native
	quote  string
	upper  bool
	iccid  ident.ICCIDOptions
}

func (m *Mapping) compile(s *native.Schema) (*compiled, error) {
	c := &compiled{m: m, s: s, delim: ',', quote: "minimal", iccid: ident.ICCIDOptions{NoCheckDigit: m.ICCIDNoCheckDigit, FPadding: m.ICCIDFPadding}}
	switch d := m.Delimiter; {
	case d == "":
	case d == "tab" || d == `\t` || d == "\t":
		c.delim = '\t'
	case utf8.RuneCountInString(d) == 1 && d != "\"" && d != "\n" && d != "\r":
		c.delim, _ = utf8.DecodeRuneInString(d)
	default:
		return nil, fmt.Errorf("%w: delimiter %q must be one character", ErrMapping, d)
	}
	switch strings.ToLower(m.Quote) {
	case "", "minimal":
	case "all", "none":
		c.quote = strings.ToLower(m.Quote)
	default:
		return nil, fmt.Errorf("%w: quote %q is not minimal, all or none", ErrMapping, m.Quote)
	}
	switch strings.ToLower(m.HexCase) {
	case "", "lower":
	case "upper":
		c.upper = true
	default:
		return nil, fmt.Errorf("%w: hex-case %q is not lower or upper", ErrMapping, m.HexCase)
	}
	if len(m.Columns) == 0 {
		return nil, fmt.Errorf("%w: no columns", ErrMapping)
	}
	seen := map[int]bool{}
	names := map[string]bool{}
	for _, col := range m.Columns {
		fi := -1
		if col.Field != "" {
			fi = s.Index(col.Field)
			if fi < 0 {
				return nil, fmt.Errorf("%w: %s has no field %q", ErrMapping, s.Name, col.Field)
			}
			if seen[fi] {
				return nil, fmt.Errorf("%w: field %q mapped twice", ErrMapping, col.Field)
			}
			seen[fi] = true
		}
		if m.Header {
			n := strings.ToLower(col.Name)
			if n == "" || names[n] {
				return nil, fmt.Errorf("%w: column names must be given and distinct with header: true", ErrMapping)
			}
			names[n] = true
		}
		c.fields = append(c.fields, fi)
		layout := ""
		if col.Format != "" {
			if fi < 0 || (s.Fields[fi].Kind != native.Date && s.Fields[fi].Kind != native.Time) {
				return nil, fmt.Errorf("%w: format given for %q, which is not a date or time", ErrMapping, col.Name)
			}
			layout = goLayout(col.Format)
		}
		c.layout = append(c.layout, layout)
	}
	for fi, f := range s.Fields {
		if f.Required && !seen[fi] {
			return nil, fmt.Errorf("%w: required field %q of %s is not mapped", ErrMapping, f.Name, s.Name)
		}
	}
	return c, nil
}

// Check reports whether the mapping can carry type s.
func (m *Mapping) Check(s *native.Schema) error {
	_, err := m.compile(s)
	return err
}

func goLayout(f string) string {
	return strings.NewReplacer("YYYY", "2006", "MM", "01", "DD", "02", "hh", "15", "mm", "04", "ss", "05").Replace(f)
}
