package ota

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"

	"resub/crypto/scp80"
)

// APDU is one command APDU of an RFM script (case 1–4 short, as the card
// takes it: CLA INS P1 P2 [Lc data] [Le]).
type APDU []byte

// File identifiers used by the IMSI change (TS 102 221, TS 31.102).
const (
	FIDMF          = 0x3f00
	FIDCurrentADF  = 0x7fff
	FIDDFGSM       = 0x7f20
	FIDIMSI        = 0x6f07
	FIDAD          = 0x6fad
	FIDLOCI        = 0x6f7e
	FIDPSLOCI      = 0x6f73
	FIDEPSLOCI     = 0x6fe3
	FIDFPLMN       = 0x6f7b
	FIDEHPLMN      = 0x6fd9
	FIDDF5GS       = 0x5fc0
	FID5GS3GPPLOCI = 0x4f01
)

// Path is a sequence of file identifiers selected one after the other. A
// path starting with 3F00 is absolute; any other path is relative to the
// directory the TAR starts in (ADF.USIM for a USIM RFM TAR).
type Path []uint16

func (p Path) absolute() bool { return len(p) > 0 && p[0] == FIDMF }

func (p Path) String() string {
	var b strings.Builder
	for i, f := range p {
		if i > 0 {
			b.WriteByte('/')
		}
		fmt.Fprintf(&b, "%04x", f)
	}
	return b.String()
}

// ParsePath reads "3F00/7F20/6F07" (hex FIDs separated by slashes).
func ParsePath(s string) (Path, error) {
	var p Path
	for f := range strings.SplitSeq(s, "/") {
		b, err := hex.DecodeString(f)
		if err != nil || len(b) != 2 {
			return nil, fmt.Errorf("ota: path %q: FID %q is not 4 hex digits", s, f)
		}
		v := uint16(b[0])<<8 | uint16(b[1])
		p = append(p, v)
	}
	return p, nil
}

// FileUpdate writes Data at Offset of the transparent EF at Path.
type FileUpdate struct {
	Path   Path
	Offset int
	Data   []byte
}

// CommandFormat is the remote command format of TS 102 226 §5.
type CommandFormat uint8

// The command formats.
const (
	FormatCompact  CommandFormat = iota // concatenated C-APDUs
	FormatExpanded                      // BER-TLV command scripting template
)

// KeyIndexTiming says when a 3b card starts to use a newly selected index.
type KeyIndexTiming uint8

// The timings.
const (
	KeyIndexAtReset     KeyIndexTiming = iota // at the next UICC reset
	KeyIndexImmediately                       // as soon as the command runs
)

// KeyIndexCommand is the profile's template for selecting the key index of
// a 3b card: Template with the absolute target index written as one octet
// at IndexOffset. There is no "next index" form.
type KeyIndexCommand struct {
	TAR         TAR // the applet that takes the command when it is a message of its own
	Template    APDU
	IndexOffset int
	// WithUpdate appends the command to the IMSI update script (before
	// its final READ BINARY) instead of sending it as its own message.
	WithUpdate bool
	Timing     KeyIndexTiming
}

