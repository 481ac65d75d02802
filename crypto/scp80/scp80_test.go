package scp80

import (
	"bytes"
	"crypto/des"
	"encoding/hex"
	"errors"
	"testing"
)

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatalf("bad hex %q: %v", s, err)
	}
	return b
}

// Two blocks of the SP 800-38A example plaintext.
const sp80038a = "6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e51"

// The ciphertexts were produced by OpenSSL 3.0 (enc -nopad, IV 0); the
// first AES block of each equals the SP 800-38A F.1 ECB vector, the first
// DES block the classic FIPS 46 example 133457799BBCDFF1.
func TestCipherVectors(t *testing.T) {
	cases := []struct {
		name string
		alg  CipherAlg
		key  string
		want string
	}{
		{"AES-128", CipherAES, "2b7e151628aed2a6abf7158809cf4f3c", "3ad77bb40d7a3660a89ecaf32466ef97b148c17f309ee692287ae57cf12add49"},
		{"AES-192", CipherAES, "8e73b0f7da0e6452c810f32b809079e562f8ead2522c6b7b", "bd334f1d6e45f25ff712a214571fa5cc0f771e2a4f0fbe323cb4146a0d1b86d9"},
		{"AES-256", CipherAES, "603deb1015ca71be2b73aef0857d77811f352c073b6108d72d9810a30914dff4", "f3eed1bdb5d2a03c064b5a7e3db181f8e3c48b48365cfb14dc9aaa37b1abc15c"},
		{"DES-CBC", CipherDESCBC, "133457799bbcdff1", "9222366049a004a4cf3d9aebb3c404ea02b06373bf9923b5b61fdb1e45789ab7"},
		{"DES-ECB", CipherDESECB, "133457799bbcdff1", "9222366049a004a47b2d9c05666d77ffb9545dd5e036470a8d295148c61b512a"},
		{"3DES-2key", Cipher3DES2, "0123456789abcdeffedcba9876543210", "ea43f9aa27f82f599735d93d56b5449ec2e751f52363e6fb8631775c1110429f"},
		{"3DES-3key", Cipher3DES3, "0123456789abcdeffedcba987654321089abcdef01234567", "a40aa617219768d8ded584d9016e02b3cb84ec20afffc78e1e5957123bfe5f0d"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ci, err := NewCipher(c.alg, unhex(t, c.key))
			if err != nil {
				t.Fatal(err)
			}
			pt := unhex(t, sp80038a)
			buf := bytes.Clone(pt)
			if err := ci.Encrypt(buf, buf); err != nil {
				t.Fatal(err)
			}
			if got := hex.EncodeToString(buf); got != c.want {
				t.Errorf("encrypt = %s, want %s", got, c.want)
			}
			if err := ci.Decrypt(buf, buf); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(buf, pt) {
				t.Errorf("decrypt = %x, want %x", buf, pt)
			}
			// Reuse: a second run gives the same result (IV reset).
			if err := ci.Encrypt(buf, pt); err != nil || hex.EncodeToString(buf) != c.want {
				t.Errorf("second encrypt = %x, %v", buf, err)
			}
			if err := ci.Encrypt(buf, pt[:5]); !errors.Is(err, ErrBlockSize) {
				t.Errorf("short input: %v", err)
			}
		})
	}
}

func TestKeyLengths(t *testing.T) {
	for _, c := range []struct {
		alg CipherAlg
		ok  []int
	}{
		{CipherDESCBC, []int{8}}, {CipherDESECB, []int{8}}, {Cipher3DES2, []int{16}},
		{Cipher3DES3, []int{24}}, {CipherAES, []int{16, 24, 32}},
	} {
		for n := 0; n <= 40; n++ {
			want := bytes.Contains(intsAsBytes(c.ok), []byte{byte(n)})
			_, err := NewCipher(c.alg, make([]byte, n))
			if (err == nil) != want {
				t.Errorf("%s key %d: err %v", c.alg, n, err)
			}
			if err != nil && !errors.Is(err, ErrKeyLength) {
				t.Errorf("%s key %d: err %v is not ErrKeyLength", c.alg, n, err)
			}
		}
	}
	if _, err := NewChecksum(MAC3DES2, make([]byte, 24)); !errors.Is(err, ErrKeyLength) {
		t.Errorf("3DES-2 MAC with 24-octet key: %v", err)
	}
	if _, err := NewChecksum(ChecksumCRC32, nil); err != nil {
		t.Errorf("CRC32 without key: %v", err)
	}
}

