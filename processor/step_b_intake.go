package processor

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"time"

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

// findsDuplicates: the stage finds repeated ICCIDs and IMSIs.
func (s *HandoverIntake) findsDuplicates() bool { return true }

// Apply implements FileStep. A 3a or 3b record is staged as it is read
// (a 3a record's secrets unwrapped from the donor's transport key and
// sealed under our master key at once, only sealed ones staged; a 3b
// record has none: the manufacturer holds its pair), and the staged lines
// are judged and taken by sets at the end (ledger.HandoverStage): a
// handful of statements however many cards the file hands over. Cancel
// records, rare, are handled one by one as they come (staged for their
// keys only). A record that repeats an earlier one's ICCID or IMSI is
// answered DUPLICATE in the reader's words (the stage finds them: the
// reader keeps nothing per record).
func (s *HandoverIntake) Apply(ctx context.Context, w *Work) error {
	p := w.P
	a := w.Partner
	stage, err := w.Tx.StageHandover(ctx, handoverSecrets)
	if err != nil {
		return err
	}
	defer stage.Close(ctx)
	pipe := p.newSealPipe(ctx, a, stage)
	defer pipe.stop()
	err = w.eachRecord(ctx, nil, func(rec *native.Record) error {
		if rec.Get(native.FieldKind) != native.KindCancel {
			return pipe.add(rec)
		}
		iccid := rec.Get(native.FieldICCID)
		if err := pipe.sync(); err != nil {
			return err
		}
		field, err := stage.Repeats(ctx, rec.Line, iccid, rec.Get(native.FieldIMSI))
		if err != nil {
			return err
		}
		if err := stage.Add(ctx, ledger.StagedCard{Line: rec.Line, ICCID: iccid, IMSI: rec.Get(native.FieldIMSI), KeysOnly: true}); err != nil {
			return err
		}
		if field != "" {
			return w.reject(ctx, rec, a.Name, ReasonDuplicate, fmt.Sprintf("%s:%d: %s: %s: %s", w.File.Name, rec.Line, field, native.ErrDuplicate, rec.Get(field)))
		}
		c, err := w.Tx.Card(ctx, iccid)
		if errors.Is(err, ledger.ErrNotFound) {
			return w.reject(ctx, rec, a.Name, ReasonUnknownICCID, detailUnknownCard)
		}
		if err != nil {
			return err
		}
		if c.State != cardRequested {
			return w.reject(ctx, rec, a.Name, ReasonNotActive, "card is "+c.State)
		}
		if err := w.Tx.Transition(ctx, iccid, []string{cardRequested}, ledger.CardCancelled, "donor withdrew the card", w.Source, nil); err != nil {
			return err
		}
		w.Counts.Accepted++
		return w.Tx.SetIMSIState(ctx, c.IMSI, ledger.IMSIRetired)
	})
	if err != nil {
		return err
	}
	if err := pipe.finish(); err != nil {
		return err
	}
	taken, err := stage.Take(ctx, ledger.HandoverTake{
		BatchID: w.BatchID, Partner: a.Name,
		From: cardRequested, To: ledger.CardActive, Event: "provisioned", Ref: w.Source,
		MasterKey: p.Vault.KeyID(), IMSIState: ledger.IMSIConfirmed,
		Accepted: native.StatusProvisioned, Rejected: recordRejected,
		Requested: recordRequested, RequestedPartner: s.manufacturerName(), RequestedState: cardIncomingKeys, RequestedEvent: "3b handover: keys requested",
		DuplicateICCID: duplicateVerdict(w, native.FieldICCID),
		DuplicateIMSI:  duplicateVerdict(w, native.FieldIMSI),
		UnknownCard:    ledger.Verdict{Reason: ReasonUnknownICCID, Detail: detailUnknownCard},
		OtherState:     ledger.Verdict{Reason: ReasonDuplicate, Detail: "card is ", DetailEnd: " here"},
		OtherIMSI:      ledger.Verdict{Reason: ReasonInvalid, Detail: detailOtherIMSI},
		NoProfile:      ledger.Verdict{Reason: ReasonProvisioning, Detail: "card profile ", DetailEnd: " unknown here"},
		Took:           w.tookStatement("handover intake"),
	})
	if err != nil {
		return err
	}
	w.Counts.Accepted += taken.Accepted + taken.Requested
	w.Counts.Rejected += taken.Rejected
	// The acknowledgement, the provisioning file and the key request are
	// rendered now, from the stage that has just judged and taken the
	// lines, into sealed spills; they are written from there once the
	// work commits (from the ledger on a rerun).
	ack, err := w.Plan(ctx, "handover-ack", native.HandoverAck.Name, a, true)
	if err != nil {
		return err
	}
	if w.preparing(ack) {
		_, err := w.prepare(ctx, ack, native.HandoverAck, func(ctx context.Context, emit func(*native.Record) error) error {
			return ackRecords(func(fn func(ledger.BatchRecord) error) error { return stage.Answers(ctx, cardPageSize, fn) }, emit)
		})
		if err != nil {
			return err
		}
	}
	if taken.Accepted > 0 {
		if err := w.prepareProvisioning(ctx, s.HLR, stage.Provisioned); err != nil {
			return err
		}
	}
	if taken.Requested > 0 {
		if s.Manufacturer == nil {
			return fmt.Errorf("%s: no manufacturer partner configured for the %s", w.Job, native.KeyRequest.Name)
		}
		req, err := w.Plan(ctx, "key-request", native.KeyRequest.Name, s.Manufacturer, false)
		if err != nil {
			return err
		}
		if w.preparing(req) {
			_, err := w.prepare(ctx, req, native.KeyRequest, func(ctx context.Context, emit func(*native.Record) error) error {
				return p.keyRequestRecords(func(fn func(ledger.BatchRecord) error) error { return stage.Requests(ctx, cardPageSize, fn) }, emit)
			})
			if err != nil {
				return err
			}
		}
	}
	return stage.Close(ctx)
}

