package processor

import (
	"context"
	"errors"
	"fmt"

	"resub/formats/native"
	"resub/processor/ledger"
)

// KeyResponsePerRecord is B's key-response intake as it was done before
// it worked by sets, a record at a time: the reference the set-based
// step's answers and ledger are compared with.
type KeyResponsePerRecord struct {
	HLR *Partner
}

// InputType implements FileStep.
func (s *KeyResponsePerRecord) InputType() string { return native.KeyResponse.Name }

// Apply implements FileStep.
func (s *KeyResponsePerRecord) Apply(ctx context.Context, w *Work) error {
	p := w.P
	donors := map[string]*Partner{}
	provisioned := 0
	err := w.eachRecord(ctx, nil, func(rec *native.Record) error {
		iccid := rec.Get(native.FieldICCID)
		c, err := w.Tx.Card(ctx, iccid)
		if errors.Is(err, ledger.ErrNotFound) || (err == nil && c.State != cardIncomingKeys) {
			w.Counts.Rejected++
			return nil
		}
		if err != nil {
			return err
		}
		donor := p.PartnerByCode(c.Source)
		if donor == nil {
			return fmt.Errorf("card %s: donor %s is not a configured partner", iccid, c.Source)
		}
		donors[donor.Name] = donor
		idx, _ := rec.Int(native.FieldKeyIndex)
		if rec.Get(native.FieldStatus) != keyReleased || int(idx) != c.KeyIndex {
			w.Counts.Rejected++
			if err := w.Tx.Transition(ctx, iccid, []string{cardIncomingKeys}, ledger.CardManual, "manufacturer refused: "+rec.Get(native.FieldReason), w.Source, nil); err != nil {
				return err
			}
			return w.Tx.PutBatchRecord(ctx, ledger.BatchRecord{BatchID: w.BatchID, Line: rec.Line, ICCID: iccid, IMSI: c.IMSI, Status: recordRejected,
				Reason: ReasonKeyIndex, Detail: "manufacturer: " + rec.Get(native.FieldReason), Partner: donor.Name})
		}
		secrets, err := w.unwrapSecrets(rec, native.FieldKi, native.FieldOPc, native.FieldKIc, native.FieldKID, native.FieldKIK)
		if err != nil {
			return w.Refuse("secrets of "+iccid+": "+err.Error(), err)
		}
		defer wipe(secrets)
		if err := checkSecrets(secrets, rec.Get(native.FieldAlgorithm), rec.Get(native.FieldOTAAlg)); err != nil {
			// The pair cannot work on the card: nothing is provisioned,
			// the card waits for an engineer and the donor is told.
			w.Counts.Rejected++
			if err := w.Tx.Transition(ctx, iccid, []string{cardIncomingKeys}, ledger.CardManual, "manufacturer's keys unusable: "+err.Error(), w.Source, nil); err != nil {
				return err
			}
			return w.Tx.PutBatchRecord(ctx, ledger.BatchRecord{BatchID: w.BatchID, Line: rec.Line, ICCID: iccid, IMSI: c.IMSI, Status: recordRejected,
				Reason: ReasonInvalid, Detail: "manufacturer's keys: " + err.Error(), Partner: donor.Name})
		}
		kvn, _ := rec.Int(native.FieldKVN)
		prof := p.Profiles[c.Profile]
		if prof == nil {
			return fmt.Errorf("card %s: profile %s not configured", iccid, c.Profile)
		}
		otaAlg := rec.Get(native.FieldOTAAlg)
		if otaAlg == "" && kvn > 0 {
			// The manufacturer names none: the card's profile implies it.
			if otaAlg, err = profileOTAAlg(prof, len(secrets[SecKIc])); err != nil {
				return w.Refuse("key set of "+iccid+": ota-alg: "+err.Error(), err)
			}
		}
		if err := p.takeCard(ctx, w, c, prof, rec.Get(native.FieldAlgorithm), int(idx), secrets, int(kvn), otaAlg, 0, nil); err != nil {
			return err
		}
		provisioned++
		w.Counts.Accepted++
		return w.Tx.PutBatchRecord(ctx, ledger.BatchRecord{BatchID: w.BatchID, Line: rec.Line, ICCID: iccid, IMSI: c.IMSI, Status: native.StatusProvisioned, Partner: donor.Name})
	})
	if err != nil {
		return err
	}
	for _, d := range donors {
		if _, err := w.Plan(ctx, "handover-ack", native.HandoverAck.Name, d, false); err != nil {
			return err
		}
	}
	if provisioned > 0 {
		err = w.PlanTo(ctx, "provisioning", native.Provisioning.Name, s.HLR, "hlr")
	}
	return err
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
