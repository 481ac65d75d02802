package processor

import (
	"context"

	"resub/formats/native"
)

// OTAReportPerRecord is the donor's ota-report step as it was before it
// worked by sets, a line at a time through JudgePoR: the reference the
// set-based intake's ledger is compared with.
type OTAReportPerRecord struct {
	SMSC *Partner
}

// InputType implements FileStep.
func (s *OTAReportPerRecord) InputType() string { return native.OTAReport.Name }

// Apply implements FileStep.
func (s *OTAReportPerRecord) Apply(ctx context.Context, w *Work) error {
	smsc := s.SMSC
	if smsc == nil {
		smsc = w.Partner
	}
	recipients := map[string]*Partner{}
	err := w.eachRecord(ctx, nil, func(rec *native.Record) error {
		por, _ := rec.Hex(native.FieldPoR)
		return w.judgeReportLine(ctx, PoRReport{
			MSISDN: rec.Get(native.FieldMSISDN), MessageID: rec.Get(native.FieldMessageID), PoR: por,
			Status: rec.Get(native.FieldStatus), Detail: rec.Get(native.FieldDetail), Line: rec.Line,
		}, recipients)
	})
	if err != nil {
		return err
	}
	return (&OTAReport{SMSC: s.SMSC}).plan(ctx, w, smsc, recipients)
}
