package spill

import (
	"bytes"
	"crypto/rand"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
)

func text(t *testing.T, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	rand.Read(b)
	return b
}

func written(t *testing.T, dir string, plain []byte) *File {
	t.Helper()
	s, err := Create(dir, "spill-*")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	// Odd-sized writes cross the chunk boundaries.
	for p := plain; len(p) > 0; {
		n := min(len(p), 7919)
		if _, err := s.Write(p[:n]); err != nil {
			t.Fatal(err)
		}
		p = p[n:]
	}
	if err := s.Finish(); err != nil {
		t.Fatal(err)
	}
	return s
}

func readAll(s *File) ([]byte, error) {
	r, err := s.Reader()
	if err != nil {
		return nil, err
	}
	return io.ReadAll(r)
}

func TestRoundTripSealedOnDisk(t *testing.T) {
	for _, size := range []int{0, 1, Chunk - 1, Chunk, Chunk + 1, 3*Chunk + 17} {
		dir := t.TempDir()
		plain := text(t, size)
		s := written(t, dir, plain)
		if s.Size() != int64(size) {
			t.Fatalf("size %d, wrote %d", s.Size(), size)
		}
		raw, err := os.ReadFile(s.Name())
		if err != nil {
			t.Fatal(err)
		}
		if size >= 16 && bytes.Contains(raw, plain[:16]) {
			t.Fatalf("%d bytes: plaintext on disk", size)
		}
		// Two readers, each from the start.
		for range 2 {
			got, err := readAll(s)
			if err != nil || !bytes.Equal(got, plain) {
				t.Fatalf("%d bytes: read back %d bytes, %v", size, len(got), err)
			}
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		if left, _ := os.ReadDir(dir); len(left) != 0 {
			t.Fatalf("%d bytes: %d files left after Close", size, len(left))
		}
	}
}

// TestEveryChangeFails: whatever is done to the file, reading it fails
// with ErrCorrupt, never returns other bytes.
func TestEveryChangeFails(t *testing.T) {
	plain := text(t, 3*Chunk+17)
	s := written(t, t.TempDir(), plain)
	raw, err := os.ReadFile(s.Name())
	if err != nil {
		t.Fatal(err)
	}
	sealed := Chunk + 16
	flipped := bytes.Clone(raw)
	flipped[len(flipped)/2] ^= 1
	swapped := append(append(bytes.Clone(raw[sealed:2*sealed]), raw[:sealed]...), raw[2*sealed:]...)
	for name, bad := range map[string][]byte{
		"byte flipped":     flipped,
		"last chunk gone":  raw[:3*sealed],
		"chunk cut":        raw[:sealed+100],
		"chunks swapped":   swapped,
		"bytes appended":   append(bytes.Clone(raw), 0),
		"chunk duplicated": append(append(bytes.Clone(raw[:sealed]), raw[:sealed]...), raw[sealed:]...),
		"emptied":          nil,
	} {
		if err := os.WriteFile(s.Name(), bad, 0o600); err != nil {
			t.Fatal(err)
		}
		if got, err := readAll(s); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: read %d bytes, %v; want ErrCorrupt", name, len(got), err)
		}
	}
	if err := os.WriteFile(s.Name(), raw, 0o600); err != nil {
		t.Fatal(err)
	}
	if got, err := readAll(s); err != nil || !bytes.Equal(got, plain) {
		t.Fatalf("restored: %v", err)
	}
}

func TestUnlinkedStaysReadable(t *testing.T) {
	dir := t.TempDir()
	s, err := Create(dir, "spill-*")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	s.Unlink()
	if left, _ := os.ReadDir(dir); len(left) != 0 || s.Name() != "" {
		t.Fatalf("%d files after Unlink, name %q", len(left), s.Name())
	}
	plain := text(t, Chunk+5)
	s.Write(plain)
	if _, err := s.Reader(); err == nil {
		t.Fatal("read before Finish")
	}
	if err := s.Finish(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Write([]byte("x")); err == nil {
		t.Fatal("write after Finish")
	}
	if got, err := readAll(s); err != nil || !bytes.Equal(got, plain) {
		t.Fatalf("read back: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "x")); err == nil {
		t.Fatal("unexpected file")
	}
}
