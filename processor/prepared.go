package processor

import (
	"bufio"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

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

	f      *os.File
	path   string // "" once unlinked
	closed bool
	aead   cipher.AEAD
	w      *bufio.Writer
	chunk  []byte // plaintext of the chunk being written
	sealed []byte
	nonce  [12]byte
	seq    uint64
	schema *native.Schema
}

// spillChunk is how much plaintext one sealed chunk of a spill carries.
const spillChunk = 64 << 10

// newPrepared creates the spill of output o in dir.
func newPrepared(dir string, o *ledger.Output, schema *native.Schema) (*prepared, error) {
	key := make([]byte, 32)
	defer clear(key)
	if _, err := rand.Read(key); err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	if dir == "" {
		dir = os.TempDir()
	}
	f, err := os.CreateTemp(dir, "prepared-*.spill")
	if err != nil {
		return nil, fmt.Errorf("prepared output: %w", err)
	}
	pr := &prepared{outputID: o.ID, batchID: o.BatchID, f: f, path: f.Name(), aead: aead, schema: schema,
		w: bufio.NewWriterSize(f, spillChunk+aead.Overhead()+4)}
	// Unlinked at once where the system allows it (the open file stays
	// usable): a crash leaves nothing behind.
	if os.Remove(f.Name()) == nil {
		pr.path = ""
	}
	return pr, nil
}

// write appends one record.
func (pr *prepared) write(rec *native.Record) error {
	n := len(pr.schema.Fields)
	size := 0
	for i := range n {
		size += binary.MaxVarintLen32 + len(rec.Value(i))
	}
	if len(pr.chunk) > 0 && len(pr.chunk)+size > spillChunk {
		if err := pr.seal(); err != nil {
			return err
		}
	}
	for i := range n {
		v := rec.Value(i)
		pr.chunk = binary.AppendUvarint(pr.chunk, uint64(len(v)))
		pr.chunk = append(pr.chunk, v...)
	}
	pr.records++
	return nil
}

// seal writes the chunk so far, sealed: its length, then the sealed text.
func (pr *prepared) seal() error {
	binary.BigEndian.PutUint64(pr.nonce[4:], pr.seq)
	pr.seq++
	pr.sealed = pr.aead.Seal(pr.sealed[:0], pr.nonce[:], pr.chunk, nil)
	clear(pr.chunk)
	pr.chunk = pr.chunk[:0]
	var n [4]byte
	binary.BigEndian.PutUint32(n[:], uint32(len(pr.sealed)))
	if _, err := pr.w.Write(n[:]); err != nil {
		return fmt.Errorf("prepared output: %w", err)
	}
	if _, err := pr.w.Write(pr.sealed); err != nil {
		return fmt.Errorf("prepared output: %w", err)
	}
	return nil
}

// finish writes what is left; the spill is then read with replay.
func (pr *prepared) finish() error {
	if len(pr.chunk) > 0 {
		if err := pr.seal(); err != nil {
			return err
		}
	}
	if err := pr.w.Flush(); err != nil {
		return fmt.Errorf("prepared output: %w", err)
	}
	return nil
}

// replay emits the records in the order they were written. It reads the
// spill once.
func (pr *prepared) replay(ctx context.Context, emit func(*native.Record) error) error {
	if _, err := pr.f.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("prepared output: %w", err)
	}
	r := bufio.NewReaderSize(pr.f, spillChunk+pr.aead.Overhead()+4)
	rec := native.NewRecord(pr.schema)
	var plain, sealed []byte
	var nonce [12]byte
	got := 0
	for seq := uint64(0); ; seq++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		var n [4]byte
		if _, err := io.ReadFull(r, n[:]); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return fmt.Errorf("prepared output: %w", err)
		}
		size := int(binary.BigEndian.Uint32(n[:]))
		if size > spillChunk*2+pr.aead.Overhead() {
			return fmt.Errorf("prepared output: chunk %d of %d bytes", seq, size)
		}
		if cap(sealed) < size {
			sealed = make([]byte, size)
		}
		sealed = sealed[:size]
		if _, err := io.ReadFull(r, sealed); err != nil {
			return fmt.Errorf("prepared output: %w", err)
		}
		binary.BigEndian.PutUint64(nonce[4:], seq)
		var err error
		plain, err = pr.aead.Open(plain[:0], nonce[:], sealed, nil)
		if err != nil {
			return fmt.Errorf("prepared output: chunk %d: %w", seq, err)
		}
		for b := plain; len(b) > 0; {
			for i, f := range pr.schema.Fields {
				l, k := binary.Uvarint(b)
				if k <= 0 || uint64(len(b)-k) < l {
					return fmt.Errorf("prepared output: chunk %d: record %d, field %s cut short", seq, got+1, f.Name)
				}
				b = b[k:]
				rec.Set(pr.schema.Fields[i].Name, string(b[:l]))
				b = b[l:]
			}
			got++
			if err := emit(rec); err != nil {
				return err
			}
		}
		clear(plain)
	}
	if got != pr.records {
		return fmt.Errorf("prepared output: %d records read back, %d written", got, pr.records)
	}
	return nil
}

// close drops the spill.
func (pr *prepared) close() {
	if pr == nil || pr.closed {
		return
	}
	pr.closed = true
	clear(pr.chunk)
	pr.f.Close()
	if pr.path != "" {
		os.Remove(pr.path)
	}
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
