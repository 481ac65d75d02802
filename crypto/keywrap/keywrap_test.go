package keywrap

import (
	"bytes"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
)

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func mustKey(t testing.TB, id, key string, mode Mode, opts TransportKeyOptions) *TransportKey {
	t.Helper()
	tk, err := NewTransportKey(id, unhex(t, key), mode, opts)
	if err != nil {
		t.Fatal(err)
	}
	return tk
}

// Vectors: RFC 3394 §4.1-4.3 and §4.6, RFC 5649 §6, NIST SP 800-38A F.1.1,
// and for the vendor modes values computed with OpenSSL (an independent
// implementation) over the TS 35.208 test set 1 K.
var vectors = []struct {
	name, kek string
	mode      Mode
	iv        string
	plain     string
	wrapped   string
}{
	{"RFC 3394 4.1 128-bit KEK", "000102030405060708090A0B0C0D0E0F", AESKW, "", "00112233445566778899AABBCCDDEEFF", "1FA68B0A8112B447 AEF34BD8FB5A7B82 9D3E862371D2CFE5"},
	{"RFC 3394 4.2 192-bit KEK", "000102030405060708090A0B0C0D0E0F1011121314151617", AESKW, "", "00112233445566778899AABBCCDDEEFF", "96778B25AE6CA435 F92B5B97C050AED2 468AB8A17AD84E5D"},
	{"RFC 3394 4.3 256-bit KEK", "000102030405060708090A0B0C0D0E0F101112131415161718191A1B1C1D1E1F", AESKW, "", "00112233445566778899AABBCCDDEEFF", "64E8C3F9CE0F5BA2 63E9777905818A2A 93C8191E7D6E8AE7"},
	{"RFC 3394 4.6 256-bit data", "000102030405060708090A0B0C0D0E0F101112131415161718191A1B1C1D1E1F", AESKW, "", "00112233445566778899AABBCCDDEEFF000102030405060708090A0B0C0D0E0F", "28C9F404C4B810F4 CBCCB35CFB87F826 3F5786E2D80ED326 CBC7F0E71A99F43B FB988B9B7A02DD21"},
	{"RFC 5649 6 20 octets", "5840df6e29b02af1ab493b705bf16ea1ae8338f4dcc176a8", AESKWP, "", "c37b7e6492584340bed12207808941155068f738", "138bdeaa9b8fa7fc61f97742e72248ee5ae6ae5360d1ae6a5f54f373fa543b6a"},
	{"RFC 5649 6 7 octets", "5840df6e29b02af1ab493b705bf16ea1ae8338f4dcc176a8", AESKWP, "", "466f7250617369", "afbeb0f07dfbf5419200f2ccb50bb24f"},
	{"SP 800-38A F.1.1 ECB-AES128", "2b7e151628aed2a6abf7158809cf4f3c", AESECB, "", "6bc1bee22e409f96e93d7e117393172a", "3ad77bb40d7a3660a89ecaf32466ef97"},
	{"SP 800-38A F.2.1 CBC-AES128 block 1", "2b7e151628aed2a6abf7158809cf4f3c", AESCBCFixedIV, "000102030405060708090a0b0c0d0e0f", "6bc1bee22e409f96e93d7e117393172a", "7649abac8119b246cee98e9b12e9197d"},
	{"Ki under AES-128-CBC IV 0x23..", "000102030405060708090a0b0c0d0e0f", AESCBCFixedIV, "", "465B5CE8B199B49FAA5F0A2EE238A6BC", "82916286ee3bf17274b425ab2cce7f91"},
	{"Ki under AES-128-ECB", "000102030405060708090a0b0c0d0e0f", AESECB, "", "465B5CE8B199B49FAA5F0A2EE238A6BC", "e42c646c9acaacd57c8480a02a3dee8e"},
	{"Ki under 2-key 3DES-ECB", "0123456789ABCDEFFEDCBA9876543210", TripleDESECB, "", "465B5CE8B199B49FAA5F0A2EE238A6BC", "d0ebfcebde43c80b0a35429071d17a10"},
	{"Ki under 3-key 3DES-ECB", "0123456789ABCDEFFEDCBA987654321089ABCDEF01234567", TripleDESECB, "", "465B5CE8B199B49FAA5F0A2EE238A6BC", "45e076e0d38fc9afa2d17e7dc87c650b"},
}

