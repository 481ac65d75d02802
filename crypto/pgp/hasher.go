package pgp

import "sync"

// asyncHasher hashes on its own goroutine, so that pass 1's SHA-256 of the
// ciphertext runs beside the decryption on a second core. Its owner must
// call stop (Sum does) before dropping it; stop is idempotent.
type asyncHasher struct {
	h    summer
	ch   chan []byte
	free chan []byte
	done chan struct{}
	once sync.Once
}

const (
	asyncBufs    = 4
	asyncBufSize = 64 << 10
)

// summer is the part of hash.Hash the asyncHasher needs.
type summer interface {
	Write([]byte) (int, error)
	Sum([]byte) []byte
}

func newAsyncHasher(h summer) *asyncHasher {
	a := &asyncHasher{h: h, ch: make(chan []byte, asyncBufs), free: make(chan []byte, asyncBufs), done: make(chan struct{})}
	for range asyncBufs {
		a.free <- make([]byte, asyncBufSize)
	}
	go func() {
		defer close(a.done)
		for b := range a.ch {
			a.h.Write(b)
			a.free <- b[:cap(b)]
		}
	}()
	return a
}

// Write queues a copy of p; it never fails.
func (a *asyncHasher) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		b := <-a.free
		k := copy(b, p)
		a.ch <- b[:k]
		p = p[k:]
	}
	return n, nil
}

func (a *asyncHasher) stop() {
	a.once.Do(func() { close(a.ch) })
	<-a.done
}

// Sum waits for the queued data and appends the hash to b.
func (a *asyncHasher) Sum(b []byte) []byte {
	a.stop()
	return a.h.Sum(b)
}
