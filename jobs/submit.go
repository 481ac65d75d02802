package jobs

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"resub/jobs/config"
	"resub/jobs/smpp"
	"resub/processor"
)

// submitMaxRun bounds a daemon's SMPP run (its lease lasts leaseTTL).
const submitMaxRun = 50 * time.Minute

// runSubmit is the job kind a-ota-submit: bind to the SMSC over SMPP,
// submit the queued messages that are due and take receipts and PoRs
// back. A manual run without o.Wait ends once what was due is submitted
// and answered; with o.Wait it listens until every submitted message is
// settled or o.Wait passes. The daemon's run listens while anything is
// awaited, up to submitMaxRun.
func (r *Runtime) runSubmit(ctx context.Context, j *config.Job, o RunOptions, sum *Summary) error {
	pc := r.Cfg.Partners[j.Partner]
	if pc == nil || pc.SMPP == nil {
		return cfgErr("jobs", fmt.Errorf("job %s: partner %s has no smpp settings", j.Name, j.Partner))
	}
	s := pc.SMPP
	path := "partners." + j.Partner + ".smpp"
	smsc := r.Party.Partners[j.Partner]
	if o.DryRun {
		n, err := r.Ledger.CountSMPP(ctx)
		if err == nil {
			r.Log.Info("dry run: nothing submitted", "job", j.Name, "queued", n["queued"])
		}
		return err
	}
	// One run per SMSC at a time, whatever the job: a run's start
	// settles what a run cut short left as being submitted.
	lease := "smpp:" + j.Partner
	if err := r.acquireLease(ctx, lease, o.Owner); err != nil {
		return err
	}
	defer r.Ledger.ReleaseLease(context.WithoutCancel(ctx), lease, o.Owner)
	pw, err := r.Cfg.Resolve(s.Password)
	if err != nil {
		return cfgErr(path+".password", err)
	}
	defer pw.Wipe()
	run, err := r.Party.OpenSMPPRun(ctx, j.Name, smsc)
	if err != nil {
		return err
	}
	// Answers a cut-short run left.
	if err := r.deliverPending(ctx, j, sum); err != nil {
		return err
	}
	cfg := smpp.Config{
		Addr: s.Addr(), SystemID: s.SystemID, Password: pw, SystemType: s.SystemType,
		Split: s.Bind == "transmitter-receiver", Window: s.Window, Rate: s.Rate,
		EnquireLink: s.EnquireLink.D(), Timeout: s.Timeout.D(),
	}
	if s.Source != nil {
		cfg.Source = smpp.Address{TON: byte(s.Source.TON), NPI: byte(s.Source.NPI), Addr: s.Source.Address}
	}
	for _, p := range r.Party.Profiles {
		if p.Rate > 0 && p.Rate < cfg.Rate {
			cfg.Rate = p.Rate // a profile's rate lowers the session's
		}
	}
	if t := s.TLS; t != nil {
		cfg.TLS = smpp.TLSConfig{On: true, ServerName: t.ServerName}
		if f, ok := strings.CutPrefix(t.CA, "file:"); ok {
			cfg.TLS.CAFile = r.Cfg.Abs(f)
		}
	}
	client := &smpp.Client{Cfg: cfg, Store: &submitStore{run: run}, Log: r.Log.With("job", j.Name, "partner", j.Partner)}
	var meter interface {
		PoRs(string, int)
	}
	if r.Metrics != nil {
		m := r.Metrics.SMPP(j.Partner)
		meter = m
		client.Metrics = smpp.Metrics{Submitted: m.Submitted, Throttled: m.Throttled, Receipt: m.Receipt, MO: m.MO, Bad: m.Bad, InFlight: m.InFlight, Up: m.Up}
	}
	start := r.now()
	var deadline time.Time
	until := func(pending int) bool { return pending == 0 }
	switch {
	case o.Wait > 0:
		deadline = start.Add(o.Wait)
	case o.Manual:
		until = func(int) bool { return true }
		deadline = start.Add(submitMaxRun)
	default:
		deadline = start.Add(submitMaxRun)
		if j.Deadline > 0 && j.Deadline.D() < submitMaxRun {
			deadline = start.Add(j.Deadline.D())
		}
	}
	var st smpp.Stats
	var runErr error
	if idle, err := run.Idle(ctx); err != nil {
		runErr = err
	} else if idle {
		r.Log.Info("nothing queued for the SMSC and nothing awaited: not binding", "job", j.Name, "partner", j.Partner)
	} else {
		st, runErr = client.Run(ctx, deadline, until)
	}
	res, err := run.Close(context.WithoutCancel(ctx))
	if err != nil {
		return err
	}
	c := run.Counts
	if meter != nil {
		for v, n := range c.PoRs {
			meter.PoRs(v, n)
		}
	}
	sum.Messages += c.Retries
	for _, n := range c.PoRs {
		sum.Records += n
	}
	sum.Records += c.Unmatched + c.Ignored + c.Bad
	sum.PoRsIgnored += c.PoRs[processor.SMPPPoRIgnored]
	if r.Metrics != nil {
		r.Metrics.PoRsIgnored(j.Name, c.PoRs[processor.SMPPPoRIgnored])
	}
	sum.SMPP = fmt.Sprintf("smpp: %d segments submitted, %d refused, %d unknown, %d throttled, %d expired unsent; receipts %s; PoRs %s, %d unmatched; %d unparseable; %d retries queued; %d sessions",
		c.Submitted, c.Rejected, c.Unknown, st.Throttled, c.Expired, byKey(c.Receipts), byKey(c.PoRs), c.Unmatched, c.Bad, c.Retries, st.Sessions)
	r.Log.Info("SMPP run", "job", j.Name, "partner", j.Partner, "submitted", c.Submitted, "refused", c.Rejected, "unknown", c.Unknown,
		"throttled", st.Throttled, "expired", c.Expired, "receipts", byKey(c.Receipts), "pors", byKey(c.PoRs), "unmatched", c.Unmatched,
		"unparseable", c.Bad, "retries", c.Retries, "sessions", st.Sessions, "duration", r.now().Sub(start).Round(time.Millisecond).String())
	if err := r.deliver(ctx, j, res.Outputs, sum); err != nil {
		return err
	}
	return runErr
}

