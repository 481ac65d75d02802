package processor

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"resub/crypto/pgp"
	"resub/formats/native"
	"resub/processor/failpoint"
	"resub/processor/ledger"

	"golang.org/x/sync/errgroup"
)

// planSpec describes an output to plan.
type planSpec struct {
	job, source, renderer string
	partner               *Partner
	typ                   string
	batchID               int64
	inReplyTo, inReplySHA string
	note                  string
}

// plan records an output inside the work's transaction, allocating its
// sequence number and name. Planning the same output again returns it.
func (p *Party) plan(ctx context.Context, tx *ledger.Tx, s planSpec) (*ledger.Output, error) {
	if s.renderer == "ota-batch" && s.partner.SMPP {
		// No file: the messages wait in the SMPP submission queue.
		return nil, p.queueSMPP(ctx, tx, s.partner, s.batchID)
	}
	existing, err := p.Ledger.Outputs(ctx, s.source)
	if err == nil {
		for _, o := range existing {
			if o.Renderer == s.renderer && o.Partner == s.partner.Name {
				return o, nil
			}
		}
	}
	seq, err := tx.NextSeq(ctx, p.Name, s.partner.Code, s.typ)
	if err != nil {
		return nil, err
	}
	now := p.now()
	h := &native.Header{Format: s.typ, Sender: p.Name, Receiver: s.partner.Code, BusinessDate: day(now), Sequence: int(seq)}
	name := native.NameOf(h, "txt", !s.partner.PGPOff).String()
	return tx.PlanOutput(ctx, &ledger.Output{
		Job: s.job, Source: s.source, Renderer: s.renderer, Partner: s.partner.Name, Type: s.typ, BatchID: s.batchID,
		Name: name, Seq: seq, InReplyTo: s.inReplyTo, InReplySHA: s.inReplySHA, Note: s.note,
	})
}

// Plan records an output of the work: rendered by renderer for partner
// once the work commits.
func (w *Work) Plan(ctx context.Context, renderer, typ string, partner *Partner, inReply bool) (*ledger.Output, error) {
	s := planSpec{job: w.Job, source: w.Source, renderer: renderer, partner: partner, typ: typ, batchID: w.BatchID}
	if inReply && w.File != nil {
		s.inReplyTo, s.inReplySHA = w.File.Name, w.File.SHA256
	}
	return w.P.plan(ctx, w.Tx, s)
}

// PlanTo plans an output for a partner the job must name (role says which
// one, for the error when the configuration lacks it).
func (w *Work) PlanTo(ctx context.Context, renderer, typ string, partner *Partner, role string) error {
	if partner == nil {
		return fmt.Errorf("%s: no %s partner configured for the %s", w.Job, role, typ)
	}
	_, err := w.Plan(ctx, renderer, typ, partner, false)
	return err
}

func day(t time.Time) time.Time {
	y, m, d := t.UTC().Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
}

// renderer produces one kind of output from the ledger.
type renderer struct {
	schema *native.Schema
	// count returns the number of records.
	count func(ctx context.Context, p *Party, o *ledger.Output) (int, error)
	// header fills type-specific header fields (optional).
	header func(ctx context.Context, p *Party, o *ledger.Output, h *native.Header) error
	// records emits the records in order.
	records func(ctx context.Context, p *Party, o *ledger.Output, emit func(*native.Record) error) error
}

// renderPending renders the planned outputs of source and returns every
// output of it not yet delivered.
func (p *Party) renderPending(ctx context.Context, source string) ([]*ledger.Output, error) {
	outs, err := p.Ledger.Outputs(ctx, source)
	if err != nil {
		return nil, err
	}
	var pending []*ledger.Output
	for _, o := range outs {
		if o.State == ledger.OutDelivered {
			continue
		}
		if o.State == ledger.OutPlanned {
			if err := p.render(ctx, o); err != nil {
				return nil, fmt.Errorf("render %s: %w", o.Name, err)
			}
		}
		pending = append(pending, o)
	}
	return pending, nil
}

func (p *Party) renderPendingPrefix(ctx context.Context, prefix string) ([]*ledger.Output, error) {
	rows, err := p.Ledger.Query(ctx, `SELECT DISTINCT source FROM outputs WHERE source LIKE ? AND state <> ?`, prefix+"%", ledger.OutDelivered)
	if err != nil {
		return nil, err
	}
	var sources []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			rows.Close()
			return nil, err
		}
		sources = append(sources, s)
	}
	rows.Close()
	var all []*ledger.Output
	for _, s := range sources {
		outs, err := p.renderPending(ctx, s)
		if err != nil {
			return nil, err
		}
		all = append(all, outs...)
	}
	return all, nil
}

// PendingOutputs renders what is planned and lists every output not yet
// delivered, of one job or all.
func (p *Party) PendingOutputs(ctx context.Context, job string) ([]*ledger.Output, error) {
	outs, err := p.Ledger.PendingOutputs(ctx, job)
	if err != nil {
		return nil, err
	}
	for _, o := range outs {
		if o.State == ledger.OutPlanned {
			if err := p.render(ctx, o); err != nil {
				return nil, fmt.Errorf("render %s: %w", o.Name, err)
			}
		}
	}
	return outs, nil
}

// Delivered records that an output reached its partner.
func (p *Party) Delivered(ctx context.Context, o *ledger.Output) error {
	if err := p.Ledger.SetOutputDelivered(ctx, o); err != nil {
		return err
	}
	o.State = ledger.OutDelivered
	if o.Renderer == "ota-batch" {
		// The messages are out: their PoR deadline starts now, or at
		// their not-before when the card's cut-over is later.
		return p.Ledger.InTx(ctx, func(tx *ledger.Tx) error {
			return p.markSent(ctx, tx, o.BatchID, o.ID, p.now())
		})
	}
	return nil
}

