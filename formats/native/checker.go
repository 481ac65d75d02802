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

// DuplicateKeys returns the ICCID and IMSI of a record the reader returned
// (with or without problems) that a reader finding duplicates itself would
// have remembered for the later records — the values of the unique
// columns that pass their checks —, "" for either when none. It is for a
// caller that reads with CallerFindsDuplicates.
func (r *Reader) DuplicateKeys(rec *Record) (iccid, imsi string) {
	if rec == nil || r.opts.NoValidate {
		return "", ""
	}
	for fi := range r.schema.Fields {
		f := &r.schema.Fields[fi]
		v := rec.vals[fi]
		if !f.Unique || r.absent[fi] || v == "" || checkValue(f, v, &r.opts) != nil {
			continue
		}
		switch f.Kind {
		case ICCID:
			if _, ok := ident.ICCIDKey(v); ok {
				iccid = v
			}
		case IMSI:
			if _, ok := ident.IMSIKey(v); ok {
				imsi = v
			}
		}
	}
	return iccid, imsi
}

// WithRepeats returns a record's problems (err, as Read returned them with
// the record; nil when none) as a reader finding duplicates itself would
// have returned them had an earlier record the record's ICCID (iccid)
// and/or IMSI (imsi): the record is checked again with those values known.
func (r *Reader) WithRepeats(rec *Record, err error, iccid, imsi bool) error {
	if rec == nil || (!iccid && !imsi) || r.opts.NoValidate {
		return err
	}
	fields := r.schema.Fields
	dups := make([]*ident.KeySet, len(fields))
	for fi := range fields {
		f := &fields[fi]
		if !f.Unique || r.absent[fi] || !(f.Kind == ICCID && iccid || f.Kind == IMSI && imsi) {
			continue
		}
		var key uint64
		var ok bool
		if f.Kind == ICCID {
			key, ok = ident.ICCIDKey(rec.vals[fi])
		} else {
			key, ok = ident.IMSIKey(rec.vals[fi])
		}
		if ok {
			dups[fi] = ident.NewKeySet()
			dups[fi].Add(key)
		}
	}
	// The problems Read gave before the record's own (the line's) stay.
	own := (&RecordChecker{schema: r.schema, opts: &r.opts, transportKey: r.header.TransportKey, absent: r.absent, dups: make([]*ident.KeySet, len(fields))}).Check(rec)
	ps := Problems(err)
	out := make(ErrorList, 0, len(ps)+2)
	if n := len(ps) - len(own); n > 0 {
		out = append(out, ps[:n]...)
	}
	out = append(out, (&RecordChecker{schema: r.schema, opts: &r.opts, transportKey: r.header.TransportKey, absent: r.absent, dups: dups}).Check(rec)...)
	if len(out) == 0 {
		return nil
	}
	return out
}
