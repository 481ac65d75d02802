package simcard

import (
	"errors"

	"resub/formats/ota"
)

// Status words of the security domain.
const (
	swSecurityNotSatisfied = 0x6982
	swConditionsNotMet     = 0x6985
	swRefNotFound          = 0x6a88
	swBadCLA               = 0x6e00
	swInvalidKCV           = 0x9485
)

// execISD runs one command for the security domain behind the ISD TAR:
// PUT KEY replaces (P1 = its KVN) or adds (P1 = 00) an OTA key set, its
// key data deciphered with the KIK of the key set that secured the message
// and every KCV checked; DELETE removes a key set by KVN. A replaced key
// set keeps its replay counter, an added one starts from the securing
// set's, so counters continue across a rotation. Only 3a cards (key sets
// by KVN) take key management; the PoR of the message is still secured
// under the keys that secured it.
func (c *Card) execISD(a ota.APDU) ([]byte, uint16) {
	if c.index > 0 {
		return nil, swConditionsNotMet
	}
	if a[0]&0x80 == 0 {
		return nil, swBadCLA
	}
	switch a[1] {
	case ota.INSPutKey:
		return c.putKey(a)
	case ota.INSDelete:
		if len(a) != 8 || a[4] != 3 || a[5] != 0xd2 || a[6] != 0x01 {
			return nil, swBadData
		}
		kvn := int(a[7])
		if c.keySets[kvn] == nil {
			return nil, swRefNotFound
		}
		delete(c.keySets, kvn)
		return []byte{0x00}, swOK
	}
	return nil, swBadINS
}

func (c *Card) putKey(a ota.APDU) ([]byte, uint16) {
	if c.auth == nil || len(c.auth.KIK) == 0 {
		return nil, swSecurityNotSatisfied
	}
	pk, err := ota.DecodePutKey(a, c.auth.KIK)
	switch {
	case errors.Is(err, ota.ErrKCV):
		return nil, swInvalidKCV
	case err != nil:
		return nil, swBadData
	}
	if pk.FirstID != 1 || len(pk.Keys) != 3 || pk.NewKVN < 1 || pk.NewKVN > 15 {
		return nil, swBadData // a whole SCP80 key set: KIc, KID, KIK
	}
	counter := c.auth.Counter
	if pk.OldKVN != 0 {
		old := c.keySets[pk.OldKVN]
		if old == nil {
			return nil, swRefNotFound
		}
		// A replaced key keeps its type and length.
		if len(pk.Keys[0]) != len(old.KIc) || len(pk.Keys[1]) != len(old.KID) || len(pk.Keys[2]) != len(old.KIK) {
			return nil, swBadData
		}
		if pk.NewKVN != pk.OldKVN && c.keySets[pk.NewKVN] != nil {
			return nil, swBadData
		}
		counter = old.Counter
		delete(c.keySets, pk.OldKVN)
	} else if c.keySets[pk.NewKVN] != nil {
		return nil, swBadData
	}
	resp, err := ota.PutKeyResponse(pk)
	if err != nil {
		return nil, swBadData
	}
	c.keySets[pk.NewKVN] = &KeySet{KVN: pk.NewKVN, KIc: pk.Keys[0], KID: pk.Keys[1], KIK: pk.Keys[2], Counter: counter}
	return resp, swOK
}

// KeySet returns a copy of the card's key set kvn (3a cards), false if
// the card has none of that version.
func (c *Card) KeySet(kvn int) (KeySet, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	k := c.keySet(kvn)
	if k == nil {
		return KeySet{}, false
	}
	return cloneKeySet(*k), true
}
