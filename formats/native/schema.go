package native

import (
	"slices"
	"sort"
)

// Kind is the syntax and meaning of a field's value.
type Kind int

// The field kinds. Hex is accepted in either case and written lower case.
const (
	Text     Kind = iota // printable UTF-8 without '|'
	ID                   // token: letters, digits and . _ : - (at most 64)
	ICCID                // E.118, strict: 89, 18-20 digits, Luhn
	IMSI                 // 14-15 digits; InRanges: in the sender's PLMNs and ranges
	MSISDN               // E.164 digits without '+'
	Hex                  // hex of MinLen..MaxLen bytes (0 = any)
	Segments             // ordered hex segments separated by one space, each 1..MaxLen bytes
	Wrapped              // transport-wrapped secret "keyID:hex"
	Enum                 // one of Values
	Date                 // YYYY-MM-DD
	Time                 // RFC 3339 with a zone, e.g. 2026-11-28T06:00:00Z
	Int                  // decimal or 0x-hex integer in Min..Max
	Bool                 // 0 or 1
)

var kindNames = [...]string{"text", "id", "iccid", "imsi", "msisdn", "hex", "segments", "wrapped", "enum", "date", "time", "int", "bool"}

func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "kind?"
}

// Field describes one column of a type.
type Field struct {
	Name     string
	Kind     Kind
	Required bool     // a value in every record (and so a column in every file)
	For      []string // record kinds (values of the schema's KindField) that require it
	Values   []string // Enum: the allowed values (lower case; input compared case-insensitively)
	Min, Max int64    // Int: the range
	MinLen   int      // Hex: shortest length in bytes (0 = 1)
	MaxLen   int      // Hex, Segments: longest length in bytes (0 = no limit but the line's)
	Unique   bool     // ICCID, IMSI: no two records of a file share the value
	InRanges bool     // IMSI: must be in the sender's PLMNs and ranges (when the caller gives them)
	Doc      string
}

// HeaderField is a header key specific to one type.
type HeaderField struct {
	Name     string
	Required bool
	Doc      string
}

// Schema is one file type: its name (the format header and the type names
// of the CLI), version, columns and cross-field rules.
type Schema struct {
	Name      string
	Version   int
	From, To  string // who sends it to whom, for documentation
	Doc       string
	Fields    []Field
	KindField string        // the field that selects a record kind ("" = one kind)
	Header    []HeaderField // type-specific header keys
	// Check adds cross-field problems of a record whose fields each
	// passed their own checks.
	Check func(r *Record, add func(field string, err error))

	index map[string]int
}

func (s *Schema) init() *Schema {
	s.index = make(map[string]int, len(s.Fields))
	for i, f := range s.Fields {
		s.index[f.Name] = i
	}
	return s
}

// Index returns the position of a field in Fields (and in a Record), or -1.
func (s *Schema) Index(name string) int {
	if i, ok := s.index[name]; ok {
		return i
	}
	return -1
}

// Field returns the field of that name.
func (s *Schema) Field(name string) (Field, bool) {
	i := s.Index(name)
	if i < 0 {
		return Field{}, false
	}
	return s.Fields[i], true
}

// HasSecrets reports whether the type carries transport-wrapped fields.
func (s *Schema) HasSecrets() bool {
	for _, f := range s.Fields {
		if f.Kind == Wrapped {
			return true
		}
	}
	return false
}

// RequiredColumns returns the names of the columns every file must have.
func (s *Schema) RequiredColumns() []string {
	var out []string
	for _, f := range s.Fields {
		if f.Required {
			out = append(out, f.Name)
		}
	}
	return out
}

func (s *Schema) headerField(name string) (HeaderField, bool) {
	for _, h := range s.Header {
		if h.Name == name {
			return h, true
		}
	}
	return HeaderField{}, false
}

var schemas = map[string]*Schema{}

func register(s *Schema) *Schema {
	s.init()
	schemas[s.Name] = s
	return s
}

// Lookup returns the schema of a type name.
func Lookup(typeName string) (*Schema, bool) {
	s, ok := schemas[typeName]
	return s, ok
}

// TypeNames returns the type names in the order of DESIGN.md.
func TypeNames() []string {
	out := make([]string, 0, len(schemas))
	for n := range schemas {
		out = append(out, n)
	}
	order := []string{"inventory", "msisdn-map", "switch-request", "switch-authorisation", "imsi-list", "imsi-result", "ota-batch", "ota-report", "handover", "handover-ack", "key-release", "key-request", "key-response", "provisioning"}
	sort.Slice(out, func(i, j int) bool {
		a, b := slices.Index(order, out[i]), slices.Index(order, out[j])
		if a != b {
			return a < b
		}
		return out[i] < out[j]
	})
	return out
}
