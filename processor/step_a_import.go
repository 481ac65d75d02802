package processor

import (
	"context"
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

// findsDuplicates: the stage finds repeated ICCIDs and IMSIs of a native
// inventory (a vendor file's too, see ApplyRaw), so that the reader keeps
// nothing per record.
func (s *InventoryImport) findsDuplicates() bool { return true }

// Apply implements FileStep. It works by sets (ledger.ImportStage): the
// cards' secrets are unwrapped from the sender's transport key and sealed
// under our master key on the other cores while the file is read, the
// sealed cards are staged in line order, and a few statements judge them
// against the ledger and store them at the end.
func (s *InventoryImport) Apply(ctx context.Context, w *Work) error {
	p := w.P
	stage, err := w.Tx.StageImport(ctx, importSecrets)
	if err != nil {
		return err
	}
	defer stage.Close(ctx)
	pipe := newOrderedPipe(ctx, func(it *inventoryItem) error {
		return sealInventoryCard(p, w.Partner, it)
	}, func(it *inventoryItem) error {
		return stage.Add(ctx, it.line)
	}, nil)
	defer pipe.stop()
	rd := w.Reader
	err = w.eachRecordOr(ctx, nil, func(rec *native.Record) error {
		it, err := s.inventoryItem(w, rec)
		if err != nil {
			return err
		}
		iccid, imsi := rd.DuplicateKeys(rec)
		it.line.NoICCIDKey, it.line.NoIMSIKey = iccid == "", imsi == ""
		return pipe.add(it)
	}, func(rec *native.Record, problems error) (error, error) {
		// A record the reader rejected: staged for its keys, every
		// earlier record staged first; a repeat it makes is named as the
		// reader would have.
		keys := ledger.ImportLine{KeysOnly: true}
		if ps := native.Problems(problems); len(ps) > 0 {
			keys.Line = ps[0].Line
		}
		if rec != nil {
			keys.Line = rec.Line
			keys.ICCID, keys.IMSI = rd.DuplicateKeys(rec)
		}
		if err := pipe.sync(); err != nil {
			return nil, err
		}
		if keys.ICCID != "" || keys.IMSI != "" {
			iccid, imsi, err := stage.Repeats(ctx, keys.Line, keys.ICCID, keys.IMSI)
			if err != nil {
				return nil, err
			}
			problems = rd.WithRepeats(rec, problems, iccid, imsi)
		}
		if keys.Line > 0 {
			if err := stage.Add(ctx, keys); err != nil {
				return nil, err
			}
		}
		return problems, nil
	})
	if err != nil {
		return err
	}
	if err := pipe.finish(); err != nil {
		return err
	}
	return w.takeImport(ctx, stage, duplicateVerdict(w, native.FieldICCID), duplicateVerdict(w, native.FieldIMSI), false, false)
}

// inventoryItem is one card of a native inventory on its way to the
// stage: what the stage keeps, and the record's wrapped secret fields by
// importSecrets (the record itself is reused by the reader).
type inventoryItem struct {
	line    ledger.ImportLine
	pr      *Profile
	wrapped []string
}

// inventoryItem judges a record by the checks that need neither the
// ledger nor a key, in the import's order: a known card profile, a 3b
// card's key index and list length (a later pair than the first refuses
// the whole file as a security error). A failed check is the line's
// verdict.
func (s *InventoryImport) inventoryItem(w *Work, rec *native.Record) (inventoryItem, error) {
	iccid := rec.Get(native.FieldICCID)
	prof := rec.Get(native.FieldProfile)
	if prof == "" {
		prof = s.Profile
	}
	idx, _ := rec.Int(native.FieldKeyIndex)
	n, _ := rec.Int(native.FieldKeyListLength)
	kvn, _ := rec.Int(native.FieldKVN)
	counter, _ := rec.Int(native.FieldCounter)
	it := inventoryItem{line: ledger.ImportLine{Line: rec.Line, ICCID: iccid, IMSI: rec.Get(native.FieldIMSI), Profile: prof,
		Algorithm: rec.Get(native.FieldAlgorithm), Source: w.File.Name, KeyIndex: int(idx), ListLength: int(n),
		KVN: int(kvn), KIcAlg: rec.Get(native.FieldOTAAlg), KIDAlg: rec.Get(native.FieldOTAAlg), Counter: counter}}
	l := &it.line
	pr, ok := w.P.Profiles[prof]
	if !ok {
		l.Reason, l.Detail = ReasonInvalid, fmt.Sprintf("unknown card profile %q", prof)
		return it, nil
	}
	it.pr = pr
	if pr.OTA.KeyIndex != nil && (idx == 0 || n == 0) {
		l.Reason, l.Detail = ReasonInvalid, "a 3b profile needs key-index and key-list-length"
		return it, nil
	}
	if pr.OTA.KeyIndex != nil && idx != 1 {
		// Only pair 1 is ever revealed to the first operator.
		return it, w.Refuse(fmt.Sprintf("security error: line %d gives card %s at key index %d; an inventory gives pair 1 only", rec.Line, iccid, idx), nil)
	}
	it.wrapped = make([]string, len(importSecrets))
	for i, name := range importSecrets {
		it.wrapped[i] = rec.Get(name)
	}
	return it, nil
}

// sealInventoryCard unwraps a card's secrets from the sender's transport
// key (a field that does not open is the line's verdict), seals them under
// our master key and fingerprints them. A secret that does not seal fails
// the work.
func sealInventoryCard(p *Party, from *Partner, it *inventoryItem) error {
	l := &it.line
	if l.Reason != "" {
		return nil
	}
	secrets, err := unwrapFields(from, importSecrets, it.wrapped)
	it.wrapped = nil
	if err != nil {
		l.Reason, l.Detail = ReasonInvalid, err.Error()
		return nil
	}
	defer wipe(secrets)
	if !checkImportSecrets(l, it.pr, secrets) {
		return nil
	}
	return sealImportLine(p.Vault, l, secrets)
}

// checkImportSecrets checks the lengths of a card's opened secrets against
// their algorithms: the card's (l.Algorithm) and its key set's — the
// file's (l.KIcAlg), else the one the card profile implies
// (profileOTAAlg) — and records the key set's algorithm in l. A secret of
// a wrong length is named as such (the field, never the value) before the
// OTA cipher it leaves undetermined. A failed check is the line's verdict;
// it reports whether the line passed.
func checkImportSecrets(l *ledger.ImportLine, pr *Profile, secrets map[string][]byte) bool {
	otaAlg := l.KIcAlg
	var algErr error
	if otaAlg == "" && l.KVN > 0 {
		// The file names none: the profile implies it.
		otaAlg, algErr = profileOTAAlg(pr, len(secrets[SecKIc]))
	}
	if err := checkSecrets(secrets, l.Algorithm, otaAlg); err != nil {
		l.Reason, l.Detail = ReasonInvalid, err.Error()
		return false
	}
	if algErr != nil {
		l.Reason, l.Detail = ReasonInvalid, "ota-alg: "+algErr.Error()
		return false
	}
	l.KIcAlg, l.KIDAlg = otaAlg, otaAlg
	return true
}

// sealImportLine seals a card's opened secrets under the master key into
// l, by importSecrets, and fingerprints them.
func sealImportLine(v Vault, l *ledger.ImportLine, secrets map[string][]byte) error {
	l.Sealed = make([][]byte, len(importSecrets))
	for i, name := range importSecrets {
		plain, ok := secrets[name]
		if !ok {
			continue
		}
		blob, err := v.Seal(secretAAD(l.ICCID, name, l.KeyIndex), plain)
		if err != nil {
			return fmt.Errorf("seal %s of %s: %w", name, l.ICCID, err)
		}
		l.Sealed[i] = blob
	}
	l.SecretsFP = v.Fingerprint(secrets[SecKi], secrets[SecOPc], secrets[SecKIc], secrets[SecKID], secrets[SecKIK])
	return nil
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

// findsDuplicates: the stage finds repeated ICCIDs, IMSIs and MSISDNs, so
// that the reader keeps nothing per record.
func (MSISDNImport) findsDuplicates() bool { return true }

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
		DuplicateICCID:  duplicateVerdict(w, native.FieldICCID),
		DuplicateIMSI:   duplicateVerdict(w, native.FieldIMSI),
		DuplicateMSISDN: duplicateVerdict(w, native.FieldMSISDN),
		Unknown:         ledger.Verdict{Reason: ReasonUnknownICCID, Detail: "no card with this ICCID and IMSI"}})
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

// findsDuplicates: the stage finds repeated ICCIDs, so that the reader
// keeps nothing per record.
func (Authorisation) findsDuplicates() bool { return true }

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
		DuplicateICCID: duplicateVerdict(w, native.FieldICCID),
		Unknown:        ledger.Verdict{Reason: ReasonUnknownICCID},
		OtherOwner:     ledger.Verdict{Reason: ReasonNotAuthorised, Detail: "the card belongs to another customer"},
	})
	if err != nil {
		return err
	}
	w.Counts.Accepted += out.Accepted
	w.Counts.Rejected += out.Rejected
	return nil
}
