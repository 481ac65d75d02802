package ota

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"testing"

	"resub/crypto/scp80"
)

func TestEFIMSI(t *testing.T) {
	for _, c := range []struct{ imsi, ef string }{
		{"262420123456789", "082926241032547698"},
		{"26242012345678", "0821262410325476f8"},
		{"310260123456789", "083901621032547698"},
		{"228062800000208", "082982608200002080"}, // pySim test
		{"001010", "04011010f0ffffffff"},
	} {
		ef, err := EncodeIMSI(c.imsi)
		if err != nil || hex.EncodeToString(ef[:]) != c.ef {
			t.Errorf("EncodeIMSI(%s) = %x, %v; want %s", c.imsi, ef, err, c.ef)
		}
		back, err := DecodeIMSI(unhex(t, c.ef))
		if err != nil || back != c.imsi {
			t.Errorf("DecodeIMSI(%s) = %s, %v", c.ef, back, err)
		}
	}
	for _, bad := range []string{"", "12345", "1234567890123456", "26242012345678x"} {
		if _, err := EncodeIMSI(bad); !errors.Is(err, ErrIMSI) {
			t.Errorf("EncodeIMSI(%q): %v", bad, err)
		}
	}
	for _, bad := range []string{"", "09", "082126241032547698", "08292624103254769f", "0829262410325476a8", "ffffffffffffffffff"} {
		if _, err := DecodeIMSI(unhex(t, bad)); !errors.Is(err, ErrIMSI) {
			t.Errorf("DecodeIMSI(%q): %v", bad, err)
		}
	}
}

func TestPLMN(t *testing.T) {
	for _, c := range []struct {
		mcc, mnc, enc string
	}{{"262", "42", "62f224"}, {"310", "260", "130062"}, {"001", "01", "00f110"}} {
		p := PLMN{c.mcc, c.mnc}
		b, err := p.Encode()
		if err != nil || hex.EncodeToString(b[:]) != c.enc {
			t.Errorf("%s: %x %v, want %s", p, b, err, c.enc)
		}
		back, err := DecodePLMN(b[:])
		if err != nil || back != p {
			t.Errorf("DecodePLMN(%x) = %v %v", b, back, err)
		}
	}
	if p, err := PLMNFromIMSI("310260123456789", 3); err != nil || p != (PLMN{"310", "260"}) {
		t.Errorf("PLMNFromIMSI: %v %v", p, err)
	}
	if _, err := (PLMN{"26", "42"}).Encode(); err == nil {
		t.Error("2-digit MCC accepted")
	}
}

func TestSPIBits(t *testing.T) {
	s := SPI(0x1639)
	if s.Checksum() != scp80.KindCC || !s.Ciphered() || s.Counter() != CounterHigher ||
		s.PoR() != PoRRequired || s.PoRChecksum() != scp80.KindCC || !s.PoRCiphered() || !s.PoRViaSubmit() || s.Reserved() != 0 {
		t.Errorf("1639: %s", s.Describe())
	}
	s = SPI(0x1535)
	if s.Checksum() != scp80.KindRC || s.PoRChecksum() != scp80.KindRC || !s.PoRCiphered() || s.Counter() != CounterHigher {
		t.Errorf("1535: %s", s.Describe())
	}
	s = SPI(0x1e02)
	if s.Counter() != CounterNext || s.PoR() != PoROnError || s.PoRViaSubmit() {
		t.Errorf("1e02: %s", s.Describe())
	}
	if SPI(0x0800).Counter() != CounterAvailable || SPI(0x2000).Reserved() == 0 || SPI(0x0040).Reserved() == 0 || SPI(0x0003).Reserved() == 0 {
		t.Error("reserved bits / counter available")
	}
	if KIc(0x35).KeyVersion() != 3 || KID(0xf2).KeyVersion() != 15 {
		t.Error("key versions")
	}
	if _, err := NewCodec(Params{SPI: 0x2000}, Keys{}); err == nil {
		t.Error("reserved SPI accepted")
	}
	if _, err := NewCodec(Params{SPI: 0x1639, KIc: 0x35, KID: 0x35}, Keys{KIc: make([]byte, 16)}); !errors.Is(err, ErrNoKey) {
		t.Errorf("missing KID key: %v", err)
	}
	if _, err := NewCodec(Params{SPI: 0x1639, KIc: 0x35, KID: 0x35}, Keys{KIc: make([]byte, 24), KID: make([]byte, 16)}); !errors.Is(err, scp80.ErrKeyLength) {
		t.Errorf("wrong key length: %v", err)
	}
}

func packetOf(n int) []byte {
	p := make([]byte, n)
	for i := range p {
		p[i] = byte(i)
	}
	return p
}