func TestVectors(t *testing.T) {
	for _, v := range vectors {
		t.Run(v.name, func(t *testing.T) {
			var opts TransportKeyOptions
			if v.iv != "" {
				opts.IV = unhex(t, v.iv)
			}
			tk := mustKey(t, "tk-1", v.kek, v.mode, opts)
			plain, want := unhex(t, v.plain), unhex(t, v.wrapped)
			got, err := tk.Wrap(plain)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("Wrap = %x, want %x", got, want)
			}
			back, err := tk.Unwrap(want)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(back, plain) {
				t.Fatalf("Unwrap = %x, want %x", back, plain)
			}
		})
	}
}

func TestKCV(t *testing.T) {
	for _, tc := range []struct {
		name, key, want string
		des             bool
	}{
		{"AES-128 zero key (AES(0,0) = 66e94bd4...)", "00000000000000000000000000000000", "66e94b", false},
		{"2-key 3DES 0123..3210", "0123456789ABCDEFFEDCBA9876543210", "08d7b4", true},
		{"DES 0123456789ABCDEF", "0123456789ABCDEF", "d5d44f", false},
		{"DES via DESKCV", "0123456789ABCDEF", "d5d44f", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			kcv := KCV
			if tc.des {
				kcv = DESKCV
			}
			got, err := kcv(unhex(t, tc.key))
			if err != nil {
				t.Fatal(err)
			}
			if hex.EncodeToString(got) != tc.want {
				t.Fatalf("KCV = %x, want %s", got, tc.want)
			}
		})
	}
	if _, err := KCV(make([]byte, 5)); !errors.Is(err, ErrBadKey) {
		t.Errorf("KCV of 5 bytes: %v", err)
	}
	tk := mustKey(t, "tk", "0123456789ABCDEFFEDCBA9876543210", TripleDESECB, TransportKeyOptions{})
	if err := tk.CheckKCV("08D7B4"); err != nil {
		t.Errorf("CheckKCV upper case: %v", err)
	}
	if err := tk.CheckKCV("08d7b5"); !errors.Is(err, ErrKCVMismatch) {
		t.Errorf("CheckKCV wrong: %v", err)
	}
	aes := mustKey(t, "tk", "0123456789ABCDEFFEDCBA9876543210", AESKWP, TransportKeyOptions{})
	if err := aes.CheckKCV("08d7b4"); !errors.Is(err, ErrKCVMismatch) {
		t.Errorf("an AES key must not match the 3DES KCV of the same bytes: %v", err)
	}
}

func TestAuthenticatedModesDetectWrongKeyAndTampering(t *testing.T) {
	ki := unhex(t, "465B5CE8B199B49FAA5F0A2EE238A6BC")
	for _, mode := range []Mode{AESKWP, AESKW, AESGCM} {
		t.Run(string(mode), func(t *testing.T) {
			tk := mustKey(t, "tk-a", "000102030405060708090a0b0c0d0e0f", mode, TransportKeyOptions{})
			other := mustKey(t, "tk-a", "000102030405060708090a0b0c0d0e1f", mode, TransportKeyOptions{})
			w, err := tk.Wrap(ki)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := other.Unwrap(w); !errors.Is(err, ErrUnwrap) {
				t.Errorf("wrong key: %v", err)
			}
			for i := range w {
				bad := bytes.Clone(w)
				bad[i] ^= 1
				if _, err := tk.Unwrap(bad); !errors.Is(err, ErrUnwrap) {
					t.Fatalf("byte %d flipped: %v", i, err)
				}
			}
			if _, err := tk.Unwrap(w[:len(w)-8]); err == nil {
				t.Error("shortened blob accepted")
			}
			p, err := tk.Unwrap(w)
			if err != nil || !bytes.Equal(p, ki) {
				t.Fatalf("control: %x %v", p, err)
			}
		})
	}
	// GCM binds the key ID: the same key under another ID does not open.
	a := mustKey(t, "tk-a", "000102030405060708090a0b0c0d0e0f", AESGCM, TransportKeyOptions{})
	b := mustKey(t, "tk-b", "000102030405060708090a0b0c0d0e0f", AESGCM, TransportKeyOptions{})
	w, _ := a.Wrap(ki)
	if _, err := b.Unwrap(w); !errors.Is(err, ErrUnwrap) {
		t.Errorf("GCM under another ID: %v", err)
	}
}

