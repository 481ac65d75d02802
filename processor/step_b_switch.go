package processor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"

	"resub/formats/ident"
	"resub/formats/native"
	"resub/processor/ledger"
)

// Reason codes of results (upper case in files).
const (
	ReasonUnknownICCID  = "UNKNOWN_ICCID"
	ReasonNotActive     = "NOT_ACTIVE"
	ReasonNotAuthorised = "NOT_AUTHORISED"
	ReasonAlreadyMoving = "ALREADY_MOVING"
	ReasonNotInRange    = "IMSI_NOT_IN_RANGE"
	ReasonIMSIInUse     = "IMSI_IN_USE"
	ReasonDatePast      = "DATE_PAST"
	ReasonListExhausted = "LIST_EXHAUSTED"
	ReasonDuplicate     = "DUPLICATE"
	ReasonInvalid       = "INVALID_RECORD"
	ReasonCancelled     = "CANCELLED"
	ReasonOTAFailed     = "OTA_FAILED"
	ReasonNoPoR         = "NO_POR"
	ReasonOTAIncomplete = "OTA_INCOMPLETE"
	ReasonProvisioning  = "PROVISIONING_FAILED"
	ReasonKeyIndex      = "KEY_INDEX"
	ReasonInternal      = "INTERNAL"
	recordAccepted      = "accepted"
	recordRejected      = "rejected"
	recordRequested     = "requested"
	cardRequested       = "requested" // recipient: IMSI allocated, handover awaited
	cardRejectedAtDonor = "rejected"  // recipient: the donor refused the change
	cardIncomingKeys    = "incoming"  // recipient 3b: handover in, keys requested
)

// eachRecord reads the work's records, calling fn for each valid one and
// rejecting invalid ones (recorded with INVALID_RECORD and the problem).
// Refusals of the whole file (quantity, truncation) end the work.
func (w *Work) eachRecord(ctx context.Context, partner func(*native.Record) string, fn func(*native.Record) error) error {
	for {
		rec, err := w.Reader.Read()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			if !native.Recoverable(err) || fileLevel(err) {
				return w.Refuse(firstProblem(err), err)
			}
			if onlyEmptyLines(err) {
				// Not records: no answer line, one warning for the file.
				w.P.log().Warn("empty lines in the input skipped", "partner", w.Partner.Name, "file", w.File.Name, "problem", firstProblem(err))
				continue
			}
			w.Counts.Records++
			w.Counts.Rejected++
			br := ledger.BatchRecord{BatchID: w.BatchID, Status: recordRejected, Reason: reasonOf(err), Detail: firstProblem(err)}
			if rec != nil {
				br.Line, br.ICCID, br.IMSI = rec.Line, rec.Get(native.FieldICCID), rec.Get(native.FieldIMSI)
			} else if ps := native.Problems(err); len(ps) > 0 {
				br.Line = ps[0].Line
			}
			if partner != nil && rec != nil {
				br.Partner = partner(rec)
			} else if w.Partner != nil {
				br.Partner = w.Partner.Name
			}
			if err := w.Tx.PutBatchRecord(ctx, br); err != nil {
				return err
			}
			continue
		}
		w.Counts.Records++
		if w.Counts.Records%progressEvery == 0 {
			w.P.progress("records", w.Counts.Records)
		}
		if err := fn(rec); err != nil {
			return err
		}
	}
}

// reasonOf picks the reason code of a record's problems.
func reasonOf(err error) string {
	for _, p := range native.Problems(err) {
		switch {
		case errors.Is(p.Err, ident.ErrIMSINotInRange):
			return ReasonNotInRange
		case errors.Is(p.Err, native.ErrDuplicate):
			return ReasonDuplicate
		}
	}
	return ReasonInvalid
}

// onlyEmptyLines reports the reader's one problem for the empty lines of
// a file (they are not records).
func onlyEmptyLines(err error) bool {
	ps := native.Problems(err)
	for _, p := range ps {
		if !errors.Is(p.Err, native.ErrEmptyLine) {
			return false
		}
	}
	return len(ps) > 0
}

// fileLevel reports problems that refuse the whole file.
func fileLevel(err error) bool {
	for _, p := range native.Problems(err) {
		if errors.Is(p.Err, native.ErrQuantity) || errors.Is(p.Err, native.ErrTruncated) {
			return true
		}
	}
	return false
}

// reject records a rejected record.
func (w *Work) reject(ctx context.Context, rec *native.Record, partner, reason, detail string) error {
	w.Counts.Rejected++
	return w.Tx.PutBatchRecord(ctx, ledger.BatchRecord{BatchID: w.BatchID, Line: rec.Line, ICCID: rec.Get(native.FieldICCID),
		IMSI: rec.Get(native.FieldIMSI), Status: recordRejected, Reason: reason, Detail: detail, Partner: partner})
}

