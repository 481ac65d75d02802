package ota

import (
	"bytes"
	"errors"
	"fmt"
)

// Outcome is what the processor can do with an IMSI update's PoR.
type Outcome uint8

// The outcomes.
const (
	// OutcomeUnknown: the card may or may not have changed (no PoR, more
	// time needed, an unauthenticated or unreadable PoR). Never "failed".
	OutcomeUnknown Outcome = iota
	// OutcomeConfirmed: PoR OK, every command executed, last SW 9000 and
	// the read-back equals the new EF_IMSI.
	OutcomeConfirmed
	// OutcomeFailed: the card refused or a command failed; retry with a
	// new counter up to the limit.
	OutcomeFailed
	// OutcomeCounterLow: status 02, or 06 as real cards answer a replay;
	// step the counter by the configured jump and retry once.
	OutcomeCounterLow
	// OutcomeCounterHigh: status 03; step and retry once.
	OutcomeCounterHigh
	// OutcomePending: status 08 (more time), 0B or 0C (the real PoR
	// follows by SMS-SUBMIT or USSD); keep waiting: the deadline decides.
	OutcomePending
	// OutcomeIncomplete: the PoR proves (or cannot exclude) that the
	// EF_IMSI write executed, and a later command failed or the read-back
	// does not show the new EF_IMSI: the card has changed but the script
	// is incomplete. Never "failed": retry the whole (idempotent) script.
	OutcomeIncomplete
)

func (o Outcome) String() string {
	if int(o) >= len(outcomeNames) {
		return fmt.Sprintf("outcome-%d", uint8(o))
	}
	return outcomeNames[o]
}

var outcomeNames = [...]string{"unknown", "confirmed", "failed", "counter-low", "counter-high", "pending", "incomplete"}

// Expectation is what a PoR must show to confirm an IMSI update.
type Expectation struct {
	TAR     TAR
	Counter uint64
	// Commands is the number of APDUs in the script.
	Commands int
	// EFIMSI is the new EF_IMSI that the final READ BINARY returns.
	EFIMSI [EFIMSILen]byte
	// IMSIWrite is the position (1-based) of the UPDATE BINARY of
	// EF_IMSI in the script (Script.IMSIWrite); 0 when unknown, which
	// counts any executed command as possibly the write.
	IMSIWrite int
	// OldEFIMSI, when set, is the EF_IMSI the card held before: a
	// complete script that reads it back proves the card unchanged.
	OldEFIMSI *[EFIMSILen]byte
	Format    CommandFormat
	// RequireChecksum refuses to confirm on a PoR without a verified
	// RC/CC. Set it whenever the SPI asks for a PoR checksum (it is
	// implied then: such a PoR without one is unsecured) and as policy.
	RequireChecksum bool
}

// Verdict is an Outcome with its reason, for the ledger and the logs.
type Verdict struct {
	Outcome Outcome
	Reason  string
	Result  RFMResult // parsed when the PoR was readable
}

