package ota

import (
	"encoding/hex"
	"errors"
	"strings"
	"testing"
)

func hexAPDUs(apdus []APDU) string {
	var s []string
	for _, a := range apdus {
		s = append(s, hex.EncodeToString(a))
	}
	return strings.Join(s, " ")
}

func testProfile() Profile {
	return Profile{
		Name: "usim-3des", TAR: TAR{0xb0, 0x00, 0x11}, SPI: 0x1639, KIc: 0x15, KID: 0x15, CLA: 0x00,
		InvalidateLOCI: true, InvalidatePSLOCI: true, InvalidateEPSLOCI: true,
		ResetTAR: TAR{0xb0, 0xff, 0x01}, ResetAPDU: APDU{0x80, 0xc2, 0x04, 0x00},
	}
}

func TestUpdateScript(t *testing.T) {
	p := testProfile()
	apdus, ef, err := p.UpdateScript(Change{NewIMSI: "262420123456789", NewMNCLen: 2, OldMNCLen: 2})
	if err != nil {
		t.Fatal(err)
	}
	want := "00a4000c026f07 00d6000009082926241032547698 " +
		"00a4000c026f7e 00d600000bffffffff62f224fffeff01 " +
		"00a4000c026f73 00d600000effffffffffffff62f224fffeff01 " +
		"00a4000c026fe3 00d6000012ffffffffffffffffffffffff62f224fffe01 " +
		"00a4000c026f07 00b0000009"
	if got := hexAPDUs(apdus); got != want {
		t.Errorf("script\n got %s\nwant %s", got, want)
	}
	if hex.EncodeToString(ef[:]) != "082926241032547698" {
		t.Errorf("ef %x", ef)
	}

	// MNC length changes: EF_AD octet 3; DF GSM copy; 5GS; extra; SIM CLA.
	p = testProfile()
	p.InvalidateLOCI, p.InvalidatePSLOCI, p.InvalidateEPSLOCI = false, false, false
	p.Invalidate5GSLOCI = true
	p.GSMIMSIPath = Path{FIDMF, FIDDFGSM, FIDIMSI}
	p.Extra = []FileUpdate{{Path: Path{FIDFPLMN}, Offset: 0, Data: unhex(t, "ffffffffffffffffffffffff")}}
	apdus, _, err = p.UpdateScript(Change{NewIMSI: "310260123456789", NewMNCLen: 3, OldMNCLen: 2})
	if err != nil {
		t.Fatal(err)
	}
	want = "00a4000c026f07 00d6000009083901621032547698 " +
		"00a4000c026fad 00d600030103 " +
		"00a4000c025fc0 00a4000c024f01 00d6000014ffffffffffffffffffffffffff130062fffffe01 " +
		"00a4000c023f00 00a4000c027fff 00a4000c026f7b 00d600000cffffffffffffffffffffffff " +
		"00a4000c023f00 00a4000c027f20 00a4000c026f07 00d6000009083901621032547698 " +
		"00a4000c023f00 00a4000c027fff 00a4000c026f07 00b0000009"
	if got := hexAPDUs(apdus); got != want {
		t.Errorf("script\n got %s\nwant %s", got, want)
	}

	p = testProfile()
	p.CLA = 0xa0
	p.InvalidateLOCI, p.InvalidatePSLOCI, p.InvalidateEPSLOCI = false, false, false
	apdus, _, _ = p.UpdateScript(Change{NewIMSI: "262420123456789", NewMNCLen: 2, OldMNCLen: 2})
	if got := hexAPDUs(apdus); got != "a0a40000026f07 a0d6000009082926241032547698 a0b0000009" {
		t.Errorf("SIM script %s", got)
	}
}

func TestKeyIndexAndReset(t *testing.T) {
	p := testProfile()
	p.InvalidateLOCI, p.InvalidatePSLOCI, p.InvalidateEPSLOCI = false, false, false
	p.KeyIndex = &KeyIndexCommand{TAR: TAR{0xb0, 0xff, 0x02}, Template: unhex(t, "80e8000001ff"), IndexOffset: 5, WithUpdate: true}
	apdus, _, err := p.UpdateScript(Change{NewIMSI: "262420123456789", NewMNCLen: 2, OldMNCLen: 2, KeyIndex: 2})
	if err != nil {
		t.Fatal(err)
	}
	if got := hexAPDUs(apdus); got != "00a4000c026f07 00d6000009082926241032547698 80e800000102 00a4000c026f07 00b0000009" {
		t.Errorf("script %s", got)
	}
	if _, err := p.KeyIndex.Command(0); err == nil {
		t.Error("index 0 accepted")
	}
	if got := hexAPDUs(p.ReadIMSIScript()); got != "00a4000c026f07 00b0000009" {
		t.Errorf("probe %s", got)
	}
	r, err := p.ResetScript()
	if err != nil || hexAPDUs(r) != "80c20400" {
		t.Errorf("reset %v %v", r, err)
	}
}

