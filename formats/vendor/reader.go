package vendor

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode/utf8"

	"resub/formats/ident"
	"resub/formats/native"
)

// Options are the partner's conventions and what the caller knows.
type Options struct {
	File  string             // names the file in errors
	ICCID ident.ICCIDOptions // the vendor's ICCID conventions
	// KeyList says the cards have a key list (3b), whatever the file
	// says; a file is also 3b when its header has Key_list or a LIST_LEN
	// column.
	KeyList bool
	// Delimiter separates record fields: 0 detects it from the first
	// record (one of , ; | TAB, else runs of spaces).
	Delimiter byte
	// OTACipher, when set, fixes the length of clear KIc/KID/KIK; else
	// any DES, 3DES or AES length is accepted.
	OTACipher ident.CipherAlg
	// MaxLineLength bounds a line (default 4096).
	MaxLineLength int
	// Limits bound the cards and the cards with problems, as for native
	// files (zero: no bound).
	Limits native.Limits
	// CallerFindsDuplicates leaves repeated ICCIDs and IMSIs to the caller
	// (a step that stages every card in its ledger finds them there): the
	// reader then keeps no memory per card, however long the file.
	// DuplicateKeys, KeyColumns and WithRepeats give the caller what the
	// reader would have remembered and said.
	CallerFindsDuplicates bool
}

// maxHeaderLines bounds the header and input blocks.
const maxHeaderLines = 2000

// Reader reads a vendor output file one card at a time; its errors follow
// the conventions of native.Reader (native.Recoverable tells whether to
// keep reading).
type Reader struct {
	opts    Options
	br      *bufio.Reader
	max     int
	line    int
	header  *Header
	cols    []column
	fatal   error
	started bool
	done    bool
	count   int
	delim   byte
	iccids  *ident.KeySet
	imsis   *ident.KeySet
	hdrErr  error
	keyList bool
	colLine int
	tally   native.Tally
}

// NewReader returns a reader of r.
func NewReader(r io.Reader, opts Options) *Reader {
	max := opts.MaxLineLength
	if max <= 0 {
		max = 4096
	}
	rd := &Reader{opts: opts, br: bufio.NewReaderSize(r, max+2), max: max, delim: opts.Delimiter, tally: native.Tally{Limits: opts.Limits, File: opts.File}}
	if !opts.CallerFindsDuplicates {
		rd.iccids, rd.imsis = ident.NewKeySet(), ident.NewKeySet()
	}
	return rd
}

func (r *Reader) perr(line int, field string, err error) *native.ParseError {
	return &native.ParseError{File: r.opts.File, Line: line, Field: field, Err: err}
}

// next returns the next line (without CR LF; vendor files come from
// Windows tools as often as not, so CRLF is accepted here).
func (r *Reader) next() (string, bool, error) {
	raw, err := r.br.ReadSlice('\n')
	if err == bufio.ErrBufferFull {
		r.line++
		for err == bufio.ErrBufferFull {
			_, err = r.br.ReadSlice('\n')
		}
		if err != nil && err != io.EOF {
			return "", false, err
		}
		return "", true, r.perr(r.line, "", fmt.Errorf("%w: more than %d bytes", native.ErrLineTooLong, r.max))
	}
	if err == io.EOF && len(raw) == 0 {
		return "", false, io.EOF
	}
	if err != nil && err != io.EOF {
		return "", false, err
	}
	r.line++
	truncated := err == io.EOF
	raw = bytes.TrimRight(raw, "\r\n")
	if r.line == 1 {
		raw = bytes.TrimPrefix(raw, []byte("\xef\xbb\xbf"))
	}
	for _, c := range raw {
		if c < 0x20 && c != '\t' || c == 0x7f {
			return "", true, r.perr(r.line, "", native.ErrBinary)
		}
	}
	if !utf8.Valid(raw) {
		return "", true, r.perr(r.line, "", native.ErrNotUTF8)
	}
	if truncated {
		return string(raw), true, r.perr(r.line, "", native.ErrTruncated)
	}
	return string(raw), false, nil
}

