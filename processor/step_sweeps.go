package processor

import (
	"context"
	"fmt"
	"time"

	"resub/formats/native"
	"resub/processor/ledger"
)

// OTADeadline is the donor's sweep over messages whose PoR did not come
// by the deadline: an IMSI update becomes unknown (never failed: the card
// may have changed) and the recipient is told; a 3b card is probed under
// its old key before anything else; a reset releases the card anyway.
type OTADeadline struct {
	SMSC *Partner
}

// Name implements SweepStep.
func (s *OTADeadline) Name() string { return "ota-deadline" }

// Apply implements SweepStep.
func (s *OTADeadline) Apply(ctx context.Context, w *Work) error {
	p := w.P
	msgs, err := p.Ledger.OverdueMessages(ctx, p.now())
	if err != nil {
		return err
	}
	recipients := map[string]*Partner{}
	for i, m := range msgs {
		c, err := w.Tx.Card(ctx, m.ICCID)
		if err != nil {
			return err
		}
		ref := fmt.Sprintf("message %d", m.ID)
		why, told := "no PoR by the deadline", "no proof of receipt by the deadline"
		if m.PoRStatus == porIgnored {
			// Something came, but nothing that verified.
			why = "no verified PoR by the deadline (the last PoR did not verify: " + m.Detail + ")"
			told = why
		}
		if err := w.Tx.SetMessageState(ctx, m.ID, ledger.MsgUnknown, "", why); err != nil {
			return err
		}
		w.Counts.Records++
		switch {
		case m.Kind == msgReset && c.State == ledger.CardResetting:
			now := p.now().Format(time.RFC3339)
			if err := w.Tx.Transition(ctx, c.ICCID, []string{ledger.CardResetting}, ledger.CardReleased, "reset unanswered: released", ref, &ledger.CardUpdate{Released: &now}); err != nil {
				return err
			}
		case m.Kind == msgUpdate && c.State == ledger.CardMoving:
			if err := w.Tx.Transition(ctx, c.ICCID, []string{ledger.CardMoving}, ledger.CardUnknown, why, ref, nil); err != nil {
				return err
			}
			prof := p.Profiles[c.Profile]
			if prof != nil && prof.OTA.KeyIndex != nil && s.SMSC != nil {
				// 3b: never resend blindly; ask the card first.
				c.State = ledger.CardUnknown
				if err := p.queueMessage(ctx, w.Tx, c, prof, msgProbe, w.BatchID, c.Attempts, 1); err != nil {
					return err
				}
				w.Counts.Messages++
			}
			r := p.PartnerByCode(c.Recipient)
			out := ledger.BatchRecord{BatchID: w.BatchID, Line: i + 1, ICCID: c.ICCID, IMSI: c.NewIMSI, Status: resultUnknown, Reason: ReasonNoPoR, Detail: told}
			if r != nil {
				out.Partner = r.Name
				recipients[r.Name] = r
			}
			if err := w.Tx.PutBatchRecord(ctx, out); err != nil {
				return err
			}
		}
	}
	for _, r := range recipients {
		if _, err := w.Plan(ctx, "imsi-result", native.IMSIResult.Name, r, false); err != nil {
			return err
		}
	}
	if w.Counts.Messages > 0 {
		_, err = w.Plan(ctx, "ota-batch", native.OTABatch.Name, s.SMSC, false)
	}
	return err
}

// Erase crypto-erases the secrets of cards released longer ago than the
// retention period.
type Erase struct{}

// Name implements SweepStep.
func (Erase) Name() string { return "erase" }

// Apply implements SweepStep.
func (Erase) Apply(ctx context.Context, w *Work) error {
	p := w.P
	cutoff := p.now().Add(-p.Retention)
	var due []*ledger.Card
	err := p.Ledger.CardsInState(ctx, ledger.CardReleased, func(c *ledger.Card) error {
		t, err := time.Parse(time.RFC3339, c.Released)
		if err == nil && t.Before(cutoff) {
			due = append(due, c)
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, c := range due {
		if err := w.Tx.EraseSecrets(ctx, c.ICCID); err != nil {
			return err
		}
		now := p.now().Format(time.RFC3339)
		if err := w.Tx.Transition(ctx, c.ICCID, []string{ledger.CardReleased}, ledger.CardErased, "retention ended: secrets erased", "", &ledger.CardUpdate{Erased: &now}); err != nil {
			return err
		}
		w.Counts.Records++
		w.Counts.Accepted++
	}
	return nil
}