func intsAsBytes(v []int) []byte {
	b := make([]byte, len(v))
	for i, n := range v {
		b[i] = byte(n)
	}
	return b
}

// NIST SP 800-38B Appendix D examples, truncated to the leftmost 8 octets.
func TestAESCMAC(t *testing.T) {
	msg := unhex(t, "6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e5130c81c46a35ce411e5fbc1191a0a52eff69f2445df4f9b17ad2b417be66c3710")
	keys := map[string]string{
		"128": "2b7e151628aed2a6abf7158809cf4f3c",
		"192": "8e73b0f7da0e6452c810f32b809079e562f8ead2522c6b7b",
		"256": "603deb1015ca71be2b73aef0857d77811f352c073b6108d72d9810a30914dff4",
	}
	cases := []struct {
		key  string
		n    int
		want string
	}{
		{"128", 0, "bb1d6929e9593728"}, {"128", 16, "070a16b46b4d4144"},
		{"128", 40, "dfa66747de9ae630"}, {"128", 64, "51f0bebf7e3b9d92"},
		{"192", 0, "d17ddf46adaacde5"}, {"192", 16, "9e99a7bf31e71090"},
		{"192", 40, "8a1de5be2eb31aad"}, {"192", 64, "a1d5df0eed790f79"},
		{"256", 0, "028962f61b7bf89e"}, {"256", 16, "28a7023f452e8f82"},
		{"256", 40, "aaf3d8f1de5640c2"}, {"256", 64, "e1992190549f6ed5"},
	}
	for _, c := range cases {
		m, err := NewChecksum(MACAES, unhex(t, keys[c.key]))
		if err != nil {
			t.Fatal(err)
		}
		// Write in uneven pieces to exercise the buffering.
		in := msg[:c.n]
		for len(in) > 0 {
			k := min(len(in), 7)
			m.Write(in[:k])
			in = in[k:]
		}
		if got := hex.EncodeToString(m.Sum(nil)); got != c.want {
			t.Errorf("AES-%s CMAC of %d octets = %s, want %s", c.key, c.n, got, c.want)
		}
		if !m.Verify(unhex(t, c.want)) {
			t.Errorf("AES-%s Verify failed", c.key)
		}
	}
}

// CBC-MAC = last block of the CBC ciphertext with IV 0 (OpenSSL values
// above), and zero padding of a partial last block.
func TestCBCMAC(t *testing.T) {
	m, err := NewChecksum(MAC3DES2, unhex(t, "0123456789abcdeffedcba9876543210"))
	if err != nil {
		t.Fatal(err)
	}
	m.Write(unhex(t, sp80038a))
	if got := hex.EncodeToString(m.Sum(nil)); got != "8631775c1110429f" {
		t.Errorf("3DES CBC-MAC = %s", got)
	}
	d, _ := NewChecksum(MACDES, unhex(t, "133457799bbcdff1"))
	d.Write(unhex(t, sp80038a)[:29])
	padded, _ := NewChecksum(MACDES, unhex(t, "133457799bbcdff1"))
	padded.Write(append(unhex(t, sp80038a)[:29], 0, 0, 0))
	if !bytes.Equal(d.Sum(nil), padded.Sum(nil)) {
		t.Errorf("DES CBC-MAC does not zero-pad")
	}
	d.Reset()
	d.Write(unhex(t, sp80038a))
	if got := hex.EncodeToString(d.Sum(nil)); got != "b61fdb1e45789ab7" {
		t.Errorf("DES CBC-MAC = %s", got)
	}
}

