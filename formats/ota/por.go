package ota

import (
	"encoding/binary"
	"fmt"
)

// Status is the response status code of a PoR (TS 102 225 §5.2 Table 5,
// TS 31.115 §5).
type Status byte

// The response status codes.
const (
	StatusOK                   Status = 0x00
	StatusChecksumFailed       Status = 0x01
	StatusCounterLow           Status = 0x02
	StatusCounterHigh          Status = 0x03
	StatusCounterBlocked       Status = 0x04
	StatusCipheringError       Status = 0x05
	StatusUnidentifiedSecurity Status = 0x06
	StatusInsufficientMemory   Status = 0x07
	StatusMoreTime             Status = 0x08
	StatusTARUnknown           Status = 0x09
	StatusInsufficientSecurity Status = 0x0a
	StatusViaSubmit            Status = 0x0b
	StatusViaUSSD              Status = 0x0c
)

var statusMeanings = [...]string{
	"PoR OK",
	"RC/CC/DS failed",
	"CNTR low",
	"CNTR high",
	"CNTR blocked",
	"Ciphering error",
	"Unidentified security error",
	"Insufficient memory to process incoming message",
	"More time needed",
	"TAR unknown",
	"Insufficient security level",
	"Actual response data to be sent using SMS-SUBMIT",
	"Actual response data to be sent using USSD",
}

// Meaning is the status's name in the specifications' words.
func (s Status) Meaning() string {
	if int(s) < len(statusMeanings) {
		return statusMeanings[s]
	}
	return "Reserved for future use"
}

func (s Status) String() string { return fmt.Sprintf("%02x (%s)", byte(s), s.Meaning()) }

// ChecksumResult says what became of a PoR's RC/CC.
type ChecksumResult uint8

// The checksum results.
const (
	ChecksumNone     ChecksumResult = iota // the PoR carries none
	ChecksumVerified                       // present and correct
	ChecksumFailed                         // present and wrong
)

func (c ChecksumResult) String() string {
	return [...]string{"none", "verified", "failed"}[c]
}

// Response is a decoded response packet.
type Response struct {
	TAR      TAR
	Counter  uint64
	Status   Status
	Checksum ChecksumResult
	// Unsecured is true for a PoR that lacks the security the SPI asks
	// for: an error PoR from a card that could not verify the command
	// (RHL 0A, nothing ciphered). Its contents are unauthenticated.
	Unsecured bool
	// Data is the additional response data (the RFM result) without
	// padding. It aliases the buffer passed to DecodeResponse.
	Data []byte
}

const porUDH = "\x02\x71\x00"

// DecodeResponse reads the TP-UD of a PoR (UDH 02 71 00 included),
// deciphers it in place when the SPI says the PoR is ciphered, and checks
// its RC/CC. On ErrChecksum the returned Response is filled in with
// Checksum set to ChecksumFailed, for reporting only.
func (c *Codec) DecodeResponse(tpud []byte) (Response, error) {
	var r Response
	if len(tpud) < 16 || string(tpud[:3]) != porUDH {
		return r, fmt.Errorf("%w: PoR must start 027100 and hold at least 16 octets", ErrFormat)
	}
	p := tpud[3:]
	rpl := int(binary.BigEndian.Uint16(p))
	if rpl != len(p)-2 {
		return r, fmt.Errorf("%w: RPL %d but %d octets follow", ErrFormat, rpl, len(p)-2)
	}
	rhl := int(p[2])
	copy(r.TAR[:], p[3:6])
	cs := sumSize(c.porSum)
	secured := p[6:]
	ciphered := c.p.SPI.PoRCiphered()
	switch {
	case rhl == 10 && (cs != 0 || ciphered && len(secured)%c.cipher.BlockSize() != 0):
		// An unsecured error PoR.
		r.Unsecured, cs, ciphered = true, 0, false
	case rhl != 10+cs:
		return r, fmt.Errorf("%w: RHL %d, SPI %s implies %d", ErrFormat, rhl, c.p.SPI, 10+cs)
	}
	if len(secured) < 7+cs {
		return r, fmt.Errorf("%w: PoR too short for RHL %d", ErrFormat, rhl)
	}
	if ciphered {
		if len(secured)%c.cipher.BlockSize() != 0 {
			return r, fmt.Errorf("%w: %d octets are not whole blocks", ErrCipher, len(secured))
		}
		if err := c.cipher.Decrypt(secured, secured); err != nil {
			return r, fmt.Errorf("%w: %v", ErrCipher, err)
		}
	}
	r.Counter = getCounter(secured)
	pcntr := int(secured[5])
	r.Status = Status(secured[6])
	body := secured[7+cs:]
	if pcntr > len(body) {
		return r, fmt.Errorf("%w: padding counter %d exceeds %d octets of data", ErrCipher, pcntr, len(body))
	}
	r.Data = body[:len(body)-pcntr]
	if cs > 0 {
		c.porSum.Reset()
		c.porSum.Write(tpud[:9])
		c.porSum.Write(secured[:7])
		c.porSum.Write(body)
		if !c.porSum.Verify(secured[7 : 7+cs]) {
			r.Checksum = ChecksumFailed
			return r, ErrChecksum
		}
		r.Checksum = ChecksumVerified
	}
	return r, nil
}

