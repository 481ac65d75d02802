package processor

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"resub/formats/native"
	"resub/processor/ledger"
)

// The donor's OTA messages to an SMSC over SMPP. Instead of an ota-batch
// file, the messages a step queues for such an SMSC wait in the ledger's
// submission queue; an SMPP run takes the due ones segment by segment,
// records every outcome, and hands receipts and PoRs to the same judge
// the ota-report path uses.
//
// A message is recorded as being submitted (and as sent, its PoR
// deadline running) before its first submit_sm goes out: a crash between
// sending and recording leaves it "unknown", never sent again under the
// same counter.

// SMPPSegment is one submit_sm to send.
type SMPPSegment struct {
	Message  int64
	Seq      int
	MSISDN   string
	UD       []byte
	Validity time.Duration
	Priority byte
	Last     bool
}

// SMPPResult is what became of a submitted segment.
type SMPPResult struct {
	Message int64
	Seq     int
	// Status is the submit_sm_resp command_status (0 accepted) and
	// StatusText its name.
	Status     uint32
	StatusText string
	SMSCID     string
	Unknown    bool // sent; no response
	NotSent    bool // handed out, never written
}

// SMPPInbound is one deliver_sm as received.
type SMPPInbound struct {
	From, To string
	ESMClass byte
	UD       []byte
	// A receipt: the SMSC's message_id, its state and error code.
	ReceiptID, ReceiptState, ReceiptErr string
	Bad                                 string
}

// SMPPCounts are what an SMPP run recorded.
type SMPPCounts struct {
	Submitted, Rejected, Unknown, Expired, Requeued int
	Receipts                                        map[string]int
	PoRs                                            map[string]int // by verdict
	Unmatched, Ignored, Bad                         int
	Retries                                         int
}

// SMPPRun is one run of the SMPP submission to one SMSC: its ledger
// batch collects the outcomes it judges (answered to recipients in
// imsi-result files when it closes).
type SMPPRun struct {
	P      *Party
	SMSC   *Partner
	Job    string
	Counts SMPPCounts

	batchID int64
	// after pages through the queue within one pass.
	after int64
}

// queueSMPP puts a batch's reserved messages in the submission queue of
// an SMPP partner (in place of an ota-batch file).
func (p *Party) queueSMPP(ctx context.Context, tx *ledger.Tx, smsc *Partner, batchID int64) error {
	n, err := tx.QueueSMPP(ctx, smsc.Name, batchID, smsc.Policy.PerNightCap)
	if err == nil && n > 0 {
		p.log().Info("OTA messages queued for SMPP submission", "partner", smsc.Name, "batch", batchID, "messages", n)
	}
	return err
}

// OpenSMPPRun starts a run: what an earlier run left is settled first
// (segments recorded as being submitted become unknown; its batch is
// closed and its answers planned).
func (p *Party) OpenSMPPRun(ctx context.Context, job string, smsc *Partner) (*SMPPRun, error) {
	if smsc == nil || !smsc.SMPP {
		return nil, fmt.Errorf("%s: the partner is not an SMSC over SMPP", job)
	}
	r := &SMPPRun{P: p, SMSC: smsc, Job: job, Counts: SMPPCounts{Receipts: map[string]int{}, PoRs: map[string]int{}}}
	// Runs cut short: close their batches.
	rows, err := p.Ledger.Query(ctx, `SELECT id FROM batches WHERE job = ? AND kind = ? AND status = ? ORDER BY id`, job, smppBatchKind, ledger.BatchOpen)
	if err != nil {
		return nil, err
	}
	var stale []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return nil, err
		}
		stale = append(stale, id)
	}
	rows.Close()
	for _, id := range stale {
		if err := p.closeSMPPBatch(ctx, job, id, 0); err != nil {
			return nil, err
		}
	}
	err = p.Ledger.InTx(ctx, func(tx *ledger.Tx) error {
		id, err := tx.CreateBatch(ctx, &ledger.Batch{Job: job, Partner: smsc.Name, Kind: smppBatchKind})
		if err != nil {
			return err
		}
		r.batchID = id
		ids, err := tx.SegmentsSubmitting(ctx, smsc.Name)
		if err != nil {
			return err
		}
		w := r.work(tx)
		for _, mid := range ids {
			p.log().Warn("a submission was cut short between sending and recording: its outcome is unknown; it waits for a receipt or PoR until its deadline", "message", mid)
			if err := tx.MarkSubmittingUnknown(ctx, mid); err != nil {
				return err
			}
			if err := r.settle(ctx, w, mid, 0); err != nil {
				return err
			}
		}
		return r.requeueRetries(ctx, w)
	})
	if err != nil {
		return nil, err
	}
	return r, nil
}

