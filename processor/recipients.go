package processor

import (
	"fmt"
	"slices"
	"strings"

	"resub/crypto/pgp"
)

// recipients are the partner's keys an output is encrypted to: only
// pinned ones (when fingerprints are pinned), and only those that can be
// encrypted to now. A pinned key that cannot (expired or revoked during a
// rotation) is left out with a warning; with none left the output is
// refused. The runtime checks the same at start-up and before each job
// run, so that this refusal never follows a commit in practice.
func (p *Party) recipients(partner *Partner) ([]*pgp.Key, error) {
	pinned := partner.PublicKeys
	if len(partner.Fingerprints) > 0 {
		pinned = nil
		for _, k := range partner.PublicKeys {
			if slices.ContainsFunc(partner.Fingerprints, func(f string) bool {
				n, err := pgp.NormalizeFingerprint(f)
				return err == nil && n == k.Fingerprint()
			}) {
				pinned = append(pinned, k)
			}
		}
	}
	usable, skipped := pgp.EncryptionKeys(pinned, p.now())
	if len(usable) == 0 {
		why := []string{"no key is pinned"}
		if len(skipped) > 0 {
			why = why[:0]
			for _, err := range skipped {
				why = append(why, err.Error())
			}
		}
		return nil, &pgp.Error{Reason: pgp.ErrNoEncryptionKey, Detail: fmt.Sprintf("partner %s: %s", partner.Name, strings.Join(why, "; "))}
	}
	for _, err := range skipped {
		p.log().Warn("partner key left out of an output", "partner", partner.Name, "reason", err.Error())
	}
	return usable, nil
}
