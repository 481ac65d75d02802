package pgp

import (
	"bufio"
	"bytes"
	"crypto"
	"crypto/aes"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	pgperrors "github.com/ProtonMail/go-crypto/openpgp/errors"
	"github.com/ProtonMail/go-crypto/openpgp/packet"

	"resub/crypto/spill"
)

// Defaults for DecryptOptions.
const (
	DefaultMaxSize    int64 = 4 << 30 // 4 GiB of plaintext
	DefaultMaxNesting       = 2       // compression layers inside the encryption
	maxSignatures           = 8       // one-pass signatures per message
	maxNesting              = 16
	capSlack                = 64 << 10
)

// DecryptOptions configure Open.
type DecryptOptions struct {
	// Keys are our secret keys (unlocked); the message must be encrypted
	// to one of them.
	Keys []*Key
	// Signers are the partner's pinned public keys; the message must be
	// signed by one of them. Several keys allow rotation.
	Signers []*Key
	// Fingerprints, if not empty, narrows Signers to the keys whose primary
	// fingerprint is listed (40 hex digits, either case, spaces allowed).
	Fingerprints []string
	// MaxSize caps the plaintext (decompressed) size; 0 means
	// DefaultMaxSize.
	MaxSize int64
	// MaxNesting caps the compression layers inside the encryption; 0
	// means DefaultMaxNesting.
	MaxNesting int
	// Now is the clock for key expiry and revocation; default time.Now.
	Now func() time.Time
	// ScratchDir, if set, makes pass 1 keep the plaintext in a scratch
	// file there, sealed with AES-256-GCM under a key that exists only in
	// memory, and pass 2 read it back instead of decrypting (and
	// decompressing) the message again: faster, at the cost of the
	// plaintext's size in scratch space. Call Verified.Close to remove it.
	ScratchDir string
}

// Verified is a message that passed every check on its first pass. Its
// fields describe what was verified; Plaintext streams the content.
type Verified struct {
	SHA256        string    // hex SHA-256 of the ciphertext file as read
	Size          int64     // ciphertext bytes
	PlaintextSize int64     // plaintext bytes
	Armored       bool      // input was ASCII-armored
	Signer        string    // primary fingerprint of the pinned signer
	SigningKey    string    // fingerprint of the (sub)key that made the signature
	SignedAt      time.Time // signature creation time
	Hash          string    // signature hash algorithm
	Cipher        string    // symmetric cipher of the message
	Recipient     string    // fingerprint of our (sub)key that decrypted it
	FileName      string    // literal data file name, as the sender gave it

	open func() (io.ReadCloser, error)
	opts DecryptOptions
	sum  [sha256.Size]byte

	scratch *spill.File // sealed plaintext of pass 1, if opts.ScratchDir
}

// Open verifies the message that open returns: pass 1 reads it to EOF,
// decrypting it with opts.Keys and checking integrity, limits and a
// signature by one of opts.Signers, and discards the plaintext. open is
// called again by Verified.Plaintext for pass 2, so it must return the same
// bytes each time (a local copy of the ciphertext, not a network stream).
//
// Refusals are *Error values wrapping one of the Err* sentinels. I/O
// errors from open or its reader are returned as they are.
func Open(open func() (io.ReadCloser, error), opts DecryptOptions) (*Verified, error) {
	if err := checkDecryptOptions(&opts); err != nil {
		return nil, err
	}
	rc, err := open()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	m, err := newMessage(rc, &opts, nil)
	if err != nil {
		return nil, err
	}
	defer m.stopHashers()
	var scratch *spill.File
	if opts.ScratchDir != "" {
		if scratch, err = spill.Create(opts.ScratchDir, "resub-scratch-*"); err != nil {
			return nil, fmt.Errorf("pgp: scratch: %w", err)
		}
	}
	fail := func(err error) (*Verified, error) {
		if scratch != nil {
			scratch.Close()
		}
		return nil, err
	}
	buf := make([]byte, 128<<10)
	defer clear(buf)
	for {
		n, err := m.Read(buf)
		if scratch != nil && n > 0 {
			if _, werr := scratch.Write(buf[:n]); werr != nil {
				return fail(fmt.Errorf("pgp: scratch: %w", werr))
			}
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return fail(err)
		}
	}
	v := m.v
	v.open = open
	v.opts = opts
	if scratch != nil {
		if err := scratch.Finish(); err != nil {
			return fail(fmt.Errorf("pgp: scratch: %w", err))
		}
		v.scratch = scratch
	}
	return &v, nil
}