// render writes an output: native text, encrypted and signed to the
// partner unless PGP is off for it, into OutDir via a temporary name,
// fsync and rename. Plaintext exists only in memory.
func (p *Party) render(ctx context.Context, o *ledger.Output) error {
	r, err := p.rendererFor(o.Renderer)
	if err != nil {
		return err
	}
	if pr := p.prepared.take(o); pr != nil {
		// Rendered by the step as it planned the output: its records
		// come from there, not from the ledger.
		defer pr.close()
		r = pr.renderer(r)
	}
	partner := p.Partners[o.Partner]
	if partner == nil {
		return fmt.Errorf("output %s: no partner %s", o.Name, o.Partner)
	}
	schema := r.schema
	if schema == nil {
		var ok bool
		if schema, ok = native.Lookup(o.Type); !ok {
			return fmt.Errorf("output %s: unknown type %s", o.Name, o.Type)
		}
	}
	n, err := r.count(ctx, p, o)
	if err != nil {
		return err
	}
	name, err := native.ParseName(o.Name)
	if err != nil {
		return err
	}
	h := &native.Header{
		Format: schema.Name, Version: schema.Version, Sender: p.Name, Receiver: partner.Code,
		BusinessDate: name.Date, Sequence: name.Sequence, Created: p.now().Truncate(time.Second),
		Batch: fmt.Sprintf("%s-%d", p.Name, o.ID), InReplyTo: o.InReplyTo, Quantity: n,
	}
	if o.InReplySHA != "" {
		b, err := hex.DecodeString(o.InReplySHA)
		if err == nil && len(b) == 32 {
			copy(h.InReplyToSHA256[:], b)
		}
	}
	if schema.HasSecrets() && partner.Transport != nil {
		h.TransportKey = partner.Transport.WriteKeyID()
		h.KCV, _ = partner.Transport.KCV(h.TransportKey)
	}
	if r.header != nil {
		if err := r.header(ctx, p, o, h); err != nil {
			return err
		}
	}
	dir := filepath.Join(p.OutDir, partner.Name)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	final := filepath.Join(dir, o.Name)
	tmp := final + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	ok := false
	defer func() {
		if !ok {
			f.Close()
			os.Remove(tmp)
		}
	}()
	sum := sha256.New()
	cw := &countWriter{w: io.MultiWriter(f, sum)}
	var sink io.WriteCloser = nopCloser{cw}
	if !partner.PGPOff {
		to, err := p.recipients(partner)
		if err != nil {
			return err
		}
		sink, err = pgp.Encrypt(cw, to, p.Keys[0], pgp.EncryptOptions{
			Armor: partner.Armor, Compression: partner.Compression, FileName: pgp.PlaintextName(o.Name), Now: p.Now, Rand: p.Rand,
		})
		if err != nil {
			return err
		}
	}
	bw := bufio.NewWriterSize(sink, 64<<10)
	nw := native.NewWriter(bw, schema)
	if err := nw.WriteHeader(h, fieldNames(schema)); err != nil {
		return err
	}
	written := 0
	err = r.records(ctx, p, o, func(rec *native.Record) error {
		written++
		if written%progressEvery == 0 {
			p.progress("written "+o.Type, written)
		}
		return nw.Write(rec)
	})
	if err != nil {
		return err
	}
	if written != n {
		return fmt.Errorf("output %s: counted %d records, rendered %d", o.Name, n, written)
	}
	if err := nw.Flush(); err != nil {
		return err
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	failpoint.Hit(failpoint.MidRender)
	if err := sink.Close(); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, final); err != nil {
		return err
	}
	ok = true
	digest := hex.EncodeToString(sum.Sum(nil))
	if err := p.Ledger.SetOutputWritten(ctx, o.ID, final, digest, cw.n); err != nil {
		return err
	}
	o.State, o.Path, o.SHA256, o.Size = ledger.OutWritten, final, digest, cw.n
	failpoint.Hit(failpoint.AfterRender)
	p.log().Info("output written", "partner", partner.Name, "file", o.Name, "records", n, "size", cw.n, "sha256", digest)
	return nil
}

func (p *Party) maxValidity() time.Duration {
	var d time.Duration
	for _, pr := range p.Profiles {
		if pr.Validity > d {
			d = pr.Validity
		}
	}
	if d == 0 {
		d = 24 * time.Hour
	}
	return d
}

func fieldNames(s *native.Schema) []string {
	out := make([]string, len(s.Fields))
	for i, f := range s.Fields {
		out[i] = f.Name
	}
	return out
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(b []byte) (int, error) {
	n, err := c.w.Write(b)
	c.n += int64(n)
	return n, err
}

type nopCloser struct{ io.Writer }

func (nopCloser) Close() error { return nil }

// readAhead runs read, which hands its pages to the function it is given,
// on its own goroutine and gives the pages to use in order: the next page
// comes from the ledger while use works on the last. An error of either
// ends both.
func readAhead[T any](ctx context.Context, read func(ctx context.Context, page func(T) error) error, use func(ctx context.Context, page T) error) error {
	pages := make(chan T, 1)
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		defer close(pages)
		return read(gctx, func(p T) error {
			select {
			case pages <- p:
				return nil
			case <-gctx.Done():
				return gctx.Err()
			}
		})
	})
	g.Go(func() error {
		for p := range pages {
			if err := use(gctx, p); err != nil {
				return err
			}
		}
		return nil
	})
	return g.Wait()
}
