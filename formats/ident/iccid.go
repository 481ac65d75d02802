package ident

import (
	"errors"
	"fmt"
)

// ICCID errors.
var (
	ErrICCIDDigits  = errors.New("ICCID must be decimal digits")
	ErrICCIDPrefix  = errors.New("ICCID must start with 89 (telecommunication, E.118)")
	ErrICCIDLength  = errors.New("ICCID must have 18 to 20 digits")
	ErrICCIDLuhn    = errors.New("ICCID check digit (Luhn) is wrong")
	ErrICCIDPadding = errors.New("ICCID has an F-padded nibble, which this partner does not use")
)

// ICCIDOptions are a partner's vendor conventions. The zero value is strict
// E.118: 18 to 20 digits including a Luhn check digit.
type ICCIDOptions struct {
	// NoCheckDigit: the partner writes 19-digit ICCIDs without the check
	// digit. A 19-digit value is then the body; normalising appends the
	// Luhn digit (20 digits). Values of 18 and 20 digits still carry one.
	NoCheckDigit bool
	// FPadding: the partner pads a 19-digit ICCID to 20 nibbles with a
	// trailing 'F' (as in the BCD of EF_ICCID). Normalising strips it.
	FPadding bool
}

// LuhnDigit returns the Luhn check digit ('0'..'9') of a string of decimal
// digits, as ITU-T E.118 Annex B computes it: from the rightmost digit,
// every second digit is doubled (digits of the product summed), and the
// check digit brings the sum to a multiple of 10.
func LuhnDigit(body string) (byte, error) {
	if body == "" {
		return 0, ErrICCIDDigits
	}
	sum := 0
	double := true
	for i := len(body) - 1; i >= 0; i-- {
		c := body[i]
		if c < '0' || c > '9' {
			return 0, ErrICCIDDigits
		}
		d := int(c - '0')
		if double {
			d *= 2
			if d > 9 {
				d -= 9
			}
		}
		sum += d
		double = !double
	}
	return byte('0' + (10-sum%10)%10), nil
}

// NormalizeICCID checks s under the partner's conventions and returns the
// canonical form: E.118 digits including the check digit, no padding.
func NormalizeICCID(s string, o ICCIDOptions) (string, error) {
	if len(s) == 20 && (s[19] == 'F' || s[19] == 'f') {
		if !o.FPadding {
			return "", ErrICCIDPadding
		}
		s = s[:19]
		if err := digits(s, ErrICCIDDigits); err != nil {
			return "", err
		}
		return s, checkICCID(s)
	}
	if err := digits(s, ErrICCIDDigits); err != nil {
		return "", err
	}
	if o.NoCheckDigit && len(s) == 19 {
		if s[0] != '8' || s[1] != '9' {
			return "", ErrICCIDPrefix
		}
		d, _ := LuhnDigit(s)
		return s + string(d), nil
	}
	return s, checkICCID(s)
}

// ValidICCID reports whether s is a strict E.118 ICCID: 89, 18 to 20
// digits, Luhn check digit last.
func ValidICCID(s string) error {
	if err := digits(s, ErrICCIDDigits); err != nil {
		return err
	}
	return checkICCID(s)
}

func checkICCID(s string) error {
	if len(s) < 18 || len(s) > 20 {
		return fmt.Errorf("%w (has %d)", ErrICCIDLength, len(s))
	}
	if s[0] != '8' || s[1] != '9' {
		return ErrICCIDPrefix
	}
	want, _ := LuhnDigit(s[:len(s)-1])
	if s[len(s)-1] != want {
		return fmt.Errorf("%w: last digit %c, expected %c", ErrICCIDLuhn, s[len(s)-1], want)
	}
	return nil
}

// ICCIDKey packs a canonical ICCID (as NormalizeICCID returns) into a
// non-zero uint64 for compact duplicate detection: the digits after "89"
// (at most 18, below 2^60) in the low 60 bits, and the length (18, 19 or
// 20 as 1, 2 or 3) in the top 4 bits so that leading zeros stay distinct.
// ok is false for anything else.
func ICCIDKey(s string) (key uint64, ok bool) {
	if len(s) < 18 || len(s) > 20 || s[0] != '8' || s[1] != '9' {
		return 0, false
	}
	v, ok := decimal(s[2:])
	if !ok {
		return 0, false
	}
	return uint64(len(s)-17)<<60 | v, true
}

// decimal parses up to 19 decimal digits.
func decimal(s string) (uint64, bool) {
	if s == "" || len(s) > 19 {
		return 0, false
	}
	var v uint64
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		v = v*10 + uint64(c-'0')
	}
	return v, true
}

func digits(s string, err error) error {
	if s == "" {
		return err
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return err
		}
	}
	return nil
}
