// Package smsc is a simulated SMSC / OTA gateway for the demo and the
// tests: it reads an ota-batch, hands each message's SMS segments to the
// simulated UICC behind the destination MSISDN and writes an ota-report
// with each message's delivery status and the card's proof of receipt.
// It is not used by any production job.
package smsc

import (
	"bufio"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"resub/formats/native"
	"resub/formats/ota/simcard"
)

// SMSC delivers to simulated cards.
type SMSC struct {
	mu    sync.Mutex
	cards map[string]*simcard.Card
	// Unreachable MSISDNs get "expired" (the handset never attached).
	unreachable map[string]bool
	// Spoofed MSISDNs: the report carries, before the card's own PoR, a
	// forged one (the card's with its last octet changed), as an SMS from
	// anyone to the OTA short code would.
	spoofed map[string]bool
	Now     func() time.Time
}

// New makes an SMSC without cards.
func New() *SMSC {
	return &SMSC{cards: map[string]*simcard.Card{}, unreachable: map[string]bool{}, spoofed: map[string]bool{}, Now: time.Now}
}

// SetSpoofed makes the next reports about an MSISDN carry a forged PoR
// before the card's own.
func (s *SMSC) SetSpoofed(msisdn string, v bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.spoofed[msisdn] = v
}

// Register puts a card behind an MSISDN.
func (s *SMSC) Register(msisdn string, c *simcard.Card) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cards[msisdn] = c
}

// SetUnreachable makes an MSISDN unreachable (messages expire undelivered).
func (s *SMSC) SetUnreachable(msisdn string, v bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.unreachable[msisdn] = v
}

// Stats count what a run did.
type Stats struct {
	Messages, Delivered, PoRs, Expired, Unknown int
	Spoofed                                     int // forged PoRs put in the report
}

// Report identifies the report file the SMSC writes.
type Report struct {
	Sender, Receiver string
	Sequence         int
}

// Process reads an ota-batch from r and writes the ota-report to w.
func (s *SMSC) Process(r io.Reader, w io.Writer, rep Report) (Stats, error) {
	var st Stats
	rd := native.NewReader(r, native.Options{Type: native.OTABatch.Name})
	h, err := rd.Header()
	if err != nil {
		return st, fmt.Errorf("smsc: batch header: %w", err)
	}
	type line struct {
		id, msisdn, status, por, detail string
	}
	var lines []line
	for {
		rec, err := rd.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return st, fmt.Errorf("smsc: batch: %w", err)
		}
		st.Messages++
		l := line{id: rec.Get(native.FieldMessageID), msisdn: rec.Get(native.FieldMSISDN)}
		segs, err := rec.Segments(native.FieldSegments)
		if err != nil {
			return st, err
		}
		s.mu.Lock()
		card, unreachable, spoofed := s.cards[l.msisdn], s.unreachable[l.msisdn], s.spoofed[l.msisdn]
		s.mu.Unlock()
		switch {
		case card == nil:
			l.status, l.detail = native.StatusFailed, "unknown subscriber"
		case unreachable:
			l.status, l.detail = native.StatusExpired, "validity period expired"
			st.Expired++
		default:
			por, err := card.Receive(segs)
			switch {
			case errors.Is(err, simcard.ErrNoAnswer):
				l.status = native.StatusDelivered
				st.Delivered++
				st.Unknown++
			case err != nil:
				return st, fmt.Errorf("smsc: card %s: %w", l.msisdn, err)
			default:
				l.status, l.por = native.StatusDelivered, fmt.Sprintf("%x", por)
				st.Delivered++
				st.PoRs++
				if spoofed && len(por) > 0 {
					forged := append([]byte(nil), por...)
					forged[len(forged)-1] ^= 0xa5
					lines = append(lines, line{id: l.id, msisdn: l.msisdn, status: native.StatusDelivered, por: fmt.Sprintf("%x", forged), detail: "mobile-originated to the OTA short code"})
					st.Spoofed++
				}
			}
		}
		lines = append(lines, l)
	}
	_ = h
	now := s.Now().UTC()
	y, m, d := now.Date()
	out := &native.Header{Format: native.OTAReport.Name, Version: native.OTAReport.Version, Sender: rep.Sender, Receiver: rep.Receiver,
		BusinessDate: time.Date(y, m, d, 0, 0, 0, 0, time.UTC), Sequence: rep.Sequence, Created: now.Truncate(time.Second),
		Batch: fmt.Sprintf("%s-%d", rep.Sender, rep.Sequence), Quantity: len(lines)}
	bw := bufio.NewWriter(w)
	nw := native.NewWriter(bw, native.OTAReport)
	cols := make([]string, len(native.OTAReport.Fields))
	for i, f := range native.OTAReport.Fields {
		cols[i] = f.Name
	}
	if err := nw.WriteHeader(out, cols); err != nil {
		return st, err
	}
	rec := native.NewRecord(native.OTAReport)
	for _, l := range lines {
		rec.Set(native.FieldMessageID, l.id)
		rec.Set(native.FieldMSISDN, l.msisdn)
		rec.Set(native.FieldStatus, l.status)
		rec.Set(native.FieldTime, now.Format(time.RFC3339))
		rec.Set(native.FieldPoR, l.por)
		rec.Set(native.FieldDetail, l.detail)
		if err := nw.Write(rec); err != nil {
			return st, err
		}
	}
	if err := nw.Flush(); err != nil {
		return st, err
	}
	return st, bw.Flush()
}

