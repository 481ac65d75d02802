package processor

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"strconv"

	"resub/formats/native"
	"resub/processor/ledger"

	"golang.org/x/sync/errgroup"
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
		// Never a key set the recipient cannot use: such a card waits,
		// confirmed, until its algorithm is recorded.
		HoldWithoutOTAAlg: true,
	})
	if err != nil {
		return err
	}
	for _, iccid := range out.Held {
		w.P.log().Error("card not handed over: its OTA key set has no algorithm", "iccid", iccid, "recipient", s.Recipient.Name)
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
// the recipient's transport key; 3b records carry no secret. Pages are
// read from the ledger (one query a page) on two connections at once,
// while the last page's secrets are re-wrapped on every core and its
// records written.
var renderHandover = &renderer{
	schema: native.Handover,
	count: func(ctx context.Context, p *Party, o *ledger.Output) (int, error) {
		return p.Ledger.CountBatchRecords(ctx, o.BatchID, o.Partner, "")
	},
	records: func(ctx context.Context, p *Party, o *ledger.Output, emit func(*native.Record) error) error {
		to := p.Partners[o.Partner]
		rec := native.NewRecord(native.Handover)
		wrapped := make([][]string, handoverPageSize)
		for i := range wrapped {
			wrapped[i] = make([]string, len(handoverSecretFields))
		}
		rw := newRewrappers()
		return readInOrder(ctx, handoverReaders, func(ctx context.Context, next func(ledger.PageBounds) error) error {
			return p.Ledger.HandoverPageBounds(ctx, o.BatchID, o.Partner, handoverPageSize, next)
		}, func(ctx context.Context, b ledger.PageBounds) ([]ledger.HandoverCard, error) {
			return p.Ledger.HandoverPage(ctx, o.BatchID, o.Partner, native.Kind3a, handoverSecretFields, b)
		}, func(ctx context.Context, page []ledger.HandoverCard) error {
			for len(wrapped) < len(page) {
				wrapped = append(wrapped, make([]string, len(handoverSecretFields)))
			}
			if err := p.rewrapPage(ctx, rw, to, page, wrapped[:len(page)]); err != nil {
				return err
			}
			for j := range page {
				err := p.handoverRecord(rec, to, &page[j], wrapped[j])
				clear(wrapped[j])
				if err != nil {
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

// handoverPageSize is how many records of a handover batch are read at a
// time (a variable for tests that need several pages of a few cards).
var handoverPageSize = cardPageSize

// handoverReaders is how many pages of a handover batch are read at once:
// reading a page (its records, cards, key sets and five secrets joined)
// takes longer than re-wrapping and writing it.
const handoverReaders = 2

// readInOrder reads pages on readers goroutines at once (the ledger gives
// each its own connection) and hands them to use one at a time, in the
// order bounds gave their bounds. At most 2×readers pages are read and not
// yet used, so memory stays bounded whatever the number of pages. An
// error of any part ends them all.
func readInOrder[B, P any](ctx context.Context, readers int, bounds func(ctx context.Context, next func(B) error) error,
	read func(ctx context.Context, b B) (P, error), use func(ctx context.Context, page P) error) error {
	type slot struct {
		b    B
		page P
		err  error
		done chan struct{}
	}
	readers = max(1, readers)
	g, gctx := errgroup.WithContext(ctx)
	jobs := make(chan *slot, readers)
	order := make(chan *slot, readers)
	g.Go(func() error {
		defer close(jobs)
		defer close(order)
		return bounds(gctx, func(b B) error {
			s := &slot{b: b, done: make(chan struct{})}
			select {
			case order <- s:
			case <-gctx.Done():
				return gctx.Err()
			}
			select {
			case jobs <- s:
				return nil
			case <-gctx.Done():
				return gctx.Err()
			}
		})
	})
	for range readers {
		g.Go(func() error {
			for s := range jobs {
				s.page, s.err = read(gctx, s.b)
				close(s.done)
				if s.err != nil {
					return s.err
				}
			}
			return nil
		})
	}
	g.Go(func() error {
		for s := range order {
			select {
			case <-s.done:
			case <-gctx.Done():
				return gctx.Err()
			}
			if s.err != nil {
				return s.err
			}
			if err := use(gctx, s.page); err != nil {
				return err
			}
		}
		return nil
	})
	return g.Wait()
}

// cardPageSize is how many batch records a renderer reads at a time.
const cardPageSize = 1000

// handoverSecretFields are the secret fields of a 3a handover record, in
// the order rewrapPage gives them.
var handoverSecretFields = []string{SecKi, SecOPc, SecKIc, SecKID, SecKIK}

// rewrapper is what one core keeps from card to card while it re-wraps:
// the associated data of the secret it opens.
type rewrapper struct{ aad []byte }

func newRewrappers() []*rewrapper {
	rs := make([]*rewrapper, runtime.GOMAXPROCS(0))
	for i := range rs {
		rs[i] = new(rewrapper)
	}
	return rs
}

// rewrapPage re-wraps the secrets of a page's 3a cards under the
// recipient's transport key, on every core: worker k takes cards k, k+W,
// k+2W …, each result in its own slot. wrapped[j] receives card j's fields
// by handoverSecretFields ("" where the card has none, and for a card
// that carries no secrets). Each secret is in clear only between its
// opening and its wrapping.
func (p *Party) rewrapPage(ctx context.Context, rw []*rewrapper, to *Partner, page []ledger.HandoverCard, wrapped [][]string) error {
	workers := min(len(rw), max(1, len(page)/16))
	g, ctx := errgroup.WithContext(ctx)
	for k := range workers {
		w := rw[k]
		g.Go(func() error {
			for j := k; j < len(page); j += workers {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				hc := &page[j]
				if !hc.Found || hc.Kind != native.Kind3a {
					continue
				}
				if to.Transport == nil {
					return fmt.Errorf("handover to %s: no transport key configured", to.Name)
				}
				for _, s := range hc.Secrets {
					i := slices.Index(handoverSecretFields, s.Name)
					if i < 0 {
						continue
					}
					w.aad = appendSecretAAD(w.aad[:0], hc.ICCID, s.Name, s.KeyIndex)
					v, err := p.Vault.Open(w.aad, s.Blob)
					if err != nil {
						return fmt.Errorf("open %s of %s: %w", s.Name, hc.ICCID, err)
					}
					wrapped[j][i], err = to.Transport.Wrap(v)
					clear(v)
					if err != nil {
						return fmt.Errorf("wrap %s: %w", s.Name, err)
					}
				}
			}
			return nil
		})
	}
	return g.Wait()
}

// handoverRecord fills rec with one card of a handover batch; wrapped
// are its secret fields already re-wrapped for the recipient
// (rewrapPage).
func (p *Party) handoverRecord(rec *native.Record, to *Partner, hc *ledger.HandoverCard, wrapped []string) error {
	if !hc.Found {
		return fmt.Errorf("card %s: %w", hc.ICCID, ledger.ErrNotFound)
	}
	for _, f := range native.Handover.Fields {
		rec.Set(f.Name, "")
	}
	rec.Set(native.FieldKind, hc.Kind)
	rec.Set(native.FieldICCID, hc.ICCID)
	if hc.Kind == native.KindCancel {
		rec.Set(native.FieldReason, ReasonCancelled)
		return nil
	}
	rec.Set(native.FieldIMSI, hc.IMSI)
	rec.Set(native.FieldMSISDN, hc.MSISDN)
	rec.Set(native.FieldProfile, hc.Profile)
	if hc.Kind == native.Kind3b {
		rec.Set(native.FieldKeyIndex, strconv.Itoa(hc.KeyIndex+1))
		rec.Set(native.FieldKeyListLength, strconv.Itoa(hc.ListLength))
		rec.Set(native.FieldCounterRule, "reset")
		return nil
	}
	if to.Transport == nil {
		return fmt.Errorf("handover to %s: no transport key configured", to.Name)
	}
	for i, name := range handoverSecretFields {
		if wrapped[i] != "" {
			rec.Set(name, wrapped[i])
		}
	}
	rec.Set(native.FieldAlgorithm, hc.Alg)
	if hc.NoAlgKVN != 0 {
		// With 16-octet keys the recipient could not tell AES-128 from
		// 3DES with two keys.
		return fmt.Errorf("handover of card %s: key set %d has no OTA algorithm (ota-alg)", hc.ICCID, hc.NoAlgKVN)
	}
	if hc.HasKeySet {
		k := hc.KeySet
		rec.Set(native.FieldKVN, strconv.Itoa(k.KVN))
		rec.Set(native.FieldOTAAlg, k.KIcAlg)
		// The recipient starts above this: our last reserved value plus
		// the jump we keep for our own last messages (the reset comes
		// after the handover).
		rec.Set(native.FieldCounter, strconv.FormatInt(k.Counter+p.OTA.CounterJump, 10))
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
