// Package bench measures resub at fleet scale: it makes a synthetic fleet
// of N cards and the files about it, then runs the production jobs of MNO
// A and MNO B (jobs.Runtime from generated configurations, local-folder
// drops, SQLite ledgers) stage by stage, timing each and reading the
// process's peak resident memory. It is what `resub bench` runs and what
// the stage benchmarks drive. Test-only material: every key is made fresh
// and thrown away.
//
// Before the stages it measures the engine floor (Floor): the bare
// statements no set-based step can avoid for the same N on the same
// engine, against which each stage's time is given as a multiple. With
// Options.Statements each stage also tells the time of every kind of
// statement both parties' ledgers ran in it (Stage.Statements, from the
// ledger's statement observer), so that where a stage stands against the
// floor can be read statement by statement.
//
// Stages, in order:
//
//	generate          the vendor output file, MSISDN map, switch authorisation and switch request (N records each)
//	import            A's inventory, MSISDN-map and authorisation jobs
//	b-switch-request  B allocates N IMSIs and sends the encrypted, signed imsi-list
//	a-imsi-list       A's nightly step: pickup, verify, check, N secured OTA packets, ota-batch + imsi-result
//	a-ota-report      A's ota-report job on the SMSC's report of N verified PoRs: every card confirmed, imsi-result
//	a-handover        A's handover sweep over the N confirmed cards
//	b-handover        B's handover intake: keys sealed, provisioning + handover-ack
//
// Between a-imsi-list and a-ota-report the benchmark plays the SMSC and
// the cards (World.SMSCReport, not timed): each message of A's ota-batch
// goes to its card's simulated UICC, made when its message comes, and the
// report of their PoRs is streamed to A's inbox.
package bench

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"time"
)

// Options tune a benchmark run.
type Options struct {
	// Records is the fleet size N.
	Records int
	// Dir receives every file and is kept; empty means a temporary folder
	// removed at the end.
	Dir string
	// Log receives the parties' logs (discarded when nil).
	Log *slog.Logger
	// Stage is called after each stage (and once for the total).
	Stage func(Stage)
	// Ledger puts the parties' ledgers on PostgreSQL (a schema each, dropped
	// at the end); the zero value keeps SQLite files.
	Ledger LedgerOptions
	// Floor, when set, is called with the engine floor (see Floor),
	// measured before the first stage.
	Floor func(Floor)
	// Profile, when set, is a folder that receives a CPU profile of each
	// stage (STAGE.pprof, for go tool pprof).
	Profile string
	// Statements has each stage tell the time of every kind of ledger
	// statement its jobs ran (Stage.Statements).
	Statements bool
}

// Stage is one measured stage.
type Stage struct {
	Name    string
	Records int
	Elapsed time.Duration
	// CPU is the processor time (user and system, every thread) the
	// process spent in the stage: on a shared machine it says more than
	// Elapsed about the stage's own cost.
	CPU time.Duration
	// PeakRSS is the highest resident set size of the process during the
	// stage, in bytes (see PeakRSS for how it is measured); 0 when the
	// system does not say.
	PeakRSS int64
	// Floor is the engine floor for the same number of records on the
	// same engine (see Floor); 0 when not measured.
	Floor time.Duration
	// Statements are the ledger statements the stage ran (both parties'),
	// grouped by ledger.StatementKey, the longest first; the total's are
	// every stage's together. Nil unless Options.Statements.
	Statements []StatementTime
	// StatementsCovered is the wall time during which at least one of
	// those statements ran (the total's: every stage's together).
	StatementsCovered time.Duration
}

// XFloor is the stage's time as a multiple of the engine floor (0 when
// the floor is not known).
func (s Stage) XFloor() float64 {
	if s.Floor <= 0 {
		return 0
	}
	return s.Elapsed.Seconds() / s.Floor.Seconds()
}

// RecordsPerSecond is the stage's throughput.
func (s Stage) RecordsPerSecond() float64 {
	if s.Elapsed <= 0 {
		return 0
	}
	return float64(s.Records) / s.Elapsed.Seconds()
}

// Names of the stages, in order.
var Names = []string{"generate", "import", "b-switch-request", "a-imsi-list", "a-ota-report", "a-handover", "b-handover"}

// Run measures the engine floor, then runs every stage on a fleet of
// o.Records cards and returns the measured stages followed by the total.
func Run(ctx context.Context, o Options) ([]Stage, error) {
	dir := o.Dir
	if dir == "" {
		d, err := os.MkdirTemp("", "resub-bench-")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(d)
		dir = d
	} else if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	var stmts *tally
	lo := o.Ledger
	if o.Statements {
		stmts = newTally()
		lo.Observe = stmts.observe
	}
	w, err := NewWorldOn(ctx, dir, o.Records, o.Log, lo)
	if err != nil {
		return nil, err
	}
	defer w.Close()
	floor, err := w.measureFloor(ctx, o.Records)
	if err != nil {
		return nil, err
	}
	if o.Floor != nil {
		o.Floor(floor)
	}
	steps := []struct {
		name string
		fn   func(context.Context) error
	}{
		{"generate", w.Generate},
		{"import", w.Import},
		{"b-switch-request", w.SwitchRequest},
		{"a-imsi-list", w.IMSIList},
		{"", w.SMSCReport},
		{"a-ota-report", w.OTAReport},
		{"a-handover", w.Handover},
		{"b-handover", w.HandoverIntake},
	}
	var stages []Stage
	total := Stage{Name: "total", Records: o.Records, Floor: floor.Total()}
	for _, s := range steps {
		if s.name == "" {
			if err := s.fn(ctx); err != nil {
				return stages, err
			}
			continue
		}
		fn := s.fn
		if o.Profile != "" {
			fn = profiled(filepath.Join(o.Profile, s.name+".pprof"), s.fn)
		}
		if stmts != nil {
			_, _ = stmts.take() // what ran between the stages
		}
		st, err := Measure(ctx, s.name, o.Records, fn)
		if err != nil {
			return stages, fmt.Errorf("stage %s: %w", s.name, err)
		}
		st.Floor = floor.Total()
		if stmts != nil {
			st.Statements, st.StatementsCovered = stmts.take()
			total.Statements = mergeStatements(total.Statements, st.Statements)
			total.StatementsCovered += st.StatementsCovered
		}
		stages = append(stages, st)
		total.Elapsed += st.Elapsed
		total.CPU += st.CPU
		total.PeakRSS = max(total.PeakRSS, st.PeakRSS)
		if o.Stage != nil {
			o.Stage(st)
		}
	}
	stages = append(stages, total)
	if o.Stage != nil {
		o.Stage(total)
	}
	return stages, nil
}

// Measure times fn as stage name. Before it starts, the garbage of earlier
// stages is collected and returned to the system and the process's peak
// RSS mark is reset, so that PeakRSS is this stage's own peak.
func Measure(ctx context.Context, name string, records int, fn func(context.Context) error) (Stage, error) {
	runtime.GC()
	debug.FreeOSMemory()
	resetPeak()
	cpu0 := cpuTime()
	start := time.Now()
	err := fn(ctx)
	st := Stage{Name: name, Records: records, Elapsed: time.Since(start), CPU: cpuTime() - cpu0, PeakRSS: PeakRSS()}
	return st, err
}

// profiled wraps fn so that a CPU profile of it is written to path.
func profiled(path string, fn func(context.Context) error) func(context.Context) error {
	return func(ctx context.Context) error {
		f, err := os.Create(path)
		if err != nil {
			return err
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			f.Close()
			return err
		}
		err = fn(ctx)
		pprof.StopCPUProfile()
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		return err
	}
}
