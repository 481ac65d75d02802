package processor

import (
	"context"
	"errors"
	"fmt"
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

// Apply implements SweepStep.
func (s *Handover) Apply(ctx context.Context, w *Work) error {
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
func (s *Handover) withoutOTAAlg(ctx context.Context, w *Work) (map[string]bool, error) {
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
			if k.KIcAlg == "" {
				// With 16-octet keys the recipient could not tell
				// AES-128 from 3DES with two keys.
				return fmt.Errorf("handover of card %s: key set %d has no OTA algorithm (ota-alg)", c.ICCID, k.KVN)
			}
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
