package native

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"slices"
	"strings"
	"unicode/utf8"

	"resub/formats/ident"
)

// Reader reads a native file: header, column line, records. It holds one
// line at a time (bounded by MaxLineLength) plus, for duplicate
// detection, one uint64 per record and unique field.
//
// Header returns the header and its problems; Read returns one record at
// a time. Errors from either are *ParseError or ErrorList when the reader
// can go on (see Recoverable), anything else ends the file: io.EOF at the
// end, an I/O error, or a refusal (unknown format or version, transport
// key unknown or KCV wrong).
type Reader struct {
	// ReuseRecord lets Read return the same Record (and value slice) on
	// every call, as encoding/csv does: the caller copies what it keeps.
	ReuseRecord bool

	opts   Options
	br     *bufio.Reader
	max    int
	schema *Schema
	header *Header

	started    bool
	headerErr  error // non-fatal header problems, returned by the first Read
	fatal      error
	done       bool
	line       int
	colLine    int
	cols       []int  // column position -> schema field index (-1 unknown)
	absent     []bool // by field index: column not in the file
	count      int
	crlfSeen   bool
	dups       []*ident.KeySet
	checker    *RecordChecker
	rec        *Record
	lineErrs   ErrorList
	hdrWrapped bool
	tally      Tally
	blank      int // empty lines among the records
	firstBlank int
}

// NewReader returns a reader of r. opts.File names the file in errors.
func NewReader(r io.Reader, opts Options) *Reader {
	max := opts.MaxLineLength
	if max <= 0 {
		max = DefaultMaxLineLength
	}
	return &Reader{opts: opts, br: bufio.NewReaderSize(r, max+2), max: max, tally: Tally{Limits: opts.Limits, File: opts.File}}
}

// Schema returns the file's type once the header is read.
func (r *Reader) Schema() *Schema { return r.schema }

// Columns returns the column names of the file, in file order.
func (r *Reader) Columns() []string {
	out := make([]string, len(r.cols))
	for i, c := range r.cols {
		if c >= 0 {
			out[i] = r.schema.Fields[c].Name
		}
	}
	return out
}

// Count returns the number of record lines read so far.
func (r *Reader) Count() int { return r.count }

func (r *Reader) perr(line int, field string, err error) *ParseError {
	return &ParseError{File: r.opts.File, Line: line, Field: field, Err: err}
}

type lineKind int

const (
	lineOK lineKind = iota
	lineBad
	lineTruncated
	lineEOF
)

// readLine returns the next line without its end, or a classification.
// Line-level problems are appended to r.lineErrs.
func (r *Reader) readLine() ([]byte, lineKind, error) {
	raw, err := r.br.ReadSlice('\n')
	if err == bufio.ErrBufferFull {
		r.line++
		for err == bufio.ErrBufferFull {
			_, err = r.br.ReadSlice('\n')
		}
		if err != nil && err != io.EOF {
			return nil, lineEOF, err
		}
		r.lineErrs = append(r.lineErrs, r.perr(r.line, "", fmt.Errorf("%w: more than %d bytes", ErrLineTooLong, r.max)))
		if err == io.EOF {
			r.lineErrs = append(r.lineErrs, r.perr(r.line, "", ErrTruncated))
		}
		return nil, lineBad, nil
	}
	kind := lineOK
	switch {
	case err == io.EOF && len(raw) == 0:
		return nil, lineEOF, nil
	case err == io.EOF:
		kind = lineTruncated
	case err != nil:
		return nil, lineEOF, err
	default:
		raw = raw[:len(raw)-1]
	}
	r.line++
	if len(raw) > 0 && raw[len(raw)-1] == '\r' {
		raw = raw[:len(raw)-1]
		if !r.crlfSeen {
			r.crlfSeen = true
			r.lineErrs = append(r.lineErrs, r.perr(r.line, "", ErrCRLF))
		}
	}
	if r.line == 1 && bytes.HasPrefix(raw, []byte("\xef\xbb\xbf")) {
		raw = raw[3:]
		r.lineErrs = append(r.lineErrs, r.perr(r.line, "", ErrBOM))
	}
	ascii := true
	for _, c := range raw {
		if c < 0x20 || c == 0x7f {
			r.lineErrs = append(r.lineErrs, r.perr(r.line, "", ErrBinary))
			return nil, lineBad, nil
		}
		if c >= 0x80 {
			ascii = false
		}
	}
	if !ascii && !utf8.Valid(raw) {
		r.lineErrs = append(r.lineErrs, r.perr(r.line, "", ErrNotUTF8))
		return nil, lineBad, nil
	}
	return raw, kind, nil
}