// CheckUpdate classifies the decoded PoR r (and the error DecodeResponse
// returned with it) against exp by what the PoR proves the card executed:
//
//   - a PoR that cannot be taken as the card's answer (unreadable, checksum
//     failed, other TAR or counter, OK without the SPI's security) is
//     unknown; the processor never lets such a PoR change anything;
//   - status 02 (or 06, as real cards answer a replay) is counter-low, 03
//     counter-high, other error statuses failed: the card did not run the
//     script; 08, 0B and 0C are pending;
//   - PoR 00: confirmed when every command executed, the last SW says
//     completed (SWCompleted) and the read-back is the new EF_IMSI; failed
//     when the script stopped before the EF_IMSI write (fewer commands
//     executed, or the write itself answered an error or a 62xx warning:
//     memory unchanged) or the read-back shows the old EF_IMSI; otherwise
//     incomplete: the write executed (completed or a 63xx warning: memory
//     changed) and something after it did not.
func CheckUpdate(exp Expectation, r Response, decodeErr error) Verdict {
	v := func(o Outcome, format string, a ...any) Verdict {
		return Verdict{Outcome: o, Reason: fmt.Sprintf(format, a...)}
	}
	switch {
	case errors.Is(decodeErr, ErrChecksum):
		return v(OutcomeUnknown, "PoR checksum does not verify")
	case decodeErr != nil:
		return v(OutcomeUnknown, "PoR unreadable: %v", decodeErr)
	}
	if r.TAR != exp.TAR {
		return v(OutcomeUnknown, "PoR for TAR %s, sent to %s", r.TAR, exp.TAR)
	}
	if !r.Unsecured && r.Counter != exp.Counter {
		return v(OutcomeUnknown, "PoR for counter %d, sent %d", r.Counter, exp.Counter)
	}
	switch r.Status {
	case StatusOK:
	case StatusCounterLow, StatusUnidentifiedSecurity:
		return v(OutcomeCounterLow, "status %s: not executed", r.Status)
	case StatusCounterHigh:
		return v(OutcomeCounterHigh, "status %s: not executed", r.Status)
	case StatusMoreTime, StatusViaSubmit, StatusViaUSSD:
		return v(OutcomePending, "status %s", r.Status)
	default:
		return v(OutcomeFailed, "status %s: not executed", r.Status)
	}
	if r.Unsecured {
		return v(OutcomeUnknown, "PoR OK without the security the SPI asks for")
	}
	if exp.RequireChecksum && r.Checksum != ChecksumVerified {
		return v(OutcomeUnknown, "PoR OK without a verified checksum")
	}
	var res RFMResult
	var err error
	if exp.Format == FormatExpanded {
		res, err = ParseExpandedResponse(r.Data)
	} else {
		res, err = ParseCompactResponse(r.Data)
	}
	if err != nil {
		return v(OutcomeIncomplete, "PoR OK but RFM result unreadable: %v", err)
	}
	out := func(o Outcome, format string, a ...any) Verdict {
		x := v(o, format, a...)
		x.Result = res
		return x
	}
	if len(res.BadFormat) > 0 && res.Executed == 0 {
		return out(OutcomeFailed, "card reports a bad script format %x: nothing executed", res.BadFormat)
	}
	complete := res.Executed == exp.Commands && SWCompleted(res.LastSW)
	switch {
	case complete && bytes.Equal(res.Data, exp.EFIMSI[:]):
		return out(OutcomeConfirmed, "EF_IMSI %x confirmed", res.Data)
	case complete && exp.OldEFIMSI != nil && bytes.Equal(res.Data, exp.OldEFIMSI[:]):
		return out(OutcomeFailed, "all %d commands executed but EF_IMSI reads back the old %x: unchanged", exp.Commands, res.Data)
	}
	done := fmt.Sprintf("%d of %d commands executed, last SW %04x", res.Executed, exp.Commands, res.LastSW)
	if complete {
		done = fmt.Sprintf("all %d commands executed but EF_IMSI reads back %x", exp.Commands, res.Data)
	}
	if !imsiWritten(exp, res) {
		return out(OutcomeFailed, "%s: stopped before the EF_IMSI write (command %d)", done, exp.IMSIWrite)
	}
	return out(OutcomeIncomplete, "%s: EF_IMSI written (command %d), the script incomplete", done, max(exp.IMSIWrite, 1))
}

// imsiWritten reports whether res cannot exclude that the EF_IMSI write
// executed: the card ran past it, or stopped at it with a status word
// that leaves the file changed.
func imsiWritten(exp Expectation, res RFMResult) bool {
	k := exp.IMSIWrite
	if k == 0 {
		return res.Executed > 0
	}
	switch {
	case res.Executed < k:
		return false
	case len(res.Responses) >= k:
		// Expanded format: the write's own status word.
		return SWMayHaveWritten(res.Responses[k-1].SW)
	case res.Executed == k:
		return SWMayHaveWritten(res.LastSW)
	}
	// The card went on after the write: it did not answer an error.
	return true
}

// SWCompleted reports whether a status word says the command completed
// (TS 102 221 §10.2.1, GSM 11.11 §9.4): 9000; 91xx (completed, a
// proactive command pending); 920x (completed after x internal retries);
// 61xx and 9Fxx (completed, response data available); 63Cx (completed
// after x internal update retries).
func SWCompleted(sw uint16) bool {
	switch sw >> 8 {
	case 0x90:
		return sw == 0x9000
	case 0x91, 0x61, 0x9f:
		return true
	case 0x92:
		return sw&0xf0 == 0
	case 0x63:
		return sw&0xf0 == 0xc0
	}
	return false
}

// SWMayHaveWritten reports whether, after an UPDATE, a status word
// leaves the file possibly written: the command completed, or a 63xx
// warning (ISO/IEC 7816-4: non-volatile memory changed). 62xx warnings
// (memory unchanged) and errors do not.
func SWMayHaveWritten(sw uint16) bool {
	return SWCompleted(sw) || sw>>8 == 0x63
}
