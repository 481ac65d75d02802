package processor

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"resub/formats/native"
	"resub/processor/ledger"
)

// HandoverIntakePerRecord is B's handover intake as it was while its 3b
// records were handled one by one (its 3a records already by sets): the
// reference the set-based step's answers and ledger are compared with.
type HandoverIntakePerRecord struct {
	HLR          *Partner
	Manufacturer *Partner
}

// InputType implements FileStep.
func (s *HandoverIntakePerRecord) InputType() string { return native.Handover.Name }

func (s *HandoverIntakePerRecord) findsDuplicates() bool { return true }

func (s *HandoverIntakePerRecord) manufacturerName() string {
	if s.Manufacturer == nil {
		return ""
	}
	return s.Manufacturer.Name
}

// Apply implements FileStep. A 3a record is staged as it is read (its
// secrets unwrapped from the donor's transport key and sealed under our
// master key at once, only sealed ones staged), and the staged lines are
// judged and taken by sets at the end (ledger.HandoverStage): a handful of
// statements however many cards the file hands over. Cancel and 3b
// records, rare, are handled one by one as they come (staged for their
// keys only). A record that repeats an earlier one's ICCID or IMSI is
// answered DUPLICATE in the reader's words (the stage finds them: the
// reader keeps nothing per record).
func (s *HandoverIntakePerRecord) Apply(ctx context.Context, w *Work) error {
	p := w.P
	a := w.Partner
	stage, err := w.Tx.StageHandover(ctx, handoverSecrets)
	if err != nil {
		return err
	}
	defer stage.Close(ctx)
	pipe := p.newSealPipe(ctx, a, stage)
	defer pipe.stop()
	requested := 0
	err = w.eachRecord(ctx, nil, func(rec *native.Record) error {
		kind := rec.Get(native.FieldKind)
		if kind != native.KindCancel && kind != native.Kind3b {
			return pipe.add(rec)
		}
		iccid := rec.Get(native.FieldICCID)
		if err := pipe.sync(); err != nil {
			return err
		}
		field, err := stage.Repeats(ctx, rec.Line, iccid, rec.Get(native.FieldIMSI))
		if err != nil {
			return err
		}
		if err := stage.Add(ctx, ledger.StagedCard{Line: rec.Line, ICCID: iccid, IMSI: rec.Get(native.FieldIMSI), KeysOnly: true}); err != nil {
			return err
		}
		if field != "" {
			return w.reject(ctx, rec, a.Name, ReasonDuplicate, fmt.Sprintf("%s:%d: %s: %s: %s", w.File.Name, rec.Line, field, native.ErrDuplicate, rec.Get(field)))
		}
		c, err := w.Tx.Card(ctx, iccid)
		if errors.Is(err, ledger.ErrNotFound) {
			return w.reject(ctx, rec, a.Name, ReasonUnknownICCID, detailUnknownCard)
		}
		if err != nil {
			return err
		}
		if kind == native.KindCancel {
			if c.State != cardRequested {
				return w.reject(ctx, rec, a.Name, ReasonNotActive, "card is "+c.State)
			}
			if err := w.Tx.Transition(ctx, iccid, []string{cardRequested}, ledger.CardCancelled, "donor withdrew the card", w.Source, nil); err != nil {
				return err
			}
			w.Counts.Accepted++
			return w.Tx.SetIMSIState(ctx, c.IMSI, ledger.IMSIRetired)
		}
		if c.State != cardRequested {
			return w.reject(ctx, rec, a.Name, ReasonDuplicate, "card is "+c.State+" here")
		}
		if rec.Get(native.FieldIMSI) != c.IMSI {
			return w.reject(ctx, rec, a.Name, ReasonInvalid, detailOtherIMSI)
		}
		prof := p.Profiles[rec.Get(native.FieldProfile)]
		if prof == nil {
			return w.reject(ctx, rec, a.Name, ReasonProvisioning, "card profile "+rec.Get(native.FieldProfile)+" unknown here")
		}
		idx, _ := rec.Int(native.FieldKeyIndex)
		n, _ := rec.Int(native.FieldKeyListLength)
		if _, err := w.Tx.Exec(ctx, `UPDATE cards SET list_length = ?, profile = ? WHERE iccid = ?`, n, prof.Name, iccid); err != nil {
			return err
		}
		upd := &ledger.CardUpdate{MSISDN: ledger.Str(rec.Get(native.FieldMSISDN)), KeyIndex: ledger.Int(int(idx))}
		if err := w.Tx.Transition(ctx, iccid, []string{cardRequested}, cardIncomingKeys, "3b handover: keys requested", w.Source, upd); err != nil {
			return err
		}
		requested++
		w.Counts.Accepted++
		return w.Tx.PutBatchRecord(ctx, ledger.BatchRecord{BatchID: w.BatchID, Line: rec.Line, ICCID: iccid, IMSI: c.IMSI,
			Status: recordRequested, Partner: s.manufacturerName(), Data: strconv.FormatInt(idx, 10)})
	})
	if err != nil {
		return err
	}
	if err := pipe.finish(); err != nil {
		return err
	}
	taken, err := stage.Take(ctx, ledger.HandoverTake{
		BatchID: w.BatchID, Partner: a.Name,
		From: cardRequested, To: ledger.CardActive, Event: "provisioned", Ref: w.Source,
		MasterKey: p.Vault.KeyID(), IMSIState: ledger.IMSIConfirmed,
		Accepted: native.StatusProvisioned, Rejected: recordRejected,
		DuplicateICCID: duplicateVerdict(w, native.FieldICCID),
		DuplicateIMSI:  duplicateVerdict(w, native.FieldIMSI),
		UnknownCard:    ledger.Verdict{Reason: ReasonUnknownICCID, Detail: detailUnknownCard},
		OtherState:     ledger.Verdict{Reason: ReasonDuplicate, Detail: "card is ", DetailEnd: " here"},
		OtherIMSI:      ledger.Verdict{Reason: ReasonInvalid, Detail: detailOtherIMSI},
		NoProfile:      ledger.Verdict{Reason: ReasonProvisioning, Detail: "card profile ", DetailEnd: " unknown here"},
	})
	if err != nil {
		return err
	}
	if err := stage.Close(ctx); err != nil {
		return err
	}
	w.Counts.Accepted += taken.Accepted
	w.Counts.Rejected += taken.Rejected
	if _, err := w.Plan(ctx, "handover-ack", native.HandoverAck.Name, a, true); err != nil {
		return err
	}
	if taken.Accepted > 0 {
		if err := w.PlanTo(ctx, "provisioning", native.Provisioning.Name, s.HLR, "hlr"); err != nil {
			return err
		}
	}
	if requested > 0 {
		if err := w.PlanTo(ctx, "key-request", native.KeyRequest.Name, s.Manufacturer, "manufacturer"); err != nil {
			return err
		}
	}
	return nil
}
