package processor

import (
	"context"
	"fmt"

	"resub/formats/native"
	"resub/formats/ota"
	"resub/processor/ledger"
)

// Apply implements FileStep. The report's lines go into a staging table
// as they are read (ledger.ReportStage); one joined pass reads, for each
// line that is its MSISDN's only one in the report and whose MSISDN has
// exactly one outstanding message, the message, its card and the card's
// sealed OTA keys; each PoR is verified and judged on the other cores by
// the rules JudgePoR applies (matchPoR, verdictFor, verdictAction), and
// the verdicts that only judge the message, confirm the card or ignore a
// PoR that does not verify are applied by a few statements over all of
// them. Every other line — no PoR, a PoR that may be a late answer to a
// failed message, a repeated MSISDN, several or no outstanding messages,
// a failure to retry, an outcome for an engineer, another kind of
// message — goes through JudgePoR, in line order, as before: the ledger
// ends as the record-at-a-time intake leaves it.
func (s *OTAReport) Apply(ctx context.Context, w *Work) error {
	smsc := s.SMSC
	if smsc == nil {
		smsc = w.Partner
	}
	st, err := w.Tx.StageReport(ctx)
	if err != nil {
		return err
	}
	defer st.Close(ctx)
	err = w.eachRecord(ctx, nil, func(rec *native.Record) error {
		por, _ := rec.Hex(native.FieldPoR)
		return st.Add(ctx, rec.Line, rec.Get(native.FieldMSISDN), rec.Get(native.FieldMessageID), rec.Get(native.FieldStatus), rec.Get(native.FieldDetail), por)
	})
	if err != nil {
		return err
	}
	if err := st.Index(ctx); err != nil {
		return err
	}
	recipients := map[string]*Partner{}
	judged, err := w.P.judgeStagedPoRs(ctx, w, st, recipients)
	if err != nil {
		return err
	}
	applied, err := st.Apply(ctx, w.BatchID)
	if err != nil {
		return err
	}
	if applied.Messages != judged {
		return fmt.Errorf("ota-report: %d messages judged by sets, %d verdicts", applied.Messages, judged)
	}
	w.P.log().Info("ota-report: PoRs judged by sets", "file", w.File.Name, "messages", applied.Messages, "confirmed", applied.Confirmed, "ignored", applied.Noted)
	err = st.Rest(ctx, func(l ledger.ReportLine) error {
		return w.judgeReportLine(ctx, PoRReport{MSISDN: l.MSISDN, MessageID: l.MessageID, PoR: l.PoR, Status: l.Status, Detail: l.Detail, Line: l.Line}, recipients)
	})
	if err != nil {
		return err
	}
	if err := st.Close(ctx); err != nil {
		return err
	}
	return s.plan(ctx, w, smsc, recipients)
}