// Stream is Process for a batch of any size, as a benchmark needs it: the
// card behind each message's MSISDN is made by cardOf when the message
// comes (nil: an unknown subscriber), answers, and the message's report
// line is written before the next is read, so memory stays flat however
// many messages the batch holds. The report has one line per message (no
// forged PoRs, no unreachable numbers).
func (s *SMSC) Stream(r io.Reader, w io.Writer, rep Report, cardOf func(msisdn string) (*simcard.Card, error)) (Stats, error) {
	var st Stats
	rd := native.NewReader(r, native.Options{Type: native.OTABatch.Name})
	h, err := rd.Header()
	if err != nil {
		return st, fmt.Errorf("smsc: batch header: %w", err)
	}
	now := s.Now().UTC()
	y, m, d := now.Date()
	out := &native.Header{Format: native.OTAReport.Name, Version: native.OTAReport.Version, Sender: rep.Sender, Receiver: rep.Receiver,
		BusinessDate: time.Date(y, m, d, 0, 0, 0, 0, time.UTC), Sequence: rep.Sequence, Created: now.Truncate(time.Second),
		Batch: fmt.Sprintf("%s-%d", rep.Sender, rep.Sequence), Quantity: h.Quantity}
	nw := native.NewWriter(w, native.OTAReport)
	cols := make([]string, len(native.OTAReport.Fields))
	for i, f := range native.OTAReport.Fields {
		cols[i] = f.Name
	}
	if err := nw.WriteHeader(out, cols); err != nil {
		return st, err
	}
	at := now.Format(time.RFC3339)
	rec := native.NewRecord(native.OTAReport)
	for {
		in, err := rd.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return st, fmt.Errorf("smsc: batch: %w", err)
		}
		st.Messages++
		msisdn := in.Get(native.FieldMSISDN)
		segs, err := in.Segments(native.FieldSegments)
		if err != nil {
			return st, err
		}
		card, err := cardOf(msisdn)
		if err != nil {
			return st, fmt.Errorf("smsc: card %s: %w", msisdn, err)
		}
		status, por, detail := native.StatusFailed, "", "unknown subscriber"
		if card != nil {
			b, err := card.Receive(segs)
			switch {
			case errors.Is(err, simcard.ErrNoAnswer):
				status, detail = native.StatusDelivered, ""
				st.Delivered++
				st.Unknown++
			case err != nil:
				return st, fmt.Errorf("smsc: card %s: %w", msisdn, err)
			default:
				status, por, detail = native.StatusDelivered, hex.EncodeToString(b), ""
				st.Delivered++
				st.PoRs++
			}
		}
		rec.Set(native.FieldMessageID, in.Get(native.FieldMessageID))
		rec.Set(native.FieldMSISDN, msisdn)
		rec.Set(native.FieldStatus, status)
		rec.Set(native.FieldTime, at)
		rec.Set(native.FieldPoR, por)
		rec.Set(native.FieldDetail, detail)
		if err := nw.Write(rec); err != nil {
			return st, err
		}
	}
	return st, nw.Flush()
}
