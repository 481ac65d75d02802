// Package spill keeps plaintext that a process sets aside and reads again
// (a partner file verified before it is used, an output rendered in the
// transaction that plans it) in a temporary file nobody else can read: the
// bytes are sealed in chunks with AES-256-GCM under a key that exists only
// in the process's memory. Chunk i is sealed with nonce i (big endian) and
// additional data that marks the last chunk, so that reordering,
// truncation, extension or any change of the file fails to read.
//
// A spill is written once (Write, then Finish) and read any number of
// times (Reader), each reader from the start. Close forgets the key and
// removes the file; Unlink removes its name at once where the system
// allows it, so that a process that dies leaves nothing behind.
package spill

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

// Chunk is how much plaintext one sealed chunk carries.
const Chunk = 256 << 10

// ErrCorrupt says the spill does not read back as it was written.
var ErrCorrupt = errors.New("spill does not authenticate")

var (
	adChunk = []byte("resub-spill")
	adLast  = []byte("resub-spill-last")
)

// File is one spill.
type File struct {
	f    *os.File
	name string // "" once unlinked
	aead cipher.AEAD
	w    *bufio.Writer
	buf  []byte // plaintext of the chunk being filled
	out  []byte
	idx  uint64
	size int64 // plaintext bytes written
	// sealed is the file's size once finished (-1 before).
	sealed int64
}

// Create makes a spill in dir (the system's temporary folder when empty),
// its name made from pattern as os.CreateTemp does.
func Create(dir, pattern string) (*File, error) {
	key := make([]byte, 32)
	defer clear(key)
	if _, err := rand.Read(key); err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	f, err := os.CreateTemp(dir, pattern)
	if err != nil {
		return nil, err
	}
	return &File{f: f, name: f.Name(), aead: aead, w: bufio.NewWriterSize(f, 1<<20), buf: make([]byte, 0, Chunk), sealed: -1}, nil
}

// Name is the file's path ("" once unlinked).
func (s *File) Name() string { return s.name }

// Unlink removes the file's name now; the open spill stays usable. Where
// the system does not allow it, the name stays until Close.
func (s *File) Unlink() {
	if s.name != "" && os.Remove(s.name) == nil {
		s.name = ""
	}
}

// Size is the number of plaintext bytes written.
func (s *File) Size() int64 { return s.size }

// Write appends plaintext.
func (s *File) Write(p []byte) (int, error) {
	if s.sealed >= 0 {
		return 0, errors.New("spill: write after Finish")
	}
	total := len(p)
	for len(p) > 0 {
		n := copy(s.buf[len(s.buf):cap(s.buf)], p)
		s.buf = s.buf[:len(s.buf)+n]
		p = p[n:]
		s.size += int64(n)
		// A full chunk is sealed only once more follows: the last chunk
		// may be full-size.
		if len(s.buf) == cap(s.buf) && len(p) > 0 {
			if err := s.seal(false); err != nil {
				return total - len(p), err
			}
		}
	}
	return total, nil
}

func nonce(i uint64) []byte {
	n := make([]byte, 12)
	binary.BigEndian.PutUint64(n[4:], i)
	return n
}

func (s *File) seal(last bool) error {
	ad := adChunk
	if last {
		ad = adLast
	}
	s.out = s.aead.Seal(s.out[:0], nonce(s.idx), s.buf, ad)
	clear(s.buf)
	s.buf = s.buf[:0]
	s.idx++
	_, err := s.w.Write(s.out)
	return err
}

// Finish seals the last (possibly short, possibly empty) chunk and writes
// everything out. The spill can then be read.
func (s *File) Finish() error {
	if s.sealed >= 0 {
		return nil
	}
	if err := s.seal(true); err != nil {
		return err
	}
	if err := s.w.Flush(); err != nil {
		return err
	}
	st, err := s.f.Stat()
	if err != nil {
		return err
	}
	s.sealed = st.Size()
	return nil
}

// Reader reads the spill from its start; it fails with ErrCorrupt when
// the file no longer holds what was written. Readers are independent of
// each other.
func (s *File) Reader() (io.Reader, error) {
	if s.sealed < 0 {
		return nil, errors.New("spill: read before Finish")
	}
	// The file's size now, not the size written: a file that grew or
	// shrank must fail, not be cut to fit.
	st, err := s.f.Stat()
	if err != nil {
		return nil, err
	}
	r := &reader{s: s, r: bufio.NewReaderSize(io.NewSectionReader(s.f, 0, st.Size()), 1<<20), in: make([]byte, Chunk+s.aead.Overhead())}
	return r, nil
}

// Sealed reads the file as it is on disk (the sealed chunks), for checks
// that nothing of the plaintext shows.
func (s *File) Sealed() (io.Reader, error) {
	if err := s.w.Flush(); err != nil {
		return nil, err
	}
	st, err := s.f.Stat()
	if err != nil {
		return nil, err
	}
	return io.NewSectionReader(s.f, 0, st.Size()), nil
}

// Close forgets the plaintext buffers and removes the file.
func (s *File) Close() error {
	clear(s.buf)
	err := s.f.Close()
	if s.name != "" {
		if rerr := os.Remove(s.name); rerr != nil && !errors.Is(rerr, os.ErrNotExist) && err == nil {
			err = rerr
		}
		s.name = ""
	}
	return err
}

type reader struct {
	s    *File
	r    *bufio.Reader
	in   []byte
	out  []byte
	pos  int
	idx  uint64
	n    int64
	done bool
	err  error
}

func (r *reader) Read(p []byte) (int, error) {
	for r.pos == len(r.out) {
		if r.err != nil {
			return 0, r.err
		}
		if r.done {
			if r.n != r.s.size {
				r.err = fmt.Errorf("%w: %d bytes read back, %d written", ErrCorrupt, r.n, r.s.size)
				return 0, r.err
			}
			return 0, io.EOF
		}
		r.err = r.next()
	}
	n := copy(p, r.out[r.pos:])
	r.pos += n
	return n, nil
}

// next reads and opens one chunk; the last one is the one followed by end
// of file (it may be full-size or empty).
func (r *reader) next() error {
	clear(r.out)
	n, err := io.ReadFull(r.r, r.in)
	last := false
	switch {
	case err == io.EOF || err == io.ErrUnexpectedEOF:
		last = true
	case err != nil:
		return err
	default:
		if _, perr := r.r.Peek(1); perr == io.EOF {
			last = true
		} else if perr != nil {
			return perr
		}
	}
	ad := adChunk
	if last {
		ad = adLast
	}
	out, oerr := r.s.aead.Open(r.out[:0], nonce(r.idx), r.in[:n], ad)
	if oerr != nil {
		return fmt.Errorf("%w: chunk %d", ErrCorrupt, r.idx)
	}
	r.idx++
	r.out, r.pos, r.done = out, 0, last
	r.n += int64(len(out))
	return nil
}
