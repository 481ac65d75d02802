package processor

import (
	"context"
	"encoding/hex"
	"strings"

	"resub/formats/native"
	"resub/processor/ledger"
)

// Received records what deliver_sm brought, in one transaction that
// commits before any of them is answered: each is journaled; a receipt
// is recorded on its segment (one saying the message was not delivered,
// with no PoR yet, is judged as a delivery failure); a PoR is matched by
// (MSISDN, TAR, counter) and judged by the rules of an ota-report line.
func (r *SMPPRun) Received(ctx context.Context, in []SMPPInbound) error {
	return r.P.Ledger.InTx(ctx, func(tx *ledger.Tx) error {
		w := r.work(tx)
		for i := range in {
			if err := r.receive(ctx, w, &in[i]); err != nil {
				return err
			}
		}
		return r.requeueRetries(ctx, w)
	})
}

func (r *SMPPRun) receive(ctx context.Context, w *Work, x *SMPPInbound) error {
	tx := w.Tx
	msisdn := strings.TrimPrefix(x.From, "+")
	ev := ledger.SMPPEvent{Partner: r.SMSC.Name, MSISDN: msisdn, Data: hex.EncodeToString(x.UD)}
	switch {
	case x.Bad != "":
		r.Counts.Bad++
		ev.Kind, ev.Outcome = "bad", x.Bad
		_, err := tx.AddSMPPEvent(ctx, ev)
		return err
	case x.ReceiptID != "":
		return r.receipt(ctx, w, x, ev)
	}
	ev.Kind = "mo"
	id, err := tx.AddSMPPEvent(ctx, ev)
	if err != nil {
		return err
	}
	if !isPoR(x.UD) {
		r.Counts.Ignored++
		r.P.log().Info("mobile-originated message that is no PoR: recorded, ignored", "from", msisdn, "event", id)
		return tx.SetSMPPEventOutcome(ctx, id, 0, "ignored: no response packet")
	}
	j, err := w.P.JudgePoR(ctx, w, PoRReport{MSISDN: msisdn, PoR: x.UD, Status: native.StatusDelivered, Line: int(id)})
	if err != nil {
		return err
	}
	switch {
	case j.Message == nil:
		r.Counts.Unmatched++
		r.P.log().Warn("PoR that matches no outstanding message: recorded, changes nothing", "from", msisdn, "event", id, "reason", j.Reason)
		return tx.SetSMPPEventOutcome(ctx, id, 0, "unmatched: "+j.Reason)
	case j.Ignored != "":
		// Recorded on the message and the card by the judge; the
		// message stays outstanding.
		r.Counts.PoRs[SMPPPoRIgnored]++
		return tx.SetSMPPEventOutcome(ctx, id, j.Message.ID, "PoR ignored: "+j.Ignored)
	}
	m := j.Message
	before := m.State
	// The state the judge left the message in (its column alone).
	var verdict string
	if err := tx.QueryRow(ctx, `SELECT state FROM ota_messages WHERE id = ?`, m.ID).Scan(&verdict); err != nil {
		return err
	}
	if verdict == before {
		verdict = "pending"
	}
	r.Counts.PoRs[verdict]++
	return tx.SetSMPPEventOutcome(ctx, id, m.ID, "PoR: "+verdict)
}

// SMPPPoRIgnored is the verdict key of SMPPCounts.PoRs for a PoR that did
// not verify and changed nothing.
const SMPPPoRIgnored = "ignored"

// receipt records a delivery receipt on its segment.
func (r *SMPPRun) receipt(ctx context.Context, w *Work, x *SMPPInbound, ev ledger.SMPPEvent) error {
	tx := w.Tx
	state := strings.ToUpper(x.ReceiptState)
	r.Counts.Receipts[state]++
	ev.Kind, ev.SMSCID, ev.State = "receipt", x.ReceiptID, state
	evID, err := tx.AddSMPPEvent(ctx, ev)
	if err != nil {
		return err
	}
	return r.applyReceipt(ctx, w, evID, x.ReceiptID, state, x.ReceiptErr, true)
}

