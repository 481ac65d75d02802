package ota

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"testing"
)

func mustHex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// The key check values of GP Card Specification Annex B.6 for the
// GlobalPlatform default test key 404142…4F: 8BAF47 (3DES) is the value
// published with that key by GP tools; both were recomputed with OpenSSL
// (des-ede-ecb of 8 × 00, aes-128-ecb of 16 × 01).
func TestKeyCheckValue(t *testing.T) {
	key := mustHex(t, "404142434445464748494a4b4c4d4e4f")
	for _, c := range []struct {
		typ  byte
		want string
	}{{KeyTypeDES, "8baf47"}, {KeyTypeAES, "504a77"}} {
		got, err := KeyCheckValue(c.typ, key)
		if err != nil || hex.EncodeToString(got) != c.want {
			t.Errorf("type %02x: %x, %v; want %s", c.typ, got, err, c.want)
		}
	}
}

// PUT KEY vectors. Layout from GP Card Specification §11.8 (P1 old KVN,
// P2 81 = several keys from identifier 1, Basic key data fields of Table
// 11-68), the layout pySim's put_key builds; the key sets are those of
// pySim's "Managing GP Keys" guide (docs/put_key-tutorial.rst: the 3DES
// rotation of key version 112 under the sysmoUSIM-SJA5 DEK, the AES-128
// SCP80 key set of version 3 and the AES-256 SCP03 set). Enciphered
// components and KCVs were computed independently with OpenSSL 3.0
// (des-ede-ecb; aes-128-cbc / aes-256-cbc with a zero IV, which pins CBC
// chaining for two-block keys).
var putKeyVectors = []struct {
	name string
	pk   PutKey
	kik  string
	want string
}{
	{
		name: "3DES rotate KVN 112 in place",
		pk:   PutKey{OldKVN: 0x70, NewKVN: 0x70, FirstID: 1, Type: KeyTypeDES},
		kik:  "8f8aee5cdcc5d361368bc45673d99195",
		want: "80d870814370" +
			"8010 12778d87adbc93d7ecfecfdb5da2b653 03 d13b0a" +
			"8010 acd4fe6d8810799830ed68302656d1be 03 8511d7" +
			"8010 854f63fa2176f8e73887910f0a392726 03 1bc4ee",
	},
	{
		name: "AES-128 add KVN 3",
		pk:   PutKey{OldKVN: 0, NewKVN: 3, FirstID: 1, Type: KeyTypeAES},
		kik:  "000102030405060708090a0b0c0d0e0f",
		want: "80d800814303" +
			"8810 f7b1467436b487d8a5cb11bc415606e6 03 b956d3" +
			"8810 6ede239e14bc67689bb4f7ab0b791614 03 9cc231" +
			"8810 fe9fcad6fe7b8d3ea0c1d070d0d0a149 03 7c7030",
	},
	{
		name: "AES-256 replace KVN 2 by 4",
		pk:   PutKey{OldKVN: 2, NewKVN: 4, FirstID: 1, Type: KeyTypeAES},
		kik:  "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f",
		want: "80d802817304" +
			"8820 98f4f2aa2092215225003078e6a55a8591d013af27bb4720dc96c44ff6e77653 03 ba4709" +
			"8820 d092ca9a438d86842a7ae9acb811a30624579e0d6e22fb7f52ee745efd527c53 03 cd0e9c" +
			"8820 0921d6c54856bd3bc1eb9e687c7849dca2322e0ef22baa412fbad0a58f480f94 03 35d7d3",
	},
}

var vectorKeys = map[byte][][]string{
	KeyTypeDES: {{"542c37a6043679f2f9f71116418b1cd5", "34f11bac8e5390b57f4e601372339e3c", "5524f4becfe96fb63fc29d6baac6058b"}},
	KeyTypeAES: {
		{"542c37a6043679f2f9f71116418b1cd5", "34f11bac8e5390b57f4e601372339e3c", "5524f4becfe96fb63fc29d6baac6058b"},
		{"620ff456b0c0328b68dc0d7d5eb24e07dd749aa86c9ff1836a7263e1d8896510", "b38116a2c85f2c8f46bbdc0081d6e8a04b0a58087d0ce5ee0ccc4c945e4aeda6", "d409486cbcb8092a8592ee46d8668dfa97bea5eb7ce9c2b5a3f3bb1db358a153"},
	},
}

func vectorPutKey(t testing.TB, i int) (PutKey, []byte, []byte) {
	v := putKeyVectors[i]
	pk := v.pk
	set := vectorKeys[pk.Type][0]
	if i == 2 {
		set = vectorKeys[KeyTypeAES][1]
	}
	for _, k := range set {
		pk.Keys = append(pk.Keys, mustHex(t, k))
	}
	return pk, mustHex(t, v.kik), mustHex(t, v.want)
}