func TestKWPAllLengths(t *testing.T) {
	tk := mustKey(t, "tk", "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f", AESKWP, TransportKeyOptions{})
	for n := 1; n <= 72; n++ {
		p := bytes.Repeat([]byte{byte(n)}, n)
		w, err := tk.Wrap(p)
		if err != nil {
			t.Fatal(err)
		}
		if want := (n+7)/8*8 + 8; len(w) != want {
			t.Fatalf("len %d: wrapped %d bytes, want %d", n, len(w), want)
		}
		got, err := tk.Unwrap(w)
		if err != nil || !bytes.Equal(got, p) {
			t.Fatalf("len %d: %x %v", n, got, err)
		}
	}
}

func TestNewTransportKeyErrors(t *testing.T) {
	for _, tc := range []struct {
		name, id string
		key      []byte
		mode     Mode
		want     error
	}{
		{"short AES", "tk", make([]byte, 15), AESKWP, ErrBadKey},
		{"3DES 32 bytes", "tk", make([]byte, 32), TripleDESECB, ErrBadKey},
		{"unknown mode", "tk", make([]byte, 16), "rot13", ErrBadMode},
		{"colon in ID", "tk:1", make([]byte, 16), AESKWP, ErrBadID},
		{"empty ID", "", make([]byte, 16), AESKWP, ErrBadID},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := NewTransportKey(tc.id, tc.key, tc.mode, TransportKeyOptions{}); !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
	tk := mustKey(t, "tk", "000102030405060708090a0b0c0d0e0f", AESECB, TransportKeyOptions{})
	if _, err := tk.Wrap(make([]byte, 15)); !errors.Is(err, ErrBadLength) {
		t.Errorf("ECB of 15 bytes: %v", err)
	}
}

func TestFields(t *testing.T) {
	tk := mustKey(t, "tk-b-2026", "5840df6e29b02af1ab493b705bf16ea1ae8338f4dcc176a8", AESKWP, TransportKeyOptions{})
	f, err := WrapField(tk, unhex(t, "466f7250617369"))
	if err != nil {
		t.Fatal(err)
	}
	if want := "tk-b-2026:afbeb0f07dfbf5419200f2ccb50bb24f"; f != want {
		t.Fatalf("WrapField = %q, want %q", f, want)
	}
	keys := NewKeySet(tk)
	for _, in := range []string{f, "tk-b-2026:AFBEB0F07DFBF5419200F2CCB50BB24F"} {
		p, err := UnwrapField(keys, in)
		if err != nil || hex.EncodeToString(p) != "466f7250617369" {
			t.Errorf("UnwrapField(%q) = %x, %v", in, p, err)
		}
	}
	for _, tc := range []struct {
		field string
		want  error
	}{
		{"tk-a-2025:afbeb0f07dfbf5419200f2ccb50bb24f", ErrUnknownKey},
		{"afbeb0f07dfbf5419200f2ccb50bb24f", ErrBadField},
		{"tk-b-2026:", ErrBadField},
		{"tk-b-2026:afbeb0f07dfbf5419200f2ccb50bb24", ErrBadField},
		{"tk-b-2026:zz", ErrBadField},
		{"tk-b-2026:afbeb0f07dfbf5419200f2ccb50bb24e", ErrUnwrap},
		{"tk-b-2026:afbeb0f07dfbf541", ErrBadLength},
	} {
		t.Run(tc.field, func(t *testing.T) {
			_, err := UnwrapField(keys, tc.field)
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			var r interface{ Refused() bool }
			if !errors.As(err, &r) || !r.Refused() {
				t.Errorf("%v is not a refusal", err)
			}
			if strings.Contains(err.Error(), "466f") {
				t.Error("error leaks plaintext")
			}
		})
	}
	if id, err := FieldKeyID(f); err != nil || id != "tk-b-2026" {
		t.Errorf("FieldKeyID = %q, %v", id, err)
	}
}

func TestSealer(t *testing.T) {
	k1 := bytes.Repeat([]byte{1}, 32)
	k2 := bytes.Repeat([]byte{2}, 32)
	s1, err := NewSealer("mk-2026", k1, nil)
	if err != nil {
		t.Fatal(err)
	}
	s2, _ := NewSealer("mk-2027", k2, nil)
	s1wrong, _ := NewSealer("mk-2026", k2, nil)
	aad := []byte("89014103211118510720/ki")
	ki := unhex(t, "465B5CE8B199B49FAA5F0A2EE238A6BC")
	blob, err := s1.Seal(aad, ki)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(blob, ki) {
		t.Fatal("plaintext in blob")
	}
	if id, err := KeyID(blob); err != nil || id != "mk-2026" {
		t.Fatalf("KeyID = %q, %v", id, err)
	}
	if p, err := s1.Open(aad, blob); err != nil || !bytes.Equal(p, ki) {
		t.Fatalf("Open = %x, %v", p, err)
	}
	if b2, _ := s1.Seal(aad, ki); bytes.Equal(b2, blob) {
		t.Error("two seals are equal: nonce not random")
	}
	for _, tc := range []struct {
		name string
		s    *Sealer
		aad  []byte
		blob []byte
		want error
	}{
		{"other context (card)", s1, []byte("89014103211118510721/ki"), blob, ErrSealBroken},
		{"other context (field)", s1, []byte("89014103211118510720/opc"), blob, ErrSealBroken},
		{"other master key ID", s2, aad, blob, ErrOtherMasterKey},
		{"wrong key under the right ID", s1wrong, aad, blob, ErrSealBroken},
		{"tampered", s1, aad, flip(blob, len(blob)-20), ErrSealBroken},
		{"key ID relabelled", s1, aad, relabel(blob, "mk-2026", "mk-2025"), ErrOtherMasterKey},
		{"not a blob", s1, aad, []byte("hello"), ErrBadBlob},
		{"empty", s1, aad, nil, ErrBadBlob},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := tc.s.Open(tc.aad, tc.blob); !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
	// A relabelled blob opened by a sealer of that ID still fails: the ID is
	// authenticated.
	s0, _ := NewSealer("mk-2025", k1, nil)
	if _, err := s0.Open(aad, relabel(blob, "mk-2026", "mk-2025")); !errors.Is(err, ErrSealBroken) {
		t.Errorf("relabelled blob under the same key bytes: %v", err)
	}

	// Rotation.
	rot, err := Reseal(s1, s2, aad, blob)
	if err != nil {
		t.Fatal(err)
	}
	if id, _ := KeyID(rot); id != "mk-2027" {
		t.Fatalf("resealed under %q", id)
	}
	if p, err := s2.Open(aad, rot); err != nil || !bytes.Equal(p, ki) {
		t.Fatalf("open resealed: %v", err)
	}
	again, err := Reseal(s1, s2, aad, rot)
	if err != nil || !bytes.Equal(again, rot) {
		t.Errorf("reseal of a rotated blob: %v", err)
	}
}

func flip(b []byte, i int) []byte {
	c := bytes.Clone(b)
	c[i] ^= 1
	return c
}

func relabel(b []byte, from, to string) []byte {
	return bytes.Replace(b, []byte(from), []byte(to), 1)
}

func TestParseMasterKey(t *testing.T) {
	raw := bytes.Repeat([]byte{0xab}, 32)
	for _, in := range [][]byte{raw, []byte(strings.Repeat("AB", 32) + "\n"), []byte("  " + strings.Repeat("ab", 32))} {
		k, err := ParseMasterKey(in)
		if err != nil || !bytes.Equal(k, raw) {
			t.Errorf("ParseMasterKey(%q) = %x, %v", in, k, err)
		}
	}
	for _, in := range [][]byte{nil, raw[:31], []byte(strings.Repeat("zz", 32))} {
		if _, err := ParseMasterKey(in); !errors.Is(err, ErrBadKey) {
			t.Errorf("ParseMasterKey(%q) = %v", in, err)
		}
	}
}