// Header reads up to and including the var_Out line. A nil Header means
// the file cannot be read further (a 3b file naming a later pair is
// refused here, before any record).
func (r *Reader) Header() (*Header, error) {
	if r.started {
		if r.header == nil {
			return nil, r.fatal
		}
		return r.header, r.hdrErr
	}
	r.started = true
	h := &Header{Quantity: -1, Fields: map[string]string{}, Inputs: map[string]string{}, Lines: map[string]int{}}
	var errs native.ErrorList
	inInputs := false
	for {
		l, bad, err := r.next()
		if err == io.EOF {
			errs = append(errs, r.perr(r.line, "var_Out", ErrNoVarOut))
			r.fatal = native.Fatal(errs...)
			return nil, r.fatal
		}
		if pe, ok := err.(*native.ParseError); ok {
			errs = append(errs, pe)
			if bad {
				continue
			}
		} else if err != nil {
			r.fatal = err
			return nil, err
		}
		if r.line > maxHeaderLines {
			errs = append(errs, r.perr(r.line, "var_Out", fmt.Errorf("%w in the first %d lines", ErrNoVarOut, maxHeaderLines)))
			r.fatal = native.Fatal(errs...)
			return nil, r.fatal
		}
		t := strings.TrimSpace(l)
		switch {
		case t == "" || t[0] == '*':
			if strings.Contains(strings.ToUpper(t), "INPUT") {
				inInputs = true
			}
			continue
		case hasPrefixFold(t, "var_Out"):
			r.colLine = r.line
			errs = append(errs, r.columns(h, t)...)
			if r.fatal != nil {
				return nil, r.fatal
			}
			if len(errs) > 0 {
				r.hdrErr = errs
			}
			r.header = h
			return h, r.hdrErr
		case hasPrefixFold(t, "var_In"):
			inInputs = true
			continue
		}
		k, v, ok := strings.Cut(t, ":")
		if !ok {
			errs = append(errs, r.perr(r.line, "", fmt.Errorf("%w: header line without ':'", native.ErrHeaderSyntax)))
			continue
		}
		k = normKey(k)
		v = strings.TrimSpace(v)
		if inInputs {
			h.Inputs[k] = v
			continue
		}
		h.Fields[k] = v
		h.Lines[k] = r.line
		if err := h.set(k, v); err != nil {
			errs = append(errs, r.perr(r.line, k, err))
		}
	}
}

func hasPrefixFold(s, p string) bool { return len(s) >= len(p) && strings.EqualFold(s[:len(p)], p) }

func normKey(k string) string {
	k = strings.ToLower(strings.TrimSpace(k))
	return strings.Join(strings.FieldsFunc(k, func(c rune) bool { return c == ' ' || c == '_' || c == '-' }), "_")
}

func (h *Header) set(k, v string) error {
	switch k {
	case "customer":
		h.Customer = v
	case "quantity", "qty":
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return fmt.Errorf("%w: quantity %q", native.ErrInvalid, v)
		}
		h.Quantity = n
	case "type":
		h.Type = v
	case "profile":
		h.Profile = v
	case "batch", "batch_no", "batch_number":
		h.Batch = v
	case "transport_key", "transport_key_ref", "key_ref", "tk":
		if !strings.EqualFold(v, "clear") && !strings.EqualFold(v, "none") {
			h.TransportKey = v
		}
	case "algorithm", "auth_algorithm", "alg":
		h.Algorithm = strings.ToLower(v)
		if _, err := ident.AuthAlg(h.Algorithm).KiLengths(); err != nil {
			return err
		}
	case "key_list", "key_list_length", "list_length":
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 255 {
			return fmt.Errorf("%w: key list length %q", native.ErrInvalid, v)
		}
		h.KeyListLength = n
	}
	return nil
}