func TestEncodePutKeyVectors(t *testing.T) {
	for i, v := range putKeyVectors {
		t.Run(v.name, func(t *testing.T) {
			pk, kik, want := vectorPutKey(t, i)
			got, err := EncodePutKey(pk, kik)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("\n got %x\nwant %x", got, want)
			}
			back, err := DecodePutKey(want, kik)
			if err != nil {
				t.Fatal(err)
			}
			if back.OldKVN != pk.OldKVN || back.NewKVN != pk.NewKVN || back.FirstID != 1 || back.Type != pk.Type || len(back.Keys) != 3 {
				t.Fatalf("decoded %+v", back)
			}
			for j := range pk.Keys {
				if !bytes.Equal(back.Keys[j], pk.Keys[j]) {
					t.Errorf("key %d: %x, want %x", j+1, back.Keys[j], pk.Keys[j])
				}
			}
		})
	}
}

func TestDecodePutKeyRefuses(t *testing.T) {
	pk, kik, good := vectorPutKey(t, 0)
	_ = pk
	t.Run("wrong KIK", func(t *testing.T) {
		other := bytes.Clone(kik)
		other[0] ^= 0x02 // not a parity bit
		if _, err := DecodePutKey(good, other); !errors.Is(err, ErrKCV) {
			t.Fatalf("err %v, want ErrKCV", err)
		}
	})
	t.Run("tampered KCV", func(t *testing.T) {
		bad := bytes.Clone(good)
		bad[len(bad)-1] ^= 1
		if _, err := DecodePutKey(bad, kik); !errors.Is(err, ErrKCV) {
			t.Fatalf("err %v, want ErrKCV", err)
		}
	})
	t.Run("truncated", func(t *testing.T) {
		bad := bytes.Clone(good[:len(good)-2])
		bad[4] = byte(len(bad) - 5)
		if _, err := DecodePutKey(bad, kik); !errors.Is(err, ErrPutKey) {
			t.Fatalf("err %v, want ErrPutKey", err)
		}
	})
	t.Run("not PUT KEY", func(t *testing.T) {
		if _, err := DecodePutKey(EncodeDeleteKeySet(1), kik); !errors.Is(err, ErrPutKey) {
			t.Fatalf("err %v", err)
		}
	})
}

func TestEncodePutKeyRefuses(t *testing.T) {
	kik := mustHex(t, "000102030405060708090a0b0c0d0e0f")
	for name, pk := range map[string]PutKey{
		"no keys":       {NewKVN: 1, FirstID: 1, Type: KeyTypeAES},
		"KVN 0":         {NewKVN: 0, FirstID: 1, Type: KeyTypeAES, Keys: [][]byte{kik}},
		"odd length":    {NewKVN: 1, FirstID: 1, Type: KeyTypeAES, Keys: [][]byte{kik[:15]}},
		"unknown type":  {NewKVN: 1, FirstID: 1, Type: 0x99, Keys: [][]byte{kik}},
		"DES 7 octets":  {NewKVN: 1, FirstID: 1, Type: KeyTypeDES, Keys: [][]byte{kik[:7]}},
		"first id zero": {NewKVN: 1, FirstID: 0, Type: KeyTypeAES, Keys: [][]byte{kik}},
	} {
		if _, err := EncodePutKey(pk, kik); !errors.Is(err, ErrPutKey) {
			t.Errorf("%s: err %v", name, err)
		}
	}
}

func TestPutKeyResponse(t *testing.T) {
	pk, _, _ := vectorPutKey(t, 0)
	got, err := PutKeyResponse(pk)
	if err != nil || hex.EncodeToString(got) != "70d13b0a8511d71bc4ee" {
		t.Fatalf("%x %v", got, err)
	}
}

func FuzzDecodePutKey(f *testing.F) {
	for _, v := range putKeyVectors {
		f.Add(mustHex(f, v.want), mustHex(f, v.kik))
	}
	f.Fuzz(func(t *testing.T, a, kik []byte) {
		pk, err := DecodePutKey(a, kik)
		if err != nil {
			return
		}
		again, err := EncodePutKey(pk, kik)
		if err != nil {
			return // e.g. a KVN beyond 7F or an empty KCV
		}
		back, err := DecodePutKey(again, kik)
		if err != nil {
			t.Fatalf("re-encoded command does not decode: %v", err)
		}
		for i := range pk.Keys {
			if !bytes.Equal(back.Keys[i], pk.Keys[i]) {
				t.Fatalf("key %d changed", i)
			}
		}
	})
}

func BenchmarkEncodePutKey(b *testing.B) {
	for i, v := range putKeyVectors {
		b.Run(v.name, func(b *testing.B) {
			pk, kik, _ := vectorPutKey(b, i)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := EncodePutKey(pk, kik); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// Replacing key version 1 of an AES key set: the keys travel enciphered
// under the current KIK, each with its key check value.
func ExampleEncodePutKey() {
	kik, _ := hex.DecodeString("000102030405060708090a0b0c0d0e0f")
	key, _ := hex.DecodeString("542c37a6043679f2f9f71116418b1cd5")
	a, err := EncodePutKey(PutKey{OldKVN: 1, NewKVN: 1, FirstID: 1, Type: KeyTypeAES, Keys: [][]byte{key}}, kik)
	if err != nil {
		panic(err)
	}
	fmt.Printf("%x\n", a)
	// Output: 80d8010117018810f7b1467436b487d8a5cb11bc415606e603b956d3
}