func TestCRC(t *testing.T) {
	c32, _ := NewChecksum(ChecksumCRC32, nil)
	c32.Write(unhex(t, "0102030405")) // asterix TestCRC
	if got := hex.EncodeToString(c32.Sum(nil)); got != "470b99f4" {
		t.Errorf("CRC32 = %s, want 470b99f4", got)
	}
	c16, _ := NewChecksum(ChecksumCRC16, nil)
	c16.Write([]byte("123456789")) // CRC-16/X-25 check value
	if got := hex.EncodeToString(c16.Sum(nil)); got != "906e" {
		t.Errorf("CRC16 = %s, want 906e", got)
	}
	c32.Reset()
	c32.Write([]byte("123456789")) // CRC-32 check value
	if got := hex.EncodeToString(c32.Sum(nil)); got != "cbf43926" {
		t.Errorf("CRC32 = %s, want cbf43926", got)
	}
}

func TestAlgorithmFromOctets(t *testing.T) {
	ciphers := map[byte]CipherAlg{0x01: CipherDESCBC, 0x15: Cipher3DES2, 0x35: Cipher3DES2, 0x39: Cipher3DES3, 0x1d: CipherDESECB, 0x22: CipherAES, 0xf2: CipherAES}
	for kic, want := range ciphers {
		if got, err := CipherFromKIc(kic); err != nil || got != want {
			t.Errorf("CipherFromKIc(%02x) = %s, %v; want %s", kic, got, err, want)
		}
	}
	for _, kic := range []byte{0x00, 0x10, 0x13, 0x16, 0x1a, 0x1e} {
		if _, err := CipherFromKIc(kic); !errors.Is(err, ErrUnsupported) {
			t.Errorf("CipherFromKIc(%02x) err %v", kic, err)
		}
	}
	type k struct {
		kid  byte
		kind ChecksumKind
	}
	sums := map[k]ChecksumAlg{
		{0x11, KindRC}: ChecksumCRC16, {0x15, KindRC}: ChecksumCRC32, {0x15, KindCC}: MAC3DES2,
		{0x11, KindCC}: MACDES, {0x39, KindCC}: MAC3DES3, {0x22, KindCC}: MACAES, {0x00, KindNone}: ChecksumNone,
	}
	for in, want := range sums {
		if got, err := ChecksumFromKID(in.kid, in.kind); err != nil || got != want {
			t.Errorf("ChecksumFromKID(%02x, %s) = %s, %v; want %s", in.kid, in.kind, got, err, want)
		}
	}
	for _, in := range []k{{0x1d, KindCC}, {0x12, KindRC}, {0x19, KindRC}, {0x10, KindCC}, {0x15, KindDS}} {
		if _, err := ChecksumFromKID(in.kid, in.kind); !errors.Is(err, ErrUnsupported) {
			t.Errorf("ChecksumFromKID(%02x, %s) err %v", in.kid, in.kind, err)
		}
	}
}

func BenchmarkAESCMAC64(b *testing.B) {
	m, _ := NewChecksum(MACAES, make([]byte, 16))
	msg := make([]byte, 64)
	var out [8]byte
	b.ReportAllocs()
	b.SetBytes(64)
	for b.Loop() {
		m.Reset()
		m.Write(msg)
		m.Sum(out[:0])
	}
}

// The two-key EDE equals crypto/des's three-key cipher with K3 = K1.
func TestEDE2MatchesTripleDES(t *testing.T) {
	key := unhex(t, "0123456789abcdeffedcba9876543210")
	ref, err := des.NewTripleDESCipher(append(bytes.Clone(key), key[:8]...))
	if err != nil {
		t.Fatal(err)
	}
	b, err := newBlock('t', key)
	if err != nil {
		t.Fatal(err)
	}
	x := unhex(t, "6bc1bee22e409f96")
	var got, want [8]byte
	for range 100 {
		b.Encrypt(got[:], x)
		ref.Encrypt(want[:], x)
		if got != want {
			t.Fatalf("encrypt %x: %x, want %x", x, got, want)
		}
		b.Decrypt(got[:], x)
		ref.Decrypt(want[:], x)
		if got != want {
			t.Fatalf("decrypt %x: %x, want %x", x, got, want)
		}
		x = want[:]
	}
}
