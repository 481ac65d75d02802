package ota

import (
	"errors"
	"fmt"
)

// ErrIMSI is returned for an IMSI that is not 6 to 15 decimal digits, or
// EF_IMSI contents that do not decode to one.
var ErrIMSI = errors.New("ota: invalid IMSI")

// EFIMSILen is the size of EF_IMSI.
const EFIMSILen = 9

// EncodeIMSI returns the EF_IMSI contents for imsi (TS 31.102 §4.2.2):
// length octet, then digit 1 with the parity/type nibble (9 odd, 1 even),
// then two digits per octet low nibble first, unused nibbles F.
func EncodeIMSI(imsi string) ([EFIMSILen]byte, error) {
	var b [EFIMSILen]byte
	if len(imsi) < 6 || len(imsi) > 15 {
		return b, fmt.Errorf("%w: %d digits", ErrIMSI, len(imsi))
	}
	for i := range len(imsi) {
		if imsi[i] < '0' || imsi[i] > '9' {
			return b, fmt.Errorf("%w: not all digits", ErrIMSI)
		}
	}
	for i := range b {
		b[i] = 0xff
	}
	b[0] = byte((len(imsi) + 2) / 2)
	parity := byte(0x1)
	if len(imsi)%2 == 1 {
		parity = 0x9
	}
	// Nibble k (k = 0 is the parity nibble) sits in octet 1+k/2, low
	// nibble for even k.
	setNibble := func(k int, v byte) {
		o := 1 + k/2
		if k%2 == 0 {
			b[o] = b[o]&0xf0 | v
		} else {
			b[o] = b[o]&0x0f | v<<4
		}
	}
	setNibble(0, parity)
	for i := range len(imsi) {
		setNibble(i+1, imsi[i]-'0')
	}
	return b, nil
}

// DecodeIMSI reads EF_IMSI contents back into digits.
func DecodeIMSI(b []byte) (string, error) {
	if len(b) < 2 || b[0] < 1 || int(b[0]) > len(b)-1 || b[0] > 8 {
		return "", fmt.Errorf("%w: EF_IMSI length octet", ErrIMSI)
	}
	var digits []byte
	n := int(b[0]) * 2 // nibbles including the parity nibble
	for k := 1; k < n; k++ {
		o := 1 + k/2
		v := b[o] & 0x0f
		if k%2 == 1 {
			v = b[o] >> 4
		}
		if v == 0xf && k == n-1 {
			break
		}
		if v > 9 {
			return "", fmt.Errorf("%w: nibble %x", ErrIMSI, v)
		}
		digits = append(digits, '0'+v)
	}
	odd := b[1]&0x0f == 0x9
	if b[1]&0x07 != 0x1 || odd != (len(digits)%2 == 1) {
		return "", fmt.Errorf("%w: parity/type nibble %x for %d digits", ErrIMSI, b[1]&0x0f, len(digits))
	}
	return string(digits), nil
}

// PLMN is a mobile country and network code.
type PLMN struct {
	MCC string // 3 digits
	MNC string // 2 or 3 digits
}

// PLMNFromIMSI splits an IMSI's PLMN off, given the MNC length (which the
// IMSI does not reveal; the card keeps it in EF_AD).
func PLMNFromIMSI(imsi string, mncLen int) (PLMN, error) {
	if mncLen != 2 && mncLen != 3 {
		return PLMN{}, fmt.Errorf("ota: MNC length %d", mncLen)
	}
	if len(imsi) < 3+mncLen {
		return PLMN{}, fmt.Errorf("%w: too short", ErrIMSI)
	}
	return PLMN{MCC: imsi[:3], MNC: imsi[3 : 3+mncLen]}, nil
}

func (p PLMN) String() string { return p.MCC + p.MNC }

// Encode returns the three-octet BCD coding of TS 24.008 §10.5.1.3:
// MCC2 MCC1 | MNC3 MCC3 | MNC2 MNC1, MNC3 = F for a two-digit MNC.
// 262/42 gives 62 F2 24.
func (p PLMN) Encode() ([3]byte, error) {
	var b [3]byte
	d := func(s string, i int) (byte, error) {
		if i >= len(s) {
			return 0xf, nil
		}
		if s[i] < '0' || s[i] > '9' {
			return 0, fmt.Errorf("ota: PLMN %s%s is not decimal", p.MCC, p.MNC)
		}
		return s[i] - '0', nil
	}
	if len(p.MCC) != 3 || (len(p.MNC) != 2 && len(p.MNC) != 3) {
		return b, fmt.Errorf("ota: PLMN %q/%q needs a 3-digit MCC and a 2- or 3-digit MNC", p.MCC, p.MNC)
	}
	var v [6]byte
	var err error
	for i, src := range []struct {
		s string
		i int
	}{{p.MCC, 0}, {p.MCC, 1}, {p.MCC, 2}, {p.MNC, 0}, {p.MNC, 1}, {p.MNC, 2}} {
		if v[i], err = d(src.s, src.i); err != nil {
			return b, err
		}
	}
	b[0] = v[1]<<4 | v[0]
	b[1] = v[5]<<4 | v[2]
	b[2] = v[4]<<4 | v[3]
	return b, nil
}

// DecodePLMN reads the three-octet BCD coding.
func DecodePLMN(b []byte) (PLMN, error) {
	if len(b) != 3 {
		return PLMN{}, fmt.Errorf("ota: PLMN of %d octets", len(b))
	}
	n := [6]byte{b[0] & 0xf, b[0] >> 4, b[1] & 0xf, b[2] & 0xf, b[2] >> 4, b[1] >> 4}
	var s []byte
	for i, v := range n {
		if v == 0xf && i == 5 {
			break
		}
		if v > 9 {
			return PLMN{}, fmt.Errorf("ota: PLMN nibble %x", v)
		}
		s = append(s, '0'+v)
	}
	return PLMN{MCC: string(s[:3]), MNC: string(s[3:])}, nil
}
