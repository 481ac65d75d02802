package scp80

import (
	"crypto/subtle"
	"fmt"
	"hash/crc32"
)

// Checksum computes an RC or CC incrementally, in the manner of hash.Hash:
// Reset, Write the covered octets in order, then Sum. Create it once per
// key set and reuse it, or Rekey it for the next key set; it is not safe
// for concurrent use.
type Checksum struct {
	alg ChecksumAlg
	k   keyed
	bs  int
	// CBC-MAC / CMAC state: the running chain value, a partial block and,
	// for CMAC, the subkeys K1 and K2.
	x      [16]byte
	buf    [16]byte
	n      int
	k1, k2 [16]byte
	crc32  uint32
	crc16  uint16
	tmp    [16]byte // scratch for Sum, kept here so that it does not escape
}

// NewChecksum returns the checksum of alg under key (ignored for an RC).
func NewChecksum(alg ChecksumAlg, key []byte) (*Checksum, error) {
	c := new(Checksum)
	if err := c.Rekey(alg, key); err != nil {
		return nil, err
	}
	return c, nil
}

// Rekey makes c the checksum of alg under key, as NewChecksum does,
// reusing c itself: only the standard library's key schedules are
// allocated. On error c is left unusable until a successful Rekey.
func (c *Checksum) Rekey(alg ChecksumAlg, key []byte) error {
	c.alg, c.bs, c.k.block = ChecksumNone, 0, nil
	clear(c.k1[:])
	clear(c.k2[:])
	if !alg.KeyLengthOK(len(key)) {
		return fmt.Errorf("%w: %s takes no %d-octet key", ErrKeyLength, alg, len(key))
	}
	var err error
	switch alg {
	case ChecksumNone, ChecksumCRC16, ChecksumCRC32:
	case MACDES:
		err = c.k.rekey('d', key)
	case MAC3DES2, MAC3DES3:
		err = c.k.rekey('t', key)
	case MACAES:
		err = c.k.rekey('a', key)
	default:
		return fmt.Errorf("%w: checksum %s", ErrUnsupported, alg)
	}
	if err != nil {
		return err
	}
	c.alg = alg
	if c.k.block != nil {
		c.bs = c.k.block.BlockSize()
	}
	if alg == MACAES {
		c.cmacSubkeys()
	}
	c.Reset()
	return nil
}

// cmacSubkeys derives K1 and K2 of SP 800-38B §6.1.
func (c *Checksum) cmacSubkeys() {
	// The scratch field, not a local: a local passed to the interface's
	// Encrypt would escape, one allocation a card.
	l := &c.tmp
	clear(l[:])
	c.k.block.Encrypt(l[:], l[:])
	double(&c.k1, l)
	double(&c.k2, &c.k1)
	clear(l[:])
}

// double multiplies by x in GF(2^128) with the polynomial x^128+x^7+x^2+x+1.
func double(dst, src *[16]byte) {
	msb := src[0] >> 7
	for i := range 15 {
		dst[i] = src[i]<<1 | src[i+1]>>7
	}
	dst[15] = src[15]<<1 ^ byte(subtle.ConstantTimeByteEq(msb, 1))*0x87
}

// Algorithm returns the checksum's algorithm.
func (c *Checksum) Algorithm() ChecksumAlg { return c.alg }

// Size is the length of the checksum in octets: 2, 4 or 8.
func (c *Checksum) Size() int { return c.alg.Size() }

// Reset starts a new computation.
func (c *Checksum) Reset() {
	clear(c.x[:])
	clear(c.buf[:])
	c.n = 0
	c.crc32 = 0
	c.crc16 = 0xffff
}

// Write adds p to the covered octets. It never fails.
func (c *Checksum) Write(p []byte) (int, error) {
	n := len(p)
	switch c.alg {
	case ChecksumNone:
	case ChecksumCRC32:
		c.crc32 = crc32.Update(c.crc32, crc32.IEEETable, p)
	case ChecksumCRC16:
		c.crc16 = crc16Update(c.crc16, p)
	case MACAES:
		// CMAC keeps the last (possibly full) block back until Sum,
		// because the final block is treated differently.
		bs := c.bs
		for len(p) > 0 {
			if c.n == bs {
				subtle.XORBytes(c.x[:bs], c.x[:bs], c.buf[:bs])
				c.k.block.Encrypt(c.x[:bs], c.x[:bs])
				c.n = 0
			}
			k := copy(c.buf[c.n:bs], p)
			c.n += k
			p = p[k:]
		}
	default: // DES/3DES CBC-MAC
		bs := c.bs
		for len(p) > 0 {
			k := copy(c.buf[c.n:bs], p)
			c.n += k
			p = p[k:]
			if c.n == bs {
				subtle.XORBytes(c.x[:bs], c.x[:bs], c.buf[:bs])
				c.k.block.Encrypt(c.x[:bs], c.x[:bs])
				c.n = 0
			}
		}
	}
	return n, nil
}

// Sum appends the checksum of the octets written so far to b. It does not
// change the state, so more octets may be written afterwards.
func (c *Checksum) Sum(b []byte) []byte {
	switch c.alg {
	case ChecksumNone:
		return b
	case ChecksumCRC32:
		v := c.crc32
		return append(b, byte(v>>24), byte(v>>16), byte(v>>8), byte(v))
	case ChecksumCRC16:
		v := ^c.crc16
		return append(b, byte(v>>8), byte(v))
	case MACAES:
		last := c.tmp[:]
		clear(last)
		copy(last, c.buf[:c.n])
		if c.n == 16 {
			subtle.XORBytes(last, last, c.k1[:])
		} else {
			last[c.n] = 0x80
			subtle.XORBytes(last, last, c.k2[:])
		}
		subtle.XORBytes(last, last, c.x[:])
		c.k.block.Encrypt(last, last)
		return append(b, last[:8]...)
	default:
		x := c.tmp[:8]
		copy(x, c.x[:8])
		if c.n > 0 {
			// The partial block, zero-padded, is the last one.
			for i := range c.n {
				x[i] ^= c.buf[i]
			}
			c.k.block.Encrypt(x, x)
		}
		return append(b, x...)
	}
}

// Verify reports, in constant time, whether sum is the checksum of the
// octets written so far.
func (c *Checksum) Verify(sum []byte) bool {
	got := c.Sum(c.tmp[8:8])
	return len(sum) == len(got) && subtle.ConstantTimeCompare(sum, got) == 1
}

// crc16Table is the table of the reflected polynomial 0x8408 (CRC-16/X-25,
// the CRC-16 of TS 102 225 Annex B). It is computed once and never written.
var crc16Table = func() (t [256]uint16) {
	for i := range t {
		c := uint16(i)
		for range 8 {
			if c&1 != 0 {
				c = c>>1 ^ 0x8408
			} else {
				c >>= 1
			}
		}
		t[i] = c
	}
	return t
}()

func crc16Update(crc uint16, p []byte) uint16 {
	for _, b := range p {
		crc = crc>>8 ^ crc16Table[byte(crc)^b]
	}
	return crc
}