// tookStatement logs how long each of a step's set-based statements ran
// (debug).
func (w *Work) tookStatement(step string) func(string, time.Duration) {
	return func(what string, d time.Duration) {
		w.P.log().Debug(step+" statement", "file", w.File.Name, "statement", what, "seconds", d.Seconds())
	}
}

// duplicateVerdict answers a repeated field as the reader would:
// "<file>:<line>: <field>: duplicate within the file: <value>".
func duplicateVerdict(w *Work, field string) ledger.Verdict {
	return ledger.Verdict{Reason: ReasonDuplicate, Detail: w.File.Name + ":", DetailEnd: ": " + field + ": " + native.ErrDuplicate.Error() + ": "}
}

// Details of the intake's rejections.
const (
	detailUnknownCard = "we did not request this card"
	detailOtherIMSI   = "IMSI differs from the one we allocated"
)

// handoverSecrets are the secrets of a 3a handover record, in the order
// the stage keeps them (ledger.StagedCard.Sealed).
var handoverSecrets = []string{SecKi, SecOPc, SecKIc, SecKID, SecKIK}

// sealPipe stages the 3a and 3b records of an intake: a 3a record's
// secrets are unwrapped from the sender's transport key, sealed under our
// master key, wiped and fingerprinted by workers on the other cores while
// the caller goes on reading the file (a 3b record carries none), and the
// lines are staged by the caller, in line order, as their batches come
// back. (Vault and Transport are safe for concurrent use.)
type sealPipe struct {
	ctx     context.Context
	p       *Party
	partner *Partner
	stage   *ledger.HandoverStage
	jobs    chan *sealBatch
	queue   []*sealBatch // submitted, in line order
	cur     *sealBatch
	wg      sync.WaitGroup
	stopped bool
}

// sealBatch is a run of records for one worker: lines in, sealed lines
// out (the same slice), done closed when they are.
type sealBatch struct {
	lines   []ledger.StagedCard
	wrapped [][]string // the records' wrapped secret fields, by handoverSecrets
	err     error
	done    chan struct{}
}

const (
	sealBatchSize = 64 // records a worker takes at once
	sealInFlight  = 16 // batches submitted and not yet staged
)

func (p *Party) newSealPipe(ctx context.Context, from *Partner, stage *ledger.HandoverStage) *sealPipe {
	workers := min(max(runtime.GOMAXPROCS(0)-1, 1), 4)
	sp := &sealPipe{ctx: ctx, p: p, partner: from, stage: stage, jobs: make(chan *sealBatch, workers)}
	sp.wg.Add(workers)
	for range workers {
		go func() {
			defer sp.wg.Done()
			for b := range sp.jobs {
				b.err = sp.seal(b)
				close(b.done)
			}
		}()
	}
	return sp
}

