package pgp

import (
	"io"
	"os"
	"testing"
)

// FuzzOpen feeds arbitrary bytes to the decrypt path: it must never panic,
// and whatever it accepts must verify again on the second pass with the
// same plaintext size.
func FuzzOpen(f *testing.F) {
	for _, name := range []string{"gnupg-signed.pgp", "gnupg-sha1.asc", "gnupg-unsigned.pgp", "us.pub.asc"} {
		b, err := os.ReadFile("testdata/" + name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
		f.Add(b[:len(b)/2])
	}
	opts := fixtureOpts(f)
	opts.MaxSize = 1 << 20
	ours := encryptMsg(f, []byte("record,1\n"), []*Key{opts.Keys[0].Public()}, fixtureKey(f, "partner.sec.asc"), EncryptOptions{Compression: CompressZIP})
	f.Add(ours)
	f.Add([]byte("-----BEGIN PGP MESSAGE-----\n\nwcBMA\n-----END PGP MESSAGE-----\n"))
	f.Fuzz(func(t *testing.T, msg []byte) {
		v, err := Open(opener(msg), opts)
		if err != nil {
			return
		}
		rc, err := v.Plaintext()
		if err != nil {
			t.Fatalf("pass 2 start: %v", err)
		}
		n, err := io.Copy(io.Discard, rc)
		if err != nil || n != v.PlaintextSize {
			t.Fatalf("pass 2: %d bytes, %v", n, err)
		}
	})
}
