package processor

import (
	"context"
	"errors"
	"fmt"

	"resub/formats/native"
	"resub/processor/ledger"
)

// InventoryImport loads cards into the donor's inventory: identities,
// secrets (unwrapped from the sender's transport key and sealed under our
// master key at once), key sets with their counters, profile, and for 3b
// cards the current index and list length. A card imported again with the
// same secrets is a no-op; with different secrets it is rejected.
type InventoryImport struct {
	// Profile is the default card profile when records name none.
	Profile string
}

// InputType implements FileStep.
func (s *InventoryImport) InputType() string { return native.Inventory.Name }

// Apply implements FileStep.
func (s *InventoryImport) Apply(ctx context.Context, w *Work) error {
	p := w.P
	return w.eachRecord(ctx, nil, func(rec *native.Record) error {
		iccid := rec.Get(native.FieldICCID)
		prof := rec.Get(native.FieldProfile)
		if prof == "" {
			prof = s.Profile
		}
		pr, ok := p.Profiles[prof]
		if !ok {
			return w.reject(ctx, rec, w.Partner.Name, ReasonInvalid, fmt.Sprintf("unknown card profile %q", prof))
		}
		idx, _ := rec.Int(native.FieldKeyIndex)
		n, _ := rec.Int(native.FieldKeyListLength)
		if pr.OTA.KeyIndex != nil && (idx == 0 || n == 0) {
			return w.reject(ctx, rec, w.Partner.Name, ReasonInvalid, "a 3b profile needs key-index and key-list-length")
		}
		if pr.OTA.KeyIndex != nil && idx != 1 {
			// Only pair 1 is ever revealed to the first operator.
			return w.Refuse(fmt.Sprintf("security error: line %d gives card %s at key index %d; an inventory gives pair 1 only", rec.Line, iccid, idx), nil)
		}
		secrets, err := w.unwrapSecrets(rec, native.FieldKi, native.FieldOPc, native.FieldKIc, native.FieldKID, native.FieldKIK)
		if err != nil {
			return w.reject(ctx, rec, w.Partner.Name, ReasonInvalid, err.Error())
		}
		defer wipe(secrets)
		kvn, _ := rec.Int(native.FieldKVN)
		counter, _ := rec.Int(native.FieldCounter)
		fp := p.Vault.Fingerprint(secrets[SecKi], secrets[SecOPc], secrets[SecKIc], secrets[SecKID], secrets[SecKIK])
		card := &ledger.Card{
			ICCID: iccid, IMSI: rec.Get(native.FieldIMSI), State: ledger.CardActive, Profile: prof,
			Algorithm: rec.Get(native.FieldAlgorithm), Source: w.File.Name, KeyIndex: int(idx), ListLength: int(n), SecretsFP: fp,
		}
		created, err := w.Tx.InsertCard(ctx, card)
		var ce *ledger.ConflictError
		if errors.As(err, &ce) {
			return w.reject(ctx, rec, w.Partner.Name, ReasonDuplicate, "card already imported with different secrets")
		}
		if err != nil {
			return err
		}
		if created {
			for name, v := range secrets {
				if err := p.seal(ctx, w.Tx, iccid, name, int(idx), v); err != nil {
					return err
				}
			}
			if kvn > 0 {
				if err := w.Tx.PutKeySet(ctx, iccid, ledger.KeySet{KeyIndex: int(idx), KVN: int(kvn), KIcAlg: rec.Get(native.FieldOTAAlg), KIDAlg: rec.Get(native.FieldOTAAlg), Counter: counter}); err != nil {
					return err
				}
			}
		}
		w.Counts.Accepted++
		return w.Tx.PutBatchRecord(ctx, ledger.BatchRecord{BatchID: w.BatchID, Line: rec.Line, ICCID: iccid, IMSI: card.IMSI, Status: recordAccepted, Partner: w.Partner.Name})
	})
}

// unwrapSecrets opens the wrapped secret fields of a record with the
// sender's transport keys. Absent fields are skipped.
func (w *Work) unwrapSecrets(rec *native.Record, fields ...string) (map[string][]byte, error) {
	out := map[string][]byte{}
	for _, f := range fields {
		v := rec.Get(f)
		if v == "" {
			continue
		}
		if w.Partner.Transport == nil {
			wipe(out)
			return nil, fmt.Errorf("%s: no transport key configured for %s", f, w.Partner.Name)
		}
		b, err := w.Partner.Transport.Unwrap(v)
		if err != nil {
			wipe(out)
			return nil, fmt.Errorf("%s: %w", f, err)
		}
		out[f] = b
	}
	return out, nil
}

// MSISDNImport records the MSISDN of each card from the operator's own
// map (vendor files carry none). It works by sets (ledger.MSISDNStage).
type MSISDNImport struct{}

// InputType implements FileStep.
func (MSISDNImport) InputType() string { return native.MSISDNMap.Name }

// Apply implements FileStep.
func (MSISDNImport) Apply(ctx context.Context, w *Work) error {
	stage, err := w.Tx.StageMSISDNs(ctx)
	if err != nil {
		return err
	}
	defer stage.Close(ctx)
	err = w.eachRecord(ctx, nil, func(rec *native.Record) error {
		return stage.Add(ctx, rec.Line, rec.Get(native.FieldICCID), rec.Get(native.FieldIMSI), rec.Get(native.FieldMSISDN))
	})
	if err != nil {
		return err
	}
	accepted, rejected, err := stage.Take(ctx, ledger.MSISDNTake{BatchID: w.BatchID, Partner: w.Partner.Name, Rejected: recordRejected,
		Unknown: ledger.Verdict{Reason: ReasonUnknownICCID, Detail: "no card with this ICCID and IMSI"}})
	if err != nil {
		return err
	}
	w.Counts.Accepted += accepted
	w.Counts.Rejected += rejected
	return nil
}

// Authorisation records the M2M operator's switch authorisation: which of
// its cards may move to which recipient from which date. Only the owner of
// a card may authorise its move. It works by sets
// (ledger.AuthorisationStage): the lines are staged as they are read and
// judged and recorded by a few statements at the end.
type Authorisation struct{}

// InputType implements FileStep.
func (Authorisation) InputType() string { return native.SwitchAuthorisation.Name }

// Apply implements FileStep.
func (Authorisation) Apply(ctx context.Context, w *Work) error {
	stage, err := w.Tx.StageAuthorisations(ctx)
	if err != nil {
		return err
	}
	defer stage.Close(ctx)
	err = w.eachRecord(ctx, nil, func(rec *native.Record) error {
		date, _ := rec.Date(native.FieldCutoverDate)
		return stage.Add(ctx, ledger.AuthorisationLine{Line: rec.Line, ICCID: rec.Get(native.FieldICCID),
			Recipient: rec.Get(native.FieldRecipient), FromDate: date.Format("2006-01-02")})
	})
	if err != nil {
		return err
	}
	out, err := stage.Take(ctx, ledger.AuthorisationTake{
		BatchID: w.BatchID, Partner: w.Partner.Name, Owner: w.Header.Sender, FileID: w.File.ID,
		Event: "owner recorded", Ref: w.Source, Action: "authorise", Rejected: recordRejected,
		Unknown:    ledger.Verdict{Reason: ReasonUnknownICCID},
		OtherOwner: ledger.Verdict{Reason: ReasonNotAuthorised, Detail: "the card belongs to another customer"},
	})
	if err != nil {
		return err
	}
	w.Counts.Accepted += out.Accepted
	w.Counts.Rejected += out.Rejected
	return nil
}