// maxHeaderLines bounds the header: a file without a column line in its
// first lines is refused rather than read into memory.
const maxHeaderLines = 200

type headerLine struct {
	key, val string
	line     int
}

// Header reads the header and the column line. It returns a nil Header
// when the file cannot be read further (the error says why); otherwise
// the header and its problems (an ErrorList, or nil).
func (r *Reader) Header() (*Header, error) {
	if r.started {
		if r.header == nil {
			return nil, r.fatal
		}
		return r.header, r.headerErr
	}
	r.started = true
	var errs ErrorList
	var lines []headerLine
	var colRaw string
	found := false
	for !found {
		raw, kind, err := r.readLine()
		errs = append(errs, r.lineErrs...)
		r.lineErrs = r.lineErrs[:0]
		if err != nil {
			r.fatal = err
			return nil, err
		}
		switch kind {
		case lineEOF:
			errs = append(errs, r.perr(r.line, "", ErrNoColumns))
			return r.fail(errs)
		case lineBad:
			continue
		case lineTruncated:
			errs = append(errs, r.perr(r.line, "", ErrTruncated))
		}
		if r.line > maxHeaderLines {
			errs = append(errs, r.perr(r.line, "", fmt.Errorf("%w: no column line in the first %d lines", ErrNoColumns, maxHeaderLines)))
			return r.fail(errs)
		}
		switch {
		case len(raw) == 0:
			errs = append(errs, r.perr(r.line, "", ErrEmptyLine))
		case raw[0] == '#':
			k, v, ok := strings.Cut(string(raw[1:]), ":")
			k = strings.TrimSpace(k)
			v = strings.TrimLeft(v, " ")
			if !ok || k == "" || strings.ContainsAny(k, " \t") || strings.HasSuffix(v, " ") {
				errs = append(errs, r.perr(r.line, "", ErrHeaderSyntax))
				continue
			}
			lines = append(lines, headerLine{strings.ToLower(k), v, r.line})
		default:
			colRaw, found = string(raw), true
			r.colLine = r.line
			if kind == lineTruncated {
				errs = append(errs, r.perr(r.line, "", ErrNoColumns))
				return r.fail(errs)
			}
		}
	}

	h := &Header{Lines: make(map[string]int, len(lines))}
	// The format decides the schema, so it comes first.
	for _, l := range lines {
		if l.key == HFormat {
			h.Format = l.val
		}
	}
	typ := r.opts.Type
	if typ == "" {
		typ = h.Format
	}
	s, ok := Lookup(typ)
	switch {
	case !ok:
		errs = append(errs, r.perr(lineOf(lines, HFormat), HFormat, fmt.Errorf("%w %q", ErrUnknownFormat, typ)))
		return r.fail(errs)
	case h.Format == "":
		errs = append(errs, r.perr(r.colLine, HFormat, ErrMissingHeader))
	case h.Format != s.Name:
		if _, known := Lookup(h.Format); !known {
			errs = append(errs, r.perr(lineOf(lines, HFormat), HFormat, fmt.Errorf("%w %q (expected %q)", ErrUnknownFormat, h.Format, s.Name)))
			return r.fail(errs)
		}
		errs = append(errs, r.perr(lineOf(lines, HFormat), HFormat, fmt.Errorf("%w: file says %q, expected %q", ErrWrongFormat, h.Format, s.Name)))
		return r.fail(errs)
	}
	r.schema = s
	h.Format = s.Name
	for _, l := range lines {
		if _, known := s.headerField(l.key); !known && !isCommonHeader(l.key) {
			errs = append(errs, r.perr(l.line, l.key, ErrUnknownHeader))
			continue
		}
		if _, dup := h.Lines[l.key]; dup {
			errs = append(errs, r.perr(l.line, l.key, ErrDuplicateHeader))
			continue
		}
		h.Lines[l.key] = l.line
		if l.key == HFormat {
			continue
		}
		if err := h.setKey(l.key, l.val); err != nil {
			errs = append(errs, r.perr(l.line, l.key, err))
		}
	}
	for _, c := range commonHeader {
		if _, ok := h.Lines[c.key]; c.required && !ok && c.key != HFormat {
			errs = append(errs, r.perr(r.colLine, c.key, ErrMissingHeader))
		}
	}
	for _, hf := range s.Header {
		if _, ok := h.Lines[hf.Name]; hf.Required && !ok {
			errs = append(errs, r.perr(r.colLine, hf.Name, ErrMissingHeader))
		}
	}
	if _, ok := h.Lines[HVersion]; ok && h.Version != s.Version {
		errs = append(errs, r.perr(h.line(HVersion), HVersion, fmt.Errorf("%w %d (this reader knows %d)", ErrVersion, h.Version, s.Version)))
		return r.fail(errs)
	}
	r.header = h
	errs = append(errs, r.checkHeader(h)...)
	if p := r.tally.Quantity(h.line(HQuantity), HQuantity, int64(h.Quantity)); p != nil {
		errs = append(errs, p)
	}
	for _, e := range errs {
		if isRefusal(e) {
			r.header = nil
			return r.fail(errs)
		}
	}
	errs = append(errs, r.parseColumns(colRaw)...)
	if len(errs) > 0 {
		r.headerErr = errs
	}
	return h, r.headerErr
}

