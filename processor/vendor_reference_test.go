package processor

import (
	"bufio"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"

	"resub/formats/native"
	"resub/formats/vendor"
	"resub/processor/ledger"
)

// InventoryImportPerRecord is the inventory import (native file or vendor
// file) as it was done before it worked by sets, a card at a time: the
// reference the set-based import's ledger is compared with.
type InventoryImportPerRecord struct {
	InventoryImport
}

// Native implements RawStep.
func (s *InventoryImportPerRecord) Native(r *bufio.Reader) bool { return s.InventoryImport.Native(r) }

// findsDuplicates: the reader finds repeats, as it did.
func (s *InventoryImportPerRecord) findsDuplicates() bool { return false }

// ApplyRaw implements RawStep: the SIM vendor's output file. For 3b cards
// the file may give pair 1 and the list length only; a later pair refuses
// the whole file as a security error before any card is stored.
func (s *InventoryImportPerRecord) ApplyRaw(ctx context.Context, w *Work, r io.Reader) error {
	p := w.P
	threeB := false
	if pr := p.Profiles[s.Profile]; pr != nil && pr.OTA.KeyIndex != nil {
		threeB = true
	}
	rd := vendor.NewReader(r, vendor.Options{File: w.File.Name, ICCID: w.Partner.ICCIDRules, KeyList: threeB, MaxLineLength: p.MaxLineBytes, Limits: p.Limits})
	h, err := rd.Header()
	if err != nil && (h == nil || !native.Recoverable(err)) {
		return w.Refuse("vendor header: "+firstProblem(err), err)
	}
	prof := h.Profile
	if _, ok := p.Profiles[prof]; !ok || prof == "" {
		prof = s.Profile
	}
	pr := p.Profiles[prof]
	if pr == nil {
		return w.Refuse(fmt.Sprintf("no card profile for the file (header says %q, job none)", h.Profile), nil)
	}
	for {
		c, err := rd.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			if !native.Recoverable(err) || fileLevel(err) {
				return w.Refuse(firstProblem(err), err)
			}
			w.Counts.Records++
			w.Counts.Rejected++
			line := 0
			if ps := native.Problems(err); len(ps) > 0 {
				line = ps[0].Line
			}
			iccid := ""
			if c != nil {
				iccid = c.ICCID
				c.Zero()
			}
			if err := w.Tx.PutBatchRecord(ctx, ledger.BatchRecord{BatchID: w.BatchID, Line: line, ICCID: iccid, Status: recordRejected, Reason: reasonOf(err), Detail: firstProblem(err), Partner: w.Partner.Name}); err != nil {
				return err
			}
			continue
		}
		w.Counts.Records++
		err = s.importVendorCard(ctx, w, h, c, pr)
		c.Zero()
		if err != nil {
			return err
		}
	}
	return nil
}

