package processor

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"resub/formats/native"
	"resub/formats/ota"
	"resub/processor/ledger"
)

// Outcome statuses of imsi-result records after the change.
const (
	resultCompleted = "completed"
	resultFailed    = "failed"
	resultUnknown   = "unknown"
)

// OTAReport is the donor's step over the SMSC's report: each proof of
// receipt is matched to its message by (MSISDN, TAR, counter), verified
// with the card's keys and judged by the confirmation rule; the card moves
// to confirmed, is retried with a new counter, or becomes unknown; the
// recipient hears the outcome in an imsi-result.
type OTAReport struct {
	// SMSC takes the retries' ota-batch (the report's sender by default).
	SMSC *Partner
}

// InputType implements FileStep.
func (s *OTAReport) InputType() string { return native.OTAReport.Name }

// ReasonPoRUnverified marks a report line whose PoR did not verify against
// the card's outstanding message (checksum, deciphering, counter, TAR, or
// an OK status without the security the SPI asks for). It changed nothing;
// it stays in the report batch's records, never goes to a partner.
const ReasonPoRUnverified = "POR_UNVERIFIED"

// PoRReport is one report about an OTA message as it reaches the donor,
// whichever way it came in: a line of the SMSC's ota-report, or a PoR or
// delivery receipt taken straight from the SMSC (SMPP deliver_sm).
type PoRReport struct {
	// MSISDN is the card's number: the PoR's originator.
	MSISDN string
	// MessageID is our message ID (PARTY-N) where the way in carries it;
	// a delivery report without PoR is matched by it alone.
	MessageID string
	// PoR is the TP-UD of the card's response packet, UDH 027100
	// included; empty for a delivery report.
	PoR []byte
	// Status and Detail are the SMSC's delivery outcome (native.Status*:
	// delivered, failed, expired, rejected, unknown) and its text, for a
	// report without PoR.
	Status, Detail string
	// Line is the report's line in its input (0 when none): the line of
	// the outcome records written for the recipient.
	Line int
}

// PoRJudgement is what JudgePoR made of one report.
type PoRJudgement struct {
	// Message is the outstanding message the report is about; nil when
	// it matches none (Reason and Detail say why: UNKNOWN_ICCID for an
	// MSISDN we never sent to, DUPLICATE when nothing to it is
	// outstanding).
	Message        *ledger.Message
	Reason, Detail string
	// Ignored is set when the PoR did not verify against Message: it was
	// recorded on the message and the card's history, counted in
	// Counts.PoRsIgnored, and changed nothing; the message stays
	// outstanding until a verified PoR or its deadline.
	Ignored string
	// Verdict is the verdict applied to Message (when not Ignored).
	Verdict ota.Verdict
	// Recipient is the partner to tell in an imsi-result of the work's
	// batch (nil when nobody is told).
	Recipient *Partner
}

// JudgePoR is the one entry point by which a proof of receipt or a
// delivery report changes anything, whatever way it came in; the
// ota-report step and the SMSC's direct connection both call it inside
// their unit of work w (w.Tx, w.BatchID; retries are queued in w's batch
// and counted in w.Counts.Messages, the caller plans the ota-batch and
// the imsi-result for the returned Recipient).
//
// A PoR is matched among the MSISDN's outstanding messages by its TAR (in
// clear) and verified with the card's keys: checksum, deciphering, the
// message's counter, the security the SPI asks for. A PoR that does not
// verify changes no card and no message: it is recorded with its reason
// and the message stays outstanding. An unsecured PoR with an error
// status that a card sends when it could not verify or run the command
// (01–07, 09, 0A) proves the command was not executed and is judged as
// such. A verified PoR is judged by what it proves executed (ota.
// CheckUpdate for an IMSI update); one for an earlier attempt already
// judged failed still counts (latePoR).
func (p *Party) JudgePoR(ctx context.Context, w *Work, r PoRReport) (PoRJudgement, error) {
	if len(r.PoR) == 0 {
		return p.judgeDelivery(ctx, w, r)
	}
	tx := w.Tx
	tar, terr := ota.ResponseTAR(r.PoR)
	// The MSISDN's outstanding messages, read whole in one statement.
	msgs, err := tx.MessagesIn(ctx, r.MSISDN, ledger.MsgSent)
	if err != nil {
		return PoRJudgement{}, err
	}
	late := func() (PoRJudgement, bool, error) {
		if terr != nil {
			return PoRJudgement{}, false, nil
		}
		// Not for an outstanding message: perhaps the genuine answer to
		// an earlier attempt, retried on an unsecured error PoR.
		return p.latePoR(ctx, w, r, tar)
	}
	if len(msgs) == 0 {
		if j, ok, err := late(); ok || err != nil {
			return j, err
		}
		return p.unmatched(ctx, tx, r.MSISDN)
	}
	mt := matchPoR(msgs, tar, terr, func(m *ledger.Message) (ota.Response, *ledger.Card, error) {
		return p.decodePoR(ctx, tx, m, r.PoR)
	})
	if mt.Message != nil {
		return p.judgeVerified(ctx, w, mt.Message, mt.Card, r, mt.Resp)
	}
	if j, ok, err := late(); ok || err != nil {
		return j, err
	}
	return p.ignorePoR(ctx, w, mt.Target, mt.Reason)
}