// SwitchRequest is the recipient's step: the M2M operator's signed switch
// request becomes an imsi-list for each donor, with a new IMSI for every
// card from our own ranges. An IMSI is never handed out twice, across runs
// and restarts; a rerun of the same request allocates nothing new.
type SwitchRequest struct {
	// Donor is the donor partner when records do not name one.
	Donor *Partner
}

// InputType implements FileStep.
func (s *SwitchRequest) InputType() string { return native.SwitchRequest.Name }

// Apply implements FileStep.
func (s *SwitchRequest) Apply(ctx context.Context, w *Work) error {
	p := w.P
	donors := map[string]*Partner{}
	donorOf := func(rec *native.Record) *Partner {
		if code := rec.Get(native.FieldDonor); code != "" {
			return p.PartnerByCode(code)
		}
		return s.Donor
	}
	err := w.eachRecord(ctx, func(rec *native.Record) string {
		if d := donorOf(rec); d != nil {
			return d.Name
		}
		return ""
	}, func(rec *native.Record) error {
		iccid := rec.Get(native.FieldICCID)
		donor := donorOf(rec)
		if donor == nil {
			return w.reject(ctx, rec, "", ReasonInvalid, "no donor operator known for this card")
		}
		date, _ := rec.Date(native.FieldCutoverDate)
		if date.Before(day(p.now())) {
			return w.reject(ctx, rec, donor.Name, ReasonDatePast, "cut-over date "+date.Format("2006-01-02")+" is past")
		}
		if c, err := w.Tx.Card(ctx, iccid); err == nil && c.State != cardRejectedAtDonor && c.State != ledger.CardReleased {
			return w.reject(ctx, rec, donor.Name, ReasonAlreadyMoving, "card is "+c.State+" here")
		}
		ref := w.Source + ":" + strconv.Itoa(rec.Line)
		imsi, err := p.allocate(ctx, w.Tx, iccid, ref)
		if err != nil {
			if errors.Is(err, ledger.ErrRangeExhausted) {
				return w.reject(ctx, rec, donor.Name, ReasonInternal, "no free IMSI in our ranges")
			}
			return err
		}
		card := &ledger.Card{ICCID: iccid, IMSI: imsi, State: cardRequested, Owner: w.Header.Sender, Source: donor.Code,
			Cutover: date.Format("2006-01-02"), RequestRef: ref}
		if _, err := w.Tx.Card(ctx, iccid); err == nil {
			err = w.Tx.Transition(ctx, iccid, nil, cardRequested, "switch request", ref,
				&ledger.CardUpdate{IMSI: &imsi, Cutover: &card.Cutover, RequestRef: &ref, Owner: &card.Owner, Recipient: ledger.Str("")})
			if err != nil {
				return err
			}
		} else if _, err := w.Tx.InsertCard(ctx, card); err != nil {
			return err
		}
		donors[donor.Name] = donor
		w.Counts.Accepted++
		return w.Tx.PutBatchRecord(ctx, ledger.BatchRecord{BatchID: w.BatchID, Line: rec.Line, ICCID: iccid, IMSI: imsi,
			Status: recordRequested, Partner: donor.Name, Data: card.Cutover})
	})
	if err != nil {
		return err
	}
	for _, d := range donors {
		if _, err := w.Plan(ctx, "imsi-list", native.IMSIList.Name, d, false); err != nil {
			return err
		}
	}
	return nil
}

// allocate hands out a new IMSI from our ranges, in order.
func (p *Party) allocate(ctx context.Context, tx *ledger.Tx, iccid, ref string) (string, error) {
	var last error
	for _, r := range p.RangeList {
		imsi, err := tx.AllocateIMSI(ctx, r.Name, r.From, r.To, iccid, ref)
		if err == nil {
			return imsi, nil
		}
		if !errors.Is(err, ledger.ErrRangeExhausted) {
			return "", err
		}
		last = err
	}
	if last == nil {
		last = fmt.Errorf("no IMSI ranges configured: %w", ledger.ErrRangeExhausted)
	}
	return "", last
}

// renderIMSIList writes the imsi-list of a switch-request batch for one
// donor.
var renderIMSIList = &renderer{
	schema: native.IMSIList,
	count: func(ctx context.Context, p *Party, o *ledger.Output) (int, error) {
		return p.Ledger.CountBatchRecords(ctx, o.BatchID, o.Partner, recordRequested)
	},
	records: func(ctx context.Context, p *Party, o *ledger.Output, emit func(*native.Record) error) error {
		rec := native.NewRecord(native.IMSIList)
		return p.Ledger.BatchRecords(ctx, o.BatchID, o.Partner, recordRequested, func(r ledger.BatchRecord) error {
			rec.Set(native.FieldICCID, r.ICCID)
			rec.Set(native.FieldIMSI, r.IMSI)
			rec.Set(native.FieldCutoverDate, r.Data)
			return emit(rec)
		})
	},
}
