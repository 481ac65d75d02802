package scp80

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/des"
	"fmt"
)

// keyed holds the block cipher of one key. Two-key triple DES is kept
// here by value, so that building it again for the next card reuses the
// holder and only the standard library's key schedules are new.
type keyed struct {
	block cipher.Block
	ede   ede2
}

// rekey builds the block cipher for a DES-family or AES key. des3 with a
// 16-octet key builds K1,K2,K1.
func (h *keyed) rekey(family byte, key []byte) error {
	var err error
	switch family {
	case 'd':
		h.block, err = des.NewCipher(key)
	case 't':
		if len(key) != 16 {
			h.block, err = des.NewTripleDESCipher(key)
			break
		}
		// Two single-DES schedules instead of three: K1,K2,K1 shares
		// K1, and the key schedule dominates the cost of a codec built
		// per card. Per block it is as fast as des's own EDE.
		h.block = nil
		if h.ede.k1, err = des.NewCipher(key[:8]); err != nil {
			break
		}
		if h.ede.k2, err = des.NewCipher(key[8:]); err != nil {
			break
		}
		h.block = &h.ede
	case 'a':
		h.block, err = aes.NewCipher(key)
	default:
		panic("scp80: unknown family")
	}
	if err != nil {
		h.block = nil
	}
	return err
}

// newBlock builds the block cipher for a DES-family or AES key.
func newBlock(family byte, key []byte) (cipher.Block, error) {
	h := new(keyed)
	if err := h.rekey(family, key); err != nil {
		return nil, err
	}
	return h.block, nil
}

// Cipher encrypts and decrypts under a KIc key. Create it once per key set
// and reuse it, or Rekey it for the next key set; it is not safe for
// concurrent use.
type Cipher struct {
	alg  CipherAlg
	k    keyed
	bs   int
	prev [16]byte
	tmp  [16]byte
}

// NewCipher returns the cipher of alg under key. The key is copied into the
// expanded key schedule; the caller may zero its slice afterwards.
func NewCipher(alg CipherAlg, key []byte) (*Cipher, error) {
	c := new(Cipher)
	if err := c.Rekey(alg, key); err != nil {
		return nil, err
	}
	return c, nil
}

// Rekey makes c the cipher of alg under key, as NewCipher does, reusing c
// itself: only the standard library's key schedules are allocated. On
// error c is left unusable until a successful Rekey.
func (c *Cipher) Rekey(alg CipherAlg, key []byte) error {
	c.alg, c.bs, c.k.block = alg, 0, nil
	if !alg.KeyLengthOK(len(key)) {
		return fmt.Errorf("%w: %s takes no %d-octet key", ErrKeyLength, alg, len(key))
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
		return fmt.Errorf("%w: cipher %s", ErrUnsupported, alg)
	}
	if err := c.k.rekey(fam, key); err != nil {
		return err
	}
	c.bs = c.k.block.BlockSize()
	return nil
}

// Algorithm returns the cipher's algorithm.
func (c *Cipher) Algorithm() CipherAlg { return c.alg }

// BlockSize returns 8 for DES and 3DES, 16 for AES.
func (c *Cipher) BlockSize() int { return c.bs }

// Encrypt enciphers src into dst (which may be src itself) with IV 0.
func (c *Cipher) Encrypt(dst, src []byte) error {
	if c.bs == 0 || len(src)%c.bs != 0 || len(dst) < len(src) {
		return ErrBlockSize
	}
	bs := c.bs
	if c.alg == CipherDESECB {
		for i := 0; i < len(src); i += bs {
			c.k.block.Encrypt(dst[i:i+bs], src[i:i+bs])
		}
		return nil
	}
	prev := c.prev[:bs]
	clear(prev)
	for i := 0; i < len(src); i += bs {
		for j := range bs {
			prev[j] ^= src[i+j]
		}
		c.k.block.Encrypt(prev, prev)
		copy(dst[i:i+bs], prev)
	}
	return nil
}

// Decrypt deciphers src into dst (which may be src itself) with IV 0.
func (c *Cipher) Decrypt(dst, src []byte) error {
	if c.bs == 0 || len(src)%c.bs != 0 || len(dst) < len(src) {
		return ErrBlockSize
	}
	bs := c.bs
	if c.alg == CipherDESECB {
		for i := 0; i < len(src); i += bs {
			c.k.block.Decrypt(dst[i:i+bs], src[i:i+bs])
		}
		return nil
	}
	prev := c.prev[:bs]
	tmp := c.tmp[:bs]
	clear(prev)
	for i := 0; i < len(src); i += bs {
		copy(tmp, src[i:i+bs])
		c.k.block.Decrypt(dst[i:i+bs], tmp)
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

func (e *ede2) BlockSize() int { return des.BlockSize }

func (e *ede2) Encrypt(dst, src []byte) {
	e.k1.Encrypt(dst, src)
	e.k2.Decrypt(dst, dst)
	e.k1.Encrypt(dst, dst)
}

func (e *ede2) Decrypt(dst, src []byte) {
	e.k1.Decrypt(dst, src)
	e.k2.Encrypt(dst, dst)
	e.k1.Decrypt(dst, dst)
}
