package native

import (
	"fmt"
	"slices"
	"strings"

	"resub/formats/ident"
)

// RecordChecker applies the record rules of the Reader — each field's
// kind and rule, the fields a record kind requires, the cross-field rules,
// duplicates, the transport key of wrapped fields — to records built
// elsewhere, such as a partner's layout read by package mapping. Problems
// carry the record's Line and the native field name.
type RecordChecker struct {
	schema       *Schema
	opts         *Options
	transportKey string
	absent       []bool
	dups         []*ident.KeySet
}

// NewRecordChecker returns a checker of records of type s. transportKey
// is the key ID wrapped fields must name ("" = wrapped fields are
// refused); columns lists the fields the source carries (a required field
// not among them is reported once by the caller, not in every record;
// nil = all).
func NewRecordChecker(s *Schema, transportKey string, columns []string, o Options) *RecordChecker {
	c := &RecordChecker{schema: s, opts: &o, transportKey: transportKey, absent: make([]bool, len(s.Fields)), dups: make([]*ident.KeySet, len(s.Fields))}
	for fi, f := range s.Fields {
		c.absent[fi] = columns != nil && !slices.Contains(columns, f.Name)
		if f.Unique && !c.absent[fi] && !o.CallerFindsDuplicates {
			c.dups[fi] = ident.NewKeySet()
		}
	}
	return c
}

// Check returns the record's problems (nil when none).
func (c *RecordChecker) Check(rec *Record) ErrorList {
	var errs ErrorList
	kind := rec.Kind()
	for fi := range c.schema.Fields {
		f := &c.schema.Fields[fi]
		v := rec.vals[fi]
		if v == "" {
			if (f.Required && !c.absent[fi]) || (kind != "" && slices.Contains(f.For, kind)) {
				c.add(&errs, rec.Line, f.Name, ErrRequired)
			}
			continue
		}
		if err := checkValue(f, v, c.opts); err != nil {
			c.add(&errs, rec.Line, f.Name, err)
			continue
		}
		switch {
		case f.Kind == Wrapped:
			id, _, _ := strings.Cut(v, ":")
			if c.transportKey == "" {
				c.add(&errs, rec.Line, f.Name, ErrNoTransportKey)
			} else if id != c.transportKey {
				c.add(&errs, rec.Line, f.Name, fmt.Errorf("%w: %s, header says %s", ErrKeyID, id, c.transportKey))
			}
		case c.dups[fi] != nil:
			var key uint64
			var ok bool
			if f.Kind == ICCID {
				key, ok = ident.ICCIDKey(v)
			} else {
				key, ok = ident.IMSIKey(v)
			}
			if ok && !c.dups[fi].Add(key) {
				c.add(&errs, rec.Line, f.Name, fmt.Errorf("%w: %s", ErrDuplicate, v))
			}
		}
	}
	if len(errs) == 0 && c.schema.Check != nil {
		c.schema.Check(rec, func(field string, err error) { c.add(&errs, rec.Line, field, err) })
	}
	return errs
}

func (c *RecordChecker) add(errs *ErrorList, line int, field string, err error) {
	*errs = append(*errs, &ParseError{File: c.opts.File, Line: line, Field: field, Err: err})
}