// add takes a 3a or 3b record (copied: the reader reuses it).
func (sp *sealPipe) add(rec *native.Record) error {
	if sp.cur == nil {
		sp.cur = &sealBatch{lines: make([]ledger.StagedCard, 0, sealBatchSize), wrapped: make([][]string, 0, sealBatchSize), done: make(chan struct{})}
	}
	b := sp.cur
	sc := ledger.StagedCard{Line: rec.Line, ICCID: rec.Get(native.FieldICCID), IMSI: rec.Get(native.FieldIMSI), MSISDN: rec.Get(native.FieldMSISDN),
		Profile: rec.Get(native.FieldProfile), Algorithm: rec.Get(native.FieldAlgorithm), OTAAlg: rec.Get(native.FieldOTAAlg)}
	if prof := sp.p.Profiles[sc.Profile]; prof != nil {
		sc.ProfileName = prof.Name
	}
	var wrapped []string
	if rec.Get(native.FieldKind) == native.Kind3b {
		// The pair is the manufacturer's to give: no secrets here.
		idx, _ := rec.Int(native.FieldKeyIndex)
		n, _ := rec.Int(native.FieldKeyListLength)
		sc.ThreeB, sc.KeyIndex, sc.ListLength, sc.Algorithm, sc.OTAAlg = true, int(idx), int(n), "", ""
	} else {
		kvn, _ := rec.Int(native.FieldKVN)
		sc.KVN = int(kvn)
		sc.Counter, _ = rec.Int(native.FieldCounter)
		if sc.OTAAlg == "" && (sc.KVN > 0 || rec.Get(native.FieldKIc) != "") {
			// A 16-octet key is AES-128 or 3DES with two keys: never guess.
			sc.Reason, sc.Detail = ReasonInvalid, "ota-alg: the OTA key set has no algorithm"
		}
		wrapped = make([]string, len(handoverSecrets))
		for i, name := range handoverSecrets {
			wrapped[i] = rec.Get(name)
		}
	}
	b.lines = append(b.lines, sc)
	b.wrapped = append(b.wrapped, wrapped)
	if len(b.lines) < sealBatchSize {
		return nil
	}
	return sp.submit()
}

// submit hands the current batch to the workers, then stages the batches
// that are back (waiting for the oldest when too many are out).
func (sp *sealPipe) submit() error {
	b := sp.cur
	sp.cur = nil
	if b == nil || len(b.lines) == 0 {
		return nil
	}
	select {
	case sp.jobs <- b:
	case <-sp.ctx.Done():
		return sp.ctx.Err()
	}
	sp.queue = append(sp.queue, b)
	for len(sp.queue) > 0 {
		head := sp.queue[0]
		if len(sp.queue) <= sealInFlight {
			select {
			case <-head.done:
			default:
				return nil
			}
		}
		if err := sp.stageHead(); err != nil {
			return err
		}
	}
	return nil
}

// stageHead waits for the oldest batch and stages its lines.
func (sp *sealPipe) stageHead() error {
	head := sp.queue[0]
	select {
	case <-head.done:
	case <-sp.ctx.Done():
		return sp.ctx.Err()
	}
	sp.queue[0] = nil
	sp.queue = sp.queue[1:]
	if head.err != nil {
		return head.err
	}
	for _, sc := range head.lines {
		if err := sp.stage.Add(sp.ctx, sc); err != nil {
			return err
		}
	}
	return nil
}

// sync stages every record added so far.
func (sp *sealPipe) sync() error {
	if err := sp.submit(); err != nil {
		return err
	}
	for len(sp.queue) > 0 {
		if err := sp.stageHead(); err != nil {
			return err
		}
	}
	return nil
}

// finish stages every record added and ends the workers.
func (sp *sealPipe) finish() error {
	if err := sp.sync(); err != nil {
		return err
	}
	sp.stop()
	return nil
}

// stop ends the workers (they finish the batches they were given).
func (sp *sealPipe) stop() {
	if sp.stopped {
		return
	}
	sp.stopped = true
	close(sp.jobs)
	sp.wg.Wait()
}

// seal fills a batch's sealed secrets and fingerprints. A secret that
// does not unwrap, or unwraps to a length its algorithm does not take
// (checkSecrets), is the line's verdict (it counts only if no other rule
// rejects the line first); one that does not seal fails the work.
func (sp *sealPipe) seal(b *sealBatch) error {
	v := sp.p.Vault
	for j := range b.lines {
		sc := &b.lines[j]
		if sc.ThreeB {
			continue
		}
		secrets, err := unwrapFields(sp.partner, handoverSecrets, b.wrapped[j])
		b.wrapped[j] = nil
		if err == nil {
			if err = checkSecrets(secrets, sc.Algorithm, sc.OTAAlg); err != nil {
				wipe(secrets)
			}
		}
		if err != nil {
			sc.Reason, sc.Detail = ReasonInvalid, err.Error()
			continue
		}
		sc.Sealed = make([][]byte, len(handoverSecrets))
		for i, name := range handoverSecrets {
			plain, ok := secrets[name]
			if !ok {
				continue
			}
			blob, err := v.Seal(secretAAD(sc.ICCID, name, 0), plain)
			if err != nil {
				wipe(secrets)
				return fmt.Errorf("seal %s of %s: %w", name, sc.ICCID, err)
			}
			sc.Sealed[i] = blob
		}
		sc.SecretsFP = v.Fingerprint(secrets[SecKi], secrets[SecOPc], secrets[SecKIc], secrets[SecKID], secrets[SecKIK])
		wipe(secrets)
	}
	return nil
}

