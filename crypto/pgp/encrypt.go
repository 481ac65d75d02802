package pgp

import (
	"crypto"
	"errors"
	"fmt"
	"hash"
	"io"
	"strings"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
)

// Compression is the compression of a message we write.
type Compression string

// Compressions GnuPG 2.2 reads. ZLIB costs most of the encryption time on
// large files; partners choose.
const (
	CompressNone Compression = "none"
	CompressZIP  Compression = "zip"
	CompressZLIB Compression = "zlib"
)

// EncryptOptions configure Encrypt. Zero values are fine.
type EncryptOptions struct {
	Armor       bool             // ASCII-armor the output
	Compression Compression      // default none
	Level       int              // compression level 1..9; 0 = 6 (GnuPG's default)
	Hash        crypto.Hash      // signature hash: SHA256 (default), SHA384 or SHA512
	FileName    string           // literal data file name: the plaintext's (see PlaintextName)
	Now         func() time.Time // signature time and key validity; default time.Now
	Rand        io.Reader        // default crypto/rand
}

// Encrypt returns a writer that encrypts to every key in to and signs with
// signer; the message goes to w. Closing the returned writer writes the
// signature, the integrity check and the armor trailer, in that order; it
// does not close w. A write error or a missing Close leaves an incomplete
// message that every reader refuses.
//
// The message is AES-256 in a SEIPD v1 packet with MDC (no AEAD), with a
// v4 one-pass signature over the binary literal data, which GnuPG 2.2 and
// every OpenPGP implementation read.
func Encrypt(w io.Writer, to []*Key, signer *Key, opts EncryptOptions) (io.WriteCloser, error) {
	return encrypt(w, to, signer, opts, 0)
}

