package processor

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"

	"resub/crypto/keywrap"
)

// SealVault is the Vault over the master key: AES-256-GCM sealing from
// package keywrap, several keys during a rotation, and a keyed fingerprint
// for import conflict checks.
type SealVault struct {
	current *keywrap.Sealer
	byID    map[string]*keywrap.Sealer
	fpKey   []byte
}

// NewVault makes a vault sealing under current and opening under it and
// previous keys. fpKey keys the fingerprints (derive it from the master
// key; it never leaves memory).
func NewVault(current *keywrap.Sealer, fpKey []byte, previous ...*keywrap.Sealer) *SealVault {
	v := &SealVault{current: current, byID: map[string]*keywrap.Sealer{current.ID(): current}, fpKey: append([]byte(nil), fpKey...)}
	for _, s := range previous {
		v.byID[s.ID()] = s
	}
	return v
}

// Seal implements Vault.
func (v *SealVault) Seal(aad, plain []byte) ([]byte, error) { return v.current.Seal(aad, plain) }

// Open implements Vault: the blob names the key that sealed it.
func (v *SealVault) Open(aad, blob []byte) ([]byte, error) {
	id, err := keywrap.KeyID(blob)
	if err != nil {
		return nil, err
	}
	s, ok := v.byID[id]
	if !ok {
		return nil, fmt.Errorf("secret sealed under master key %q, which is not configured", id)
	}
	return s.Open(aad, blob)
}

// KeyID implements Vault.
func (v *SealVault) KeyID() string { return v.current.ID() }

// Fingerprint implements Vault: HMAC-SHA-256 under the fingerprint key,
// with lengths so that parts cannot run into each other.
func (v *SealVault) Fingerprint(parts ...[]byte) string {
	m := hmac.New(sha256.New, v.fpKey)
	for _, p := range parts {
		var n [4]byte
		n[0], n[1], n[2], n[3] = byte(len(p)>>24), byte(len(p)>>16), byte(len(p)>>8), byte(len(p))
		m.Write(n[:])
		m.Write(p)
	}
	return hex.EncodeToString(m.Sum(nil)[:16])
}

// Reseal re-wraps a blob under the current key (key rotation).
func (v *SealVault) Reseal(aad, blob []byte) ([]byte, error) {
	id, err := keywrap.KeyID(blob)
	if err != nil {
		return nil, err
	}
	from, ok := v.byID[id]
	if !ok {
		return nil, fmt.Errorf("secret sealed under master key %q, which is not configured", id)
	}
	return keywrap.Reseal(from, v.current, aad, blob)
}

// FingerprintKey derives the fingerprint key from the master key.
func FingerprintKey(master []byte) []byte {
	m := hmac.New(sha256.New, master)
	m.Write([]byte("resub secrets fingerprint v1"))
	return m.Sum(nil)
}

// KeyTransport is the Transport over a partner's transport keys: it
// unwraps with any of them and wraps with the first.
type KeyTransport struct {
	keys  keywrap.KeySet
	write *keywrap.TransportKey
}

// NewTransport makes a partner's transport from its keys; write is the
// one we wrap with.
func NewTransport(write *keywrap.TransportKey, others ...*keywrap.TransportKey) *KeyTransport {
	all := append([]*keywrap.TransportKey{write}, others...)
	return &KeyTransport{keys: keywrap.NewKeySet(all...), write: write}
}

// WriteKeyID implements Transport.
func (t *KeyTransport) WriteKeyID() string { return t.write.ID() }

// KCV implements Transport.
func (t *KeyTransport) KCV(id string) ([]byte, bool) {
	k, ok := t.keys.TransportKey(id)
	if !ok {
		return nil, false
	}
	return k.KCV(), true
}

// Wrap implements Transport.
func (t *KeyTransport) Wrap(plain []byte) (string, error) { return keywrap.WrapField(t.write, plain) }

// Unwrap implements Transport.
func (t *KeyTransport) Unwrap(field string) ([]byte, error) {
	return keywrap.UnwrapField(t.keys, field)
}
