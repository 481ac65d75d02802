package pgp

import (
	"errors"
	"io"

	"resub/crypto/spill"
)

// The scratch copy: with DecryptOptions.ScratchDir, the plaintext of pass
// 1 is kept in a spill (sealed in chunks under a key that exists only in
// memory for the life of one Verified) so that pass 2 reads it back
// instead of decrypting and decompressing the message again. Any change
// of the file makes pass 2 fail with ErrChanged.

// scratchChunk is the plaintext a sealed chunk of the scratch copy holds.
const scratchChunk = spill.Chunk

var errScratch = errors.New("pgp: scratch copy does not authenticate")

// scratchReader reads the scratch copy, reporting a copy that no longer
// authenticates as a changed file.
type scratchReader struct{ r io.Reader }

func (s scratchReader) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	if errors.Is(err, spill.ErrCorrupt) {
		err = refuse(ErrChanged, "scratch copy", errScratch)
	}
	return n, err
}

// Close ends this read; the copy itself goes with Verified.Close.
func (scratchReader) Close() error { return nil }
