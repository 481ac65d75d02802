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
	// The stage finds repeated ICCIDs and IMSIs: the reader keeps nothing
	// per card.
	rd := vendor.NewReader(r, vendor.Options{File: w.File.Name, ICCID: w.Partner.ICCIDRules, KeyList: threeB, MaxLineLength: p.MaxLineBytes, Limits: p.Limits,
		CallerFindsDuplicates: true})
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
	stage, err := w.Tx.StageImport(ctx, importSecrets)
	if err != nil {
		return err
	}
	defer stage.Close(ctx)
	// The cards' secrets are unwrapped, checked, sealed under our master
	// key and fingerprinted on the other cores while this goroutine reads
	// on; the sealed cards are staged in line order.
	pipe := newOrderedPipe(ctx, func(it *vendorItem) error {
		return s.sealVendorCard(p, w.Partner, h, pr, it)
	}, func(it *vendorItem) error {
		return stage.Add(ctx, it.line)
	}, func(it *vendorItem) { it.zero() })
	defer pipe.stop()
	for {
		c, err := rd.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			if !native.Recoverable(err) || fileLevel(err) {
				if c != nil {
					c.Zero()
				}
				return w.Refuse(firstProblem(err), err)
			}
			err = w.rejectVendorLine(ctx, rd, pipe, stage, c, err)
			if c != nil {
				c.Zero()
			}
			if err != nil {
				return err
			}
			continue
		}
		w.Counts.Records++
		if w.Counts.Records%progressEvery == 0 {
			p.progress("records", w.Counts.Records)
		}
		it := newVendorItem(w, h, c, pr)
		ic, im := rd.DuplicateKeys(c)
		it.line.NoICCIDKey, it.line.NoIMSIKey = ic == "", im == ""
		c.Zero()
		if err := pipe.add(it); err != nil {
			return err
		}
	}
	if err := pipe.finish(); err != nil {
		return err
	}
	iccidCol, imsiCol, imsiFirst := rd.KeyColumns()
	return w.takeImport(ctx, stage, duplicateVerdict(w, iccidCol), duplicateVerdict(w, imsiCol), imsiFirst, true)
}

// rejectVendorLine answers a line the reader rejected (c is its card, nil
// when the line could not be split), naming a repeat of an earlier line's
// ICCID or IMSI as the reader would have had it found repeats itself, and
// stages the line for its keys (the repeats of later lines and the bound
// on lines with problems).
func (w *Work) rejectVendorLine(ctx context.Context, rd *vendor.Reader, pipe *orderedPipe[vendorItem], stage *ledger.ImportStage, c *vendor.Card, err error) error {
	w.Counts.Records++
	w.Counts.Rejected++
	keys := ledger.ImportLine{KeysOnly: true}
	br := ledger.BatchRecord{BatchID: w.BatchID, Status: recordRejected, Partner: w.Partner.Name}
	if ps := native.Problems(err); len(ps) > 0 {
		keys.Line = ps[0].Line
	}
	if c != nil {
		keys.Line, br.ICCID = c.Line, c.ICCID
		keys.ICCID, keys.IMSI = rd.DuplicateKeys(c)
	}
	// Every earlier line is staged before this one.
	if err := pipe.sync(); err != nil {
		return err
	}
	if keys.ICCID != "" || keys.IMSI != "" {
		iccid, imsi, rerr := stage.Repeats(ctx, keys.Line, keys.ICCID, keys.IMSI)
		if rerr != nil {
			return rerr
		}
		err = rd.WithRepeats(c, err, iccid, imsi)
	}
	if keys.Line > 0 {
		if err := stage.Add(ctx, keys); err != nil {
			return err
		}
	}
	br.Line, br.Reason, br.Detail = keys.Line, reasonOf(err), firstProblem(err)
	return w.Tx.PutBatchRecord(ctx, br)
}

// takeImport judges and takes the cards staged for an import (vendor file
// or native inventory) and counts the answers.
// A line repeating an earlier line's ICCID or IMSI is a duplicate
// (dupICCID, dupIMSI: the reader's words), both named in column order
// (imsiFirst), answered without the IMSI for a vendor file (as its
// reader's rejections are); the repeats count towards limits.max_record_errors as the
// reader's own rejections do.
func (w *Work) takeImport(ctx context.Context, stage *ledger.ImportStage, dupICCID, dupIMSI ledger.Verdict, imsiFirst, vendorFile bool) error {
	out, err := stage.Take(ctx, ledger.ImportTake{
		BatchID: w.BatchID, Partner: w.Partner.Name, State: ledger.CardActive, MasterKey: w.P.Vault.KeyID(),
		Accepted: recordAccepted, Rejected: recordRejected,
		DuplicateICCID: dupICCID, DuplicateIMSI: dupIMSI, IMSIFirst: imsiFirst, RepeatsWithoutIMSI: vendorFile,
		MaxProblems:  w.P.Limits.MaxRecordErrors,
		OtherSecrets: ledger.Verdict{Reason: ReasonDuplicate, Detail: "card already imported with different secrets"},
	})
	if err != nil {
		return err
	}
	if out.TooMany > 0 {
		pe := native.TooManyErrors(w.File.Name, w.P.Limits.MaxRecordErrors, out.TooMany)
		return w.Refuse(firstProblem(native.Fatal(pe)), native.Fatal(pe))
	}
	w.Counts.Accepted += out.Accepted
	w.Counts.Rejected += out.Rejected
	return stage.Close(ctx)
}

