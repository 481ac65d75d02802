package processor

import (
	"context"
	"runtime"
	"sync"
)

// orderedPipe does per-item work (unwrapping and sealing secrets) on the
// other cores while the caller goes on reading a file, and hands the items
// back to the caller, in the order they were added, as their batches come
// back. At most pipeInFlight batches are out at a time, so memory stays
// bounded whatever the number of items.
type orderedPipe[T any] struct {
	ctx     context.Context
	work    func(*T) error // on a worker; an error fails the work
	emit    func(*T) error // on the caller, in order
	discard func(*T)       // for an item never emitted (its secrets wiped)
	jobs    chan *pipeBatch[T]
	queue   []*pipeBatch[T] // submitted, in order
	cur     *pipeBatch[T]
	wg      sync.WaitGroup
	stopped bool
}

type pipeBatch[T any] struct {
	items []T
	err   error
	done  chan struct{}
}

const (
	pipeBatchSize = 64 // items a worker takes at once
	pipeInFlight  = 16 // batches submitted and not yet emitted
)

func newOrderedPipe[T any](ctx context.Context, work, emit func(*T) error, discard func(*T)) *orderedPipe[T] {
	workers := min(max(runtime.GOMAXPROCS(0)-1, 1), 4)
	op := &orderedPipe[T]{ctx: ctx, work: work, emit: emit, discard: discard, jobs: make(chan *pipeBatch[T], workers)}
	op.wg.Add(workers)
	for range workers {
		go func() {
			defer op.wg.Done()
			for b := range op.jobs {
				for i := range b.items {
					if b.err = op.work(&b.items[i]); b.err != nil {
						break
					}
				}
				close(b.done)
			}
		}()
	}
	return op
}

// add queues an item, submitting the batch when it is full.
func (op *orderedPipe[T]) add(it T) error {
	if op.cur == nil {
		op.cur = &pipeBatch[T]{items: make([]T, 0, pipeBatchSize), done: make(chan struct{})}
	}
	op.cur.items = append(op.cur.items, it)
	if len(op.cur.items) < pipeBatchSize {
		return nil
	}
	return op.submit()
}

// submit hands the current batch to the workers, then emits the batches
// that are back (waiting for the oldest when too many are out).
func (op *orderedPipe[T]) submit() error {
	b := op.cur
	op.cur = nil
	if b == nil || len(b.items) == 0 {
		return nil
	}
	select {
	case op.jobs <- b:
	case <-op.ctx.Done():
		return op.ctx.Err()
	}
	op.queue = append(op.queue, b)
	for len(op.queue) > 0 {
		if len(op.queue) <= pipeInFlight {
			select {
			case <-op.queue[0].done:
			default:
				return nil
			}
		}
		if err := op.emitHead(); err != nil {
			return err
		}
	}
	return nil
}

// emitHead waits for the oldest batch and emits its items.
func (op *orderedPipe[T]) emitHead() error {
	head := op.queue[0]
	select {
	case <-head.done:
	case <-op.ctx.Done():
		return op.ctx.Err()
	}
	op.queue[0] = nil
	op.queue = op.queue[1:]
	if head.err != nil {
		op.discardAll(head)
		return head.err
	}
	for i := range head.items {
		if err := op.emit(&head.items[i]); err != nil {
			return err
		}
	}
	return nil
}

// sync emits every item added so far; the workers go on.
func (op *orderedPipe[T]) sync() error {
	if err := op.submit(); err != nil {
		return err
	}
	for len(op.queue) > 0 {
		if err := op.emitHead(); err != nil {
			return err
		}
	}
	return nil
}

// finish emits every item added and ends the workers.
func (op *orderedPipe[T]) finish() error {
	if err := op.sync(); err != nil {
		return err
	}
	op.stop()
	return nil
}

// stop ends the workers (they finish the batches they were given) and
// discards the items not emitted. It is safe to call more than once.
func (op *orderedPipe[T]) stop() {
	if op.stopped {
		return
	}
	op.stopped = true
	close(op.jobs)
	op.wg.Wait()
	for _, b := range op.queue {
		op.discardAll(b)
	}
	op.queue = nil
	if op.cur != nil {
		op.discardAll(op.cur)
		op.cur = nil
	}
}

func (op *orderedPipe[T]) discardAll(b *pipeBatch[T]) {
	if op.discard == nil {
		return
	}
	for i := range b.items {
		op.discard(&b.items[i])
	}
}