// Close removes the scratch copy, if any, and forgets its key. Plaintext
// cannot be called after Close when ScratchDir was set.
func (v *Verified) Close() error {
	if v.scratch == nil {
		return nil
	}
	err := v.scratch.Close()
	v.scratch = nil
	return err
}

// Plaintext streams the verified message's plaintext (pass 2). The stream
// repeats every check of pass 1 and also fails if the ciphertext differs
// from the one verified; such an error can come with the last bytes, and
// the consumer must then discard everything it read.
func (v *Verified) Plaintext() (io.ReadCloser, error) {
	if v.opts.ScratchDir != "" {
		if v.scratch == nil {
			return nil, errors.New("pgp: Plaintext after Close")
		}
		r, err := v.scratch.Reader()
		if err != nil {
			return nil, fmt.Errorf("pgp: scratch: %w", err)
		}
		return scratchReader{r}, nil
	}
	rc, err := v.open()
	if err != nil {
		return nil, err
	}
	m, err := newMessage(rc, &v.opts, v)
	if err != nil {
		rc.Close()
		return nil, err
	}
	return &plaintext{m: m, c: rc}, nil
}

type plaintext struct {
	m *message
	c io.Closer
}

func (p *plaintext) Read(b []byte) (int, error) { return p.m.Read(b) }
func (p *plaintext) Close() error               { return p.c.Close() }

