// Package simcard is a simulated UICC for tests and the demo: it receives
// SMS-PP command packets, verifies counter, checksum and ciphering with its
// own key sets as a card does, enforces a minimum security level per TAR,
// runs compact (or expanded) RFM scripts against a small file system
// (ADF.USIM with EF_IMSI, EF_AD, the location files, EF_FPLMN, DF GSM with
// its own EF_IMSI copy), serves a reset applet and a 3b key-index applet,
// and answers with a PoR secured as the command's SPI asks.
//
// Security failures are answered the way a real card (sysmoISIM-SJA2)
// does: an unsecured PoR with the counter zeroed. Its PoR encoder is the
// one of package ota, pinned to real-card PoRs in the tests.
package simcard

import (
	"bytes"
	"errors"
	"fmt"
	"sync"

	"resub/crypto/scp80"
	"resub/formats/ota"
)

// KeySet is one OTA key set (KVN 1..15) and its replay counter.
type KeySet struct {
	KVN     int
	KIc     []byte
	KID     []byte
	KIK     []byte
	Counter uint64 // last counter accepted
}

// Pair is one entry of a 3b card's key list: the subscription key and the
// OTA key set that belong to one index.
type Pair struct {
	Ki     []byte
	KeySet KeySet
}

// MSL is a TAR's minimum security level.
type MSL struct {
	CC       bool // a cryptographic checksum
	Ciphered bool
	Counter  bool // counter checking (higher, or one higher)
}

// Config describes a card.
type Config struct {
	ICCID  string
	IMSI   string
	MNCLen int
	// KeySets are the OTA key sets of a 3a card.
	KeySets []KeySet
	// KeyList, KeyIndex (1-based) and KeyIndexTiming describe a 3b card;
	// the OTA key set in use is the current pair's.
	KeyList        []Pair
	KeyIndex       int
	KeyIndexTiming ota.KeyIndexTiming
	// TARs. USIMTAR defaults to B00011 (RFM with ADF.USIM selected).
	USIMTAR     ota.TAR
	ResetTAR    *ota.TAR
	ResetAPDU   ota.APDU // the command the reset applet takes
	KeyIndexTAR *ota.TAR
	// ISDTAR is the RAM/ISD TAR: the security domain takes GlobalPlatform
	// PUT KEY and DELETE of the OTA key sets there (isd.go).
	ISDTAR *ota.TAR
	// KeyIndexTemplate and KeyIndexOffset: the command that selects an
	// index, with the index octet at the offset. It is taken by the
	// key-index applet and, inside an RFM script, by the RFM applet.
	KeyIndexTemplate ota.APDU
	KeyIndexOffset   int
	// MinSecurity applies to every TAR.
	MinSecurity MSL
	// GSMCopy keeps a separate EF_IMSI in DF GSM.
	GSMCopy bool
	// CounterLowStatus is the status for a replayed counter: 02 by the
	// specification, 06 as the sysmoISIM-SJA2 answers.
	CounterLowStatus ota.Status
	// SelectResponses overrides the SELECT response of files by FID.
	SelectResponses map[uint16][]byte
	// USIMAID is the AID of ADF.USIM for SELECT by DF name (default
	// A0000000871002FFFFFFFF8907090000); a partial AID of 5 octets or
	// more selects it too.
	USIMAID []byte
	// Absent lists EFs of ADF.USIM this card does not have (an older
	// card without EF_EPSLOCI, say): selecting one answers 6A82, so an
	// RFM script stops there after the commands before it ran.
	Absent []uint16
}

// Card is a simulated UICC. Its methods are safe for concurrent use.
type Card struct {
	mu       sync.Mutex
	cfg      Config
	fs       fileSystem
	keySets  map[int]*KeySet
	pairs    []Pair
	index    int
	pending  int // key index waiting for the next reset, 0 = none
	resets   int
	off      bool
	received int
	auth     *KeySet // the key set that secured the message being run
}