func byKey(m map[string]int) string {
	if len(m) == 0 {
		return "none"
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s %d", k, m[k])
	}
	return strings.Join(parts, ", ")
}

// submitStore is the processor's SMPP run as the session's store.
type submitStore struct{ run *processor.SMPPRun }

func (s *submitStore) Next(ctx context.Context, n int) ([]smpp.Segment, error) {
	segs, err := s.run.Next(ctx, n)
	if err != nil {
		return nil, err
	}
	out := make([]smpp.Segment, len(segs))
	for i, g := range segs {
		out[i] = smpp.Segment{Key: smpp.Key{Message: g.Message, Seq: g.Seq}, Dest: smpp.Address{TON: 1, NPI: 1, Addr: g.MSISDN},
			UD: g.UD, Validity: g.Validity, Priority: g.Priority, Last: g.Last}
	}
	return out, nil
}

func (s *submitStore) Submitted(ctx context.Context, rs []smpp.Result) error {
	out := make([]processor.SMPPResult, len(rs))
	for i, x := range rs {
		out[i] = processor.SMPPResult{Message: x.Message, Seq: x.Seq, Status: x.Status, SMSCID: x.SMSCID, Unknown: x.Unknown, NotSent: x.NotSent}
		if x.Status != 0 {
			out[i].StatusText = smpp.StatusName(x.Status)
		}
	}
	return s.run.Submitted(ctx, out)
}

func (s *submitStore) Received(ctx context.Context, in []smpp.Inbound) error {
	out := make([]processor.SMPPInbound, len(in))
	for i, x := range in {
		out[i] = processor.SMPPInbound{From: x.From.Addr, To: x.To.Addr, ESMClass: x.ESMClass, UD: x.UD, Bad: x.Bad}
		if x.Receipt != nil {
			out[i].ReceiptID, out[i].ReceiptState, out[i].ReceiptErr = x.Receipt.SMSCID, x.Receipt.State, x.Receipt.Err
		}
	}
	return s.run.Received(ctx, out)
}

func (s *submitStore) Pending(ctx context.Context) (int, error) { return s.run.Pending(ctx) }