// smppBatchKind is the kind of an SMPP run's batch.
const smppBatchKind = "smpp"

// BatchID is the run's batch.
func (r *SMPPRun) BatchID() int64 { return r.batchID }

func (r *SMPPRun) work(tx *ledger.Tx) *Work {
	return &Work{P: r.P, Tx: tx, Partner: r.SMSC, BatchID: r.batchID, Job: r.Job, Source: "batch:" + strconv.FormatInt(r.batchID, 10)}
}

// requeueRetries queues the messages the judge reserved for retries in
// this run's batch.
func (r *SMPPRun) requeueRetries(ctx context.Context, w *Work) error {
	if w.Counts.Messages == 0 {
		return nil
	}
	r.Counts.Retries += w.Counts.Messages
	return r.P.queueSMPP(ctx, w.Tx, r.SMSC, r.batchID)
}

// Next hands out the segments of due queued messages, up to about n
// segments (a message's segments stay together), each recorded as being
// submitted before it is returned. A message whose validity passed
// before it could be submitted is judged as not delivered.
func (r *SMPPRun) Next(ctx context.Context, n int) ([]SMPPSegment, error) {
	p := r.P
	now := p.now()
	type built struct {
		m    *ledger.Message
		segs [][]byte
		prof *Profile
	}
	var out []built
	var expired []*ledger.Message
	total := 0
	for total < n {
		var qs []ledger.SMPPMessage
		var page []ledger.BatchMessage
		err := p.Ledger.InTx(ctx, func(tx *ledger.Tx) error {
			var err error
			qs, page, err = tx.QueuedSMPPPage(ctx, r.SMSC.Name, r.after, max(n, 64), []string{SecKIc, SecKID})
			return err
		})
		if err != nil {
			return nil, err
		}
		if len(page) == 0 {
			r.after = 0 // the next pass starts from the beginning again
			break
		}
		for i, bm := range page {
			q, m, c := qs[i], bm.Msg, bm.Card
			r.after = q.MessageID
			prof := p.Profiles[c.Profile]
			if prof == nil {
				return nil, fmt.Errorf("message %d: card %s: profile %s not configured", m.ID, c.ICCID, c.Profile)
			}
			from := day(q.Created).AddDate(0, 0, q.Night)
			if from.Before(q.Created) {
				from = q.Created
			}
			if now.Before(from) || !inWindow(prof.Window, now) {
				continue // not due yet
			}
			if now.After(from.Add(prof.Validity)) {
				expired = append(expired, m)
				continue
			}
			msg, err := p.buildMessageFrom(m, c, bm.Secrets)
			if err != nil {
				return nil, fmt.Errorf("message %d to %s: %w", m.ID, m.ICCID, err)
			}
			out = append(out, built{m: m, segs: msg.Segments, prof: prof})
			total += len(msg.Segments)
			if total >= n {
				break
			}
		}
	}
	if len(out) == 0 && len(expired) == 0 {
		return nil, nil
	}
	var claimed map[int64]bool
	err := p.Ledger.InTx(ctx, func(tx *ledger.Tx) error {
		w := r.work(tx)
		starts := make([]ledger.SMPPStart, len(out))
		for i, b := range out {
			starts[i] = ledger.SMPPStart{ID: b.m.ID, Segments: len(b.segs), Deadline: now.Add(b.prof.Validity + p.OTA.PoRMargin)}
		}
		var err error
		if claimed, err = tx.StartSMPPSubmits(ctx, starts); err != nil {
			return err
		}
		for _, m := range expired {
			if ok, err := tx.MoveSMPPState(ctx, m.ID, ledger.SubQueued, ledger.SubExpired, "not submitted within its validity"); err != nil {
				return err
			} else if !ok {
				continue // another run took it
			}
			ev, err := tx.AddSMPPEvent(ctx, ledger.SMPPEvent{Partner: r.SMSC.Name, Kind: "expired", MSISDN: m.MSISDN, MessageID: m.ID})
			if err != nil {
				return err
			}
			if err := r.judgeFailure(ctx, w, m, ev, native.StatusExpired, "not submitted within its validity"); err != nil {
				return err
			}
			r.Counts.Expired++
		}
		return r.requeueRetries(ctx, w)
	})
	if err != nil {
		return nil, err
	}
	var segs []SMPPSegment
	for _, b := range out {
		if !claimed[b.m.ID] {
			continue // another run took it
		}
		for i, s := range b.segs {
			segs = append(segs, SMPPSegment{Message: b.m.ID, Seq: i + 1, MSISDN: b.m.MSISDN, UD: s, Validity: b.prof.Validity, Priority: 1, Last: i == len(b.segs)-1})
		}
	}
	return segs, nil
}

