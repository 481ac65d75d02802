package simcard

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"testing"

	"resub/formats/ota"
)

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// sja5FCP stands in for the 50-octet FCP of the MF of a sysmoISIM-SJA5, so
// that SELECT 3F00 with P2=04 answers 6132 as the real card did.
func sja5FCP() []byte {
	b := append([]byte{0x62, 0x30, 0x82, 0x02, 0x78, 0x21, 0x83, 0x02, 0x3f, 0x00, 0xa5, 0x22}, make([]byte, 0x22)...)
	return append(b, 0x8a, 0x01, 0x05, 0xab, 0x00, 0xc6, 0x00)[:50]
}

// The card's PoR encoder against the PoRs a real sysmoISIM-SJA5 gave to
// pySim's test commands: same keys, TAR, counter, status and data give
// the same bytes.
func TestPinnedToRealSJA5(t *testing.T) {
	var v struct {
		PySim struct {
			Cases []struct {
				Name, Keyset string
				EncodedCmd   string `json:"encoded_cmd"`
				EncodedResp  string `json:"encoded_resp"`
			}
		} `json:"pysim_unittest_vectors"`
	}
	b, err := os.ReadFile("../testdata/ota-public.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	card, err := New(Config{
		IMSI: "001010000000001", MNCLen: 2,
		KeySets: []KeySet{
			{KVN: 3, KIc: unhex(t, "300102030405060708090a0b0c0d0e0f"), KID: unhex(t, "301102030405060708090a0b0c0d0e0f")},
			{KVN: 2, KIc: unhex(t, "200102030405060708090a0b0c0d0e0f"), KID: unhex(t, "201102030405060708090a0b0c0d0e0f")},
		},
		SelectResponses: map[uint16][]byte{0x3f00: sja5FCP()},
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range v.PySim.Cases {
		por, err := card.Receive([][]byte{append([]byte{0x02, 0x70, 0x00}, unhex(t, c.EncodedCmd)...)})
		if err != nil || hex.EncodeToString(por) != c.EncodedResp {
			t.Errorf("%s:\n got %x\nwant %s (%v)", c.Name, por, c.EncodedResp, err)
		}
	}
}

// The logged sysmoISIM-SJA2 exchange: SIM RFM TAR B00010, counter 100,
// CLA A0 SELECT DF GSM + GET RESPONSE; and the replay answered 06.
func TestPinnedToRealSJA2(t *testing.T) {
	const (
		tpud   = "02700000281516191515b000103a4f599e94f2b5dcfbbda984761b7977df6514c57a580fb4844787c436d2eade"
		por    = "027100002c12b0001049fb0315f6c6401b553867f412cefaf9355b38271178edb342a3bc9cc7e670cdc1f45eea6ffcbb39"
		replay = "027100000b0ab0001000000000000006"
	)
	card, err := New(Config{
		IMSI: "001010000000001", MNCLen: 2, USIMTAR: ota.TAR{0xb0, 0x00, 0x10},
		KeySets:          []KeySet{{KVN: 1, KIc: unhex(t, "f09c43ee1a0391665cc9f05af4e0bd10"), KID: unhex(t, "01981f4a20999f62af99988007baf6ca"), Counter: 99}},
		SelectResponses:  map[uint16][]byte{0x7f20: unhex(t, "0000ffff7f2002000000000009b106350400838a838a")},
		CounterLowStatus: ota.StatusUnidentifiedSecurity,
		MinSecurity:      MSL{CC: true, Ciphered: true, Counter: true},
	})
	if err != nil {
		t.Fatal(err)
	}
	got, err := card.Receive([][]byte{unhex(t, tpud)})
	if err != nil || hex.EncodeToString(got) != por {
		t.Errorf("PoR\n got %x\nwant %s (%v)", got, por, err)
	}
	if n, _ := card.Counter(1); n != 100 {
		t.Errorf("counter %d", n)
	}
	got, err = card.Receive([][]byte{unhex(t, tpud)})
	if err != nil || hex.EncodeToString(got) != replay {
		t.Errorf("replay PoR %x %v", got, err)
	}
}

var (
	kic = []byte("0123456789abcdef")
	kid = []byte("fedcba9876543210")
	// 3b pairs: index 2 has other OTA keys.
	kic2 = []byte("ABCDEFGHIJKLMNOP")
	kid2 = []byte("PONMLKJIHGFEDCBA")
)

func profile() ota.Profile {
	return ota.Profile{
		Name: "test", TAR: USIMRFMTAR(), SPI: 0x1639, KIc: 0x15, KID: 0x15, CLA: 0x00,
		InvalidateLOCI: true, InvalidatePSLOCI: true, InvalidateEPSLOCI: true, Invalidate5GSLOCI: true,
		GSMIMSIPath: ota.Path{0x3f00, 0x7f20, 0x6f07},
		Extra:       []ota.FileUpdate{{Path: ota.Path{ota.FIDFPLMN}, Data: bytes.Repeat([]byte{0xff}, 12)}},
		ResetTAR:    ota.TAR{0xb0, 0xff, 0x01}, ResetAPDU: ota.APDU{0x80, 0xc2, 0x04, 0x00},
	}
}

func newCard(t *testing.T, mod func(*Config)) *Card {
	t.Helper()
	reset := ota.TAR{0xb0, 0xff, 0x01}
	cfg := Config{
		ICCID: "8988211000000467285", IMSI: "262010000000001", MNCLen: 2,
		KeySets:     []KeySet{{KVN: 1, KIc: kic, KID: kid, Counter: 10}},
		ResetTAR:    &reset,
		ResetAPDU:   ota.APDU{0x80, 0xc2, 0x04, 0x00},
		GSMCopy:     true,
		MinSecurity: MSL{CC: true, Counter: true},
	}
	if mod != nil {
		mod(&cfg)
	}
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

type sender struct {
	t    *testing.T
	p    ota.Profile
	keys ota.Keys
	ref  byte
}

func (s *sender) send(card *Card, tar ota.TAR, counter uint64, apdus []ota.APDU) (ota.Response, error) {
	s.t.Helper()
	s.ref++
	msg, err := ota.BuildMessage(s.p.Params(tar), s.keys, s.p.Format, counter, apdus, s.ref)
	if err != nil {
		s.t.Fatal(err)
	}
	por, err := card.Receive(msg.Segments)
	if err != nil {
		return ota.Response{}, err
	}
	c, err := ota.NewCodec(s.p.Params(tar), s.keys)
	if err != nil {
		s.t.Fatal(err)
	}
	return c.DecodeResponse(por)
}

func TestIMSIChange(t *testing.T) {
	for _, format := range []ota.CommandFormat{ota.FormatCompact, ota.FormatExpanded} {
		card := newCard(t, nil)
		s := &sender{t: t, p: profile(), keys: ota.Keys{KIc: kic, KID: kid}}
		s.p.Format = format
		if err := s.p.Validate(); err != nil {
			t.Fatal(err)
		}
		ch := ota.Change{NewIMSI: "310260123456789", NewMNCLen: 3, OldMNCLen: 2}
		apdus, ef, err := s.p.UpdateScript(ch)
		if err != nil {
			t.Fatal(err)
		}
		msg, _ := ota.BuildMessage(s.p.Params(s.p.TAR), s.keys, format, 11, apdus, 1)
		if len(msg.Segments) < 2 {
			t.Errorf("expected a concatenated message, got %d SMS", len(msg.Segments))
		}
		r, err := s.send(card, s.p.TAR, 11, apdus)
		v := ota.CheckUpdate(ota.Expectation{TAR: s.p.TAR, Counter: 11, Commands: len(apdus), EFIMSI: ef, Format: format}, r, err)
		if v.Outcome != ota.OutcomeConfirmed {
			t.Fatalf("format %d: %s: %s", format, v.Outcome, v.Reason)
		}
		if card.IMSI() != "310260123456789" {
			t.Errorf("IMSI %s", card.IMSI())
		}
		if got := card.File(ota.Path{0x3f00, 0x7f20, 0x6f07}); !bytes.Equal(got, ef[:]) {
			t.Errorf("DF GSM EF_IMSI %x", got)
		}
		if got := card.File(ota.Path{ota.FIDAD}); got[3] != 3 {
			t.Errorf("EF_AD %x", got)
		}
		if got := hex.EncodeToString(card.File(ota.Path{ota.FIDLOCI})); got != "ffffffff130062fffeff01" {
			t.Errorf("EF_LOCI %s", got)
		}
		if got := card.File(ota.Path{ota.FIDDF5GS, ota.FID5GS3GPPLOCI}); got[len(got)-1] != 0x01 {
			t.Errorf("5GS LOCI %x", got)
		}
		if n, _ := card.Counter(1); n != 11 {
			t.Errorf("counter %d", n)
		}

		// A probe reads the IMSI back.
		probe := s.p.ReadIMSIScript()
		r, err = s.send(card, s.p.TAR, 12, probe)
		if v := ota.CheckUpdate(ota.Expectation{TAR: s.p.TAR, Counter: 12, Commands: len(probe), EFIMSI: ef, Format: format}, r, err); v.Outcome != ota.OutcomeConfirmed || len(probe) != 2 {
			t.Errorf("probe: %s %s", v.Outcome, v.Reason)
		}

		// Replay: counter low, and the IMSI stays.
		r, err = s.send(card, s.p.TAR, 11, apdus)
		if v := ota.CheckUpdate(ota.Expectation{TAR: s.p.TAR, Counter: 11}, r, err); v.Outcome != ota.OutcomeCounterLow {
			t.Errorf("replay: %s %s", v.Outcome, v.Reason)
		}

		// Reset message.
		rs, _ := s.p.ResetScript()
		r, err = s.send(card, s.p.ResetTAR, 13, rs)
		res, _ := ota.ParseCompactResponse(r.Data)
		if format == ota.FormatExpanded {
			res, _ = ota.ParseExpandedResponse(r.Data)
		}
		if err != nil || r.Status != ota.StatusOK || res.LastSW != 0x9000 || card.Resets() != 1 {
			t.Errorf("reset: %+v %+v %v resets %d", r, res, err, card.Resets())
		}
	}
}

func TestSecurityFailures(t *testing.T) {
	p := profile()
	apdus := []ota.APDU{{0x00, 0xb0, 0x00, 0x00, 0x09}}
	cases := []struct {
		name    string
		mod     func(*Config)
		spi     ota.SPI
		keys    ota.Keys
		tar     ota.TAR
		counter uint64
		want    ota.Status
	}{
		{"wrong KID", nil, 0x1239, ota.Keys{KIc: kic, KID: kic}, USIMRFMTAR(), 20, ota.StatusChecksumFailed},
		{"wrong KIc", nil, 0x1639, ota.Keys{KIc: kid, KID: kid}, USIMRFMTAR(), 20, ota.StatusChecksumFailed},
		{"counter low", nil, 0x1639, ota.Keys{KIc: kic, KID: kid}, USIMRFMTAR(), 10, ota.StatusCounterLow},
		{"counter not next", nil, 0x1e39, ota.Keys{KIc: kic, KID: kid}, USIMRFMTAR(), 12, ota.StatusCounterHigh},
		{"counter blocked", func(c *Config) { c.KeySets[0].Counter = ota.MaxCounter }, 0x1639, ota.Keys{KIc: kic, KID: kid}, USIMRFMTAR(), 20, ota.StatusCounterBlocked},
		{"TAR unknown", nil, 0x1639, ota.Keys{KIc: kic, KID: kid}, ota.TAR{1, 2, 3}, 20, ota.StatusTARUnknown},
		{"no counter below MSL", nil, 0x0639, ota.Keys{KIc: kic, KID: kid}, USIMRFMTAR(), 20, ota.StatusInsufficientSecurity},
		{"no CC below MSL", nil, 0x1439, ota.Keys{KIc: kic, KID: kid}, USIMRFMTAR(), 20, ota.StatusInsufficientSecurity},
		{"unciphered below MSL", func(c *Config) { c.MinSecurity.Ciphered = true }, 0x1239, ota.Keys{KIc: kic, KID: kid}, USIMRFMTAR(), 20, ota.StatusInsufficientSecurity},
		{"unknown key set", func(c *Config) { c.KeySets[0].KVN = 2 }, 0x1639, ota.Keys{KIc: kic, KID: kid}, USIMRFMTAR(), 20, ota.StatusUnidentifiedSecurity},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			card := newCard(t, c.mod)
			pp := p
			pp.SPI = c.spi
			if c.name == "no CC below MSL" {
				pp.SPI, pp.KID = 0x1539, 0x15
			}
			s := &sender{t: t, p: pp, keys: c.keys}
			r, err := s.send(card, c.tar, c.counter, apdus)
			if err != nil || r.Status != c.want || !r.Unsecured || r.Counter != 0 {
				t.Errorf("PoR %+v %v, want unsecured %s", r, err, c.want)
			}
			if card.IMSI() != "262010000000001" {
				t.Error("IMSI changed")
			}
		})
	}
}

