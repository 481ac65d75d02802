package processor

import (
	"context"
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

// Apply implements FileStep.
func (s *OTAReport) Apply(ctx context.Context, w *Work) error {
	smsc := s.SMSC
	if smsc == nil {
		smsc = w.Partner
	}
	recipients := map[string]*Partner{}
	err := w.eachRecord(ctx, nil, func(rec *native.Record) error {
		m, err := w.matchReport(ctx, rec)
		if err != nil {
			return err
		}
		if m == nil {
			w.Counts.Rejected++
			return w.Tx.PutBatchRecord(ctx, ledger.BatchRecord{BatchID: w.BatchID, Line: rec.Line, Status: recordRejected, Reason: ReasonUnknownICCID,
				Detail: "no outstanding message matches " + rec.Get(native.FieldMessageID), Partner: ""})
		}
		w.Counts.Accepted++
		r, err := w.P.judge(ctx, w, m, rec)
		if r != nil {
			recipients[r.Name] = r
		}
		return err
	})
	if err != nil {
		return err
	}
	for _, r := range recipients {
		if _, err := w.Plan(ctx, "imsi-result", native.IMSIResult.Name, r, false); err != nil {
			return err
		}
	}
	if w.Counts.Messages > 0 {
		if _, err := w.Plan(ctx, "ota-batch", native.OTABatch.Name, smsc, false); err != nil {
			return err
		}
	}
	return nil
}

// matchReport finds the message a report record is about: by the PoR's
// TAR and counter among the MSISDN's outstanding messages, or, for a
// delivery failure without PoR, by our message ID.
func (w *Work) matchReport(ctx context.Context, rec *native.Record) (*ledger.Message, error) {
	msisdn := rec.Get(native.FieldMSISDN)
	por, _ := rec.Hex(native.FieldPoR)
	if len(por) == 0 {
		id, ok := strings.CutPrefix(rec.Get(native.FieldMessageID), w.P.Name+"-")
		if !ok {
			return nil, nil
		}
		n, err := strconv.ParseInt(id, 10, 64)
		if err != nil {
			return nil, nil
		}
		m, err := w.Tx.Message(ctx, n)
		if errors.Is(err, ledger.ErrNotFound) || (err == nil && (m.MSISDN != msisdn || m.State != ledger.MsgSent)) {
			return nil, nil
		}
		return m, err
	}
	// The TAR is always in clear (offset 6 of the response packet); the
	// counter may be ciphered, so try the MSISDN's outstanding messages
	// of that TAR.
	t, err := ota.ResponseTAR(por)
	if err != nil {
		return nil, nil
	}
	tar := t.String()
	// The state is checked here, not in SQL: with it there, SQLite
	// searches by the state index (every sent message) instead of the
	// (MSISDN, TAR) one.
	rows, err := w.Tx.Query(ctx, `SELECT id, state FROM ota_messages WHERE msisdn = ? AND tar = ? ORDER BY id DESC`, msisdn, tar)
	if err != nil {
		return nil, err
	}
	var ids []int64
	for rows.Next() {
		var id int64
		var state string
		if err := rows.Scan(&id, &state); err != nil {
			rows.Close()
			return nil, err
		}
		if state == ledger.MsgSent {
			ids = append(ids, id)
		}
	}
	rows.Close()
	for _, id := range ids {
		m, err := w.Tx.Message(ctx, id)
		if err != nil {
			return nil, err
		}
		resp, _, err := w.P.decodePoR(ctx, w.Tx, m, por)
		if err == nil && (resp.Unsecured || resp.Counter == uint64(m.Counter)) {
			return m, nil
		}
		if errors.Is(err, ota.ErrChecksum) && len(ids) == 1 {
			return m, nil // judged below as unknown
		}
	}
	return nil, nil
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
	tar, err := ota.ParseTAR(m.TAR)
	if err != nil {
		return ota.Response{}, c, err
	}
	keys, err := p.cardSecrets(ctx, tx, c.ICCID, m.KeyIndex)
	if err != nil {
		return ota.Response{}, c, err
	}
	defer wipe(keys)
	codec, err := ota.NewCodec(otaParams(prof, m.KVN, tar), ota.Keys{KIc: keys[SecKIc], KID: keys[SecKID]})
	if err != nil {
		return ota.Response{}, c, err
	}
	buf := append([]byte(nil), por...)
	resp, err := codec.DecodeResponse(buf)
	return resp, c, err
}

// judge applies the confirmation rule to one report record and moves the
// card; it returns the recipient to tell, if any.
func (p *Party) judge(ctx context.Context, w *Work, m *ledger.Message, rec *native.Record) (*Partner, error) {
	tx := w.Tx
	c, err := tx.Card(ctx, m.ICCID)
	if err != nil {
		return nil, err
	}
	recipient := p.PartnerByCode(c.Recipient)
	por, _ := rec.Hex(native.FieldPoR)
	prof := p.Profiles[c.Profile]
	var verdict ota.Verdict
	var resp ota.Response
	var derr error
	if len(por) == 0 {
		switch rec.Get(native.FieldStatus) {
		case native.StatusDelivered, native.StatusUnknown:
			// Delivered but no PoR yet: the deadline decides.
			return nil, nil
		default:
			// Never reached the card: it did not change.
			verdict = ota.Verdict{Outcome: ota.OutcomeFailed, Reason: "SMSC: " + rec.Get(native.FieldStatus) + " " + rec.Get(native.FieldDetail)}
		}
	} else {
		resp, _, derr = p.decodePoR(ctx, tx, m, por)
		_, ef, serr := p.script(m, c, prof)
		if serr != nil {
			return nil, serr
		}
		apdus, _, _ := p.script(m, c, prof)
		tar, _ := ota.ParseTAR(m.TAR)
		exp := ota.Expectation{TAR: tar, Counter: uint64(m.Counter), Commands: len(apdus), EFIMSI: ef, Format: prof.OTA.Format}
		switch m.Kind {
		case msgUpdate:
			verdict = ota.CheckUpdate(exp, resp, derr)
		default:
			verdict = checkSimple(exp, resp, derr)
		}
	}
	ref := fmt.Sprintf("message %d", m.ID)
	log := p.log().With("iccid", c.ICCID, "message", m.ID, "outcome", verdict.Outcome.String())
	switch m.Kind {
	case msgReset:
		if err := tx.SetMessageState(ctx, m.ID, msgState(verdict.Outcome), "", verdict.Reason); err != nil {
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
		if len(por) > 0 && derr == nil && securityError(resp.Status) {
			// The card refuses the old key: it uses the next pair.
			verdict.Outcome = ota.OutcomeUnknown
		}
		return recipient, p.judgeProbe(ctx, w, m, c, verdict)
	case msgRotate:
		return nil, p.judgeRotation(ctx, w, m, c, verdict, len(por) > 0 && derr == nil && resp.Status == ota.StatusMoreTime)
	}
	if c.State != ledger.CardMoving {
		log.Info("report for a card no longer moving", "state", c.State)
		return nil, tx.SetMessageState(ctx, m.ID, msgState(verdict.Outcome), "", verdict.Reason)
	}
	if err := tx.SetMessageState(ctx, m.ID, msgState(verdict.Outcome), "", verdict.Reason); err != nil {
		return nil, err
	}
	out := ledger.BatchRecord{BatchID: w.BatchID, Line: rec.Line, ICCID: c.ICCID, IMSI: c.NewIMSI}
	if recipient != nil {
		out.Partner = recipient.Name
	}
	maxAttempts := 3
	if recipient != nil && recipient.Policy.MaxAttempts > 0 {
		maxAttempts = recipient.Policy.MaxAttempts
	}
	switch verdict.Outcome {
	case ota.OutcomeConfirmed:
		log.Info("IMSI change confirmed")
		// A 3b card keeps answering under its old pair until its reset
		// (the profile's key-index timing): the ledger's index stays the
		// one we hold keys for; the handover names the next.
		upd := &ledger.CardUpdate{IMSI: &c.NewIMSI}
		if err := tx.Transition(ctx, c.ICCID, []string{ledger.CardMoving}, ledger.CardConfirmed, "PoR confirmed", ref, upd); err != nil {
			return nil, err
		}
		out.Status = resultCompleted
	case ota.OutcomePending:
		return nil, nil
	case ota.OutcomeUnknown:
		log.Warn("IMSI change outcome unknown", "reason", verdict.Reason)
		if err := tx.Transition(ctx, c.ICCID, []string{ledger.CardMoving}, ledger.CardUnknown, verdict.Reason, ref, nil); err != nil {
			return nil, err
		}
		out.Status, out.Reason, out.Detail = resultUnknown, ReasonNoPoR, verdict.Reason
	default:
		step := int64(1)
		if verdict.Outcome == ota.OutcomeCounterLow || verdict.Outcome == ota.OutcomeCounterHigh {
			step = p.OTA.CounterJump
		}
		if c.Attempts < maxAttempts {
			log.Warn("IMSI change failed; retrying with a new counter", "reason", verdict.Reason, "attempt", c.Attempts+1)
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
		log.Warn("IMSI change failed; retries exhausted: manual action", "reason", verdict.Reason)
		if err := tx.Transition(ctx, c.ICCID, []string{ledger.CardMoving}, ledger.CardManual, "retries exhausted: "+verdict.Reason, ref, nil); err != nil {
			return nil, err
		}
		out.Status, out.Reason, out.Detail = resultFailed, ReasonOTAFailed, verdict.Reason
	}
	if err := tx.PutBatchRecord(ctx, out); err != nil {
		return nil, err
	}
	return recipient, nil
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

// checkSimple judges a message that is not an IMSI update: PoR OK with
// every command executed.
func checkSimple(exp ota.Expectation, r ota.Response, derr error) ota.Verdict {
	if derr != nil {
		return ota.Verdict{Outcome: ota.OutcomeUnknown, Reason: derr.Error()}
	}
	if r.Status != ota.StatusOK {
		return ota.Verdict{Outcome: ota.OutcomeFailed, Reason: "status " + r.Status.String()}
	}
	res, err := ota.ParseCompactResponse(r.Data)
	if exp.Format == ota.FormatExpanded {
		res, err = ota.ParseExpandedResponse(r.Data)
	}
	if err != nil {
		return ota.Verdict{Outcome: ota.OutcomeUnknown, Reason: err.Error()}
	}
	if res.Executed != exp.Commands || (res.LastSW != 0x9000 && res.LastSW>>8 != 0x61 && res.LastSW>>8 != 0x91) {
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
