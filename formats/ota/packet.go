package ota

import (
	"encoding/binary"
	"errors"
	"fmt"

	"resub/crypto/scp80"
)

// Params are the security parameters of one message: the SPI, the KIc and
// KID octets (algorithms and key versions) and the TAR.
type Params struct {
	SPI SPI
	KIc KIc
	KID KID
	TAR TAR
}

// Keys are the values of a key set: KIc for ciphering and KID for the
// checksum. A key the SPI does not use may be nil.
type Keys struct {
	KIc []byte
	KID []byte
}

// Codec holds the cipher and checksums of one key set under one set of
// Params and encodes and decodes command and response packets. Build it
// once per card and key set and reuse it, or Rekey it for the next card:
// encoding and decoding do not allocate beyond the caller's dst, and
// rekeying allocates only the standard library's key schedules. A Codec is
// not safe for concurrent use.
type Codec struct {
	p      Params
	cipher *scp80.Cipher   // nil unless the command or the PoR is ciphered
	cmdSum *scp80.Checksum // nil when the command carries no RC/CC
	porSum *scp80.Checksum // nil when the PoR carries no RC/CC
	// The states the pointers above point into, kept so that Rekey
	// reuses them.
	ownCipher      scp80.Cipher
	ownCmd, ownPoR scp80.Checksum
	keyed          bool // false after a failed Rekey
}

// errUnkeyed is returned by the encoders of a codec whose last Rekey
// failed: it must never emit a packet under half-built security.
var errUnkeyed = errors.New("ota: codec used after a failed Rekey")

// NewCodec builds the codec for p with the keys k. It fails when the SPI
// needs a key that k lacks, when a key has the wrong length for the
// algorithm its KIc/KID octet names, or when that algorithm is not
// supported (implicit, proprietary, digital signature). The key bytes are
// expanded into cipher state; the caller may zero k afterwards.
func NewCodec(p Params, k Keys) (*Codec, error) {
	c := new(Codec)
	if err := c.Rekey(p, k); err != nil {
		return nil, err
	}
	return c, nil
}

// Rekey makes c the codec of p with the keys k, as NewCodec does, reusing
// c's cipher and checksum states. On error c must not be used until a
// successful Rekey.
func (c *Codec) Rekey(p Params, k Keys) error {
	c.p, c.cipher, c.cmdSum, c.porSum, c.keyed = p, nil, nil, nil, false
	if r := p.SPI.Reserved(); r != 0 {
		return fmt.Errorf("ota: SPI %s has reserved bits set (%04x)", p.SPI, r)
	}
	if p.SPI.Ciphered() || p.SPI.PoRCiphered() {
		alg, err := p.KIc.Algorithm()
		if err != nil {
			return err
		}
		if k.KIc == nil {
			return fmt.Errorf("%w: KIc (SPI %s ciphers)", ErrNoKey, p.SPI)
		}
		if err := c.ownCipher.Rekey(alg, k.KIc); err != nil {
			return fmt.Errorf("ota: KIc %s: %w", p.KIc, err)
		}
		c.cipher = &c.ownCipher
	}
	var err error
	if c.cmdSum, err = rekeySum(&c.ownCmd, p.KID, p.SPI.Checksum(), k.KID); err != nil {
		return fmt.Errorf("ota: command checksum: %w", err)
	}
	if c.cmdSum != nil && p.SPI.PoRChecksum() == p.SPI.Checksum() {
		c.porSum = c.cmdSum // same algorithm and key: share the key schedule
	} else if c.porSum, err = rekeySum(&c.ownPoR, p.KID, p.SPI.PoRChecksum(), k.KID); err != nil {
		return fmt.Errorf("ota: PoR checksum: %w", err)
	}
	c.keyed = true
	return nil
}

// rekeySum makes s the checksum of kind under key, or returns nil when the
// SPI asks for none.
func rekeySum(s *scp80.Checksum, kid KID, kind scp80.ChecksumKind, key []byte) (*scp80.Checksum, error) {
	if kind == scp80.KindNone {
		return nil, nil
	}
	alg, err := kid.Algorithm(kind)
	if err != nil {
		return nil, err
	}
	if alg.NeedsKey() && key == nil {
		return nil, fmt.Errorf("%w: KID (SPI asks for a %s)", ErrNoKey, kind)
	}
	if !alg.NeedsKey() {
		key = nil
	}
	if err := s.Rekey(alg, key); err != nil {
		return nil, fmt.Errorf("KID %s: %w", kid, err)
	}
	return s, nil
}

// Params returns the codec's parameters.
func (c *Codec) Params() Params { return c.p }

func sumSize(s *scp80.Checksum) int {
	if s == nil {
		return 0
	}
	return s.Size()
}

// CommandLen returns the length of the command packet (CPL to the end)
// that carries n octets of secured data.
func (c *Codec) CommandLen(n int) int {
	cs := sumSize(c.cmdSum)
	pad := 0
	if c.p.SPI.Ciphered() {
		pad = padLen(6+cs+n, c.cipher.BlockSize())
	}
	return 2 + 1 + 13 + cs + n + pad
}

func padLen(n, bs int) int { return (bs - n%bs) % bs }

