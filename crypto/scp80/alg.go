package scp80

import (
	"errors"
	"fmt"
)

// Errors returned by this package.
var (
	// ErrUnsupported is returned for algorithm codings that are implicit
	// (agreed out of band), proprietary or reserved.
	ErrUnsupported = errors.New("scp80: unsupported algorithm coding")
	// ErrKeyLength is returned when a key does not have a length the
	// algorithm accepts.
	ErrKeyLength = errors.New("scp80: wrong key length")
	// ErrBlockSize is returned when input to a block cipher is not a
	// multiple of its block size.
	ErrBlockSize = errors.New("scp80: input not a multiple of the block size")
)

// CipherAlg is a ciphering algorithm coded in the KIc octet.
type CipherAlg uint8

// The ciphering algorithms of TS 102 225 §5.1.2.
const (
	CipherNone   CipherAlg = iota // no ciphering
	CipherDESCBC                  // KIc b4..b1 = 0001
	Cipher3DES2                   // 3DES two keys, outer CBC: 0101
	Cipher3DES3                   // 3DES three keys, outer CBC: 1001
	CipherDESECB                  // DES in ECB mode: 1101
	CipherAES                     // AES-CBC, key length from the key: 0010
)

var cipherNames = [...]string{"none", "DES-CBC", "3DES-2key-CBC", "3DES-3key-CBC", "DES-ECB", "AES-CBC"}

func (a CipherAlg) String() string {
	if int(a) < len(cipherNames) {
		return cipherNames[a]
	}
	return fmt.Sprintf("CipherAlg(%d)", uint8(a))
}

// BlockSize is the cipher's block size in octets (0 for CipherNone).
func (a CipherAlg) BlockSize() int {
	switch a {
	case CipherNone:
		return 0
	case CipherAES:
		return 16
	}
	return 8
}

// KeyLengthOK reports whether n is a valid key length for the algorithm.
func (a CipherAlg) KeyLengthOK(n int) bool {
	switch a {
	case CipherDESCBC, CipherDESECB:
		return n == 8
	case Cipher3DES2:
		return n == 16
	case Cipher3DES3:
		return n == 24
	case CipherAES:
		return n == 16 || n == 24 || n == 32
	}
	return false
}

// CipherFromKIc decodes the algorithm part (b4..b1) of a KIc octet.
func CipherFromKIc(kic byte) (CipherAlg, error) {
	switch kic & 0x03 {
	case 0x01:
		switch kic & 0x0c {
		case 0x00:
			return CipherDESCBC, nil
		case 0x04:
			return Cipher3DES2, nil
		case 0x08:
			return Cipher3DES3, nil
		default:
			return CipherDESECB, nil
		}
	case 0x02:
		if kic&0x0c == 0 {
			return CipherAES, nil
		}
		return CipherNone, fmt.Errorf("%w: KIc %02x (AES mode bits reserved)", ErrUnsupported, kic)
	case 0x00:
		return CipherNone, fmt.Errorf("%w: KIc %02x (implicit algorithm)", ErrUnsupported, kic)
	}
	return CipherNone, fmt.Errorf("%w: KIc %02x (proprietary algorithm)", ErrUnsupported, kic)
}

// ChecksumKind is the kind of integrity value an SPI asks for.
type ChecksumKind uint8

// The kinds of SPI b2b1 (command) or b4b3 (PoR).
const (
	KindNone ChecksumKind = iota // no RC, CC or DS
	KindRC                       // redundancy check
	KindCC                       // cryptographic checksum
	KindDS                       // digital signature
)

func (k ChecksumKind) String() string {
	return [...]string{"none", "RC", "CC", "DS"}[k&3]
}

// ChecksumAlg is a checksum algorithm coded in the KID octet.
type ChecksumAlg uint8

// The checksum algorithms of TS 102 225 §5.1.3.
const (
	ChecksumNone  ChecksumAlg = iota // no checksum
	ChecksumCRC16                    // RC, KID b4..b1 = 0001
	ChecksumCRC32                    // RC, KID b4..b1 = 0101
	MACDES                           // CC, DES CBC-MAC: 0001
	MAC3DES2                         // CC, 3DES two keys CBC-MAC: 0101
	MAC3DES3                         // CC, 3DES three keys CBC-MAC: 1001
	MACAES                           // CC, AES-CMAC truncated to 8: 0010
)

var checksumNames = [...]string{"none", "CRC16", "CRC32", "DES-CBC-MAC", "3DES-2key-CBC-MAC", "3DES-3key-CBC-MAC", "AES-CMAC"}

func (a ChecksumAlg) String() string {
	if int(a) < len(checksumNames) {
		return checksumNames[a]
	}
	return fmt.Sprintf("ChecksumAlg(%d)", uint8(a))
}

// Size is the length of the checksum in octets.
func (a ChecksumAlg) Size() int {
	switch a {
	case ChecksumNone:
		return 0
	case ChecksumCRC16:
		return 2
	case ChecksumCRC32:
		return 4
	}
	return 8
}

// NeedsKey reports whether the algorithm is keyed (a CC).
func (a ChecksumAlg) NeedsKey() bool { return a >= MACDES }

// KeyLengthOK reports whether n is a valid key length for the algorithm.
func (a ChecksumAlg) KeyLengthOK(n int) bool {
	switch a {
	case ChecksumNone, ChecksumCRC16, ChecksumCRC32:
		return true
	case MACDES:
		return n == 8
	case MAC3DES2:
		return n == 16
	case MAC3DES3:
		return n == 24
	case MACAES:
		return n == 16 || n == 24 || n == 32
	}
	return false
}

// ChecksumFromKID decodes the algorithm part (b4..b1) of a KID octet, whose
// meaning depends on whether the SPI asks for a redundancy check or a
// cryptographic checksum. KindNone gives ChecksumNone for any octet.
func ChecksumFromKID(kid byte, kind ChecksumKind) (ChecksumAlg, error) {
	switch kind {
	case KindNone:
		return ChecksumNone, nil
	case KindRC:
		if kid&0x03 != 0x01 {
			return ChecksumNone, fmt.Errorf("%w: KID %02x for RC", ErrUnsupported, kid)
		}
		switch kid & 0x0c {
		case 0x00:
			return ChecksumCRC16, nil
		case 0x04:
			return ChecksumCRC32, nil
		}
		return ChecksumNone, fmt.Errorf("%w: KID %02x for RC (reserved CRC)", ErrUnsupported, kid)
	case KindCC:
		switch kid & 0x03 {
		case 0x01:
			switch kid & 0x0c {
			case 0x00:
				return MACDES, nil
			case 0x04:
				return MAC3DES2, nil
			case 0x08:
				return MAC3DES3, nil
			}
			return ChecksumNone, fmt.Errorf("%w: KID %02x for CC (reserved DES mode)", ErrUnsupported, kid)
		case 0x02:
			if kid&0x0c == 0 {
				return MACAES, nil
			}
			return ChecksumNone, fmt.Errorf("%w: KID %02x for CC (reserved AES mode)", ErrUnsupported, kid)
		case 0x00:
			return ChecksumNone, fmt.Errorf("%w: KID %02x (implicit algorithm)", ErrUnsupported, kid)
		}
		return ChecksumNone, fmt.Errorf("%w: KID %02x (proprietary algorithm)", ErrUnsupported, kid)
	}
	return ChecksumNone, fmt.Errorf("%w: digital signatures", ErrUnsupported)
}
