package status

import (
	"flag"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
)

var benchCards = flag.Int("status.cards", 1_000_000, "cards in the benchmarks' ledger")

// benchLedger is built once per test binary: a million cards take a while.
var benchLedger struct {
	once sync.Once
	srv  *Server
	dir  string
	err  string
}

// BenchmarkPages answers every page and API of the status site on a ledger
// of -status.cards cards (a million by default). The chart's first request
// reads the whole card history; it is timed once, separately.
func BenchmarkPages(b *testing.B) {
	benchLedger.once.Do(func() {
		dir, err := os.MkdirTemp("", "resub-status-bench")
		if err != nil {
			benchLedger.err = err.Error()
			return
		}
		benchLedger.dir = dir
		start := time.Now()
		tb := &onceTB{TB: b}
		db := syntheticLedger(tb, dir, *benchCards)
		b.Logf("ledger of %d cards built in %v", *benchCards, time.Since(start).Round(time.Millisecond))
		s, err := New(Options{Config: testConfig(), Ledger: db, Now: func() time.Time { return fleetStart.Add(72 * time.Hour) }})
		if err != nil {
			benchLedger.err = err.Error()
			return
		}
		benchLedger.srv = s
		start = time.Now()
		if _, err := s.chart.series(b.Context(), db); err != nil {
			benchLedger.err = err.Error()
			return
		}
		b.Logf("chart's first read of the card history: %v", time.Since(start).Round(time.Millisecond))
	})
	if benchLedger.err != "" {
		b.Fatal(benchLedger.err)
	}
	// What every snapshot of the overview costs (the pages serve the
	// latest snapshot; see snapshot.go).
	b.Run("overview-aggregates", func(b *testing.B) {
		for b.Loop() {
			if _, err := benchLedger.srv.overview(b.Context()); err != nil {
				b.Fatal(err)
			}
		}
	})
	// The pages serve the latest snapshot: take the first one.
	if _, err := benchLedger.srv.overviewSnapshot(b.Context()); err != nil {
		b.Fatal(err)
	}
	h := benchLedger.srv.Handler()
	mid := "/cards/" + "89999010" + "00000500042"
	for _, p := range []string{"/", "/api/overview", "/chart.svg", "/batches", "/batches/50", "/api/batches/50",
		"/cards?state=unknown", "/cards?state=released&after=8999901000000600000", mid, "/api/cards/8999901000000500042"} {
		b.Run(strings.NewReplacer("/", "_", "?", "_", "&", "_", "=", "-").Replace(p), func(b *testing.B) {
			for b.Loop() {
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, p, nil))
				if rec.Code != http.StatusOK || strings.Contains(rec.Body.String(), "being read") {
					b.Fatalf("%s: %d %s", p, rec.Code, rec.Body.String())
				}
				_, _ = io.Copy(io.Discard, rec.Body)
			}
		})
	}
}

// onceTB lets the shared ledger outlive the sub-benchmark that built it:
// its cleanups are never run (the folder is temporary).
type onceTB struct{ testing.TB }

func (onceTB) Cleanup(func()) {}