// Profile is what the script builder needs to know about a card type.
type Profile struct {
	Name string
	TAR  TAR // RFM TAR of the IMSI update (USIM RFM: ADF.USIM pre-selected)
	SPI  SPI
	KIc  KIc // algorithm and key version (high nibble)
	KID  KID
	// CLA is 0x00 for UICC commands (SELECT P2=0C) or 0xA0 for a 2G SIM
	// (GSM 11.11 SELECT).
	CLA    byte
	Format CommandFormat
	// IMSIPath is the path of EF_IMSI from the TAR's start directory;
	// default 6F07.
	IMSIPath Path
	// GSMIMSIPath, when set, is a separate EF_IMSI copy (typically
	// 3F00/7F20/6F07) that is updated too.
	GSMIMSIPath Path
	// ADFPath re-selects the USIM application after an absolute path;
	// default 3F00/7FFF (Addressing ADF and ADFOnly).
	ADFPath Path
	// Addressing is how the script reaches ADF.USIM's files.
	Addressing Addressing
	// USIMAID is the USIM's AID (or its first 5 or more octets) for
	// AddressAID.
	USIMAID []byte
	// ADPath is EF_AD (default 6FAD) and ADMNCOffset the offset of its
	// MNC-length octet (default 3). The octet is written only when the
	// MNC length changes.
	ADPath      Path
	ADMNCOffset int
	// Location files invalidated after the change.
	InvalidateLOCI, InvalidatePSLOCI, InvalidateEPSLOCI, Invalidate5GSLOCI bool
	// Extra are the profile's further updates for the new PLMN.
	Extra []FileUpdate
	// Reset: the applet TAR and APDU that make the card issue REFRESH
	// with UICC reset, sent as a message of its own.
	ResetTAR  TAR
	ResetAPDU APDU
	// KeyIndex is the 3b key-index command; nil for 3a cards.
	KeyIndex *KeyIndexCommand
	// TestOnly admits insecure SPIs (demo and tests only).
	TestOnly bool
}

// Addressing says how an RFM script reaches the files of ADF.USIM; card
// families differ in where the RFM TAR starts and what it may select.
type Addressing uint8

// The addressings.
const (
	// AddressADF (the default): the TAR starts in ADF.USIM; its files by
	// FID, the shared file system (DF GSM) by absolute path, and back to
	// the ADF by ADFPath.
	AddressADF Addressing = iota
	// AddressADFOnly: an ADF RFM application that reaches ADF.USIM and
	// nothing else: no absolute path.
	AddressADFOnly
	// Address7FFF: the TAR starts at the MF; ADF.USIM is entered by 7FFF,
	// the current application.
	Address7FFF
	// AddressAID: ADF.USIM is selected by its AID (SELECT by DF name).
	AddressAID
	// AddressPath: every file by absolute path from the MF, ADF.USIM as
	// 3F00/7FFF.
	AddressPath
)

var addressingNames = [...]string{"adf", "adf-only", "7fff", "aid", "path"}

func (a Addressing) String() string {
	if int(a) < len(addressingNames) {
		return addressingNames[a]
	}
	return fmt.Sprintf("addressing-%d", uint8(a))
}

// ParseAddressing reads an addressing's name (empty is AddressADF).
func ParseAddressing(s string) (Addressing, error) {
	if s == "" {
		return AddressADF, nil
	}
	for i, n := range addressingNames {
		if n == s {
			return Addressing(i), nil
		}
	}
	return 0, fmt.Errorf("addressing %q: one of %s", s, strings.Join(addressingNames[:], ", "))
}

// builder starts a script builder for the profile's addressing.
// The script is built into sb, emptied first.
func (p *Profile) builder(sb *ScriptBuffer) scriptBuilder {
	sb.reset()
	b := scriptBuilder{cla: p.CLA, sb: sb, adf: orPath(p.ADFPath, pathDefaultADF), anchored: true}
	switch p.Addressing {
	case Address7FFF:
		b.adf, b.anchored = pathCurrentADF, false
	case AddressPath:
		b.adf, b.anchored, b.full = pathDefaultADF, false, true
	case AddressAID:
		b.aid, b.anchored = p.USIMAID, false
	}
	return b
}

// ErrProfile is wrapped by every problem Validate reports.
var ErrProfile = errors.New("ota: card profile")