func (r *Reader) fail(errs ErrorList) (*Header, error) {
	r.header = nil
	r.fatal = Fatal(errs...)
	return nil, r.fatal
}

func lineOf(lines []headerLine, key string) int {
	for _, l := range lines {
		if l.key == key {
			return l.line
		}
	}
	return 1
}

// checkHeader checks the header against the options and hooks.
func (r *Reader) checkHeader(h *Header) ErrorList {
	var errs ErrorList
	add := func(key string, err error) { errs = append(errs, r.perr(h.line(key), key, err)) }
	o := &r.opts
	if o.Sender != "" && h.Sender != "" && h.Sender != o.Sender {
		add(HSender, fmt.Errorf("%w: %s, expected %s", ErrSender, h.Sender, o.Sender))
	}
	if o.Receiver != "" && h.Receiver != "" && h.Receiver != o.Receiver {
		add(HReceiver, fmt.Errorf("%w: %s, expected %s", ErrReceiver, h.Receiver, o.Receiver))
	}
	_, hasReply := h.Lines[HInReplyTo]
	_, hasSHA := h.Lines[HInReplySHA]
	_, hasSize := h.Lines[HInReplySize]
	_, refused := h.Lines[HRefused]
	switch {
	case hasSize && (hasSHA || !refused):
		// A size names a file refused unread, and only there.
		add(HInReplySize, fmt.Errorf("%w: in-reply-to-size goes with refused, in place of in-reply-to-sha256", ErrInvalid))
	case hasReply && !hasSHA && !hasSize:
		add(HInReplySHA, ErrMissingHeader)
	case (hasSHA || hasSize) && !hasReply:
		add(HInReplyTo, ErrMissingHeader)
	case hasReply && hasSize && h.InReplyTo != "" && o.SentFileOfSize != nil && !o.SentFileOfSize(h.InReplyTo, h.InReplyToSize):
		add(HInReplyTo, fmt.Errorf("%w: %s", ErrInReplyTo, h.InReplyTo))
	case hasReply && hasSHA && h.InReplyTo != "" && o.SentFile != nil && !o.SentFile(h.InReplyTo, h.InReplyToSHA256):
		add(HInReplyTo, fmt.Errorf("%w: %s", ErrInReplyTo, h.InReplyTo))
	}
	if h.Sequence > 0 && o.LastSequence != nil && h.Sender != "" && h.Receiver != "" {
		if last, ok := o.LastSequence(h.Sender, h.Receiver, h.Format); ok {
			switch {
			case h.Sequence <= last:
				add(HSequence, fmt.Errorf("%w: %d, last was %d", ErrSequenceRepeat, h.Sequence, last))
			case h.Sequence > last+1:
				add(HSequence, fmt.Errorf("%w: %d follows %d", ErrSequenceGap, h.Sequence, last))
			}
		}
	}
	if o.Name != "" {
		if n, err := ParseName(o.Name); err != nil {
			errs = append(errs, r.perr(1, "name", err))
		} else if key, err := n.mismatch(h); err != nil {
			add(key, err)
		}
	}
	_, hasKey := h.Lines[HTransportKey]
	_, hasKCV := h.Lines[HTransportKCV]
	switch {
	case hasKey && !hasKCV:
		add(HTransportKCV, ErrMissingHeader)
	case hasKCV && !hasKey:
		add(HTransportKey, ErrMissingHeader)
	case h.TransportKey != "" && h.KCV != nil && o.TransportKey != nil:
		kcv, ok := o.TransportKey(h.TransportKey)
		if !ok {
			add(HTransportKey, fmt.Errorf("%w: %s", ErrUnknownKey, h.TransportKey))
		} else if !bytes.Equal(kcv, h.KCV) {
			add(HTransportKCV, ErrKCVMismatch)
		}
	}
	return errs
}

