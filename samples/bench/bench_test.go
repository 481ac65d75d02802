package bench

import (
	"context"
	"flag"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"resub/processor/ledger/ledgertest"
	"resub/processor/ledger/postgres"
	"time"
)

var records = flag.Int("bench.records", 2000, "fleet size of the stage benchmarks")

func TestRunEveryStage(t *testing.T) {
	n := 300
	var seen []string
	var floor Floor
	stages, err := Run(context.Background(), Options{Records: n, Dir: t.TempDir(), Stage: func(s Stage) { seen = append(seen, s.Name) },
		Floor: func(f Floor) { floor = f }})
	if err != nil {
		t.Fatal(err)
	}
	want := append(slices.Clone(Names), "total")
	if !slices.Equal(seen, want) {
		t.Fatalf("stages %v, want %v", seen, want)
	}
	for _, s := range stages {
		if s.Records != n || s.Elapsed <= 0 || s.RecordsPerSecond() <= 0 {
			t.Errorf("stage %+v", s)
		}
		if s.Floor != floor.Total() || s.XFloor() <= 0 {
			t.Errorf("stage %s: floor %v, x floor %v; the floor measured %+v", s.Name, s.Floor, s.XFloor(), floor)
		}
	}
}

// Every stage on PostgreSQL ledgers (a schema each on the test server),
// dropped at the end.
func TestRunEveryStageOnPostgres(t *testing.T) {
	server := ledgertest.ServerURL(t)
	n := 300
	stages, err := Run(context.Background(), Options{Records: n, Dir: t.TempDir(), Ledger: LedgerOptions{URL: server}, Statements: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(stages) != len(Names)+1 {
		t.Fatalf("%d stages", len(stages))
	}
	// The server's bulk loads are told as COPY, the cards' insert by its
	// numbered text.
	var copies, cards bool
	for _, st := range stages[1].Statements {
		copies = copies || strings.HasPrefix(st.Key, "COPY stage_a_import (")
		cards = cards || strings.HasPrefix(st.Key, "INSERT INTO cards (") && strings.Contains(st.Key, "$1")
	}
	if stages[1].Name != "import" || !copies || !cards {
		t.Errorf("stage %s: statements %+v", stages[1].Name, stages[1].Statements)
	}
	db, err := postgres.OpenSQL(context.Background(), server, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var left int
	if err := db.QueryRow(`SELECT COUNT(*) FROM information_schema.schemata WHERE schema_name LIKE 'resub_bench_%'`).Scan(&left); err != nil || left != 0 {
		t.Errorf("%d benchmark schemas left (%v)", left, err)
	}
}

// The floor's statements touch every one of the n rows (each checks its
// count) and each part takes time.
func TestMeasureFloor(t *testing.T) {
	f, err := MeasureFloor(context.Background(), t.TempDir(), 5000)
	if err != nil {
		t.Fatal(err)
	}
	if f.Insert <= 0 || f.Update <= 0 || f.Read <= 0 || f.Total() != f.Insert+f.Update+f.Read {
		t.Errorf("floor %+v", f)
	}
}

// BenchmarkFloor: the engine floor alone, for -bench.records cards (the
// ledger filled before it is not counted in floor-s).
func BenchmarkFloor(b *testing.B) {
	var sum time.Duration
	for b.Loop() {
		f, err := MeasureFloor(context.Background(), b.TempDir(), *records)
		if err != nil {
			b.Fatal(err)
		}
		sum += f.Total()
	}
	b.ReportMetric(sum.Seconds()/float64(b.N), "floor-s")
	b.ReportMetric(float64(*records)*float64(b.N)/sum.Seconds(), "records/s")
}

// benchStage prepares a world up to (not including) stage and measures
// stage on a fleet of -bench.records cards, b.N times.
func benchStage(b *testing.B, stage string) {
	ctx := context.Background()
	for b.Loop() {
		b.StopTimer()
		w, err := NewWorld(ctx, filepath.Join(b.TempDir(), "w"), *records, nil)
		if err != nil {
			b.Fatal(err)
		}
		steps := []struct {
			name string
			fn   func(context.Context) error
		}{
			{"generate", w.Generate}, {"import", w.Import}, {"b-switch-request", w.SwitchRequest},
			{"a-imsi-list", w.IMSIList}, {"smsc", w.SMSCReport}, {"a-ota-report", w.OTAReport}, {"a-handover", w.Handover}, {"b-handover", w.HandoverIntake},
		}
		for _, s := range steps {
			if s.name == stage {
				b.StartTimer()
			}
			if err := s.fn(ctx); err != nil {
				b.Fatal(err)
			}
			if s.name == stage {
				b.StopTimer()
				break
			}
		}
		w.Close()
		b.StartTimer()
	}
	b.ReportMetric(float64(*records)*float64(b.N)/b.Elapsed().Seconds(), "records/s")
}

func BenchmarkGenerate(b *testing.B)        { benchStage(b, "generate") }
func BenchmarkImport(b *testing.B)          { benchStage(b, "import") }
func BenchmarkSwitchRequest(b *testing.B)   { benchStage(b, "b-switch-request") }
func BenchmarkAIMSIList(b *testing.B)       { benchStage(b, "a-imsi-list") }
func BenchmarkAOTAReport(b *testing.B)      { benchStage(b, "a-ota-report") }
func BenchmarkAHandover(b *testing.B)       { benchStage(b, "a-handover") }
func BenchmarkBHandoverIntake(b *testing.B) { benchStage(b, "b-handover") }