// EncodeResponse appends to dst the TP-UD of a PoR (UDH 02 71 00 first)
// secured as the SPI's second octet asks, as a card builds it: checksum
// over UDH, header, CNTR, PCNTR, status, data and padding; then the part
// after TAR ciphered with minimal zero padding.
func (c *Codec) EncodeResponse(dst []byte, counter uint64, status Status, data []byte) ([]byte, error) {
	if !c.keyed {
		return dst, errUnkeyed
	}
	if counter > MaxCounter {
		return dst, fmt.Errorf("ota: counter %d exceeds 5 octets", counter)
	}
	cs := sumSize(c.porSum)
	pad := 0
	if c.p.SPI.PoRCiphered() {
		pad = padLen(7+cs+len(data), c.cipher.BlockSize())
	}
	total := 3 + 2 + 1 + 3 + 7 + cs + len(data) + pad
	if total-5 > 0xffff {
		return dst, ErrTooLong
	}
	start := len(dst)
	dst = append(dst, make([]byte, total)...)
	p := dst[start:]
	copy(p, porUDH)
	binary.BigEndian.PutUint16(p[3:], uint16(total-5))
	p[5] = byte(10 + cs)
	copy(p[6:9], c.p.TAR[:])
	putCounter(p[9:14], counter)
	p[14] = byte(pad)
	p[15] = byte(status)
	body := p[16+cs:]
	copy(body, data)
	if cs > 0 {
		c.porSum.Reset()
		c.porSum.Write(p[:16])
		c.porSum.Write(body)
		c.porSum.Sum(p[16:16])
	}
	if c.p.SPI.PoRCiphered() {
		if err := c.cipher.Encrypt(p[9:], p[9:]); err != nil {
			return dst[:start], err
		}
	}
	return dst, nil
}

// AppendUnsecuredResponse appends the TP-UD of an unsecured PoR (no
// checksum, not ciphered), as a card sends when it cannot verify a command.
func AppendUnsecuredResponse(dst []byte, tar TAR, counter uint64, status Status) []byte {
	var c [5]byte
	putCounter(c[:], counter)
	dst = append(dst, porUDH...)
	dst = append(dst, 0x00, 0x0b, 0x0a)
	dst = append(dst, tar[:]...)
	dst = append(dst, c[:]...)
	return append(dst, 0x00, byte(status))
}

// RFMResult is the outcome of a remote file management script as reported
// in a PoR's additional data.
type RFMResult struct {
	Executed int    // number of commands executed
	LastSW   uint16 // status word of the last executed command
	Data     []byte // response data of the last executed command
	// Expanded format only: the R-APDUs in order, and the error TLVs.
	Responses []RAPDU
	BadFormat []byte // TLV 90: the card could not parse the script
}

// RAPDU is one response in an expanded-format result.
type RAPDU struct {
	SW   uint16
	Data []byte
}

// ParseCompactResponse reads the compact-format result (TS 102 226
// §5.1.2): number of executed commands, last SW, last response data.
func ParseCompactResponse(data []byte) (RFMResult, error) {
	if len(data) < 3 {
		return RFMResult{}, fmt.Errorf("%w: compact RFM response of %d octets", ErrFormat, len(data))
	}
	return RFMResult{Executed: int(data[0]), LastSW: binary.BigEndian.Uint16(data[1:]), Data: data[3:]}, nil
}

