package pgp

import (
	"bufio"
	"bytes"
	"crypto"
	"encoding/hex"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
	"github.com/ProtonMail/go-crypto/openpgp/s2k"
)

// Key is one OpenPGP key (a primary key with its subkeys and user IDs),
// public or secret.
type Key struct {
	e *openpgp.Entity
}

// Fingerprint returns the primary key's fingerprint, 40 lower-case hex
// digits for a v4 key.
func (k *Key) Fingerprint() string { return hex.EncodeToString(k.e.PrimaryKey.Fingerprint) }

// KeyID returns the primary key's 64-bit key ID in 16 lower-case hex digits.
func (k *Key) KeyID() string { return fmt.Sprintf("%016x", k.e.PrimaryKey.KeyId) }

// UserID returns the primary user ID ("Name <email>"), or "".
func (k *Key) UserID() string {
	if id := k.e.PrimaryIdentity(); id != nil {
		return id.Name
	}
	return ""
}

// Created returns the primary key's creation time.
func (k *Key) Created() time.Time { return k.e.PrimaryKey.CreationTime }

// IsSecret reports whether the key carries secret key material.
func (k *Key) IsSecret() bool { return k.e.PrivateKey != nil }

// IsLocked reports whether some secret key material is still
// passphrase-protected.
func (k *Key) IsLocked() bool {
	if k.e.PrivateKey != nil && k.e.PrivateKey.Encrypted {
		return true
	}
	for _, s := range k.e.Subkeys {
		if s.PrivateKey != nil && s.PrivateKey.Encrypted {
			return true
		}
	}
	return false
}

// Unlock decrypts the secret key material with passphrase. The caller owns
// passphrase and should zero it afterwards. Unlocking an unlocked key is a
// no-op.
func (k *Key) Unlock(passphrase []byte) error {
	if !k.IsSecret() {
		return &Error{Reason: ErrNoSecretKey, Detail: k.Fingerprint()}
	}
	if !k.IsLocked() {
		return nil
	}
	if len(passphrase) == 0 {
		return &Error{Reason: ErrKeyLocked, Detail: k.Fingerprint()}
	}
	if err := k.e.DecryptPrivateKeys(passphrase); err != nil {
		return &Error{Reason: ErrBadPassphrase, Detail: k.Fingerprint()}
	}
	return nil
}

// Public returns the key without its secret parts. The result shares the
// public packets with k, which are never modified.
func (k *Key) Public() *Key {
	e := *k.e
	e.PrivateKey = nil
	e.Subkeys = make([]openpgp.Subkey, len(k.e.Subkeys))
	for i, s := range k.e.Subkeys {
		s.PrivateKey = nil
		e.Subkeys[i] = s
	}
	return &Key{e: &e}
}

// WritePublic writes the public key, ASCII-armored if armored.
func (k *Key) WritePublic(w io.Writer, armored bool) error {
	return writeKey(w, armored, openpgp.PublicKeyType, k.e.Serialize)
}

// WriteSecret writes the secret key, ASCII-armored if armored. If
// passphrase is not empty, the secret material is written protected with
// it (iterated and salted S2K, AES-256, as GnuPG 2.2 reads); the key in
// memory stays unlocked.
func (k *Key) WriteSecret(w io.Writer, armored bool, passphrase []byte) error {
	if !k.IsSecret() {
		return &Error{Reason: ErrNoSecretKey, Detail: k.Fingerprint()}
	}
	if k.IsLocked() {
		return &Error{Reason: ErrKeyLocked, Detail: k.Fingerprint()}
	}
	e := k.e
	if len(passphrase) > 0 {
		// Protect a copy so the caller's key stays usable.
		var buf bytes.Buffer
		if err := k.e.SerializePrivateWithoutSigning(&buf, nil); err != nil {
			return err
		}
		el, err := openpgp.ReadKeyRing(&buf)
		zero(buf.Bytes())
		if err != nil || len(el) != 1 {
			return fmt.Errorf("pgp: copy secret key: %w", err)
		}
		e = el[0]
		cfg := &packet.Config{
			DefaultCipher: packet.CipherAES256,
			S2KConfig:     &s2k.Config{S2KMode: s2k.IteratedSaltedS2K, Hash: crypto.SHA256, S2KCount: 65011712},
		}
		if err := e.EncryptPrivateKeys(passphrase, cfg); err != nil {
			return fmt.Errorf("pgp: protect secret key: %w", err)
		}
	}
	return writeKey(w, armored, openpgp.PrivateKeyType, func(w io.Writer) error {
		return e.SerializePrivateWithoutSigning(w, nil)
	})
}