func checkDecryptOptions(o *DecryptOptions) error {
	if len(o.Keys) == 0 {
		return &Error{Reason: ErrNoKeys, Detail: "no decryption key"}
	}
	if len(o.Signers) == 0 {
		return &Error{Reason: ErrNoKeys, Detail: "no pinned signer key"}
	}
	for _, k := range o.Keys {
		if !k.IsSecret() {
			return &Error{Reason: ErrNoSecretKey, Detail: k.Fingerprint()}
		}
		if k.IsLocked() {
			return &Error{Reason: ErrKeyLocked, Detail: k.Fingerprint()}
		}
	}
	fps := make([]string, len(o.Fingerprints))
	for i, f := range o.Fingerprints {
		n, err := NormalizeFingerprint(f)
		if err != nil {
			return err
		}
		fps[i] = n
	}
	o.Fingerprints = fps
	if o.MaxSize <= 0 {
		o.MaxSize = DefaultMaxSize
	}
	if o.MaxNesting <= 0 {
		o.MaxNesting = DefaultMaxNesting
	}
	if o.MaxNesting > maxNesting {
		// The packet reader below allows 32 layers; stay well inside.
		o.MaxNesting = maxNesting
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return nil
}

// rawReader counts and hashes the ciphertext as read and remembers whether
// its end was reached, which tells truncation from tampering.
type rawReader struct {
	r io.Reader
	h interface {
		Write([]byte) (int, error)
		Sum([]byte) []byte
	}
	n   int64
	max int64 // pass 2: the verified size; 0 = no limit
	eof bool
	err error // an I/O error of the source, not a refusal
}

var errGrown = errors.New("ciphertext longer than verified")

func (r *rawReader) Read(b []byte) (int, error) {
	n, err := r.r.Read(b)
	r.h.Write(b[:n])
	r.n += int64(n)
	if r.max > 0 && r.n > r.max {
		return n, errGrown
	}
	if err == io.EOF {
		r.eof = true
	} else if err != nil {
		r.err = err
	}
	return n, err
}

// capReader caps the bytes read from a decompressed stream, so that data
// hidden outside the literal packet cannot exhaust resources either.
type capReader struct {
	r   io.Reader
	n   int64
	hit *bool
}

var errCap = errors.New("decompressed size cap reached")

func (c *capReader) Read(b []byte) (int, error) {
	if c.n <= 0 {
		*c.hit = true
		return 0, errCap
	}
	if int64(len(b)) > c.n {
		b = b[:c.n]
	}
	n, err := c.r.Read(b)
	c.n -= int64(n)
	return n, err
}

type onePass struct {
	ops *packet.OnePassSignature
	key *openpgp.Key // the pinned key, nil if the signer is not pinned
	h   hash.Hash    // raw hash for VerifySignature
	wh  io.Writer    // what the literal data is written to
	bg  *asyncHasher // pass 1: hashes wh on another goroutine
	sig *packet.Signature
}

// message is one pass over a message.
type message struct {
	opts      *DecryptOptions
	expect    *Verified // pass 2: what pass 1 verified
	raw       *rawReader
	body      io.Reader // after armor
	outer     *packet.Reader
	inner     *packet.Reader
	decrypted io.ReadCloser
	lit       *packet.LiteralData
	ops       []*onePass
	n         int64
	depth     int
	capHit    bool
	hasher    *asyncHasher // pass 1 only
	done      bool
	err       error
	v         Verified
}

func newMessage(r io.Reader, opts *DecryptOptions, expect *Verified) (*message, error) {
	m := &message{opts: opts, expect: expect, raw: &rawReader{r: r, h: sha256.New()}}
	if expect == nil {
		// Pass 1 hashes the ciphertext on a second core; Open stops it.
		m.hasher = newAsyncHasher(sha256.New())
		m.raw.h = m.hasher
	}
	if expect != nil {
		m.raw.max = expect.Size
	}
	if err := m.start(); err != nil {
		m.err = err
		m.stopHashers()
		return nil, err
	}
	return m, nil
}

func (m *message) start() error {
	br := bufio.NewReaderSize(m.raw, 64<<10)
	first, err := br.Peek(1)
	if len(first) == 0 {
		if m.raw.err != nil {
			return m.raw.err
		}
		return refuse(ErrNotPGP, "empty input", err)
	}
	if isArmored(br) {
		block, err := armor.Decode(br)
		if err != nil {
			return m.classifyOuter(err, "armor")
		}
		if block.Type != "PGP MESSAGE" {
			return refuse(ErrNotPGP, fmt.Sprintf("armor block is %q, not PGP MESSAGE", block.Type), nil)
		}
		m.v.Armored = true
		m.body = block.Body
	} else {
		if first[0]&0x80 == 0 {
			return refuse(ErrNotPGP, "first byte is not an OpenPGP packet tag", nil)
		}
		m.body = br
	}
	m.outer = packet.NewReader(m.body)

	var (
		pkesks []*packet.EncryptedKey
		edp    packet.EncryptedDataPacket
	)
packets:
	for {
		p, err := m.outer.Next()
		if err == io.EOF {
			return refuse(ErrNotPGP, "no encrypted data packet", nil)
		}
		if err != nil {
			return m.classifyOuter(err, "packet")
		}
		switch p := p.(type) {
		case *packet.EncryptedKey:
			if len(pkesks) >= 64 {
				return refuse(ErrNotPGP, "too many session key packets", nil)
			}
			pkesks = append(pkesks, p)
		case *packet.SymmetricKeyEncrypted:
			// Passphrase-encrypted session keys are not for us.
		case *packet.SymmetricallyEncrypted:
			if !p.IntegrityProtected {
				return refuse(ErrNotEncrypted, "encrypted data has no integrity protection (no MDC)", nil)
			}
			edp = p
			break packets
		case *packet.AEADEncrypted:
			edp = p
			break packets
		case *packet.Compressed, *packet.LiteralData, *packet.OnePassSignature, *packet.Signature:
			return refuse(ErrNotEncrypted, "message is not encrypted", nil)
		default:
			return refuse(ErrNotPGP, fmt.Sprintf("unexpected %T packet", p), nil)
		}
	}

	// Find our key among the recipients and decrypt the session key.
	// SEIPD v1 under AES (what GnuPG 2.2 writes) is decrypted here; other
	// versions by the library.
	var prefix []byte
	se, v1 := edp.(*packet.SymmetricallyEncrypted)
	v1 = v1 && se.Version == 1
	if v1 {
		prefix = make([]byte, aes.BlockSize+2)
		if _, err := io.ReadFull(se.Contents, prefix); err != nil {
			return m.classifyOuter(err, "encrypted data")
		}
	}
	ours := m.ourKeys()
	var to []string
	for _, pk := range pkesks {
		to = append(to, fmt.Sprintf("%016x", pk.KeyId))
		var keys []openpgp.Key
		if pk.KeyId == 0 {
			keys = ours.DecryptionKeys()
		} else {
			keys = ours.KeysById(pk.KeyId)
		}
		for _, k := range keys {
			if k.PrivateKey == nil || k.PrivateKey.Encrypted {
				continue
			}
			if err := pk.Decrypt(k.PrivateKey, nil); err != nil {
				continue
			}
			var (
				dec io.ReadCloser
				err error
			)
			if v1 {
				if !isAES(pk.CipherFunc) {
					zero(pk.Key)
					return refuse(ErrNotEncrypted, "cipher "+cipherName(pk.CipherFunc)+" is not accepted (AES only)", nil)
				}
				var r *seipdReader
				r, err = newSEIPDReader(se.Contents, prefix, pk.Key)
				if err == nil {
					dec = r
				} else if errors.Is(err, errQuickCheck) {
					err = pgperrors.ErrKeyIncorrect
				}
			} else {
				dec, err = edp.Decrypt(pk.CipherFunc, pk.Key)
			}
			if v1 {
				zero(pk.Key)
			}
			if err != nil {
				if errors.Is(err, pgperrors.ErrKeyIncorrect) {
					continue
				}
				return m.classifyOuter(err, "decrypt")
			}
			m.decrypted = dec
			m.v.Recipient = hex.EncodeToString(k.PublicKey.Fingerprint)
			m.v.Cipher = cipherName(pk.CipherFunc)
			if !v1 {
				m.v.Cipher += "-aead"
			}
			break
		}
		if m.decrypted != nil {
			break
		}
	}
	if m.decrypted == nil {
		return refuse(ErrWrongRecipient, "encrypted to key IDs "+strings.Join(to, ", "), nil)
	}

	// Inside the encryption: compression layers, one-pass signatures, the
	// literal data.
	m.inner = packet.NewReader(m.decrypted)
	for {
		p, err := m.inner.Next()
		if err == io.EOF {
			return refuse(ErrBadSignature, "no literal data inside the encryption", nil)
		}
		if err != nil {
			return m.classifyInner(err, "packet")
		}
		switch p := p.(type) {
		case *packet.Compressed:
			m.depth++
			if m.depth > m.opts.MaxNesting {
				return refuse(ErrTooDeep, fmt.Sprintf("%d compression layers, at most %d allowed", m.depth, m.opts.MaxNesting), nil)
			}
			if err := m.inner.Push(&capReader{r: p.Body, n: m.opts.MaxSize + capSlack, hit: &m.capHit}); err != nil {
				return refuse(ErrTooDeep, "packet reader", err)
			}
		case *packet.OnePassSignature:
			if len(m.ops) >= maxSignatures {
				return refuse(ErrTooDeep, fmt.Sprintf("more than %d one-pass signatures", maxSignatures), nil)
			}
			if err := m.addOnePass(p); err != nil {
				return err
			}
		case *packet.LiteralData:
			m.lit = p
			m.v.FileName = p.FileName
			return m.checkSigners()
		case *packet.Signature:
			return refuse(ErrBadSignature, "signature before the data without a one-pass header is not supported", nil)
		default:
			return refuse(ErrNotPGP, fmt.Sprintf("unexpected %T packet inside the encryption", p), nil)
		}
	}
}

// ourKeys returns our secret keys as a keyring for decryption only.
func (m *message) ourKeys() openpgp.EntityList {
	el := make(openpgp.EntityList, len(m.opts.Keys))
	for i, k := range m.opts.Keys {
		el[i] = k.e
	}
	return el
}

// pinned returns the signer keys allowed to sign: the pinned ones, narrowed
// to the pinned fingerprints, never one of our own keys.
func (m *message) pinned() openpgp.EntityList {
	var el openpgp.EntityList
	for _, k := range m.opts.Signers {
		fp := k.Fingerprint()
		if len(m.opts.Fingerprints) > 0 && !slices.ContainsFunc(m.opts.Fingerprints, func(f string) bool { return strings.EqualFold(f, fp) }) {
			continue
		}
		if slices.ContainsFunc(m.opts.Keys, func(o *Key) bool { return o.Fingerprint() == fp }) {
			continue
		}
		el = append(el, k.e)
	}
	return el
}

func (m *message) addOnePass(p *packet.OnePassSignature) error {
	op := &onePass{ops: p}
	if keys := m.pinned().KeysByIdUsage(p.KeyId, packet.KeyFlagSign); len(keys) > 0 {
		op.key = &keys[0]
	}
	m.ops = append(m.ops, op)
	if op.key == nil {
		return nil // an extra signature by someone else is not hashed
	}
	if weakHash(p.Hash) {
		return refuse(ErrWeakHash, "one-pass signature announces "+hashName(p.Hash), nil)
	}
	if !p.Hash.Available() {
		return refuse(ErrBadSignature, "unsupported hash "+hashName(p.Hash), nil)
	}
	op.h = p.Hash.New()
	switch p.SigType {
	case packet.SigTypeBinary:
		op.wh = op.h
	case packet.SigTypeText:
		op.wh = openpgp.NewCanonicalTextHash(op.h)
	default:
		return refuse(ErrBadSignature, fmt.Sprintf("unsupported signature type %#x", p.SigType), nil)
	}
	if m.hasher != nil {
		// Pass 1: the signature hash runs beside the decryption too.
		op.bg = newAsyncHasher(writerHash{op.wh})
		op.wh = op.bg
	}
	return nil
}

// writerHash lets an asyncHasher feed a plain writer; Sum is unused.
type writerHash struct{ io.Writer }

func (writerHash) Sum(b []byte) []byte { return b }

// stopHashers stops the pass-1 hashing goroutines; idempotent.
func (m *message) stopHashers() {
	if m.hasher != nil {
		m.hasher.stop()
	}
	for _, op := range m.ops {
		if op.bg != nil {
			op.bg.stop()
		}
	}
}

func (m *message) checkSigners() error {
	if len(m.ops) == 0 {
		return refuse(ErrUnsigned, "", nil)
	}
	var ids []string
	for _, op := range m.ops {
		if op.key != nil {
			return nil
		}
		ids = append(ids, fmt.Sprintf("%016x", op.ops.KeyId))
	}
	return refuse(ErrUnknownSigner, "signed by key ID "+strings.Join(ids, ", "), nil)
}

func weakHash(h crypto.Hash) bool {
	switch h {
	case crypto.SHA224, crypto.SHA256, crypto.SHA384, crypto.SHA512, crypto.SHA3_256, crypto.SHA3_512:
		return false
	}
	return true
}

// Read returns plaintext; io.EOF only after every check passed.
func (m *message) Read(b []byte) (int, error) {
	if m.err != nil {
		return 0, m.err
	}
	if m.done {
		return 0, io.EOF
	}
	n, err := m.lit.Body.Read(b)
	m.n += int64(n)
	if m.n > m.opts.MaxSize {
		return 0, m.fail(refuse(ErrTooLarge, fmt.Sprintf("plaintext exceeds %d bytes", m.opts.MaxSize), nil))
	}
	for _, op := range m.ops {
		if op.key != nil {
			op.wh.Write(b[:n])
		}
	}
	if err == io.EOF {
		if err := m.finish(); err != nil {
			return n, m.fail(err)
		}
		m.done = true
		return n, io.EOF
	}
	if err != nil {
		return n, m.fail(m.classifyInner(err, "literal data"))
	}
	return n, nil
}

func (m *message) fail(err error) error {
	m.err = err
	return err
}

// finish runs the checks that need the whole message.
func (m *message) finish() error {
	// Trailing signatures, still inside the encryption.
	var sigs []*packet.Signature
	for {
		p, err := m.inner.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return m.classifyInner(err, "trailing packet")
		}
		sig, ok := p.(*packet.Signature)
		if !ok {
			return refuse(ErrNotPGP, fmt.Sprintf("unexpected %T packet after the literal data", p), nil)
		}
		if len(sigs) >= maxSignatures {
			return refuse(ErrTooDeep, "too many signatures", nil)
		}
		sigs = append(sigs, sig)
	}
	// Integrity (MDC or AEAD tag) of the whole encrypted packet.
	if err := m.decrypted.Close(); err != nil {
		return m.classifyInner(err, "integrity check")
	}
	// Nothing may follow the encrypted packet, and the armor (with its
	// checksum) and the file must end.
	if p, err := m.outer.Next(); err != io.EOF {
		if err != nil {
			return m.classifyOuter(err, "after the encrypted data")
		}
		return refuse(ErrNotPGP, fmt.Sprintf("unexpected %T packet after the encrypted data", p), nil)
	}
	if _, err := io.Copy(io.Discard, m.body); err != nil {
		return m.classifyOuter(err, "armor")
	}
	if _, err := io.Copy(io.Discard, m.raw); err != nil {
		return m.classifyOuter(err, "trailer")
	}
	if err := m.verify(sigs); err != nil {
		return err
	}
	m.v.PlaintextSize = m.n
	m.v.Size = m.raw.n
	m.raw.h.Sum(m.v.sum[:0])
	m.v.SHA256 = hex.EncodeToString(m.v.sum[:])
	if e := m.expect; e != nil {
		if m.v.Size != e.Size || subtle.ConstantTimeCompare(m.v.sum[:], e.sum[:]) != 1 || m.v.Signer != e.Signer || m.v.PlaintextSize != e.PlaintextSize {
			return refuse(ErrChanged, fmt.Sprintf("sha256 %s, verified %s", m.v.SHA256, e.SHA256), nil)
		}
	}
	return nil
}

