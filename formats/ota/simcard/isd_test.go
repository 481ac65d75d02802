package simcard

import (
	"bytes"
	"testing"

	"resub/formats/ota"
)

var kik = []byte("kik-0123456789ab")

func isdCard(t *testing.T) (*Card, ota.TAR) {
	isd := ota.TAR{0x00, 0x00, 0x00}
	card := newCard(t, func(c *Config) {
		c.ISDTAR = &isd
		c.KeySets[0].KIK = kik
	})
	return card, isd
}

// The rotation round trip: PUT KEY under the old key set replaces it; the
// PoR (under the old keys) confirms with the new KVN and KCVs; the old
// keys are refused afterwards, the new ones work and the counter goes on.
func TestPutKeyRotation(t *testing.T) {
	for _, newKVN := range []int{1, 2} {
		card, isd := isdCard(t)
		old := &sender{t: t, p: profile(), keys: ota.Keys{KIc: kic, KID: kid}}
		nk := [][]byte{[]byte("new-kic-01234567"), []byte("new-kid-01234567"), []byte("new-kik-01234567")}
		cmd, err := ota.EncodePutKey(ota.PutKey{OldKVN: 1, NewKVN: newKVN, FirstID: 1, Type: ota.KeyTypeDES, Keys: nk}, kik)
		if err != nil {
			t.Fatal(err)
		}
		r, err := old.send(card, isd, 11, []ota.APDU{cmd})
		if err != nil || r.Status != ota.StatusOK {
			t.Fatalf("KVN %d: PoR %+v %v", newKVN, r, err)
		}
		res, err := ota.ParseCompactResponse(r.Data)
		if err != nil || res.Executed != 1 || res.LastSW != 0x9000 {
			t.Fatalf("result %+v %v", res, err)
		}
		want, _ := ota.PutKeyResponse(ota.PutKey{NewKVN: newKVN, Type: ota.KeyTypeDES, Keys: nk})
		if !bytes.Equal(res.Data, want) {
			t.Errorf("response data %x, want %x", res.Data, want)
		}
		ks, ok := card.KeySet(newKVN)
		if !ok || !bytes.Equal(ks.KIc, nk[0]) || !bytes.Equal(ks.KID, nk[1]) || !bytes.Equal(ks.KIK, nk[2]) || ks.Counter != 11 {
			t.Fatalf("key set after rotation: %v %+v", ok, ks)
		}
		if _, ok := card.KeySet(1); newKVN != 1 && ok {
			t.Error("old key set still on the card")
		}
		// The donor's old keys no longer work.
		apdus := []ota.APDU{{0x00, 0xa4, 0x00, 0x0c, 0x02, 0x6f, 0x07}}
		r, err = old.send(card, USIMRFMTAR(), 12, apdus)
		if err != nil || r.Status == ota.StatusOK || !r.Unsecured {
			t.Errorf("old keys: PoR %+v %v, want a refusal", r, err)
		}
		// The new ones do, with the counter going on from 11.
		nw := &sender{t: t, p: profile(), keys: ota.Keys{KIc: nk[0], KID: nk[1]}}
		nw.p.KIc = ota.KIc(byte(newKVN)<<4 | 0x05)
		nw.p.KID = ota.KID(byte(newKVN)<<4 | 0x05)
		r, err = nw.send(card, USIMRFMTAR(), 11, apdus)
		if err != nil || r.Status != card.cfg.CounterLowStatus {
			t.Errorf("new keys, replayed counter: %+v %v", r, err)
		}
		r, err = nw.send(card, USIMRFMTAR(), 12, apdus)
		if err != nil || r.Status != ota.StatusOK {
			t.Errorf("new keys: %+v %v", r, err)
		}
		if n, _ := card.Counter(newKVN); n != 12 {
			t.Errorf("counter %d", n)
		}
	}
}

