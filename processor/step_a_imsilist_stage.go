package processor

import (
	"time"

	"resub/formats/native"
	"resub/processor/ledger"
)

// The donor's acceptance rules of an imsi-list record, as the ledger's
// stage applies them to a whole file (ledger.IMSIListStage): in this
// order, the first that holds gives the line's answer.
//
//   - a repeated ICCID or IMSI (the later line, as the reader would say it);
//   - the ICCID is not in the inventory;
//   - the card is already moving (or further on), or not active;
//   - the M2M operator did not authorise the move to this recipient, the
//     authorisation names another customer than the card's owner, or the
//     cut-over is before the authorised date;
//   - the new IMSI is not in the recipient's ranges, or in use (carried by
//     a card or awaited by one, released and erased cards aside);
//   - the cut-over date has passed;
//   - the card's profile is not configured here; a 3b card's key list is
//     exhausted; no MSISDN is known for the card.
func imsiListJudge(w *Work) ledger.IMSIListJudge {
	dup := func(field string) ledger.Verdict {
		return ledger.Verdict{Reason: ReasonDuplicate, Detail: w.File.Name + ":", DetailEnd: ": " + field + ": " + native.ErrDuplicate.Error() + ": "}
	}
	return ledger.IMSIListJudge{
		BatchID: w.BatchID, Recipient: w.Partner.Code, Partner: w.Partner.Name,
		Accepted: recordAccepted, Rejected: recordRejected,
		Active: ledger.CardActive,
		Moving: []string{ledger.CardMoving, ledger.CardConfirmed, ledger.CardUnknown, ledger.CardFailed,
			ledger.CardHandedOver, ledger.CardProvisioned, ledger.CardResetting, ledger.CardManual},
		Free:             []string{ledger.CardReleased, ledger.CardErased},
		DuplicateICCID:   dup(native.FieldICCID),
		DuplicateIMSI:    dup(native.FieldIMSI),
		UnknownCard:      ledger.Verdict{Reason: ReasonUnknownICCID},
		AlreadyMoving:    ledger.Verdict{Reason: ReasonAlreadyMoving, Detail: "card is "},
		NotActive:        ledger.Verdict{Reason: ReasonNotActive, Detail: "card is "},
		NotAuthorised:    ledger.Verdict{Reason: ReasonNotAuthorised, Detail: "no switch authorisation to " + w.Partner.Code},
		OtherOwner:       ledger.Verdict{Reason: ReasonNotAuthorised, Detail: "authorised by another customer than the card's owner"},
		BeforeAuthorised: ledger.Verdict{Reason: ReasonNotAuthorised, Detail: "cut-over before the authorised date "},
		NotInRange:       ledger.Verdict{Reason: ReasonNotInRange},
		IMSIInUse:        ledger.Verdict{Reason: ReasonIMSIInUse},
		DatePast:         ledger.Verdict{Reason: ReasonDatePast},
		NoProfile:        ledger.Verdict{Reason: ReasonInternal, Detail: "card profile ", DetailEnd: " is not configured"},
		ListExhausted:    ledger.Verdict{Reason: ReasonListExhausted, Detail: "key index ", DetailEnd: " of "},
		NoMSISDN:         ledger.Verdict{Reason: ReasonInternal, Detail: "no MSISDN known for the card"},
	}
}

// imsiListProfiles are the profiles configured here, as the stage judges
// and queues by them.
func imsiListProfiles(p *Party) []ledger.IMSIListProfile {
	out := make([]ledger.IMSIListProfile, 0, len(p.Profiles))
	for _, prof := range p.Profiles {
		out = append(out, ledger.IMSIListProfile{Name: prof.Name, TAR: prof.OTA.TAR.String(), ResetTAR: prof.OTA.ResetTAR.String(),
			Indexed: prof.OTA.KeyIndex != nil})
	}
	return out
}

// imsiListAccept is how the accepted cards move and what they are sent:
// the update (and, by the partner's policy, the reset after it).
func imsiListAccept(w *Work) ledger.IMSIListAccept {
	o := ledger.IMSIListAccept{From: ledger.CardActive, To: ledger.CardMoving, Event: "imsi-list accepted", Ref: w.Source,
		Update: msgUpdate, State: ledger.MsgReserved}
	if w.Partner.Policy.ResetWithUpdate {
		o.Reset = msgReset
	}
	return o
}

// outstandingStates are the states of a message that still waits for an
// answer: a card has at most one.
var outstandingStates = []string{ledger.MsgReserved, ledger.MsgSent}

// tookLogger logs how long each of a stage's set-based statements ran
// (debug).
func tookLogger(w *Work, step string) func(string, time.Duration) {
	return func(what string, d time.Duration) {
		w.P.log().Debug(step+" statement", "file", w.File.Name, "statement", what, "seconds", d.Seconds())
	}
}
