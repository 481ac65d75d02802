package native

import (
	"encoding/hex"
	"errors"
	"strconv"
	"strings"
	"time"
)

// Record is one line of a file: the values of its schema's fields, "" for
// absent. Values are kept as read (hex in either case); the typed
// accessors decode them. A Record costs one string and one slice.
type Record struct {
	Line   int // 1-based line in the file it was read from (0 if built)
	schema *Schema
	vals   []string
}

// NewRecord returns an empty record of schema s.
func NewRecord(s *Schema) *Record {
	return &Record{schema: s, vals: make([]string, len(s.Fields))}
}

// Schema returns the record's type.
func (r *Record) Schema() *Schema { return r.schema }

// Get returns the value of a field ("" when absent or unknown).
func (r *Record) Get(field string) string {
	if i := r.schema.Index(field); i >= 0 {
		return r.vals[i]
	}
	return ""
}

// Value returns the value at a schema index (see Schema.Index): the cheap
// path for hot loops.
func (r *Record) Value(i int) string { return r.vals[i] }

// Set sets a field; it reports false for a field the type does not have.
func (r *Record) Set(field, value string) bool {
	i := r.schema.Index(field)
	if i < 0 {
		return false
	}
	r.vals[i] = value
	return true
}

// Kind returns the record kind (the value of the schema's KindField), or "".
func (r *Record) Kind() string {
	if r.schema.KindField == "" {
		return ""
	}
	return strings.ToLower(r.Get(r.schema.KindField))
}

// Clone returns a copy that does not share the value slice.
func (r *Record) Clone() *Record {
	c := *r
	c.vals = append([]string(nil), r.vals...)
	return &c
}

// ErrAbsent is returned by the typed accessors for an empty field.
var ErrAbsent = errors.New("field absent")

// Int returns an integer field (decimal, or hex written 0x…).
func (r *Record) Int(field string) (int64, error) {
	v := r.Get(field)
	if v == "" {
		return 0, ErrAbsent
	}
	return parseInt(v)
}

func parseInt(v string) (int64, error) {
	if len(v) > 2 && (v[:2] == "0x" || v[:2] == "0X") {
		return strconv.ParseInt(v[2:], 16, 64)
	}
	for i := 0; i < len(v); i++ { // no sign, no spaces, no underscores
		if v[i] < '0' || v[i] > '9' {
			return 0, strconv.ErrSyntax
		}
	}
	return strconv.ParseInt(v, 10, 64)
}

// Bool returns a 0/1 field.
func (r *Record) Bool(field string) (bool, error) {
	switch r.Get(field) {
	case "1":
		return true, nil
	case "0":
		return false, nil
	case "":
		return false, ErrAbsent
	}
	return false, ErrInvalid
}

// Date returns a YYYY-MM-DD field as UTC midnight.
func (r *Record) Date(field string) (time.Time, error) {
	v := r.Get(field)
	if v == "" {
		return time.Time{}, ErrAbsent
	}
	return time.Parse(time.DateOnly, v)
}

// Time returns an RFC 3339 field.
func (r *Record) Time(field string) (time.Time, error) {
	v := r.Get(field)
	if v == "" {
		return time.Time{}, ErrAbsent
	}
	return time.Parse(time.RFC3339, v)
}

// Hex decodes a hex field.
func (r *Record) Hex(field string) ([]byte, error) {
	v := r.Get(field)
	if v == "" {
		return nil, ErrAbsent
	}
	return hex.DecodeString(v)
}

// Segments decodes a Segments field: the TP-UD of each SMS in order.
func (r *Record) Segments(field string) ([][]byte, error) {
	v := r.Get(field)
	if v == "" {
		return nil, ErrAbsent
	}
	var out [][]byte
	for s := range strings.SplitSeq(v, " ") {
		b, err := hex.DecodeString(s)
		if err != nil || len(b) == 0 {
			return nil, ErrInvalid
		}
		out = append(out, b)
	}
	return out, nil
}

// WrappedSecret is a transport-wrapped secret: the ID of the wrapping key
// and the wrapped bytes. Unwrapping is package crypto's business.
type WrappedSecret struct {
	KeyID string
	Data  []byte
}

// String returns "keyID:hex", the field's form.
func (w WrappedSecret) String() string { return w.KeyID + ":" + hex.EncodeToString(w.Data) }

// ParseWrapped parses "keyID:hex".
func ParseWrapped(v string) (WrappedSecret, error) {
	id, h, ok := strings.Cut(v, ":")
	if !ok || !isID(id) || strings.Contains(id, ":") || h == "" || len(h)%2 != 0 {
		return WrappedSecret{}, ErrWrapped
	}
	b, err := hex.DecodeString(h)
	if err != nil {
		return WrappedSecret{}, ErrWrapped
	}
	return WrappedSecret{KeyID: id, Data: b}, nil
}

// Wrapped returns a secret field.
func (r *Record) Wrapped(field string) (WrappedSecret, error) {
	v := r.Get(field)
	if v == "" {
		return WrappedSecret{}, ErrAbsent
	}
	return ParseWrapped(v)
}

func isID(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-' || c == ':') {
			return false
		}
	}
	return true
}