// unwrapFields opens wrapped secret fields (values, by names) with the
// sender's transport keys, as Work.unwrapSecrets does with a record's.
// Absent fields are skipped; the caller wipes the result.
func unwrapFields(from *Partner, names, values []string) (map[string][]byte, error) {
	out := make(map[string][]byte, len(names))
	for i, f := range names {
		if values[i] == "" {
			continue
		}
		if from.Transport == nil {
			wipe(out)
			return nil, fmt.Errorf("%s: no transport key configured for %s", f, from.Name)
		}
		b, err := from.Transport.Unwrap(values[i])
		if err != nil {
			wipe(out)
			return nil, fmt.Errorf("%s: %w", f, err)
		}
		out[f] = b
	}
	return out, nil
}

func (s *HandoverIntake) manufacturerName() string {
	if s.Manufacturer == nil {
		return ""
	}
	return s.Manufacturer.Name
}

// renderAck writes the handover-ack of an intake batch. The intake
// renders its own from its stage as it plans it (HandoverIntake.Apply);
// this is the way of every other, and of that one on a rerun.
var renderAck = &renderer{
	schema: native.HandoverAck,
	count: func(ctx context.Context, p *Party, o *ledger.Output) (int, error) {
		var n int
		err := p.Ledger.QueryRow(ctx, `SELECT COUNT(*) FROM batch_records WHERE batch_id = ? AND partner = ? AND status IN (?, ?)`,
			o.BatchID, o.Partner, native.StatusProvisioned, recordRejected).Scan(&n)
		return n, err
	},
	records: func(ctx context.Context, p *Party, o *ledger.Output, emit func(*native.Record) error) error {
		return ackRecords(func(fn func(ledger.BatchRecord) error) error {
			return p.Ledger.BatchRecords(ctx, o.BatchID, o.Partner, "", fn)
		}, emit)
	},
}

// ackRecords emits the acknowledgement's records from the batch records
// of its partner that records gives in line order: the provisioned and
// rejected ones.
func ackRecords(records func(func(ledger.BatchRecord) error) error, emit func(*native.Record) error) error {
	rec := native.NewRecord(native.HandoverAck)
	return records(func(r ledger.BatchRecord) error {
		if r.Status != native.StatusProvisioned && r.Status != recordRejected {
			return nil
		}
		rec.Set(native.FieldICCID, r.ICCID)
		rec.Set(native.FieldStatus, r.Status)
		rec.Set(native.FieldReason, r.Reason)
		rec.Set(native.FieldDetail, sanitizeDetail(r.Detail))
		return emit(rec)
	})
}

// renderProvisioning writes the HLR/AuC provisioning file of a batch:
// Ki and OPc wrapped under the AuC transport key. The intake renders its
// own from its stage as it plans it (HandoverIntake.Apply); this is the
// way of every other, and of that one on a rerun.
var renderProvisioning = &renderer{
	schema: native.Provisioning,
	count: func(ctx context.Context, p *Party, o *ledger.Output) (int, error) {
		var n int
		err := p.Ledger.QueryRow(ctx, `SELECT COUNT(*) FROM batch_records WHERE batch_id = ? AND status = ?`, o.BatchID, native.StatusProvisioned).Scan(&n)
		return n, err
	},
	records: func(ctx context.Context, p *Party, o *ledger.Output, emit func(*native.Record) error) error {
		return p.provisioningRecords(ctx, o, func(ctx context.Context, page func([]ledger.CardSecrets) error) error {
			return p.Ledger.BatchSecretPages(ctx, o.BatchID, native.StatusProvisioned, provisioningSecrets, cardPageSize, page)
		}, emit)
	},
}