// porMatch is what matchPoR made of a PoR among its MSISDN's outstanding
// messages: the message it verified against (with its card and the
// decoded response), or, when none, the message it is recorded on as
// ignored and why.
type porMatch struct {
	Message *ledger.Message
	Card    *ledger.Card
	Resp    ota.Response
	Target  *ledger.Message
	Reason  string
}

// matchPoR is the one rule by which a PoR is taken as the answer to one
// of its MSISDN's outstanding messages msgs (at least one, the newest
// first): among those sent to its TAR (in clear; terr when the PoR has
// none readable), the first against which it verifies (decode decodes it
// with a message's card keys; unverified says whether that verifies).
// When none does, the PoR is recorded on the newest message of its TAR
// with why it did not verify there, else on the newest message. It reads
// nothing itself: the record-at-a-time judge and the set-based intake
// give it their own decode.
func matchPoR(msgs []*ledger.Message, tar ota.TAR, terr error, decode func(*ledger.Message) (ota.Response, *ledger.Card, error)) porMatch {
	var target *ledger.Message // the message an unverified PoR is recorded on
	reason := "not a PoR"
	if terr != nil {
		reason = "not a PoR: " + terr.Error()
	}
	for _, m := range msgs {
		if target == nil {
			target = m
		}
		if terr != nil {
			break
		}
		if m.TAR != tar.String() {
			if target == m {
				reason = fmt.Sprintf("PoR for TAR %s, message sent to %s", tar, m.TAR)
			}
			continue
		}
		resp, c, derr := decode(m)
		why := unverified(m, resp, derr)
		if why == "" {
			return porMatch{Message: m, Card: c, Resp: resp}
		}
		if target.TAR != m.TAR || target == m {
			target, reason = m, why
		}
	}
	return porMatch{Target: target, Reason: reason}
}

// latePoR takes a verified PoR for one of the MSISDN's update messages
// already judged failed, the newest first: the genuine answer to an
// attempt that an unsecured error PoR (unauthenticated: maybe forged) had
// made us retry. What it proves counts: a card still moving whose update
// it confirms is confirmed; an EF_IMSI write it proves is recorded on that
// message, so the card is never reported failed. ok is false when no such
// message verifies it.
func (p *Party) latePoR(ctx context.Context, w *Work, r PoRReport, tar ota.TAR) (PoRJudgement, bool, error) {
	tx := w.Tx
	rows, err := tx.Query(ctx, `SELECT id FROM ota_messages WHERE msisdn = ? AND tar = ? AND kind = ? AND state = ? ORDER BY id DESC LIMIT 5`,
		r.MSISDN, tar.String(), msgUpdate, ledger.MsgFailed)
	if err != nil {
		return PoRJudgement{}, false, err
	}
	ids, err := scanIDs(rows)
	if err != nil {
		return PoRJudgement{}, false, err
	}
	for _, id := range ids {
		m, err := tx.Message(ctx, id)
		if err != nil {
			return PoRJudgement{}, false, err
		}
		resp, c, derr := p.decodePoR(ctx, tx, m, r.PoR)
		if derr != nil || resp.Unsecured || resp.Counter != uint64(m.Counter) {
			continue
		}
		v, err := p.verdictFor(ctx, m, c, resp)
		if err != nil {
			return PoRJudgement{}, false, err
		}
		j := PoRJudgement{Message: m, Verdict: v}
		ref := fmt.Sprintf("message %d", m.ID)
		p.log().Warn("late PoR for an attempt already judged", "iccid", c.ICCID, "message", m.ID, "outcome", v.Outcome.String(), "reason", v.Reason)
		switch {
		case v.Outcome == ota.OutcomeConfirmed && c.State == ledger.CardMoving:
			// The card took that attempt: confirmed (a retry still
			// outstanding finds a card no longer moving).
			j.Recipient, err = p.applyVerdictTo(ctx, w, m, c, r.Line, v, resp, true)
			return j, true, err
		case v.Outcome == ota.OutcomeConfirmed || v.Outcome == ota.OutcomeIncomplete:
			if err := tx.SetMessageState(ctx, m.ID, m.State, ota.OutcomeIncomplete.String(), "late PoR: "+v.Reason); err != nil {
				return j, true, err
			}
			if c.State == ledger.CardManual {
				// Retries exhausted and B told: the outcome is corrected.
				j.Recipient, err = p.correctOutcome(ctx, w, m, c, r.Line, v)
				return j, true, err
			}
			return j, true, tx.Transition(ctx, c.ICCID, []string{c.State}, c.State, "late PoR proves the EF_IMSI write: "+v.Reason, ref, nil)
		}
		return j, true, tx.Transition(ctx, c.ICCID, []string{c.State}, c.State, "late PoR: "+v.Reason, ref, nil)
	}
	return PoRJudgement{}, false, nil
}

