package pgp_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"

	"resub/crypto/pgp"
)

func readKey(path string) *pgp.Key {
	f, err := os.Open(path)
	if err != nil {
		panic(err)
	}
	defer f.Close()
	keys, err := pgp.ReadKeys(f)
	if err != nil {
		panic(err)
	}
	return keys[0]
}

// Open verifies a file GnuPG encrypted to us and signed with the partner's
// pinned key before any of its plaintext is used.
func ExampleOpen() {
	ours := readKey("testdata/us.sec.asc")
	partner := readKey("testdata/partner.pub.asc")
	v, err := pgp.Open(func() (io.ReadCloser, error) { return os.Open("testdata/gnupg-signed.pgp") },
		pgp.DecryptOptions{Keys: []*pgp.Key{ours}, Signers: []*pgp.Key{partner}, MaxSize: 1 << 20})
	if err != nil {
		fmt.Println("refused:", err)
		return
	}
	defer v.Close()
	fmt.Println("signer", v.Signer, v.Hash, v.Cipher)
	plain, err := v.Plaintext()
	if err != nil {
		panic(err)
	}
	defer plain.Close()
	io.Copy(os.Stdout, plain)
	// Output:
	// signer b880f640ff40125c7951e0d3889d231a935de16e SHA-256 AES256
	// HEADER,inventory,1
	// 89014103211118510720,242011234567890
}

// A file whose signer is not pinned is refused, whoever signed it.
func ExampleOpen_refused() {
	ours := readKey("testdata/us.sec.asc")
	partner := readKey("testdata/partner.pub.asc")
	_, err := pgp.Open(func() (io.ReadCloser, error) { return os.Open("testdata/gnupg-unsigned.pgp") },
		pgp.DecryptOptions{Keys: []*pgp.Key{ours}, Signers: []*pgp.Key{partner}})
	fmt.Println(errors.Is(err, pgp.ErrUnsigned))
	// Output: true
}

func ExampleEncrypt() {
	partner := readKey("testdata/partner.pub.asc")
	ours := readKey("testdata/us.sec.asc")
	var out bytes.Buffer
	w, err := pgp.Encrypt(&out, []*pgp.Key{partner}, ours, pgp.EncryptOptions{Armor: true, Compression: pgp.CompressZLIB})
	if err != nil {
		panic(err)
	}
	io.WriteString(w, "HEADER,imsi-list,1\n")
	if err := w.Close(); err != nil { // writes the signature, MDC and armor trailer
		panic(err)
	}
	fmt.Println(bytes.HasPrefix(out.Bytes(), []byte("-----BEGIN PGP MESSAGE-----")))
	// Output: true
}