// columns parses "var_Out: A/B/C" and applies the 3b rule.
func (r *Reader) columns(h *Header, t string) native.ErrorList {
	var errs native.ErrorList
	_, list, _ := strings.Cut(t, ":")
	list = strings.TrimSpace(list)
	if list == "" {
		errs = append(errs, r.perr(r.line, "var_Out", ErrNoVarOut))
		r.fatal = native.Fatal(errs...)
		return errs
	}
	seen := map[string]bool{}
	for _, name := range strings.Split(list, "/") {
		c, err := parseColumn(name)
		if err != nil {
			errs = append(errs, r.perr(r.line, name, err))
		}
		if seen[c.name] {
			errs = append(errs, r.perr(r.line, c.name, native.ErrDuplicateColumn))
		}
		seen[c.name] = true
		if c.base == "LIST_LEN" || c.pair > 0 {
			r.keyList = true
		}
		r.cols = append(r.cols, c)
	}
	r.keyList = r.keyList || r.opts.KeyList || h.KeyListLength > 0
	if r.keyList {
		for _, c := range r.cols {
			if c.laterPair() {
				errs = append(errs, r.perr(r.line, c.name, ErrLaterPair))
				r.fatal = native.Fatal(errs...)
				return errs
			}
		}
	}
	if h.Quantity < 0 {
		errs = append(errs, r.perr(r.line, "quantity", fmt.Errorf("%w: the header gives no Quantity", native.ErrMissingHeader)))
	} else if p := r.tally.Quantity(h.Lines["quantity"], "quantity", int64(h.Quantity)); p != nil {
		errs = append(errs, p)
		r.fatal = native.Fatal(errs...)
		return errs
	}
	if !seen["ICCID"] {
		errs = append(errs, r.perr(r.line, "ICCID", native.ErrMissingColumn))
	}
	if !seen["IMSI"] {
		errs = append(errs, r.perr(r.line, "IMSI", native.ErrMissingColumn))
	}
	if !seen["KI"] && !seen["KI1"] && !seen["KI_P1"] {
		errs = append(errs, r.perr(r.line, "KI", native.ErrMissingColumn))
	}
	return errs
}

