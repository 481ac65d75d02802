package pgp

import (
	"encoding/hex"
	"time"
)

// SubkeyFingerprints returns the fingerprints of the key's subkeys, in the
// form of [Key.Fingerprint]. A fingerprint pinned for a partner must be a
// primary key's: a subkey's is the commonest slip when pinning.
func (k *Key) SubkeyFingerprints() []string {
	out := make([]string, 0, len(k.e.Subkeys))
	for _, s := range k.e.Subkeys {
		out = append(out, hex.EncodeToString(s.PublicKey.Fingerprint))
	}
	return out
}

// Expires returns when the primary key expires, and false if it never
// does.
func (k *Key) Expires() (time.Time, bool) {
	sig, _ := k.e.PrimarySelfSignature()
	if sig == nil || sig.KeyLifetimeSecs == nil || *sig.KeyLifetimeSecs == 0 {
		return time.Time{}, false
	}
	return k.e.PrimaryKey.CreationTime.Add(time.Duration(*sig.KeyLifetimeSecs) * time.Second), true
}

// EncryptionProblem reports why [Encrypt] cannot encrypt to the key at now
// (revoked, expired, not yet valid, no encryption subkey), or nil if it
// can. The error unwraps to [ErrNoEncryptionKey].
func (k *Key) EncryptionProblem(now time.Time) error {
	if _, ok := k.e.EncryptionKey(now); ok {
		return nil
	}
	fail := func(why string) error {
		return &Error{Reason: ErrNoEncryptionKey, Detail: k.Fingerprint() + " " + why}
	}
	e := k.e
	sig, ident := e.PrimarySelfSignature()
	switch {
	case sig == nil:
		return fail("has no valid self-signature")
	case e.Revoked(now) || ident != nil && ident.Revoked(now):
		return fail("is revoked")
	case e.PrimaryKey.CreationTime.After(now):
		return fail("is created in the future (" + e.PrimaryKey.CreationTime.UTC().Format(time.RFC3339) + ")")
	case e.PrimaryKey.KeyExpired(sig, now) || sig.SigExpired(now):
		if t, ok := k.Expires(); ok {
			return fail("expired " + t.UTC().Format(time.RFC3339))
		}
		return fail("is expired")
	}
	// The primary key is valid: say what became of the encryption subkeys.
	var expired, revoked int
	for _, s := range e.Subkeys {
		if !s.Sig.FlagsValid || !s.Sig.FlagEncryptCommunications || !s.PublicKey.PubKeyAlgo.CanEncrypt() {
			continue
		}
		switch {
		case s.Revoked(now):
			revoked++
		case s.PublicKey.KeyExpired(s.Sig, now) || s.Sig.SigExpired(now):
			expired++
		}
	}
	switch {
	case expired > 0:
		return fail("has only expired encryption subkeys")
	case revoked > 0:
		return fail("has only revoked encryption subkeys")
	}
	return fail("has no encryption subkey")
}

// EncryptionKeys splits keys into those [Encrypt] can encrypt to at now
// and, for the others, why not (each unwrapping to [ErrNoEncryptionKey]).
// During a partner's key rotation one pinned key may have expired while
// the next is valid: encrypting to the valid ones is what the partner
// expects.
func EncryptionKeys(keys []*Key, now time.Time) (usable []*Key, skipped []error) {
	for _, k := range keys {
		if err := k.EncryptionProblem(now); err != nil {
			skipped = append(skipped, err)
			continue
		}
		usable = append(usable, k)
	}
	return usable, skipped
}