// 137 octets of packet fit one SMS; 138 need two (TS 31.115 §4.3).
func TestSegmentBoundary(t *testing.T) {
	for _, c := range []struct {
		n, segs int
		lens    []int
	}{
		{137, 1, []int{140}},
		{138, 2, []int{140, 12}},
		{132 + 134, 2, []int{140, 140}},
		{132 + 134 + 1, 3, []int{140, 140, 7}},
	} {
		pkt := packetOf(c.n)
		segs, err := Segment(pkt, 0x2a)
		if err != nil || len(segs) != c.segs || SegmentCount(c.n) != c.segs {
			t.Fatalf("%d octets: %d segments, %v", c.n, len(segs), err)
		}
		for i, s := range segs {
			if len(s) != c.lens[i] {
				t.Errorf("%d octets: segment %d has %d octets, want %d", c.n, i+1, len(s), c.lens[i])
			}
		}
		if c.segs == 1 && !bytes.HasPrefix(segs[0], []byte{0x02, 0x70, 0x00}) {
			t.Errorf("single UDH %x", segs[0][:3])
		}
		if c.segs > 1 {
			if h := hex.EncodeToString(segs[0][:8]); h != fmt.Sprintf("0700032a%02x017000", c.segs) {
				t.Errorf("first UDH %s", h)
			}
			if h := hex.EncodeToString(segs[1][:6]); h != fmt.Sprintf("0500032a%02x02", c.segs) {
				t.Errorf("second UDH %s", h)
			}
			if !bytes.Equal(segs[0][8:], pkt[:132]) || !bytes.Equal(segs[1][6:], pkt[132:min(c.n, 266)]) {
				t.Error("segment contents")
			}
		}
		back, err := Reassemble(segs)
		if err != nil || !bytes.Equal(back, pkt) {
			t.Errorf("%d octets: reassembled %d, %v", c.n, len(back), err)
		}
		// Out of order.
		rev := make([][]byte, len(segs))
		for i := range segs {
			rev[len(segs)-1-i] = segs[i]
		}
		if back, err := Reassemble(rev); err != nil || !bytes.Equal(back, pkt) {
			t.Errorf("%d octets reversed: %v", c.n, err)
		}
	}
	if _, err := Segment(packetOf(132+134*254+1), 1); !errors.Is(err, ErrTooLong) {
		t.Errorf("256 segments: %v", err)
	}
}

func TestReassembleRejects(t *testing.T) {
	segs, _ := Segment(packetOf(300), 7)
	other, _ := Segment(packetOf(300), 8)
	njiwa := append([]byte{0x07, 0x70, 0x00, 0x00, 0x03, 0x07, 0x03, 0x01}, segs[0][8:]...)
	cases := map[string][][]byte{
		"none":          nil,
		"missing":       segs[:2],
		"repeated":      {segs[0], segs[1], segs[1]},
		"mixed ref":     {segs[0], other[1], segs[2]},
		"no CPI single": {unhex(t, "0200000102")},
		"bad UDHL":      {{0x09, 0x70, 0x00}},
		"bad IE":        {{0x02, 0x70, 0x05}},
		"seq zero":      {{0x05, 0x00, 0x03, 0x01, 0x01, 0x00}},
	}
	for name, s := range cases {
		if _, err := Reassemble(s); !errors.Is(err, ErrFormat) {
			t.Errorf("%s: %v", name, err)
		}
	}
	// The CPI-first order (njiwa) is accepted too.
	if back, err := Reassemble([][]byte{njiwa, segs[1], segs[2]}); err != nil || !bytes.Equal(back, packetOf(300)) {
		t.Errorf("CPI-first: %v", err)
	}
}

