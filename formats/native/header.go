package native

import (
	"bufio"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Header is the first block of every native file.
type Header struct {
	Format       string    // the type name
	Version      int       // the type's version (1)
	Sender       string    // partner ID of the sender
	Receiver     string    // partner ID of the receiver
	BusinessDate time.Time // the day the file is for (UTC midnight)
	Sequence     int       // 1..999999, per sender, receiver and format
	Created      time.Time // when the sender wrote it
	Batch        string    // the sender's batch reference

	InReplyTo       string   // name of the file this one answers ("" = none)
	InReplyToSHA256 [32]byte // and the SHA-256 of that file as sent
	// InReplyToSize, in place of InReplyToSHA256, is the size of the
	// file a refusal answers when it was refused unread (larger than the
	// receiver's bound): nothing of it was read, so it has no SHA-256.
	InReplyToSize int64

	TransportKey string // ID of the transport key wrapping the secret fields ("" = none)
	KCV          []byte // its check value: first 3 bytes of the key's encryption of a zero block

	MaxRate int    // ota-batch: maximum messages per second
	Window  string // ota-batch: submission window "HH:MM-HH:MM" (UTC)

	Quantity int // number of records; 0 = "nothing today"

	// Refused, in a result file with no records, says that the file named
	// by in-reply-to was refused as a whole, and why.
	Refused string

	// Lines gives the line of each header key read (for error positions).
	Lines map[string]int
}

// Header keys, in the order the writer puts them.
const (
	HFormat       = "format"
	HVersion      = "version"
	HSender       = "sender"
	HReceiver     = "receiver"
	HBusinessDate = "business-date"
	HSequence     = "sequence"
	HCreated      = "created"
	HBatch        = "batch"
	HInReplyTo    = "in-reply-to"
	HInReplySHA   = "in-reply-to-sha256"
	HInReplySize  = "in-reply-to-size"
	HTransportKey = "transport-key"
	HTransportKCV = "transport-kcv"
	HMaxRate      = "max-rate"
	HWindow       = "window"
	HQuantity     = "quantity"
	HRefused      = "refused"
)

var commonHeader = []struct {
	key      string
	required bool
}{
	{HFormat, true}, {HVersion, true}, {HSender, true}, {HReceiver, true},
	{HBusinessDate, true}, {HSequence, true}, {HCreated, true}, {HBatch, true},
	{HInReplyTo, false}, {HInReplySHA, false}, {HInReplySize, false}, {HTransportKey, false}, {HTransportKCV, false},
	{HRefused, false}, {HQuantity, true},
}

func isCommonHeader(k string) bool {
	for _, h := range commonHeader {
		if h.key == k {
			return true
		}
	}
	return false
}

// line returns the line of a header key, or the line of format, or 1.
func (h *Header) line(key string) int {
	if l, ok := h.Lines[key]; ok {
		return l
	}
	if l, ok := h.Lines[HFormat]; ok {
		return l
	}
	return 1
}

// setKey parses one header value into h. The error carries no position.
func (h *Header) setKey(key, v string) error {
	var err error
	switch key {
	case HFormat:
		h.Format = v
	case HVersion:
		h.Version, err = strconv.Atoi(v)
		if err != nil {
			return invalidf("version %q is not a number", v)
		}
	case HSender:
		h.Sender, err = partnerID(v)
	case HReceiver:
		h.Receiver, err = partnerID(v)
	case HBusinessDate:
		h.BusinessDate, err = time.Parse(time.DateOnly, v)
		if err != nil {
			return invalidf("%q is not YYYY-MM-DD", v)
		}
	case HSequence:
		h.Sequence, err = strconv.Atoi(v)
		if err != nil || h.Sequence < 1 || h.Sequence > 999999 {
			return invalidf("sequence %q is not 1..999999", v)
		}
	case HCreated:
		h.Created, err = time.Parse(time.RFC3339, v)
		if err != nil {
			return invalidf("%q is not an RFC 3339 time with zone", v)
		}
	case HBatch:
		if !isID(v) {
			return invalidf("batch reference %q is not a token", v)
		}
		h.Batch = v
	case HInReplyTo:
		if _, perr := ParseName(v); perr != nil {
			return invalidf("in-reply-to %q is not a file name: %v", v, perr)
		}
		h.InReplyTo = v
	case HInReplySHA:
		b, derr := hex.DecodeString(v)
		if derr != nil || len(b) != 32 {
			return invalidf("in-reply-to-sha256 must be 64 hex digits")
		}
		copy(h.InReplyToSHA256[:], b)
	case HInReplySize:
		n, perr := strconv.ParseInt(v, 10, 64)
		if perr != nil || n < 1 {
			return invalidf("in-reply-to-size %q is not a number of bytes >= 1", v)
		}
		h.InReplyToSize = n
	case HTransportKey:
		if !isID(v) {
			return invalidf("transport key ID %q is not a token", v)
		}
		h.TransportKey = v
	case HTransportKCV:
		b, derr := hex.DecodeString(v)
		if derr != nil || len(b) != 3 {
			return invalidf("transport-kcv must be 6 hex digits (3 bytes)")
		}
		h.KCV = b
	case HMaxRate:
		h.MaxRate, err = strconv.Atoi(v)
		if err != nil || h.MaxRate < 1 || h.MaxRate > 100000 {
			return invalidf("max-rate %q is not 1..100000 messages per second", v)
		}
	case HWindow:
		if err := checkWindow(v); err != nil {
			return err
		}
		h.Window = v
	case HRefused:
		if v == "" {
			return invalidf("refused needs the reason")
		}
		h.Refused = v
	case HQuantity:
		h.Quantity, err = strconv.Atoi(v)
		if err != nil || h.Quantity < 0 {
			return invalidf("quantity %q is not a number >= 0", v)
		}
	}
	return err
}

func checkWindow(v string) error {
	from, to, ok := strings.Cut(v, "-")
	if ok {
		a, e1 := time.Parse("15:04", from)
		b, e2 := time.Parse("15:04", to)
		if e1 == nil && e2 == nil && len(from) == 5 && len(to) == 5 && a != b {
			return nil
		}
	}
	return invalidf("window %q is not HH:MM-HH:MM", v)
}

func partnerID(v string) (string, error) {
	if v == "" || len(v) > 32 {
		return "", invalidf("partner ID %q must be 1..32 letters, digits or '-'", v)
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return "", invalidf("partner ID %q must be 1..32 letters, digits or '-'", v)
		}
	}
	return v, nil
}