// Validate reports every problem of the profile at once. A production
// profile must ask for a cryptographic checksum, counter checking (higher
// or one higher) and a PoR; TestOnly lifts those three rules.
func (p *Profile) Validate() error {
	var errs []error
	bad := func(format string, a ...any) {
		errs = append(errs, fmt.Errorf("%w %q: %s", ErrProfile, p.Name, fmt.Sprintf(format, a...)))
	}
	if r := p.SPI.Reserved(); r != 0 {
		bad("SPI %s has reserved bits set", p.SPI)
	}
	if !p.TestOnly {
		if p.SPI.Checksum() != scp80.KindCC {
			bad("SPI %s: the command carries no cryptographic checksum", p.SPI)
		}
		if m := p.SPI.Counter(); m != CounterHigher && m != CounterNext {
			bad("SPI %s: the card does not check the counter (%s)", p.SPI, m)
		}
		if p.SPI.PoR() != PoRRequired {
			bad("SPI %s: no PoR required (%s)", p.SPI, p.SPI.PoR())
		}
	}
	if p.SPI.Ciphered() || p.SPI.PoRCiphered() {
		if _, err := p.KIc.Algorithm(); err != nil {
			bad("%v", err)
		}
		if p.KIc.KeyVersion() == 0 {
			bad("KIc %s has key version 0", p.KIc)
		}
	}
	for _, kind := range []scp80.ChecksumKind{p.SPI.Checksum(), p.SPI.PoRChecksum()} {
		if kind == scp80.KindNone {
			continue
		}
		if _, err := p.KID.Algorithm(kind); err != nil {
			bad("%v", err)
		} else if kind == scp80.KindCC && p.KID.KeyVersion() == 0 {
			bad("KID %s has key version 0", p.KID)
		}
	}
	if p.CLA != 0x00 && p.CLA != 0xa0 {
		bad("CLA %02x is neither 00 (UICC) nor a0 (SIM)", p.CLA)
	}
	if p.Format > FormatExpanded {
		bad("unknown command format %d", p.Format)
	}
	if p.ADMNCOffset < 0 || p.ADMNCOffset > 0x7fff {
		bad("EF_AD offset %d", p.ADMNCOffset)
	}
	for i, u := range p.Extra {
		if len(u.Path) == 0 || u.Offset < 0 || u.Offset > 0x7fff || len(u.Data) == 0 || len(u.Data) > 255 {
			bad("extra update %d: path %s offset %d with %d octets", i+1, u.Path, u.Offset, len(u.Data))
		}
	}
	if len(p.ResetAPDU) != 0 && len(p.ResetAPDU) < 4 {
		bad("reset APDU of %d octets", len(p.ResetAPDU))
	}
	if k := p.KeyIndex; k != nil {
		if len(k.Template) < 4 || k.IndexOffset < 4 || k.IndexOffset >= len(k.Template) {
			bad("key-index template of %d octets with the index at %d", len(k.Template), k.IndexOffset)
		}
	}
	switch p.Addressing {
	case AddressADF, Address7FFF, AddressPath:
	case AddressADFOnly:
		// Only ADF.USIM's files: every path must be relative to it.
		for _, f := range []struct {
			what string
			path Path
		}{{"EF_IMSI", p.IMSIPath}, {"DF GSM's EF_IMSI (gsm_copy)", p.GSMIMSIPath}, {"EF_AD", p.ADPath}} {
			if f.path.absolute() {
				bad("addressing %s has no route to %s at %s", p.Addressing, f.what, f.path)
			}
		}
		for i, u := range p.Extra {
			if u.Path.absolute() {
				bad("addressing %s has no route to extra update %d at %s", p.Addressing, i+1, u.Path)
			}
		}
	case AddressAID:
		if len(p.USIMAID) < 5 || len(p.USIMAID) > 16 {
			bad("addressing aid needs the USIM's AID (5 to 16 octets), have %d", len(p.USIMAID))
		}
		if p.CLA == 0xa0 {
			bad("addressing aid: a 2G SIM (CLA a0) has no applications")
		}
	default:
		bad("unknown addressing %d", p.Addressing)
	}
	if p.Addressing != AddressADF && p.Addressing != AddressADFOnly && len(p.ADFPath) > 0 {
		bad("ADF path %s is for addressing adf; %s reaches the ADF its own way", p.ADFPath, p.Addressing)
	}
	return errors.Join(errs...)
}

// Params returns the security parameters for a message to tar.
func (p *Profile) Params(tar TAR) Params {
	return Params{SPI: p.SPI, KIc: p.KIc, KID: p.KID, TAR: tar}
}