// AppendCompactResponse appends the compact-format result.
func AppendCompactResponse(dst []byte, executed int, sw uint16, data []byte) []byte {
	return append(append(dst, byte(executed), byte(sw>>8), byte(sw)), data...)
}

// ParseExpandedResponse reads the expanded-format response scripting
// template (TS 102 226 §5.2.2): AB (definite length) or AF (indefinite,
// ended by 00 00), holding 80 (number of executed C-APDUs), 23 (R-APDU:
// data and SW), 90 (bad format) and the action TLVs 81–83. Without TLV 80
// the count is the number of R-APDUs.
func ParseExpandedResponse(data []byte) (RFMResult, error) {
	var res RFMResult
	if len(data) < 2 || (data[0] != 0xab && data[0] != 0xaf) {
		return res, fmt.Errorf("%w: no response scripting template", ErrFormat)
	}
	var body []byte
	if data[0] == 0xaf {
		if data[1] != 0x80 || len(data) < 4 || data[len(data)-2] != 0 || data[len(data)-1] != 0 {
			return res, fmt.Errorf("%w: indefinite template without end of contents", ErrFormat)
		}
		body = data[2 : len(data)-2]
	} else {
		n, off, err := berLength(data[1:])
		if err != nil || 1+off+n != len(data) {
			return res, fmt.Errorf("%w: template length", ErrFormat)
		}
		body = data[1+off:]
	}
	counted := -1
	for len(body) > 0 {
		tag := body[0]
		n, off, err := berLength(body[1:])
		if err != nil || 1+off+n > len(body) {
			return res, fmt.Errorf("%w: TLV %02x length", ErrFormat, tag)
		}
		v := body[1+off : 1+off+n]
		body = body[1+off+n:]
		switch tag {
		case 0x80:
			counted = 0
			for _, b := range v {
				counted = counted<<8 | int(b)
			}
		case 0x23:
			if len(v) < 2 {
				return res, fmt.Errorf("%w: R-APDU without status word", ErrFormat)
			}
			res.Responses = append(res.Responses, RAPDU{SW: binary.BigEndian.Uint16(v[len(v)-2:]), Data: v[:len(v)-2]})
		case 0x90:
			res.BadFormat = v
		}
	}
	res.Executed = len(res.Responses)
	if counted >= 0 {
		res.Executed = counted
	}
	if k := len(res.Responses); k > 0 {
		res.LastSW, res.Data = res.Responses[k-1].SW, res.Responses[k-1].Data
	}
	return res, nil
}

// berLength decodes a definite BER length; it returns the length and the
// number of octets it took.
func berLength(b []byte) (int, int, error) {
	if len(b) == 0 {
		return 0, 0, ErrFormat
	}
	switch {
	case b[0] < 0x80:
		return int(b[0]), 1, nil
	case b[0] == 0x81 && len(b) >= 2:
		return int(b[1]), 2, nil
	case b[0] == 0x82 && len(b) >= 3:
		return int(b[1])<<8 | int(b[2]), 3, nil
	}
	return 0, 0, ErrFormat
}

func appendBERLength(dst []byte, n int) []byte {
	switch {
	case n < 0x80:
		return append(dst, byte(n))
	case n < 0x100:
		return append(dst, 0x81, byte(n))
	}
	return append(dst, 0x82, byte(n>>8), byte(n))
}

// AppendExpandedCommand appends the command scripting template (tag AA,
// definite length) holding each APDU as a C-APDU TLV (tag 22).
func AppendExpandedCommand(dst []byte, apdus []APDU) []byte {
	n := 0
	for _, a := range apdus {
		n += 1 + len(appendBERLength(nil, len(a))) + len(a)
	}
	dst = appendBERLength(append(dst, 0xaa), n)
	for _, a := range apdus {
		dst = append(appendBERLength(append(dst, 0x22), len(a)), a...)
	}
	return dst
}

// ResponseTAR returns the TAR of a PoR's TP-UD, which is not ciphered, so
// that the processor can find the card's key set before decoding. The
// counter, by which a PoR is matched to its message, is ciphered when the
// SPI ciphers the PoR: decode with the card's codec to read it.
func ResponseTAR(tpud []byte) (TAR, error) {
	var t TAR
	if len(tpud) < 9 || string(tpud[:3]) != porUDH {
		return t, fmt.Errorf("%w: not a PoR", ErrFormat)
	}
	copy(t[:], tpud[6:9])
	return t, nil
}
