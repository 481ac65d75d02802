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

// seipdWriter writes a version 1 SEIPD packet under AES-256 with partial
// body lengths of 64 KiB, as GnuPG does for streams: the block-wise
// counterpart of seipdReader. Close writes the MDC and the final chunk; it
// does not close the underlying writer.
type seipdWriter struct {
	w      io.Writer
	block  cipher.Block
	fre    [aes.BlockSize]byte
	ks     [aes.BlockSize]byte
	used   int
	h      hash.Hash
	buf    []byte // ciphertext not yet written, at most partialChunk
	err    error
	closed bool
}

const (
	packetTagSEIPD = 0xc0 | 18 // new-format packet tag 18
	partialChunk   = 1 << 16
	partialLenByte = 0xe0 | 16 // partial body length 2^16
)

func newSEIPDWriter(w io.Writer, key []byte, rand io.Reader) (*seipdWriter, error) {
	b, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	s := &seipdWriter{w: w, block: b, used: aes.BlockSize, h: sha1.New(), buf: make([]byte, 0, partialChunk)}
	if _, err := w.Write([]byte{packetTagSEIPD}); err != nil {
		return nil, err
	}
	prefix := make([]byte, aes.BlockSize+2)
	if _, err := io.ReadFull(rand, prefix[:aes.BlockSize]); err != nil {
		return nil, err
	}
	copy(prefix[aes.BlockSize:], prefix[aes.BlockSize-2:aes.BlockSize])
	s.buf = append(s.buf, 1) // packet version, in the clear
	s.h.Write(prefix)
	s.encrypt(prefix)
	return s, nil
}

// encrypt appends the CFB encryption of p to buf; len(buf)+len(p) must
// fit in its capacity.
func (s *seipdWriter) encrypt(p []byte) {
	const bs = aes.BlockSize
	off := len(s.buf)
	s.buf = s.buf[:off+len(p)]
	dst := s.buf[off:]
	for len(p) > 0 {
		if s.used == bs && len(p) >= bs {
			s.block.Encrypt(s.ks[:], s.fre[:])
			subtle.XORBytes(dst[:bs], p[:bs], s.ks[:])
			copy(s.fre[:], dst[:bs])
			dst, p = dst[bs:], p[bs:]
			continue
		}
		if s.used == bs {
			s.block.Encrypt(s.ks[:], s.fre[:])
			s.used = 0
		}
		c := p[0] ^ s.ks[s.used]
		dst[0] = c
		s.fre[s.used] = c
		s.used++
		dst, p = dst[1:], p[1:]
	}
}

func (s *seipdWriter) Write(p []byte) (int, error) {
	if s.err != nil {
		return 0, s.err
	}
	if s.closed {
		return 0, errors.New("pgp: write after close")
	}
	total := len(p)
	s.h.Write(p)
	for len(p) > 0 {
		if len(s.buf) == partialChunk {
			if err := s.emit(partialLenByte); err != nil {
				return 0, err
			}
		}
		n := min(len(p), partialChunk-len(s.buf))
		s.encrypt(p[:n])
		p = p[n:]
	}
	return total, nil
}

// emit writes buf as one partial chunk (lenByte) or, with lenByte 0, as
// the final chunk with a definite length.
func (s *seipdWriter) emit(lenByte byte) error {
	var hdr []byte
	if lenByte != 0 {
		hdr = []byte{lenByte}
	} else {
		switch n := len(s.buf); {
		case n < 192:
			hdr = []byte{byte(n)}
		case n < 8384:
			hdr = []byte{byte((n-192)>>8) + 192, byte(n - 192)}
		default:
			hdr = []byte{0xff, byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)}
		}
	}
	if _, err := s.w.Write(hdr); err != nil {
		s.err = err
		return err
	}
	if _, err := s.w.Write(s.buf); err != nil {
		s.err = err
		return err
	}
	s.buf = s.buf[:0]
	return nil
}

func (s *seipdWriter) Close() error {
	if s.err != nil || s.closed {
		return s.err
	}
	s.closed = true
	mdc := []byte{0xd3, 0x14}
	s.h.Write(mdc)
	mdc = s.h.Sum(mdc)
	if len(s.buf)+len(mdc) > partialChunk {
		if err := s.emit(partialLenByte); err != nil {
			return err
		}
	}
	s.encrypt(mdc)
	return s.emit(0)
}
