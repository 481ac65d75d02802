package ota

import (
	"bytes"
	"encoding/hex"
	"testing"
)

// Vectors derived independently of this package: ciphering, CBC-MAC and
// AES-CMAC computed with the OpenSSL 3.0 command line (enc -nopad with IV 0,
// mac CMAC), CRCs with a bitwise reference, following the layout of TS
// 102 225 §5.1/§5.2 and TS 31.115 §4.4. SPI 1639, TAR B00011, counter 5,
// script SELECT 6F07 + UPDATE BINARY EF_IMSI; PoR status 00 with the
// compact result 01 9000.
func TestDerivedVectors(t *testing.T) {
	const script = "00a4000c026f0700d6000009082926241032547698"
	cases := []struct {
		name       string
		kic, kid   byte
		kicK, kidK string
		pkt, por   string
	}{
		{"DES-CBC", 0x11, 0x11, "0123456789abcdef", "fedcba9876543210", "00301516391111b00011e26f73a98df14cc66f0244b22bd0bb20972b4b3f60f05aca12d803f7efa9a2d4d46e94a8d5404305", "027100001c12b00011004831147cbd5b389ecbc032ab32f997a236aa418ec9b93c"},
		{"DES-ECB", 0x1d, 0x11, "133457799bbcdff1", "0e329232ea6d0d73", "00301516391d11b0001176b8ce6e5ee5ff27c34399e9b7c4c9d2b80e87e993e675a5fb9296f1addb1caf572292e64b33a968", "027100001c12b000118843e4ebac76b7905bb9fb6fdf92e785b9cde70a51e73cde"},
		{"3DES-3key", 0x39, 0x39, "0123456789abcdeffedcba987654321089abcdef01234567", "89abcdef012345670123456789abcdeffedcba9876543210", "00301516393939b0001172a764c6b8a4991ae2ab3dfcad7c1a9fe1345f27311de13f7630b92b5671c71a4489efc82fb2886d", "027100001c12b000119170706c205b7429d2c1dd11667b30e2c232f8b68fecaf33"},
		{"AES-192", 0x22, 0x22, "8e73b0f7da0e6452c810f32b809079e562f8ead2522c6b7b", "000102030405060708090a0b0c0d0e0f1011121314151617", "00381516392222b000119ae57b2aa01504bb1f2b58bd1f44e9ccbe6f45a711c19e6aec40224fbb913c5d23f5101ff15ede56b0beb47fc182ddc3", "027100002412b000115ffb811d7d0f6c5e07ea35d4cb73478bc40adeb1cc840fa4716fdd3b00a8bdbd"},
		{"AES-256", 0x22, 0x22, "603deb1015ca71be2b73aef0857d77811f352c073b6108d72d9810a30914dff4", "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f", "00381516392222b00011b3972c9369d931dc51192e9568c4d1d621ec543f6709e88c8d600f489772da53f3bc07244657014fbb176196cb486d00", "027100002412b00011629751ce03bcee8b09777e532bcfd86b1a09d9563731261183633b1dbc7c1274"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := Params{SPI: 0x1639, KIc: KIc(c.kic), KID: KID(c.kid), TAR: tarOf(t, "b00011")}
			codec := mustCodec(t, p, c.kicK, c.kidK)
			pkt, err := codec.EncodeCommand(nil, 5, unhex(t, script))
			if err != nil || hex.EncodeToString(pkt) != c.pkt {
				t.Errorf("command\n got %x\nwant %s (%v)", pkt, c.pkt, err)
			}
			por, err := codec.EncodeResponse(nil, 5, StatusOK, unhex(t, "019000"))
			if err != nil || hex.EncodeToString(por) != c.por {
				t.Errorf("PoR\n got %x\nwant %s (%v)", por, c.por, err)
			}
			r, err := codec.DecodeResponse(unhex(t, c.por))
			if err != nil || r.Checksum != ChecksumVerified || !bytes.Equal(r.Data, unhex(t, "019000")) {
				t.Errorf("decode PoR %+v %v", r, err)
			}
		})
	}
	for _, c := range []struct {
		kid byte
		pkt string
	}{
		{0x11, "00250f11010011b000110000000009002f6900a4000c026f0700d6000009082926241032547698"},     // CRC16
		{0x15, "00271111010015b00011000000000900b9499b7b00a4000c026f0700d6000009082926241032547698"}, // CRC32
	} {
		p := Params{SPI: 0x1101, KIc: 0x00, KID: KID(c.kid), TAR: tarOf(t, "b00011")}
		codec := mustCodec(t, p, "", "")
		pkt, err := codec.EncodeCommand(nil, 9, unhex(t, script))
		if err != nil || hex.EncodeToString(pkt) != c.pkt {
			t.Errorf("RC KID %02x\n got %x\nwant %s (%v)", c.kid, pkt, c.pkt, err)
		}
		if _, err := codec.DecodeCommand(pkt); err != nil {
			t.Errorf("RC KID %02x decode: %v", c.kid, err)
		}
	}
}
