package native

import (
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"resub/formats/ident"
)

// Options are what the caller knows about the file being read: the
// expected type and partners, and hooks into its state. Every hook is
// optional; a nil hook skips its check (as `resub check` without a
// config does).
type Options struct {
	// File names the file in errors (its path or base name).
	File string
	// Type is the expected type name; "" takes the header's.
	Type string
	// Name, when not "", is the file's base name: it must follow the
	// naming rule and agree with the header.
	Name string
	// Sender and Receiver, when not "", are the expected partner IDs.
	Sender, Receiver string
	// SenderRanges holds the sender's PLMNs and IMSI ranges: IMSI fields
	// marked InRanges (the new IMSI of an imsi-list) must be in one.
	SenderRanges ident.IMSIRanges
	// LastSequence returns the last sequence number accepted from this
	// sender to this receiver for this format (ok false: none yet).
	LastSequence func(sender, receiver, format string) (last int, ok bool)
	// SentFile reports whether we sent a file of that name with that
	// SHA-256 (the in-reply-to check).
	SentFile func(name string, sha256 [32]byte) bool
	// SentFileOfSize reports whether we sent a file of that name and size
	// (the in-reply-to check of a refusal by in-reply-to-size: the
	// receiver refused the file unread).
	SentFileOfSize func(name string, size int64) bool
	// TransportKey returns the check value of a transport key ID (ok
	// false: unknown). A wrong KCV refuses the file before any record.
	TransportKey func(keyID string) (kcv []byte, ok bool)
	// MaxLineLength bounds a line in bytes (default DefaultMaxLineLength).
	MaxLineLength int
	// NoValidate skips field validation and duplicate detection: the
	// reader then only splits lines (for tools that repair files).
	NoValidate bool
	// CallerFindsDuplicates leaves repeated ICCIDs and IMSIs to the
	// caller (a step that stages every record in its ledger finds them
	// there): the reader then keeps no memory per record, however long
	// the file.
	CallerFindsDuplicates bool
	// Limits bound the records and the records with problems; past
	// them the file is refused as a whole (zero: no bound).
	Limits Limits
}

// DefaultMaxLineLength bounds lines: enough for an ota-batch record of
// 16 segments of 140 bytes, in hex.
const DefaultMaxLineLength = 16 << 10

// checkValue validates one value of field f; v is not empty.
func checkValue(f *Field, v string, o *Options) error {
	switch f.Kind {
	case Text:
		if strings.IndexByte(v, '|') >= 0 || !utf8.ValidString(v) {
			return invalidf("text must be UTF-8 without '|'")
		}
	case ID:
		if !isID(v) {
			return invalidf("%q is not a token (letters, digits, . _ : -; at most 64)", v)
		}
	case ICCID:
		return ident.ValidICCID(v)
	case IMSI:
		if err := ident.ValidIMSI(v); err != nil {
			return err
		}
		if f.InRanges && o.SenderRanges != nil && !o.SenderRanges.Contains(v) {
			return ident.ErrIMSINotInRange
		}
	case MSISDN:
		return ident.ValidMSISDN(v)
	case Hex:
		return checkHex(v, f.MinLen, f.MaxLen)
	case Segments:
		n := 0
		for seg := range strings.SplitSeq(v, " ") {
			n++
			if err := checkHex(seg, 1, f.MaxLen); err != nil {
				return fmt.Errorf("segment %d: %w", n, err)
			}
		}
	case Wrapped:
		if _, err := ParseWrapped(v); err != nil {
			return err
		}
	case Enum:
		for _, e := range f.Values {
			if strings.EqualFold(v, e) {
				return nil
			}
		}
		if len(f.Values) > 8 {
			return invalidf("%q is not a known value", v)
		}
		return invalidf("%q is not one of %s", v, strings.Join(f.Values, ", "))
	case Date:
		if len(v) != 10 {
			return invalidf("%q is not YYYY-MM-DD", v)
		}
		if _, err := time.Parse(time.DateOnly, v); err != nil {
			return invalidf("%q is not YYYY-MM-DD", v)
		}
	case Time:
		if _, err := time.Parse(time.RFC3339, v); err != nil {
			return invalidf("%q is not an RFC 3339 time with zone", v)
		}
	case Int:
		n, err := parseInt(v)
		if err != nil {
			return invalidf("%q is not a number", v)
		}
		if n < f.Min || n > f.Max {
			return invalidf("%d is not in %d..%d", n, f.Min, f.Max)
		}
	case Bool:
		if v != "0" && v != "1" {
			return invalidf("%q is not 0 or 1", v)
		}
	}
	return nil
}

func checkHex(v string, minLen, maxLen int) error {
	if !ident.IsHex(v) || len(v)%2 != 0 {
		return invalidf("not an even number of hex digits")
	}
	n := len(v) / 2
	if minLen > 0 && n < minLen || maxLen > 0 && n > maxLen {
		return invalidf("%d bytes, want %d..%d", n, max(minLen, 1), maxLen)
	}
	return nil
}