// Change is one IMSI change.
type Change struct {
	NewIMSI   string
	NewMNCLen int // 2 or 3
	// OldMNCLen is the MNC length the card holds now (from the
	// inventory); 0 when unknown, which writes EF_AD's octet anyway.
	OldMNCLen int
	// KeyIndex is the absolute 3b key index to select when the profile
	// appends the key-index command to the update; 0 for none.
	KeyIndex int
}

func orPath(p, def Path) Path {
	if len(p) == 0 {
		return def
	}
	return p
}

// ScriptBuffer holds a script built into it: its APDUs and the octets
// they share. Reuse it for the next card's script (one per worker): once
// it has grown to a script's size, building a script allocates nothing.
// The APDUs it returns are valid until it is used again.
type ScriptBuffer struct {
	octets  []byte
	apdus   []APDU
	scratch [32]byte
}

func (sb *ScriptBuffer) reset() {
	sb.octets, sb.apdus = sb.octets[:0], sb.apdus[:0]
}

// scriptBuilder emits SELECTs only when the target differs from what is
// selected. A relative path of one FID keeps the builder in the TAR's start
// directory ("anchored"); after an absolute path or a path into a sub-DF,
// a relative path is preceded by the ADF path (SELECT by FID cannot reach
// an EF of the parent directory).
type scriptBuilder struct {
	cla byte
	sb  *ScriptBuffer
	// The path last selected, and whether it was relative to the start
	// directory; curSet is false when nothing is known to be selected.
	cur      Path
	curRel   bool
	curSet   bool
	adf      Path
	aid      []byte // when set, ADF.USIM is selected by this AID
	anchored bool
	full     bool // every path from the MF: never stay anchored
}

// Paths the builder selects by default (package-level, so that building a
// script does not allocate them).
var (
	pathDefaultADF = Path{FIDMF, FIDCurrentADF}
	pathCurrentADF = Path{FIDCurrentADF}
	pathIMSI       = Path{FIDIMSI}
	pathAD         = Path{FIDAD}
	pathLOCI       = Path{FIDLOCI}
	pathPSLOCI     = Path{FIDPSLOCI}
	pathEPSLOCI    = Path{FIDEPSLOCI}
	path5GSLOCI    = Path{FIDDF5GS, FID5GS3GPPLOCI}
)

func (b *scriptBuilder) selectPath(p Path) {
	rel := !p.absolute()
	if b.curSet && b.curRel == rel && slices.Equal(b.cur, p) {
		return
	}
	if rel && !b.anchored {
		if len(b.aid) > 0 {
			// SELECT by DF name, first or only occurrence, no data back.
			b.apdu([]byte{b.cla, 0xa4, 0x04, 0x0c, byte(len(b.aid))}, b.aid)
		} else {
			for _, f := range b.adf {
				b.selectFID(f)
			}
		}
	}
	for _, f := range p {
		b.selectFID(f)
	}
	b.cur, b.curRel, b.curSet = p, rel, true
	b.anchored = rel && len(p) == 1 && !b.full
}

// apdu appends an APDU of the given octets and data to the buffer.
func (b *scriptBuilder) apdu(head []byte, data []byte) {
	sb := b.sb
	s := len(sb.octets)
	sb.octets = append(sb.octets, head...)
	sb.octets = append(sb.octets, data...)
	sb.apdus = append(sb.apdus, APDU(sb.octets[s:len(sb.octets):len(sb.octets)]))
}

func (b *scriptBuilder) selectFID(f uint16) {
	if b.cla == 0xa0 {
		b.apdu([]byte{0xa0, 0xa4, 0x00, 0x00, 0x02, byte(f >> 8), byte(f)}, nil)
		return
	}
	b.apdu([]byte{b.cla, 0xa4, 0x00, 0x0c, 0x02, byte(f >> 8), byte(f)}, nil)
}

func (b *scriptBuilder) update(p Path, off int, data []byte) {
	b.selectPath(p)
	b.apdu([]byte{b.cla, 0xd6, byte(off >> 8), byte(off), byte(len(data))}, data)
}