// inWindow reports whether t (UTC) lies in a submission window
// "HH:MM-HH:MM" (which may wrap past midnight; empty: always).
func inWindow(win string, t time.Time) bool {
	a, b, ok := strings.Cut(win, "-")
	if !ok {
		return true
	}
	ta, err1 := time.Parse("15:04", a)
	tb, err2 := time.Parse("15:04", b)
	if err1 != nil || err2 != nil {
		return true
	}
	from := ta.Hour()*60 + ta.Minute()
	to := tb.Hour()*60 + tb.Minute()
	t = t.UTC()
	now := t.Hour()*60 + t.Minute()
	if from <= to {
		return now >= from && now <= to
	}
	return now >= from || now <= to
}

// Submitted records submit outcomes; a message whose segments all have
// one is settled: submitted, failed before reaching the card (judged, so
// the retry rules apply), unknown, or back in the queue when nothing of
// it went out.
func (r *SMPPRun) Submitted(ctx context.Context, rs []SMPPResult) error {
	return r.P.Ledger.InTx(ctx, func(tx *ledger.Tx) error {
		w := r.work(tx)
		touched := map[int64]uint32{}
		odd := map[int64]bool{} // unknown or not sent
		var order []int64
		outs := make([]ledger.SegmentOutcome, 0, len(rs))
		for _, x := range rs {
			if x.Unknown || x.NotSent {
				odd[x.Message] = true
			}
			state := ledger.SegSubmitted
			switch {
			case x.NotSent:
				state = ledger.SegUnsent
			case x.Unknown:
				state = ledger.SegUnknown
				r.Counts.Unknown++
			case x.Status != 0:
				state = ledger.SegRejected
				r.Counts.Rejected++
			default:
				r.Counts.Submitted++
			}
			outs = append(outs, ledger.SegmentOutcome{MessageID: x.Message, Seq: x.Seq, State: state, SMSCID: x.SMSCID, Status: x.Status})
			if _, ok := touched[x.Message]; !ok {
				order = append(order, x.Message)
			}
			if x.Status != 0 {
				touched[x.Message] = x.Status
			} else if _, ok := touched[x.Message]; !ok {
				touched[x.Message] = 0
			}
		}
		if err := tx.SetSegments(ctx, outs); err != nil {
			return err
		}
		// Messages all of whose outcomes in this batch are acceptances
		// are settled set-wise; the others one by one.
		var ok []int64
		for _, id := range order {
			if touched[id] == 0 && !odd[id] {
				ok = append(ok, id)
				continue
			}
			if err := r.settle(ctx, w, id, touched[id]); err != nil {
				return err
			}
		}
		if _, err := tx.SettleSubmitted(ctx, ok); err != nil {
			return err
		}
		// Receipts that came before these responses were recorded.
		var ids []string
		for _, x := range rs {
			if x.SMSCID != "" {
				ids = append(ids, x.SMSCID)
			}
		}
		early, err := tx.UnmatchedReceipts(ctx, r.SMSC.Name, ids)
		if err != nil {
			return err
		}
		for _, e := range early {
			if err := r.applyReceipt(ctx, w, e.ID, e.SMSCID, e.State, e.Outcome, false); err != nil {
				return err
			}
		}
		return r.requeueRetries(ctx, w)
	})
}

