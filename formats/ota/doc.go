// Package ota encodes and decodes the over-the-air messages that change the
// IMSI of a USIM: secured command packets and response packets (proofs of
// receipt, PoR) of ETSI TS 102 225 as carried in SMS-PP by 3GPP TS 31.115,
// the remote file management (RFM) scripts of ETSI TS 102 226, and the
// EF_IMSI coding of 3GPP TS 31.102.
//
// # Command packet
//
//	CPL(2) CHL(1) SPI(2) KIc(1) KID(1) TAR(3) | CNTR(5) PCNTR(1) RC/CC/DS secured-data padding
//
// Everything after TAR is ciphered (CBC, IV 0) when SPI b3 is set; the
// RC/CC covers CPL..TAR, CNTR, PCNTR and the secured data with its padding.
// Padding is minimal: zero octets up to the cipher block size, and none
// when the packet is not ciphered. A Codec holds the ciphers and checksum
// of one key set and encodes and decodes packets without allocating.
//
// # SMS-PP
//
// A packet of up to 137 octets travels in one SMS with the user data header
// 02 70 00; a longer one is cut into concatenated segments (first 07 00 03
// ref n 01 70 00 with 132 octets, then 05 00 03 ref n i with 134 octets).
// Segment and Reassemble work on TP-UD.
//
// # Proof of receipt
//
//	02 71 00 RPL(2) RHL(1) TAR(3) | CNTR(5) PCNTR(1) status(1) RC/CC/DS data padding
//
// The checksum covers the three UDH octets too. A card that cannot verify a
// command answers unsecured (RHL 0A, nothing ciphered); DecodeResponse
// recognises that and says so, and CheckUpdate never confirms on such an
// answer.
//
// # Verdicts
//
// CheckUpdate judges an IMSI update's PoR by what it proves the card
// executed (Script.IMSIWrite is the position of the UPDATE BINARY of
// EF_IMSI): confirmed when every command completed (SWCompleted: 9000,
// 91xx, 920x, 61xx, 9Fxx, 63Cx) and the read-back is the new EF_IMSI;
// failed when the card did not run the script or stopped before the write
// (or at it with an error or a 62xx warning, memory unchanged); incomplete
// when the write executed and something after it did not: the card has
// changed, and the whole script is sent again.
package ota