// applyReceipt records journaled receipt evID on the segment the SMSC
// gave that message_id. A receipt that overtook the submit_sm_resp it is
// about (two sessions) stays "unmatched" until the response is recorded.
func (r *SMPPRun) applyReceipt(ctx context.Context, w *Work, evID int64, smscID, state, errCode string, first bool) error {
	tx := w.Tx
	x := &SMPPInbound{ReceiptID: smscID, ReceiptState: state, ReceiptErr: errCode}
	id, seq, err := tx.SegmentBySMSCID(ctx, r.SMSC.Name, x.ReceiptID)
	if err == ledger.ErrNotFound {
		if first {
			r.P.log().Info("receipt for a message_id not recorded yet: kept until its response is", "smsc_id", x.ReceiptID, "state", state)
		}
		return tx.SetSMPPEventOutcome(ctx, evID, 0, "unmatched")
	}
	if err != nil {
		return err
	}
	segState := ""
	switch state {
	case "DELIVRD":
		segState = ledger.SegDelivered
	case "UNDELIV", "EXPIRED", "REJECTD", "DELETED":
		segState = ledger.SegUndelivered
	}
	if segState == "" {
		// ENROUTE, ACCEPTD, UNKNOWN: noted, nothing settled.
		_, err := tx.Exec(ctx, `UPDATE smpp_segments SET receipt = ? WHERE message_id = ? AND seq = ?`, state, id, seq)
		if err != nil {
			return err
		}
		return tx.SetSMPPEventOutcome(ctx, evID, id, "noted")
	}
	if err := tx.SetSegmentReceipt(ctx, id, seq, segState, state); err != nil {
		return err
	}
	if segState == ledger.SegDelivered {
		// The usual case, in one statement: the message is delivered
		// once every segment is.
		if err := tx.SettleDelivered(ctx, id); err != nil {
			return err
		}
		return tx.SetSMPPEventOutcome(ctx, evID, id, "delivered")
	}
	states, err := tx.SegmentStates(ctx, id)
	if err != nil {
		return err
	}
	delivered := 0
	for _, s := range states {
		if s == ledger.SegDelivered {
			delivered++
		}
	}
	switch {
	case segState == ledger.SegUndelivered:
		if err := tx.SetSMPPState(ctx, id, ledger.SubUndelivered, "receipt "+state+" err:"+x.ReceiptErr); err != nil {
			return err
		}
		m, err := tx.Message(ctx, id)
		if err != nil {
			return err
		}
		if m.State != ledger.MsgSent {
			// A PoR (or the deadline) already settled it.
			return tx.SetSMPPEventOutcome(ctx, evID, id, "undelivered; already "+m.State)
		}
		status := native.StatusFailed
		if state == "EXPIRED" {
			status = native.StatusExpired
		}
		if err := r.judgeFailure(ctx, w, m, evID, status, "SMSC receipt "+state+" err:"+x.ReceiptErr); err != nil {
			return err
		}
		return tx.SetSMPPEventOutcome(ctx, evID, id, "not delivered")
	case delivered == len(states):
		if err := tx.SetSMPPState(ctx, id, ledger.SubDelivered, ""); err != nil {
			return err
		}
	}
	return tx.SetSMPPEventOutcome(ctx, evID, id, "delivered")
}

// judgeFailure judges a message that never reached its card (refused by
// the SMSC, not delivered, or not submitted within its validity), as an
// ota-report line with that status and no PoR: the retry rules apply.
func (r *SMPPRun) judgeFailure(ctx context.Context, w *Work, m *ledger.Message, line int64, status, detail string) error {
	if m.State != ledger.MsgSent && m.State != ledger.MsgReserved {
		return nil
	}
	_, err := r.P.JudgeDelivery(ctx, w, m, int(line), status, detail)
	return err
}

// isPoR reports whether user data carries a response packet: a UDH with
// the response packet identifier (IEI 0x71).
func isPoR(ud []byte) bool {
	if len(ud) < 3 || int(ud[0])+1 > len(ud) {
		return false
	}
	h := ud[1 : 1+int(ud[0])]
	for len(h) >= 2 {
		if h[0] == 0x71 {
			return true
		}
		n := 2 + int(h[1])
		if n > len(h) {
			return false
		}
		h = h[n:]
	}
	return false
}
