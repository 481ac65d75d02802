package pgp

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
)

// Throwaway test keys in testdata (never used outside tests) and messages
// that GnuPG 2.2.40 wrote to them, so that reading GnuPG's output is pinned
// even where gpg is not installed.
func fixtureKey(t testing.TB, name string) *Key {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return readOne(t, b)
}

func fixtureOpts(t testing.TB) DecryptOptions {
	return DecryptOptions{
		Keys:    []*Key{fixtureKey(t, "us.sec.asc")},
		Signers: []*Key{fixtureKey(t, "partner.pub.asc")},
	}
}

func fileOpener(path string) func() (io.ReadCloser, error) {
	return func() (io.ReadCloser, error) { return os.Open(path) }
}

func TestGoldenGnuPGMessages(t *testing.T) {
	want, err := os.ReadFile("testdata/golden.txt")
	if err != nil {
		t.Fatal(err)
	}
	v, err := Open(fileOpener("testdata/gnupg-signed.pgp"), fixtureOpts(t))
	if err != nil {
		t.Fatal(err)
	}
	if v.Signer != fixtureKey(t, "partner.pub.asc").Fingerprint() || v.Signer != "b880f640ff40125c7951e0d3889d231a935de16e" {
		t.Errorf("Signer %s", v.Signer)
	}
	if v.FileName != "golden.txt" || v.Cipher != "AES256" || v.Hash != "SHA-256" {
		t.Errorf("FileName %q Cipher %s Hash %s", v.FileName, v.Cipher, v.Hash)
	}
	rc, err := v.Plaintext()
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(rc)
	rc.Close()
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("plaintext %q, %v", got, err)
	}

	for _, tc := range []struct {
		file string
		want error
	}{
		{"gnupg-sha1.asc", ErrWeakHash},
		{"gnupg-unsigned.pgp", ErrUnsigned},
		{"us.pub.asc", ErrNotPGP},
	} {
		if _, err := Open(fileOpener(filepath.Join("testdata", tc.file)), fixtureOpts(t)); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.file, err, tc.want)
		}
	}
}