// verify checks the signatures: every one-pass signature by a pinned key
// needs its valid signature packet, and there must be at least one.
func (m *message) verify(sigs []*packet.Signature) error {
	now := m.opts.Now()
	var good *onePass
	for _, op := range m.ops {
		if op.key == nil {
			continue
		}
		var sig *packet.Signature
		for _, s := range sigs {
			if s.IssuerKeyId != nil && *s.IssuerKeyId == op.ops.KeyId ||
				s.IssuerFingerprint != nil && bytes.Equal(s.IssuerFingerprint, op.key.PublicKey.Fingerprint) {
				sig = s
				break
			}
		}
		if sig == nil {
			return refuse(ErrBadSignature, fmt.Sprintf("no signature packet for key ID %016x", op.ops.KeyId), nil)
		}
		if weakHash(sig.Hash) {
			return refuse(ErrWeakHash, "signature uses "+hashName(sig.Hash), nil)
		}
		if sig.Hash != op.ops.Hash || sig.SigType != op.ops.SigType {
			return refuse(ErrBadSignature, "signature does not match its one-pass header", nil)
		}
		if op.bg != nil {
			op.bg.stop() // every byte hashed
		}
		if err := op.key.PublicKey.VerifySignature(op.h, sig); err != nil {
			return refuse(ErrBadSignature, "", err)
		}
		for _, n := range sig.Notations {
			if n.IsCritical {
				return refuse(ErrBadSignature, "signature has an unknown critical notation", nil)
			}
		}
		if err := checkSignerKey(op.key, sig, now); err != nil {
			return err
		}
		op.sig = sig
		if good == nil {
			good = op
		}
	}
	if good == nil {
		return refuse(ErrUnknownSigner, "", nil)
	}
	m.v.Signer = hex.EncodeToString(good.key.Entity.PrimaryKey.Fingerprint)
	m.v.SigningKey = hex.EncodeToString(good.key.PublicKey.Fingerprint)
	m.v.SignedAt = good.sig.CreationTime
	m.v.Hash = hashName(good.sig.Hash)
	return nil
}