// correctOutcome follows a late verified PoR proving the EF_IMSI write
// for card c, waiting for an engineer after its retries: confirmed, the
// card is confirmed and B told completed; incomplete, it stays manual and
// B, if it was told failed (and retired the IMSI), is told unknown /
// OTA_INCOMPLETE instead. The corrected outcome goes to B in an
// imsi-result line of the work's batch; it returns the recipient to tell.
func (p *Party) correctOutcome(ctx context.Context, w *Work, m *ledger.Message, c *ledger.Card, line int, v ota.Verdict) (*Partner, error) {
	tx := w.Tx
	recipient := p.PartnerByCode(c.Recipient)
	if recipient == nil {
		return nil, nil
	}
	var told string
	err := tx.QueryRow(ctx, `SELECT status FROM batch_records WHERE iccid = ? AND partner = ? AND imsi = ? ORDER BY batch_id DESC, line DESC LIMIT 1`,
		c.ICCID, recipient.Name, c.NewIMSI).Scan(&told)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return nil, err
	}
	ref := fmt.Sprintf("message %d", m.ID)
	out := ledger.BatchRecord{BatchID: w.BatchID, Line: line, ICCID: c.ICCID, IMSI: c.NewIMSI, Partner: recipient.Name}
	log := p.log().With("iccid", c.ICCID, "message", m.ID, "told", told)
	switch {
	case told != resultFailed && told != resultUnknown:
		// Manual for another cause (B refused the handover): the
		// change was reported completed already.
		return nil, tx.Transition(ctx, c.ICCID, []string{ledger.CardManual}, ledger.CardManual, "late PoR: "+v.Reason, ref, nil)
	case v.Outcome == ota.OutcomeConfirmed:
		log.Warn("late PoR confirms the IMSI change of a card waiting for an engineer: confirmed, the recipient corrected", "reason", v.Reason)
		if err := tx.Transition(ctx, c.ICCID, []string{ledger.CardManual}, ledger.CardConfirmed, "late PoR confirmed: "+v.Reason, ref,
			&ledger.CardUpdate{IMSI: &c.NewIMSI}); err != nil {
			return nil, err
		}
		out.Status, out.Detail = resultCompleted, "late PoR for message "+strconv.FormatInt(m.ID, 10)+": corrects "+told
	case told == resultFailed:
		log.Warn("late PoR proves the EF_IMSI write of a card reported failed: the recipient corrected to unknown", "reason", v.Reason)
		if err := tx.Transition(ctx, c.ICCID, []string{ledger.CardManual}, ledger.CardManual, "late PoR proves the EF_IMSI write: "+v.Reason, ref, nil); err != nil {
			return nil, err
		}
		out.Status, out.Reason = resultUnknown, ReasonOTAIncomplete
		out.Detail = "late PoR for message " + strconv.FormatInt(m.ID, 10) + " proves the EF_IMSI write, script incomplete (corrects failed): " + v.Reason
	default:
		// B already keeps the IMSI out of reuse: nothing to correct.
		return nil, tx.Transition(ctx, c.ICCID, []string{ledger.CardManual}, ledger.CardManual, "late PoR proves the EF_IMSI write: "+v.Reason, ref, nil)
	}
	return recipient, tx.PutBatchRecord(ctx, out)
}

