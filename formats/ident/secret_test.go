package ident

import (
	"encoding/hex"
	"errors"
	"strings"
	"testing"
)

// TestCheckSecret pins the one length rule of a card secret: Ki and OPc
// by the authentication algorithm, the OTA keys by the key set's cipher,
// and the error names lengths and algorithms, never the value.
func TestCheckSecret(t *testing.T) {
	key := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(0x5a + 13*i)
		}
		return b
	}
	cases := []struct {
		name   string
		n      int
		auth   AuthAlg
		cipher CipherAlg
		ok     bool
	}{
		{SecretKi, 16, Milenage, "", true},
		{SecretKi, 1, Milenage, "", false},
		{SecretKi, 15, Milenage, "", false},
		{SecretKi, 17, Milenage, "", false},
		{SecretKi, 32, Milenage, "", false},
		{SecretKi, 32, TUAK, "", true},
		{SecretKi, 16, TUAK, "", true},
		{SecretKi, 24, TUAK, "", false},
		{SecretKi, 16, COMP128v3, "", true},
		{SecretKi, 32, "", "", true},
		{SecretKi, 20, "", "", false},
		{SecretKi, 0, Milenage, "", false},
		{SecretOPc, 16, Milenage, "", true},
		{SecretOPc, 3, Milenage, "", false},
		{SecretOPc, 32, TUAK, "", true},
		{SecretOPc, 16, TUAK, "", false},
		{SecretOPc, 16, COMP128v1, "", false}, // uses no OPc
		{SecretKIc, 16, "", AES, true},
		{SecretKIc, 5, "", AES, false},
		{SecretKIc, 8, "", AES, false},
		{SecretKIc, 8, "", DES, true},
		{SecretKIc, 16, "", DES, false},
		{SecretKID, 16, "", TDES2, true},
		{SecretKID, 24, "", TDES2, false},
		{SecretKID, 24, "", TDES3, true},
		{SecretKIK, 32, "", AES256, true},
		{SecretKIK, 16, "", AES256, false},
		{SecretKIc, 24, "", "", true},
		{SecretKIc, 5, "", "", false},
	}
	for _, c := range cases {
		k := key(c.n)
		err := CheckSecret(c.name, k, c.auth, c.cipher)
		if (err == nil) != c.ok {
			t.Errorf("%s of %d bytes under %q/%q: %v, want ok %v", c.name, c.n, c.auth, c.cipher, err, c.ok)
			continue
		}
		if err == nil {
			continue
		}
		if !errors.Is(err, ErrKeyLength) {
			t.Errorf("%s of %d bytes: %v is not ErrKeyLength", c.name, c.n, err)
		}
		msg := err.Error()
		for _, form := range []string{hex.EncodeToString(k), strings.ToUpper(hex.EncodeToString(k))} {
			if c.n > 0 && strings.Contains(msg, form) {
				t.Errorf("%s: error %q holds the value", c.name, msg)
			}
		}
	}
	if err := CheckSecret("pin", key(4), "", ""); !errors.Is(err, ErrAlgorithm) {
		t.Errorf("an unknown secret name: %v", err)
	}
	err := CheckSecret(SecretKi, key(15), Milenage, "")
	if want := "key has the wrong length for its algorithm: 15 bytes, want 16 (milenage)"; err == nil || err.Error() != want {
		t.Errorf("message %q, want %q", err, want)
	}
}
