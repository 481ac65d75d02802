package main

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"strings"

	"resub/processor/ledger/postgres"
	"resub/samples/bench"
)

func init() {
	register(&command{name: "bench", summary: "the A nightly step and the B handover intake on N synthetic cards, timed stage by stage against the engine floor", run: runBench})
}

// benchLine is the JSON form of a stage (one object a line with --json).
type benchLine struct {
	Stage        string  `json:"stage"`
	Records      int     `json:"records"`
	Seconds      float64 `json:"seconds"`
	RecordsPerS  float64 `json:"records_per_s"`
	PeakRSSBytes int64   `json:"peak_rss_bytes"`
	// FloorSeconds is the engine floor for the same records on the same
	// engine; XFloor the stage's seconds as a multiple of it.
	FloorSeconds float64 `json:"floor_seconds"`
	XFloor       float64 `json:"x_floor"`
}

func runBench(e *env, args []string) error {
	fs := e.newFlags("bench", "bench --records N [--ledger URL [--ledger-password REF]] [--keep DIR] [--profile DIR] [--json]")
	n := fs.Int("records", 0, "fleet size: cards in the files and ledgers (required)")
	keep := fs.String("keep", "", "run in DIR and keep every file there (default: a temporary folder, removed)")
	pgURL := fs.String("ledger", "", "put both parties' ledgers on this PostgreSQL server (postgres://USER@HOST:PORT/DB?sslmode=…; a schema each, dropped at the end); default SQLite files")
	pgPass := fs.String("ledger-password", "", "the PostgreSQL password by reference (env:NAME or file:PATH); default PGPASSFILE / ~/.pgpass")
	profile := fs.String("profile", "", "write a CPU profile of each stage to DIR/STAGE.pprof (the folder is made if missing)")
	asJSON := fs.Bool("json", false, "one JSON object per stage: stage, records, seconds, records_per_s, peak_rss_bytes, floor_seconds, x_floor")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return usagef("bench: unexpected argument %q", fs.Arg(0))
	}
	if *n <= 0 {
		return usagef("bench: --records N is required and must be positive")
	}
	if *pgURL != "" {
		if err := postgres.CheckURL(*pgURL); err != nil {
			return usagef("bench: --ledger: %v", err)
		}
	}
	if *pgPass != "" && !strings.HasPrefix(*pgPass, "env:") && !strings.HasPrefix(*pgPass, "file:") {
		return usagef("bench: --ledger-password takes a reference (env:NAME or file:PATH), never the password")
	}
	if *profile != "" {
		if err := os.MkdirAll(*profile, 0o700); err != nil {
			return fmt.Errorf("bench: --profile: %w", err)
		}
	}
	enc := json.NewEncoder(e.io.out)
	var werr error
	floor := func(f bench.Floor) {
		if *asJSON {
			return
		}
		fmt.Fprintf(e.io.out, "engine floor for %d records: %.3f s (insert into a staging table %.3f s, one UPDATE joined to it %.3f s, read joined rows back %.3f s)\n",
			*n, f.Total().Seconds(), f.Insert.Seconds(), f.Update.Seconds(), f.Read.Seconds())
		fmt.Fprintf(e.io.out, "%-17s %10s %9s %9s %12s %9s %8s\n", "stage", "records", "seconds", "cpu s", "records/s", "peak RSS", "x floor")
	}
	_, err := bench.Run(e.ctx, bench.Options{Records: *n, Dir: *keep, Log: e.log, Ledger: bench.LedgerOptions{URL: *pgURL, Password: *pgPass}, Floor: floor, Profile: *profile, Stage: func(s bench.Stage) {
		l := benchLine{Stage: s.Name, Records: s.Records, Seconds: round(s.Elapsed.Seconds(), 3), RecordsPerS: round(s.RecordsPerSecond(), 0), PeakRSSBytes: s.PeakRSS,
			FloorSeconds: round(s.Floor.Seconds(), 6), XFloor: round(s.XFloor(), 2)}
		if *asJSON {
			if err := enc.Encode(l); err != nil && werr == nil {
				werr = err
			}
			return
		}
		fmt.Fprintf(e.io.out, "%-17s %10d %9.3f %9.3f %12.0f %6d MB %8.2f\n", l.Stage, l.Records, l.Seconds, s.CPU.Seconds(), l.RecordsPerS, l.PeakRSSBytes>>20, l.XFloor)
	}})
	if err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	if *keep != "" && !*asJSON {
		fmt.Fprintf(e.io.out, "files kept in %s\n", *keep)
	}
	return werr
}

func round(v float64, digits int) float64 {
	p := math.Pow(10, float64(digits))
	return math.Round(v*p) / p
}