// settle gives a message its submission state once every segment has
// an outcome.
func (r *SMPPRun) settle(ctx context.Context, w *Work, id int64, status uint32) error {
	tx := w.Tx
	states, err := tx.SegmentStates(ctx, id)
	if err != nil {
		return err
	}
	count := map[string]int{}
	for _, s := range states {
		count[s]++
	}
	switch {
	case count[ledger.SegSubmitting] > 0:
		return nil // more to come
	case count[ledger.SegUnsent] == len(states):
		r.Counts.Requeued++
		return tx.RequeueSMPP(ctx, id)
	case count[ledger.SegRejected] > 0:
		m, err := tx.Message(ctx, id)
		if err != nil {
			return err
		}
		detail := fmt.Sprintf("submit_sm refused: 0x%08x", status)
		if err := tx.SetSMPPState(ctx, id, ledger.SubFailed, detail); err != nil {
			return err
		}
		ev, err := tx.AddSMPPEvent(ctx, ledger.SMPPEvent{Partner: r.SMSC.Name, Kind: "rejected", MSISDN: m.MSISDN, State: fmt.Sprintf("0x%08x", status), MessageID: id})
		if err != nil {
			return err
		}
		// Refused by the SMSC: it never reached the card.
		return r.judgeFailure(ctx, w, m, ev, native.StatusRejected, detail)
	case count[ledger.SegUnknown] > 0 || count[ledger.SegUnsent] > 0:
		return tx.SetSMPPState(ctx, id, ledger.SubUnknown, "submission outcome unknown: waits for a receipt or PoR until its deadline")
	}
	return tx.SetSMPPState(ctx, id, ledger.SubSubmitted, "")
}

// Idle reports whether nothing is queued for the SMSC and nothing it
// took is awaited: a run need not bind.
func (r *SMPPRun) Idle(ctx context.Context) (bool, error) {
	var queued int
	if err := r.P.Ledger.QueryRow(ctx, `SELECT COUNT(*) FROM smpp_messages WHERE partner = ? AND state = ?`, r.SMSC.Name, ledger.SubQueued).Scan(&queued); err != nil {
		return false, err
	}
	if queued > 0 {
		return false, nil
	}
	n, err := r.Pending(ctx)
	return n == 0, err
}

// Pending counts the messages that went to the SMSC and still wait for
// their PoR, and the retries this run queued.
func (r *SMPPRun) Pending(ctx context.Context) (int, error) {
	n, err := r.P.Ledger.SMPPAwaited(ctx, r.SMSC.Name)
	if err != nil {
		return 0, err
	}
	// Retries this run queued are its own work too.
	var retries int
	err = r.P.Ledger.QueryRow(ctx, `SELECT COUNT(*) FROM smpp_messages s JOIN ota_messages o ON o.id = s.message_id
		WHERE s.partner = ? AND s.state = ? AND o.batch_id = ?`, r.SMSC.Name, ledger.SubQueued, r.batchID).Scan(&retries)
	return n + retries, err
}

// Close finishes the run's batch: the outcomes it judged are answered to
// each recipient in an imsi-result. The outputs come back rendered, for
// the caller to deliver.
func (r *SMPPRun) Close(ctx context.Context) (*Result, error) {
	if err := r.P.closeSMPPBatch(ctx, r.Job, r.batchID, r.Counts.Retries); err != nil {
		return nil, err
	}
	res := &Result{Status: ledger.FileDone, BatchID: r.batchID}
	outs, err := r.P.renderPending(ctx, "batch:"+strconv.FormatInt(r.batchID, 10))
	res.Outputs = outs
	return res, err
}

func (p *Party) closeSMPPBatch(ctx context.Context, job string, batchID int64, messages int) error {
	return p.Ledger.InTx(ctx, func(tx *ledger.Tx) error {
		w := &Work{P: p, Tx: tx, BatchID: batchID, Job: job, Source: "batch:" + strconv.FormatInt(batchID, 10)}
		rows, err := tx.Query(ctx, `SELECT DISTINCT partner FROM batch_records WHERE batch_id = ? AND partner <> '' ORDER BY partner`, batchID)
		if err != nil {
			return err
		}
		var names []string
		for rows.Next() {
			var s string
			if err := rows.Scan(&s); err != nil {
				rows.Close()
				return err
			}
			names = append(names, s)
		}
		rows.Close()
		for _, n := range names {
			if pt := p.Partners[n]; pt != nil {
				if _, err := w.Plan(ctx, "imsi-result", native.IMSIResult.Name, pt, false); err != nil {
					return err
				}
			}
		}
		var recs int
		if err := tx.QueryRow(ctx, `SELECT COUNT(*) FROM batch_records WHERE batch_id = ?`, batchID).Scan(&recs); err != nil {
			return err
		}
		return tx.FinishBatch(ctx, batchID, ledger.BatchDone, recs, recs, 0, "")
	})
}