func TestCardOffAndNoPoR(t *testing.T) {
	card := newCard(t, nil)
	card.SetOff(true)
	s := &sender{t: t, p: profile(), keys: ota.Keys{KIc: kic, KID: kid}}
	if _, err := s.send(card, USIMRFMTAR(), 20, []ota.APDU{{0x00, 0xb0, 0, 0, 9}}); !errors.Is(err, ErrNoAnswer) {
		t.Errorf("off: %v", err)
	}
	card.SetOff(false)
	s.p.SPI = 0x1630 // no PoR
	s.p.TestOnly = true
	if _, err := s.send(card, USIMRFMTAR(), 20, []ota.APDU{{0x00, 0xb0, 0, 0, 9}}); !errors.Is(err, ErrNoAnswer) {
		t.Errorf("no PoR: %v", err)
	}
	if n, _ := card.Counter(1); n != 20 {
		t.Errorf("counter %d", n)
	}
	s.p.SPI = 0x1632 // PoR on error: a failing script answers
	r, err := s.send(card, USIMRFMTAR(), 21, []ota.APDU{{0x00, 0xa4, 0x00, 0x0c, 0x02, 0x6f, 0x99}})
	res, _ := ota.ParseCompactResponse(r.Data)
	if err != nil || res.LastSW != 0x6a82 || res.Executed != 1 {
		t.Errorf("PoR on error: %+v %v", res, err)
	}
}