// DefaultUSIMAID is the simulated USIM's AID: RID A000000087 (3GPP),
// application code 1002 (USIM).
func DefaultUSIMAID() []byte {
	return []byte{0xa0, 0x00, 0x00, 0x00, 0x87, 0x10, 0x02, 0xff, 0xff, 0xff, 0xff, 0x89, 0x07, 0x09, 0x00, 0x00}
}

// USIMRFMTAR is the default USIM RFM TAR (that of the sysmocom cards).
func USIMRFMTAR() ota.TAR { return ota.TAR{0xb0, 0x00, 0x11} }

// New builds a card from cfg. The key material is copied.
func New(cfg Config) (*Card, error) {
	ef, err := ota.EncodeIMSI(cfg.IMSI)
	if err != nil {
		return nil, err
	}
	if cfg.MNCLen != 2 && cfg.MNCLen != 3 {
		return nil, fmt.Errorf("simcard: MNC length %d", cfg.MNCLen)
	}
	if cfg.USIMTAR == (ota.TAR{}) {
		cfg.USIMTAR = USIMRFMTAR()
	}
	if cfg.CounterLowStatus == 0 {
		cfg.CounterLowStatus = ota.StatusCounterLow
	}
	if len(cfg.USIMAID) == 0 {
		cfg.USIMAID = DefaultUSIMAID()
	}
	c := &Card{cfg: cfg, keySets: map[int]*KeySet{}}
	for _, k := range cfg.KeySets {
		k := cloneKeySet(k)
		c.keySets[k.KVN] = &k
	}
	for _, p := range cfg.KeyList {
		c.pairs = append(c.pairs, Pair{Ki: bytes.Clone(p.Ki), KeySet: cloneKeySet(p.KeySet)})
	}
	if len(c.pairs) > 0 {
		if cfg.KeyIndex < 1 || cfg.KeyIndex > len(c.pairs) {
			return nil, fmt.Errorf("simcard: key index %d of %d", cfg.KeyIndex, len(c.pairs))
		}
		c.index = cfg.KeyIndex
	}
	plmn, err := ota.PLMNFromIMSI(cfg.IMSI, cfg.MNCLen)
	if err != nil {
		return nil, err
	}
	pb, _ := plmn.Encode()
	mf := newDF(nil, 0x3f00)
	newEF(mf, 0x2fe2, make([]byte, 10))
	adf := &node{fid: 0x7fff, parent: mf, children: map[uint16]*node{}}
	newEF(adf, ota.FIDIMSI, bytes.Clone(ef[:]))
	newEF(adf, ota.FIDAD, []byte{0x00, 0x00, 0x00, byte(cfg.MNCLen)})
	newEF(adf, ota.FIDLOCI, append(append([]byte{0x12, 0x34, 0x56, 0x78}, pb[:]...), 0x00, 0x01, 0xff, 0x00))
	newEF(adf, ota.FIDPSLOCI, append(append([]byte{1, 2, 3, 4, 5, 6, 7}, pb[:]...), 0x00, 0x01, 0x01, 0x00))
	newEF(adf, ota.FIDEPSLOCI, append(append(bytes.Repeat([]byte{0x11}, 12), pb[:]...), 0x00, 0x01, 0x00))
	newEF(adf, ota.FIDFPLMN, bytes.Repeat([]byte{0xff}, 12))
	newEF(adf, ota.FIDEHPLMN, append(pb[:], bytes.Repeat([]byte{0xff}, 9)...))
	df5gs := newDF(adf, ota.FIDDF5GS)
	newEF(df5gs, ota.FID5GS3GPPLOCI, append(append(bytes.Repeat([]byte{0x22}, 13), pb[:]...), 0x00, 0x00, 0x01, 0x00))
	gsm := newDF(mf, ota.FIDDFGSM)
	if cfg.GSMCopy {
		newEF(gsm, ota.FIDIMSI, bytes.Clone(ef[:]))
	}
	newEF(gsm, ota.FIDAD, []byte{0x00, 0x00, 0x00, byte(cfg.MNCLen)})
	for _, fid := range cfg.Absent {
		if fid == ota.FIDIMSI {
			return nil, fmt.Errorf("simcard: a USIM without EF_IMSI")
		}
		delete(adf.children, fid)
	}
	c.fs = fileSystem{mf: mf, adf: adf}
	for fid, r := range cfg.SelectResponses {
		for _, n := range []*node{mf, adf, gsm, df5gs} {
			if n.fid == fid {
				n.resp = bytes.Clone(r)
			} else if ch, ok := n.children[fid]; ok {
				ch.resp = bytes.Clone(r)
			}
		}
	}
	return c, nil
}

