package ota

import "errors"

// refusal is a sentinel error that classifies itself as a refused input.
type refusal string

func (r refusal) Error() string { return string(r) }

// Refused reports true: the input was refused.
func (refusal) Refused() bool { return true }

// Errors returned by this package; test with errors.Is.
var (
	// ErrChecksum: the RC/CC of a packet does not match. Nothing read from
	// such a packet may be acted on.
	ErrChecksum error = refusal("ota: checksum mismatch")
	// ErrFormat: a packet, segment or PoR is malformed (lengths, headers).
	ErrFormat error = refusal("ota: malformed packet")
	// ErrCipher: the ciphered part cannot be deciphered (length not a
	// multiple of the block size, padding counter out of range).
	ErrCipher error = refusal("ota: ciphering error")
	// ErrNoKey: the SPI uses a key that was not given.
	ErrNoKey = errors.New("ota: the SPI needs a key that was not given")
	// ErrTooLong: the packet does not fit its length fields or 255 SMS.
	ErrTooLong = errors.New("ota: packet too long")
	// ErrHeader: a packet's SPI, KIc or KID differs from the codec's.
	ErrHeader error = refusal("ota: packet header differs from the key set")
)