// importSecrets are the secrets of an imported card, in the order the
// stage keeps them (ledger.ImportLine.Sealed).
var importSecrets = []string{SecKi, SecOPc, SecKIc, SecKID, SecKIK}

// vendorItem is one card of a vendor file on its way to the stage: what
// the stage keeps, and the card's secret fields as read (copied: the
// reader's card is zeroed at once), by importSecrets.
type vendorItem struct {
	line      ledger.ImportLine
	raw       [][]byte
	encrypted bool
	// listLength is the card's key list length (3b), 0 when the card
	// gives none.
	listLength int
}

func newVendorItem(w *Work, h *vendor.Header, c *vendor.Card, pr *Profile) vendorItem {
	it := vendorItem{encrypted: c.Encrypted, listLength: c.KeyListLength, raw: make([][]byte, len(importSecrets))}
	it.line = ledger.ImportLine{Line: c.Line, ICCID: c.ICCID, IMSI: c.IMSI, Profile: pr.Name, Source: w.File.Name}
	cp := func(b []byte) []byte {
		if len(b) == 0 {
			return nil
		}
		return append([]byte(nil), b...)
	}
	it.raw[0], it.raw[1] = cp(c.Ki), cp(c.OPc)
	if len(c.KeySets) > 0 {
		ks := c.KeySets[0]
		it.line.KVN = ks.KVN
		it.raw[2], it.raw[3], it.raw[4] = cp(ks.KIc), cp(ks.KID), cp(ks.KIK)
	}
	counter := c.Counter
	if counter < 0 {
		counter = 0
	}
	it.line.Counter = counter
	alg := c.Algorithm
	if alg == "" {
		alg = h.Algorithm
	}
	if alg == "" {
		alg = pr.Algorithm
	}
	it.line.Algorithm = alg
	return it
}

// zero overwrites the item's secret fields as read.
func (it *vendorItem) zero() {
	for _, b := range it.raw {
		clear(b)
	}
}

// sealVendorCard judges one card by the checks that need no ledger, as a
// card of a vendor file always was — each secret must open under the
// sender's transport key, a 3b card needs its key list length — then
// seals its secrets under our master key and fingerprints them. A failed
// check is the line's verdict; a secret that does not seal fails the
// work.
func (s *InventoryImport) sealVendorCard(p *Party, from *Partner, h *vendor.Header, pr *Profile, it *vendorItem) error {
	defer it.zero()
	l := &it.line
	secrets := map[string][]byte{}
	defer wipe(secrets)
	open := func(name string, v []byte) error {
		if len(v) == 0 {
			return nil
		}
		if !it.encrypted {
			secrets[name] = append([]byte(nil), v...)
			return nil
		}
		if from.Transport == nil {
			return fmt.Errorf("secrets encrypted under %q but no transport key configured", h.TransportKey)
		}
		b, err := from.Transport.Unwrap(h.TransportKey + ":" + hex.EncodeToString(v))
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		secrets[name] = b
		return nil
	}
	for i, name := range importSecrets {
		if err := open(name, it.raw[i]); err != nil {
			l.Reason, l.Detail = ReasonInvalid, err.Error()
			return nil
		}
	}
	if pr.OTA.KeyIndex != nil {
		n := it.listLength
		if n == 0 {
			n = h.KeyListLength
		}
		if n < 1 {
			l.Reason, l.Detail = ReasonInvalid, "3b card without a key list length"
			return nil
		}
		l.KeyIndex, l.ListLength = 1, n
	}
	// The vendor's file names no OTA cipher (l.KIcAlg is empty): the
	// importing job's profile implies it, recorded with the key set (the
	// handover needs it: a 16-octet key is AES-128 or 3DES with two keys).
	if !checkImportSecrets(l, pr, secrets) {
		return nil
	}
	return sealImportLine(p.Vault, l, secrets)
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