func writeKey(w io.Writer, armored bool, blockType string, ser func(io.Writer) error) error {
	if !armored {
		return ser(w)
	}
	aw, err := armor.Encode(w, blockType, nil)
	if err != nil {
		return err
	}
	if err := ser(aw); err != nil {
		return err
	}
	if err := aw.Close(); err != nil {
		return err
	}
	_, err = io.WriteString(w, "\n")
	return err
}

// MaxKeyFileBytes bounds a key file: a key with its user IDs and
// certifications is a few kilobytes, a keyring of a few keys well under a
// megabyte.
const MaxKeyFileBytes = 4 << 20

// ReadKeys reads one or more keys, public or secret, ASCII-armored or
// binary (as `gpg --export` and `gpg --export-secret-keys` write them).
// An armored file may hold several key blocks one after the other (as
// people concatenate exports): every block is read. A block that is not a
// key block, or one without its END line, refuses the whole file with
// ErrBadKey naming the block, so that no key is lost without a word.
func ReadKeys(r io.Reader) ([]*Key, error) {
	data, err := io.ReadAll(io.LimitReader(r, MaxKeyFileBytes+1))
	if err != nil {
		return nil, &Error{Reason: ErrBadKey, Detail: "read key", Err: err}
	}
	defer zero(data) // a secret key file may be unprotected
	if len(data) > MaxKeyFileBytes {
		return nil, &Error{Reason: ErrBadKey, Detail: fmt.Sprintf("key file larger than %d bytes", MaxKeyFileBytes)}
	}
	var el openpgp.EntityList
	if t := bytes.TrimLeft(data, " \t\r\n"); len(t) > 0 && t[0]&0x80 == 0 {
		// Not a binary packet (whose first byte has its top bit set):
		// armored text, perhaps with a comment before the first block.
		blocks, err := armoredBlocks(data)
		if err != nil {
			return nil, err
		}
		for i, b := range blocks {
			got, err := openpgp.ReadArmoredKeyRing(bytes.NewReader(b))
			if err != nil {
				return nil, &Error{Reason: ErrBadKey, Detail: fmt.Sprintf("read key block %d of %d", i+1, len(blocks)), Err: err}
			}
			el = append(el, got...)
		}
	} else {
		el, err = openpgp.ReadKeyRing(bytes.NewReader(data))
		if err != nil {
			return nil, &Error{Reason: ErrBadKey, Detail: "read key", Err: err}
		}
	}
	if len(el) == 0 {
		return nil, ErrNoKeys
	}
	keys := make([]*Key, len(el))
	for i, e := range el {
		keys[i] = &Key{e: e}
	}
	return keys, nil
}

// armoredBlocks splits armored text into its blocks, each from its BEGIN
// line to its END line. Text between blocks is ignored, as GnuPG does.
func armoredBlocks(data []byte) ([][]byte, error) {
	var (
		blocks [][]byte
		start  = -1
		kind   string
	)
	for off := 0; off < len(data); {
		end := bytes.IndexByte(data[off:], '\n')
		next := len(data)
		if end >= 0 {
			next = off + end + 1
		}
		line := string(bytes.TrimRight(data[off:next], " \t\r\n"))
		switch {
		case strings.HasPrefix(line, "-----BEGIN PGP ") && strings.HasSuffix(line, "-----"):
			if start >= 0 {
				return nil, &Error{Reason: ErrBadKey, Detail: fmt.Sprintf("armored block %d (%s) has no END line before the next BEGIN", len(blocks)+1, kind)}
			}
			kind = strings.TrimSuffix(strings.TrimPrefix(line, "-----BEGIN "), "-----")
			if kind != openpgp.PublicKeyType && kind != openpgp.PrivateKeyType {
				return nil, &Error{Reason: ErrBadKey, Detail: fmt.Sprintf("armored block %d is a %s, not a key block", len(blocks)+1, kind)}
			}
			start = off
		case strings.HasPrefix(line, "-----END PGP ") && start >= 0:
			if line != "-----END "+kind+"-----" {
				return nil, &Error{Reason: ErrBadKey, Detail: fmt.Sprintf("armored block %d (%s) ends with %q", len(blocks)+1, kind, line)}
			}
			blocks = append(blocks, data[start:next])
			start = -1
		}
		off = next
	}
	if start >= 0 {
		return nil, &Error{Reason: ErrBadKey, Detail: fmt.Sprintf("armored block %d (%s) has no END line", len(blocks)+1, kind)}
	}
	return blocks, nil
}

