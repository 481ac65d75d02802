package processor

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"

	"resub/formats/native"
	"resub/processor/ledger"
)

// Outcomes of a key request at the manufacturer.
const (
	keyReleased = native.StatusReleased
	keyRefused  = native.StatusRefused
)

// KeyReleaseIntake is the manufacturer's step over a holder's key-release:
// the holder of index n-1 says which operator may fetch index n. Only the
// current holder may release, only the next index.
type KeyReleaseIntake struct{}

// InputType implements FileStep.
func (KeyReleaseIntake) InputType() string { return native.KeyRelease.Name }

// Apply implements FileStep.
func (KeyReleaseIntake) Apply(ctx context.Context, w *Work) error {
	sender := w.Header.Sender
	return w.eachRecord(ctx, nil, func(rec *native.Record) error {
		iccid := rec.Get(native.FieldICCID)
		idx, _ := rec.Int(native.FieldKeyIndex)
		recipient := rec.Get(native.FieldRecipient)
		var holder string
		var holderIdx, listLen int64
		err := w.Tx.QueryRow(ctx, `SELECT holder, holder_index, list_length FROM mf_cards WHERE iccid = ?`, iccid).Scan(&holder, &holderIdx, &listLen)
		refuse := func(reason, detail string) error {
			w.Counts.Rejected++
			if err := w.Tx.Audit(ctx, sender, "key-release-refused", iccid, fmt.Sprintf("index %d to %s: %s %s", idx, recipient, reason, detail)); err != nil {
				return err
			}
			return w.Tx.PutBatchRecord(ctx, ledger.BatchRecord{BatchID: w.BatchID, Line: rec.Line, ICCID: iccid, Status: recordRejected, Reason: reason, Detail: detail, Partner: w.Partner.Name})
		}
		switch {
		case errors.Is(err, sql.ErrNoRows):
			return refuse(ReasonUnknownICCID, "")
		case err != nil:
			return err
		case holder != sender:
			return refuse(ReasonNotAuthorised, "only the holder of the current index may release the next")
		case idx != holderIdx+1:
			return refuse(ReasonKeyIndex, fmt.Sprintf("the holder has index %d: only %d can be released", holderIdx, holderIdx+1))
		case idx > listLen:
			return refuse(ReasonListExhausted, fmt.Sprintf("the list has %d pairs", listLen))
		case w.P.PartnerByCode(recipient) == nil:
			return refuse(ReasonInvalid, "recipient "+recipient+" is not a known operator")
		}
		_, err = w.Tx.Exec(ctx, `INSERT INTO mf_releases (iccid, key_index, released_by, recipient, file_id, created_at) VALUES (?, ?, ?, ?, ?, ?)
			ON CONFLICT (iccid, key_index) DO UPDATE SET released_by = excluded.released_by, recipient = excluded.recipient, file_id = excluded.file_id`,
			iccid, idx, sender, recipient, w.File.ID, w.P.now().Format("2006-01-02T15:04:05Z"))
		if err != nil {
			return err
		}
		w.Counts.Accepted++
		return w.Tx.Audit(ctx, sender, "key-release", iccid, fmt.Sprintf("index %d to %s", idx, recipient))
	})
}

// KeyRequestIntake is the manufacturer's step over a key request: the pair
// at (ICCID, index) goes only to the operator the previous holder released
// it to; the same request ID always gets the same answer; every refusal is
// audited.
type KeyRequestIntake struct{}

// InputType implements FileStep.
func (KeyRequestIntake) InputType() string { return native.KeyRequest.Name }