// Adding a set (P1 00) and deleting the old one in the same script.
func TestPutKeyAddAndDelete(t *testing.T) {
	card, isd := isdCard(t)
	old := &sender{t: t, p: profile(), keys: ota.Keys{KIc: kic, KID: kid}}
	nk := [][]byte{[]byte("new-kic-01234567"), []byte("new-kid-01234567"), []byte("new-kik-01234567")}
	put, _ := ota.EncodePutKey(ota.PutKey{NewKVN: 3, FirstID: 1, Type: ota.KeyTypeDES, Keys: nk}, kik)
	r, err := old.send(card, isd, 11, []ota.APDU{put, ota.EncodeDeleteKeySet(1)})
	res, _ := ota.ParseCompactResponse(r.Data)
	if err != nil || r.Status != ota.StatusOK || res.Executed != 2 || res.LastSW != 0x9000 {
		t.Fatalf("%+v %+v %v", r, res, err)
	}
	if _, ok := card.KeySet(1); ok {
		t.Error("old set not deleted")
	}
	if ks, ok := card.KeySet(3); !ok || ks.Counter != 11 {
		t.Errorf("new set %v %+v", ok, ks)
	}
}

func TestPutKeyRefused(t *testing.T) {
	nk := [][]byte{[]byte("new-kic-01234567"), []byte("new-kid-01234567"), []byte("new-kik-01234567")}
	for _, c := range []struct {
		name string
		cmd  func() ota.APDU
		sw   uint16
	}{
		{"wrong KIK", func() ota.APDU {
			a, _ := ota.EncodePutKey(ota.PutKey{OldKVN: 1, NewKVN: 1, FirstID: 1, Type: ota.KeyTypeDES, Keys: nk}, []byte("another-kik-0123"))
			return a
		}, 0x9485},
		{"unknown old KVN", func() ota.APDU {
			a, _ := ota.EncodePutKey(ota.PutKey{OldKVN: 5, NewKVN: 5, FirstID: 1, Type: ota.KeyTypeDES, Keys: nk}, kik)
			return a
		}, 0x6a88},
		{"other key length", func() ota.APDU {
			long := [][]byte{append(bytes.Clone(nk[0]), nk[0][:8]...), nk[1], nk[2]}
			a, _ := ota.EncodePutKey(ota.PutKey{OldKVN: 1, NewKVN: 1, FirstID: 1, Type: ota.KeyTypeDES, Keys: long}, kik)
			return a
		}, 0x6a80},
		{"not GP class", func() ota.APDU {
			a, _ := ota.EncodePutKey(ota.PutKey{OldKVN: 1, NewKVN: 1, FirstID: 1, Type: ota.KeyTypeDES, Keys: nk}, kik)
			a[0] = 0x00
			return a
		}, 0x6e00},
	} {
		t.Run(c.name, func(t *testing.T) {
			card, isd := isdCard(t)
			s := &sender{t: t, p: profile(), keys: ota.Keys{KIc: kic, KID: kid}}
			r, err := s.send(card, isd, 11, []ota.APDU{c.cmd()})
			res, _ := ota.ParseCompactResponse(r.Data)
			if err != nil || res.LastSW != c.sw {
				t.Fatalf("SW %04x (%v), want %04x", res.LastSW, err, c.sw)
			}
			if ks, ok := card.KeySet(1); !ok || !bytes.Equal(ks.KIc, kic) {
				t.Error("key set changed by a refused PUT KEY")
			}
		})
	}
}

// A PUT KEY sent to the USIM RFM TAR is not key management.
func TestPutKeyOnlyOnISD(t *testing.T) {
	card, _ := isdCard(t)
	s := &sender{t: t, p: profile(), keys: ota.Keys{KIc: kic, KID: kid}}
	a, _ := ota.EncodePutKey(ota.PutKey{OldKVN: 1, NewKVN: 1, FirstID: 1, Type: ota.KeyTypeDES,
		Keys: [][]byte{[]byte("new-kic-01234567"), []byte("new-kid-01234567"), []byte("new-kik-01234567")}}, kik)
	r, err := s.send(card, USIMRFMTAR(), 11, []ota.APDU{a})
	res, _ := ota.ParseCompactResponse(r.Data)
	if err != nil || res.LastSW != 0x6d00 {
		t.Fatalf("SW %04x %v", res.LastSW, err)
	}
	if ks, _ := card.KeySet(1); !bytes.Equal(ks.KIc, kic) {
		t.Error("keys changed")
	}
}
