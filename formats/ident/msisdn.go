package ident

import (
	"errors"
	"fmt"
)

// ErrMSISDN reports a number that is not E.164.
var ErrMSISDN = errors.New("MSISDN must be an E.164 number: country code first (not 0), 3 to 15 digits")

// NormalizeMSISDN accepts an E.164 number with or without a leading '+'
// and returns its digits (how resub's files carry it).
func NormalizeMSISDN(s string) (string, error) {
	if len(s) > 0 && s[0] == '+' {
		s = s[1:]
	}
	return s, ValidMSISDN(s)
}

// ValidMSISDN checks an MSISDN in international format without '+': 3 to
// 15 decimal digits, the first (country code) not 0.
func ValidMSISDN(s string) error {
	if digits(s, ErrMSISDN) != nil {
		return ErrMSISDN
	}
	if len(s) < 3 || len(s) > 15 {
		return fmt.Errorf("%w (has %d digits)", ErrMSISDN, len(s))
	}
	if s[0] == '0' {
		return fmt.Errorf("%w (starts with 0)", ErrMSISDN)
	}
	return nil
}
