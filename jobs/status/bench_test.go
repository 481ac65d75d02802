package status

import (
	"flag"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

var benchCards = flag.Int("status.cards", 1_000_000, "cards in the benchmarks' ledger")

// BenchmarkPages answers every page and API of the status site on a ledger
// of -status.cards cards (a million by default, built once per run in a
// temporary folder). It also times one computation of the overview's
// figures, which the pages share as a snapshot, and logs the chart's first
// read of the whole card history.
func BenchmarkPages(b *testing.B) {
	start := time.Now()
	db := syntheticLedger(b, b.TempDir(), *benchCards)
	b.Logf("ledger of %d cards built in %v", *benchCards, time.Since(start).Round(time.Millisecond))
	s, err := New(Options{Config: testConfig(), Ledger: db, Now: func() time.Time { return fleetStart.Add(72 * time.Hour) }})
	if err != nil {
		b.Fatal(err)
	}
	start = time.Now()
	if _, err := s.chart.series(b.Context(), db); err != nil {
		b.Fatal(err)
	}
	b.Logf("chart's first read of the card history: %v", time.Since(start).Round(time.Millisecond))

	b.Run("overview-aggregates", func(b *testing.B) {
		for b.Loop() {
			if _, err := s.overview(b.Context()); err != nil {
				b.Fatal(err)
			}
		}
	})
	// The pages serve the latest snapshot: take the first one.
	if _, err := s.overviewSnapshot(b.Context()); err != nil {
		b.Fatal(err)
	}
	h := s.Handler()
	for _, p := range []string{"/", "/api/overview", "/chart.svg", "/batches", "/batches/50", "/api/batches/50",
		"/cards?state=unknown", "/cards?state=released&after=8999901000000600000", "/cards/8999901000000500042", "/api/cards/8999901000000500042"} {
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
