package processor

import (
	"context"
	"errors"
	"strconv"

	"resub/formats/native"
	"resub/processor/ledger"
)

// MSISDNImportPerRecord is the MSISDN map intake as it was done before it
// worked by sets, a record at a time: the reference the set-based step's
// ledger is compared with.
type MSISDNImportPerRecord struct{}

// InputType implements FileStep.
func (MSISDNImportPerRecord) InputType() string { return native.MSISDNMap.Name }

// Apply implements FileStep.
func (MSISDNImportPerRecord) Apply(ctx context.Context, w *Work) error {
	return w.eachRecord(ctx, nil, func(rec *native.Record) error {
		err := w.Tx.SetMSISDN(ctx, rec.Get(native.FieldICCID), rec.Get(native.FieldIMSI), rec.Get(native.FieldMSISDN))
		if errors.Is(err, ledger.ErrNotFound) {
			return w.reject(ctx, rec, w.Partner.Name, ReasonUnknownICCID, "no card with this ICCID and IMSI")
		}
		if err != nil {
			return err
		}
		w.Counts.Accepted++
		return nil
	})
}

// AuthorisationPerRecord is the switch authorisation as it was done
// before it worked by sets, a record at a time: the reference the
// set-based step's ledger is compared with.
type AuthorisationPerRecord struct{}

// InputType implements FileStep.
func (AuthorisationPerRecord) InputType() string { return native.SwitchAuthorisation.Name }

// Apply implements FileStep.
func (AuthorisationPerRecord) Apply(ctx context.Context, w *Work) error {
	return w.eachRecord(ctx, nil, func(rec *native.Record) error {
		iccid := rec.Get(native.FieldICCID)
		c, err := w.Tx.Card(ctx, iccid)
		if errors.Is(err, ledger.ErrNotFound) {
			return w.reject(ctx, rec, w.Partner.Name, ReasonUnknownICCID, "")
		}
		if err != nil {
			return err
		}
		if c.Owner != "" && c.Owner != w.Header.Sender {
			return w.reject(ctx, rec, w.Partner.Name, ReasonNotAuthorised, "the card belongs to another customer")
		}
		if c.Owner == "" {
			if err := w.Tx.Transition(ctx, iccid, nil, c.State, "owner recorded", w.Source, &ledger.CardUpdate{Owner: &w.Header.Sender}); err != nil {
				return err
			}
		}
		date, _ := rec.Date(native.FieldCutoverDate)
		err = w.Tx.PutAuthorisation(ctx, ledger.Authorisation{ICCID: iccid, Recipient: rec.Get(native.FieldRecipient),
			FromDate: date.Format("2006-01-02"), Owner: w.Header.Sender, FileID: w.File.ID})
		if err != nil {
			return err
		}
		w.Counts.Accepted++
		return w.Tx.Audit(ctx, w.Header.Sender, "authorise", iccid, "to "+rec.Get(native.FieldRecipient)+" from "+date.Format("2006-01-02")+" line "+strconv.Itoa(rec.Line))
	})
}