// unverified says why a decoded PoR cannot be taken as the card's answer
// to m, or "" when it can: secured and verified with m's counter, or an
// unsecured error PoR (the card could not verify the command, so it did
// not run it).
func unverified(m *ledger.Message, resp ota.Response, derr error) string {
	switch {
	case errors.Is(derr, ota.ErrChecksum):
		return "PoR checksum does not verify"
	case errors.Is(derr, ota.ErrCipher):
		return "PoR does not decipher: " + derr.Error()
	case derr != nil:
		return "PoR unreadable: " + derr.Error()
	case resp.Unsecured && !notExecutedStatus(resp.Status):
		return fmt.Sprintf("unsecured PoR with status %s where the SPI asks for security", resp.Status)
	case resp.Unsecured && resp.Counter != 0 && resp.Counter != uint64(m.Counter):
		return fmt.Sprintf("unsecured PoR for counter %d, message sent with %d", resp.Counter, m.Counter)
	case !resp.Unsecured && resp.Counter != uint64(m.Counter):
		return fmt.Sprintf("PoR for counter %d, message sent with %d", resp.Counter, m.Counter)
	}
	return ""
}

// notExecutedStatus reports the PoR statuses by which a card says it did
// not run the command: it could not verify it (01, 05, 06, 0A), its
// counter was out of step (02, 03, 04), it had no room (07) or no such
// application (09). Such a PoR may come unsecured: the card could not
// secure it.
func notExecutedStatus(s ota.Status) bool {
	switch s {
	case ota.StatusChecksumFailed, ota.StatusCounterLow, ota.StatusCounterHigh, ota.StatusCounterBlocked, ota.StatusCipheringError,
		ota.StatusUnidentifiedSecurity, ota.StatusInsufficientMemory, ota.StatusTARUnknown, ota.StatusInsufficientSecurity:
		return true
	}
	return false
}

// ignorePoR records a PoR that did not verify on m and on the card's
// history; nothing else changes.
func (p *Party) ignorePoR(ctx context.Context, w *Work, m *ledger.Message, reason string) (PoRJudgement, error) {
	c, err := w.Tx.Card(ctx, m.ICCID)
	if err != nil {
		return PoRJudgement{}, err
	}
	ref := fmt.Sprintf("message %d", m.ID)
	if err := w.Tx.SetMessageState(ctx, m.ID, m.State, porIgnored, reason); err != nil {
		return PoRJudgement{}, err
	}
	if err := w.Tx.Transition(ctx, c.ICCID, []string{c.State}, c.State, "PoR ignored: "+reason, ref, nil); err != nil {
		return PoRJudgement{}, err
	}
	w.Counts.PoRsIgnored++
	p.log().Warn("PoR ignored: the message stays outstanding", "iccid", c.ICCID, "message", m.ID, "reason", reason)
	return PoRJudgement{Message: m, Ignored: reason}, nil
}

// porIgnored is the por_status of an outstanding message whose last PoR
// did not verify.
const porIgnored = "ignored"

// unmatched answers a PoR for an MSISDN without an outstanding message.
func (p *Party) unmatched(ctx context.Context, tx *ledger.Tx, msisdn string) (PoRJudgement, error) {
	var id int64
	var state string
	err := tx.QueryRow(ctx, `SELECT id, state FROM ota_messages WHERE msisdn = ? ORDER BY id DESC LIMIT 1`, msisdn).Scan(&id, &state)
	if errors.Is(err, sql.ErrNoRows) {
		return PoRJudgement{Reason: ReasonUnknownICCID, Detail: "no card of MSISDN " + msisdn + " was sent a message"}, nil
	}
	if err != nil {
		return PoRJudgement{}, err
	}
	return PoRJudgement{Reason: ReasonDuplicate, Detail: fmt.Sprintf("no message to MSISDN %s is outstanding (the last, message %d, is %s)", msisdn, id, state)}, nil
}

// judgeDelivery takes an SMSC delivery report without PoR, matched by our
// message ID: delivered (or unknown) waits for the PoR or the deadline;
// not delivered means the card never ran the command.
func (p *Party) judgeDelivery(ctx context.Context, w *Work, r PoRReport) (PoRJudgement, error) {
	m, why, err := w.matchDelivery(ctx, r)
	if err != nil || m == nil {
		return PoRJudgement{Reason: why, Detail: "no outstanding message matches " + r.MessageID}, err
	}
	return p.JudgeDelivery(ctx, w, m, r.Line, r.Status, r.Detail)
}

// JudgeDelivery judges the SMSC's delivery outcome (status, detail) of
// message m, known to the caller, when no PoR came with it: delivered or
// unknown leaves the deadline to decide; anything else means the message
// never reached the card (retry rules apply).
func (p *Party) JudgeDelivery(ctx context.Context, w *Work, m *ledger.Message, line int, status, detail string) (PoRJudgement, error) {
	switch status {
	case native.StatusDelivered, native.StatusUnknown:
		// Delivered but no PoR yet: the deadline decides.
		return PoRJudgement{Message: m, Verdict: ota.Verdict{Outcome: ota.OutcomePending, Reason: "SMSC: " + status}}, nil
	}
	v := ota.Verdict{Outcome: ota.OutcomeFailed, Reason: "SMSC: " + status + " " + detail}
	rcpt, err := p.applyVerdict(ctx, w, m, line, v, ota.Response{}, false)
	return PoRJudgement{Message: m, Verdict: v, Recipient: rcpt}, err
}