func TestScriptStopsAtFirstError(t *testing.T) {
	card := newCard(t, nil)
	s := &sender{t: t, p: profile(), keys: ota.Keys{KIc: kic, KID: kid}}
	r, err := s.send(card, USIMRFMTAR(), 11, []ota.APDU{
		{0x00, 0xa4, 0x00, 0x0c, 0x02, 0x6f, 0x07},
		{0x00, 0xd6, 0x00, 0x05, 0x09, 1, 2, 3, 4, 5, 6, 7, 8, 9}, // beyond the file
		{0x00, 0xd6, 0x00, 0x00, 0x09, 1, 2, 3, 4, 5, 6, 7, 8, 9},
	})
	res, _ := ota.ParseCompactResponse(r.Data)
	if err != nil || res.Executed != 2 || res.LastSW != 0x6b00 || card.IMSI() != "262010000000001" {
		t.Errorf("%+v %v %s", res, err, card.IMSI())
	}
}

func TestKeyIndex3b(t *testing.T) {
	kiTAR := ota.TAR{0xb0, 0xff, 0x02}
	template := ota.APDU{0x80, 0xe8, 0x00, 0x00, 0x01, 0x00}
	for _, timing := range []ota.KeyIndexTiming{ota.KeyIndexAtReset, ota.KeyIndexImmediately} {
		for _, withUpdate := range []bool{false, true} {
			card := newCard(t, func(c *Config) {
				c.KeySets = nil
				c.KeyList = []Pair{
					{Ki: []byte("ki-1"), KeySet: KeySet{KVN: 1, KIc: kic, KID: kid, Counter: 10}},
					{Ki: []byte("ki-2"), KeySet: KeySet{KVN: 1, KIc: kic2, KID: kid2}},
					{Ki: []byte("ki-3"), KeySet: KeySet{KVN: 1, KIc: kid2, KID: kic2}},
				}
				c.KeyIndex, c.KeyIndexTiming = 1, timing
				c.KeyIndexTAR, c.KeyIndexTemplate, c.KeyIndexOffset = &kiTAR, template, 5
			})
			p := profile()
			p.KeyIndex = &ota.KeyIndexCommand{TAR: kiTAR, Template: template, IndexOffset: 5, WithUpdate: withUpdate, Timing: timing}
			s := &sender{t: t, p: p, keys: ota.Keys{KIc: kic, KID: kid}}
			ch := ota.Change{NewIMSI: "262420123456789", NewMNCLen: 2, OldMNCLen: 2, KeyIndex: 2}
			apdus, ef, _ := p.UpdateScript(ch)
			r, err := s.send(card, p.TAR, 11, apdus)
			if v := ota.CheckUpdate(ota.Expectation{TAR: p.TAR, Counter: 11, Commands: len(apdus), EFIMSI: ef}, r, err); v.Outcome != ota.OutcomeConfirmed {
				t.Fatalf("update: %s", v.Reason)
			}
			if !withUpdate {
				a, _ := p.KeyIndex.Command(2)
				r, err := s.send(card, kiTAR, 12, []ota.APDU{a})
				if res, _ := ota.ParseCompactResponse(r.Data); err != nil || res.LastSW != 0x9000 {
					t.Fatalf("key index: %+v %v", res, err)
				}
			}
			cur, pending := card.KeyIndex()
			if timing == ota.KeyIndexImmediately && (cur != 2 || pending != 0) || timing == ota.KeyIndexAtReset && (cur != 1 || pending != 2) {
				t.Errorf("timing %d: index %d pending %d", timing, cur, pending)
			}
			if timing == ota.KeyIndexAtReset {
				rs, _ := p.ResetScript()
				if r, err := s.send(card, p.ResetTAR, 13, rs); err != nil || r.Status != ota.StatusOK {
					t.Fatalf("reset %+v %v", r, err)
				}
			}
			if cur, _ := card.KeyIndex(); cur != 2 || string(card.Ki()) != "ki-2" {
				t.Errorf("after: index %d Ki %s", cur, card.Ki())
			}
			// The old OTA keys no longer work; the new ones do.
			if r, _ := s.send(card, p.TAR, 20, []ota.APDU{{0x00, 0xb0, 0, 0, 9}}); r.Status != ota.StatusChecksumFailed {
				t.Errorf("old keys: %s", r.Status)
			}
			s.keys = ota.Keys{KIc: kic2, KID: kid2}
			if r, err := s.send(card, p.TAR, 1, []ota.APDU{{0x00, 0xb0, 0, 0, 9}}); err != nil || r.Status != ota.StatusOK {
				t.Errorf("new keys: %+v %v", r, err)
			}
			a, _ := p.KeyIndex.Command(9)
			if r, _ := s.send(card, kiTAR, 2, []ota.APDU{a}); func() uint16 { res, _ := ota.ParseCompactResponse(r.Data); return res.LastSW }() != 0x6a80 {
				t.Error("index beyond the list accepted")
			}
		}
	}
}

