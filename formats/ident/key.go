package ident

import (
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

// Key material errors.
var (
	ErrHex        = errors.New("not hexadecimal")
	ErrKeyLength  = errors.New("key has the wrong length for its algorithm")
	ErrKeyVersion = errors.New("key version must be 1 to 15")
	ErrKeyIndex   = errors.New("key index must be at least 1 and at most the list length")
	ErrAlgorithm  = errors.New("unknown algorithm")
)

// CipherAlg is an OTA key's cipher (ETSI TS 102 225 KIc/KID algorithms).
type CipherAlg string

// The OTA ciphers and their key lengths in bytes.
const (
	DES    CipherAlg = "des"       // single DES, 8 bytes
	TDES2  CipherAlg = "3des-2key" // triple DES, two keys, 16 bytes
	TDES3  CipherAlg = "3des-3key" // triple DES, three keys, 24 bytes
	AES    CipherAlg = "aes"       // AES-128, -192 or -256: 16, 24 or 32 bytes
	AES128 CipherAlg = "aes-128"
	AES192 CipherAlg = "aes-192"
	AES256 CipherAlg = "aes-256"
)

// Lengths returns the key lengths in bytes the cipher accepts.
func (a CipherAlg) Lengths() ([]int, error) {
	switch CipherAlg(strings.ToLower(string(a))) {
	case DES:
		return []int{8}, nil
	case TDES2:
		return []int{16}, nil
	case TDES3:
		return []int{24}, nil
	case AES:
		return []int{16, 24, 32}, nil
	case AES128:
		return []int{16}, nil
	case AES192:
		return []int{24}, nil
	case AES256:
		return []int{32}, nil
	}
	return nil, fmt.Errorf("%w %q", ErrAlgorithm, string(a))
}

// AuthAlg is a subscriber authentication algorithm.
type AuthAlg string

// The authentication algorithms resub knows.
const (
	Milenage  AuthAlg = "milenage"  // 3GPP TS 35.206: Ki and OPc 16 bytes
	TUAK      AuthAlg = "tuak"      // 3GPP TS 35.231: Ki 16 or 32, OPc (TOPc) 32 bytes
	COMP128v1 AuthAlg = "comp128v1" // GSM: Ki 16 bytes, no OPc
	COMP128v2 AuthAlg = "comp128v2"
	COMP128v3 AuthAlg = "comp128v3"
	XOR       AuthAlg = "xor" // 3GPP TS 34.108 test algorithm: Ki 16 bytes
)

// AuthAlgs lists the authentication algorithms, for enums and help text.
var AuthAlgs = []string{string(Milenage), string(TUAK), string(COMP128v1), string(COMP128v2), string(COMP128v3), string(XOR)}

// CipherAlgs lists the OTA ciphers.
var CipherAlgs = []string{string(DES), string(TDES2), string(TDES3), string(AES), string(AES128), string(AES192), string(AES256)}

// KiLengths returns the Ki lengths in bytes the algorithm accepts.
func (a AuthAlg) KiLengths() ([]int, error) {
	switch AuthAlg(strings.ToLower(string(a))) {
	case Milenage, COMP128v1, COMP128v2, COMP128v3, XOR:
		return []int{16}, nil
	case TUAK:
		return []int{16, 32}, nil
	}
	return nil, fmt.Errorf("%w %q", ErrAlgorithm, string(a))
}

// OPcLengths returns the OPc lengths (TOPc for TUAK) the algorithm
// accepts; nil when it uses none. OPc is 16 bytes for MILENAGE; TUAK's TOP
// and TOPc are 32 bytes (TS 35.231).
func (a AuthAlg) OPcLengths() ([]int, error) {
	switch AuthAlg(strings.ToLower(string(a))) {
	case Milenage:
		return []int{16}, nil
	case TUAK:
		return []int{32}, nil
	case COMP128v1, COMP128v2, COMP128v3, XOR:
		return nil, nil
	}
	return nil, fmt.Errorf("%w %q", ErrAlgorithm, string(a))
}

// DecodeKey decodes hex (either case, no spaces) and checks that the
// length in bytes is one of lengths. The error never contains the key.
func DecodeKey(s string, lengths ...int) ([]byte, error) {
	if len(s)%2 != 0 {
		return nil, fmt.Errorf("%w: odd number of digits", ErrHex)
	}
	if !IsHex(s) {
		return nil, ErrHex
	}
	if !lengthOK(len(s)/2, lengths) {
		return nil, fmt.Errorf("%w: %d bytes, want %s", ErrKeyLength, len(s)/2, lengthList(lengths))
	}
	b := make([]byte, len(s)/2)
	if _, err := hex.Decode(b, []byte(s)); err != nil {
		return nil, ErrHex
	}
	return b, nil
}

// CheckKeyLength checks a decoded key's length.
func CheckKeyLength(key []byte, lengths ...int) error {
	if !lengthOK(len(key), lengths) {
		return fmt.Errorf("%w: %d bytes, want %s", ErrKeyLength, len(key), lengthList(lengths))
	}
	return nil
}

// CheckCipherKey checks a decoded OTA key against its cipher.
func CheckCipherKey(key []byte, alg CipherAlg) error {
	l, err := alg.Lengths()
	if err != nil {
		return err
	}
	return CheckKeyLength(key, l...)
}

// CheckKi checks a decoded Ki against the authentication algorithm.
func CheckKi(ki []byte, alg AuthAlg) error {
	l, err := alg.KiLengths()
	if err != nil {
		return err
	}
	return CheckKeyLength(ki, l...)
}

// CheckOPc checks a decoded OPc against the authentication algorithm.
func CheckOPc(opc []byte, alg AuthAlg) error {
	l, err := alg.OPcLengths()
	if err != nil {
		return err
	}
	if l == nil {
		if len(opc) != 0 {
			return fmt.Errorf("%w: %s uses no OPc", ErrKeyLength, alg)
		}
		return nil
	}
	return CheckKeyLength(opc, l...)
}

// Card secret names, as the native formats and the ledger call them.
const (
	SecretKi  = "ki"
	SecretOPc = "opc"
	SecretKIc = "kic"
	SecretKID = "kid"
	SecretKIK = "kik"
)

// CheckSecret is the one length rule for a card secret once it is in
// clear (decoded or unwrapped from its transport key), whatever carried
// it: Ki and OPc by the authentication algorithm auth, KIc, KID and KIK
// by the key set's cipher. An empty auth takes a Ki or OPc of 16 or 32
// bytes, an empty cipher any DES, 3DES or AES length (8, 16, 24, 32); a
// secret of no bytes is always wrong. The error gives lengths and
// algorithms, never the value.
func CheckSecret(name string, key []byte, auth AuthAlg, cipher CipherAlg) error {
	if len(key) == 0 {
		return fmt.Errorf("%w: empty", ErrKeyLength)
	}
	switch name {
	case SecretKi:
		if auth == "" {
			return CheckKeyLength(key, 16, 32)
		}
		return withAlg(CheckKi(key, auth), string(auth))
	case SecretOPc:
		if auth == "" {
			return CheckKeyLength(key, 16, 32)
		}
		return withAlg(CheckOPc(key, auth), string(auth))
	case SecretKIc, SecretKID, SecretKIK:
		if cipher == "" {
			return CheckKeyLength(key, 8, 16, 24, 32)
		}
		return withAlg(CheckCipherKey(key, cipher), string(cipher))
	}
	return fmt.Errorf("%w: %q is not a card secret", ErrAlgorithm, name)
}

// withAlg names the algorithm a length was checked against.
func withAlg(err error, alg string) error {
	if err == nil || !errors.Is(err, ErrKeyLength) {
		return err
	}
	return fmt.Errorf("%w (%s)", err, strings.ToLower(alg))
}

// CheckKeyVersion checks an OTA key version number (KVN): 1 to 15.
func CheckKeyVersion(kvn int) error {
	if kvn < 1 || kvn > 15 {
		return fmt.Errorf("%w (is %d)", ErrKeyVersion, kvn)
	}
	return nil
}

// CheckKeyIndex checks a 3b key-list index: 1 <= index <= listLength.
func CheckKeyIndex(index, listLength int) error {
	if index < 1 || index > listLength {
		return fmt.Errorf("%w (index %d, list length %d)", ErrKeyIndex, index, listLength)
	}
	return nil
}

// IsHex reports whether s is non-empty and only hex digits (either case).
func IsHex(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
			return false
		}
	}
	return true
}

func lengthOK(n int, lengths []int) bool {
	if len(lengths) == 0 {
		return n > 0
	}
	for _, l := range lengths {
		if n == l {
			return true
		}
	}
	return false
}

func lengthList(lengths []int) string {
	var b strings.Builder
	for i, l := range lengths {
		if i > 0 {
			b.WriteString(" or ")
		}
		fmt.Fprintf(&b, "%d", l)
	}
	return b.String()
}
