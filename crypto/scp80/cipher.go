package scp80

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/des"
	"fmt"
)

// newBlock builds the block cipher for a DES-family or AES key. des3 with a
// 16-octet key builds K1,K2,K1.
func newBlock(family byte, key []byte) (cipher.Block, error) {
	switch family {
	case 'd':
		return des.NewCipher(key)
	case 't':
		if len(key) == 16 {
			// Two single-DES schedules instead of three: K1,K2,K1 shares
			// K1, and the key schedule dominates the cost of a codec
			// built per card. Per block it is as fast as des's own EDE.
			k1, err := des.NewCipher(key[:8])
			if err != nil {
				return nil, err
			}
			k2, err := des.NewCipher(key[8:])
			if err != nil {
				return nil, err
			}
			return ede2{k1, k2}, nil
		}
		return des.NewTripleDESCipher(key)
	case 'a':
		return aes.NewCipher(key)
	}
	panic("scp80: unknown family")
}

// Cipher encrypts and decrypts under a KIc key. Create it once per key set
// and reuse it; it is not safe for concurrent use.
type Cipher struct {
	alg   CipherAlg
	block cipher.Block
	bs    int
	prev  [16]byte
	tmp   [16]byte
}

// NewCipher returns the cipher of alg under key. The key is copied into the
// expanded key schedule; the caller may zero its slice afterwards.
func NewCipher(alg CipherAlg, key []byte) (*Cipher, error) {
	if !alg.KeyLengthOK(len(key)) {
		return nil, fmt.Errorf("%w: %s takes no %d-octet key", ErrKeyLength, alg, len(key))
	}
	var fam byte
	switch alg {
	case CipherDESCBC, CipherDESECB:
		fam = 'd'
	case Cipher3DES2, Cipher3DES3:
		fam = 't'
	case CipherAES:
		fam = 'a'
	default:
		return nil, fmt.Errorf("%w: cipher %s", ErrUnsupported, alg)
	}
	b, err := newBlock(fam, key)
	if err != nil {
		return nil, err
	}
	return &Cipher{alg: alg, block: b, bs: b.BlockSize()}, nil
}

// Algorithm returns the cipher's algorithm.
func (c *Cipher) Algorithm() CipherAlg { return c.alg }

// BlockSize returns 8 for DES and 3DES, 16 for AES.
func (c *Cipher) BlockSize() int { return c.bs }

// Encrypt enciphers src into dst (which may be src itself) with IV 0.
func (c *Cipher) Encrypt(dst, src []byte) error {
	if len(src)%c.bs != 0 || len(dst) < len(src) {
		return ErrBlockSize
	}
	bs := c.bs
	if c.alg == CipherDESECB {
		for i := 0; i < len(src); i += bs {
			c.block.Encrypt(dst[i:i+bs], src[i:i+bs])
		}
		return nil
	}
	prev := c.prev[:bs]
	clear(prev)
	for i := 0; i < len(src); i += bs {
		for j := range bs {
			prev[j] ^= src[i+j]
		}
		c.block.Encrypt(prev, prev)
		copy(dst[i:i+bs], prev)
	}
	return nil
}

// Decrypt deciphers src into dst (which may be src itself) with IV 0.
func (c *Cipher) Decrypt(dst, src []byte) error {
	if len(src)%c.bs != 0 || len(dst) < len(src) {
		return ErrBlockSize
	}
	bs := c.bs
	if c.alg == CipherDESECB {
		for i := 0; i < len(src); i += bs {
			c.block.Decrypt(dst[i:i+bs], src[i:i+bs])
		}
		return nil
	}
	prev := c.prev[:bs]
	tmp := c.tmp[:bs]
	clear(prev)
	for i := 0; i < len(src); i += bs {
		copy(tmp, src[i:i+bs])
		c.block.Decrypt(dst[i:i+bs], tmp)
		for j := range bs {
			dst[i+j] ^= prev[j]
		}
		copy(prev, tmp)
	}
	return nil
}

// ede2 is two-key triple DES: encrypt under K1, decrypt under K2, encrypt
// under K1.
type ede2 struct{ k1, k2 cipher.Block }

func (e ede2) BlockSize() int { return des.BlockSize }

func (e ede2) Encrypt(dst, src []byte) {
	e.k1.Encrypt(dst, src)
	e.k2.Decrypt(dst, dst)
	e.k1.Encrypt(dst, dst)
}

func (e ede2) Decrypt(dst, src []byte) {
	e.k1.Decrypt(dst, src)
	e.k2.Encrypt(dst, dst)
	e.k1.Decrypt(dst, dst)
}
