package processor

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"resub/formats/native"
	"resub/processor/ledger"
)

// SwitchRequestPerRecord is the switch request as it was done before it
// worked by sets, a record at a time: the reference the set-based step's
// answers and ledger are compared with.
type SwitchRequestPerRecord struct {
	Donor *Partner
}

// InputType implements FileStep.
func (s *SwitchRequestPerRecord) InputType() string { return native.SwitchRequest.Name }

// Apply implements FileStep.
func (s *SwitchRequestPerRecord) Apply(ctx context.Context, w *Work) error {
	p := w.P
	donors := map[string]*Partner{}
	donorOf := func(rec *native.Record) *Partner {
		if code := rec.Get(native.FieldDonor); code != "" {
			return p.PartnerByCode(code)
		}
		return s.Donor
	}
	err := w.eachRecord(ctx, func(rec *native.Record) string {
		if d := donorOf(rec); d != nil {
			return d.Name
		}
		return ""
	}, func(rec *native.Record) error {
		iccid := rec.Get(native.FieldICCID)
		donor := donorOf(rec)
		if donor == nil {
			return w.reject(ctx, rec, "", ReasonInvalid, "no donor operator known for this card")
		}
		date, _ := rec.Date(native.FieldCutoverDate)
		if date.Before(day(p.now())) {
			return w.reject(ctx, rec, donor.Name, ReasonDatePast, "cut-over date "+date.Format("2006-01-02")+" is past")
		}
		if c, err := w.Tx.Card(ctx, iccid); err == nil && c.State != cardRejectedAtDonor && c.State != ledger.CardReleased {
			return w.reject(ctx, rec, donor.Name, ReasonAlreadyMoving, "card is "+c.State+" here")
		}
		ref := w.Source + ":" + strconv.Itoa(rec.Line)
		imsi, err := p.allocate(ctx, w.Tx, iccid, ref)
		if err != nil {
			if errors.Is(err, ledger.ErrRangeExhausted) {
				return w.reject(ctx, rec, donor.Name, ReasonInternal, "no free IMSI in our ranges")
			}
			return err
		}
		card := &ledger.Card{ICCID: iccid, IMSI: imsi, State: cardRequested, Owner: w.Header.Sender, Source: donor.Code,
			Cutover: date.Format("2006-01-02"), RequestRef: ref}
		if _, err := w.Tx.Card(ctx, iccid); err == nil {
			err = w.Tx.Transition(ctx, iccid, nil, cardRequested, "switch request", ref,
				&ledger.CardUpdate{IMSI: &imsi, Cutover: &card.Cutover, RequestRef: &ref, Owner: &card.Owner, Recipient: ledger.Str("")})
			if err != nil {
				return err
			}
		} else if _, err := w.Tx.InsertCard(ctx, card); err != nil {
			return err
		}
		donors[donor.Name] = donor
		w.Counts.Accepted++
		return w.Tx.PutBatchRecord(ctx, ledger.BatchRecord{BatchID: w.BatchID, Line: rec.Line, ICCID: iccid, IMSI: imsi,
			Status: recordRequested, Partner: donor.Name, Data: card.Cutover})
	})
	if err != nil {
		return err
	}
	for _, d := range donors {
		if _, err := w.Plan(ctx, "imsi-list", native.IMSIList.Name, d, false); err != nil {
			return err
		}
	}
	return nil
}

// allocate hands out a new IMSI from our ranges, in order.
func (p *Party) allocate(ctx context.Context, tx *ledger.Tx, iccid, ref string) (string, error) {
	var last error
	for _, r := range p.RangeList {
		imsi, err := tx.AllocateIMSI(ctx, r.Name, r.From, r.To, iccid, ref)
		if err == nil {
			return imsi, nil
		}
		if !errors.Is(err, ledger.ErrRangeExhausted) {
			return "", err
		}
		last = err
	}
	if last == nil {
		last = fmt.Errorf("no IMSI ranges configured: %w", ledger.ErrRangeExhausted)
	}
	return "", last
}
