package smpp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/linxGnu/gosmpp/data"
	"github.com/linxGnu/gosmpp/pdu"

	"resub/processor/failpoint"
)

// Client runs SMPP sessions against one SMSC for a Store.
type Client struct {
	Cfg     Config
	Store   Store
	Log     *slog.Logger
	Metrics Metrics
	// Poll is how often an idle session asks the store for new work
	// (1s by default).
	Poll time.Duration
}

// Stats are what one Run did.
type Stats struct {
	Submitted, Throttled, Rejected, Unknown int
	Receipts, MO, Bad                       int
	Sessions                                int
}

// Until says when a run may end: it is asked whenever nothing is left
// to submit and nothing is in flight, with the number of messages the
// store still awaits.
type Until func(pending int) bool

// Run submits what the store hands out and takes in what comes back,
// reconnecting with backoff when the session is lost, until until says
// so, deadline passes (zero: never) or ctx ends. The first connection
// failing is returned at once: a *BindError (bad credentials) or an
// *UnreachableError.
func (c *Client) Run(ctx context.Context, deadline time.Time, until Until) (Stats, error) {
	var st Stats
	backoff := time.Second
	for attempt := 0; ; attempt++ {
		s, err := c.open(ctx)
		if err != nil {
			var be *BindError
			if attempt == 0 || errors.As(err, &be) || ctx.Err() != nil {
				return st, err
			}
			c.log().Warn("SMSC still unreachable; retrying", "addr", c.Cfg.Addr, "error", err, "in", backoff)
			if !sleep(ctx, deadline, backoff) {
				return st, err
			}
			backoff = min(2*backoff, time.Minute)
			continue
		}
		st.Sessions++
		backoff = time.Second
		c.up(true)
		done, err := s.run(ctx, deadline, until, &st)
		c.up(false)
		if done || ctx.Err() != nil {
			return st, err
		}
		c.log().Warn("SMPP session lost; reconnecting", "addr", c.Cfg.Addr, "error", err)
		if !sleep(ctx, deadline, backoff) {
			return st, &UnreachableError{Err: err}
		}
	}
}