func (b *scriptBuilder) read(p Path, n int) {
	b.selectPath(p)
	b.apdu([]byte{b.cla, 0xb0, 0x00, 0x00, byte(n)}, nil)
}

// Location file contents that make the ME attach afresh: temporary
// identities FF, area code "deleted" (FFFE), update status "not updated".
func appendInvalidLOCI(dst []byte, plmn [3]byte) []byte {
	dst = append(dst, 0xff, 0xff, 0xff, 0xff)
	dst = append(dst, plmn[:]...)
	return append(dst, 0xff, 0xfe, 0xff, 0x01)
}

func appendInvalidPSLOCI(dst []byte, plmn [3]byte) []byte {
	dst = append(dst, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff)
	dst = append(dst, plmn[:]...)
	return append(dst, 0xff, 0xfe, 0xff, 0x01)
}

func appendInvalidEPSLOCI(dst []byte, plmn [3]byte) []byte {
	for range 12 {
		dst = append(dst, 0xff)
	}
	dst = append(dst, plmn[:]...)
	return append(dst, 0xff, 0xfe, 0x01)
}

func appendInvalid5GSLOCI(dst []byte, plmn [3]byte) []byte {
	for range 13 {
		dst = append(dst, 0xff)
	}
	dst = append(dst, plmn[:]...)
	return append(dst, 0xff, 0xff, 0xfe, 0x01)
}

// Script is an IMSI-change script with what judging its PoR needs.
type Script struct {
	APDUs []APDU
	// EFIMSI is what the final READ BINARY must return.
	EFIMSI [EFIMSILen]byte
	// IMSIWrite is the position (1-based) of the UPDATE BINARY of
	// EF_IMSI: a PoR showing it executed means the card has changed.
	IMSIWrite int
}

// UpdateScript builds the IMSI-change script (see Update) and returns its
// APDUs and the EF_IMSI the read-back must show.
func (p *Profile) UpdateScript(c Change) ([]APDU, [EFIMSILen]byte, error) {
	sc, err := p.Update(c)
	return sc.APDUs, sc.EFIMSI, err
}

// Update builds the IMSI-change script: EF_IMSI (and the DF GSM
// copy), EF_AD's MNC-length octet when the length changes, the location
// files, the profile's extra updates, the key-index command when the
// profile appends it, and a final READ BINARY of EF_IMSI so that the PoR
// carries the new contents.
func (p *Profile) Update(c Change) (Script, error) {
	return p.UpdateInto(new(ScriptBuffer), c)
}

// UpdateScriptInto is UpdateScript built into sb: the APDUs share sb's
// octets and are valid until sb is used again.
func (p *Profile) UpdateScriptInto(sb *ScriptBuffer, c Change) ([]APDU, [EFIMSILen]byte, error) {
	sc, err := p.UpdateInto(sb, c)
	return sc.APDUs, sc.EFIMSI, err
}

// UpdateInto is Update built into sb: the script's APDUs share sb's
// octets and are valid until sb is used again. Once sb has grown to a
// script's size it allocates nothing (unless the profile appends a
// key-index command).
func (p *Profile) UpdateInto(sb *ScriptBuffer, c Change) (Script, error) {
	var sc Script
	ef, err := EncodeIMSI(c.NewIMSI)
	sc.EFIMSI = ef
	if err != nil {
		return sc, err
	}
	plmn, err := PLMNFromIMSI(c.NewIMSI, c.NewMNCLen)
	if err != nil {
		return sc, err
	}
	pb, err := plmn.Encode()
	if err != nil {
		return sc, err
	}
	b := p.builder(sb)
	imsiPath := orPath(p.IMSIPath, pathIMSI)
	b.update(imsiPath, 0, ef[:])
	sc.IMSIWrite = len(sb.apdus)
	if c.OldMNCLen != c.NewMNCLen {
		off := p.ADMNCOffset
		if off == 0 {
			off = 3
		}
		sb.scratch[0] = byte(c.NewMNCLen)
		b.update(orPath(p.ADPath, pathAD), off, sb.scratch[:1])
	}
	if p.InvalidateLOCI {
		b.update(pathLOCI, 0, appendInvalidLOCI(sb.scratch[:0], pb))
	}
	if p.InvalidatePSLOCI {
		b.update(pathPSLOCI, 0, appendInvalidPSLOCI(sb.scratch[:0], pb))
	}
	if p.InvalidateEPSLOCI {
		b.update(pathEPSLOCI, 0, appendInvalidEPSLOCI(sb.scratch[:0], pb))
	}
	if p.Invalidate5GSLOCI {
		b.update(path5GSLOCI, 0, appendInvalid5GSLOCI(sb.scratch[:0], pb))
	}
	for _, u := range p.Extra {
		b.update(u.Path, u.Offset, u.Data)
	}
	if len(p.GSMIMSIPath) > 0 {
		b.update(p.GSMIMSIPath, 0, ef[:])
	}
	if k := p.KeyIndex; k != nil && k.WithUpdate && c.KeyIndex > 0 {
		a, err := k.Command(c.KeyIndex)
		if err != nil {
			return sc, err
		}
		sb.apdus = append(sb.apdus, a)
		b.curSet = false // the command may change the current EF
	}
	b.read(imsiPath, EFIMSILen)
	sc.APDUs = sb.apdus
	return sc, nil
}