// parseColumns maps the column line onto the schema.
func (r *Reader) parseColumns(line string) ErrorList {
	var errs ErrorList
	s := r.schema
	names := strings.Split(line, "|")
	r.cols = make([]int, len(names))
	seen := make([]bool, len(s.Fields))
	for i, n := range names {
		fi := s.Index(strings.ToLower(n))
		r.cols[i] = fi
		switch {
		case fi < 0:
			errs = append(errs, r.perr(r.colLine, n, ErrUnknownColumn))
		case seen[fi]:
			errs = append(errs, r.perr(r.colLine, n, ErrDuplicateColumn))
			r.cols[i] = -1
		default:
			seen[fi] = true
		}
	}
	r.absent = make([]bool, len(s.Fields))
	r.dups = make([]*ident.KeySet, len(s.Fields))
	for fi, f := range s.Fields {
		r.absent[fi] = !seen[fi]
		if !seen[fi] && f.Required {
			errs = append(errs, r.perr(r.colLine, f.Name, ErrMissingColumn))
		}
		if f.Unique && seen[fi] && !r.opts.NoValidate && !r.opts.CallerFindsDuplicates {
			r.dups[fi] = ident.NewKeySet()
		}
	}
	return errs
}

// Read returns the next record. A record whose fields have problems comes
// back with them (an ErrorList); a line that cannot be split comes back as
// a nil record and a *ParseError or ErrorList. Empty lines are skipped
// (they are not records) and reported once, at the first, before io.EOF
// with a quantity that does not match. Past Options.Limits the file ends
// with ErrTooManyRecords or ErrTooManyErrors (not Recoverable).
func (r *Reader) Read() (*Record, error) {
	if !r.started {
		h, err := r.Header()
		if h == nil {
			return nil, err
		}
		if err != nil {
			return nil, err
		}
	}
	if r.fatal != nil {
		return nil, r.fatal
	}
	if r.done {
		return nil, io.EOF
	}
	for {
		raw, kind, err := r.readLine()
		if err != nil {
			r.fatal = err
			return nil, err
		}
		errs := r.takeLineErrs()
		switch kind {
		case lineEOF:
			r.done = true
			if r.blank > 0 {
				errs = append(errs, r.perr(r.firstBlank, "", fmt.Errorf("%w: %d in the records, the first here (skipped: they are not records)", ErrEmptyLine, r.blank)))
			}
			if r.header.Quantity != r.count {
				errs = append(errs, r.perr(r.header.line(HQuantity), HQuantity,
					fmt.Errorf("%w: header says %d, file has %d", ErrQuantity, r.header.Quantity, r.count)))
			}
			if len(errs) > 0 {
				return nil, errs
			}
			return nil, io.EOF
		case lineBad:
			r.count++
			if p := r.tally.Record(r.line, true); p != nil {
				return r.stop(p)
			}
			return nil, errs
		case lineTruncated:
			r.count++
			if p := r.tally.Record(r.line, true); p != nil {
				return r.stop(p)
			}
			errs = append(errs, r.perr(r.line, "", ErrTruncated))
			return nil, errs
		}
		if len(raw) == 0 {
			// Not a record: counted, reported once at the end, and
			// bounded like records with problems.
			if r.blank == 0 {
				r.firstBlank = r.line
			}
			r.blank++
			if p := r.tally.Problem(r.line); p != nil {
				return r.stop(p)
			}
			r.lineErrs = append(r.lineErrs, errs...) // a CRLF seen here goes with the next line
			continue
		}
		if raw[0] == '#' {
			if p := r.tally.Problem(r.line); p != nil {
				return r.stop(p)
			}
			errs = append(errs, r.perr(r.line, "", fmt.Errorf("%w: header line after the column line", ErrHeaderSyntax)))
			return nil, errs
		}
		r.count++
		rec, rerrs := r.parseRecord(raw)
		errs = append(errs, rerrs...)
		if p := r.tally.Record(r.line, len(errs) > 0); p != nil {
			return r.stop(p)
		}
		if len(errs) > 0 {
			return rec, errs
		}
		return rec, nil
	}
}

