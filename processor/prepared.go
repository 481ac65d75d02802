package processor

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"resub/crypto/spill"
	"resub/formats/native"
	"resub/processor/ledger"
)

// A prepared output is one whose records a step rendered in the
// transaction that planned it, from what the step held, instead of the
// renderer reading back from the ledger what the step had just written
// (the ota-batch of an imsi-list: a million messages with their cards
// and keys). The records wait in a spill file until the output is
// rendered, right after the commit; the output itself is still planned in
// the transaction and rendered once, by the same code, with the same
// header, encryption and bookkeeping.
//
// The spill is sealed with AES-256-GCM under a key that exists only in
// this process's memory, and unlinked as soon as it is created: nothing
// of it is readable on disk, and nothing is left there when the process
// dies. A run that dies after the commit and before the render therefore
// leaves no spill, and its rerun renders the output from the ledger: the
// same records, which the tests check byte for byte.
//
// A prepared output lives only as long as the call that committed it
// (ProcessFile): what it did not render by then is dropped, and a later
// render reads the ledger as every other output does.
type prepared struct {
	outputID, batchID int64
	records           int
	// header fills the output's header fields of its type (optional).
	header func(p *Party, o *ledger.Output, h *native.Header) error

	sp     *spill.File
	closed bool
	rec    []byte // the record being encoded
	schema *native.Schema
}

// newPrepared creates the spill of output o in dir.
func newPrepared(dir string, o *ledger.Output, schema *native.Schema) (*prepared, error) {
	sp, err := spill.Create(dir, "prepared-*.spill")
	if err != nil {
		return nil, fmt.Errorf("prepared output: %w", err)
	}
	// Unlinked at once where the system allows it (the open file stays
	// usable): a crash leaves nothing behind.
	sp.Unlink()
	return &prepared{outputID: o.ID, batchID: o.BatchID, sp: sp, schema: schema}, nil
}

// write appends one record: each field's length, then its bytes.
func (pr *prepared) write(rec *native.Record) error {
	pr.rec = pr.rec[:0]
	for i := range pr.schema.Fields {
		v := rec.Value(i)
		pr.rec = binary.AppendUvarint(pr.rec, uint64(len(v)))
		pr.rec = append(pr.rec, v...)
	}
	_, err := pr.sp.Write(pr.rec)
	clear(pr.rec)
	if err != nil {
		return fmt.Errorf("prepared output: %w", err)
	}
	pr.records++
	return nil
}

// finish writes what is left; the spill is then read with replay.
func (pr *prepared) finish() error {
	if err := pr.sp.Finish(); err != nil {
		return fmt.Errorf("prepared output: %w", err)
	}
	return nil
}

// replay emits the records in the order they were written. It reads the
// spill once.
func (pr *prepared) replay(ctx context.Context, emit func(*native.Record) error) error {
	sr, err := pr.sp.Reader()
	if err != nil {
		return fmt.Errorf("prepared output: %w", err)
	}
	r := bufio.NewReaderSize(sr, 64<<10)
	rec := native.NewRecord(pr.schema)
	var field []byte
	defer func() { clear(field) }()
	for got := 0; ; got++ {
		if got%1024 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		if _, err := r.Peek(1); errors.Is(err, io.EOF) {
			if got != pr.records {
				return fmt.Errorf("prepared output: %d records read back, %d written", got, pr.records)
			}
			return nil
		} else if err != nil {
			return fmt.Errorf("prepared output: %w", err)
		}
		for _, f := range pr.schema.Fields {
			l, err := binary.ReadUvarint(r)
			if err == nil && l > spill.Chunk {
				err = errors.New("too long")
			}
			if err == nil {
				if uint64(cap(field)) < l {
					field = make([]byte, l)
				}
				field = field[:l]
				_, err = io.ReadFull(r, field)
			}
			if err != nil {
				return fmt.Errorf("prepared output: record %d, field %s: %w", got+1, f.Name, err)
			}
			rec.Set(f.Name, string(field))
		}
		if err := emit(rec); err != nil {
			return err
		}
	}
}

// close drops the spill.
func (pr *prepared) close() {
	if pr == nil || pr.closed {
		return
	}
	pr.closed = true
	pr.sp.Close()
}

// preparing says whether the work renders output o as it plans it: o was
// planned now (not rendered already, not an output of a dry run).
func (w *Work) preparing(o *ledger.Output) bool {
	return o != nil && o.State == ledger.OutPlanned && !w.DryRun
}

// prepare renders the records of output o (of schema) into a sealed spill
// while the work's transaction is open, from what the step holds
// (records emits them in the output's order, as its renderer would from
// the ledger); the spill is written as the output once the work commits.
// It returns the preparation (the work's: the caller may set its header).
func (w *Work) prepare(ctx context.Context, o *ledger.Output, schema *native.Schema, records func(ctx context.Context, emit func(*native.Record) error) error) (*prepared, error) {
	t0 := time.Now()
	pr, err := newPrepared(w.P.ScratchDir, o, schema)
	if err != nil {
		return nil, err
	}
	err = records(ctx, pr.write)
	if err == nil {
		err = pr.finish()
	}
	if err != nil {
		pr.close()
		return nil, fmt.Errorf("%s %s: %w", o.Type, o.Name, err)
	}
	w.prepared = append(w.prepared, pr)
	w.P.log().Debug(o.Type+" prepared", "file", o.Name, "records", pr.records, "seconds", time.Since(t0).Seconds())
	return pr, nil
}

// renderer is the renderer of the prepared output: r's schema, with its
// count, header and records from the preparation.
func (pr *prepared) renderer(r *renderer) *renderer {
	return &renderer{
		schema: r.schema,
		count:  func(context.Context, *Party, *ledger.Output) (int, error) { return pr.records, nil },
		header: func(_ context.Context, p *Party, o *ledger.Output, h *native.Header) error {
			if pr.header == nil {
				return nil
			}
			return pr.header(p, o, h)
		},
		records: func(ctx context.Context, _ *Party, _ *ledger.Output, emit func(*native.Record) error) error {
			return pr.replay(ctx, emit)
		},
	}
}

// preparedOutputs are a party's prepared outputs by output ID: only those
// of work that committed, until rendered or dropped.
type preparedOutputs struct {
	mu sync.Mutex
	m  map[int64]*prepared
}

// adopt takes the prepared outputs of work that committed.
func (ps *preparedOutputs) adopt(list []*prepared) {
	if len(list) == 0 {
		return
	}
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if ps.m == nil {
		ps.m = map[int64]*prepared{}
	}
	for _, pr := range list {
		if old := ps.m[pr.outputID]; old != nil {
			old.close()
		}
		ps.m[pr.outputID] = pr
	}
}

// take hands out the prepared records of output o (nil when there are
// none); the caller closes them.
func (ps *preparedOutputs) take(o *ledger.Output) *prepared {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	pr := ps.m[o.ID]
	if pr == nil {
		return nil
	}
	delete(ps.m, o.ID)
	if pr.batchID != o.BatchID {
		pr.close()
		return nil
	}
	return pr
}

// drop closes the prepared outputs of list not rendered.
func (ps *preparedOutputs) drop(list []*prepared) {
	if len(list) == 0 {
		return
	}
	ps.mu.Lock()
	defer ps.mu.Unlock()
	for _, pr := range list {
		if ps.m[pr.outputID] == pr {
			delete(ps.m, pr.outputID)
		}
		pr.close()
	}
}
