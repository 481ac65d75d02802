package processor

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"resub/formats/native"
	"resub/processor/ledger"
)

// HandoverIntake is the recipient's step over the donor's handover: a 3a
// card enters our inventory with its keys (unwrapped from the donor's
// transport key, sealed under our master key), is provisioned on our
// HLR/AuC and acknowledged; a 3b card asks the manufacturer for the pair
// at its new index first. Cancelled cards are withdrawn.
type HandoverIntake struct {
	HLR          *Partner // takes the provisioning file
	Manufacturer *Partner // 3b: answers the key request
}

// InputType implements FileStep.
func (s *HandoverIntake) InputType() string { return native.Handover.Name }

// Apply implements FileStep.
func (s *HandoverIntake) Apply(ctx context.Context, w *Work) error {
	p := w.P
	a := w.Partner
	provisioned, requested := 0, 0
	err := w.eachRecord(ctx, nil, func(rec *native.Record) error {
		iccid := rec.Get(native.FieldICCID)
		c, err := w.Tx.Card(ctx, iccid)
		if errors.Is(err, ledger.ErrNotFound) {
			return w.reject(ctx, rec, a.Name, ReasonUnknownICCID, "we did not request this card")
		}
		if err != nil {
			return err
		}
		kind := rec.Get(native.FieldKind)
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
			return w.reject(ctx, rec, a.Name, ReasonInvalid, "IMSI differs from the one we allocated")
		}
		prof := p.Profiles[rec.Get(native.FieldProfile)]
		if prof == nil {
			return w.reject(ctx, rec, a.Name, ReasonProvisioning, "card profile "+rec.Get(native.FieldProfile)+" unknown here")
		}
		upd := &ledger.CardUpdate{MSISDN: ledger.Str(rec.Get(native.FieldMSISDN))}
		if kind == native.Kind3b {
			idx, _ := rec.Int(native.FieldKeyIndex)
			n, _ := rec.Int(native.FieldKeyListLength)
			upd.KeyIndex = ledger.Int(int(idx))
			if _, err := w.Tx.Exec(ctx, `UPDATE cards SET list_length = ?, profile = ? WHERE iccid = ?`, n, prof.Name, iccid); err != nil {
				return err
			}
			if err := w.Tx.Transition(ctx, iccid, []string{cardRequested}, cardIncomingKeys, "3b handover: keys requested", w.Source, upd); err != nil {
				return err
			}
			requested++
			w.Counts.Accepted++
			return w.Tx.PutBatchRecord(ctx, ledger.BatchRecord{BatchID: w.BatchID, Line: rec.Line, ICCID: iccid, IMSI: c.IMSI,
				Status: recordRequested, Partner: s.manufacturerName(), Data: strconv.FormatInt(idx, 10)})
		}
		secrets, err := w.unwrapSecrets(rec, native.FieldKi, native.FieldOPc, native.FieldKIc, native.FieldKID, native.FieldKIK)
		if err != nil {
			return w.reject(ctx, rec, a.Name, ReasonInvalid, err.Error())
		}
		defer wipe(secrets)
		kvn, _ := rec.Int(native.FieldKVN)
		counter, _ := rec.Int(native.FieldCounter)
		if err := p.takeCard(ctx, w, c, prof, rec.Get(native.FieldAlgorithm), 0, secrets, int(kvn), rec.Get(native.FieldOTAAlg), counter, upd); err != nil {
			return err
		}
		provisioned++
		w.Counts.Accepted++
		return w.Tx.PutBatchRecord(ctx, ledger.BatchRecord{BatchID: w.BatchID, Line: rec.Line, ICCID: iccid, IMSI: c.IMSI, Status: native.StatusProvisioned, Partner: a.Name})
	})
	if err != nil {
		return err
	}
	if _, err := w.Plan(ctx, "handover-ack", native.HandoverAck.Name, a, true); err != nil {
		return err
	}
	if provisioned > 0 {
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

func (s *HandoverIntake) manufacturerName() string {
	if s.Manufacturer == nil {
		return ""
	}
	return s.Manufacturer.Name
}

// takeCard makes a requested card ours: secrets sealed, key set with its
// counter, active; its IMSI allocation confirmed.
func (p *Party) takeCard(ctx context.Context, w *Work, c *ledger.Card, prof *Profile, alg string, keyIndex int, secrets map[string][]byte, kvn int, otaAlg string, counter int64, upd *ledger.CardUpdate) error {
	if err := p.sealAll(ctx, w.Tx, c.ICCID, keyIndex, secrets); err != nil {
		return err
	}
	if kvn > 0 {
		if err := w.Tx.PutKeySet(ctx, c.ICCID, ledger.KeySet{KeyIndex: keyIndex, KVN: kvn, KIcAlg: otaAlg, KIDAlg: otaAlg, Counter: counter}); err != nil {
			return err
		}
	}
	fp := p.Vault.Fingerprint(secrets[SecKi], secrets[SecOPc], secrets[SecKIc], secrets[SecKID], secrets[SecKIK])
	if _, err := w.Tx.Exec(ctx, `UPDATE cards SET profile = ?, algorithm = ?, secrets_fp = ? WHERE iccid = ?`, prof.Name, alg, fp, c.ICCID); err != nil {
		return err
	}
	if err := w.Tx.Transition(ctx, c.ICCID, []string{cardRequested, cardIncomingKeys}, ledger.CardActive, "provisioned", w.Source, upd); err != nil {
		return err
	}
	return w.Tx.SetIMSIState(ctx, c.IMSI, ledger.IMSIConfirmed)
}

// renderAck writes the handover-ack of an intake batch.
var renderAck = &renderer{
	schema: native.HandoverAck,
	count: func(ctx context.Context, p *Party, o *ledger.Output) (int, error) {
		var n int
		err := p.Ledger.QueryRow(ctx, `SELECT COUNT(*) FROM batch_records WHERE batch_id = ? AND partner = ? AND status IN (?, ?)`,
			o.BatchID, o.Partner, native.StatusProvisioned, recordRejected).Scan(&n)
		return n, err
	},
	records: func(ctx context.Context, p *Party, o *ledger.Output, emit func(*native.Record) error) error {
		rec := native.NewRecord(native.HandoverAck)
		return p.Ledger.BatchRecords(ctx, o.BatchID, o.Partner, "", func(r ledger.BatchRecord) error {
			if r.Status != native.StatusProvisioned && r.Status != recordRejected {
				return nil
			}
			rec.Set(native.FieldICCID, r.ICCID)
			rec.Set(native.FieldStatus, r.Status)
			rec.Set(native.FieldReason, r.Reason)
			rec.Set(native.FieldDetail, sanitizeDetail(r.Detail))
			return emit(rec)
		})
	},
}

// renderProvisioning writes the HLR/AuC provisioning file of a batch:
// Ki and OPc wrapped under the AuC transport key.
var renderProvisioning = &renderer{
	schema: native.Provisioning,
	count: func(ctx context.Context, p *Party, o *ledger.Output) (int, error) {
		var n int
		err := p.Ledger.QueryRow(ctx, `SELECT COUNT(*) FROM batch_records WHERE batch_id = ? AND status = ?`, o.BatchID, native.StatusProvisioned).Scan(&n)
		return n, err
	},
	records: func(ctx context.Context, p *Party, o *ledger.Output, emit func(*native.Record) error) error {
		hlr := p.Partners[o.Partner]
		if hlr.Transport == nil {
			return fmt.Errorf("provisioning for %s: no AuC transport key configured", hlr.Name)
		}
		rec := native.NewRecord(native.Provisioning)
		return p.Ledger.BatchCardPages(ctx, o.BatchID, "", native.StatusProvisioned, cardPageSize, func(page []ledger.BatchCard) error {
			for _, bc := range page {
				if err := p.provisioningRecord(rec, hlr, bc); err != nil {
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

// provisioningRecord fills rec with one card for the HLR/AuC.
func (p *Party) provisioningRecord(rec *native.Record, hlr *Partner, bc ledger.BatchCard) error {
	c := bc.Card
	if c == nil {
		return fmt.Errorf("card %s: %w", bc.Record.ICCID, ledger.ErrNotFound)
	}
	secrets, err := p.openSecrets(c.ICCID, bc.Secrets)
	if err != nil {
		return err
	}
	defer wipe(secrets)
	rec.Set(native.FieldICCID, c.ICCID)
	rec.Set(native.FieldIMSI, c.IMSI)
	rec.Set(native.FieldMSISDN, c.MSISDN)
	rec.Set(native.FieldOPc, "")
	if err := wrapInto(rec, hlr.Transport, secrets, SecKi, SecOPc); err != nil {
		return err
	}
	rec.Set(native.FieldAlgorithm, c.Algorithm)
	return nil
}

// IMSIResultIntake is the recipient's step over the donor's imsi-result:
// rejected and failed changes retire their IMSI (never handed out again);
// unknown outcomes keep theirs reserved; completed ones confirm it.
type IMSIResultIntake struct{}

// InputType implements FileStep.
func (IMSIResultIntake) InputType() string { return native.IMSIResult.Name }

// Apply implements FileStep.
func (IMSIResultIntake) Apply(ctx context.Context, w *Work) error {
	return w.eachRecord(ctx, nil, func(rec *native.Record) error {
		iccid := rec.Get(native.FieldICCID)
		c, err := w.Tx.Card(ctx, iccid)
		if errors.Is(err, ledger.ErrNotFound) {
			w.Counts.Rejected++
			return nil
		}
		if err != nil {
			return err
		}
		w.Counts.Accepted++
		st := rec.Get(native.FieldStatus)
		reason := rec.Get(native.FieldReason)
		switch st {
		case native.StatusAccepted:
			return w.Tx.Audit(ctx, w.Partner.Code, "imsi-accepted", iccid, "")
		case native.StatusCompleted:
			return w.Tx.SetIMSIState(ctx, c.IMSI, ledger.IMSIConfirmed)
		case native.StatusUnknown:
			return w.Tx.SetIMSIState(ctx, c.IMSI, ledger.IMSIUnknown)
		case native.StatusRejected, native.StatusFailed:
			if err := w.Tx.SetIMSIState(ctx, c.IMSI, ledger.IMSIRetired); err != nil {
				return err
			}
			if c.State == cardRequested {
				return w.Tx.Transition(ctx, iccid, []string{cardRequested}, cardRejectedAtDonor, "donor: "+st+" "+reason, w.Source, nil)
			}
		}
		return nil
	})
}

// HandoverAck is the donor's step over the recipient's acknowledgement:
// a provisioned card is reset over the air (its own message) and then
// released; a rejected one goes to manual action.
type HandoverAck struct {
	SMSC *Partner
}

// InputType implements FileStep.
func (s *HandoverAck) InputType() string { return native.HandoverAck.Name }

// Apply implements FileStep.
func (s *HandoverAck) Apply(ctx context.Context, w *Work) error {
	p := w.P
	err := w.eachRecord(ctx, nil, func(rec *native.Record) error {
		iccid := rec.Get(native.FieldICCID)
		c, err := w.Tx.Card(ctx, iccid)
		if errors.Is(err, ledger.ErrNotFound) || (err == nil && c.Recipient != w.Partner.Code) {
			w.Counts.Rejected++
			return nil
		}
		if err != nil {
			return err
		}
		if c.State != ledger.CardHandedOver {
			w.Counts.Rejected++
			return nil
		}
		if rec.Get(native.FieldStatus) != native.StatusProvisioned {
			w.Counts.Accepted++
			return w.Tx.Transition(ctx, iccid, []string{ledger.CardHandedOver}, ledger.CardManual, "recipient rejected: "+rec.Get(native.FieldReason)+" "+rec.Get(native.FieldDetail), w.Source, nil)
		}
		if err := w.Tx.Transition(ctx, iccid, []string{ledger.CardHandedOver}, ledger.CardProvisioned, "recipient provisioned", w.Source, nil); err != nil {
			return err
		}
		w.Counts.Accepted++
		prof := p.Profiles[c.Profile]
		now := p.now().Format("2006-01-02T15:04:05Z")
		if w.Partner.Policy.ResetWithUpdate || prof == nil || (prof.OTA.KeyIndex != nil && !prof.KeyIndexAtReset) {
			// Reset already sent with the update, or the card answers
			// only to the recipient's keys now: nothing more to send.
			return w.Tx.Transition(ctx, iccid, []string{ledger.CardProvisioned}, ledger.CardReleased, "released", w.Source, &ledger.CardUpdate{Released: &now})
		}
		if err := w.Tx.Transition(ctx, iccid, []string{ledger.CardProvisioned}, ledger.CardResetting, "reset queued", w.Source, nil); err != nil {
			return err
		}
		c.State = ledger.CardResetting
		if err := p.queueMessage(ctx, w.Tx, c, prof, msgReset, w.BatchID, 1, 1); err != nil {
			return err
		}
		w.Counts.Messages++
		return nil
	})
	if err != nil {
		return err
	}
	if w.Counts.Messages > 0 {
		err = w.PlanTo(ctx, "ota-batch", native.OTABatch.Name, s.SMSC, "smsc")
	}
	return err
}
