package ota

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/des"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"testing"

	"resub/crypto/scp80"
)

// One Encoder, rekeyed for every message, gives the published bytes of
// pySim's command packets (3DES and AES) and of the logged real-card
// TP-UD, in any order, also right after a rekey that failed.
func TestEncoderPublishedVectors(t *testing.T) {
	v := loadVectors(t)
	type vec struct {
		name string
		p    Params
		k    Keys
		cntr uint64
		data []byte
		want string // hex of the packet, or of the only segment when seg
		seg  bool
	}
	var vecs []vec
	for _, c := range v.PySim.Cases {
		ks := pysimKeysets[c.Keyset]
		vecs = append(vecs, vec{c.Name, Params{SPI: spiOf(t, c.SPI), KIc: ks.kic, KID: KID(ks.kid), TAR: tarOf(t, c.TAR)},
			Keys{KIc: unhex(t, ks.kicK), KID: unhex(t, ks.kidK)}, c.Cntr, unhex(t, c.APDU), c.EncodedCmd, false})
	}
	for _, raw := range v.RealCard[:2] {
		var rc realCard
		if err := json.Unmarshal(raw, &rc); err != nil {
			t.Fatal(err)
		}
		var data []byte
		for _, a := range rc.APDUs {
			data = append(data, unhex(t, a)...)
		}
		vecs = append(vecs, vec{"real card " + rc.CntrHex, Params{SPI: spiOf(t, rc.SPI), KIc: 0x15, KID: 0x15, TAR: tarOf(t, rc.TAR)},
			Keys{KIc: unhex(t, rc.KIc), KID: unhex(t, rc.KID)}, rc.Cntr, data, rc.TPUDLogged, true})
	}
	if len(vecs) != 6 {
		t.Fatalf("%d vectors", len(vecs))
	}
	var e Encoder
	for round := range 3 {
		for i := range vecs {
			c := vecs[(i*(round+1))%len(vecs)] // another order each round
			if round == 1 {
				// A rekey that fails leaves nothing behind for the next.
				bad := c.k
				bad.KIc = bad.KIc[:5]
				if _, err := e.Message(c.p, bad, c.cntr, c.data, 1); !errors.Is(err, scp80.ErrKeyLength) {
					t.Fatalf("%s with a 5-octet KIc: %v", c.name, err)
				}
				if _, err := e.codec.EncodeCommand(nil, c.cntr, c.data); err == nil {
					t.Fatalf("%s: a codec whose rekey failed still encodes", c.name)
				}
			}
			msg, err := e.Message(c.p, c.k, c.cntr, c.data, 1)
			if err != nil {
				t.Fatalf("%s: %v", c.name, err)
			}
			got := hex.EncodeToString(msg.Packet)
			if c.seg {
				if len(msg.Segments) != 1 {
					t.Fatalf("%s: %d segments", c.name, len(msg.Segments))
				}
				got = hex.EncodeToString(msg.Segments[0])
			}
			if got != c.want {
				t.Errorf("round %d %s\n got %s\nwant %s", round, c.name, got, c.want)
			}
		}
	}
}

// The Encoder gives BuildMessage's bytes for every supported cipher and
// checksum, one and several segments, compact and expanded formats.
func TestEncoderMatchesBuildMessage(t *testing.T) {
	keys := map[int][]byte{}
	for _, n := range []int{8, 16, 24, 32} {
		keys[n] = packetOf(n)
	}
	long := make([]APDU, 0, 20)
	for i := range 20 {
		long = append(long, APDU{0x00, 0xd6, 0, byte(i), 8, 1, 2, 3, 4, 5, 6, 7, byte(i)})
	}
	short := []APDU{{0x00, 0xb0, 0, 0, 9}}
	cases := []struct {
		spi      SPI
		kic, kid byte
		klen     int
	}{
		{0x1621, 0x01, 0x01, 8}, {0x1621, 0x05, 0x05, 16}, {0x1621, 0x09, 0x09, 24},
		{0x1639, 0x12, 0x12, 16}, {0x1639, 0x12, 0x12, 24}, {0x1639, 0x12, 0x12, 32},
		{0x1201, 0x00, 0x15, 16}, {0x0a01, 0x00, 0x01, 8}, {0x0401, 0x12, 0x00, 16}, {0x0101, 0x00, 0x01, 16}, {0x0101, 0x00, 0x05, 16},
		{0x0001, 0x00, 0x00, 16},
	}
	var e Encoder
	for _, c := range cases {
		for _, f := range []CommandFormat{FormatCompact, FormatExpanded} {
			for _, apdus := range [][]APDU{short, long} {
				p := Params{SPI: c.spi, KIc: KIc(c.kic), KID: KID(c.kid), TAR: TAR{0xb0, 0, 0x10}}
				k := Keys{KIc: keys[c.klen], KID: keys[c.klen]}
				want, err := BuildMessage(p, k, f, 77, apdus, 9)
				if err != nil {
					t.Fatalf("%+v: %v", p, err)
				}
				got, err := e.ScriptMessage(p, k, f, 77, apdus, 9)
				if err != nil {
					t.Fatal(err)
				}
				if hex.EncodeToString(got.Packet) != hex.EncodeToString(want.Packet) || len(got.Segments) != len(want.Segments) {
					t.Fatalf("SPI %s KIc %02x: packet %x, want %x", c.spi, c.kic, got.Packet, want.Packet)
				}
				for i := range want.Segments {
					if hex.EncodeToString(got.Segments[i]) != hex.EncodeToString(want.Segments[i]) {
						t.Fatalf("SPI %s KIc %02x: segment %d %x, want %x", c.spi, c.kic, i, got.Segments[i], want.Segments[i])
					}
				}
			}
		}
	}
}

