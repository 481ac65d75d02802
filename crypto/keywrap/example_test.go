package keywrap_test

import (
	"encoding/hex"
	"fmt"

	"resub/crypto/keywrap"
)

func ExampleWrapField() {
	kek, _ := hex.DecodeString("5840df6e29b02af1ab493b705bf16ea1ae8338f4dcc176a8")
	tk, err := keywrap.NewTransportKey("tk-b-2026", kek, keywrap.AESKWP, keywrap.TransportKeyOptions{})
	if err != nil {
		panic(err)
	}
	secret, _ := hex.DecodeString("466f7250617369")
	field, _ := keywrap.WrapField(tk, secret)
	fmt.Println(field)

	plain, err := keywrap.UnwrapField(keywrap.NewKeySet(tk), field)
	fmt.Printf("%x %v\n", plain, err)
	keywrap.Zero(plain)
	// Output:
	// tk-b-2026:afbeb0f07dfbf5419200f2ccb50bb24f
	// 466f7250617369 <nil>
}

func ExampleKCV() {
	aesKey := make([]byte, 16)
	kcv, _ := keywrap.KCV(aesKey)
	fmt.Printf("%x\n", kcv)
	tdes, _ := hex.DecodeString("0123456789abcdeffedcba9876543210")
	kcv, _ = keywrap.DESKCV(tdes)
	fmt.Printf("%x\n", kcv)
	// Output:
	// 66e94b
	// 08d7b4
}

func ExampleSealer() {
	master := make([]byte, keywrap.MasterKeyLen) // from the configured key file
	s, _ := keywrap.NewSealer("mk-2026", master, nil)
	ctx := []byte("89014103211118510720/ki")
	blob, _ := s.Seal(ctx, []byte{0x46, 0x5b})
	id, _ := keywrap.KeyID(blob)
	plain, err := s.Open(ctx, blob)
	fmt.Println(id, len(plain), err)
	_, err = s.Open([]byte("89014103211118510720/opc"), blob)
	fmt.Println(err)
	// Output:
	// mk-2026 2 <nil>
	// keywrap: sealed blob does not authenticate (wrong master key, wrong context or corrupted)
}
