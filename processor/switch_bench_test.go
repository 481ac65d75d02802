package processor_test

import (
	"context"
	"flag"
	"log/slog"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"resub/formats/native"
	"resub/processor"
	"resub/samples/fleet"
)

var (
	switchRecordsN = flag.Int("switch.records", 100000, "lines in BenchmarkSwitchRequest's switch request")
	switchLog      = flag.Bool("switch.log", false, "BenchmarkSwitchRequest logs the step at debug level (each statement's time) to stderr")
)

// BenchmarkSwitchRequest: B takes the M2M operator's switch request for
// -switch.records new cards of one donor: every line staged, judged,
// given an IMSI from B's range, its card created and answered, and the
// donor's imsi-list rendered. cpu-s/op is the process's CPU time for the
// step (user and system), steadier than wall time on a loaded machine.
func BenchmarkSwitchRequest(b *testing.B) {
	n := *switchRecordsN
	f, err := fleet.Plan(fleet.Options{N: n, Seed: "switch-bench"})
	if err != nil {
		b.Fatal(err)
	}
	var cpu time.Duration
	for b.Loop() {
		b.StopTimer()
		w := newWorld(b)
		p := w.party("MNOB", mustRanges(b, "999-99:0000000000-0099999999"), []processor.Range{{Name: "b-main", From: "999990000000001", To: "999990099999999"}})
		w.partner(p, "m2m", "M2M", "m2m-operator", "", nil, false)
		w.partner(p, "mno-a", "MNOA", "operator", "tk-ab", mustRanges(b, "001-01"), false)
		if *switchLog {
			p.Log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
		}
		cards := func(yield func(*fleet.Card) bool) {
			for i := range n {
				if !yield(f.Card(i)) {
					return
				}
			}
		}
		path := w.send("M2M", "MNOB", native.SwitchRequest, n, false, "", fleet.SwitchRequestSeq(cards, "MNOA", w.now.AddDate(0, 0, 1)))
		before := cpuTime(b)
		b.StartTimer()
		res, err := p.ProcessFile(context.Background(), &processor.SwitchRequest{Donor: p.Partners["mno-a"]},
			processor.Input{Partner: p.Partners["m2m"], Name: filepath.Base(path), Path: path, Job: "m2m-switch-request"})
		b.StopTimer()
		cpu += cpuTime(b) - before
		if err != nil {
			b.Fatal(err)
		}
		if res.Counts.Accepted != n {
			b.Fatalf("counts %+v", res.Counts)
		}
		b.StartTimer()
	}
	b.ReportMetric(cpu.Seconds()/float64(b.N), "cpu-s/op")
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "records/s")
}

// cpuTime is the process's user and system CPU time so far.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
