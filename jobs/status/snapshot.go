package status

import (
	"context"
	"sync"
	"time"
)

// The overview's aggregates read every card and message once (from narrow
// indexes, but still a million entries each at fleet scale). However many
// people watch, they are computed at most once per freshness window and
// shared: a request gets the latest snapshot at once, and a stale one
// starts the next computation in the background (the page says how old
// its figures are). Only the very first request waits.

// minFresh is the shortest time a snapshot is served as current;
// freshFactor stretches it for ledgers whose aggregates take long, so
// that the page never keeps a core busy.
const (
	minFresh    = 2 * time.Second
	freshFactor = 5
	// computeTimeout bounds one computation of the aggregates.
	computeTimeout = 2 * time.Minute
)

type snapshotCache struct {
	mu      sync.Mutex
	ov      *Overview
	at      time.Time     // when the snapshot was taken
	took    time.Duration // how long it took
	running chan struct{} // closed when the computation in flight ends
	err     error         // the last computation's error, if it failed
}

// overviewSnapshot returns the current snapshot, computing it if there is
// none yet and starting a new one in the background when it is stale.
func (s *Server) overviewSnapshot(ctx context.Context) (*Overview, error) {
	c := &s.snap
	c.mu.Lock()
	if c.ov != nil {
		ov := c.ov
		if time.Since(c.at) > max(minFresh, freshFactor*c.took) {
			s.refreshLocked()
		}
		c.mu.Unlock()
		return ov, nil
	}
	wait := s.refreshLocked()
	c.mu.Unlock()
	select {
	case <-wait:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ov == nil {
		return nil, c.err
	}
	return c.ov, nil
}

// refreshLocked starts a computation unless one is in flight, and returns
// the channel closed when it ends. Called with s.snap.mu held.
func (s *Server) refreshLocked() chan struct{} {
	c := &s.snap
	if c.running != nil {
		return c.running
	}
	done := make(chan struct{})
	c.running = done
	s.bg.Add(1)
	go func() {
		defer s.bg.Done()
		defer close(done)
		ctx, cancel := context.WithTimeout(s.life, computeTimeout)
		defer cancel()
		start := time.Now()
		ov, err := s.computeOverview(ctx)
		took := time.Since(start)
		c.mu.Lock()
		defer c.mu.Unlock()
		c.running = nil
		if err != nil {
			c.err = err
			s.o.Log.Error("status page: overview", "error", err)
			return
		}
		ov.TookMillis = took.Milliseconds()
		c.ov, c.at, c.took, c.err = ov, start, took, nil
		s.o.Log.Debug("status page: overview computed", "took", took)
	}()
	return done
}
