package processor

import (
	"bufio"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strconv"

	"resub/formats/native"
	"resub/formats/vendor"
	"resub/processor/ledger"
)

// Native implements RawStep: native files start with a header line.
func (s *InventoryImport) Native(r *bufio.Reader) bool {
	b, err := r.Peek(1)
	return err == nil && b[0] == '#'
}

// ApplyRaw implements RawStep: the SIM vendor's output file. For 3b cards
// the file may give pair 1 and the list length only; a later pair refuses
// the whole file as a security error before any card is stored.
func (s *InventoryImport) ApplyRaw(ctx context.Context, w *Work, r io.Reader) error {
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

func (s *InventoryImport) importVendorCard(ctx context.Context, w *Work, h *vendor.Header, c *vendor.Card, pr *Profile) error {
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

// ManufacturerImport is the manufacturer's import of its own batch data:
// one native inventory record per card and key index (every pair of every
// card), sealed at rest; the holder of index 1 is the operator the cards
// were sold to.
type ManufacturerImport struct {
	Holder *Partner
}

// InputType implements FileStep.
func (s *ManufacturerImport) InputType() string { return native.Inventory.Name }

// Apply implements FileStep.
func (s *ManufacturerImport) Apply(ctx context.Context, w *Work) error {
	if s.Holder == nil {
		return fmt.Errorf("manufacturer import: no holder of index 1 configured (to: holder)")
	}
	p := w.P
	return w.eachRecord(ctx, nil, func(rec *native.Record) error {
		iccid := rec.Get(native.FieldICCID)
		idx, _ := rec.Int(native.FieldKeyIndex)
		n, _ := rec.Int(native.FieldKeyListLength)
		if idx < 1 || n < 1 || idx > n {
			return w.reject(ctx, rec, w.Partner.Name, ReasonInvalid, "a key-list card needs key-index and key-list-length")
		}
		secrets, err := w.unwrapSecrets(rec, native.FieldKi, native.FieldOPc, native.FieldKIc, native.FieldKID, native.FieldKIK)
		if err != nil {
			return w.reject(ctx, rec, w.Partner.Name, ReasonInvalid, err.Error())
		}
		defer wipe(secrets)
		kvn, _ := rec.Int(native.FieldKVN)
		otaAlg := rec.Get(native.FieldOTAAlg)
		var algErr error
		if otaAlg == "" && kvn > 0 {
			// The record names none: the card's profile implies it.
			otaAlg, algErr = profileOTAAlg(p.Profiles[rec.Get(native.FieldProfile)], len(secrets[SecKIc]))
		}
		if err := checkSecrets(secrets, rec.Get(native.FieldAlgorithm), otaAlg); err != nil {
			return w.reject(ctx, rec, w.Partner.Name, ReasonInvalid, err.Error())
		}
		if algErr != nil {
			return w.reject(ctx, rec, w.Partner.Name, ReasonInvalid, "ota-alg: "+algErr.Error())
		}
		now := p.now().Format("2006-01-02T15:04:05Z")
		_, err = w.Tx.Exec(ctx, `INSERT INTO mf_cards (iccid, list_length, holder_index, holder, algorithm, profile, batch, created_at, updated_at)
			VALUES (?, ?, 1, ?, ?, ?, ?, ?, ?) ON CONFLICT (iccid) DO NOTHING`,
			iccid, n, s.Holder.Code, rec.Get(native.FieldAlgorithm), rec.Get(native.FieldProfile), w.File.Name, now, now)
		if err != nil {
			return err
		}
		var have int
		if err := w.Tx.QueryRow(ctx, `SELECT COUNT(*) FROM card_secrets WHERE iccid = ? AND key_index = ?`, iccid, idx).Scan(&have); err != nil {
			return err
		}
		if have == 0 {
			for name, v := range secrets {
				if err := p.seal(ctx, w.Tx, iccid, name, int(idx), v); err != nil {
					return err
				}
			}
			if kvn > 0 {
				if err := w.Tx.PutKeySet(ctx, iccid, ledger.KeySet{KeyIndex: int(idx), KVN: int(kvn), KIcAlg: otaAlg, KIDAlg: otaAlg}); err != nil {
					return err
				}
			}
		}
		w.Counts.Accepted++
		return w.Tx.Audit(ctx, p.Name, "card-import", iccid, "index "+strconv.FormatInt(idx, 10)+" holder "+s.Holder.Code)
	})
}