// A command packet of 137 octets travels in one SMS, one of 138 in two; the
// card takes both. SPI 1239 (CC, not ciphered) makes every length
// possible: packet = 24 + script.
func TestConcatenationBoundary(t *testing.T) {
	for _, c := range []struct {
		last, pktLen, sms int
	}{{3, 137, 1}, {4, 138, 2}} {
		apdus := []ota.APDU{{0x00, 0xa4, 0x00, 0x0c, 0x02, 0x6f, 0x7b}}
		upd := func(n int) ota.APDU {
			return append(ota.APDU{0x00, 0xd6, 0x00, 0x00, byte(n)}, bytes.Repeat([]byte{byte(n)}, n)...)
		}
		for range 5 {
			apdus = append(apdus, upd(12))
		}
		apdus = append(apdus, upd(8), upd(c.last))
		p := profile()
		p.SPI = 0x1239
		msg, err := ota.BuildMessage(p.Params(p.TAR), ota.Keys{KIc: kic, KID: kid}, ota.FormatCompact, 11, apdus, 7)
		if err != nil {
			t.Fatal(err)
		}
		if len(msg.Packet) != c.pktLen || len(msg.Segments) != c.sms {
			t.Fatalf("packet %d octets in %d SMS, want %d in %d", len(msg.Packet), len(msg.Segments), c.pktLen, c.sms)
		}
		card := newCard(t, nil)
		por, err := card.Receive(msg.Segments)
		if err != nil {
			t.Fatal(err)
		}
		codec, _ := ota.NewCodec(p.Params(p.TAR), ota.Keys{KIc: kic, KID: kid})
		r, err := codec.DecodeResponse(por)
		res, _ := ota.ParseCompactResponse(r.Data)
		if err != nil || r.Status != ota.StatusOK || res.Executed != len(apdus) || res.LastSW != 0x9000 {
			t.Errorf("%d octets: %+v %+v %v", c.pktLen, r, res, err)
		}
		want := append(bytes.Repeat([]byte{byte(c.last)}, c.last), bytes.Repeat([]byte{8}, 8-c.last)...)
		want = append(want, 12, 12, 12, 12)
		if got := card.File(ota.Path{ota.FIDFPLMN}); !bytes.Equal(got, want) {
			t.Errorf("EF_FPLMN %x, want %x", got, want)
		}
	}
}