// ReadIMSIScript selects EF_IMSI and reads it: a probe of the IMSI a card
// holds, whose PoR CheckUpdate judges like an update's (Commands = 2 or
// more, EFIMSI = the contents expected). The READ BINARY alone would fail:
// an RFM session starts with no EF selected.
func (p *Profile) ReadIMSIScript() []APDU {
	b := p.builder(new(ScriptBuffer))
	b.read(orPath(p.IMSIPath, pathIMSI), EFIMSILen)
	return b.sb.apdus
}

// Command fills the template with the absolute key index.
func (k *KeyIndexCommand) Command(index int) (APDU, error) {
	if index < 1 || index > 255 {
		return nil, fmt.Errorf("ota: key index %d out of 1..255", index)
	}
	if k.IndexOffset < 4 || k.IndexOffset >= len(k.Template) {
		return nil, fmt.Errorf("ota: key-index template of %d octets with the index at %d", len(k.Template), k.IndexOffset)
	}
	a := bytes.Clone(k.Template)
	a[k.IndexOffset] = byte(index)
	return a, nil
}

// ResetScript is the reset step: the profile's APDU for its reset applet.
func (p *Profile) ResetScript() ([]APDU, error) {
	if len(p.ResetAPDU) < 4 {
		return nil, fmt.Errorf("%w %q: no reset APDU", ErrProfile, p.Name)
	}
	return []APDU{bytes.Clone(p.ResetAPDU)}, nil
}

// SecuredData joins the APDUs in the given format.
func SecuredData(dst []byte, f CommandFormat, apdus []APDU) []byte {
	if f == FormatExpanded {
		return AppendExpandedCommand(dst, apdus)
	}
	for _, a := range apdus {
		dst = append(dst, a...)
	}
	return dst
}

// Message is a secured command packet and the TP-UD of its SMS.
type Message struct {
	Packet   []byte
	Segments [][]byte
}

// BuildMessage secures apdus under p and keys with counter and cuts the
// packet into SMS-PP segments with concatenation reference ref.
func BuildMessage(p Params, keys Keys, f CommandFormat, counter uint64, apdus []APDU, ref byte) (Message, error) {
	c, err := NewCodec(p, keys)
	if err != nil {
		return Message{}, err
	}
	return c.BuildMessage(f, counter, apdus, ref)
}

// BuildMessage is BuildMessage with the codec's parameters and keys.
func (c *Codec) BuildMessage(f CommandFormat, counter uint64, apdus []APDU, ref byte) (Message, error) {
	data := SecuredData(nil, f, apdus)
	pkt, err := c.EncodeCommand(nil, counter, data)
	if err != nil {
		return Message{}, err
	}
	segs, err := Segment(pkt, ref)
	if err != nil {
		return Message{}, err
	}
	return Message{Packet: pkt, Segments: segs}, nil
}