// isArmored reports whether the buffered input starts (after white space)
// with an ASCII armor header line.
func isArmored(br *bufio.Reader) bool {
	b, _ := br.Peek(1024)
	b = bytes.TrimLeft(b, " \t\r\n")
	return bytes.HasPrefix(b, []byte("-----BEGIN PGP "))
}

// Algo is a key generation algorithm.
type Algo string

// Key algorithms that GnuPG 2.2 imports.
const (
	Curve25519 Algo = "curve25519" // Ed25519 signing primary + Cv25519 encryption subkey (v4, legacy encoding)
	RSA3072    Algo = "rsa3072"
	RSA4096    Algo = "rsa4096"
)

// GenerateOptions tune key generation. Zero values are fine.
type GenerateOptions struct {
	Now      func() time.Time // creation time; default time.Now
	Rand     io.Reader        // default crypto/rand
	Lifetime time.Duration    // key expiry after creation; 0 = never
}

// GenerateKey makes a new v4 secret key for "name <email>" with a signing
// primary key and an encryption subkey, preferring AES-256, SHA-256 and no
// AEAD, so that GnuPG 2.2 imports it and encrypts to it with AES-256.
func GenerateKey(name, email string, algo Algo, opts GenerateOptions) (*Key, error) {
	cfg := &packet.Config{
		Rand:          opts.Rand,
		Time:          opts.Now,
		DefaultHash:   crypto.SHA256,
		DefaultCipher: packet.CipherAES256,
	}
	if opts.Lifetime > 0 {
		cfg.KeyLifetimeSecs = uint32(opts.Lifetime / time.Second)
	}
	switch algo {
	case Curve25519, "":
		cfg.Algorithm = packet.PubKeyAlgoEdDSA
		cfg.Curve = packet.Curve25519
	case RSA3072:
		cfg.Algorithm = packet.PubKeyAlgoRSA
		cfg.RSABits = 3072
	case RSA4096:
		cfg.Algorithm = packet.PubKeyAlgoRSA
		cfg.RSABits = 4096
	default:
		return nil, &Error{Reason: ErrBadKey, Detail: fmt.Sprintf("unknown algorithm %q (want curve25519, rsa3072 or rsa4096)", algo)}
	}
	e, err := openpgp.NewEntity(name, "", email, cfg)
	if err != nil {
		return nil, fmt.Errorf("pgp: generate key: %w", err)
	}
	return &Key{e: e}, nil
}

// hashName names a hash for details ("SHA-256").
func hashName(h crypto.Hash) string { return h.String() }

func zero(b []byte) {
	for i := range b {
		b[i] = 0
	}
}

// NormalizeFingerprint turns a fingerprint as people paste it (upper or
// lower case, with spaces as gpg prints them, or a 0x prefix) into the form
// this package uses: lower-case hex without spaces, 40 digits for v4 keys
// (64 for v6).
func NormalizeFingerprint(s string) (string, error) {
	s = strings.TrimPrefix(strings.TrimPrefix(strings.TrimSpace(s), "0x"), "0X")
	s = strings.ToLower(strings.Join(strings.Fields(s), ""))
	if b, err := hex.DecodeString(s); err != nil || (len(b) != 20 && len(b) != 32) {
		return "", &Error{Reason: ErrBadKey, Detail: fmt.Sprintf("fingerprint %q is not 40 or 64 hex digits", s)}
	}
	return s, nil
}