// matchDelivery finds the outstanding message of a delivery report by our
// message ID; without one, the reason code of the report's line: one of
// our messages already judged is DUPLICATE, anything else UNKNOWN_ICCID.
func (w *Work) matchDelivery(ctx context.Context, r PoRReport) (*ledger.Message, string, error) {
	id, ok := strings.CutPrefix(r.MessageID, w.P.Name+"-")
	if !ok {
		return nil, ReasonUnknownICCID, nil
	}
	n, err := strconv.ParseInt(id, 10, 64)
	if err != nil {
		return nil, ReasonUnknownICCID, nil
	}
	m, err := w.Tx.Message(ctx, n)
	switch {
	case errors.Is(err, ledger.ErrNotFound) || (err == nil && m.MSISDN != r.MSISDN):
		return nil, ReasonUnknownICCID, nil
	case err != nil:
		return nil, "", err
	case m.State != ledger.MsgSent:
		return nil, ReasonDuplicate, nil
	}
	return m, "", nil
}

func scanIDs(rows *sql.Rows) ([]int64, error) {
	defer rows.Close()
	var ids []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		ids = append(ids, id)
	}
	return ids, rows.Err()
}

// decodePoR decodes a PoR with the keys of the message's card.
func (p *Party) decodePoR(ctx context.Context, tx *ledger.Tx, m *ledger.Message, por []byte) (ota.Response, *ledger.Card, error) {
	c, err := tx.Card(ctx, m.ICCID)
	if err != nil {
		return ota.Response{}, nil, err
	}
	prof := p.Profiles[c.Profile]
	if prof == nil {
		return ota.Response{}, c, fmt.Errorf("profile %s not configured", c.Profile)
	}
	if _, err := ota.ParseTAR(m.TAR); err != nil {
		return ota.Response{}, c, err
	}
	// The OTA key set alone: a PoR needs no other secret opened.
	list, err := tx.SecretPair(ctx, c.ICCID, m.KeyIndex, SecKIc, SecKID)
	if err != nil {
		return ota.Response{}, c, err
	}
	resp, err := p.decodeSealed(prof, m, c.ICCID, list, por)
	return resp, c, err
}

// decodeSealed decodes a PoR for message m of card iccid with the card's
// sealed OTA key set list (KIc and KID, those the card holds), opened
// only for this. It reads nothing from the ledger: both the
// record-at-a-time judge and the set-based intake (on any core) use it.
func (p *Party) decodeSealed(prof *Profile, m *ledger.Message, iccid string, list []ledger.Secret, por []byte) (ota.Response, error) {
	tar, err := ota.ParseTAR(m.TAR)
	if err != nil {
		return ota.Response{}, err
	}
	keys, err := p.openSecrets(iccid, list)
	if err != nil {
		return ota.Response{}, err
	}
	defer wipe(keys)
	codec, err := ota.NewCodec(otaParams(prof, m.KVN, tar), ota.Keys{KIc: keys[SecKIc], KID: keys[SecKID]})
	if err != nil {
		return ota.Response{}, err
	}
	buf := append([]byte(nil), por...)
	return codec.DecodeResponse(buf)
}

// judgeVerified judges a PoR that verified against m (or an unsecured
// error PoR for it) and applies the verdict; c is m's card as decodePoR
// read it in this transaction.
func (p *Party) judgeVerified(ctx context.Context, w *Work, m *ledger.Message, c *ledger.Card, r PoRReport, resp ota.Response) (PoRJudgement, error) {
	v, err := p.verdictFor(ctx, m, c, resp)
	if err != nil {
		return PoRJudgement{}, err
	}
	rcpt, err := p.applyVerdictTo(ctx, w, m, c, r.Line, v, resp, true)
	return PoRJudgement{Message: m, Verdict: v, Recipient: rcpt}, err
}

