package keywrap

import (
	"bytes"
	"testing"
)

// FuzzKWP: every wrap unwraps to itself; arbitrary bytes never panic and
// almost never authenticate.
func FuzzKWP(f *testing.F) {
	f.Add([]byte{1}, []byte{0xaf, 0xbe, 0xb0, 0xf0, 0x7d, 0xfb, 0xf5, 0x41, 0x92, 0x00, 0xf2, 0xcc, 0xb5, 0x0b, 0xb2, 0x4f})
	f.Add([]byte("0123456789abcdef0123"), []byte{})
	kek := bytes.Repeat([]byte{7}, 16)
	tk, err := NewTransportKey("tk", kek, AESKWP, TransportKeyOptions{})
	if err != nil {
		f.Fatal(err)
	}
	kw, _ := NewTransportKey("tk", kek, AESKW, TransportKeyOptions{})
	f.Fuzz(func(t *testing.T, plain, junk []byte) {
		if len(plain) > 0 && len(plain) <= maxFieldLength {
			w, err := tk.Wrap(plain)
			if err != nil {
				t.Fatal(err)
			}
			p, err := tk.Unwrap(w)
			if err != nil || !bytes.Equal(p, plain) {
				t.Fatalf("round trip: %v", err)
			}
		}
		tk.Unwrap(junk)
		kw.Unwrap(junk)
		UnwrapField(NewKeySet(tk), "tk:"+string(junk))
		KeyID(junk)
	})
}
