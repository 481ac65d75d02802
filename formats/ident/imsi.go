package ident

import (
	"errors"
	"fmt"
	"strings"
)

// IMSI and PLMN errors.
var (
	ErrIMSIDigits     = errors.New("IMSI must be decimal digits")
	ErrIMSILength     = errors.New("IMSI must have 14 or 15 digits")
	ErrPLMN           = errors.New("PLMN must be MCC-MNC: 3 digits, then 2 or 3 digits")
	ErrIMSIRange      = errors.New("IMSI range is malformed")
	ErrIMSINotInRange = errors.New("IMSI is not in the partner's PLMNs and ranges")
)

// PLMN is a public land mobile network: mobile country code and mobile
// network code. MNC keeps its length (2 or 3 digits, as configured for that
// network): "01" and "001" are different networks' prefixes.
type PLMN struct {
	MCC string
	MNC string
}

// ParsePLMN parses "MCC-MNC" (also "MCC MNC" or "MCC/MNC"), e.g. "001-01".
func ParsePLMN(s string) (PLMN, error) {
	i := strings.IndexAny(s, "-/ ")
	if i < 0 {
		return PLMN{}, fmt.Errorf("%w: %q", ErrPLMN, s)
	}
	p := PLMN{MCC: s[:i], MNC: s[i+1:]}
	return p, p.Valid()
}

// Valid reports whether p has a 3-digit MCC and a 2- or 3-digit MNC.
func (p PLMN) Valid() error {
	if len(p.MCC) != 3 || digits(p.MCC, ErrPLMN) != nil || (len(p.MNC) != 2 && len(p.MNC) != 3) || digits(p.MNC, ErrPLMN) != nil {
		return fmt.Errorf("%w: %q", ErrPLMN, p.MCC+"-"+p.MNC)
	}
	return nil
}

// String returns "MCC-MNC".
func (p PLMN) String() string { return p.MCC + "-" + p.MNC }

// Prefix returns MCC followed by MNC, the first digits of the PLMN's IMSIs.
func (p PLMN) Prefix() string { return p.MCC + p.MNC }

// Contains reports whether imsi is a valid IMSI of this PLMN.
func (p PLMN) Contains(imsi string) bool {
	return p.Valid() == nil && ValidIMSI(imsi) == nil && strings.HasPrefix(imsi, p.Prefix())
}

// MSIN returns the subscriber part of imsi under this PLMN.
func (p PLMN) MSIN(imsi string) (string, bool) {
	if !p.Contains(imsi) {
		return "", false
	}
	return imsi[len(p.MCC)+len(p.MNC):], true
}

// ValidIMSI checks the IMSI's syntax: 14 or 15 decimal digits. Whether the
// MCC and MNC are right is a question for a PLMN or an IMSIRange.
func ValidIMSI(s string) error {
	if err := digits(s, ErrIMSIDigits); err != nil {
		return err
	}
	if len(s) < 14 || len(s) > 15 {
		return fmt.Errorf("%w (has %d)", ErrIMSILength, len(s))
	}
	return nil
}

// IMSIKey packs a valid IMSI into a non-zero uint64 for compact
// duplicate detection: the value in the low 50 bits, the digit count
// (14 or 15) from bit 56.
func IMSIKey(s string) (uint64, bool) {
	if ValidIMSI(s) != nil {
		return 0, false
	}
	v, _ := decimal(s)
	return uint64(len(s))<<56 | v, true
}

// IMSIRange is a block of a PLMN's IMSIs. From and To (inclusive) bound the
// MSIN: when they are shorter than the MSIN they bound its leading digits
// (prefix ranges), so {From: "00", To: "09"} under 001-01 holds
// 00101 00 ... to 00101 09 .... Both empty means the whole PLMN. From and
// To have the same length.
type IMSIRange struct {
	PLMN PLMN
	From string
	To   string
}

// Valid checks the range's shape.
func (r IMSIRange) Valid() error {
	if err := r.PLMN.Valid(); err != nil {
		return err
	}
	if len(r.From) != len(r.To) {
		return fmt.Errorf("%w: from %q and to %q differ in length", ErrIMSIRange, r.From, r.To)
	}
	if r.From == "" {
		return nil
	}
	if digits(r.From, ErrIMSIRange) != nil || digits(r.To, ErrIMSIRange) != nil || r.From > r.To {
		return fmt.Errorf("%w: %q..%q", ErrIMSIRange, r.From, r.To)
	}
	if len(r.PLMN.Prefix())+len(r.From) > 15 {
		return fmt.Errorf("%w: longer than an IMSI", ErrIMSIRange)
	}
	return nil
}

// Contains reports whether imsi is in the range.
func (r IMSIRange) Contains(imsi string) bool {
	msin, ok := r.PLMN.MSIN(imsi)
	if !ok || r.Valid() != nil {
		return false
	}
	if r.From == "" {
		return true
	}
	if len(msin) < len(r.From) {
		return false
	}
	lead := msin[:len(r.From)] // same length: string order is numeric order
	return lead >= r.From && lead <= r.To
}

// String returns "MCC-MNC" or "MCC-MNC:FROM-TO".
func (r IMSIRange) String() string {
	if r.From == "" {
		return r.PLMN.String()
	}
	return r.PLMN.String() + ":" + r.From + "-" + r.To
}

// ParseIMSIRange parses "MCC-MNC" (the whole PLMN) or "MCC-MNC:FROM-TO".
func ParseIMSIRange(s string) (IMSIRange, error) {
	p, rng, hasRange := strings.Cut(s, ":")
	plmn, err := ParsePLMN(p)
	if err != nil {
		return IMSIRange{}, err
	}
	r := IMSIRange{PLMN: plmn}
	if hasRange {
		from, to, ok := strings.Cut(rng, "-")
		if !ok {
			return IMSIRange{}, fmt.Errorf("%w: %q", ErrIMSIRange, s)
		}
		r.From, r.To = from, to
	}
	return r, r.Valid()
}

// IMSIRanges is a partner's set of PLMNs and ranges.
type IMSIRanges []IMSIRange

// Contains reports whether imsi is in any of the ranges.
func (rs IMSIRanges) Contains(imsi string) bool {
	for _, r := range rs {
		if r.Contains(imsi) {
			return true
		}
	}
	return false
}

// Check returns nil when imsi is in one of the ranges, else an error
// wrapping ErrIMSINotInRange (or the IMSI's syntax error).
func (rs IMSIRanges) Check(imsi string) error {
	if err := ValidIMSI(imsi); err != nil {
		return err
	}
	if !rs.Contains(imsi) {
		return ErrIMSINotInRange
	}
	return nil
}