// TestAbsentEF: a card without EF_EPSLOCI runs an update script up to the
// SELECT of that file, which answers 6A82: the PoR says 7 of 10 commands
// executed and the card holds the new IMSI (the write came first).
func TestAbsentEF(t *testing.T) {
	ks := KeySet{KVN: 1, KIc: bytes.Repeat([]byte{0x11}, 16), KID: bytes.Repeat([]byte{0x22}, 16)}
	card, err := New(Config{IMSI: "001010000000001", MNCLen: 2, KeySets: []KeySet{ks}, Absent: []uint16{ota.FIDEPSLOCI}})
	if err != nil {
		t.Fatal(err)
	}
	prof := ota.Profile{Name: "p", TAR: USIMRFMTAR(), SPI: 0x1639, KIc: 0x12, KID: 0x12, InvalidateLOCI: true, InvalidatePSLOCI: true, InvalidateEPSLOCI: true}
	sc, err := prof.Update(ota.Change{NewIMSI: "999990000000001", NewMNCLen: 2, OldMNCLen: 2})
	if err != nil {
		t.Fatal(err)
	}
	keys := ota.Keys{KIc: ks.KIc, KID: ks.KID}
	msg, err := ota.BuildMessage(prof.Params(prof.TAR), keys, ota.FormatCompact, 1, sc.APDUs, 1)
	if err != nil {
		t.Fatal(err)
	}
	por, err := card.Receive(msg.Segments)
	if err != nil {
		t.Fatal(err)
	}
	codec, _ := ota.NewCodec(prof.Params(prof.TAR), keys)
	r, err := codec.DecodeResponse(por)
	if err != nil {
		t.Fatal(err)
	}
	res, err := ota.ParseCompactResponse(r.Data)
	if err != nil || res.Executed != 7 || res.LastSW != 0x6a82 || len(sc.APDUs) != 10 {
		t.Fatalf("result %+v %v of %d commands", res, err, len(sc.APDUs))
	}
	if card.IMSI() != "999990000000001" {
		t.Errorf("the card holds %s", card.IMSI())
	}
	v := ota.CheckUpdate(ota.Expectation{TAR: prof.TAR, Counter: 1, Commands: len(sc.APDUs), EFIMSI: sc.EFIMSI, IMSIWrite: sc.IMSIWrite}, r, nil)
	if v.Outcome != ota.OutcomeIncomplete {
		t.Errorf("verdict %s (%s)", v.Outcome, v.Reason)
	}
	if _, err := New(Config{IMSI: "001010000000001", MNCLen: 2, Absent: []uint16{ota.FIDIMSI}}); err == nil {
		t.Error("a USIM without EF_IMSI was built")
	}
}

