package processor

import (
	"context"
	"errors"
	"io"
	"time"

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
	return w.eachRecordOr(ctx, partner, fn, nil)
}

// eachRecordOr is eachRecord, with rejected (when not nil) called for each
// record the reader rejected (rec nil when the line could not be split)
// before its answer: it returns the problems to answer with (a step that
// finds repeats itself names them as the reader would have).
func (w *Work) eachRecordOr(ctx context.Context, partner func(*native.Record) string, fn func(*native.Record) error, rejected func(rec *native.Record, problems error) (error, error)) error {
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
			if rejected != nil {
				problems, ferr := rejected(rec, err)
				if ferr != nil {
					return ferr
				}
				err = problems
			}
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
//
// It works by sets (ledger.SwitchStage): the lines are staged as they are
// read, with what can be judged without the ledger (the donor, the
// cut-over date); then a few statements judge every line against the
// cards, one pass in file order hands out the IMSIs, and the cards and
// every answer are written at once.
type SwitchRequest struct {
	// Donor is the donor partner when records do not name one.
	Donor *Partner
}

// InputType implements FileStep.
func (s *SwitchRequest) InputType() string { return native.SwitchRequest.Name }

// findsDuplicates: the stage finds repeated ICCIDs, so that the reader
// keeps nothing per record.
func (s *SwitchRequest) findsDuplicates() bool { return true }

// Apply implements FileStep.
func (s *SwitchRequest) Apply(ctx context.Context, w *Work) error {
	p := w.P
	// The donors by code, as the lines name them: a file names a few.
	donors := map[string]*Partner{}
	donorOf := func(rec *native.Record) *Partner {
		code := rec.Get(native.FieldDonor)
		if code == "" {
			return s.Donor
		}
		d, ok := donors[code]
		if !ok {
			d = p.PartnerByCode(code)
			donors[code] = d
		}
		return d
	}
	var cutover lastCutover
	stage, err := w.Tx.StageSwitch(ctx)
	if err != nil {
		return err
	}
	defer stage.Close(ctx)
	err = w.eachRecord(ctx, func(rec *native.Record) string {
		if d := donorOf(rec); d != nil {
			return d.Name
		}
		return ""
	}, func(rec *native.Record) error {
		l := ledger.SwitchLine{Line: rec.Line, ICCID: rec.Get(native.FieldICCID)}
		l.Reason, l.Detail = switchVerdict(p, rec, donorOf(rec), &cutover, &l)
		return stage.Add(ctx, l)
	})
	if err != nil {
		return err
	}
	ranges := make([]ledger.IMSIRange, len(p.RangeList))
	for i, r := range p.RangeList {
		ranges[i] = ledger.IMSIRange{Name: r.Name, From: r.From, To: r.To}
	}
	out, err := stage.Take(ctx, ledger.SwitchTake{
		BatchID: w.BatchID, State: cardRequested, Reopen: []string{cardRejectedAtDonor, ledger.CardReleased},
		Event: "switch request", Owner: w.Header.Sender, Ref: w.Source + ":", Ranges: ranges,
		Accepted: recordRequested, Rejected: recordRejected,
		DuplicateICCID: duplicateVerdict(w, native.FieldICCID),
		OtherState:     ledger.Verdict{Reason: ReasonAlreadyMoving, Detail: "card is ", DetailEnd: " here"},
		Exhausted:      ledger.Verdict{Reason: ReasonInternal, Detail: "no free IMSI in our ranges"},
		Took:           w.tookStatement("switch request"),
	})
	if err != nil {
		return err
	}
	w.Counts.Accepted += out.Accepted
	w.Counts.Rejected += out.Rejected
	// Each donor's imsi-list is rendered now, from the stage that has
	// just judged the lines, into a sealed spill; it is written from there
	// once the work commits (from the ledger on a rerun).
	for _, name := range out.Partners {
		o, err := w.Plan(ctx, "imsi-list", native.IMSIList.Name, p.Partners[name], false)
		if err != nil {
			return err
		}
		if !w.preparing(o) {
			continue
		}
		_, err = w.prepare(ctx, o, native.IMSIList, func(ctx context.Context, emit func(*native.Record) error) error {
			rec := native.NewRecord(native.IMSIList)
			return stage.Requested(ctx, name, cardPageSize, func(r ledger.BatchRecord) error {
				return emit(imsiListRecord(rec, r))
			})
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// imsiListRecord fills rec with the imsi-list record of an accepted
// switch request line's answer.
func imsiListRecord(rec *native.Record, r ledger.BatchRecord) *native.Record {
	rec.Set(native.FieldICCID, r.ICCID)
	rec.Set(native.FieldIMSI, r.IMSI)
	rec.Set(native.FieldCutoverDate, r.Data)
	return rec
}

// switchVerdict judges a switch request line by what needs no ledger, in
// the step's order: a donor must be known, the cut-over date must not be
// past. It fills l's donor and date and returns a rejection's reason and
// detail, or "" when the line passes.
func switchVerdict(p *Party, rec *native.Record, donor *Partner, last *lastCutover, l *ledger.SwitchLine) (reason, detail string) {
	if donor == nil {
		return ReasonInvalid, "no donor operator known for this card"
	}
	l.Partner, l.Source = donor.Name, donor.Code
	if raw := rec.Get(native.FieldCutoverDate); raw != last.raw || last.text == "" {
		last.date, _ = rec.Date(native.FieldCutoverDate)
		last.raw, last.text = raw, last.date.Format("2006-01-02")
	}
	date := last.date
	l.Cutover = last.text
	if date.Before(day(p.now())) {
		return ReasonDatePast, "cut-over date " + l.Cutover + " is past"
	}
	return "", ""
}

// lastCutover is the last cut-over date a step read: the lines of a
// file mostly share theirs, read and formatted once.
type lastCutover struct {
	raw, text string
	date      time.Time
}

// renderIMSIList writes the imsi-list of a switch-request batch for one
// donor. The next page of answers is read from the ledger while this one
// is written, encrypted and signed.
var renderIMSIList = &renderer{
	schema: native.IMSIList,
	count: func(ctx context.Context, p *Party, o *ledger.Output) (int, error) {
		return p.Ledger.CountBatchRecords(ctx, o.BatchID, o.Partner, recordRequested)
	},
	records: func(ctx context.Context, p *Party, o *ledger.Output, emit func(*native.Record) error) error {
		rec := native.NewRecord(native.IMSIList)
		return readAhead(ctx, func(ctx context.Context, page func([]ledger.BatchRecord) error) error {
			buf := make([]ledger.BatchRecord, 0, cardPageSize)
			err := p.Ledger.BatchRecords(ctx, o.BatchID, o.Partner, recordRequested, func(r ledger.BatchRecord) error {
				buf = append(buf, r)
				if len(buf) < cap(buf) {
					return nil
				}
				full := buf
				buf = make([]ledger.BatchRecord, 0, cardPageSize)
				return page(full)
			})
			if err != nil || len(buf) == 0 {
				return err
			}
			return page(buf)
		}, func(ctx context.Context, page []ledger.BatchRecord) error {
			for _, r := range page {
				if err := emit(imsiListRecord(rec, r)); err != nil {
					return err
				}
			}
			return nil
		})
	},
}