func cloneKeySet(k KeySet) KeySet {
	k.KIc, k.KID, k.KIK = bytes.Clone(k.KIc), bytes.Clone(k.KID), bytes.Clone(k.KIK)
	return k
}

// SetOff switches the card off (true: it answers nothing) or on.
func (c *Card) SetOff(off bool) {
	c.mu.Lock()
	c.off = off
	c.mu.Unlock()
}

// ICCID returns the card's ICCID.
func (c *Card) ICCID() string { return c.cfg.ICCID }

// IMSI returns the IMSI in ADF.USIM's EF_IMSI ("" if it does not decode).
func (c *Card) IMSI() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	s, _ := ota.DecodeIMSI(c.fs.adf.children[ota.FIDIMSI].data)
	return s
}

// File returns a copy of the EF at path (absolute, or relative to
// ADF.USIM), nil if there is none.
func (c *Card) File(path ota.Path) []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := c.fs.adf
	if len(path) > 0 && path[0] == 0x3f00 {
		n, path = c.fs.mf, path[1:]
	}
	for _, f := range path {
		if f == 0x7fff {
			n = c.fs.adf
			continue
		}
		ch, ok := n.children[f]
		if !ok {
			return nil
		}
		n = ch
	}
	if n.isDF() {
		return nil
	}
	return bytes.Clone(n.data)
}

// KeyIndex returns the 3b key index in use (0 for a 3a card) and the one
// waiting for the next reset (0 for none).
func (c *Card) KeyIndex() (current, pending int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.index, c.pending
}

// Ki returns a copy of the subscription key of the current 3b index.
func (c *Card) Ki() []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.index == 0 {
		return nil
	}
	return bytes.Clone(c.pairs[c.index-1].Ki)
}

// Counter returns the replay counter of the key set kvn in use.
func (c *Card) Counter(kvn int) (uint64, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	k := c.keySet(kvn)
	if k == nil {
		return 0, false
	}
	return k.Counter, true
}

// Resets returns how many UICC resets the reset applet caused.
func (c *Card) Resets() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.resets
}

// Received returns how many messages reached the card while it was on.
func (c *Card) Received() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.received
}

// keySet returns the key set kvn of the card or of the current 3b pair.
func (c *Card) keySet(kvn int) *KeySet {
	if c.index > 0 {
		k := &c.pairs[c.index-1].KeySet
		if k.KVN == kvn {
			return k
		}
		return nil
	}
	return c.keySets[kvn]
}

// Reset performs a UICC reset: a pending key index takes effect.
func (c *Card) Reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.reset()
}

func (c *Card) reset() {
	c.resets++
	if c.pending > 0 {
		c.index, c.pending = c.pending, 0
	}
}

// ErrNoAnswer is returned when the card gives no PoR: it is switched off,
// the SPI asks for none, or the message is not a command packet at all.
var ErrNoAnswer = errors.New("simcard: no answer")