// EncodeCommand appends to dst the command packet, from CPL to the end,
// that carries data (the secured data: an RFM script) under counter. The
// counter is always written; whether the card checks it is the SPI's
// business.
func (c *Codec) EncodeCommand(dst []byte, counter uint64, data []byte) ([]byte, error) {
	if !c.keyed {
		return dst, errUnkeyed
	}
	if counter > MaxCounter {
		return dst, fmt.Errorf("ota: counter %d exceeds 5 octets", counter)
	}
	cs := sumSize(c.cmdSum)
	total := c.CommandLen(len(data))
	if total-2 > 0xffff {
		return dst, fmt.Errorf("%w: %d octets", ErrTooLong, total)
	}
	pad := total - (16 + cs + len(data))
	start := len(dst)
	dst = append(dst, make([]byte, total)...)
	p := dst[start:]
	binary.BigEndian.PutUint16(p[0:], uint16(total-2))
	p[2] = byte(13 + cs)
	binary.BigEndian.PutUint16(p[3:], uint16(c.p.SPI))
	p[5] = byte(c.p.KIc)
	p[6] = byte(c.p.KID)
	copy(p[7:10], c.p.TAR[:])
	putCounter(p[10:15], counter)
	p[15] = byte(pad)
	body := p[16+cs:]
	copy(body, data) // padding octets are already zero
	if c.cmdSum != nil {
		c.cmdSum.Reset()
		c.cmdSum.Write(p[:16])
		c.cmdSum.Write(body)
		c.cmdSum.Sum(p[16:16])
	}
	if c.p.SPI.Ciphered() {
		if err := c.cipher.Encrypt(p[10:], p[10:]); err != nil {
			return dst[:start], err
		}
	}
	return dst, nil
}

func putCounter(b []byte, v uint64) {
	for i := 4; i >= 0; i-- {
		b[i] = byte(v)
		v >>= 8
	}
}

func getCounter(b []byte) uint64 {
	var v uint64
	for _, x := range b[:5] {
		v = v<<8 | uint64(x)
	}
	return v
}

// CommandHeader is the clear part of a command packet.
type CommandHeader struct {
	Params
	CPL int // declared length after CPL
	CHL int // declared header length
}

// ParseCommandHeader reads the clear header of a command packet (CPL to
// TAR), so that a card can choose the key set by the KIc/KID key versions
// before building a Codec. It checks CPL against the packet length.
func ParseCommandHeader(pkt []byte) (CommandHeader, error) {
	var h CommandHeader
	if len(pkt) < 16 {
		return h, fmt.Errorf("%w: command packet of %d octets", ErrFormat, len(pkt))
	}
	h.CPL = int(binary.BigEndian.Uint16(pkt))
	h.CHL = int(pkt[2])
	h.SPI = SPI(binary.BigEndian.Uint16(pkt[3:]))
	h.KIc = KIc(pkt[5])
	h.KID = KID(pkt[6])
	copy(h.TAR[:], pkt[7:10])
	if h.CPL != len(pkt)-2 {
		return h, fmt.Errorf("%w: CPL %d but %d octets follow", ErrFormat, h.CPL, len(pkt)-2)
	}
	if h.CHL < 13 || 1+h.CHL > h.CPL {
		return h, fmt.Errorf("%w: CHL %d", ErrFormat, h.CHL)
	}
	return h, nil
}

// Command is a decoded command packet.
type Command struct {
	Header  CommandHeader
	Counter uint64
	PCNTR   int
	// Data is the secured data without padding. It aliases the packet
	// passed to DecodeCommand.
	Data []byte
}

// DecodeCommand deciphers pkt in place (when ciphered), checks its lengths
// and its RC/CC, and returns the command. On ErrChecksum the returned
// command carries the header and counter (for the PoR) but its data must
// not be acted on.
func (c *Codec) DecodeCommand(pkt []byte) (Command, error) {
	var cmd Command
	h, err := ParseCommandHeader(pkt)
	cmd.Header = h
	if err != nil {
		return cmd, err
	}
	if h.SPI != c.p.SPI || h.KIc != c.p.KIc || h.KID != c.p.KID {
		return cmd, fmt.Errorf("%w: SPI %s KIc %s KID %s", ErrHeader, h.SPI, h.KIc, h.KID)
	}
	cs := sumSize(c.cmdSum)
	if h.CHL != 13+cs {
		return cmd, fmt.Errorf("%w: CHL %d, SPI implies %d", ErrFormat, h.CHL, 13+cs)
	}
	secured := pkt[10:]
	if len(secured) < 6+cs {
		return cmd, fmt.Errorf("%w: secured part of %d octets", ErrFormat, len(secured))
	}
	if h.SPI.Ciphered() {
		if len(secured)%c.cipher.BlockSize() != 0 {
			return cmd, fmt.Errorf("%w: %d octets are not whole blocks", ErrCipher, len(secured))
		}
		if err := c.cipher.Decrypt(secured, secured); err != nil {
			return cmd, fmt.Errorf("%w: %v", ErrCipher, err)
		}
	}
	cmd.Counter = getCounter(secured)
	cmd.PCNTR = int(secured[5])
	body := secured[6+cs:]
	if c.cmdSum != nil {
		c.cmdSum.Reset()
		c.cmdSum.Write(pkt[:16])
		c.cmdSum.Write(body)
		if !c.cmdSum.Verify(secured[6 : 6+cs]) {
			return cmd, ErrChecksum
		}
	}
	if cmd.PCNTR > len(body) {
		return cmd, fmt.Errorf("%w: padding counter %d exceeds %d octets of data", ErrCipher, cmd.PCNTR, len(body))
	}
	cmd.Data = body[:len(body)-cmd.PCNTR]
	return cmd, nil
}
