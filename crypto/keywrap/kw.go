package keywrap

import (
	"crypto/cipher"
	"crypto/subtle"
	"encoding/binary"
)

// RFC 3394 default IV and RFC 5649 alternative IV prefix.
var (
	kwIV   = [8]byte{0xa6, 0xa6, 0xa6, 0xa6, 0xa6, 0xa6, 0xa6, 0xa6}
	kwpAIV = [4]byte{0xa6, 0x59, 0x59, 0xa6}
)

// wrapCore is the RFC 3394 §2.2.1 wrapping process over n >= 2 64-bit
// blocks with initial value a.
func wrapCore(b cipher.Block, a [8]byte, p []byte) []byte {
	n := len(p) / 8
	out := make([]byte, 8+len(p))
	copy(out[8:], p)
	var buf [16]byte
	for j := 0; j < 6; j++ {
		for i := 1; i <= n; i++ {
			copy(buf[:8], a[:])
			copy(buf[8:], out[8*i:8*i+8])
			b.Encrypt(buf[:], buf[:])
			t := uint64(n*j + i)
			binary.BigEndian.PutUint64(a[:], binary.BigEndian.Uint64(buf[:8])^t)
			copy(out[8*i:], buf[8:])
		}
	}
	copy(out[:8], a[:])
	clear(buf[:])
	return out
}

// unwrapCore inverts wrapCore and returns the initial value and plaintext.
func unwrapCore(b cipher.Block, c []byte) ([8]byte, []byte) {
	n := len(c)/8 - 1
	var a [8]byte
	copy(a[:], c[:8])
	r := make([]byte, 8*n)
	copy(r, c[8:])
	var buf [16]byte
	for j := 5; j >= 0; j-- {
		for i := n; i >= 1; i-- {
			t := uint64(n*j + i)
			binary.BigEndian.PutUint64(buf[:8], binary.BigEndian.Uint64(a[:])^t)
			copy(buf[8:], r[8*(i-1):8*i])
			b.Decrypt(buf[:], buf[:])
			copy(a[:], buf[:8])
			copy(r[8*(i-1):], buf[8:])
		}
	}
	clear(buf[:])
	return a, r
}

// kwWrap is RFC 3394 key wrap: plaintext of at least 16 bytes, a multiple
// of 8.
func kwWrap(b cipher.Block, p []byte) ([]byte, error) {
	if len(p) < 16 || len(p)%8 != 0 {
		return nil, ErrBadLength
	}
	return wrapCore(b, kwIV, p), nil
}

func kwUnwrap(b cipher.Block, c []byte) ([]byte, error) {
	if len(c) < 24 || len(c)%8 != 0 {
		return nil, ErrBadLength
	}
	a, p := unwrapCore(b, c)
	if subtle.ConstantTimeCompare(a[:], kwIV[:]) != 1 {
		clear(p)
		return nil, ErrUnwrap
	}
	return p, nil
}

// kwpWrap is RFC 5649 key wrap with padding.
func kwpWrap(b cipher.Block, p []byte) ([]byte, error) {
	if len(p) == 0 || uint64(len(p)) > 1<<32-1 {
		return nil, ErrBadLength
	}
	var aiv [8]byte
	copy(aiv[:4], kwpAIV[:])
	binary.BigEndian.PutUint32(aiv[4:], uint32(len(p)))
	padded := make([]byte, (len(p)+7)/8*8)
	copy(padded, p)
	defer clear(padded)
	if len(padded) == 8 {
		out := make([]byte, 16)
		copy(out, aiv[:])
		copy(out[8:], padded)
		b.Encrypt(out, out)
		return out, nil
	}
	return wrapCore(b, aiv, padded), nil
}

func kwpUnwrap(b cipher.Block, c []byte) ([]byte, error) {
	if len(c) < 16 || len(c)%8 != 0 {
		return nil, ErrBadLength
	}
	var (
		a [8]byte
		p []byte
	)
	if len(c) == 16 {
		var buf [16]byte
		b.Decrypt(buf[:], c)
		copy(a[:], buf[:8])
		p = append([]byte(nil), buf[8:]...)
		clear(buf[:])
	} else {
		a, p = unwrapCore(b, c)
	}
	mli := int(binary.BigEndian.Uint32(a[4:]))
	ok := subtle.ConstantTimeCompare(a[:4], kwpAIV[:])
	if mli <= len(p)-8 || mli > len(p) {
		ok = 0
	}
	if ok == 1 {
		var pad byte
		for _, x := range p[mli:] {
			pad |= x
		}
		ok &= subtle.ConstantTimeByteEq(pad, 0)
	}
	if ok != 1 {
		clear(p)
		return nil, ErrUnwrap
	}
	clear(p[mli:])
	return p[:mli], nil
}
