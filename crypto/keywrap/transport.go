package keywrap

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/des"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"io"
	"strings"
)

// Mode is how a transport key wraps a field.
type Mode string

// Transport key modes; see the package documentation.
const (
	AESKWP         Mode = "aes-kwp"
	AESKW          Mode = "aes-kw"
	AESGCM         Mode = "aes-gcm"
	AESCBCFixedIV  Mode = "aes-cbc-fixed-iv"
	AESECB         Mode = "aes-ecb"
	TripleDESECB   Mode = "3des-ecb"
	DefaultMode         = AESKWP
	gcmNonceSize        = 12
	maxFieldLength      = 4096 // bytes of plaintext; card secrets are tens of bytes
)

// fixedIVByte fills the IV of aes-cbc-fixed-iv unless the partner agreed
// another: 16 bytes of 0x23.
const fixedIVByte = 0x23

// TransportKey is a key agreed with a partner for wrapping secret fields.
type TransportKey struct {
	id    string
	mode  Mode
	key   []byte
	iv    [16]byte
	block cipher.Block
	rand  io.Reader
}

// TransportKeyOptions are the optional parts of a transport key.
type TransportKeyOptions struct {
	IV   []byte    // aes-cbc-fixed-iv: 16 bytes; default 16 bytes of 0x23
	Rand io.Reader // aes-gcm nonces; default crypto/rand
}

// NewTransportKey makes a transport key. It copies key; the caller may
// zero its copy. Key lengths: 16, 24 or 32 bytes for the AES modes, 16 or
// 24 for 3des-ecb.
func NewTransportKey(id string, key []byte, mode Mode, opts TransportKeyOptions) (*TransportKey, error) {
	if !validID(id) {
		return nil, fmt.Errorf("%w: %q", ErrBadID, id)
	}
	if mode == "" {
		mode = DefaultMode
	}
	tk := &TransportKey{id: id, mode: mode, key: append([]byte(nil), key...), rand: opts.Rand}
	for i := range tk.iv {
		tk.iv[i] = fixedIVByte
	}
	if tk.rand == nil {
		tk.rand = rand.Reader
	}
	var err error
	switch mode {
	case AESKWP, AESKW, AESGCM, AESCBCFixedIV, AESECB:
		if len(key) != 16 && len(key) != 24 && len(key) != 32 {
			return nil, fmt.Errorf("%w: %s %s needs 16, 24 or 32 bytes, got %d", ErrBadKey, id, mode, len(key))
		}
		tk.block, err = aes.NewCipher(tk.key)
	case TripleDESECB:
		tk.block, err = newTripleDES(tk.key)
	default:
		return nil, fmt.Errorf("%w: %q (want %s, %s, %s, %s, %s or %s)", ErrBadMode, mode, AESKWP, AESKW, AESGCM, AESCBCFixedIV, AESECB, TripleDESECB)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrBadKey, id, err)
	}
	if opts.IV != nil {
		if mode != AESCBCFixedIV || len(opts.IV) != 16 {
			return nil, fmt.Errorf("%w: an IV is for %s only and has 16 bytes", ErrBadKey, AESCBCFixedIV)
		}
		copy(tk.iv[:], opts.IV)
	}
	return tk, nil
}

func newTripleDES(key []byte) (cipher.Block, error) {
	switch len(key) {
	case 16: // two-key 3DES: K1 K2 K1
		k := make([]byte, 24)
		copy(k, key)
		copy(k[16:], key[:8])
		defer clear(k)
		return des.NewTripleDESCipher(k)
	case 24:
		return des.NewTripleDESCipher(key)
	}
	return nil, fmt.Errorf("%w: 3DES needs 16 or 24 bytes, got %d", ErrBadKey, len(key))
}

func validID(id string) bool {
	if len(id) == 0 || len(id) > 64 {
		return false
	}
	for _, c := range id {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '.', c == '_', c == '-':
		default:
			return false
		}
	}
	return true
}

// ID returns the key ID.
func (tk *TransportKey) ID() string { return tk.id }

// Mode returns the wrapping mode.
func (tk *TransportKey) Mode() Mode { return tk.mode }

// KCV returns the key's check value: 3 bytes, under AES or 3DES by mode.
func (tk *TransportKey) KCV() []byte {
	z := make([]byte, tk.block.BlockSize())
	tk.block.Encrypt(z, z)
	return z[:3]
}

// CheckKCV compares a file header's check value (hex, either case) with the
// key's, in constant time.
func (tk *TransportKey) CheckKCV(kcvHex string) error {
	got, err := hex.DecodeString(strings.TrimSpace(kcvHex))
	if err != nil || len(got) != 3 {
		return fmt.Errorf("%w: %q is not 6 hex digits", ErrKCVMismatch, kcvHex)
	}
	if subtle.ConstantTimeCompare(got, tk.KCV()) != 1 {
		return fmt.Errorf("%w: key %s", ErrKCVMismatch, tk.id)
	}
	return nil
}

// Zero overwrites the key bytes. The key is unusable afterwards (the
// expanded cipher state is dropped too).
func (tk *TransportKey) Zero() {
	clear(tk.key)
	tk.block = nil
}