// verdictFor judges a PoR taken as the card's answer to m: an update by
// what it proves executed (ota.CheckUpdate), anything else by checkSimple.
func (p *Party) verdictFor(ctx context.Context, m *ledger.Message, c *ledger.Card, resp ota.Response) (ota.Verdict, error) {
	prof := p.Profiles[c.Profile]
	if prof == nil {
		return ota.Verdict{}, fmt.Errorf("card %s: profile %s not configured", c.ICCID, c.Profile)
	}
	apdus, ef, err := p.script(m, c, prof)
	if err != nil {
		return ota.Verdict{}, err
	}
	tar, _ := ota.ParseTAR(m.TAR)
	exp := ota.Expectation{TAR: tar, Counter: uint64(m.Counter), Commands: len(apdus), EFIMSI: ef, Format: prof.OTA.Format}
	if m.Kind != msgUpdate {
		return checkSimple(exp, resp, nil), nil
	}
	sc, err := prof.OTA.Update(p.change(c, prof))
	if err != nil {
		return ota.Verdict{}, err
	}
	exp.IMSIWrite = sc.IMSIWrite
	if old, err := ota.EncodeIMSI(c.IMSI); err == nil && c.IMSI != c.NewIMSI {
		exp.OldEFIMSI = &old
	}
	return ota.CheckUpdate(exp, resp, nil), nil
}

// applyVerdict records the verdict on the message and moves the card; it
// returns the recipient to tell, if any. withPoR says the verdict comes
// from a PoR (resp) rather than from the SMSC's delivery report.
func (p *Party) applyVerdict(ctx context.Context, w *Work, m *ledger.Message, line int, verdict ota.Verdict, resp ota.Response, withPoR bool) (*Partner, error) {
	c, err := w.Tx.Card(ctx, m.ICCID)
	if err != nil {
		return nil, err
	}
	return p.applyVerdictTo(ctx, w, m, c, line, verdict, resp, withPoR)
}

// applyVerdictTo is applyVerdict with m's card c already read in the
// work's transaction (and not changed since).
func (p *Party) applyVerdictTo(ctx context.Context, w *Work, m *ledger.Message, c *ledger.Card, line int, verdict ota.Verdict, resp ota.Response, withPoR bool) (*Partner, error) {
	tx := w.Tx
	recipient := p.PartnerByCode(c.Recipient)
	prof := p.Profiles[c.Profile]
	ref := fmt.Sprintf("message %d", m.ID)
	log := p.log().With("iccid", c.ICCID, "message", m.ID, "outcome", verdict.Outcome.String())
	switch m.Kind {
	case msgReset:
		if err := tx.SetMessageState(ctx, m.ID, msgState(verdict.Outcome), verdict.Outcome.String(), verdict.Reason); err != nil {
			return nil, err
		}
		if verdict.Outcome == ota.OutcomeFailed {
			log.Warn("reset failed; the device re-attaches at its next power cycle", "reason", verdict.Reason)
		}
		if c.State == ledger.CardResetting {
			now := p.now().Format("2006-01-02T15:04:05Z")
			return nil, tx.Transition(ctx, c.ICCID, []string{ledger.CardResetting}, ledger.CardReleased, "reset sent: "+verdict.Outcome.String(), ref, &ledger.CardUpdate{Released: &now})
		}
		return nil, nil
	case msgProbe:
		if withPoR && securityError(resp.Status) {
			// The card refuses the old key: it uses the next pair.
			verdict.Outcome = ota.OutcomeUnknown
		}
		return recipient, p.judgeProbe(ctx, w, m, c, verdict)
	case msgRotate:
		return nil, p.judgeRotation(ctx, w, m, c, verdict, withPoR && resp.Status == ota.StatusMoreTime)
	}
	act := verdictAction(c.State, verdict.Outcome, c.Attempts, maxAttempts(recipient))
	if act == actPending {
		// The answer follows (status 0B/0C, or 08 "more time"): the
		// message stays outstanding; the deadline decides.
		log.Info("PoR: answer pending", "reason", verdict.Reason)
		return nil, tx.SetMessageState(ctx, m.ID, m.State, verdict.Outcome.String(), verdict.Reason)
	}
	if err := tx.SetMessageState(ctx, m.ID, msgState(verdict.Outcome), verdict.Outcome.String(), verdict.Reason); err != nil {
		return nil, err
	}
	if act == actMessage {
		log.Info("report for a card no longer moving", "state", c.State)
		return nil, nil
	}
	out := ledger.BatchRecord{BatchID: w.BatchID, Line: line, ICCID: c.ICCID, IMSI: c.NewIMSI}
	if recipient != nil {
		out.Partner = recipient.Name
	}
	switch act {
	case actConfirm:
		log.Info("IMSI change confirmed")
		// A 3b card keeps answering under its old pair until its reset
		// (the profile's key-index timing): the ledger's index stays the
		// one we hold keys for; the handover names the next.
		upd := &ledger.CardUpdate{IMSI: &c.NewIMSI}
		if err := tx.Transition(ctx, c.ICCID, []string{ledger.CardMoving}, ledger.CardConfirmed, porConfirmed, ref, upd); err != nil {
			return nil, err
		}
		out.Status = resultCompleted
	case actUnknown:
		log.Warn("IMSI change outcome unknown", "reason", verdict.Reason)
		if err := tx.Transition(ctx, c.ICCID, []string{ledger.CardMoving}, ledger.CardUnknown, verdict.Reason, ref, nil); err != nil {
			return nil, err
		}
		out.Status, out.Reason, out.Detail = resultUnknown, ReasonNoPoR, verdict.Reason
		if withPoR {
			out.Reason = ReasonOTAIncomplete // a PoR came; it proves too little
		}
	default:
		step := int64(1)
		if verdict.Outcome == ota.OutcomeCounterLow || verdict.Outcome == ota.OutcomeCounterHigh {
			step = p.OTA.CounterJump
		}
		what := "IMSI change failed"
		if verdict.Outcome == ota.OutcomeIncomplete {
			what = "EF_IMSI written, script incomplete"
		}
		if act == actRetry {
			// The script is idempotent: a card that took part of it
			// takes the whole again under the new counter.
			log.Warn(what+"; retrying with a new counter", "reason", verdict.Reason, "attempt", c.Attempts+1)
			if err := tx.Transition(ctx, c.ICCID, []string{ledger.CardMoving}, ledger.CardMoving, "retry: "+verdict.Reason, ref, &ledger.CardUpdate{Attempts: ledger.Int(c.Attempts + 1)}); err != nil {
				return nil, err
			}
			c.Attempts++
			if err := p.queueMessage(ctx, tx, c, prof, msgUpdate, w.BatchID, c.Attempts, step); err != nil {
				return nil, err
			}
			w.Counts.Messages++
			return nil, nil
		}
		written, err := p.imsiWritten(ctx, tx, c, verdict)
		if err != nil {
			return nil, err
		}
		log.Warn(what+"; retries exhausted: manual action", "reason", verdict.Reason, "imsi_written", written)
		if err := tx.Transition(ctx, c.ICCID, []string{ledger.CardMoving}, ledger.CardManual, "retries exhausted: "+verdict.Reason, ref, nil); err != nil {
			return nil, err
		}
		if written {
			// The card may hold the new IMSI: the recipient keeps it
			// out of reuse; an engineer decides.
			out.Status, out.Reason, out.Detail = resultUnknown, ReasonOTAIncomplete, "EF_IMSI written by an attempt, script incomplete: "+verdict.Reason
		} else {
			out.Status, out.Reason, out.Detail = resultFailed, ReasonOTAFailed, verdict.Reason
		}
	}
	if err := tx.PutBatchRecord(ctx, out); err != nil {
		return nil, err
	}
	return recipient, nil
}