// Beyond the standard library's key schedules (one allocation a DES or
// AES key), encoding a message for another card allocates nothing.
func TestEncoderAllocatesOnlyKeySchedules(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts differ under the race detector")
	}
	for _, alg := range []string{"3DES", "AES"} {
		p, k := benchParams(alg == "AES")
		var e Encoder
		data := benchScript
		cntr := uint64(0)
		got := testing.AllocsPerRun(200, func() {
			cntr++
			if _, err := e.Message(p, k, cntr, data, byte(cntr)); err != nil {
				t.Fatal(err)
			}
		})
		f := newFloor(t, p, k, data)
		schedules := testing.AllocsPerRun(200, func() { f.schedule() })
		if got > schedules {
			t.Errorf("%s: %.0f allocations a message, the key schedules alone make %.0f", alg, got, schedules)
		}
	}
}

// floor is the cipher work no encoder of a packet can avoid, done with
// the standard library and nothing else: the key schedules of KIc and
// KID, the CBC encryption of the ciphered part and the MAC over the
// covered octets, with the packet's own lengths. Two-key 3DES takes two
// single-DES schedules a key (K1,K2,K1), as few as the standard library
// allows.
type floor struct {
	p        Params
	k        Keys
	cbcLen   int // octets ciphered
	macLen   int // octets under the MAC, padded to whole blocks
	buf, mac []byte
	x, zero  [16]byte
	aes      bool
	blocks   [4]cipher.Block
}

func newFloor(t testing.TB, p Params, k Keys, data []byte) *floor {
	t.Helper()
	c, err := NewCodec(p, k)
	if err != nil {
		t.Fatal(err)
	}
	alg, err := p.KIc.Algorithm()
	if err != nil {
		t.Fatal(err)
	}
	f := &floor{p: p, k: k, aes: alg == scp80.CipherAES}
	total := c.CommandLen(len(data))
	f.cbcLen = total - 10
	bs := c.cipher.BlockSize()
	covered := total - 8 // CPL to the end, without the checksum
	f.macLen = (covered + bs - 1) / bs * bs
	if f.aes && covered%bs == 0 {
		f.macLen = covered
	}
	f.buf = make([]byte, f.cbcLen)
	f.mac = make([]byte, f.macLen)
	return f
}

// schedule expands KIc and KID.
func (f *floor) schedule() {
	if f.aes {
		f.blocks[0], _ = aes.NewCipher(f.k.KIc)
		f.blocks[1], _ = aes.NewCipher(f.k.KID)
		return
	}
	f.blocks[0], _ = des.NewCipher(f.k.KIc[:8])
	f.blocks[1], _ = des.NewCipher(f.k.KIc[8:16])
	f.blocks[2], _ = des.NewCipher(f.k.KID[:8])
	f.blocks[3], _ = des.NewCipher(f.k.KID[8:16])
}

// packet is one packet's worth of floor work.
func (f *floor) packet() {
	f.schedule()
	if f.aes {
		// CMAC: the subkey, then CBC over the covered blocks.
		f.blocks[1].Encrypt(f.x[:], f.zero[:])
		cbc(f.blocks[1], nil, f.x[:16], f.mac)
		cbc(f.blocks[0], nil, f.x[:16], f.buf)
		return
	}
	cbc(f.blocks[2], f.blocks[3], f.x[:8], f.mac)
	cbc(f.blocks[0], f.blocks[1], f.x[:8], f.buf)
}

