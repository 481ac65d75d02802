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
	// OutcomePending: status 0B/0C, the real PoR follows by SMS-SUBMIT or
	// USSD; keep waiting.
	OutcomePending
)

func (o Outcome) String() string {
	return [...]string{"unknown", "confirmed", "failed", "counter-low", "counter-high", "pending"}[o]
}

// Expectation is what a PoR must show to confirm an IMSI update.
type Expectation struct {
	TAR     TAR
	Counter uint64
	// Commands is the number of APDUs in the script.
	Commands int
	// EFIMSI is the new EF_IMSI that the final READ BINARY returns.
	EFIMSI [EFIMSILen]byte
	Format CommandFormat
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
// returned with it) against exp, by the confirmation rule of the cut-over:
// confirmed = PoR 00 with its checksum verified (when the SPI asks for
// one), all commands executed, last SW 9000, read-back equal to the new
// EF_IMSI. Anything that cannot prove the card's state is unknown.
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
		return v(OutcomeCounterLow, "status %s", r.Status)
	case StatusCounterHigh:
		return v(OutcomeCounterHigh, "status %s", r.Status)
	case StatusMoreTime:
		return v(OutcomeUnknown, "status %s", r.Status)
	case StatusViaSubmit, StatusViaUSSD:
		return v(OutcomePending, "status %s", r.Status)
	default:
		return v(OutcomeFailed, "status %s", r.Status)
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
		return v(OutcomeUnknown, "PoR OK but RFM result unreadable: %v", err)
	}
	out := func(o Outcome, format string, a ...any) Verdict {
		x := v(o, format, a...)
		x.Result = res
		return x
	}
	switch {
	case len(res.BadFormat) > 0:
		return out(OutcomeFailed, "card reports a bad script format %x", res.BadFormat)
	case res.Executed != exp.Commands:
		return out(OutcomeFailed, "%d of %d commands executed, last SW %04x", res.Executed, exp.Commands, res.LastSW)
	case res.LastSW != 0x9000:
		return out(OutcomeFailed, "last SW %04x", res.LastSW)
	case !bytes.Equal(res.Data, exp.EFIMSI[:]):
		return out(OutcomeFailed, "read-back EF_IMSI %x, want %x", res.Data, exp.EFIMSI)
	}
	return out(OutcomeConfirmed, "EF_IMSI %x confirmed", res.Data)
}
