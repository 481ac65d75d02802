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
// The intake renders its own from its stage as it plans it
// (HandoverIntake.Apply); this is the way of a rerun.
var renderKeyRequest = &renderer{
	schema: native.KeyRequest,
	count: func(ctx context.Context, p *Party, o *ledger.Output) (int, error) {
		return p.Ledger.CountBatchRecords(ctx, o.BatchID, o.Partner, recordRequested)
	},
	records: func(ctx context.Context, p *Party, o *ledger.Output, emit func(*native.Record) error) error {
		return p.keyRequestRecords(func(fn func(ledger.BatchRecord) error) error {
			return p.Ledger.BatchRecords(ctx, o.BatchID, o.Partner, recordRequested, fn)
		}, emit)
	},
}

// keyRequestRecords emits the key requests of the batch records records
// gives in line order (those of the requested status, the key index as
// their data).
func (p *Party) keyRequestRecords(records func(func(ledger.BatchRecord) error) error, emit func(*native.Record) error) error {
	rec := native.NewRecord(native.KeyRequest)
	return records(func(r ledger.BatchRecord) error {
		rec.Set(native.FieldRequestID, p.Name+"-"+r.ICCID+"-"+r.Data)
		rec.Set(native.FieldICCID, r.ICCID)
		rec.Set(native.FieldKeyIndex, r.Data)
		return emit(rec)
	})
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
// leaves the card to an engineer. An answer about a card that is not
// waiting for its keys here (unknown, moved on, or answered by an earlier
// line of the file) is rejected without an answer.
//
// It works by sets (ledger.KeyStage): each line is staged as it is read,
// a released pair unwrapped from the manufacturer's transport key, checked
// and sealed under our master key by workers on the other cores; then a
// few statements judge every line against the cards and take them, and
// the acknowledgements and the provisioning file are rendered from the
// stage as they are planned (Work.prepare): written from there once the
// work commits, from the ledger on a rerun.
type KeyResponseIntake struct {
	HLR *Partner
}

// InputType implements FileStep.
func (s *KeyResponseIntake) InputType() string { return native.KeyResponse.Name }

// keyLine is a key-response line on its way to the stage.
type keyLine struct {
	sc      ledger.StagedKeys
	wrapped []string // the released pair's wrapped fields, by handoverSecrets
}

// Apply implements FileStep.
func (s *KeyResponseIntake) Apply(ctx context.Context, w *Work) error {
	p := w.P
	stage, err := w.Tx.StageKeys(ctx, handoverSecrets)
	if err != nil {
		return err
	}
	defer stage.Close(ctx)
	from := w.Partner
	pipe := newOrderedPipe(ctx, func(l *keyLine) error { return p.sealKeyLine(from, l) },
		func(l *keyLine) error { return stage.Add(ctx, l.sc) }, nil)
	defer pipe.stop()
	err = w.eachRecord(ctx, nil, func(rec *native.Record) error {
		idx, _ := rec.Int(native.FieldKeyIndex)
		kvn, _ := rec.Int(native.FieldKVN)
		l := keyLine{sc: ledger.StagedKeys{Line: rec.Line, ICCID: rec.Get(native.FieldICCID), KeyIndex: int(idx),
			Released: rec.Get(native.FieldStatus) == keyReleased, Reason: rec.Get(native.FieldReason),
			Algorithm: rec.Get(native.FieldAlgorithm), KVN: int(kvn), OTAAlg: rec.Get(native.FieldOTAAlg)}}
		if l.sc.Released {
			l.wrapped = make([]string, len(handoverSecrets))
			for i, name := range handoverSecrets {
				l.wrapped[i] = rec.Get(name)
			}
		}
		return pipe.add(l)
	})
	if err != nil {
		return err
	}
	if err := pipe.finish(); err != nil {
		return err
	}
	j, err := stage.Judge(ctx, cardIncomingKeys)
	if err != nil {
		return err
	}
	take, donors, err := s.check(w, j)
	if err != nil {
		return err
	}
	take.BatchID, take.Ref, take.MasterKey = w.BatchID, w.Source, p.Vault.KeyID()
	take.Took = w.tookStatement("key-response")
	out, err := stage.Take(ctx, take)
	if err != nil {
		return err
	}
	w.Counts.Accepted += out.Accepted
	w.Counts.Rejected += out.Rejected + out.Ignored
	// The acknowledgements and the provisioning file are rendered now,
	// from the stage that has just judged and taken the lines, into
	// sealed spills; they are written from there once the work commits
	// (from the ledger on a rerun).
	for _, d := range donors {
		ack, err := w.Plan(ctx, "handover-ack", native.HandoverAck.Name, d, false)
		if err != nil {
			return err
		}
		if w.preparing(ack) {
			_, err := w.prepare(ctx, ack, native.HandoverAck, func(ctx context.Context, emit func(*native.Record) error) error {
				return ackRecords(func(fn func(ledger.BatchRecord) error) error {
					return stage.Answers(ctx, ack.Partner, cardPageSize, fn)
				}, emit)
			})
			if err != nil {
				return err
			}
		}
	}
	if out.Accepted > 0 {
		if err := w.prepareProvisioning(ctx, s.HLR, stage.Provisioned); err != nil {
			return err
		}
	}
	return stage.Close(ctx)
}

// check holds the judged lines against our configuration: every donor a
// configured partner, every profile configured, every key set's cipher
// known. The first line in the file that fails ends the work as the
// record-at-a-time intake did at that line: a refusal of the file for
// secrets that do not unwrap or a cipher the profile cannot imply, an
// error for a missing partner or profile. It returns how Take records the
// lines and the donors to acknowledge, in the order of their codes.
func (s *KeyResponseIntake) check(w *Work, j ledger.KeyJudgement) (ledger.KeyTake, []*Partner, error) {
	p := w.P
	take := ledger.KeyTake{
		From: cardIncomingKeys, To: ledger.CardActive, Manual: ledger.CardManual, Event: "provisioned",
		RefusedEvent: "manufacturer refused: ", UnusableEvent: "manufacturer's keys unusable: ",
		IMSIState: ledger.IMSIConfirmed, Accepted: native.StatusProvisioned, Rejected: recordRejected,
		Refused:  ledger.Verdict{Reason: ReasonKeyIndex, Detail: "manufacturer: "},
		Unusable: ledger.Verdict{Reason: ReasonInvalid, Detail: "manufacturer's keys: "},
		Partners: map[string]string{}, Profiles: map[string]string{},
	}
	// The first failing line wins; on one line, the checks in the order
	// the record-at-a-time intake made them.
	var first struct {
		line, rank int
		err        error
	}
	fail := func(line, rank int, err error) {
		if first.err == nil || line < first.line || (line == first.line && rank < first.rank) {
			first.line, first.rank, first.err = line, rank, err
		}
	}
	var donors []*Partner
	for _, d := range j.Donors {
		donor := p.PartnerByCode(d.Source)
		if donor == nil {
			fail(d.Line, 0, fmt.Errorf("card %s: donor %s is not a configured partner", d.ICCID, d.Source))
			continue
		}
		take.Partners[d.Source] = donor.Name
		donors = append(donors, donor)
	}
	if j.Fault.Line > 0 {
		cause := errors.New(j.Fault.Fault)
		fail(j.Fault.Line, 1, w.Refuse("secrets of "+j.Fault.ICCID+": "+cause.Error(), cause))
	}
	for _, g := range j.Profiles {
		prof := p.Profiles[g.Profile]
		if prof == nil {
			fail(g.Line, 2, fmt.Errorf("card %s: profile %s not configured", g.ICCID, g.Profile))
			continue
		}
		take.Profiles[g.Profile] = prof.Name
		if g.NeedsAlg == 0 {
			continue
		}
		// The manufacturer names none: the card's profile implies it.
		alg, err := profileOTAAlg(prof, g.KIcLen)
		if err != nil {
			fail(g.NeedsAlg, 3, w.Refuse("key set of "+g.NeedsAlgICCID+": ota-alg: "+err.Error(), err))
			continue
		}
		take.OTAAlgs = append(take.OTAAlgs, ledger.KeyOTAAlg{Profile: g.Profile, KIcLen: g.KIcLen, Alg: alg})
	}
	if first.err != nil {
		if errors.As(first.err, new(*RefusedError)) {
			// The refusal that stands is the one returned.
			w.refused = first.err
		} else {
			w.refused = nil
		}
		return take, nil, first.err
	}
	return take, donors, nil
}

// sealKeyLine opens a released pair (from the sender's transport key),
// checks its lengths and seals it under our master key with the line's
// key index, on a worker. A pair that does not unwrap, or cannot work on
// the card, is the line's verdict (it counts only if the card is waiting
// for it); one that does not seal fails the work.
func (p *Party) sealKeyLine(from *Partner, l *keyLine) error {
	if l.wrapped == nil {
		return nil
	}
	sc := &l.sc
	secrets, err := unwrapFields(from, handoverSecrets, l.wrapped)
	l.wrapped = nil
	if err != nil {
		sc.Fault = err.Error()
		return nil
	}
	defer wipe(secrets)
	if err := checkSecrets(secrets, sc.Algorithm, sc.OTAAlg); err != nil {
		sc.Unusable = err.Error()
		return nil
	}
	v := p.Vault
	sc.Sealed = make([][]byte, len(handoverSecrets))
	for i, name := range handoverSecrets {
		plain, ok := secrets[name]
		if !ok {
			continue
		}
		blob, err := v.Seal(secretAAD(sc.ICCID, name, sc.KeyIndex), plain)
		if err != nil {
			return fmt.Errorf("seal %s of %s: %w", name, sc.ICCID, err)
		}
		sc.Sealed[i] = blob
	}
	sc.KIcLen = len(secrets[SecKIc])
	sc.SecretsFP = v.Fingerprint(secrets[SecKi], secrets[SecOPc], secrets[SecKIc], secrets[SecKID], secrets[SecKIK])
	return nil
}
