package jobs

import (
	"context"
	"fmt"

	"resub/processor/ledger"
)

// resealer is the vault's rotation side.
type resealer interface {
	Reseal(aad, blob []byte) ([]byte, error)
	KeyID() string
}

// RotateKeys re-wraps every secret of the ledger that is not yet under the
// current master key, in transactions of a thousand. It can be rerun after
// a crash: blobs already re-wrapped are left as they are.
func (r *Runtime) RotateKeys(ctx context.Context) (rewrapped, kept int, err error) {
	v, ok := r.Party.Vault.(resealer)
	if !ok {
		return 0, 0, fmt.Errorf("the vault cannot re-wrap")
	}
	type item struct {
		iccid string
		s     ledger.Secret
	}
	var pending []item
	flush := func() error {
		if len(pending) == 0 {
			return nil
		}
		err := r.Ledger.InTx(ctx, func(tx *ledger.Tx) error {
			for _, it := range pending {
				if err := tx.PutSecret(ctx, it.iccid, it.s); err != nil {
					return err
				}
			}
			return nil
		})
		pending = pending[:0]
		return err
	}
	err = r.Ledger.AllSecrets(ctx, func(iccid string, s ledger.Secret) error {
		if s.MasterKey == v.KeyID() {
			kept++
			return nil
		}
		aad := []byte(fmt.Sprintf("%s/%s/%d", iccid, s.Name, s.KeyIndex))
		blob, err := v.Reseal(aad, s.Blob)
		if err != nil {
			return fmt.Errorf("card %s secret %s: %w", iccid, s.Name, err)
		}
		s.Blob, s.MasterKey = blob, v.KeyID()
		pending = append(pending, item{iccid, s})
		rewrapped++
		if len(pending) >= 1000 {
			return flush()
		}
		return nil
	})
	if err != nil {
		return rewrapped, kept, err
	}
	return rewrapped, kept, flush()
}
