package vendor

import (
	"fmt"
	"strconv"

	"resub/formats/native"
)

// Wrapper wraps one clear secret under the receiver's transport or master
// key and returns the native form "keyID:hex". Package crypto provides
// it; the clear bytes must not be kept.
type Wrapper func(clear []byte) (string, error)

// ToInventory turns a card into a native inventory record, wrapping every
// secret with wrap. Encrypted cards (under the vendor's transport key)
// must be decrypted first: ToInventory refuses them. profile is used when
// the file names none; the card's OTA key sets fill kvn, kic… of up to
// native.MaxKeySets sets, in the order of the file.
func ToInventory(c *Card, h *Header, profile string, wrap Wrapper) (*native.Record, error) {
	if c.Encrypted {
		return nil, fmt.Errorf("vendor: card %s: secrets still encrypted under %s", c.ICCID, h.TransportKey)
	}
	if len(c.KeySets) > native.MaxKeySets {
		return nil, fmt.Errorf("vendor: card %s has %d key sets, at most %d are kept", c.ICCID, len(c.KeySets), native.MaxKeySets)
	}
	r := native.NewRecord(native.Inventory)
	r.Line = c.Line
	set := func(field string, secret []byte) error {
		if secret == nil {
			return nil
		}
		w, err := wrap(secret)
		if err != nil {
			return fmt.Errorf("vendor: card %s: wrap %s: %w", c.ICCID, field, err)
		}
		r.Set(field, w)
		return nil
	}
	r.Set(native.FieldICCID, c.ICCID)
	r.Set(native.FieldIMSI, c.IMSI)
	if err := set(native.FieldKi, c.Ki); err != nil {
		return nil, err
	}
	if err := set(native.FieldOPc, c.OPc); err != nil {
		return nil, err
	}
	r.Set(native.FieldAlgorithm, c.Algorithm)
	if h.Profile != "" {
		profile = h.Profile
	}
	r.Set(native.FieldProfile, profile)
	for i, ks := range c.KeySets {
		n := i + 1
		name := func(base string) string {
			if n == 1 {
				return base
			}
			return base + "-" + strconv.Itoa(n)
		}
		r.Set(name(native.FieldKVN), strconv.Itoa(ks.KVN))
		for _, s := range []struct {
			f string
			b []byte
		}{{native.FieldKIc, ks.KIc}, {native.FieldKID, ks.KID}, {native.FieldKIK, ks.KIK}} {
			if err := set(name(s.f), s.b); err != nil {
				return nil, err
			}
		}
		if c.Counter >= 0 {
			r.Set(name(native.FieldCounter), strconv.FormatInt(c.Counter, 10))
		}
	}
	if c.KeyListLength > 0 {
		r.Set(native.FieldKeyListLength, strconv.Itoa(c.KeyListLength))
		r.Set(native.FieldKeyIndex, "1")
	}
	return r, nil
}