func sleep(ctx context.Context, deadline time.Time, d time.Duration) bool {
	if !deadline.IsZero() && time.Now().Add(d).After(deadline) {
		return false
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

func (c *Client) log() *slog.Logger {
	if c.Log != nil {
		return c.Log
	}
	return slog.New(slog.DiscardHandler)
}

func (c *Client) up(v bool) {
	if c.Metrics.Up != nil {
		c.Metrics.Up(v)
	}
}

// session is one bound session: tx submits, rx receives (the same link
// for a transceiver).
type session struct {
	c      *Client
	tx, rx *link
}

func (c *Client) open(ctx context.Context) (*session, error) {
	if !c.Cfg.Split {
		l, err := dial(ctx, c.Cfg)
		if err != nil {
			return nil, err
		}
		if err := l.bind(ctx, c.Cfg, pdu.Transceiver); err != nil {
			l.close()
			return nil, err
		}
		c.log().Info("SMPP session bound", "addr", c.Cfg.Addr, "bind", "transceiver", "system_id", c.Cfg.SystemID)
		return &session{c: c, tx: l, rx: l}, nil
	}
	tx, err := dial(ctx, c.Cfg)
	if err != nil {
		return nil, err
	}
	if err := tx.bind(ctx, c.Cfg, pdu.Transmitter); err != nil {
		tx.close()
		return nil, err
	}
	rx, err := dial(ctx, c.Cfg)
	if err != nil {
		tx.close()
		return nil, err
	}
	if err := rx.bind(ctx, c.Cfg, pdu.Receiver); err != nil {
		tx.close()
		rx.close()
		return nil, err
	}
	c.log().Info("SMPP sessions bound", "addr", c.Cfg.Addr, "bind", "transmitter-receiver", "system_id", c.Cfg.SystemID)
	return &session{c: c, tx: tx, rx: rx}, nil
}

func (s *session) links() []*link {
	if s.tx == s.rx {
		return []*link{s.tx}
	}
	return []*link{s.tx, s.rx}
}

func (s *session) close() {
	for _, l := range s.links() {
		l.close()
	}
}

// flight is a submit_sm awaiting its response.
type flight struct {
	seg  Segment
	body pdu.PDU
	sent time.Time
}

// pendingDeliver is a deliver_sm waiting to be recorded and answered.
type pendingDeliver struct {
	l   *link
	seq int32
	in  Inbound
}

// run is one session's life. It reports done when until said so (or the
// deadline passed) and the session was closed cleanly.
func (s *session) run(ctx context.Context, deadline time.Time, until Until, st *Stats) (done bool, err error) {
	c := s.c
	cfg := c.Cfg
	window := max(cfg.Window, 1)
	interval := time.Duration(0)
	if cfg.Rate > 0 {
		interval = time.Second / time.Duration(cfg.Rate)
	}
	poll := c.Poll
	if poll <= 0 {
		poll = time.Second
	}
	// backlog bounds the responses received but not yet recorded: the
	// window is the SMSC's (submit_sm awaiting their response); a crash
	// before a response is recorded leaves its message unknown, never
	// resent.
	backlog := max(8*window, 1024)
	// ahead: segments fetched (and recorded as submitting) ahead; a crash
	// leaves their messages unknown, so it stays a couple of windows.
	ahead := 2*window + 8
	inflight := map[int32]*flight{}
	var queue []*flight // taken from the store, not yet sent (or to resend)
	var results []Result
	var delivers []pendingDeliver
	nextSend := time.Now()
	var pausedUntil time.Time
	throttleBackoff := 200 * time.Millisecond
	var nextPoll, nextPending time.Time
	var enqSeq int32
	var enqSent time.Time
	stopping := false

	// lose ends the session: what was in flight has an unknown outcome;
	// what was taken and never sent goes back.
	var lose func(cause error) (bool, error)
	lose = func(cause error) (bool, error) {
		s.close()
		var rs []Result
		for _, f := range inflight {
			rs = append(rs, Result{Key: f.seg.Key, Unknown: true})
			st.Unknown++
		}
		for _, f := range queue {
			rs = append(rs, Result{Key: f.seg.Key, NotSent: true})
		}
		rs = append(results, rs...)
		if len(inflight) > 0 {
			c.log().Warn("SMPP session lost with submit_sm in flight: their outcome is unknown; they are never resubmitted", "in_flight", len(inflight), "error", cause)
		}
		if len(rs) > 0 {
			if err := c.Store.Submitted(context.WithoutCancel(ctx), rs); err != nil {
				return false, errors.Join(cause, err)
			}
		}
		if c.Metrics.InFlight != nil {
			c.Metrics.InFlight(0)
		}
		return false, cause
	}

	// Recording runs beside the session: while one batch of outcomes and
	// deliver_sm is committed, submit_sm go on within the window (a
	// submission whose response is not yet recorded still holds its
	// slot) and new frames are read. Each deliver_sm is answered only
	// after its batch committed.
	type recordJob struct {
		results  []Result
		delivers []pendingDeliver
	}
	recCh := make(chan recordJob)
	recDone := make(chan error, 1)
	recBusy := false
	recording := 0 // results handed to the recorder, not yet committed
	go func() {
		for job := range recCh {
			// What came is recorded even when the run is being
			// stopped: a response lost here would leave its message
			// unknown.
			recDone <- s.record(context.WithoutCancel(ctx), job.results, job.delivers)
		}
	}()
	defer close(recCh)
	// handOff gives the recorder what is waiting, if it is free.
	handOff := func() {
		if recBusy || (len(results) == 0 && len(delivers) == 0) {
			return
		}
		recBusy, recording = true, len(results)
		recCh <- recordJob{results: results, delivers: delivers}
		results, delivers = nil, nil
	}
	// waitRecorder waits for the batch being committed.
	waitRecorder := func() error {
		if !recBusy {
			return nil
		}
		err := <-recDone
		recBusy, recording = false, 0
		return err
	}
	flushAll := func() error {
		for recBusy || len(results) > 0 || len(delivers) > 0 {
			handOff()
			if err := waitRecorder(); err != nil {
				return err
			}
		}
		return nil
	}
	// The store hands out work beside the session too.
	type fetched struct {
		flights []*flight
		err     error
	}
	fetchCh := make(chan int)
	fetchDone := make(chan fetched, 1)
	fetching := false
	go func() {
		for n := range fetchCh {
			segs, err := c.Store.Next(ctx, n)
			var fs []*flight
			for _, sg := range segs {
				fl := &flight{seg: sg}
				var perr error
				if fl.body, perr = submitPDU(cfg, sg); perr != nil && err == nil {
					err = perr
				}
				fs = append(fs, fl)
			}
			fetchDone <- fetched{fs, err}
		}
	}()
	defer close(fetchCh)
	// takeFetched adds what a fetch brought to the queue.
	takeFetched := func(f fetched) error {
		fetching = false
		queue = append(queue, f.flights...)
		if len(f.flights) == 0 {
			nextPoll = time.Now().Add(poll)
		}
		return f.err
	}
	waitFetch := func() error {
		if !fetching {
			return nil
		}
		return takeFetched(<-fetchDone)
	}
	lost := lose
	lose = func(cause error) (bool, error) {
		if err := waitFetch(); err != nil {
			cause = errors.Join(cause, err)
		}
		if err := waitRecorder(); err != nil {
			cause = errors.Join(cause, err)
		}
		return lost(cause)
	}

	// handle takes one frame from a link.
	handle := func(l *link, f frame) error {
		switch f.id {
		case data.SUBMIT_SM_RESP, data.GENERIC_NACK:
			fl := inflight[f.seq]
			if fl == nil {
				if f.id == data.GENERIC_NACK {
					c.log().Warn("SMSC sent generic_nack", "status", StatusName(f.status), "sequence", f.seq)
				}
				return nil
			}
			delete(inflight, f.seq)
			switch f.status {
			case StatusThrottled, StatusQueueFull:
				// Not accepted: the same PDU again after a pause.
				st.Throttled++
				if c.Metrics.Throttled != nil {
					c.Metrics.Throttled()
				}
				queue = append([]*flight{fl}, queue...)
				pausedUntil = time.Now().Add(throttleBackoff)
				c.log().Debug("SMSC throttles; pausing", "status", StatusName(f.status), "pause", throttleBackoff)
				throttleBackoff = min(2*throttleBackoff, 10*time.Second)
				return nil
			case StatusOK:
				throttleBackoff = 200 * time.Millisecond
				id := ""
				if r, ok := f.p.(*pdu.SubmitSMResp); ok {
					id = r.MessageID
				}
				results = append(results, Result{Key: fl.seg.Key, SMSCID: id})
				st.Submitted++
				if c.Metrics.Submitted != nil {
					c.Metrics.Submitted(1)
				}
			default:
				results = append(results, Result{Key: fl.seg.Key, Status: f.status})
				st.Rejected++
				c.log().Warn("SMSC rejected a segment", "message", fl.seg.Message, "segment", fl.seg.Seq, "status", StatusName(f.status))
			}
		case data.DELIVER_SM:
			in := Inbound{}
			if f.err != nil {
				in.Bad = f.err.Error()
			} else {
				in = inbound(f.p.(*pdu.DeliverSM))
			}
			switch {
			case in.Bad != "":
				st.Bad++
				if c.Metrics.Bad != nil {
					c.Metrics.Bad()
				}
				c.log().Warn("deliver_sm that cannot be parsed: answered and recorded", "sequence", f.seq, "reason", in.Bad)
			case in.Receipt != nil:
				st.Receipts++
				if c.Metrics.Receipt != nil {
					c.Metrics.Receipt(in.Receipt.State)
				}
			default:
				st.MO++
				if c.Metrics.MO != nil {
					c.Metrics.MO()
				}
			}
			delivers = append(delivers, pendingDeliver{l: l, seq: f.seq, in: in})
		case data.ENQUIRE_LINK:
			return l.respond(data.ENQUIRE_LINK_RESP, f.seq, StatusOK, nil)
		case data.ENQUIRE_LINK_RESP:
			if f.seq == enqSeq {
				enqSeq = 0
			}
		case data.UNBIND:
			_ = l.respond(data.UNBIND_RESP, f.seq, StatusOK, nil)
			return fmt.Errorf("%w: the SMSC unbound", errLost)
		case data.DATA_SM:
			// Not used by OTA; answer so the SMSC does not retry.
			return l.respond(data.DATA_SM_RESP, f.seq, uint32(data.ESME_RX_P_APPN), []byte{0})
		default:
			if uint32(f.id)&0x80000000 == 0 {
				return l.respond(data.GENERIC_NACK, f.seq, uint32(data.ESME_RINVCMDID), nil)
			}
		}
		return nil
	}

	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		now := time.Now()
		if ctx.Err() != nil || (!deadline.IsZero() && now.After(deadline)) {
			stopping = true
		}
		// Take work: a window's worth ahead, asked for in batches (each
		// recorded in one transaction before it goes out), fetched while
		// what was fetched before goes out.
		if !stopping && !fetching && len(queue) <= ahead/2 && !now.Before(nextPoll) {
			fetching = true
			fetchCh <- ahead
		}
		// Send within window and rate.
		sent := 0
		// Stopping, a message whose first segments went out is finished
		// first: a card can use only a whole message, and one cut short
		// would be unknown until its deadline.
		for len(queue) > 0 && len(inflight) < window && len(results)+recording < backlog && !now.Before(pausedUntil) && !now.Before(nextSend) && (!stopping || queue[0].seg.Seq > 1) {
			fl := queue[0]
			queue = queue[1:]
			seq := s.tx.next()
			fl.sent = now
			inflight[seq] = fl
			fl.body.SetSequenceNumber(seq)
			b := pdu.NewBuffer(make([]byte, 0, 200))
			fl.body.Marshal(b)
			if err := s.tx.writeBuffered(b.Bytes()); err != nil {
				return lose(err)
			}
			sent++
			if interval > 0 {
				nextSend = nextSend.Add(interval)
				if nextSend.Before(now) {
					nextSend = now.Add(interval)
				}
			}
		}
		if sent > 0 {
			if err := s.tx.flush(); err != nil {
				return lose(err)
			}
			failpoint.Hit(failpoint.SMPPAfterSend)
			if c.Metrics.InFlight != nil {
				c.Metrics.InFlight(len(inflight))
			}
		}
		// Idle: may the run end?
		if len(queue) == 0 && len(inflight) == 0 && len(delivers) == 0 && len(results) == 0 && !recBusy && !fetching {
			if stopping {
				return s.unbind(ctx)
			}
			if until != nil && !now.Before(nextPending) {
				nextPending = now.Add(poll)
				n, err := c.Store.Pending(ctx)
				if err != nil {
					return s.abort(lose, err)
				}
				if until(n) {
					return s.unbind(ctx)
				}
			}
		}
		if stopping && len(inflight) == 0 && (len(queue) == 0 || queue[0].seg.Seq == 1) {
			// Taken but never sent: back to the store.
			if err := waitFetch(); err != nil {
				return s.abort(lose, err)
			}
			for _, f := range queue {
				results = append(results, Result{Key: f.seg.Key, NotSent: true})
			}
			queue = nil
			if err := flushAll(); err != nil {
				return s.abort(lose, err)
			}
			return s.unbind(ctx)
		}
		// Response timeout and keep-alive.
		for _, f := range inflight {
			if now.Sub(f.sent) > cfg.Timeout {
				return lose(fmt.Errorf("%w: no submit_sm_resp within %s", errLost, cfg.Timeout))
			}
		}
		if enqSeq != 0 && now.Sub(enqSent) > cfg.Timeout {
			return lose(fmt.Errorf("%w: no enquire_link_resp within %s", errLost, cfg.Timeout))
		}
		if enqSeq == 0 && cfg.EnquireLink > 0 {
			for _, l := range s.links() {
				if now.Sub(time.Unix(0, l.last.Load())) > cfg.EnquireLink {
					seq, err := l.send(pdu.NewEnquireLink(), 0)
					if err != nil {
						return lose(err)
					}
					l.last.Store(now.UnixNano())
					enqSeq, enqSent = seq, now
				}
			}
		}
		// Wait for something.
		wake := now.Add(poll)
		if len(queue) > 0 && len(inflight) < window && len(results)+recording < backlog && !stopping {
			wake = later(now, pausedUntil, nextSend)
		}
		if cfg.Timeout > 0 && len(inflight) > 0 {
			wake = minTime(wake, now.Add(cfg.Timeout/4))
		}
		timer.Reset(max(wake.Sub(now), 0))
		got := false
		select {
		case f := <-s.tx.frames:
			if err := handle(s.tx, f); err != nil {
				return lose(err)
			}
			got = true
		case f := <-s.rx.frames:
			if err := handle(s.rx, f); err != nil {
				return lose(err)
			}
			got = true
		case <-s.tx.done:
			return lose(fmt.Errorf("%w: %w", errLost, errOr(s.tx.err)))
		case <-s.rx.done:
			return lose(fmt.Errorf("%w: %w", errLost, errOr(s.rx.err)))
		case f := <-fetchDone:
			if err := takeFetched(f); err != nil {
				return s.abort(lose, err)
			}
		case err := <-recDone:
			recBusy, recording = false, 0
			if err != nil {
				return s.abort(lose, err)
			}
		case <-timer.C:
		case <-ctx.Done():
		}
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
		if got {
			// Drain what else is there, then record it all at once.
		drain:
			for i := 0; i < 4096; i++ {
				select {
				case f := <-s.tx.frames:
					if err := handle(s.tx, f); err != nil {
						return lose(err)
					}
				case f := <-s.rx.frames:
					if err := handle(s.rx, f); err != nil {
						return lose(err)
					}
				default:
					break drain
				}
			}
		}
		handOff()
	}
}

// record commits submit outcomes, then what deliver_sm carried, then
// answers those deliver_sm.
func (s *session) record(ctx context.Context, results []Result, delivers []pendingDeliver) error {
	c := s.c
	if len(results) > 0 {
		if err := c.Store.Submitted(ctx, results); err != nil {
			return err
		}
	}
	if len(delivers) == 0 {
		return nil
	}
	ins := make([]Inbound, len(delivers))
	for i, d := range delivers {
		ins[i] = d.in
	}
	// Durable first, answered after.
	if err := c.Store.Received(ctx, ins); err != nil {
		return err
	}
	for _, d := range delivers {
		status := StatusOK
		if d.in.Bad != "" {
			status = uint32(data.ESME_RX_P_APPN)
		}
		b := make([]byte, 17) // body: message_id, an empty C-string
		putHeader(b, data.DELIVER_SM_RESP, status, d.seq)
		if err := d.l.writeBuffered(b); err != nil {
			return nil // the session is lost: the SMSC delivers again
		}
	}
	for _, l := range s.links() {
		_ = l.flush()
	}
	return nil
}

// abort ends the session on a store error: the ledger could not record,
// so nothing more is sent or answered.
func (s *session) abort(lose func(error) (bool, error), err error) (bool, error) {
	_, lerr := lose(err)
	if lerr == nil {
		lerr = err
	}
	return true, lerr
}

// unbind ends a session cleanly.
func (s *session) unbind(ctx context.Context) (bool, error) {
	defer s.close()
	for _, l := range s.links() {
		seq, err := l.send(pdu.NewUnbind(), 0)
		if err != nil {
			continue
		}
		t := time.NewTimer(s.c.Cfg.Timeout)
	wait:
		for {
			select {
			case f := <-l.frames:
				if f.id == data.UNBIND_RESP && f.seq == seq {
					break wait
				}
				if f.id == data.DELIVER_SM {
					// Not recorded: answered "try later" so the
					// SMSC delivers it again on the next session.
					_ = l.respond(data.DELIVER_SM_RESP, f.seq, uint32(data.ESME_RX_T_APPN), []byte{0})
				}
			case <-l.done:
				break wait
			case <-t.C:
				break wait
			case <-ctx.Done():
				break wait
			}
		}
		t.Stop()
	}
	s.c.log().Info("SMPP session unbound", "addr", s.c.Cfg.Addr)
	return true, nil
}

func later(now time.Time, ts ...time.Time) time.Time {
	w := now
	for _, t := range ts {
		if t.After(w) {
			w = t
		}
	}
	return w
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

func putHeader(b []byte, id data.CommandIDType, status uint32, seq int32) {
	n := uint32(len(b))
	b[0], b[1], b[2], b[3] = byte(n>>24), byte(n>>16), byte(n>>8), byte(n)
	v := uint32(id)
	b[4], b[5], b[6], b[7] = byte(v>>24), byte(v>>16), byte(v>>8), byte(v)
	b[8], b[9], b[10], b[11] = byte(status>>24), byte(status>>16), byte(status>>8), byte(status)
	u := uint32(seq)
	b[12], b[13], b[14], b[15] = byte(u>>24), byte(u>>16), byte(u>>8), byte(u)
}

// otaCoding is data_coding 0xF6: 8-bit data, message class 2 (to the
// (U)SIM), which the ME needs for data download.
type otaCoding struct{}

func (otaCoding) Encode(s string) ([]byte, error) { return []byte(s), nil }
func (otaCoding) Decode(b []byte) (string, error) { return string(b), nil }
func (otaCoding) DataCoding() byte                { return 0xF6 }

// submitPDU is the submit_sm of one segment: UDHI, (U)SIM data
// download, class 2 8-bit data, a receipt requested.
func submitPDU(cfg Config, sg Segment) (pdu.PDU, error) {
	p := pdu.NewSubmitSM().(*pdu.SubmitSM)
	src, err := pdu.NewAddressWithTonNpiAddr(cfg.Source.TON, cfg.Source.NPI, cfg.Source.Addr)
	if err != nil {
		return nil, fmt.Errorf("source address: %w", err)
	}
	dst, err := pdu.NewAddressWithTonNpiAddr(sg.Dest.TON, sg.Dest.NPI, sg.Dest.Addr)
	if err != nil {
		return nil, fmt.Errorf("message %d: destination: %w", sg.Message, err)
	}
	p.ServiceType = ""
	p.SourceAddr, p.DestAddr = src, dst
	p.EsmClass = 0x40
	p.ProtocolID = 0x7F
	p.PriorityFlag = sg.Priority
	p.RegisteredDelivery = 0x01
	p.ValidityPeriod = relativeTime(sg.Validity)
	if err := p.Message.SetMessageDataWithEncoding(sg.UD, otaCoding{}); err != nil {
		return nil, fmt.Errorf("message %d segment %d: %w", sg.Message, sg.Seq, err)
	}
	return p, nil
}

// relativeTime writes a duration in SMPP's relative time format
// "YYMMDDhhmmss000R" ("" for none).
func relativeTime(d time.Duration) string {
	if d <= 0 {
		return ""
	}
	s := int64(d / time.Second)
	days := s / 86400
	s %= 86400
	yy := days / 365
	days %= 365
	mm := days / 30
	days %= 30
	if yy > 99 {
		yy, mm, days = 99, 11, 29
	}
	return fmt.Sprintf("%02d%02d%02d%02d%02d%02d000R", yy, mm, days, s/3600, (s%3600)/60, s%60)
}

// inbound reads a deliver_sm: a receipt (esm_class 0x04, or TLVs) or a
// mobile-originated message.
func inbound(d *pdu.DeliverSM) Inbound {
	in := Inbound{
		From:     Address{TON: d.SourceAddr.Ton(), NPI: d.SourceAddr.Npi(), Addr: d.SourceAddr.Address()},
		To:       Address{TON: d.DestAddr.Ton(), NPI: d.DestAddr.Npi(), Addr: d.DestAddr.Address()},
		ESMClass: d.EsmClass, PID: d.ProtocolID,
	}
	if enc := d.Message.Encoding(); enc != nil {
		in.DCS = enc.DataCoding()
	}
	ud, _ := d.Message.GetMessageData()
	if h := d.Message.UDH(); len(h) > 0 {
		hb, err := h.MarshalBinary()
		if err != nil {
			in.Bad = "UDH: " + err.Error()
			return in
		}
		ud = append(hb, ud...)
	}
	if len(ud) == 0 {
		if f, ok := d.OptionalParameters[pdu.TagMessagePayload]; ok {
			ud = f.Data
		}
	}
	in.UD = append([]byte(nil), ud...)
	if d.EsmClass&0x3C == 0x04 || d.EsmClass&0x3C == 0x08 {
		r := parseReceiptText(string(ud))
		if f, ok := d.OptionalParameters[pdu.TagReceiptedMessageID]; ok {
			r.SMSCID = f.String()
		}
		if f, ok := d.OptionalParameters[pdu.TagMessageStateOption]; ok && len(f.Data) == 1 {
			r.State = stateName(f.Data[0])
		}
		if r.SMSCID == "" || r.State == "" {
			in.Bad = "delivery receipt without message id or state"
			return in
		}
		r.Dest = in.From
		in.Receipt = &r
	}
	return in
}

// parseReceiptText reads the text of SMPP 3.4 appendix B:
// "id:IIII sub:SSS dlvrd:DDD submit date:… done date:… stat:DDDDDDD err:E text:…".
func parseReceiptText(s string) Receipt {
	var r Receipt
	lower := strings.ToLower(s)
	field := func(name string) string {
		i := strings.Index(lower, name+":")
		if i < 0 {
			return ""
		}
		v := s[i+len(name)+1:]
		if j := strings.IndexByte(v, ' '); j >= 0 {
			v = v[:j]
		}
		return v
	}
	r.SMSCID = field("id")
	r.State = strings.ToUpper(field("stat"))
	r.Err = field("err")
	return r
}

// stateName maps the message_state TLV to its appendix B text.
func stateName(v byte) string {
	switch v {
	case 1:
		return "ENROUTE"
	case 2:
		return "DELIVRD"
	case 3:
		return "EXPIRED"
	case 4:
		return "DELETED"
	case 5:
		return "UNDELIV"
	case 6:
		return "ACCEPTD"
	case 7:
		return "UNKNOWN"
	case 8:
		return "REJECTD"
	}
	return fmt.Sprintf("STATE%d", v)
}
