package native

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// ErrNameSyntax reports a file name that does not follow the naming rule.
var ErrNameSyntax = errors.New("file name is not SENDER_RECEIVER_FORMAT_YYYYMMDD_SEQ6.EXT[.pgp]")

// Name is a file name under the rule
// <SENDER>_<RECEIVER>_<FORMAT>_<YYYYMMDD>_<SEQ6>.<ext>[.pgp], e.g.
// MNOB_MNOA_imsi-list_20261128_000001.txt.pgp. FORMAT is the type name;
// partner IDs contain no '_'.
type Name struct {
	Sender, Receiver string
	Format           string
	Date             time.Time
	Sequence         int
	Ext              string // "txt" for native files, "csv" for partner layouts
	PGP              bool   // the name ends in .pgp
}

// String builds the file name.
func (n Name) String() string {
	s := fmt.Sprintf("%s_%s_%s_%s_%06d.%s", n.Sender, n.Receiver, n.Format, n.Date.Format("20060102"), n.Sequence, n.Ext)
	if n.PGP {
		s += ".pgp"
	}
	return s
}

// NameOf returns the name of the file that carries h.
func NameOf(h *Header, ext string, pgp bool) Name {
	return Name{Sender: h.Sender, Receiver: h.Receiver, Format: h.Format, Date: h.BusinessDate, Sequence: h.Sequence, Ext: ext, PGP: pgp}
}

// ParseName parses a base file name (no directory).
func ParseName(s string) (Name, error) {
	var n Name
	if strings.ContainsAny(s, "/\\") {
		return n, ErrNameSyntax
	}
	if rest, ok := strings.CutSuffix(s, ".pgp"); ok {
		n.PGP = true
		s = rest
	}
	base, ext, ok := strings.Cut(s, ".")
	if !ok || ext == "" || strings.Contains(ext, ".") || !isID(ext) {
		return n, ErrNameSyntax
	}
	n.Ext = ext
	parts := strings.Split(base, "_")
	if len(parts) != 5 {
		return n, ErrNameSyntax
	}
	var err error
	if n.Sender, err = partnerID(parts[0]); err != nil {
		return n, fmt.Errorf("%w: sender: %v", ErrNameSyntax, err)
	}
	if n.Receiver, err = partnerID(parts[1]); err != nil {
		return n, fmt.Errorf("%w: receiver: %v", ErrNameSyntax, err)
	}
	n.Format = strings.ToLower(parts[2])
	if n.Format == "" {
		return n, ErrNameSyntax
	}
	if len(parts[3]) != 8 {
		return n, ErrNameSyntax
	}
	if n.Date, err = time.Parse("20060102", parts[3]); err != nil {
		return n, fmt.Errorf("%w: date %q", ErrNameSyntax, parts[3])
	}
	if len(parts[4]) != 6 {
		return n, ErrNameSyntax
	}
	if n.Sequence, err = strconv.Atoi(parts[4]); err != nil || n.Sequence < 1 || strings.ContainsAny(parts[4], "+-") {
		return n, fmt.Errorf("%w: sequence %q", ErrNameSyntax, parts[4])
	}
	return n, nil
}

// matches reports the first header key whose value the name contradicts.
func (n Name) mismatch(h *Header) (key string, err error) {
	switch {
	case n.Sender != h.Sender:
		return HSender, fmt.Errorf("%w: name says sender %s", ErrName, n.Sender)
	case n.Receiver != h.Receiver:
		return HReceiver, fmt.Errorf("%w: name says receiver %s", ErrName, n.Receiver)
	case n.Format != h.Format:
		return HFormat, fmt.Errorf("%w: name says format %s", ErrName, n.Format)
	case !n.Date.Equal(h.BusinessDate):
		return HBusinessDate, fmt.Errorf("%w: name says date %s", ErrName, n.Date.Format(time.DateOnly))
	case n.Sequence != h.Sequence:
		return HSequence, fmt.Errorf("%w: name says sequence %d", ErrName, n.Sequence)
	}
	return "", nil
}