// Receive takes the TP-UD of the SMS-PP messages that carry one command
// packet (all segments of a concatenated one, in any order) and returns
// the TP-UD of the PoR. err is ErrNoAnswer (possibly wrapped) when the
// card answers nothing.
func (c *Card) Receive(segments [][]byte) ([]byte, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.off {
		return nil, ErrNoAnswer
	}
	c.received++
	pkt, err := ota.Reassemble(segments)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNoAnswer, err)
	}
	h, err := ota.ParseCommandHeader(pkt)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNoAnswer, err)
	}
	wantPoR := h.SPI.PoR()
	refuse := func(st ota.Status) ([]byte, error) {
		if wantPoR == ota.PoRNone {
			return nil, fmt.Errorf("%w: status %s and no PoR requested", ErrNoAnswer, st)
		}
		return ota.AppendUnsecuredResponse(nil, h.TAR, 0, st), nil
	}
	app := c.app(h.TAR)
	if app == appNone {
		return refuse(ota.StatusTARUnknown)
	}
	msl := c.cfg.MinSecurity
	if (msl.CC && h.SPI.Checksum() != scp80.KindCC) || (msl.Ciphered && !h.SPI.Ciphered()) ||
		(msl.Counter && h.SPI.Counter() != ota.CounterHigher && h.SPI.Counter() != ota.CounterNext) {
		return refuse(ota.StatusInsufficientSecurity)
	}
	kicSet, kidSet := c.keySet(h.KIc.KeyVersion()), c.keySet(h.KID.KeyVersion())
	var keys ota.Keys
	if kicSet != nil {
		keys.KIc = kicSet.KIc
	}
	if kidSet != nil {
		keys.KID = kidSet.KID
	}
	codec, err := ota.NewCodec(h.Params, keys)
	if err != nil { // no such key set, or an algorithm the card lacks
		return refuse(ota.StatusUnidentifiedSecurity)
	}
	cmd, err := codec.DecodeCommand(pkt)
	switch {
	case errors.Is(err, ota.ErrChecksum):
		return refuse(ota.StatusChecksumFailed)
	case errors.Is(err, ota.ErrCipher):
		return refuse(ota.StatusCipheringError)
	case err != nil:
		return refuse(ota.StatusUnidentifiedSecurity)
	}
	// The counter belongs to the key set that authenticates the packet.
	if m := h.SPI.Counter(); m == ota.CounterHigher || m == ota.CounterNext {
		if kidSet == nil {
			kidSet = kicSet
		}
		if kidSet == nil {
			return refuse(ota.StatusUnidentifiedSecurity)
		}
		switch {
		case kidSet.Counter == ota.MaxCounter:
			return refuse(ota.StatusCounterBlocked)
		case cmd.Counter <= kidSet.Counter:
			return refuse(c.cfg.CounterLowStatus)
		case m == ota.CounterNext && cmd.Counter != kidSet.Counter+1:
			return refuse(ota.StatusCounterHigh)
		}
		kidSet.Counter = cmd.Counter
	}
	c.auth = kidSet
	if c.auth == nil {
		c.auth = kicSet
	}
	result := c.run(app, h, cmd.Data)
	c.auth = nil
	if wantPoR != ota.PoRRequired && (wantPoR != ota.PoROnError || result.ok) {
		return nil, fmt.Errorf("%w: SPI %s", ErrNoAnswer, h.SPI)
	}
	return codec.EncodeResponse(nil, cmd.Counter, ota.StatusOK, result.data)
}

type appKind uint8

const (
	appNone appKind = iota
	appRFM
	appReset
	appKeyIndex
	appISD
)

func (c *Card) app(tar ota.TAR) appKind {
	switch {
	case tar == c.cfg.USIMTAR:
		return appRFM
	case c.cfg.ResetTAR != nil && tar == *c.cfg.ResetTAR:
		return appReset
	case c.cfg.KeyIndexTAR != nil && tar == *c.cfg.KeyIndexTAR:
		return appKeyIndex
	case c.cfg.ISDTAR != nil && tar == *c.cfg.ISDTAR:
		return appISD
	}
	return appNone
}

type runResult struct {
	data []byte // the additional response data of the PoR
	ok   bool   // every command succeeded
}