// TestAddressings: the simulated card takes the IMSI change by every
// addressing a profile can choose (ADF.USIM by FID, by 7FFF, by its AID,
// by absolute path), DF GSM's copy included, and confirms it.
func TestAddressings(t *testing.T) {
	for _, a := range []ota.Addressing{ota.AddressADF, ota.Address7FFF, ota.AddressAID, ota.AddressPath} {
		ks := KeySet{KVN: 1, KIc: bytes.Repeat([]byte{0x11}, 16), KID: bytes.Repeat([]byte{0x22}, 16)}
		card, err := New(Config{IMSI: "001010000000001", MNCLen: 2, KeySets: []KeySet{ks}, GSMCopy: true})
		if err != nil {
			t.Fatal(err)
		}
		prof := ota.Profile{Name: "p", TAR: USIMRFMTAR(), SPI: 0x1639, KIc: 0x12, KID: 0x12, InvalidateLOCI: true,
			GSMIMSIPath: ota.Path{ota.FIDMF, ota.FIDDFGSM, ota.FIDIMSI}, Addressing: a}
		if a == ota.AddressAID {
			prof.USIMAID = DefaultUSIMAID()[:7]
		}
		sc, err := prof.Update(ota.Change{NewIMSI: "999990000000001", NewMNCLen: 2, OldMNCLen: 2})
		if err != nil {
			t.Fatal(err)
		}
		keys := ota.Keys{KIc: ks.KIc, KID: ks.KID}
		msg, err := ota.BuildMessage(prof.Params(prof.TAR), keys, ota.FormatCompact, 1, sc.APDUs, 1)
		if err != nil {
			t.Fatal(err)
		}
		por, err := card.Receive(msg.Segments)
		if err != nil {
			t.Fatal(err)
		}
		codec, _ := ota.NewCodec(prof.Params(prof.TAR), keys)
		r, err := codec.DecodeResponse(por)
		if err != nil {
			t.Fatal(err)
		}
		v := ota.CheckUpdate(ota.Expectation{TAR: prof.TAR, Counter: 1, Commands: len(sc.APDUs), EFIMSI: sc.EFIMSI, IMSIWrite: sc.IMSIWrite}, r, nil)
		if v.Outcome != ota.OutcomeConfirmed || card.IMSI() != "999990000000001" || !bytes.Equal(card.File(prof.GSMIMSIPath), sc.EFIMSI[:]) {
			t.Errorf("%s: %s (%s), card holds %s", a, v.Outcome, v.Reason, card.IMSI())
		}
	}
}