func TestProfileValidate(t *testing.T) {
	p := testProfile()
	if err := p.Validate(); err != nil {
		t.Fatalf("good profile: %v", err)
	}
	for _, c := range []struct {
		spi  SPI
		want string
	}{
		{0x0639, "does not check the counter"},
		{0x1539, "no cryptographic checksum"},
		{0x1439, "no cryptographic checksum"},
		{0x0e39, "does not check the counter"},
		{0x1638, "no PoR required"},
		{0x163a, "no PoR required"},
	} {
		p := testProfile()
		p.SPI = c.spi
		if c.spi == 0x1539 || c.spi == 0x1439 {
			p.KID = 0x15
		}
		err := p.Validate()
		if !errors.Is(err, ErrProfile) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("SPI %s: %v", c.spi, err)
		}
		p.TestOnly = true
		if err := p.Validate(); err != nil {
			t.Errorf("SPI %s test-only: %v", c.spi, err)
		}
	}
	p = testProfile()
	p.CLA, p.KIc, p.KeyIndex = 0x80, 0x03, &KeyIndexCommand{Template: APDU{1, 2}}
	err := p.Validate()
	for _, w := range []string{"CLA 80", "KIc 03", "key-index template"} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("want %q in %v", w, err)
		}
	}
}

func TestCheckUpdate(t *testing.T) {
	p := testProfile()
	keys := Keys{KIc: packetOf(16), KID: packetOf(16)}
	card, err := NewCodec(p.Params(p.TAR), keys)
	if err != nil {
		t.Fatal(err)
	}
	ef, _ := EncodeIMSI("262420123456789")
	exp := Expectation{TAR: p.TAR, Counter: 7, Commands: 10, EFIMSI: ef, IMSIWrite: 2}
	decode := func(por []byte) (Response, error) {
		c, _ := NewCodec(p.Params(p.TAR), keys)
		return c.DecodeResponse(por)
	}
	secured := func(counter uint64, st Status, data []byte) []byte {
		b, err := card.EncodeResponse(nil, counter, st, data)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	okData := AppendCompactResponse(nil, 10, 0x9000, ef[:])
	tampered := secured(7, StatusOK, okData)
	tampered[len(tampered)-1] ^= 1
	cases := []struct {
		name string
		por  []byte
		want Outcome
	}{
		{"confirmed", secured(7, StatusOK, okData), OutcomeConfirmed},
		{"wrong read-back", secured(7, StatusOK, AppendCompactResponse(nil, 10, 0x9000, make([]byte, 9))), OutcomeIncomplete},
		{"failed after the write", secured(7, StatusOK, AppendCompactResponse(nil, 4, 0x6a82, nil)), OutcomeIncomplete},
		{"failed before the write", secured(7, StatusOK, AppendCompactResponse(nil, 1, 0x6a82, nil)), OutcomeFailed},
		{"last SW", secured(7, StatusOK, AppendCompactResponse(nil, 10, 0x6282, ef[:])), OutcomeIncomplete},
		{"no result", secured(7, StatusOK, nil), OutcomeIncomplete},
		{"other counter", secured(8, StatusOK, okData), OutcomeUnknown},
		{"tampered", tampered, OutcomeUnknown},
		{"counter low", secured(7, StatusCounterLow, nil), OutcomeCounterLow},
		{"replay 06 unsecured", AppendUnsecuredResponse(nil, p.TAR, 0, StatusUnidentifiedSecurity), OutcomeCounterLow},
		{"counter high", AppendUnsecuredResponse(nil, p.TAR, 0, StatusCounterHigh), OutcomeCounterHigh},
		{"more time", secured(7, StatusMoreTime, nil), OutcomePending},
		{"via submit", secured(7, StatusViaSubmit, nil), OutcomePending},
		{"CC failed", AppendUnsecuredResponse(nil, p.TAR, 0, StatusChecksumFailed), OutcomeFailed},
		{"TAR unknown", AppendUnsecuredResponse(nil, p.TAR, 0, StatusTARUnknown), OutcomeFailed},
		{"unsecured OK", AppendUnsecuredResponse(nil, p.TAR, 0, StatusOK), OutcomeUnknown},
		{"other TAR", AppendUnsecuredResponse(nil, TAR{1, 2, 3}, 0, StatusCounterLow), OutcomeUnknown},
		{"garbage", []byte{1, 2, 3}, OutcomeUnknown},
	}
	plain, err := NewCodec(Params{SPI: 0x1001, TAR: p.TAR}, Keys{})
	if err != nil {
		t.Fatal(err)
	}
	unauth, _ := plain.EncodeResponse(nil, 7, StatusOK, okData)
	cases = append(cases, struct {
		name string
		por  []byte
		want Outcome
	}{"no PoR checksum", unauth, OutcomeConfirmed})
	for _, c := range cases {
		r, err := decode(c.por)
		if c.name == "no PoR checksum" {
			r, err = plain.DecodeResponse(c.por)
			exp := exp
			exp.RequireChecksum = true
			if v := CheckUpdate(exp, r, err); v.Outcome != OutcomeUnknown {
				t.Errorf("RequireChecksum: %s", v.Outcome)
			}
		}
		v := CheckUpdate(exp, r, err)
		if v.Outcome != c.want {
			t.Errorf("%s: %s (%s), want %s", c.name, v.Outcome, v.Reason, c.want)
		}
	}
}

// TestCheckUpdatePartial judges real PoR shapes of a real script (EF_IMSI
// written by command 2 of 10, DF GSM's copy by command 8) by what they
// prove executed: stopped before the write is failed (the card did not
// change); at or after it incomplete, never failed; status words that say
// "completed" (TS 102 221 §10.2.1: 9000, 91xx, 61xx, 63Cx) count as
// success, a 62xx warning on the write (memory unchanged) does not.
func TestCheckUpdatePartial(t *testing.T) {
	p := testProfile()
	p.GSMIMSIPath = Path{FIDMF, FIDDFGSM, FIDIMSI}
	sc, err := p.Update(Change{NewIMSI: "262420123456789", NewMNCLen: 2, OldMNCLen: 2})
	if err != nil {
		t.Fatal(err)
	}
	if sc.IMSIWrite != 2 || hex.EncodeToString(sc.APDUs[sc.IMSIWrite-1][:5]) != "00d6000009" {
		t.Fatalf("EF_IMSI write at %d in %s", sc.IMSIWrite, hexAPDUs(sc.APDUs))
	}
	n := len(sc.APDUs)
	old, _ := EncodeIMSI("001010123456789")
	exp := Expectation{TAR: p.TAR, Counter: 7, Commands: n, EFIMSI: sc.EFIMSI, IMSIWrite: sc.IMSIWrite, OldEFIMSI: &old}
	rapdu := func(sw uint16, data ...byte) []byte {
		v := append(append([]byte{}, data...), byte(sw>>8), byte(sw))
		return append([]byte{0x23, byte(len(v))}, v...)
	}
	expanded := func(executed int, rs ...[]byte) []byte {
		body := []byte{0x80, 0x01, byte(executed)}
		for _, r := range rs {
			body = append(body, r...)
		}
		return append([]byte{0xab, byte(len(body))}, body...)
	}
	compact := func(executed int, sw uint16, data []byte) []byte {
		return AppendCompactResponse(nil, executed, sw, data)
	}
	cases := []struct {
		name   string
		format CommandFormat
		data   []byte
		want   Outcome
	}{
		{"all executed, 9000, new EF_IMSI", FormatCompact, compact(n, 0x9000, sc.EFIMSI[:]), OutcomeConfirmed},
		{"all executed, 9101 (proactive command pending)", FormatCompact, compact(n, 0x9101, sc.EFIMSI[:]), OutcomeConfirmed},
		{"all executed, 63C1 (completed after a retry)", FormatCompact, compact(n, 0x63c1, sc.EFIMSI[:]), OutcomeConfirmed},
		{"all executed, read-back old EF_IMSI", FormatCompact, compact(n, 0x9000, old[:]), OutcomeFailed},
		{"all executed, read-back 6282 (end of file)", FormatCompact, compact(n, 0x6282, sc.EFIMSI[:5]), OutcomeIncomplete},
		{"all executed, read-back 61xx without data", FormatCompact, compact(n, 0x6109, nil), OutcomeIncomplete},
		{"select EF_IMSI fails (6A82)", FormatCompact, compact(1, 0x6a82, nil), OutcomeFailed},
		{"write fails (6982 security)", FormatCompact, compact(2, 0x6982, nil), OutcomeFailed},
		{"write warns 6281 (memory unchanged)", FormatCompact, compact(2, 0x6281, nil), OutcomeFailed},
		{"write warns 6381 (memory changed)", FormatCompact, compact(2, 0x6381, nil), OutcomeIncomplete},
		{"write completes 63C2, script stops", FormatCompact, compact(2, 0x63c2, nil), OutcomeIncomplete},
		{"9 of 10, last SW 6A82 (DF GSM missing)", FormatCompact, compact(n-1, 0x6a82, nil), OutcomeIncomplete},
		{"3 of 10, EF_LOCI select fails", FormatCompact, compact(3, 0x6a82, nil), OutcomeIncomplete},
		{"nothing executed", FormatCompact, compact(0, 0x6700, nil), OutcomeFailed},
		{"expanded: bad format", FormatExpanded, []byte{0xab, 0x03, 0x90, 0x01, 0x01}, OutcomeFailed},
		{"expanded: stops after the write", FormatExpanded, expanded(2, rapdu(0x9000), rapdu(0x9000)), OutcomeIncomplete},
		{"expanded: write 6200, went on", FormatExpanded, expanded(3, rapdu(0x9000), rapdu(0x6200), rapdu(0x6a82)), OutcomeFailed},
		{"expanded: write 9000, then 6A82", FormatExpanded, expanded(3, rapdu(0x9000), rapdu(0x9000), rapdu(0x6a82)), OutcomeIncomplete},
		{"expanded: select 6A82", FormatExpanded, expanded(1, rapdu(0x6a82)), OutcomeFailed},
	}
	for _, c := range cases {
		e := exp
		e.Format = c.format
		v := CheckUpdate(e, Response{TAR: p.TAR, Counter: 7, Status: StatusOK, Checksum: ChecksumVerified, Data: c.data}, nil)
		if v.Outcome != c.want {
			t.Errorf("%s: %s (%s), want %s", c.name, v.Outcome, v.Reason, c.want)
		}
	}
	for sw, want := range map[uint16]bool{0x9000: true, 0x9110: true, 0x6110: true, 0x9f10: true, 0x9201: true, 0x63c1: true,
		0x9240: false, 0x6200: false, 0x6282: false, 0x6381: false, 0x6a82: false, 0x9001: false} {
		if SWCompleted(sw) != want {
			t.Errorf("SWCompleted(%04x) = %v", sw, !want)
		}
	}
}

// TestAddressing: the profile's addressing decides how the script reaches
// EF_IMSI (and the other files of ADF.USIM); the default is unchanged; an
// addressing that cannot reach a file the profile writes is refused.
func TestAddressing(t *testing.T) {
	aid := unhex(t, "a0000000871002")
	base := func(a Addressing) Profile {
		p := testProfile()
		p.InvalidateLOCI, p.InvalidatePSLOCI, p.InvalidateEPSLOCI = true, false, false
		p.GSMIMSIPath = Path{FIDMF, FIDDFGSM, FIDIMSI}
		p.Addressing = a
		if a == AddressAID {
			p.USIMAID = aid
		}
		return p
	}
	const (
		write  = "00d6000009082926241032547698"
		loci   = "00d600000bffffffff62f224fffeff01"
		gsm    = "00a4000c023f00 00a4000c027f20 00a4000c026f07 " + write
		readEF = "00b0000009"
	)
	for _, c := range []struct {
		a    Addressing
		want string
	}{
		{AddressADF, "00a4000c026f07 " + write + " 00a4000c026f7e " + loci + " " + gsm + " 00a4000c023f00 00a4000c027fff 00a4000c026f07 " + readEF},
		{Address7FFF, "00a4000c027fff 00a4000c026f07 " + write + " 00a4000c026f7e " + loci + " " + gsm + " 00a4000c027fff 00a4000c026f07 " + readEF},
		{AddressAID, "00a4040c07a0000000871002 00a4000c026f07 " + write + " 00a4000c026f7e " + loci + " " + gsm + " 00a4040c07a0000000871002 00a4000c026f07 " + readEF},
		{AddressPath, "00a4000c023f00 00a4000c027fff 00a4000c026f07 " + write + " 00a4000c023f00 00a4000c027fff 00a4000c026f7e " + loci + " " + gsm + " 00a4000c023f00 00a4000c027fff 00a4000c026f07 " + readEF},
	} {
		p := base(c.a)
		if err := p.Validate(); err != nil {
			t.Errorf("%s: %v", c.a, err)
		}
		sc, err := p.Update(Change{NewIMSI: "262420123456789", NewMNCLen: 2, OldMNCLen: 2})
		if err != nil {
			t.Fatal(err)
		}
		if got := hexAPDUs(sc.APDUs); got != c.want {
			t.Errorf("%s:\n got %s\nwant %s", c.a, got, c.want)
		}
		if hex.EncodeToString(sc.APDUs[sc.IMSIWrite-1]) != write {
			t.Errorf("%s: EF_IMSI write at %d is %x", c.a, sc.IMSIWrite, sc.APDUs[sc.IMSIWrite-1])
		}
	}
	for _, c := range []struct {
		p    func() Profile
		want string
	}{
		{func() Profile { return base(AddressADFOnly) }, "no route to DF GSM's EF_IMSI (gsm_copy) at 3f00/7f20/6f07"},
		{func() Profile {
			p := base(AddressADFOnly)
			p.GSMIMSIPath, p.Extra = nil, []FileUpdate{{Path: Path{FIDMF, 0x2f05}, Data: []byte{1}}}
			return p
		}, "no route to extra update 1 at 3f00/2f05"},
		{func() Profile { p := base(AddressAID); p.USIMAID = nil; return p }, "needs the USIM's AID"},
		{func() Profile { p := base(Address7FFF); p.ADFPath = Path{FIDMF, FIDCurrentADF}; return p }, "ADF path 3f00/7fff is for addressing adf"},
	} {
		p := c.p()
		if err := p.Validate(); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("want %q, got %v", c.want, err)
		}
	}
	p := base(AddressADFOnly)
	p.GSMIMSIPath = nil
	if err := p.Validate(); err != nil {
		t.Errorf("adf-only without absolute paths: %v", err)
	}
	for _, n := range []string{"", "adf", "adf-only", "7fff", "aid", "path"} {
		a, err := ParseAddressing(n)
		if err != nil || (n != "" && a.String() != n) {
			t.Errorf("ParseAddressing(%q) = %s %v", n, a, err)
		}
	}
	if _, err := ParseAddressing("by-fid"); err == nil {
		t.Error("unknown addressing accepted")
	}
}