func (s *InventoryImportPerRecord) importVendorCard(ctx context.Context, w *Work, h *vendor.Header, c *vendor.Card, pr *Profile) error {
	p := w.P
	reject := func(reason, detail string) error {
		w.Counts.Rejected++
		return w.Tx.PutBatchRecord(ctx, ledger.BatchRecord{BatchID: w.BatchID, Line: c.Line, ICCID: c.ICCID, IMSI: c.IMSI, Status: recordRejected, Reason: reason, Detail: detail, Partner: w.Partner.Name})
	}
	secrets := map[string][]byte{}
	defer wipe(secrets)
	open := func(name string, v []byte) error {
		if len(v) == 0 {
			return nil
		}
		if !c.Encrypted {
			secrets[name] = append([]byte(nil), v...)
			return nil
		}
		if w.Partner.Transport == nil {
			return fmt.Errorf("secrets encrypted under %q but no transport key configured", h.TransportKey)
		}
		b, err := w.Partner.Transport.Unwrap(h.TransportKey + ":" + hex.EncodeToString(v))
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		secrets[name] = b
		return nil
	}
	kvn := 0
	if err := open(SecKi, c.Ki); err != nil {
		return reject(ReasonInvalid, err.Error())
	}
	if err := open(SecOPc, c.OPc); err != nil {
		return reject(ReasonInvalid, err.Error())
	}
	if len(c.KeySets) > 0 {
		ks := c.KeySets[0]
		kvn = ks.KVN
		for _, kv := range []struct {
			n string
			v []byte
		}{{SecKIc, ks.KIc}, {SecKID, ks.KID}, {SecKIK, ks.KIK}} {
			if err := open(kv.n, kv.v); err != nil {
				return reject(ReasonInvalid, err.Error())
			}
		}
	}
	idx, n := 0, 0
	if pr.OTA.KeyIndex != nil {
		idx, n = 1, c.KeyListLength
		if n == 0 {
			n = h.KeyListLength
		}
		if n < 1 {
			return reject(ReasonInvalid, "3b card without a key list length")
		}
	}
	// The vendor's file names no OTA cipher: the importing job's
	// profile implies it, recorded with the key set (the handover needs
	// it: a 16-octet key is AES-128 or 3DES with two keys).
	otaAlg := ""
	var algErr error
	if kvn > 0 {
		otaAlg, algErr = profileOTAAlg(pr, len(secrets[SecKIc]))
	}
	alg := c.Algorithm
	if alg == "" {
		alg = h.Algorithm
	}
	if alg == "" {
		alg = pr.Algorithm
	}
	// A secret of a wrong length is named as such before the cipher it
	// leaves undetermined.
	if err := checkSecrets(secrets, alg, otaAlg); err != nil {
		return reject(ReasonInvalid, err.Error())
	}
	if algErr != nil {
		return reject(ReasonInvalid, "ota-alg: "+algErr.Error())
	}
	fp := p.Vault.Fingerprint(secrets[SecKi], secrets[SecOPc], secrets[SecKIc], secrets[SecKID], secrets[SecKIK])
	card := &ledger.Card{ICCID: c.ICCID, IMSI: c.IMSI, State: ledger.CardActive, Profile: pr.Name, Algorithm: alg, Source: w.File.Name,
		KeyIndex: idx, ListLength: n, SecretsFP: fp}
	created, err := w.Tx.InsertCard(ctx, card)
	var ce *ledger.ConflictError
	if errors.As(err, &ce) {
		return reject(ReasonDuplicate, "card already imported with different secrets")
	}
	if err != nil {
		return err
	}
	if created {
		for name, v := range secrets {
			if err := p.seal(ctx, w.Tx, c.ICCID, name, idx, v); err != nil {
				return err
			}
		}
		if kvn > 0 {
			counter := c.Counter
			if counter < 0 {
				counter = 0
			}
			if err := w.Tx.PutKeySet(ctx, c.ICCID, ledger.KeySet{KeyIndex: idx, KVN: kvn, KIcAlg: otaAlg, KIDAlg: otaAlg, Counter: counter}); err != nil {
				return err
			}
		}
	}
	w.Counts.Accepted++
	return w.Tx.PutBatchRecord(ctx, ledger.BatchRecord{BatchID: w.BatchID, Line: c.Line, ICCID: c.ICCID, IMSI: c.IMSI, Status: recordAccepted, Partner: w.Partner.Name})
}

// Apply implements FileStep.
func (s *InventoryImportPerRecord) Apply(ctx context.Context, w *Work) error {
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
		otaAlg := rec.Get(native.FieldOTAAlg)
		var algErr error
		if otaAlg == "" && kvn > 0 {
			// The file names none: the profile implies it.
			otaAlg, algErr = profileOTAAlg(pr, len(secrets[SecKIc]))
		}
		if err := checkSecrets(secrets, rec.Get(native.FieldAlgorithm), otaAlg); err != nil {
			return w.reject(ctx, rec, w.Partner.Name, ReasonInvalid, err.Error())
		}
		if algErr != nil {
			return w.reject(ctx, rec, w.Partner.Name, ReasonInvalid, "ota-alg: "+algErr.Error())
		}
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
				if err := w.Tx.PutKeySet(ctx, iccid, ledger.KeySet{KeyIndex: int(idx), KVN: int(kvn), KIcAlg: otaAlg, KIDAlg: otaAlg, Counter: counter}); err != nil {
					return err
				}
			}
		}
		w.Counts.Accepted++
		return w.Tx.PutBatchRecord(ctx, ledger.BatchRecord{BatchID: w.BatchID, Line: rec.Line, ICCID: iccid, IMSI: card.IMSI, Status: recordAccepted, Partner: w.Partner.Name})
	})
}
