package ota

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/des"
	"crypto/subtle"
	"errors"
	"fmt"
)

// GlobalPlatform PUT KEY (GP Card Specification 2.x §11.8) as a security
// domain takes it over SCP80 on its RAM/ISD TAR, to replace a card's OTA
// key set (KIc, KID, KIK = key identifiers 1, 2, 3 of one key version).
//
// Command: CLA 80, INS D8, P1 = the key version replaced (00: a new key
// set is added), P2 = 81 (several keys, the first with identifier 1),
// data = new key version ‖ one key data field per key (Basic format, GP
// Table 11-68): key type (80 DES family, 88 AES) ‖ length of the key
// component block ‖ the key, enciphered under the KIK of the key set that
// secures the message ‖ 03 ‖ key check value. Key components are
// enciphered as the DEK does it in SCP02 (3DES ECB) and SCP03 (AES CBC
// with a zero chaining value); key lengths are multiples of the block
// size, so no length prefix or padding is needed. KCV (GP Annex B.6): the
// first three octets of 8 × 00 (DES) or 16 × 01 (AES) enciphered under the
// key itself in ECB mode.
//
// The card answers 9000 with the new key version and the KCVs as
// response data.

// Key types of the key data field.
const (
	KeyTypeDES byte = 0x80 // DES, 3DES two or three keys
	KeyTypeAES byte = 0x88
)

// GlobalPlatform PUT KEY and DELETE instruction octets.
const (
	INSPutKey byte = 0xd8
	INSDelete byte = 0xe4
)

// ErrPutKey is wrapped by every problem with a PUT KEY command.
var ErrPutKey = errors.New("ota: PUT KEY")

// ErrKCV says a key check value does not match its key.
var ErrKCV = errors.New("ota: PUT KEY key check value mismatch")

// PutKey is one PUT KEY command: the key set OldKVN (0 for a new set) is
// replaced by Keys under NewKVN, with key identifiers from FirstID on.
type PutKey struct {
	OldKVN  int
	NewKVN  int
	FirstID int // 1 for KIc, KID, KIK
	Type    byte
	Keys    [][]byte
}

// KeyCheckValue is the GlobalPlatform KCV of a key of type typ.
func KeyCheckValue(typ byte, key []byte) ([]byte, error) {
	b, err := kcvBlock(typ, key)
	if err != nil {
		return nil, err
	}
	var in, out [16]byte
	n := b.BlockSize()
	if typ == KeyTypeAES {
		for i := range in {
			in[i] = 0x01
		}
	}
	b.Encrypt(out[:n], in[:n])
	return bytes.Clone(out[:3]), nil
}

func kcvBlock(typ byte, key []byte) (cipher.Block, error) {
	switch typ {
	case KeyTypeDES:
		return desFamily(key)
	case KeyTypeAES:
		b, err := aes.NewCipher(key)
		if err != nil {
			return nil, fmt.Errorf("%w: AES key of %d octets", ErrPutKey, len(key))
		}
		return b, nil
	}
	return nil, fmt.Errorf("%w: key type %02x", ErrPutKey, typ)
}

// desFamily builds single DES (8 octets) or 3DES with two (16) or three
// (24) keys.
func desFamily(key []byte) (cipher.Block, error) {
	switch len(key) {
	case 8:
		return des.NewCipher(key)
	case 16:
		k := make([]byte, 24)
		copy(k, key)
		copy(k[16:], key[:8])
		defer clear(k)
		return des.NewTripleDESCipher(k)
	case 24:
		return des.NewTripleDESCipher(key)
	}
	return nil, fmt.Errorf("%w: DES key of %d octets", ErrPutKey, len(key))
}

// keyCipher enciphers or deciphers key components under the KIK's block
// cipher: ECB for the DES family, CBC with a zero chaining value for AES.
func keyCipher(typ byte, b cipher.Block, decrypt bool, dst, src []byte) error {
	bs := b.BlockSize()
	if len(src)%bs != 0 || len(src) == 0 {
		return fmt.Errorf("%w: key of %d octets is not a multiple of the %d-octet block", ErrPutKey, len(src), bs)
	}
	if typ == KeyTypeAES {
		var iv [16]byte
		if decrypt {
			cipher.NewCBCDecrypter(b, iv[:bs]).CryptBlocks(dst, src)
		} else {
			cipher.NewCBCEncrypter(b, iv[:bs]).CryptBlocks(dst, src)
		}
		return nil
	}
	for i := 0; i < len(src); i += bs {
		if decrypt {
			b.Decrypt(dst[i:i+bs], src[i:i+bs])
		} else {
			b.Encrypt(dst[i:i+bs], src[i:i+bs])
		}
	}
	return nil
}