// checkSignerKey refuses a signature whose key is revoked or expired at
// now, or which is itself expired or older than its key.
func checkSignerKey(k *openpgp.Key, sig *packet.Signature, now time.Time) error {
	e := k.Entity
	sub := k.PublicKey != e.PrimaryKey
	selfSig, ident := e.PrimarySelfSignature()
	if e.Revoked(now) || sub && k.Revoked(now) || ident != nil && ident.Revoked(now) {
		return refuse(ErrKeyRevoked, hex.EncodeToString(e.PrimaryKey.Fingerprint), nil)
	}
	if selfSig == nil {
		return refuse(ErrBadSignature, "signer key has no valid self-signature", nil)
	}
	if e.PrimaryKey.KeyExpired(selfSig, now) || sub && k.PublicKey.KeyExpired(k.SelfSignature, now) {
		return refuse(ErrKeyExpired, hex.EncodeToString(e.PrimaryKey.Fingerprint), nil)
	}
	if sig.CreationTime.After(now) {
		// SigExpired says "expired" for this too; a clock running ahead
		// (ours or the partner's) is another matter than an old file.
		return refuse(ErrFutureSig, "signed "+sig.CreationTime.UTC().Format(time.RFC3339)+", now "+now.UTC().Format(time.RFC3339), nil)
	}
	if sig.SigExpired(now) {
		return refuse(ErrKeyExpired, "signature expired", nil)
	}
	if sig.CreationTime.Before(k.PublicKey.CreationTime) {
		return refuse(ErrBadSignature, "signature older than its key", nil)
	}
	return nil
}

