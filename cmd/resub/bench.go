package main

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"strconv"
	"strings"
	"time"

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
	// With --statements: every kind of ledger statement the stage ran,
	// the longest first, then the wall time outside them ("outside
	// statements"). The text form names the topStatements longest and
	// sums the rest as "other statements (N kinds)".
	Statements []benchStatement `json:"statements,omitempty"`
}

// benchStatement is one line of a stage's statements (--statements).
type benchStatement struct {
	// Statement is the statement's text as ledger.StatementKey writes it
	// (with --json in full, in the text form cut to a line), or "other
	// statements (N kinds)" or "outside statements".
	Statement string `json:"statement"`
	Calls     int    `json:"calls"`
	// Seconds to the microsecond (the text form shows milliseconds).
	Seconds float64 `json:"seconds"`
	// Share is Seconds as a fraction of the stage's wall time.
	Share  float64 `json:"share"`
	XFloor float64 `json:"x_floor"`
	// Rows is how many rows the statements wrote, as the driver said;
	// -1 when it did not (queries).
	Rows int64 `json:"rows"`
}

// topStatements is how many kinds of statement a stage lists by name.
const topStatements = 8

// Names of the two summary lines of a stage's statements.
const (
	otherStatements   = "other statements"
	outsideStatements = "outside statements"
)

// statementLines are a stage's statement lines: the top longest kinds
// (every kind when top is 0), the rest together, and the wall time
// outside every statement: the stage less the time during which at least
// one statement ran (statements side by side, such as page reads on
// their own connections or a transaction waiting for another's write
// lock, count once there).
func statementLines(s bench.Stage, top int) []benchStatement {
	wall := s.Elapsed.Seconds()
	line := func(name string, calls int, d time.Duration, rows int64) benchStatement {
		l := benchStatement{Statement: name, Calls: calls, Seconds: round(d.Seconds(), 6), Rows: rows}
		if wall > 0 {
			l.Share = round(d.Seconds()/wall, 4)
		}
		if s.Floor > 0 {
			l.XFloor = round(d.Seconds()/s.Floor.Seconds(), 2)
		}
		return l
	}
	var out []benchStatement
	var other time.Duration
	var otherCalls, kinds int
	otherRows := int64(-1)
	for i, st := range s.Statements {
		if top == 0 || i < top {
			out = append(out, line(st.Key, st.Calls, st.Elapsed, st.Rows))
			continue
		}
		kinds++
		other += st.Elapsed
		otherCalls += st.Calls
		if st.Rows >= 0 {
			otherRows = max(otherRows, 0) + st.Rows
		}
	}
	if kinds > 0 {
		out = append(out, line(fmt.Sprintf("%s (%d kinds)", otherStatements, kinds), otherCalls, other, otherRows))
	}
	outside := max(0, s.Elapsed-s.StatementsCovered)
	return append(out, line(outsideStatements, 0, outside, -1))
}

func runBench(e *env, args []string) error {
	fs := e.newFlags("bench", "bench --records N [--ledger URL [--ledger-password REF]] [--keep DIR] [--profile DIR] [--statements] [--json]")
	n := fs.Int("records", 0, "fleet size: cards in the files and ledgers (required)")
	keep := fs.String("keep", "", "run in DIR and keep every file there (default: a temporary folder, removed)")
	pgURL := fs.String("ledger", "", "put both parties' ledgers on this PostgreSQL server (postgres://USER@HOST:PORT/DB?sslmode=…; a schema each, dropped at the end); default SQLite files")
	pgPass := fs.String("ledger-password", "", "the PostgreSQL password by reference (env:NAME or file:PATH); default PGPASSFILE / ~/.pgpass")
	profile := fs.String("profile", "", "write a CPU profile of each stage to DIR/STAGE.pprof (the folder is made if missing)")
	asJSON := fs.Bool("json", false, "one JSON object per stage: stage, records, seconds, records_per_s, peak_rss_bytes, floor_seconds, x_floor (and statements with --statements)")
	stmts := fs.Bool("statements", false, "after each stage, the ledger statements that took most of its time: calls, seconds, share of the stage, x floor; then the other statements and the time outside them (with --json: every kind of statement)")
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
		if *stmts {
			fmt.Fprintf(e.io.out, "  %15s %9s %9s %8s  %s\n", "calls", "seconds", "share", "x floor", "statement (the stage's longest, grouped; a query timed to its return, not through its rows)")
		}
	}
	_, err := bench.Run(e.ctx, bench.Options{Records: *n, Dir: *keep, Log: e.log, Ledger: bench.LedgerOptions{URL: *pgURL, Password: *pgPass}, Floor: floor, Profile: *profile, Statements: *stmts, Stage: func(s bench.Stage) {
		l := benchLine{Stage: s.Name, Records: s.Records, Seconds: round(s.Elapsed.Seconds(), 3), RecordsPerS: round(s.RecordsPerSecond(), 0), PeakRSSBytes: s.PeakRSS,
			FloorSeconds: round(s.Floor.Seconds(), 6), XFloor: round(s.XFloor(), 2)}
		if *stmts && *asJSON {
			l.Statements = statementLines(s, 0)
		} else if *stmts {
			l.Statements = statementLines(s, topStatements)
		}
		if *asJSON {
			if err := enc.Encode(l); err != nil && werr == nil {
				werr = err
			}
			return
		}
		fmt.Fprintf(e.io.out, "%-17s %10d %9.3f %9.3f %12.0f %6d MB %8.2f\n", l.Stage, l.Records, l.Seconds, s.CPU.Seconds(), l.RecordsPerS, l.PeakRSSBytes>>20, l.XFloor)
		for _, st := range l.Statements {
			calls := ""
			if st.Calls > 0 {
				calls = strconv.Itoa(st.Calls)
			}
			fmt.Fprintf(e.io.out, "  %15s %9.3f %8.1f%% %8.2f  %s\n", calls, st.Seconds, 100*st.Share, st.XFloor, cutText(st.Statement, statementWidth))
		}
	}})
	if err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	if *keep != "" && !*asJSON {
		fmt.Fprintf(e.io.out, "files kept in %s\n", *keep)
	}
	return werr
}

// statementWidth is how much of a statement's text a line of the text
// form shows.
const statementWidth = 110

// cutText shortens s to n characters, marking the cut with "…".
func cutText(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

func round(v float64, digits int) float64 {
	p := math.Pow(10, float64(digits))
	return math.Round(v*p) / p
}