// TestCheckUpdateRealPoRs judges the PoRs a real sysmoISIM-SJA5 gave to
// pySim's tests (one SELECT with FCP, answered 6132: completed, response
// data available) as a one-command script: TS 102 221 counts 61xx as
// completed, so the script is complete; the read-back is what decides.
func TestCheckUpdateRealPoRs(t *testing.T) {
	v := loadVectors(t)
	for _, c := range v.PySim.Cases {
		ks := pysimKeysets[c.Keyset]
		p := Params{SPI: spiOf(t, c.SPI), KIc: ks.kic, KID: KID(ks.kid), TAR: tarOf(t, c.TAR)}
		r, err := mustCodec(t, p, ks.kicK, ks.kidK).DecodeResponse(unhex(t, c.EncodedResp))
		if err != nil {
			t.Fatal(err)
		}
		var ef [EFIMSILen]byte
		// The read-back (no data: GET RESPONSE would fetch the FCP) is
		// not the new EF_IMSI; the write at command 1 completed (61xx).
		exp := Expectation{TAR: p.TAR, Counter: c.Cntr, Commands: 1, EFIMSI: ef, IMSIWrite: 1}
		if v := CheckUpdate(exp, r, nil); v.Outcome != OutcomeIncomplete {
			t.Errorf("%s: %s (%s), want incomplete", c.Name, v.Outcome, v.Reason)
		}
		// Before the write: the card stopped earlier, nothing changed.
		exp.Commands, exp.IMSIWrite = 3, 2
		if v := CheckUpdate(exp, r, nil); v.Outcome != OutcomeFailed {
			t.Errorf("%s: %s (%s), want failed", c.Name, v.Outcome, v.Reason)
		}
		if !SWCompleted(0x6132) {
			t.Error("6132 is not completed")
		}
	}
}