// stop ends the file with a problem past a limit.
func (r *Reader) stop(p *ParseError) (*Record, error) {
	r.fatal = Fatal(p)
	return nil, r.fatal
}

func (r *Reader) takeLineErrs() ErrorList {
	if len(r.lineErrs) == 0 {
		return nil
	}
	out := slices.Clone(r.lineErrs)
	r.lineErrs = r.lineErrs[:0]
	return out
}

func (r *Reader) parseRecord(raw []byte) (*Record, ErrorList) {
	if n := bytes.Count(raw, []byte{'|'}) + 1; n != len(r.cols) {
		return nil, ErrorList{r.perr(r.line, "", fmt.Errorf("%w: %d, the column line has %d", ErrFieldCount, n, len(r.cols)))}
	}
	var rec *Record
	if r.ReuseRecord && r.rec != nil {
		rec = r.rec
		clear(rec.vals)
	} else {
		rec = NewRecord(r.schema)
		r.rec = rec
	}
	rec.Line = r.line
	s := string(raw)
	for _, fi := range r.cols {
		j := strings.IndexByte(s, '|')
		v := s
		if j >= 0 {
			v, s = s[:j], s[j+1:]
		}
		if fi >= 0 {
			rec.vals[fi] = v
		}
	}
	if r.opts.NoValidate {
		return rec, nil
	}
	return rec, r.validate(rec)
}

func (r *Reader) validate(rec *Record) ErrorList {
	if r.checker == nil {
		r.checker = &RecordChecker{schema: r.schema, opts: &r.opts, transportKey: r.header.TransportKey, absent: r.absent, dups: r.dups}
	}
	return r.checker.Check(rec)
}
