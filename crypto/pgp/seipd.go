package pgp

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/sha1"
	"crypto/subtle"
	"errors"
	"hash"
	"io"

	"github.com/ProtonMail/go-crypto/openpgp/packet"
)

// seipdReader decrypts a version 1 Symmetrically Encrypted Integrity
// Protected Data packet (RFC 4880 §5.13) under AES: CFB with a zero IV
// and no resynchronisation over a random prefix of block size + 2 bytes
// (whose last two bytes repeat), the plaintext, and a 22-byte MDC packet
// (0xd3 0x14, then SHA-1 of everything before it including those two
// bytes). It does the same as the library's reader, block-wise rather than
// byte-wise; the library still handles every other packet version.
type seipdReader struct {
	src   io.Reader
	block cipher.Block
	fre   [aes.BlockSize]byte // CFB feedback: the last ciphertext block
	ks    [aes.BlockSize]byte // keystream of the current block
	used  int                 // keystream bytes used
	h     hash.Hash           // MDC
	buf   []byte
	start int // plaintext not yet returned is buf[start:end-mdcLen]
	end   int
	eof   bool
	err   error
}

const mdcLen = 22

var (
	errQuickCheck = errors.New("session key quick check failed")
	errMDC        = errors.New("modification detection code mismatch")
)

func isAES(c packet.CipherFunction) bool {
	return c == packet.CipherAES128 || c == packet.CipherAES192 || c == packet.CipherAES256
}

// newSEIPDReader starts decryption; prefix is the packet's first
// aes.BlockSize+2 bytes of ciphertext, read once by the caller so that
// several session keys can be tried.
func newSEIPDReader(src io.Reader, prefix, key []byte) (*seipdReader, error) {
	b, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	r := &seipdReader{src: src, block: b, used: aes.BlockSize, h: sha1.New(), buf: make([]byte, 128<<10)}
	p := make([]byte, len(prefix))
	r.xor(p, prefix)
	bs := aes.BlockSize
	if subtle.ConstantTimeCompare(p[bs-2:bs], p[bs:bs+2]) != 1 {
		return nil, errQuickCheck
	}
	r.h.Write(p)
	return r, nil
}

// xor decrypts src into dst (which may be src) in CFB mode.
func (r *seipdReader) xor(dst, src []byte) {
	const bs = aes.BlockSize
	for len(src) > 0 {
		if r.used == bs && len(src) >= bs {
			r.block.Encrypt(r.ks[:], r.fre[:])
			copy(r.fre[:], src[:bs])
			subtle.XORBytes(dst[:bs], src[:bs], r.ks[:])
			dst, src = dst[bs:], src[bs:]
			continue
		}
		if r.used == bs {
			r.block.Encrypt(r.ks[:], r.fre[:])
			r.used = 0
		}
		c := src[0]
		dst[0] = c ^ r.ks[r.used]
		r.fre[r.used] = c
		r.used++
		dst, src = dst[1:], src[1:]
	}
}

func (r *seipdReader) Read(p []byte) (int, error) {
	for {
		if avail := r.end - r.start - mdcLen; avail > 0 {
			n := copy(p, r.buf[r.start:r.start+avail])
			r.h.Write(p[:n])
			r.start += n
			return n, nil
		}
		if r.err != nil {
			return 0, r.err
		}
		if r.eof {
			if r.end-r.start < mdcLen {
				r.err = io.ErrUnexpectedEOF
				return 0, r.err
			}
			return 0, io.EOF
		}
		if r.start > 0 {
			r.end = copy(r.buf, r.buf[r.start:r.end])
			r.start = 0
		}
		n, err := r.src.Read(r.buf[r.end:])
		r.xor(r.buf[r.end:r.end+n], r.buf[r.end:r.end+n])
		r.end += n
		if err == io.EOF {
			r.eof = true
		} else if err != nil {
			r.err = err
		}
	}
}

// Close reads to the end and checks the MDC.
func (r *seipdReader) Close() error {
	if _, err := io.Copy(io.Discard, r); err != nil {
		return err
	}
	tail := r.buf[r.start:r.end]
	if len(tail) != mdcLen || tail[0] != 0xd3 || tail[1] != 0x14 {
		return errMDC
	}
	r.h.Write(tail[:2])
	if subtle.ConstantTimeCompare(r.h.Sum(nil), tail[2:]) != 1 {
		return errMDC
	}
	return nil
}