func TestExpandedFormat(t *testing.T) {
	// pySim test_ota.py golden values (TS 102 226 §5.2).
	got := AppendExpandedCommand(nil, []APDU{unhex(t, "80f24002024f0000"), unhex(t, "00a40004023f0000")})
	if h := hex.EncodeToString(got); h != "aa14220880f24002024f0000220800a40004023f0000" {
		t.Errorf("expanded command %s", h)
	}
	long := append(unhex(t, "80f24000c3"), packetOf(195)...)
	if h := hex.EncodeToString(AppendExpandedCommand(nil, []APDU{long})[:6]); h != "aa81cb2281c8" {
		t.Errorf("long form %s", h)
	}
	for _, c := range []struct {
		in       string
		executed int
		sw       uint16
		data     string
		bad      bool
	}{
		{"ab0780010123026132", 1, 0x6132, "", false},
		{"ab0780010123029000", 1, 0x9000, "", false},
		{"af80" + "23029000" + "23029000" + "230c988812010000408608149000" + "0000", 3, 0x9000, "98881201000040860814", false},
		{"ab06800101900101", 1, 0, "", true},
	} {
		r, err := ParseExpandedResponse(unhex(t, c.in))
		if err != nil || r.Executed != c.executed || r.LastSW != c.sw || hex.EncodeToString(r.Data) != c.data || (len(r.BadFormat) > 0) != c.bad {
			t.Errorf("%s: %+v %v", c.in, r, err)
		}
	}
	for _, bad := range []string{"af8023029000", "ab0880010123029000", "cc00", "ab03230190"} {
		if _, err := ParseExpandedResponse(unhex(t, bad)); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
}

func TestStatusMeanings(t *testing.T) {
	want := []string{"PoR OK", "RC/CC/DS failed", "CNTR low", "CNTR high", "CNTR blocked", "Ciphering error",
		"Unidentified security error", "Insufficient memory to process incoming message", "More time needed",
		"TAR unknown", "Insufficient security level", "Actual response data to be sent using SMS-SUBMIT",
		"Actual response data to be sent using USSD"}
	for i, w := range want {
		if got := Status(i).Meaning(); got != w {
			t.Errorf("%02x: %q", i, got)
		}
	}
	if !strings.Contains(Status(0x0d).Meaning(), "Reserved") {
		t.Error("0d")
	}
}

// Every counter mode and PoR option round-trips through the codec, and
// the packet length is minimal.
func TestCodecRoundTripAllSPIs(t *testing.T) {
	keys := map[string]struct {
		kic, kid   byte
		kicK, kidK []byte
	}{
		"DES":   {0x11, 0x11, packetOf(8), packetOf(8)},
		"3DES2": {0x15, 0x15, packetOf(16), packetOf(16)},
		"3DES3": {0x19, 0x19, packetOf(24), packetOf(24)},
		"AES":   {0x12, 0x12, packetOf(32), packetOf(16)},
	}
	data := unhex(t, "00a4000c026f0700d6000009082926241032547698")
	for name, k := range keys {
		for first := range 0x20 {
			if first&3 == 3 { // DS
				continue
			}
			for _, second := range []byte{0x00, 0x01, 0x02, 0x05, 0x09, 0x11, 0x19, 0x21, 0x39} {
				spi := SPI(uint16(first)<<8 | uint16(second))
				p := Params{SPI: spi, KIc: KIc(k.kic), KID: KID(k.kid), TAR: TAR{0xb0, 0, 0x11}}
				if spi.Checksum() == scp80.KindRC || spi.PoRChecksum() == scp80.KindRC {
					p.KID = 0x15 // CRC32 as RC; as CC the same octet is 3DES-2
					if spi.Checksum() == scp80.KindCC || spi.PoRChecksum() == scp80.KindCC {
						continue
					}
				}
				c, err := NewCodec(p, Keys{KIc: k.kicK, KID: k.kidK})
				if err != nil {
					t.Fatalf("%s %s: %v", name, spi, err)
				}
				pkt, err := c.EncodeCommand(nil, 0x0102030405, data)
				if err != nil {
					t.Fatal(err)
				}
				if len(pkt) != c.CommandLen(len(data)) {
					t.Errorf("%s %s: len", name, spi)
				}
				if spi.Ciphered() && (len(pkt)-10)%bsOf(name) != 0 {
					t.Errorf("%s %s: ciphered part %d", name, spi, len(pkt)-10)
				}
				cmd, err := c.DecodeCommand(pkt)
				if err != nil || !bytes.Equal(cmd.Data, data) || cmd.Counter != 0x0102030405 || (!spi.Ciphered() && cmd.PCNTR != 0) {
					t.Errorf("%s %s: decode %+v %v", name, spi, cmd, err)
				}
				por, err := c.EncodeResponse(nil, 0x0102030405, StatusOK, unhex(t, "019000"))
				if err != nil {
					t.Fatal(err)
				}
				r, err := c.DecodeResponse(por)
				if err != nil || r.Counter != 0x0102030405 || r.Unsecured || hex.EncodeToString(r.Data) != "019000" {
					t.Errorf("%s %s: PoR %+v %v", name, spi, r, err)
				}
			}
		}
	}
}

func bsOf(name string) int {
	if name == "AES" {
		return 16
	}
	return 8
}

func TestParseHelpers(t *testing.T) {
	if s, err := ParseSPI("1639"); err != nil || s != 0x1639 {
		t.Errorf("ParseSPI %v %v", s, err)
	}
	if k, err := ParseKIc("F2"); err != nil || k != 0xf2 {
		t.Errorf("ParseKIc %v %v", k, err)
	}
	if k, err := ParseKID("35"); err != nil || k != 0x35 {
		t.Errorf("ParseKID %v %v", k, err)
	}
	for _, bad := range []string{"", "163", "16390", "zz39"} {
		if _, err := ParseSPI(bad); err == nil {
			t.Errorf("ParseSPI(%q)", bad)
		}
	}
	if _, err := ParseKID("153"); err == nil {
		t.Error("ParseKID 3 digits")
	}
	if p, err := ParsePath("3F00/7f20/6F07"); err != nil || p.String() != "3f00/7f20/6f07" {
		t.Errorf("ParsePath %v %v", p, err)
	}
	for _, bad := range []string{"", "3F0", "3F00/", "3F00/xx07", "3F0G"} {
		if _, err := ParsePath(bad); err == nil {
			t.Errorf("ParsePath(%q)", bad)
		}
	}
	if tar, err := ResponseTAR(unhex(t, "027100000b0ab0001000000000000006")); err != nil || tar != (TAR{0xb0, 0, 0x10}) {
		t.Errorf("ResponseTAR %v %v", tar, err)
	}
	if _, err := ResponseTAR(unhex(t, "027000000b0ab00010")); !errors.Is(err, ErrFormat) {
		t.Errorf("ResponseTAR of a command: %v", err)
	}
}