// Wrap protects plain under the key in its mode.
func (tk *TransportKey) Wrap(plain []byte) ([]byte, error) {
	if len(plain) == 0 || len(plain) > maxFieldLength {
		return nil, ErrBadLength
	}
	switch tk.mode {
	case AESKWP:
		return kwpWrap(tk.block, plain)
	case AESKW:
		return kwWrap(tk.block, plain)
	case AESGCM:
		aead, err := cipher.NewGCM(tk.block)
		if err != nil {
			return nil, err
		}
		nonce := make([]byte, gcmNonceSize, gcmNonceSize+len(plain)+aead.Overhead())
		if _, err := io.ReadFull(tk.rand, nonce); err != nil {
			return nil, fmt.Errorf("keywrap: nonce: %w", err)
		}
		return aead.Seal(nonce, nonce, plain, []byte(tk.id)), nil
	case AESCBCFixedIV:
		if len(plain)%aes.BlockSize != 0 {
			return nil, ErrBadLength
		}
		out := make([]byte, len(plain))
		cipher.NewCBCEncrypter(tk.block, tk.iv[:]).CryptBlocks(out, plain)
		return out, nil
	case AESECB, TripleDESECB:
		return ecb(tk.block, plain, true)
	}
	return nil, ErrBadMode
}

// Unwrap recovers the plaintext; the caller zeroes it after use.
func (tk *TransportKey) Unwrap(wrapped []byte) ([]byte, error) {
	if len(wrapped) == 0 || len(wrapped) > maxFieldLength+64 {
		return nil, ErrBadLength
	}
	switch tk.mode {
	case AESKWP:
		return kwpUnwrap(tk.block, wrapped)
	case AESKW:
		return kwUnwrap(tk.block, wrapped)
	case AESGCM:
		aead, err := cipher.NewGCM(tk.block)
		if err != nil {
			return nil, err
		}
		if len(wrapped) < gcmNonceSize+aead.Overhead()+1 {
			return nil, ErrBadLength
		}
		p, err := aead.Open(nil, wrapped[:gcmNonceSize], wrapped[gcmNonceSize:], []byte(tk.id))
		if err != nil {
			return nil, ErrUnwrap
		}
		return p, nil
	case AESCBCFixedIV:
		if len(wrapped)%aes.BlockSize != 0 {
			return nil, ErrBadLength
		}
		out := make([]byte, len(wrapped))
		cipher.NewCBCDecrypter(tk.block, tk.iv[:]).CryptBlocks(out, wrapped)
		return out, nil
	case AESECB, TripleDESECB:
		return ecb(tk.block, wrapped, false)
	}
	return nil, ErrBadMode
}

// ecb runs the block cipher over whole blocks without padding.
func ecb(b cipher.Block, in []byte, encrypt bool) ([]byte, error) {
	bs := b.BlockSize()
	if len(in)%bs != 0 {
		return nil, ErrBadLength
	}
	out := make([]byte, len(in))
	for i := 0; i < len(in); i += bs {
		if encrypt {
			b.Encrypt(out[i:i+bs], in[i:i+bs])
		} else {
			b.Decrypt(out[i:i+bs], in[i:i+bs])
		}
	}
	return out, nil
}

// KCV returns the check value of an AES key (16, 24 or 32 bytes: AES of
// 16 zero bytes) or of a single DES key (8 bytes). For 16- or 24-byte 3DES
// keys use DESKCV: the length alone cannot tell them from AES keys.
func KCV(key []byte) ([]byte, error) {
	switch len(key) {
	case 8:
		return DESKCV(key)
	case 16, 24, 32:
		b, err := aes.NewCipher(key)
		if err != nil {
			return nil, err
		}
		z := make([]byte, aes.BlockSize)
		b.Encrypt(z, z)
		return z[:3], nil
	}
	return nil, fmt.Errorf("%w: KCV of a %d-byte key", ErrBadKey, len(key))
}

// DESKCV returns the check value of a DES (8 bytes) or 3DES (16 or 24
// bytes) key: the first 3 bytes of 8 zero bytes encrypted.
func DESKCV(key []byte) ([]byte, error) {
	var (
		b   cipher.Block
		err error
	)
	if len(key) == 8 {
		b, err = des.NewCipher(key)
	} else {
		b, err = newTripleDES(key)
	}
	if err != nil {
		return nil, err
	}
	z := make([]byte, des.BlockSize)
	b.Encrypt(z, z)
	return z[:3], nil
}

// Keys finds a transport key by ID.
type Keys interface {
	TransportKey(id string) (*TransportKey, bool)
}

// KeySet is a set of transport keys by ID; it implements Keys.
type KeySet map[string]*TransportKey

// TransportKey returns the key with id.
func (s KeySet) TransportKey(id string) (*TransportKey, bool) {
	tk, ok := s[id]
	return tk, ok
}

// NewKeySet collects keys by ID.
func NewKeySet(keys ...*TransportKey) KeySet {
	s := KeySet{}
	for _, k := range keys {
		s[k.id] = k
	}
	return s
}

// WrapField wraps plain and encodes it as "<keyID>:<lower-case hex>".
func WrapField(tk *TransportKey, plain []byte) (string, error) {
	w, err := tk.Wrap(plain)
	if err != nil {
		return "", err
	}
	return tk.id + ":" + hex.EncodeToString(w), nil
}

// UnwrapField decodes a "<keyID>:<hex>" field and unwraps it with the key
// that keys has under that ID. A field under a key ID that keys does not
// hold is refused with ErrUnknownKey.
func UnwrapField(keys Keys, field string) ([]byte, error) {
	id, hx, ok := strings.Cut(field, ":")
	if !ok || !validID(id) || hx == "" {
		return nil, ErrBadField
	}
	wrapped, err := hex.DecodeString(hx)
	if err != nil {
		return nil, ErrBadField
	}
	tk, ok := keys.TransportKey(id)
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrUnknownKey, id)
	}
	return tk.Unwrap(wrapped)
}

// FieldKeyID returns the key ID a wrapped field names.
func FieldKeyID(field string) (string, error) {
	id, _, ok := strings.Cut(field, ":")
	if !ok || !validID(id) {
		return "", ErrBadField
	}
	return id, nil
}

// Zero overwrites b; use it on plaintext this package returned.
func Zero(b []byte) { clear(b) }