// plan plans the report's outputs: an imsi-result to each recipient told
// an outcome, and the ota-batch of the retries queued.
func (s *OTAReport) plan(ctx context.Context, w *Work, smsc *Partner, recipients map[string]*Partner) error {
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

// judgeReportLine takes one line of a report through JudgePoR and records
// its answer: a line that matches no outstanding message, or whose PoR did
// not verify, is rejected in the report batch's records; the recipient to
// tell joins recipients.
func (w *Work) judgeReportLine(ctx context.Context, r PoRReport, recipients map[string]*Partner) error {
	j, err := w.P.JudgePoR(ctx, w, r)
	if err != nil {
		return err
	}
	switch {
	case j.Message == nil:
		w.Counts.Rejected++
		return w.Tx.PutBatchRecord(ctx, ledger.BatchRecord{BatchID: w.BatchID, Line: r.Line, Status: recordRejected, Reason: j.Reason, Detail: j.Detail})
	case j.Ignored != "":
		w.Counts.Rejected++
		return w.Tx.PutBatchRecord(ctx, ledger.BatchRecord{BatchID: w.BatchID, Line: r.Line, ICCID: j.Message.ICCID, Status: recordRejected, Reason: ReasonPoRUnverified,
			Detail: fmt.Sprintf("message %d stays outstanding: %s", j.Message.ID, j.Ignored)})
	}
	w.Counts.Accepted++
	if j.Recipient != nil {
		recipients[j.Recipient.Name] = j.Recipient
	}
	return nil
}

// stagedPoR is one staged PoR on its way through the workers: what they
// made of it, and the verdict to apply by sets (bulk) or none (the line
// goes through JudgePoR).
type stagedPoR struct {
	sp        *ledger.StagedPoR
	bulk      bool
	ignored   string // why the PoR does not verify (bulk: recorded, nothing changes)
	act       porAction
	verdict   ota.Verdict
	recipient *Partner
}

// judgeStagedPoRs verifies and judges the staged PoRs on the other cores
// and records the verdicts it can apply by sets (see OTAReport.Apply); it
// returns how many. Each decision is the record-at-a-time judge's own:
// matchPoR over the MSISDN's one outstanding message, then verdictFor and
// verdictAction for a PoR that verifies; one that does not is recorded
// as ignored, unless it may be a late answer to a failed message (the
// judge looks for one).
func (p *Party) judgeStagedPoRs(ctx context.Context, w *Work, st *ledger.ReportStage, recipients map[string]*Partner) (int, error) {
	judged := 0
	work := func(it *stagedPoR) error {
		it.bulk = false
		m, c := it.sp.Message, it.sp.Card
		prof := p.Profiles[c.Profile]
		tar, terr := ota.ResponseTAR(it.sp.PoR)
		mt := matchPoR([]*ledger.Message{m}, tar, terr, func(m *ledger.Message) (ota.Response, *ledger.Card, error) {
			if prof == nil {
				return ota.Response{}, c, fmt.Errorf("profile %s not configured", c.Profile)
			}
			var list []ledger.Secret
			for _, s := range []*ledger.Secret{it.sp.KIc, it.sp.KID} {
				if s != nil {
					list = append(list, *s)
				}
			}
			resp, err := p.decodeSealed(prof, m, c.ICCID, list, it.sp.PoR)
			return resp, c, err
		})
		if mt.Message == nil {
			if terr == nil && it.sp.Late {
				// Perhaps a late PoR: the judge decides.
				return nil
			}
			it.ignored, it.bulk = mt.Reason, true
			return nil
		}
		if m.Kind != msgUpdate {
			return nil
		}
		v, err := p.verdictFor(ctx, m, c, mt.Resp)
		if err != nil {
			// The judge says so, with the line.
			return nil
		}
		it.recipient = p.PartnerByCode(c.Recipient)
		it.act = verdictAction(c.State, v.Outcome, c.Attempts, maxAttempts(it.recipient))
		switch it.act {
		case actPending, actMessage, actConfirm:
			it.verdict, it.bulk = v, true
		}
		return nil
	}
	emit := func(it *stagedPoR) error {
		if !it.bulk {
			return nil
		}
		m, c, v := it.sp.Message, it.sp.Card, it.verdict
		rv := ledger.ReportVerdict{Line: it.sp.Line, MessageID: m.ID, ICCID: c.ICCID, CardState: c.State}
		judged++
		if it.ignored != "" {
			rv.State, rv.PoRStatus, rv.Detail = m.State, porIgnored, it.ignored
			rv.Card, rv.Event = ledger.ReportNote, "PoR ignored: "+it.ignored
			rv.Record = ledger.BatchRecord{Status: recordRejected, Reason: ReasonPoRUnverified,
				Detail: fmt.Sprintf("message %d stays outstanding: %s", m.ID, it.ignored)}
			w.Counts.PoRsIgnored++
			w.Counts.Rejected++
			p.log().Warn("PoR ignored: the message stays outstanding", "iccid", c.ICCID, "message", m.ID, "reason", it.ignored)
			return st.Judged(ctx, rv)
		}
		rv.State, rv.PoRStatus, rv.Detail = msgState(v.Outcome), v.Outcome.String(), v.Reason
		log := p.log().With("iccid", c.ICCID, "message", m.ID, "outcome", v.Outcome.String())
		switch it.act {
		case actPending:
			rv.State = m.State
			log.Info("PoR: answer pending", "reason", v.Reason)
		case actMessage:
			log.Info("report for a card no longer moving", "state", c.State)
		case actConfirm:
			log.Debug("IMSI change confirmed")
			rv.Card, rv.Event = ledger.ReportConfirm, porConfirmed
			rv.Record = ledger.BatchRecord{IMSI: c.NewIMSI, Status: resultCompleted}
			if it.recipient != nil {
				rv.Record.Partner = it.recipient.Name
				recipients[it.recipient.Name] = it.recipient
			}
		}
		w.Counts.Accepted++
		return st.Judged(ctx, rv)
	}
	pipe := newOrderedPipe(ctx, work, emit, nil)
	defer pipe.stop()
	err := st.PoRs(ctx, SecKIc, SecKID, func(sp *ledger.StagedPoR) error {
		return pipe.add(stagedPoR{sp: sp})
	})
	if err != nil {
		return judged, err
	}
	return judged, pipe.finish()
}