// cbc enciphers b in place in CBC mode with IV 0 under k1 alone, or
// under K1,K2,K1 (EDE) when k2 is given; x is the chain value's scratch.
func cbc(k1, k2 cipher.Block, x, b []byte) {
	bs := len(x)
	clear(x)
	for i := 0; i < len(b); i += bs {
		subtle.XORBytes(x, x, b[i:i+bs])
		k1.Encrypt(x, x)
		if k2 != nil {
			k2.Decrypt(x, x)
			k1.Encrypt(x, x)
		}
		copy(b[i:], x)
	}
}

// One ScriptBuffer reused card after card gives every card UpdateScript's
// script, and, once grown, builds a script without allocating.
func TestUpdateScriptIntoReused(t *testing.T) {
	p := testProfile()
	p.Invalidate5GSLOCI = true
	p.GSMIMSIPath = Path{FIDMF, FIDDFGSM, FIDIMSI}
	changes := []Change{
		{NewIMSI: "262420123456789", NewMNCLen: 2, OldMNCLen: 2},
		{NewIMSI: "310260123456789", NewMNCLen: 3, OldMNCLen: 2},
		{NewIMSI: "26242012345678", NewMNCLen: 2, OldMNCLen: 3},
	}
	var sb ScriptBuffer
	for round := range 2 {
		for _, c := range changes {
			want, wantEF, err := p.UpdateScript(c)
			if err != nil {
				t.Fatal(err)
			}
			got, ef, err := p.UpdateScriptInto(&sb, c)
			if err != nil || hexAPDUs(got) != hexAPDUs(want) || ef != wantEF {
				t.Errorf("round %d %s:\n got %s\nwant %s (%v)", round, c.NewIMSI, hexAPDUs(got), hexAPDUs(want), err)
			}
		}
	}
	c := changes[1]
	if raceEnabled {
		return // allocation counts differ under the race detector
	}
	if n := testing.AllocsPerRun(100, func() { p.UpdateScriptInto(&sb, c) }); n != 0 {
		t.Errorf("%.0f allocations a script", n)
	}
}

// One ScriptBuffer reused across profiles of every addressing gives each
// script Update's APDUs, EF_IMSI and position of the EF_IMSI write, and
// builds each without allocating once grown.
func TestUpdateIntoEveryAddressing(t *testing.T) {
	c := Change{NewIMSI: "310260123456789", NewMNCLen: 3, OldMNCLen: 2}
	var sb ScriptBuffer
	for _, a := range []Addressing{AddressADF, AddressADFOnly, Address7FFF, AddressAID, AddressPath} {
		p := testProfile()
		p.Addressing = a
		if a == AddressAID {
			p.USIMAID = []byte{0xa0, 0x00, 0x00, 0x00, 0x87, 0x10, 0x02}
		}
		if a != AddressADFOnly {
			p.GSMIMSIPath = Path{FIDMF, FIDDFGSM, FIDIMSI}
		}
		if err := p.Validate(); err != nil {
			t.Fatalf("%s: %v", a, err)
		}
		want, err := p.Update(c)
		if err != nil {
			t.Fatal(err)
		}
		for round := range 2 {
			got, err := p.UpdateInto(&sb, c)
			if err != nil || hexAPDUs(got.APDUs) != hexAPDUs(want.APDUs) || got.EFIMSI != want.EFIMSI || got.IMSIWrite != want.IMSIWrite {
				t.Errorf("%s round %d:\n got %s (write at %d)\nwant %s (write at %d) %v", a, round, hexAPDUs(got.APDUs), got.IMSIWrite, hexAPDUs(want.APDUs), want.IMSIWrite, err)
			}
			if w := got.APDUs[got.IMSIWrite-1]; w[1] != 0xd6 || !bytes.Equal(w[5:], got.EFIMSI[:]) {
				t.Errorf("%s: command %d is %x, not the EF_IMSI write", a, got.IMSIWrite, w)
			}
		}
		if raceEnabled {
			continue // allocation counts differ under the race detector
		}
		if n := testing.AllocsPerRun(50, func() { p.UpdateInto(&sb, c) }); n != 0 {
			t.Errorf("%s: %.0f allocations a script", a, n)
		}
	}
}
