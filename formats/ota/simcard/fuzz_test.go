package simcard

import (
	"testing"

	"resub/formats/ota"
)

// FuzzReceive: whatever arrives over the air, the card never panics, and
// a message secured with its keys under a fresh counter is always
// answered with PoR OK.
func FuzzReceive(f *testing.F) {
	p := profile()
	apdus, _, _ := p.UpdateScript(ota.Change{NewIMSI: "262420123456789", NewMNCLen: 2, OldMNCLen: 2})
	msg, _ := ota.BuildMessage(p.Params(p.TAR), ota.Keys{KIc: kic, KID: kid}, ota.FormatCompact, 11, apdus, 1)
	f.Add(msg.Segments[0], []byte(nil), uint64(12))
	f.Add([]byte{0x02, 0x70, 0x00, 0x00, 0x0e, 0x0d, 0x12, 0x01, 0x15, 0x15, 0xb0, 0x00, 0x11, 0, 0, 0, 0, 1, 0}, []byte{0xaa, 0x03, 0x22, 0x01, 0x00}, uint64(3))
	f.Fuzz(func(t *testing.T, seg, script []byte, counter uint64) {
		card := newCard(t, func(c *Config) { c.MinSecurity = MSL{} })
		card.Receive([][]byte{seg})
		if counter > ota.MaxCounter || len(script) > 1000 {
			return
		}
		cur, _ := card.Counter(1)
		counter = max(counter, cur+1)
		codec, err := ota.NewCodec(p.Params(p.TAR), ota.Keys{KIc: kic, KID: kid})
		if err != nil {
			t.Fatal(err)
		}
		pkt, err := codec.EncodeCommand(nil, counter, script)
		if err != nil {
			t.Fatal(err)
		}
		segs, err := ota.Segment(pkt, 5)
		if err != nil {
			return
		}
		por, err := card.Receive(segs)
		if err != nil {
			t.Fatalf("no answer: %v", err)
		}
		r, err := codec.DecodeResponse(por)
		if err != nil || r.Status != ota.StatusOK || r.Counter != counter {
			t.Fatalf("PoR %+v %v", r, err)
		}
	})
}