// porConfirmed is the card event of an IMSI change a PoR confirmed.
const porConfirmed = "PoR confirmed"

// porAction is what a verdict on an IMSI update message does to its
// card and the recipient, whichever path applies it.
type porAction int

const (
	actPending porAction = iota // the message stays outstanding, nothing else changes
	actMessage                  // the message is judged; its card is no longer moving: nothing else
	actConfirm                  // confirmed, the recipient told completed
	actUnknown                  // unknown, the recipient told unknown
	actRetry                    // a new attempt under the next counter
	actManual                   // retries exhausted: an engineer decides, the recipient told
)

// verdictAction is the one rule of what outcome o of an IMSI update's PoR
// or delivery report does, for a card in cardState that made attempts of
// at most maxAttempts. It reads and writes nothing: the record-at-a-time
// judge and the set-based intake both decide by it.
func verdictAction(cardState string, o ota.Outcome, attempts, maxAttempts int) porAction {
	switch {
	case o == ota.OutcomePending:
		return actPending
	case cardState != ledger.CardMoving:
		return actMessage
	case o == ota.OutcomeConfirmed:
		return actConfirm
	case o == ota.OutcomeUnknown:
		return actUnknown
	case attempts < maxAttempts:
		return actRetry
	}
	return actManual
}

// maxAttempts is how many attempts a move to recipient makes before an
// engineer decides (its policy, else 3).
func maxAttempts(recipient *Partner) int {
	if recipient != nil && recipient.Policy.MaxAttempts > 0 {
		return recipient.Policy.MaxAttempts
	}
	return 3
}

// imsiWritten reports whether this verdict or an earlier attempt of the
// card's current move proved (or could not exclude) the EF_IMSI write.
func (p *Party) imsiWritten(ctx context.Context, tx *ledger.Tx, c *ledger.Card, v ota.Verdict) (bool, error) {
	if v.Outcome == ota.OutcomeIncomplete {
		return true, nil
	}
	var n int
	err := tx.QueryRow(ctx, `SELECT COUNT(*) FROM ota_messages WHERE iccid = ? AND kind = ? AND por_status = ?
		AND id >= (SELECT COALESCE(MAX(id), 0) FROM ota_messages WHERE iccid = ? AND kind = ? AND attempt = 1)`,
		c.ICCID, msgUpdate, ota.OutcomeIncomplete.String(), c.ICCID, msgUpdate).Scan(&n)
	return n > 0, err
}