// write writes the header lines of h for schema s.
func (h *Header) write(w *bufio.Writer, s *Schema) error {
	kv := func(k, v string) {
		w.WriteByte('#')
		w.WriteString(k)
		w.WriteString(": ")
		w.WriteString(v)
		w.WriteByte('\n')
	}
	if _, err := partnerID(h.Sender); err != nil {
		return fmt.Errorf("sender: %w", err)
	}
	if _, err := partnerID(h.Receiver); err != nil {
		return fmt.Errorf("receiver: %w", err)
	}
	unread := h.InReplyToSHA256 == [32]byte{} && h.InReplyToSize > 0
	switch {
	case h.InReplyTo != "" && unread && h.Refused == "":
		return invalidf("header: in-reply-to-size only goes with refused")
	case h.InReplyTo != "" && h.InReplyToSHA256 == [32]byte{} && !unread:
		return invalidf("header: in-reply-to needs the SHA-256 of that file")
	}
	if h.Sequence < 1 || h.Sequence > 999999 || h.Quantity < 0 || !isID(h.Batch) {
		return invalidf("header: sequence 1..999999, quantity >= 0 and a batch reference are required")
	}
	v := h.Version
	if v == 0 {
		v = s.Version
	}
	kv(HFormat, s.Name)
	kv(HVersion, strconv.Itoa(v))
	kv(HSender, h.Sender)
	kv(HReceiver, h.Receiver)
	kv(HBusinessDate, h.BusinessDate.Format(time.DateOnly))
	kv(HSequence, strconv.Itoa(h.Sequence))
	kv(HCreated, h.Created.Format(time.RFC3339))
	kv(HBatch, h.Batch)
	if h.InReplyTo != "" {
		kv(HInReplyTo, h.InReplyTo)
		if unread {
			kv(HInReplySize, strconv.FormatInt(h.InReplyToSize, 10))
		} else {
			kv(HInReplySHA, hex.EncodeToString(h.InReplyToSHA256[:]))
		}
	}
	if h.TransportKey != "" {
		kv(HTransportKey, h.TransportKey)
		if h.KCV != nil {
			kv(HTransportKCV, hex.EncodeToString(h.KCV))
		}
	}
	for _, hf := range s.Header {
		switch hf.Name {
		case HMaxRate:
			if h.MaxRate > 0 {
				kv(HMaxRate, strconv.Itoa(h.MaxRate))
			}
		case HWindow:
			if h.Window != "" {
				kv(HWindow, h.Window)
			}
		}
	}
	if h.Refused != "" {
		if h.Quantity != 0 || h.InReplyTo == "" {
			return invalidf("header: refused goes with in-reply-to and quantity 0")
		}
		kv(HRefused, oneLine(h.Refused))
	}
	kv(HQuantity, strconv.Itoa(h.Quantity))
	return nil
}

// oneLine keeps free text on one header line.
func oneLine(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c < 0x20 || c == 0x7f {
			b[i] = ' '
		}
	}
	if len(b) > 500 {
		b = b[:500]
	}
	return strings.TrimSpace(string(b))
}