// classifyOuter names the reason for an error before decryption.
func (m *message) classifyOuter(err error, where string) error {
	if m.raw.err != nil {
		return fmt.Errorf("pgp: read ciphertext: %w", m.raw.err)
	}
	if errors.Is(err, errGrown) {
		return refuse(ErrChanged, "", nil)
	}
	if m.raw.eof && (errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF)) {
		return refuse(ErrTruncated, where, err)
	}
	var r refusal
	if errors.As(err, &r) {
		return err
	}
	return refuse(ErrNotPGP, where, err)
}

// classifyInner names the reason for an error after decryption, where the
// library reports most causes alike.
func (m *message) classifyInner(err error, where string) error {
	switch {
	case m.raw.err != nil:
		return fmt.Errorf("pgp: read ciphertext: %w", m.raw.err)
	case errors.Is(err, errGrown):
		return refuse(ErrChanged, "", nil)
	case m.capHit || errors.Is(err, errCap):
		return refuse(ErrTooLarge, fmt.Sprintf("decompressed data exceeds %d bytes", m.opts.MaxSize), nil)
	case m.raw.eof && (errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF)):
		return refuse(ErrTruncated, where, err)
	case errors.Is(err, errMDC) || errors.Is(err, pgperrors.ErrMDCHashMismatch) || errors.Is(err, pgperrors.ErrMDCMissing):
		return refuse(ErrBadSignature, "integrity check (MDC) failed", nil)
	}
	return refuse(ErrBadSignature, where+" garbled after decryption", err)
}

func cipherName(c packet.CipherFunction) string {
	switch c {
	case packet.CipherAES256:
		return "AES256"
	case packet.CipherAES192:
		return "AES192"
	case packet.CipherAES128:
		return "AES128"
	case packet.Cipher3DES:
		return "3DES"
	case packet.CipherCAST5:
		return "CAST5"
	}
	return fmt.Sprintf("cipher-%d", c)
}
