package ota

import (
	"bytes"
	"testing"
)

var fuzzKeys = Keys{KIc: packetOf(16), KID: packetOf(16)}

func FuzzDecodeCommand(f *testing.F) {
	c0, _ := NewCodec(Params{SPI: 0x1639, KIc: 0x15, KID: 0x15}, fuzzKeys)
	pkt, _ := c0.EncodeCommand(nil, 1, []byte("\x00\xa4\x00\x0c\x02\x6f\x07"))
	f.Add(uint16(0x1639), pkt)
	f.Add(uint16(0x1201), []byte("\x00\x1d\x15\x12\x01\x25\x25\xc0\x00\x00\x00\x00\x00\x00\x01\x00\x4f\xbd\xb3\x74\x0e\x95\x0c\x28\xa0\xa4\x00\x00\x02\x3f\x00"))
	f.Fuzz(func(t *testing.T, spi uint16, pkt []byte) {
		p := Params{SPI: SPI(spi), KIc: 0x15, KID: 0x15}
		c, err := NewCodec(p, fuzzKeys)
		if err != nil {
			return
		}
		if len(pkt) >= 10 { // the codec's header, so that re-encoding can match
			pkt[3], pkt[4], pkt[5], pkt[6] = byte(spi>>8), byte(spi), 0x15, 0x15
			pkt[7], pkt[8], pkt[9] = 0, 0, 0
		}
		clear := bytes.Clone(pkt)
		cmd, err := c.DecodeCommand(clear)
		if err != nil {
			return
		}
		// A packet that decodes re-encodes to the same bytes when its
		// padding is minimal and zero, as ours always is.
		again, err := c.EncodeCommand(nil, cmd.Counter, cmd.Data)
		if err != nil {
			t.Fatal(err)
		}
		minimal := cmd.PCNTR == padLen(6+sumSize(c.cmdSum)+len(cmd.Data), blockSize(c)) &&
			bytes.Count(clear[len(clear)-cmd.PCNTR:], []byte{0}) == cmd.PCNTR
		if minimal && !bytes.Equal(again, pkt) {
			t.Fatalf("re-encoded\n%x\nfrom\n%x", again, pkt)
		}
		back, err := c.DecodeCommand(again)
		if err != nil || !bytes.Equal(back.Data, cmd.Data) || back.Counter != cmd.Counter {
			t.Fatalf("round trip: %v", err)
		}
	})
}

func blockSize(c *Codec) int {
	if c.cipher == nil || !c.p.SPI.Ciphered() {
		return 1
	}
	return c.cipher.BlockSize()
}

func FuzzDecodeResponse(f *testing.F) {
	f.Add(uint16(0x0619), []byte("\x02\x71\x00\x00\x1c\x12\xb0\x00\x11\x8b\xb9\x89\x49\x2c\x63\x25\x29\x32\x6a\x2f\x46\x81\xfe\xb3\x7c\x82\x5b\xc9\x02\x1c\x9f\x6d\x0b"))
	f.Add(uint16(0x1619), []byte("\x02\x71\x00\x00\x0b\x0a\xb0\x00\x10\x00\x00\x00\x00\x00\x00\x06"))
	f.Fuzz(func(t *testing.T, spi uint16, tpud []byte) {
		c, err := NewCodec(Params{SPI: SPI(spi), KIc: 0x15, KID: 0x15}, fuzzKeys)
		if err != nil {
			return
		}
		r, err := c.DecodeResponse(bytes.Clone(tpud))
		_ = CheckUpdate(Expectation{}, r, err)
		// Judged by what it proves executed, in both formats, with the
		// EF_IMSI write anywhere in a script of up to 12 commands.
		for k := 0; k <= 12; k += 4 {
			for _, f := range []CommandFormat{FormatCompact, FormatExpanded} {
				v := CheckUpdate(Expectation{TAR: r.TAR, Counter: r.Counter, Commands: 12, IMSIWrite: k, Format: f}, r, err)
				if v.Outcome == OutcomeConfirmed && (r.Status != StatusOK || r.Unsecured) {
					t.Fatalf("confirmed on status %s (unsecured %v)", r.Status, r.Unsecured)
				}
			}
		}
		if err != nil {
			return
		}
		ParseCompactResponse(r.Data)
		ParseExpandedResponse(r.Data)
		if r.Unsecured {
			return
		}
		por, err := c.EncodeResponse(nil, r.Counter, r.Status, r.Data)
		if err != nil {
			t.Fatal(err)
		}
		back, err := c.DecodeResponse(por)
		if err != nil || back.Status != r.Status || back.Counter != r.Counter || !bytes.Equal(back.Data, r.Data) {
			t.Fatalf("round trip %+v %v", back, err)
		}
	})
}

func FuzzReassemble(f *testing.F) {
	segs, _ := Segment(packetOf(300), 9)
	f.Add(segs[0], segs[1], segs[2])
	f.Add([]byte{0x02, 0x70, 0x00, 1}, []byte{}, []byte{})
	f.Fuzz(func(t *testing.T, a, b, c []byte) {
		var in [][]byte
		for _, s := range [][]byte{a, b, c} {
			if len(s) > 0 {
				in = append(in, s)
			}
		}
		pkt, err := Reassemble(in)
		if err != nil {
			return
		}
		// What reassembles re-segments and reassembles to the same packet.
		if len(pkt) > 0 {
			again, err := Segment(pkt, 1)
			if err != nil {
				return
			}
			back, err := Reassemble(again)
			if err != nil || !bytes.Equal(back, pkt) {
				t.Fatalf("round trip: %v", err)
			}
		}
	})
}

func FuzzEFIMSI(f *testing.F) {
	f.Add("262420123456789")
	f.Add("26242012345678")
	f.Fuzz(func(t *testing.T, imsi string) {
		ef, err := EncodeIMSI(imsi)
		if err != nil {
			return
		}
		back, err := DecodeIMSI(ef[:])
		if err != nil || back != imsi {
			t.Fatalf("%q -> %x -> %q %v", imsi, ef, back, err)
		}
	})
}