// EncodePutKey builds the PUT KEY command (CLA 80, no Le, as a compact
// RFM script carries it) with each key enciphered under kik, a KIK of the
// same type.
func EncodePutKey(pk PutKey, kik []byte) (APDU, error) {
	if pk.NewKVN < 1 || pk.NewKVN > 0x7f || pk.OldKVN < 0 || pk.OldKVN > 0x7f {
		return nil, fmt.Errorf("%w: key versions %d -> %d", ErrPutKey, pk.OldKVN, pk.NewKVN)
	}
	if pk.FirstID < 1 || pk.FirstID > 0x7f || len(pk.Keys) == 0 {
		return nil, fmt.Errorf("%w: first key identifier %d, %d keys", ErrPutKey, pk.FirstID, len(pk.Keys))
	}
	kb, err := kcvBlock(pk.Type, kik)
	if err != nil {
		return nil, err
	}
	data := []byte{byte(pk.NewKVN)}
	for _, k := range pk.Keys {
		if len(k) > 0x7f {
			return nil, fmt.Errorf("%w: key of %d octets", ErrPutKey, len(k))
		}
		kcv, err := KeyCheckValue(pk.Type, k)
		if err != nil {
			return nil, err
		}
		enc := make([]byte, len(k))
		if err := keyCipher(pk.Type, kb, false, enc, k); err != nil {
			return nil, err
		}
		data = append(data, pk.Type, byte(len(enc)))
		data = append(data, enc...)
		data = append(data, byte(len(kcv)))
		data = append(data, kcv...)
	}
	if len(data) > 255 {
		return nil, fmt.Errorf("%w: %d octets of data", ErrPutKey, len(data))
	}
	p2 := byte(pk.FirstID)
	if len(pk.Keys) > 1 {
		p2 |= 0x80
	}
	return append(APDU{0x80, INSPutKey, byte(pk.OldKVN), p2, byte(len(data))}, data...), nil
}

// DecodePutKey reads a PUT KEY command, deciphers each key with kik and
// checks every key check value given (ErrKCV). The keys returned are the
// caller's to wipe.
func DecodePutKey(a APDU, kik []byte) (PutKey, error) {
	var pk PutKey
	if len(a) < 6 || a[1] != INSPutKey || int(a[4]) != len(a)-5 {
		return pk, fmt.Errorf("%w: not a PUT KEY command of consistent length", ErrPutKey)
	}
	pk.OldKVN, pk.FirstID = int(a[2]), int(a[3]&0x7f)
	multi := a[3]&0x80 != 0
	d := a[5:]
	var kb cipher.Block
	pk.NewKVN = int(d[0])
	d = d[1:]
	for len(d) > 0 {
		if len(d) < 2 || int(d[1])+3 > len(d) {
			return pk, fmt.Errorf("%w: truncated key data field", ErrPutKey)
		}
		typ, n := d[0], int(d[1])
		if pk.Type != 0 && typ != pk.Type {
			return pk, fmt.Errorf("%w: mixed key types", ErrPutKey)
		}
		if pk.Type == 0 {
			var err error
			if kb, err = kcvBlock(typ, kik); err != nil {
				return pk, err
			}
		}
		pk.Type = typ
		key := make([]byte, n)
		if err := keyCipher(typ, kb, true, key, d[2:2+n]); err != nil {
			return pk, err
		}
		d = d[2+n:]
		kl := int(d[0])
		if kl > len(d)-1 {
			return pk, fmt.Errorf("%w: truncated key check value", ErrPutKey)
		}
		if kl > 0 {
			want, err := KeyCheckValue(typ, key)
			if err != nil {
				return pk, err
			}
			if kl > len(want) || subtle.ConstantTimeCompare(want[:kl], d[1:1+kl]) != 1 {
				clear(key)
				return pk, ErrKCV
			}
		}
		d = d[1+kl:]
		pk.Keys = append(pk.Keys, key)
	}
	if len(pk.Keys) == 0 || (!multi && len(pk.Keys) > 1) {
		return pk, fmt.Errorf("%w: %d keys with P2 %02x", ErrPutKey, len(pk.Keys), a[3])
	}
	return pk, nil
}

// EncodeDeleteKeySet builds the GlobalPlatform DELETE of every key of a
// key version (data D2 01 KVN, GP §11.2.2.3).
func EncodeDeleteKeySet(kvn int) APDU {
	return APDU{0x80, INSDelete, 0x00, 0x00, 0x03, 0xd2, 0x01, byte(kvn)}
}

// PutKeyResponse is what a card answers to pk: the new key version and
// the key check values.
func PutKeyResponse(pk PutKey) ([]byte, error) {
	out := []byte{byte(pk.NewKVN)}
	for _, k := range pk.Keys {
		kcv, err := KeyCheckValue(pk.Type, k)
		if err != nil {
			return nil, err
		}
		out = append(out, kcv...)
	}
	return out, nil
}

// KeyTypeFor is the PUT KEY key type of an SCP80 key set whose KIc
// algorithm is alg-coded in kic.
func KeyTypeFor(kic KIc) (byte, error) {
	switch byte(kic) & 0x03 {
	case 0x01:
		return KeyTypeDES, nil
	case 0x02:
		return KeyTypeAES, nil
	}
	return 0, fmt.Errorf("%w: KIc %s has no key type", ErrPutKey, kic)
}