// Read returns the next card, with its problems; a quantity that differs
// from the header is reported once before io.EOF.
func (r *Reader) Read() (*Card, error) {
	if !r.started {
		if h, err := r.Header(); h == nil || err != nil {
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
		l, bad, err := r.next()
		if err == io.EOF {
			r.done = true
			if q := r.header.Quantity; q >= 0 && q != r.count {
				return nil, r.perr(r.header.Lines["quantity"], "quantity", fmt.Errorf("%w: header says %d, file has %d", native.ErrQuantity, q, r.count))
			}
			return nil, io.EOF
		}
		if err != nil {
			if _, ok := err.(*native.ParseError); !ok {
				r.fatal = err
				return nil, err
			}
		}
		if strings.TrimSpace(l) == "" && !bad {
			continue // blank lines (often trailing) carry nothing
		}
		r.count++
		if bad {
			if p := r.tally.Record(r.line, true); p != nil {
				return r.stop(p)
			}
			return nil, err
		}
		c, errs := r.parse(l)
		if err != nil {
			errs = append(native.ErrorList{err.(*native.ParseError)}, errs...)
		}
		if p := r.tally.Record(r.line, len(errs) > 0); p != nil {
			if c != nil {
				c.Zero()
			}
			return r.stop(p)
		}
		if len(errs) > 0 {
			return c, errs
		}
		return c, nil
	}
}

// stop ends the file with a problem past a limit.
func (r *Reader) stop(p *native.ParseError) (*Card, error) {
	r.fatal = native.Fatal(p)
	return nil, r.fatal
}

func (r *Reader) split(l string) []string {
	if r.delim == 0 {
		r.delim = ' '
		for _, d := range []byte{'\t', ',', ';', '|'} {
			if strings.IndexByte(l, d) >= 0 {
				r.delim = d
				break
			}
		}
	}
	if r.delim == ' ' {
		return strings.Fields(l)
	}
	f := strings.Split(l, string(r.delim))
	for i := range f {
		f[i] = strings.TrimSpace(f[i])
	}
	return f
}

func (r *Reader) parse(l string) (*Card, native.ErrorList) {
	var errs native.ErrorList
	add := func(field string, err error) { errs = append(errs, r.perr(r.line, field, err)) }
	vals := r.split(l)
	if len(vals) != len(r.cols) {
		add("", fmt.Errorf("%w: %d, var_Out names %d", native.ErrFieldCount, len(vals), len(r.cols)))
		return nil, errs
	}
	c := &Card{Line: r.line, Counter: -1, Algorithm: r.header.Algorithm, KeyListLength: r.header.KeyListLength, Encrypted: r.header.TransportKey != ""}
	type secretVal struct {
		col column
		val string
	}
	var secrets []secretVal
	for i, col := range r.cols {
		v := vals[i]
		switch col.base {
		case "ICCID":
			s, err := ident.NormalizeICCID(v, r.opts.ICCID)
			if err != nil {
				add(col.name, err)
				continue
			}
			c.ICCID = s
			if k, ok := ident.ICCIDKey(s); ok && r.iccids != nil {
				if !r.iccids.Add(k) {
					add(col.name, fmt.Errorf("%w: %s", native.ErrDuplicate, s))
				}
			}
		case "IMSI":
			if err := ident.ValidIMSI(v); err != nil {
				add(col.name, err)
				continue
			}
			c.IMSI = v
			k, _ := ident.IMSIKey(v)
			if r.imsis != nil && !r.imsis.Add(k) {
				add(col.name, fmt.Errorf("%w: %s", native.ErrDuplicate, v))
			}
		case "CNTR":
			n, err := parseCounter(v)
			if err != nil || n < 0 || n >= 1<<40 {
				add(col.name, fmt.Errorf("%w: counter %q", native.ErrInvalid, v))
				continue
			}
			c.Counter = n
		case "ALG":
			c.Algorithm = strings.ToLower(v)
			if _, err := ident.AuthAlg(c.Algorithm).KiLengths(); err != nil {
				add(col.name, err)
			}
		case "LIST_LEN":
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 || n > 255 {
				add(col.name, fmt.Errorf("%w: key list length %q", native.ErrInvalid, v))
				continue
			}
			c.KeyListLength = n
		case "KI", "OPC", "KIC", "KID", "KIK":
			secrets = append(secrets, secretVal{col, v})
		default:
			if col.secret { // PIN, PUK, ADM: never kept
				continue
			}
			if c.Other == nil {
				c.Other = map[string]string{}
			}
			c.Other[col.name] = v
		}
	}
	for _, s := range secrets {
		b, err := r.secret(c, s.col, s.val)
		if err != nil {
			add(s.col.name, err)
			continue
		}
		switch s.col.base {
		case "KI":
			c.Ki = b
		case "OPC":
			c.OPc = b
		default:
			kvn := max(s.col.num, 1)
			ks := c.keySet(kvn)
			switch s.col.base {
			case "KIC":
				ks.KIc = b
			case "KID":
				ks.KID = b
			case "KIK":
				ks.KIK = b
			}
		}
	}
	return c, errs
}

// DuplicateKeys returns the ICCID and IMSI of a card the reader returned
// (with or without problems) that a reader finding duplicates itself would
// have remembered for the later cards: "" for either when none.
func (r *Reader) DuplicateKeys(c *Card) (iccid, imsi string) {
	if c == nil {
		return "", ""
	}
	if _, ok := ident.ICCIDKey(c.ICCID); ok {
		iccid = c.ICCID
	}
	if _, ok := ident.IMSIKey(c.IMSI); ok {
		imsi = c.IMSI
	}
	return iccid, imsi
}

// KeyColumns returns the names of the ICCID and IMSI columns as the file
// writes them (they name the field of a duplicate) and whether the IMSI
// column comes first (a card repeating both is reported in column order).
func (r *Reader) KeyColumns() (iccid, imsi string, imsiFirst bool) {
	ip, mp := -1, -1
	for i, c := range r.cols {
		switch {
		case c.base == "ICCID" && ip < 0:
			iccid, ip = c.name, i
		case c.base == "IMSI" && mp < 0:
			imsi, mp = c.name, i
		}
	}
	return iccid, imsi, mp >= 0 && mp < ip
}

// WithRepeats returns a card's problems as a reader finding duplicates
// itself would have returned them: err (the card's problems, nil when
// none) with a duplicate problem on the ICCID and/or IMSI column, each in
// its column's place among them.
func (r *Reader) WithRepeats(c *Card, err error, iccid, imsi bool) error {
	ps := native.Problems(err)
	if !iccid && !imsi {
		return err
	}
	// A problem's place: the line's own problems first, then the columns
	// in order, then the secret columns (checked after the others).
	place := func(p *native.ParseError) int {
		if p.Field == "" {
			return -1
		}
		for i, col := range r.cols {
			if col.name != p.Field {
				continue
			}
			switch col.base {
			case "KI", "OPC", "KIC", "KID", "KIK":
				return len(r.cols) + i
			}
			return i
		}
		return 2 * len(r.cols)
	}
	type dup struct {
		at  int
		err *native.ParseError
	}
	var dups []dup
	for i, col := range r.cols {
		switch {
		case col.base == "ICCID" && iccid:
			dups = append(dups, dup{i, r.perr(c.Line, col.name, fmt.Errorf("%w: %s", native.ErrDuplicate, c.ICCID))})
			iccid = false
		case col.base == "IMSI" && imsi:
			dups = append(dups, dup{i, r.perr(c.Line, col.name, fmt.Errorf("%w: %s", native.ErrDuplicate, c.IMSI))})
			imsi = false
		}
	}
	out := make(native.ErrorList, 0, len(ps)+len(dups))
	for _, p := range ps {
		for len(dups) > 0 && dups[0].at < place(p) {
			out = append(out, dups[0].err)
			dups = dups[1:]
		}
		out = append(out, p)
	}
	for _, d := range dups {
		out = append(out, d.err)
	}
	return out
}

func (c *Card) keySet(kvn int) *KeySet {
	for i := range c.KeySets {
		if c.KeySets[i].KVN == kvn {
			return &c.KeySets[i]
		}
	}
	c.KeySets = append(c.KeySets, KeySet{KVN: kvn})
	return &c.KeySets[len(c.KeySets)-1]
}

// secret decodes a secret column and checks its length: against the
// algorithm when clear, a whole number of 8-byte cipher blocks when
// encrypted. The error never holds the value.
func (r *Reader) secret(c *Card, col column, v string) ([]byte, error) {
	if len(v)%2 != 0 || !ident.IsHex(v) {
		return nil, fmt.Errorf("%w: not hex", ErrSecret)
	}
	b := make([]byte, len(v)/2)
	hex.Decode(b, []byte(v))
	if c.Encrypted {
		if len(b)%8 != 0 {
			clear(b)
			return nil, fmt.Errorf("%w: %d bytes is not whole cipher blocks", ErrSecret, len(b))
		}
		return b, nil
	}
	err := ident.CheckSecret(strings.ToLower(col.base), b, ident.AuthAlg(c.Algorithm), r.opts.OTACipher)
	if err != nil {
		clear(b)
		return nil, err
	}
	return b, nil
}

// parseCounter reads a decimal counter, or hex written 0x….
func parseCounter(v string) (int64, error) {
	if h, ok := strings.CutPrefix(strings.ToLower(v), "0x"); ok {
		return strconv.ParseInt(h, 16, 64)
	}
	return strconv.ParseInt(v, 10, 64)
}