// prepareProvisioning plans the provisioning file of the step's accepted
// cards to hlr and, where it is newly planned, renders it from the pages
// the step's stage gives (provisioned: the stage's Provisioned) as it
// plans it (prepared.go).
func (w *Work) prepareProvisioning(ctx context.Context, hlr *Partner,
	provisioned func(ctx context.Context, names []string, size int, page func([]ledger.CardSecrets) error) error) error {
	if hlr == nil {
		return fmt.Errorf("%s: no hlr partner configured for the %s", w.Job, native.Provisioning.Name)
	}
	prov, err := w.Plan(ctx, "provisioning", native.Provisioning.Name, hlr, false)
	if err != nil || !w.preparing(prov) {
		return err
	}
	_, err = w.prepare(ctx, prov, native.Provisioning, func(ctx context.Context, emit func(*native.Record) error) error {
		return w.P.provisioningRecords(ctx, prov, func(ctx context.Context, page func([]ledger.CardSecrets) error) error {
			return provisioned(ctx, provisioningSecrets, cardPageSize, page)
		}, emit)
	})
	return err
}

// provisioningRecords emits the records of the provisioning file o from
// the pages of its cards in line order: the next page is read (on its own
// goroutine) while this one's keys are re-wrapped for the HLR/AuC and
// written.
func (p *Party) provisioningRecords(ctx context.Context, o *ledger.Output, pages func(ctx context.Context, page func([]ledger.CardSecrets) error) error,
	emit func(*native.Record) error) error {
	hlr := p.Partners[o.Partner]
	if hlr == nil {
		return fmt.Errorf("provisioning: no partner %s", o.Partner)
	}
	if hlr.Transport == nil {
		return fmt.Errorf("provisioning for %s: no AuC transport key configured", hlr.Name)
	}
	rec := native.NewRecord(native.Provisioning)
	return readAhead(ctx, pages, func(ctx context.Context, page []ledger.CardSecrets) error {
		for _, cs := range page {
			if err := p.provisioningRecord(rec, hlr, cs); err != nil {
				return err
			}
			if err := emit(rec); err != nil {
				return err
			}
		}
		return nil
	})
}

// provisioningSecrets are the secrets the HLR/AuC gets.
var provisioningSecrets = []string{SecKi, SecOPc}

// provisioningRecord fills rec with one card for the HLR/AuC.
func (p *Party) provisioningRecord(rec *native.Record, hlr *Partner, cs ledger.CardSecrets) error {
	if !cs.Found {
		return fmt.Errorf("card %s: %w", cs.ICCID, ledger.ErrNotFound)
	}
	secrets, err := p.openSecrets(cs.ICCID, cs.Secrets)
	if err != nil {
		return err
	}
	defer wipe(secrets)
	rec.Set(native.FieldICCID, cs.ICCID)
	rec.Set(native.FieldIMSI, cs.IMSI)
	rec.Set(native.FieldMSISDN, cs.MSISDN)
	// rec is the previous card's: a secret this card lacks stays empty.
	rec.Set(native.FieldKi, "")
	rec.Set(native.FieldOPc, "")
	if err := wrapInto(rec, hlr.Transport, secrets, SecKi, SecOPc); err != nil {
		return err
	}
	rec.Set(native.FieldAlgorithm, cs.Algorithm)
	return nil
}

// IMSIResultIntake is the recipient's step over the donor's imsi-result:
// rejected and failed changes retire their IMSI (never handed out again);
// unknown outcomes keep theirs reserved; completed ones confirm it. A
// completed or unknown outcome correcting a failed one (the donor's late
// verified PoR) reinstates the retired IMSI and the card's request.
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
		case native.StatusCompleted, native.StatusUnknown:
			state := ledger.IMSIConfirmed
			if st == native.StatusUnknown {
				state = ledger.IMSIUnknown
			}
			imsi := c.IMSI
			if v := rec.Get(native.FieldIMSI); v != "" {
				imsi = v // a correction may name an IMSI the card no longer has here
			}
			if c.State == cardRejectedAtDonor && imsi == c.IMSI {
				// The donor corrects a failed outcome (a late verified
				// PoR): the card may carry the IMSI we retired, which was
				// never handed out again. It is reinstated and the card
				// awaits its handover again.
				w.P.log().Warn("donor corrects a failed outcome: IMSI reinstated", "iccid", iccid, "imsi", c.IMSI, "status", st)
				if err := w.Tx.Transition(ctx, iccid, []string{cardRejectedAtDonor}, cardRequested, "donor corrected: "+st+" "+reason, w.Source, nil); err != nil {
					return err
				}
			}
			return w.Tx.SetIMSIState(ctx, imsi, state)
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