// encrypt is Encrypt with extra compression layers, which only the tests of
// the nesting limit want.
func encrypt(w io.Writer, to []*Key, signer *Key, opts EncryptOptions, extraLayers int) (io.WriteCloser, error) {
	if len(to) == 0 {
		return nil, &Error{Reason: ErrNoKeys, Detail: "no recipient"}
	}
	if signer == nil {
		return nil, &Error{Reason: ErrNoKeys, Detail: "no signing key"}
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	now := opts.Now()
	if opts.Hash == 0 {
		opts.Hash = crypto.SHA256
	}
	switch opts.Hash {
	case crypto.SHA256, crypto.SHA384, crypto.SHA512:
	default:
		return nil, &Error{Reason: ErrBadKey, Detail: "signature hash must be SHA256, SHA384 or SHA512"}
	}
	var algo packet.CompressionAlgo
	switch opts.Compression {
	case CompressNone, "":
		algo = packet.CompressionNone
	case CompressZIP:
		algo = packet.CompressionZIP
	case CompressZLIB:
		algo = packet.CompressionZLIB
	default:
		return nil, &Error{Reason: ErrBadKey, Detail: fmt.Sprintf("compression %q is not none, zip or zlib", opts.Compression)}
	}
	level := opts.Level
	if level == 0 {
		level = 6
	}
	cfg := &packet.Config{
		Rand:          opts.Rand,
		Time:          opts.Now,
		DefaultCipher: packet.CipherAES256,
		DefaultHash:   opts.Hash,
	}

	signKey, ok := signer.e.SigningKey(now)
	if !ok || signKey.PrivateKey == nil {
		return nil, &Error{Reason: ErrNoSecretKey, Detail: "no valid signing key in " + signer.Fingerprint()}
	}
	if signKey.PrivateKey.Encrypted {
		return nil, &Error{Reason: ErrKeyLocked, Detail: signer.Fingerprint()}
	}
	recipients := make([]*packet.PublicKey, len(to))
	for i, k := range to {
		ek, ok := k.e.EncryptionKey(now)
		if !ok {
			return nil, k.EncryptionProblem(now)
		}
		recipients[i] = ek.PublicKey
	}

	// Stack: out (armor or w) <- SEIPD <- compression <- OPS+literal+sig.
	var (
		out     io.Writer = w
		armorWC io.WriteCloser
		err     error
	)
	if opts.Armor {
		armorWC, err = armor.Encode(w, "PGP MESSAGE", nil)
		if err != nil {
			return nil, err
		}
		out = armorWC
	}
	sessionKey := make([]byte, packet.CipherAES256.KeySize())
	if _, err := io.ReadFull(cfg.Random(), sessionKey); err != nil {
		return nil, err
	}
	defer zero(sessionKey)
	for _, pub := range recipients {
		if err := packet.SerializeEncryptedKeyAEAD(out, pub, packet.CipherAES256, false, sessionKey, cfg); err != nil {
			return nil, fmt.Errorf("pgp: encrypt session key: %w", err)
		}
	}
	encrypted, err := newSEIPDWriter(out, sessionKey, cfg.Random())
	if err != nil {
		return nil, fmt.Errorf("pgp: start encryption: %w", err)
	}
	var payload io.WriteCloser = encrypted
	if algo != packet.CompressionNone {
		payload, err = packet.SerializeCompressed(encrypted, algo, &packet.CompressionConfig{Level: level})
		if err != nil {
			return nil, fmt.Errorf("pgp: start compression: %w", err)
		}
		for range extraLayers {
			if payload, err = packet.SerializeCompressed(payload, algo, &packet.CompressionConfig{Level: level}); err != nil {
				return nil, err
			}
		}
	}
	priv := signKey.PrivateKey
	ops := &packet.OnePassSignature{
		Version:    3,
		SigType:    packet.SigTypeBinary,
		Hash:       opts.Hash,
		PubKeyAlgo: priv.PubKeyAlgo,
		KeyId:      priv.KeyId,
		IsLast:     true,
	}
	if err := ops.Serialize(payload); err != nil {
		return nil, err
	}
	lit, err := packet.SerializeLiteral(nopCloser{payload}, true, opts.FileName, 0)
	if err != nil {
		return nil, err
	}
	return &encryptWriter{
		lit: lit, h: opts.Hash.New(), payload: payload, armor: armorWC,
		priv: priv, cfg: cfg,
	}, nil
}

type encryptWriter struct {
	lit     io.WriteCloser
	h       hash.Hash
	payload io.WriteCloser // compression, or encrypted
	armor   io.WriteCloser
	priv    *packet.PrivateKey
	cfg     *packet.Config
	err     error
	closed  bool
}

func (e *encryptWriter) Write(b []byte) (int, error) {
	if e.err != nil {
		return 0, e.err
	}
	if e.closed {
		return 0, errors.New("pgp: write after close")
	}
	n, err := e.lit.Write(b)
	e.h.Write(b[:n])
	if err != nil {
		e.err = err
	}
	return n, err
}

// Close signs and completes the message: literal data, signature,
// compression, encryption (MDC), armor, in this order.
func (e *encryptWriter) Close() error {
	if e.closed {
		return e.err
	}
	e.closed = true
	if e.err != nil {
		return e.err
	}
	sigLifetime := uint32(0)
	sig := &packet.Signature{
		Version:           e.priv.Version,
		SigType:           packet.SigTypeBinary,
		PubKeyAlgo:        e.priv.PubKeyAlgo,
		Hash:              e.cfg.DefaultHash,
		CreationTime:      e.cfg.Now(),
		IssuerKeyId:       &e.priv.KeyId,
		IssuerKeyVersion:  uint8(e.priv.Version),
		IssuerFingerprint: e.priv.Fingerprint,
		SigLifetimeSecs:   &sigLifetime,
		Metadata:          &packet.LiteralData{Format: 'b'},
	}
	steps := []func() error{
		func() error { return sig.Sign(e.h, e.priv, e.cfg) },
		e.lit.Close,
		func() error { return sig.Serialize(e.payload) },
		e.payload.Close, // closing the compression closes the encryption too
	}
	if e.armor != nil {
		steps = append(steps, e.armor.Close)
	}
	for _, step := range steps {
		if err := step(); err != nil {
			e.err = fmt.Errorf("pgp: finish message: %w", err)
			return e.err
		}
	}
	return nil
}

type nopCloser struct{ io.Writer }

func (nopCloser) Close() error { return nil }

// PlaintextName is the name of an encrypted file's plaintext, for
// [EncryptOptions.FileName]: the file name without the suffix encryption
// added (.pgp, .gpg or .asc), which is what `gpg --decrypt-files` and
// `--use-embedded-filename` write the plaintext out as.
func PlaintextName(encrypted string) string {
	for _, ext := range []string{".pgp", ".gpg", ".asc"} {
		if n, ok := strings.CutSuffix(encrypted, ext); ok && n != "" {
			return n
		}
	}
	return encrypted
}
