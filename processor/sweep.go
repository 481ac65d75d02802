package processor

import (
	"context"
	"errors"
	"strconv"

	"resub/processor/failpoint"
	"resub/processor/ledger"
)

// SweepStep is a party step driven by the ledger rather than by an input
// file (e.g. handing over confirmed cards).
type SweepStep interface {
	Name() string
	Apply(ctx context.Context, w *Work) error
}

// errNothing rolls a sweep back when it found nothing to do.
var errNothing = errors.New("nothing to do")

// RunSweep runs a sweep in one transaction with its own batch, then
// renders its outputs. A sweep that finds nothing leaves no trace.
func (p *Party) RunSweep(ctx context.Context, job string, step SweepStep, dryRun bool) (*Result, error) {
	w := &Work{P: p, Job: job, DryRun: dryRun}
	err := p.Ledger.InTx(ctx, func(tx *ledger.Tx) error {
		w.Tx = tx
		w.Counts = Counts{}
		id, err := tx.CreateBatch(ctx, &ledger.Batch{Job: job, Partner: "", Kind: step.Name()})
		if err != nil {
			return err
		}
		w.BatchID = id
		w.Source = "batch:" + strconv.FormatInt(id, 10)
		if err := step.Apply(ctx, w); err != nil {
			return err
		}
		if w.Counts.Records == 0 && w.Counts.Messages == 0 {
			return errNothing
		}
		if dryRun {
			return errDryRun
		}
		if err := tx.FinishBatch(ctx, id, ledger.BatchDone, w.Counts.Records, w.Counts.Accepted, w.Counts.Rejected, ""); err != nil {
			return err
		}
		failpoint.Hit(failpoint.SweepBeforeCommit)
		return nil
	})
	res := &Result{Status: ledger.FileDone, Counts: w.Counts}
	if errors.Is(err, errNothing) {
		return res, nil
	}
	if errors.Is(err, errDryRun) {
		res.Status = "dry-run"
		return res, nil
	}
	if err != nil {
		return nil, err
	}
	failpoint.Hit(failpoint.SweepAfterCommit)
	res.BatchID = w.BatchID
	res.Outputs, err = p.renderPending(ctx, w.Source)
	return res, err
}

var errDryRun = errors.New("dry run: rolled back")
