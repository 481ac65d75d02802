package keywrap

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
)

// Blob layout: version (1) | key ID length (1) | key ID | nonce (12) |
// AES-256-GCM ciphertext and tag. The additional data authenticated with
// it is "resub-seal-v1" 0x00 | key ID | 0x00 | caller's context, so neither
// the key ID nor the context can be changed.
const (
	sealVersion  = 1
	sealLabel    = "resub-seal-v1"
	MasterKeyLen = 32
)

// Sealer seals values at rest under one master key.
type Sealer struct {
	id   string
	aead cipher.AEAD
	rand io.Reader
}

// NewSealer makes a sealer for the master key id. key must be 32 bytes;
// it is copied into the cipher state, so the caller may zero it. rand is
// the nonce source (nil: crypto/rand).
func NewSealer(id string, key []byte, rnd io.Reader) (*Sealer, error) {
	if !validID(id) {
		return nil, fmt.Errorf("%w: %q", ErrBadID, id)
	}
	if len(key) != MasterKeyLen {
		return nil, fmt.Errorf("%w: master key needs %d bytes, got %d", ErrBadKey, MasterKeyLen, len(key))
	}
	b, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(b)
	if err != nil {
		return nil, err
	}
	if rnd == nil {
		rnd = rand.Reader
	}
	return &Sealer{id: id, aead: aead, rand: rnd}, nil
}

// ParseMasterKey accepts a master key as 32 raw bytes or as 64 hex digits
// (either case, surrounding white space ignored), as read from the file or
// variable the configuration names. It returns a fresh slice.
func ParseMasterKey(b []byte) ([]byte, error) {
	if len(b) == MasterKeyLen {
		return append([]byte(nil), b...), nil
	}
	t := bytes.TrimSpace(b)
	if len(t) == 2*MasterKeyLen {
		k := make([]byte, MasterKeyLen)
		if _, err := hex.Decode(k, t); err == nil {
			return k, nil
		}
		clear(k)
	}
	return nil, fmt.Errorf("%w: master key must be %d raw bytes or %d hex digits", ErrBadKey, MasterKeyLen, 2*MasterKeyLen)
}

// ID returns the master key ID.
func (s *Sealer) ID() string { return s.id }

func (s *Sealer) ad(aad []byte) []byte {
	ad := make([]byte, 0, len(sealLabel)+2+len(s.id)+len(aad))
	ad = append(ad, sealLabel...)
	ad = append(ad, 0)
	ad = append(ad, s.id...)
	ad = append(ad, 0)
	return append(ad, aad...)
}

// Seal encrypts plain bound to aad (e.g. ICCID and field name).
func (s *Sealer) Seal(aad, plain []byte) ([]byte, error) {
	hdr := 2 + len(s.id)
	blob := make([]byte, hdr+s.aead.NonceSize(), hdr+s.aead.NonceSize()+len(plain)+s.aead.Overhead())
	blob[0] = sealVersion
	blob[1] = byte(len(s.id))
	copy(blob[2:], s.id)
	nonce := blob[hdr:]
	if _, err := io.ReadFull(s.rand, nonce); err != nil {
		return nil, fmt.Errorf("keywrap: nonce: %w", err)
	}
	return s.aead.Seal(blob, nonce, plain, s.ad(aad)), nil
}

// Open decrypts a blob sealed with aad. A blob under another master key ID
// gives ErrOtherMasterKey; one that does not authenticate, ErrSealBroken.
func (s *Sealer) Open(aad, blob []byte) ([]byte, error) {
	id, rest, err := splitBlob(blob)
	if err != nil {
		return nil, err
	}
	if id != s.id {
		return nil, fmt.Errorf("%w: %q, this is %q", ErrOtherMasterKey, id, s.id)
	}
	ns := s.aead.NonceSize()
	if len(rest) < ns+s.aead.Overhead() {
		return nil, ErrBadBlob
	}
	p, err := s.aead.Open(nil, rest[:ns], rest[ns:], s.ad(aad))
	if err != nil {
		return nil, ErrSealBroken
	}
	return p, nil
}

// KeyID returns the master key ID a blob was sealed under.
func KeyID(blob []byte) (string, error) {
	id, _, err := splitBlob(blob)
	return id, err
}

func splitBlob(blob []byte) (id string, rest []byte, err error) {
	if len(blob) < 2 || blob[0] != sealVersion {
		return "", nil, ErrBadBlob
	}
	n := int(blob[1])
	if len(blob) < 2+n {
		return "", nil, ErrBadBlob
	}
	id = string(blob[2 : 2+n])
	if !validID(id) {
		return "", nil, ErrBadBlob
	}
	return id, blob[2+n:], nil
}

// Reseal opens blob under from and seals it under to with the same
// context; the plaintext is zeroed. A blob already under to's key ID is
// returned unchanged, so rotation can be rerun after a crash.
func Reseal(from, to *Sealer, aad, blob []byte) ([]byte, error) {
	id, err := KeyID(blob)
	if err != nil {
		return nil, err
	}
	if id == to.id {
		p, err := to.Open(aad, blob)
		clear(p)
		if err != nil {
			return nil, err
		}
		return blob, nil
	}
	p, err := from.Open(aad, blob)
	if err != nil {
		return nil, err
	}
	defer clear(p)
	return to.Seal(aad, p)
}
