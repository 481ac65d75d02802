// Package fleet makes synthetic, clearly test-only fleets of cards for the
// demo, the tests and the benchmark: valid ICCIDs (E.118 with Luhn digit),
// IMSIs in the test PLMNs, MSISDNs, keys derived from a seed, the simulated
// UICCs that hold the same keys, and the files the parties exchange about
// them. Nothing here is used by a production job.
package fleet

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"iter"
	"slices"
	"strconv"

	"resub/formats/ident"
	"resub/formats/ota"
	"resub/formats/ota/simcard"
)

// Options describe a fleet.
type Options struct {
	N int
	// ICCIDBody is the issuer prefix; cards number from there (the Luhn
	// digit is appended). Default 8999901 (test issuer).
	ICCIDBody string
	// IMSIBase is the first card's IMSI (15 digits); cards count up.
	IMSIBase string
	MNCLen   int
	// MSISDNBase is the first card's MSISDN; cards count up.
	MSISDNBase string
	// KVN is the OTA key version of the key set (default 1); OTAAlg
	// "aes" (16-byte KIc/KID) or "3des" (2-key, 16 bytes).
	KVN    int
	OTAAlg string
	// Counter is the last counter the card accepted, as the files say;
	// a card's own Pairs[i].KeySet.Counter may be set apart before
	// BuildSIMs (a card out of step with the inventory).
	Counter uint64
	// ListLength > 0 makes 3b cards with that many key pairs; they start
	// at index 1.
	ListLength int
	// Seed varies the keys.
	Seed string
	// Profile gives the simulated cards their TARs and commands.
	Profile *ota.Profile
	// KeyIndexAtReset: a 3b card switches index at its next reset.
	KeyIndexAtReset bool
}

// Card is one synthetic card and its simulated UICC.
type Card struct {
	ICCID, IMSI, MSISDN string
	// Pairs[0] is index 1 (a 3a card has one pair).
	Pairs []simcard.Pair
	OPc   []byte
	KVN   int
	SIM   *simcard.Card
	// Absent are EFs of ADF.USIM this card's SIM lacks (BuildSIMs).
	Absent []uint16
}

// Ki is the subscription key of index i (1-based).
func (c *Card) Ki(i int) []byte { return c.Pairs[i-1].Ki }

// Keys is the OTA key set of index i (1-based).
func (c *Card) Keys(i int) simcard.KeySet { return c.Pairs[i-1].KeySet }

// Fleet is a set of cards.
type Fleet struct {
	Opts  Options
	Cards []*Card

	imsiBase, msisdnBase uint64
}

// New makes a fleet with every card in memory (Cards).
func New(o Options) (*Fleet, error) {
	f, err := Plan(o)
	if err != nil {
		return nil, err
	}
	f.Cards = make([]*Card, 0, f.Opts.N)
	for i := 0; i < f.Opts.N; i++ {
		f.Cards = append(f.Cards, f.Card(i))
	}
	return f, nil
}

// Plan makes a fleet whose cards are made on demand by Card and All, so
// that a million cards can be written to files without holding them
// (Cards stays empty).
func Plan(o Options) (*Fleet, error) {
	if o.ICCIDBody == "" {
		o.ICCIDBody = "8999901"
	}
	if o.IMSIBase == "" {
		o.IMSIBase = "001010000000000"
	}
	if o.MNCLen == 0 {
		o.MNCLen = 2
	}
	if o.MSISDNBase == "" {
		o.MSISDNBase = "999100000000"
	}
	if o.KVN == 0 {
		o.KVN = 1
	}
	if o.OTAAlg == "" {
		o.OTAAlg = "aes"
	}
	imsiBase, err := strconv.ParseUint(o.IMSIBase, 10, 64)
	if err != nil {
		return nil, fmt.Errorf("fleet: IMSI base: %w", err)
	}
	msisdnBase, err := strconv.ParseUint(o.MSISDNBase, 10, 64)
	if err != nil {
		return nil, fmt.Errorf("fleet: MSISDN base: %w", err)
	}
	if len(o.ICCIDBody) >= iccidBodyLen {
		return nil, fmt.Errorf("fleet: ICCID issuer prefix %q too long", o.ICCIDBody)
	}
	if _, err := ident.LuhnDigit(o.ICCIDBody); err != nil {
		return nil, fmt.Errorf("fleet: ICCID issuer prefix: %w", err)
	}
	return &Fleet{Opts: o, imsiBase: imsiBase, msisdnBase: msisdnBase}, nil
}

// iccidBodyLen is the ICCID without its Luhn digit.
const iccidBodyLen = 18

