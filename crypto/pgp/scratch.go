package pgp

import (
	"bufio"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
)

// The scratch copy: the plaintext of pass 1, sealed in chunks with
// AES-256-GCM under a key that exists only in memory for the life of one
// Verified, so that pass 2 reads it back instead of decrypting and
// decompressing the message again. Chunk i is sealed with nonce i (big
// endian) and additional data that marks the last chunk, so reordering,
// truncation, extension or any change of the file fails.
const scratchChunk = 256 << 10

var errScratch = errors.New("pgp: scratch copy does not authenticate")

type scratchWriter struct {
	f    *os.File
	w    *bufio.Writer
	aead cipher.AEAD
	buf  []byte // plaintext of the chunk being filled
	out  []byte
	idx  uint64
}

func newScratch(dir string) (*scratchWriter, []byte, error) {
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, nil, err
	}
	b, err := aes.NewCipher(key)
	if err != nil {
		return nil, nil, err
	}
	aead, err := cipher.NewGCM(b)
	if err != nil {
		return nil, nil, err
	}
	f, err := os.CreateTemp(dir, "resub-scratch-*")
	if err != nil {
		return nil, nil, err
	}
	return &scratchWriter{f: f, w: bufio.NewWriterSize(f, 1<<20), aead: aead, buf: make([]byte, 0, scratchChunk)}, key, nil
}

func scratchAD(last bool) []byte {
	if last {
		return []byte("resub-scratch-last")
	}
	return []byte("resub-scratch")
}

func scratchNonce(i uint64) []byte {
	n := make([]byte, 12)
	binary.BigEndian.PutUint64(n[4:], i)
	return n
}

func (s *scratchWriter) Write(p []byte) (int, error) {
	total := len(p)
	for len(p) > 0 {
		n := copy(s.buf[len(s.buf):cap(s.buf)], p)
		s.buf = s.buf[:len(s.buf)+n]
		p = p[n:]
		if len(s.buf) == cap(s.buf) && len(p) > 0 {
			if err := s.flush(false); err != nil {
				return 0, err
			}
		}
	}
	return total, nil
}

func (s *scratchWriter) flush(last bool) error {
	s.out = s.aead.Seal(s.out[:0], scratchNonce(s.idx), s.buf, scratchAD(last))
	clear(s.buf)
	s.buf = s.buf[:0]
	s.idx++
	_, err := s.w.Write(s.out)
	return err
}

// finish seals the last (possibly short, possibly empty) chunk.
func (s *scratchWriter) finish() error {
	if err := s.flush(true); err != nil {
		return err
	}
	if err := s.w.Flush(); err != nil {
		return err
	}
	return s.f.Close()
}

func (s *scratchWriter) abort() {
	clear(s.buf)
	s.f.Close()
	os.Remove(s.f.Name())
}

// scratchReader streams and authenticates the scratch copy.
type scratchReader struct {
	f    *os.File
	r    *bufio.Reader
	aead cipher.AEAD
	in   []byte
	out  []byte
	pos  int
	idx  uint64
	n    int64
	want int64
	done bool
	err  error
}

func openScratch(path string, key []byte, want int64) (*scratchReader, error) {
	b, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(b)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	return &scratchReader{f: f, r: bufio.NewReaderSize(f, 1<<20), aead: aead, in: make([]byte, scratchChunk+aead.Overhead()), want: want}, nil
}

func (s *scratchReader) Read(p []byte) (int, error) {
	for s.pos == len(s.out) {
		if s.err != nil {
			return 0, s.err
		}
		if s.done {
			if s.n != s.want {
				s.err = refuse(ErrChanged, fmt.Sprintf("scratch copy has %d bytes, verified %d", s.n, s.want), nil)
				return 0, s.err
			}
			return 0, io.EOF
		}
		s.err = s.next()
	}
	n := copy(p, s.out[s.pos:])
	s.pos += n
	return n, nil
}

// next reads and opens one chunk; the last one is the one followed by
// end of file (it may be full-size or empty).
func (s *scratchReader) next() error {
	clear(s.out)
	n, err := io.ReadFull(s.r, s.in)
	last := false
	switch {
	case err == io.EOF || err == io.ErrUnexpectedEOF:
		last = true
	case err != nil:
		return err
	default:
		if _, perr := s.r.Peek(1); perr == io.EOF {
			last = true
		} else if perr != nil {
			return perr
		}
	}
	out, oerr := s.aead.Open(s.out[:0], scratchNonce(s.idx), s.in[:n], scratchAD(last))
	if oerr != nil {
		return refuse(ErrChanged, "scratch copy", errScratch)
	}
	s.idx++
	s.out, s.pos, s.done = out, 0, last
	s.n += int64(len(out))
	return nil
}

func (s *scratchReader) Close() error {
	clear(s.out)
	return s.f.Close()
}
