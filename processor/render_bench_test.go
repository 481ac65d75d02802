package processor

import (
	"crypto/rand"
	"fmt"
	"testing"

	"resub/crypto/keywrap"
	"resub/formats/ident"
	"resub/formats/ota"
	"resub/processor/ledger"
)

// BenchmarkOTAMessage: one card's message as the OTA batch renders it —
// the script for the card's new IMSI, its KIc and KID opened from the
// master key, the packet secured under them and cut into segments, the
// segments' text — with a worker's encoder, beside the encoding alone.
func BenchmarkOTAMessage(b *testing.B) {
	mk := make([]byte, 32)
	rand.Read(mk)
	sealer, err := keywrap.NewSealer("mk-bench", mk, nil)
	if err != nil {
		b.Fatal(err)
	}
	r, err := ident.ParseIMSIRange("001-01")
	if err != nil {
		b.Fatal(err)
	}
	ranges := ident.IMSIRanges{r}
	prof := &ota.Profile{Name: "usim-aes", TAR: ota.TAR{0xb0, 0x00, 0x11}, SPI: 0x1639, KIc: 0x12, KID: 0x12, Format: ota.FormatCompact,
		InvalidateLOCI: true, InvalidatePSLOCI: true, InvalidateEPSLOCI: true}
	if err := prof.Validate(); err != nil {
		b.Fatal(err)
	}
	p := &Party{Name: "MNOA", Vault: NewVault(sealer, FingerprintKey(mk)), Ranges: ranges,
		Profiles: map[string]*Profile{"usim-aes": {Name: "usim-aes", OTA: prof}}}
	const cards = 1024
	type card struct {
		m       *ledger.Message
		c       *ledger.Card
		secrets []ledger.Secret
	}
	cs := make([]card, cards)
	for i := range cs {
		iccid := fmt.Sprintf("89999010000%08d", i)
		var secrets []ledger.Secret
		for _, name := range []string{SecKIc, SecKID} {
			k := make([]byte, 16)
			rand.Read(k)
			blob, err := p.Vault.Seal(secretAAD(iccid, name, 0), k)
			if err != nil {
				b.Fatal(err)
			}
			secrets = append(secrets, ledger.Secret{Name: name, Blob: blob})
		}
		cs[i] = card{
			m:       &ledger.Message{ID: int64(i), ICCID: iccid, Kind: msgUpdate, KVN: 1, Counter: int64(i + 6), TAR: "b00011", ConcatRef: i%255 + 1},
			c:       &ledger.Card{ICCID: iccid, IMSI: fmt.Sprintf("00101%010d", i), NewIMSI: fmt.Sprintf("99999%010d", i), Profile: "usim-aes"},
			secrets: secrets,
		}
	}
	b.Run("render", func(b *testing.B) {
		var w otaWorker
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			c := cs[i%cards]
			i++
			msg, err := p.buildMessageWith(&w, c.m, c.c, c.secrets)
			if err != nil {
				b.Fatal(err)
			}
			w.text = appendSegmentsText(w.text[:0], msg.Segments)
		}
	})
	b.Run("encode", func(b *testing.B) {
		var enc ota.Encoder
		apdus, _, err := prof.UpdateScript(ota.Change{NewIMSI: "999990000000001", NewMNCLen: 2, OldMNCLen: 2})
		if err != nil {
			b.Fatal(err)
		}
		data := ota.SecuredData(nil, ota.FormatCompact, apdus)
		k := ota.Keys{KIc: make([]byte, 16), KID: make([]byte, 16)}
		params := otaParams(p.Profiles["usim-aes"], 1, prof.TAR)
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			i++
			if _, err := enc.Message(params, k, uint64(i), data, byte(i)); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// The associated data that binds a sealed secret to its card, field and
// key index is the same bytes whichever way it is built: ledgers sealed
// before hold blobs bound to it.
func TestSecretAADUnchanged(t *testing.T) {
	want := "89999010000000000012/kic/0"
	if got := string(secretAAD("89999010000000000012", SecKIc, 0)); got != want {
		t.Errorf("secretAAD %q, want %q", got, want)
	}
	buf := []byte("left over")
	if got := string(appendSecretAAD(buf[:0], "8999901", SecKi, 12)); got != "8999901/ki/12" {
		t.Errorf("appendSecretAAD %q", got)
	}
}
