package ota

import (
	"encoding/hex"
	"fmt"

	"resub/crypto/scp80"
)

// SPI is the two-octet security parameter indicator (TS 102 225 §5.1.1,
// TS 31.115 §4.1), first octet in the high byte: SPI(0x1639) is 16 39.
type SPI uint16

// CounterMode is SPI first octet b5b4.
type CounterMode uint8

// The counter modes.
const (
	CounterNone      CounterMode = iota // no counter
	CounterAvailable                    // counter available, no replay or sequence checking
	CounterHigher                       // process only if CNTR is higher than the card's
	CounterNext                         // process only if CNTR is the card's plus one
)

func (m CounterMode) String() string {
	return [...]string{"no counter", "counter available, not checked", "counter must be higher", "counter must be one higher"}[m&3]
}

// PoRMode is SPI second octet b2b1.
type PoRMode uint8

// The PoR modes.
const (
	PoRNone     PoRMode = iota // no PoR
	PoRRequired                // PoR required
	PoROnError                 // PoR only on error
	PoRReserved                // reserved coding
)

func (m PoRMode) String() string {
	return [...]string{"no PoR", "PoR required", "PoR on error", "reserved"}[m&3]
}

// Checksum is the kind of integrity value of the command (b2b1).
func (s SPI) Checksum() scp80.ChecksumKind { return scp80.ChecksumKind(s >> 8 & 3) }

// Ciphered reports whether the command is ciphered (b3).
func (s SPI) Ciphered() bool { return s>>8&0x04 != 0 }

// Counter is the counter mode (b5b4).
func (s SPI) Counter() CounterMode { return CounterMode(s >> 11 & 3) }

// PoR is the PoR mode (second octet b2b1).
func (s SPI) PoR() PoRMode { return PoRMode(s & 3) }

// PoRChecksum is the kind of integrity value of the PoR (second octet b4b3).
func (s SPI) PoRChecksum() scp80.ChecksumKind { return scp80.ChecksumKind(s >> 2 & 3) }

// PoRCiphered reports whether the PoR is ciphered (second octet b5).
func (s SPI) PoRCiphered() bool { return s&0x10 != 0 }

// PoRViaSubmit reports whether the PoR is sent by SMS-SUBMIT rather than in
// the SMS-DELIVER-REPORT (second octet b6, TS 31.115).
func (s SPI) PoRViaSubmit() bool { return s&0x20 != 0 }

// Reserved returns the reserved bits that are set (0 when the SPI is clean).
func (s SPI) Reserved() uint16 {
	r := uint16(s) & 0xe0c0
	if s.PoR() == PoRReserved {
		r |= 3
	}
	return r
}

// String is the four hex digits, lower case.
func (s SPI) String() string { return fmt.Sprintf("%04x", uint16(s)) }

// Describe spells out every bit, for engineers.
func (s SPI) Describe() string {
	return fmt.Sprintf("command: %s, ciphered=%t, %s; PoR: %s, %s, ciphered=%t, via SMS-SUBMIT=%t",
		s.Checksum(), s.Ciphered(), s.Counter(), s.PoR(), s.PoRChecksum(), s.PoRCiphered(), s.PoRViaSubmit())
}

// KIc is the key and algorithm identifier for ciphering (TS 102 225 §5.1.2).
type KIc byte

// KeyVersion is the key set (KVN 1..15) in b8..b5.
func (k KIc) KeyVersion() int { return int(k >> 4) }

// Algorithm decodes b4..b1.
func (k KIc) Algorithm() (scp80.CipherAlg, error) { return scp80.CipherFromKIc(byte(k)) }

func (k KIc) String() string { return fmt.Sprintf("%02x", byte(k)) }

// KID is the key and algorithm identifier for RC/CC/DS (TS 102 225
// §5.1.3); its algorithm bits mean different things for RC and CC.
type KID byte

// KeyVersion is the key set (KVN 1..15) in b8..b5.
func (k KID) KeyVersion() int { return int(k >> 4) }

// Algorithm decodes b4..b1 for the given kind of checksum.
func (k KID) Algorithm(kind scp80.ChecksumKind) (scp80.ChecksumAlg, error) {
	return scp80.ChecksumFromKID(byte(k), kind)
}

func (k KID) String() string { return fmt.Sprintf("%02x", byte(k)) }

// TAR is the three-octet toolkit application reference (TS 101 220).
type TAR [3]byte

func (t TAR) String() string { return hex.EncodeToString(t[:]) }

// ParseTAR reads six hex digits.
func ParseTAR(s string) (TAR, error) {
	var t TAR
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != 3 {
		return t, fmt.Errorf("ota: TAR %q is not 6 hex digits", s)
	}
	copy(t[:], b)
	return t, nil
}

// MaxCounter is the largest value of the five-octet CNTR.
const MaxCounter = 1<<40 - 1

// ParseSPI reads four hex digits ("1639").
func ParseSPI(s string) (SPI, error) {
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != 2 {
		return 0, fmt.Errorf("ota: SPI %q is not 4 hex digits", s)
	}
	return SPI(uint16(b[0])<<8 | uint16(b[1])), nil
}

func parseOctet(what, s string) (byte, error) {
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != 1 {
		return 0, fmt.Errorf("ota: %s %q is not 2 hex digits", what, s)
	}
	return b[0], nil
}

// ParseKIc reads two hex digits ("15").
func ParseKIc(s string) (KIc, error) {
	b, err := parseOctet("KIc", s)
	return KIc(b), err
}

// ParseKID reads two hex digits ("15").
func ParseKID(s string) (KID, error) {
	b, err := parseOctet("KID", s)
	return KID(b), err
}