// Card makes card i (0-based) of the fleet, the same each time.
func (f *Fleet) Card(i int) *Card {
	o := f.Opts
	body := fmt.Sprintf("%s%0*d", o.ICCIDBody, iccidBodyLen-len(o.ICCIDBody), i+1)
	d, _ := ident.LuhnDigit(body) // the prefix was checked by Plan; the rest are digits
	c := &Card{
		ICCID:  body + string(rune(d)),
		IMSI:   fmt.Sprintf("%0*d", len(o.IMSIBase), f.imsiBase+uint64(i)),
		MSISDN: strconv.FormatUint(f.msisdnBase+uint64(i), 10),
		KVN:    o.KVN,
		OPc:    derive(o.Seed, "opc", i, 0, 16),
	}
	pairs := 1
	if o.ListLength > 0 {
		pairs = o.ListLength
	}
	for j := 1; j <= pairs; j++ {
		c.Pairs = append(c.Pairs, simcard.Pair{
			Ki: derive(o.Seed, "ki", i, j, 16),
			KeySet: simcard.KeySet{KVN: o.KVN, KIc: derive(o.Seed, "kic", i, j, 16), KID: derive(o.Seed, "kid", i, j, 16),
				KIK: derive(o.Seed, "kik", i, j, 16), Counter: o.Counter},
		})
	}
	return c
}

// ByMSISDN makes the card of an MSISDN (as Card does), or nil when no
// card of the fleet has it.
func (f *Fleet) ByMSISDN(msisdn string) *Card {
	n, err := strconv.ParseUint(msisdn, 10, 64)
	if err != nil || n < f.msisdnBase || n-f.msisdnBase >= uint64(f.Opts.N) {
		return nil
	}
	return f.Card(int(n - f.msisdnBase))
}

// All yields the fleet's cards: those in Cards when it holds any, else
// Opts.N cards made one at a time (memory stays flat in N).
func (f *Fleet) All() iter.Seq[*Card] {
	if len(f.Cards) > 0 {
		return slices.Values(f.Cards)
	}
	return func(yield func(*Card) bool) {
		for i := 0; i < f.Opts.N; i++ {
			if !yield(f.Card(i)) {
				return
			}
		}
	}
}

// BuildSIMs makes the simulated UICC of every card. It is separate from
// New because a million simulated cards are not needed to write files.
func (f *Fleet) BuildSIMs() error {
	for _, c := range f.Cards {
		if err := f.buildSIM(c); err != nil {
			return err
		}
	}
	return nil
}

// BuildSIM makes the simulated UICC of one card (of a planned fleet).
func (f *Fleet) BuildSIM(c *Card) error { return f.buildSIM(c) }

func (f *Fleet) buildSIM(c *Card) error {
	o := f.Opts
	cfg := simcard.Config{ICCID: c.ICCID, IMSI: c.IMSI, MNCLen: o.MNCLen,
		MinSecurity: simcard.MSL{CC: true, Ciphered: true, Counter: true}, Absent: c.Absent}
	if p := o.Profile; p != nil {
		cfg.USIMTAR = p.TAR
		if p.ResetAPDU != nil {
			t := p.ResetTAR
			cfg.ResetTAR = &t
			cfg.ResetAPDU = p.ResetAPDU
		}
		cfg.GSMCopy = p.GSMIMSIPath != nil
		if k := p.KeyIndex; k != nil {
			t := k.TAR
			cfg.KeyIndexTAR = &t
			cfg.KeyIndexTemplate = k.Template
			cfg.KeyIndexOffset = k.IndexOffset
			cfg.KeyIndexTiming = k.Timing
		}
	}
	if o.ListLength > 0 {
		cfg.KeyList = c.Pairs
		cfg.KeyIndex = 1
	} else {
		cfg.KeySets = []simcard.KeySet{c.Pairs[0].KeySet}
	}
	sim, err := simcard.New(cfg)
	if err != nil {
		return fmt.Errorf("fleet: card %s: %w", c.ICCID, err)
	}
	c.SIM = sim
	return nil
}

// derive makes test key material from the seed: SHA-256 of the label,
// card and index, cut to n bytes. Keys are clearly synthetic.
func derive(seed, label string, card, index, n int) []byte {
	h := sha256.New()
	h.Write([]byte("resub test-only fleet key|" + seed + "|" + label + "|"))
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], uint64(card))
	binary.BigEndian.PutUint64(b[8:], uint64(index))
	h.Write(b[:])
	return h.Sum(nil)[:n]
}
