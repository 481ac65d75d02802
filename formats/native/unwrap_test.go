package native

import (
	"bytes"
	"encoding/hex"
	"io"
	"os"
	"testing"

	"resub/crypto/keywrap"
	"resub/formats/ident"
)

// TestSamplesUnwrap opens every secret of the samples with the samples'
// throwaway transport key (TK-TEST-1 = 000102…0f, AES key wrap with
// padding) through package crypto, and checks each clear key's length for
// its algorithm and the header's KCV: the samples are usable end to end,
// not only well-formed.
func TestSamplesUnwrap(t *testing.T) {
	key, _ := hex.DecodeString("000102030405060708090a0b0c0d0e0f")
	tk, err := keywrap.NewTransportKey("TK-TEST-1", key, keywrap.AESKWP, keywrap.TransportKeyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	keys := keywrap.NewKeySet(tk)
	kcv, _ := keywrap.KCV(key)
	opened := 0
	for name, path := range samples(t) {
		s, _ := Lookup(name)
		if !s.HasSecrets() {
			continue
		}
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		rd := NewReader(f, Options{File: path, TransportKey: func(id string) ([]byte, bool) { return kcv, id == "TK-TEST-1" }})
		if _, err := rd.Header(); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		for {
			r, err := rd.Read()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			alg := ident.AuthAlg(r.Get(FieldAlgorithm))
			for _, fd := range s.Fields {
				v := r.Get(fd.Name)
				if fd.Kind != Wrapped || v == "" {
					continue
				}
				plain, err := keywrap.UnwrapField(keys, v)
				if err != nil {
					t.Errorf("%s:%d: %s: %v", path, r.Line, fd.Name, err)
					continue
				}
				opened++
				switch fd.Name {
				case FieldKi:
					err = ident.CheckKi(plain, alg)
				case FieldOPc:
					err = ident.CheckOPc(plain, alg)
				default: // an OTA key of set n: its cipher is ota-alg[-n]
					err = ident.CheckCipherKey(plain, ident.CipherAlg(r.Get(otaAlgOf(fd.Name))))
				}
				if err != nil {
					t.Errorf("%s:%d: %s: %v", path, r.Line, fd.Name, err)
				}
				if bytes.Count(plain, plain[:1]) != len(plain)-1 {
					t.Errorf("%s:%d: %s is not a test pattern", path, r.Line, fd.Name)
				}
				keywrap.Zero(plain)
			}
		}
		f.Close()
	}
	if opened < 30 {
		t.Errorf("only %d secrets opened", opened)
	}
}

// otaAlgOf names the ota-alg field of the key set of an OTA key field.
func otaAlgOf(field string) string {
	for n := 1; n <= MaxKeySets; n++ {
		for _, b := range []string{FieldKIc, FieldKID, FieldKIK} {
			if keySetField(b, n) == field {
				return keySetField(FieldOTAAlg, n)
			}
		}
	}
	return ""
}
