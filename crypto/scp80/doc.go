// Package scp80 implements the ciphers and checksums of ETSI TS 102 225
// (Secured packet structure for UICC based applications) as used by SMS-PP
// OTA (SCP80, 3GPP TS 31.115).
//
// Ciphering (under KIc) is CBC with an all-zero initial vector, or ECB for
// single DES in ECB mode: DES, 3DES with two keys (K1,K2,K1) or three keys
// in outer-CBC, AES with 128, 192 or 256 bit keys. Input to Encrypt and
// Decrypt must be a multiple of the block size; padding is the caller's
// business (the secured packet carries its own padding counter).
//
// Checksums (under KID) are either cryptographic checksums (CC) — DES/3DES
// CBC-MAC with IV 0, input zero-padded to 8 octets, the last block; or
// AES-CMAC (NIST SP 800-38B) truncated to its leftmost 8 octets — or
// redundancy checks (RC): CRC-16 (reflected polynomial 0x8408, init and
// final XOR 0xFFFF) and CRC-32 (IEEE, as zlib), both output big-endian.
//
// The algorithm follows from the KIc or KID octet exactly as on a card:
// CipherFromKIc and ChecksumFromKID decode the octet. Ciphers and checksums
// keep their expanded keys, so a key set builds them once and reuses them;
// they are not safe for concurrent use.
package scp80