// Apply implements FileStep.
func (KeyRequestIntake) Apply(ctx context.Context, w *Work) error {
	requester := w.Header.Sender
	err := w.eachRecord(ctx, nil, func(rec *native.Record) error {
		reqID := rec.Get(native.FieldRequestID)
		iccid := rec.Get(native.FieldICCID)
		idx, _ := rec.Int(native.FieldKeyIndex)
		put := func(outcome, reason, detail string) error {
			if outcome == keyReleased {
				w.Counts.Accepted++
			} else {
				w.Counts.Rejected++
			}
			return w.Tx.PutBatchRecord(ctx, ledger.BatchRecord{BatchID: w.BatchID, Line: rec.Line, ICCID: iccid, Status: outcome,
				Reason: reason, Detail: detail, Partner: w.Partner.Name, Data: reqID + " " + strconv.FormatInt(idx, 10)})
		}
		// The same request again: the same answer.
		var prevIccid, outcome, reason string
		var prevIdx int64
		err := w.Tx.QueryRow(ctx, `SELECT iccid, key_index, outcome, reason FROM mf_requests WHERE requester = ? AND request_id = ?`, requester, reqID).
			Scan(&prevIccid, &prevIdx, &outcome, &reason)
		if err == nil {
			if prevIccid != iccid || prevIdx != idx {
				detail := "request ID " + reqID + " was used for another card or index"
				if err := w.Tx.Audit(ctx, requester, "key-request-refused", iccid, fmt.Sprintf("request %s index %d %s %s", reqID, idx, ReasonDuplicate, detail)); err != nil {
					return err
				}
				return put(keyRefused, ReasonDuplicate, detail)
			}
			return put(outcome, reason, "repeated request")
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		decide := func() (string, string, string, error) {
			var holder string
			var holderIdx, listLen int64
			err := w.Tx.QueryRow(ctx, `SELECT holder, holder_index, list_length FROM mf_cards WHERE iccid = ?`, iccid).Scan(&holder, &holderIdx, &listLen)
			if errors.Is(err, sql.ErrNoRows) {
				return keyRefused, ReasonUnknownICCID, "", nil
			}
			if err != nil {
				return "", "", "", err
			}
			if idx > listLen {
				return keyRefused, ReasonListExhausted, fmt.Sprintf("index %d is beyond the list of %d", idx, listLen), nil
			}
			if idx < holderIdx || (idx == holderIdx && holder != requester) {
				return keyRefused, ReasonKeyIndex, fmt.Sprintf("index %d is below the card's current %d", idx, holderIdx), nil
			}
			if idx == holderIdx && holder == requester {
				return keyReleased, "", "already held", nil
			}
			var to string
			err = w.Tx.QueryRow(ctx, `SELECT recipient FROM mf_releases WHERE iccid = ? AND key_index = ?`, iccid, idx).Scan(&to)
			if errors.Is(err, sql.ErrNoRows) {
				return keyRefused, ReasonNotAuthorised, fmt.Sprintf("index %d was not released", idx), nil
			}
			if err != nil {
				return "", "", "", err
			}
			if to != requester {
				return keyRefused, ReasonNotAuthorised, "index released to another operator", nil
			}
			if _, err := w.Tx.Exec(ctx, `UPDATE mf_cards SET holder = ?, holder_index = ?, updated_at = ? WHERE iccid = ?`, requester, idx, w.P.now().Format("2006-01-02T15:04:05Z"), iccid); err != nil {
				return "", "", "", err
			}
			return keyReleased, "", "", nil
		}
		outcome, reason, detail, err := decide()
		if err != nil {
			return err
		}
		if _, err := w.Tx.Exec(ctx, `INSERT INTO mf_requests (request_id, requester, iccid, key_index, outcome, reason, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)`,
			reqID, requester, iccid, idx, outcome, reason, w.P.now().Format("2006-01-02T15:04:05Z")); err != nil {
			return err
		}
		action := "key-released"
		if outcome == keyRefused {
			action = "key-request-refused"
		}
		if err := w.Tx.Audit(ctx, requester, action, iccid, fmt.Sprintf("request %s index %d %s %s", reqID, idx, reason, detail)); err != nil {
			return err
		}
		return put(outcome, reason, detail)
	})
	if err != nil {
		return err
	}
	// Lines too malformed to answer are refusals too: audited.
	var bad []ledger.BatchRecord
	if err := w.Tx.QueryRowsBatch(ctx, w.BatchID, recordRejected, func(r ledger.BatchRecord) { bad = append(bad, r) }); err != nil {
		return err
	}
	for _, r := range bad {
		if err := w.Tx.Audit(ctx, requester, "key-request-refused", r.ICCID, fmt.Sprintf("line %d: %s", r.Line, r.Detail)); err != nil {
			return err
		}
	}
	_, err = w.Plan(ctx, "key-response", native.KeyResponse.Name, w.Partner, true)
	return err
}

// renderKeyRequest writes the key requests of a handover intake batch.
var renderKeyRequest = &renderer{
	schema: native.KeyRequest,
	count: func(ctx context.Context, p *Party, o *ledger.Output) (int, error) {
		return p.Ledger.CountBatchRecords(ctx, o.BatchID, o.Partner, recordRequested)
	},
	records: func(ctx context.Context, p *Party, o *ledger.Output, emit func(*native.Record) error) error {
		rec := native.NewRecord(native.KeyRequest)
		return p.Ledger.BatchRecords(ctx, o.BatchID, o.Partner, recordRequested, func(r ledger.BatchRecord) error {
			rec.Set(native.FieldRequestID, p.Name+"-"+r.ICCID+"-"+r.Data)
			rec.Set(native.FieldICCID, r.ICCID)
			rec.Set(native.FieldKeyIndex, r.Data)
			return emit(rec)
		})
	},
}

// renderKeyResponse writes the manufacturer's answers; released pairs
// travel wrapped under the requester's transport key.
//
// A request line too malformed to name its request (it was rejected and
// audited on intake) gets no answer: an answer needs the request ID.
var renderKeyResponse = &renderer{
	schema: native.KeyResponse,
	count: func(ctx context.Context, p *Party, o *ledger.Output) (int, error) {
		var n int
		err := p.Ledger.QueryRow(ctx, `SELECT COUNT(*) FROM batch_records WHERE batch_id = ? AND partner = ? AND status IN (?, ?)`,
			o.BatchID, o.Partner, keyReleased, keyRefused).Scan(&n)
		return n, err
	},
	records: func(ctx context.Context, p *Party, o *ledger.Output, emit func(*native.Record) error) error {
		to := p.Partners[o.Partner]
		rec := native.NewRecord(native.KeyResponse)
		return p.Ledger.BatchRecords(ctx, o.BatchID, o.Partner, "", func(r ledger.BatchRecord) error {
			if r.Status != keyReleased && r.Status != keyRefused {
				return nil
			}
			for _, f := range native.KeyResponse.Fields {
				rec.Set(f.Name, "")
			}
			var reqID string
			var idx int
			fmt.Sscanf(r.Data, "%s %d", &reqID, &idx)
			rec.Set(native.FieldRequestID, reqID)
			rec.Set(native.FieldICCID, r.ICCID)
			rec.Set(native.FieldKeyIndex, strconv.Itoa(idx))
			rec.Set(native.FieldStatus, r.Status)
			rec.Set(native.FieldReason, r.Reason)
			if r.Status != keyReleased {
				return emit(rec)
			}
			if to.Transport == nil {
				return fmt.Errorf("key response to %s: no transport key configured", to.Name)
			}
			secrets, err := p.cardSecrets(ctx, nil, r.ICCID, idx)
			if err != nil {
				return err
			}
			defer wipe(secrets)
			if err := wrapInto(rec, to.Transport, secrets, SecKi, SecOPc, SecKIc, SecKID, SecKIK); err != nil {
				return err
			}
			var alg string
			var kvn int
			_ = p.Ledger.QueryRow(ctx, `SELECT algorithm FROM mf_cards WHERE iccid = ?`, r.ICCID).Scan(&alg)
			sets, err := p.Ledger.KeySetsOf(ctx, r.ICCID)
			if err != nil {
				return err
			}
			for _, k := range sets {
				if k.KeyIndex == idx {
					kvn = k.KVN
					rec.Set(native.FieldOTAAlg, k.KIcAlg)
				}
			}
			if alg == "" {
				alg = "milenage"
			}
			rec.Set(native.FieldAlgorithm, alg)
			if kvn > 0 {
				rec.Set(native.FieldKVN, strconv.Itoa(kvn))
			}
			return emit(rec)
		})
	},
}

// KeyResponseIntake is the recipient's 3b step over the manufacturer's
// answer: a released pair completes the card (sealed, provisioned,
// acknowledged to the donor); a refusal, or a pair whose secrets have
// lengths their algorithms do not take, is acknowledged as rejected and
// leaves the card to an engineer.
type KeyResponseIntake struct {
	HLR *Partner
}

// InputType implements FileStep.
func (s *KeyResponseIntake) InputType() string { return native.KeyResponse.Name }

// Apply implements FileStep.
func (s *KeyResponseIntake) Apply(ctx context.Context, w *Work) error {
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
