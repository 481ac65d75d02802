package processor

import (
	"context"
	"fmt"
	"slices"
	"strconv"

	"resub/formats/native"
	"resub/processor/ledger"
)

// Handover is the donor's sweep over confirmed cards: each card that moved
// to the recipient is handed over — 3a with its secrets re-wrapped under
// the recipient's transport key, 3b with its index only, after a
// key-release to the manufacturer.
type Handover struct {
	Recipient    *Partner
	Manufacturer *Partner // 3b: takes the key-release
}

// Name implements SweepStep.
func (s *Handover) Name() string { return "handover" }

// Apply implements SweepStep. The cards are taken by sets
// (ledger.Tx.HandOver): a few statements over the confirmed cards, however
// many there are.
func (s *Handover) Apply(ctx context.Context, w *Work) error {
	var threeB []string
	for name, prof := range w.P.Profiles {
		if prof.OTA.KeyIndex != nil {
			threeB = append(threeB, name)
		}
	}
	slices.Sort(threeB)
	out, err := w.Tx.HandOver(ctx, ledger.HandOver{
		BatchID: w.BatchID, Recipient: s.Recipient.Code, Partner: s.Recipient.Name,
		From: ledger.CardConfirmed, To: ledger.CardHandedOver, Event: "handover", Ref: w.Source,
		Status: recordAccepted, ThreeB: threeB, Kind3a: native.Kind3a, Kind3b: native.Kind3b,
	})
	if err != nil {
		return err
	}
	w.Counts.Records += out.Cards
	w.Counts.Accepted += out.Cards
	if out.Cards == 0 {
		return nil
	}
	if out.ThreeB > 0 {
		if err := w.PlanTo(ctx, "key-release", native.KeyRelease.Name, s.Manufacturer, "manufacturer"); err != nil {
			return err
		}
	}
	_, err = w.Plan(ctx, "handover", native.Handover.Name, s.Recipient, false)
	return err
}

// renderHandover writes the handover of a batch: 3a records carry the
// card's secrets, unwrapped from the master key and wrapped at once under
// the recipient's transport key; 3b records carry no secret.
var renderHandover = &renderer{
	schema: native.Handover,
	count: func(ctx context.Context, p *Party, o *ledger.Output) (int, error) {
		return p.Ledger.CountBatchRecords(ctx, o.BatchID, o.Partner, "")
	},
	records: func(ctx context.Context, p *Party, o *ledger.Output, emit func(*native.Record) error) error {
		to := p.Partners[o.Partner]
		rec := native.NewRecord(native.Handover)
		return p.Ledger.BatchCardPages(ctx, o.BatchID, o.Partner, "", cardPageSize, func(page []ledger.BatchCard) error {
			for _, bc := range page {
				if err := p.handoverRecord(rec, to, bc); err != nil {
					return err
				}
				if err := emit(rec); err != nil {
					return err
				}
			}
			return nil
		})
	},
}

// cardPageSize is how many batch records a renderer reads at a time.
const cardPageSize = 1000

// handoverRecord fills rec with one card of a handover batch.
func (p *Party) handoverRecord(rec *native.Record, to *Partner, bc ledger.BatchCard) error {
	r, c := bc.Record, bc.Card
	if c == nil {
		return fmt.Errorf("card %s: %w", r.ICCID, ledger.ErrNotFound)
	}
	for _, f := range native.Handover.Fields {
		rec.Set(f.Name, "")
	}
	rec.Set(native.FieldKind, r.Data)
	rec.Set(native.FieldICCID, c.ICCID)
	if r.Data == native.KindCancel {
		rec.Set(native.FieldReason, ReasonCancelled)
		return nil
	}
	rec.Set(native.FieldIMSI, c.IMSI)
	rec.Set(native.FieldMSISDN, c.MSISDN)
	rec.Set(native.FieldProfile, c.Profile)
	if r.Data == native.Kind3b {
		rec.Set(native.FieldKeyIndex, strconv.Itoa(c.KeyIndex+1))
		rec.Set(native.FieldKeyListLength, strconv.Itoa(c.ListLength))
		rec.Set(native.FieldCounterRule, "reset")
		return nil
	}
	if to.Transport == nil {
		return fmt.Errorf("handover to %s: no transport key configured", to.Name)
	}
	secrets, err := p.openSecrets(c.ICCID, bc.Secrets)
	if err != nil {
		return err
	}
	defer wipe(secrets)
	if err := wrapInto(rec, to.Transport, secrets, SecKi, SecOPc, SecKIc, SecKID, SecKIK); err != nil {
		return err
	}
	rec.Set(native.FieldAlgorithm, c.Algorithm)
	for _, k := range bc.KeySets {
		if k.KeyIndex == c.KeyIndex {
			rec.Set(native.FieldKVN, strconv.Itoa(k.KVN))
			rec.Set(native.FieldOTAAlg, k.KIcAlg)
			// The recipient starts above this: our last reserved
			// value plus the jump we keep for our own last
			// messages (the reset comes after the handover).
			rec.Set(native.FieldCounter, strconv.FormatInt(k.Counter+p.OTA.CounterJump, 10))
		}
	}
	return nil
}

// renderKeyRelease writes the key-release of a handover batch's 3b cards:
// index n (the one the card moved to) may go to the recipient.
var renderKeyRelease = &renderer{
	schema: native.KeyRelease,
	count: func(ctx context.Context, p *Party, o *ledger.Output) (int, error) {
		var n int
		err := p.Ledger.QueryRow(ctx, `SELECT COUNT(*) FROM batch_records WHERE batch_id = ? AND data = ?`, o.BatchID, native.Kind3b).Scan(&n)
		return n, err
	},
	records: func(ctx context.Context, p *Party, o *ledger.Output, emit func(*native.Record) error) error {
		rec := native.NewRecord(native.KeyRelease)
		return p.Ledger.BatchRecords(ctx, o.BatchID, "", "", func(r ledger.BatchRecord) error {
			if r.Data != native.Kind3b {
				return nil
			}
			c, err := p.Ledger.Card(ctx, r.ICCID)
			if err != nil {
				return err
			}
			rec.Set(native.FieldICCID, c.ICCID)
			rec.Set(native.FieldKeyIndex, strconv.Itoa(c.KeyIndex+1))
			rec.Set(native.FieldRecipient, c.Recipient)
			return emit(rec)
		})
	},
}
