package processor

import (
	"context"
	"errors"

	"resub/formats/native"
	"resub/processor/ledger"
)

// HandoverPerRecord is the donor's handover sweep as it was done before
// it worked by sets, a card at a time: the reference the set-based sweep's
// ledger is compared with.
type HandoverPerRecord struct {
	Recipient    *Partner
	Manufacturer *Partner
}

// Name implements SweepStep.
func (s *HandoverPerRecord) Name() string { return "handover" }

// Apply implements SweepStep.
func (s *HandoverPerRecord) Apply(ctx context.Context, w *Work) error {
	// Streamed: CardsInState reads committed state a page at a time, so
	// the cards this transaction hands over stay in its pages and memory
	// stays flat in the number of cards.
	noAlg, err := s.withoutOTAAlg(ctx, w)
	if err != nil {
		return err
	}
	threeB, i := 0, 0
	err = w.P.Ledger.CardsInState(ctx, ledger.CardConfirmed, func(c *ledger.Card) error {
		if c.Recipient != s.Recipient.Code {
			return nil
		}
		prof := w.P.Profiles[c.Profile]
		if noAlg[c.ICCID] && (prof == nil || prof.OTA.KeyIndex == nil) {
			// Never a key set the recipient cannot use: the card
			// waits, confirmed, until its algorithm is recorded.
			w.P.log().Error("card not handed over: its OTA key set has no algorithm", "iccid", c.ICCID, "recipient", s.Recipient.Name)
			return nil
		}
		i++
		if err := w.Tx.Transition(ctx, c.ICCID, []string{ledger.CardConfirmed}, ledger.CardHandedOver, "handover", w.Source, nil); err != nil {
			var se *ledger.StateError
			if errors.As(err, &se) {
				return nil
			}
			return err
		}
		kind := native.Kind3a
		if prof != nil && prof.OTA.KeyIndex != nil {
			kind = native.Kind3b
			threeB++
		}
		w.Counts.Records++
		w.Counts.Accepted++
		return w.Tx.PutBatchRecord(ctx, ledger.BatchRecord{BatchID: w.BatchID, Line: i, ICCID: c.ICCID, IMSI: c.IMSI,
			Status: recordAccepted, Partner: s.Recipient.Name, Data: kind})
	})
	if err != nil {
		return err
	}
	if w.Counts.Records == 0 {
		return nil
	}
	if threeB > 0 {
		if err := w.PlanTo(ctx, "key-release", native.KeyRelease.Name, s.Manufacturer, "manufacturer"); err != nil {
			return err
		}
	}
	_, err = w.Plan(ctx, "handover", native.Handover.Name, s.Recipient, false)
	return err
}

// withoutOTAAlg lists the recipient's confirmed cards whose key set in use
// has no algorithm recorded (none, normally: every import records one).
func (s *HandoverPerRecord) withoutOTAAlg(ctx context.Context, w *Work) (map[string]bool, error) {
	rows, err := w.Tx.Query(ctx, `SELECT c.iccid FROM cards c JOIN key_sets k ON k.iccid = c.iccid AND k.key_index = c.key_index
		WHERE c.state = ? AND c.recipient = ? AND k.kic_alg = ''`, ledger.CardConfirmed, s.Recipient.Code)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]bool{}
	for rows.Next() {
		var iccid string
		if err := rows.Scan(&iccid); err != nil {
			return nil, err
		}
		out[iccid] = true
	}
	return out, rows.Err()
}