// judgeProbe handles the answer to a 3b probe (a read-back under the old
// key after an unanswered switch). A verified PoR that still shows the old
// IMSI proves the card did not change: it goes back for a new attempt. A
// checksum failure or security error means the card moved to the next key
// already: switched, unconfirmed — escalated, never resent blindly.
func (p *Party) judgeProbe(ctx context.Context, w *Work, m *ledger.Message, c *ledger.Card, v ota.Verdict) error {
	tx := w.Tx
	ref := fmt.Sprintf("probe %d", m.ID)
	if err := tx.SetMessageState(ctx, m.ID, msgState(v.Outcome), "", v.Reason); err != nil {
		return err
	}
	if c.State != ledger.CardUnknown {
		return nil
	}
	data := v.Result.Data
	old, _ := ota.EncodeIMSI(c.IMSI)
	nw, _ := ota.EncodeIMSI(c.NewIMSI)
	switch {
	case v.Outcome == ota.OutcomeUnknown || v.Outcome == ota.OutcomeCounterLow:
		return tx.Transition(ctx, c.ICCID, nil, ledger.CardManual, "switched, unconfirmed: "+v.Reason, ref, nil)
	case len(data) >= 9 && string(data[:9]) == string(old[:]):
		return tx.Transition(ctx, c.ICCID, nil, ledger.CardActive, "probe: card unchanged", ref, &ledger.CardUpdate{NewIMSI: ledger.Str("")})
	case len(data) >= 9 && string(data[:9]) == string(nw[:]):
		return tx.Transition(ctx, c.ICCID, nil, ledger.CardManual, "probe: new IMSI under the old key: switched, unconfirmed", ref, nil)
	}
	return tx.Transition(ctx, c.ICCID, nil, ledger.CardManual, "probe inconclusive: "+v.Reason, ref, nil)
}

// securityError reports PoR statuses by which a card says a command's
// security did not verify (wrong keys), as opposed to a command failure.
func securityError(s ota.Status) bool {
	switch s {
	case ota.StatusChecksumFailed, ota.StatusCipheringError, ota.StatusUnidentifiedSecurity:
		return true
	}
	return false
}

// checkSimple judges a message that is not an IMSI update (reset,
// key-index, rotation) by the same rules: a PoR error status means the
// card did not run it (08, 0B, 0C: the answer follows); PoR OK confirms
// when every command executed and the last completed (ota.SWCompleted).
func checkSimple(exp ota.Expectation, r ota.Response, derr error) ota.Verdict {
	if derr != nil {
		return ota.Verdict{Outcome: ota.OutcomeUnknown, Reason: derr.Error()}
	}
	switch r.Status {
	case ota.StatusOK:
	case ota.StatusMoreTime, ota.StatusViaSubmit, ota.StatusViaUSSD:
		return ota.Verdict{Outcome: ota.OutcomePending, Reason: "status " + r.Status.String()}
	default:
		return ota.Verdict{Outcome: ota.OutcomeFailed, Reason: "status " + r.Status.String() + ": not executed"}
	}
	res, err := ota.ParseCompactResponse(r.Data)
	if exp.Format == ota.FormatExpanded {
		res, err = ota.ParseExpandedResponse(r.Data)
	}
	if err != nil {
		return ota.Verdict{Outcome: ota.OutcomeUnknown, Reason: err.Error()}
	}
	if res.Executed != exp.Commands || !ota.SWCompleted(res.LastSW) {
		return ota.Verdict{Outcome: ota.OutcomeFailed, Reason: fmt.Sprintf("%d of %d commands, last SW %04x", res.Executed, exp.Commands, res.LastSW), Result: res}
	}
	return ota.Verdict{Outcome: ota.OutcomeConfirmed, Reason: "PoR OK", Result: res}
}

func msgState(o ota.Outcome) string {
	switch o {
	case ota.OutcomeConfirmed:
		return ledger.MsgConfirmed
	case ota.OutcomeUnknown:
		return ledger.MsgUnknown
	case ota.OutcomePending:
		return ledger.MsgSent
	}
	return ledger.MsgFailed
}

// renderOutcomes writes the imsi-result of a report batch (the records
// with an outcome) for one recipient. It is renderIMSIResult; outcomes
// are its only records.
var renderOutcomes = renderIMSIResult
