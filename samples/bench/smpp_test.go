package bench

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"resub/jobs"
	"resub/jobs/smpp"
	"resub/processor/ledger"
	"resub/samples/smsc"
)

// smppWorld prepares A with n messages queued for an SMSC over SMPP (the
// simulated SMSC's server), up to and including A's imsi-list.
func smppWorld(b testing.TB, n, window int, sink bool) (*World, *smsc.SMPPServer) {
	ctx := context.Background()
	sm := smsc.New()
	srv, err := sm.ServeSMPP("resub-bench", "bench-pw")
	if err != nil {
		b.Fatal(err)
	}
	srv.Sink = sink
	b.Cleanup(func() { srv.Close() })
	w, err := NewSMPPWorld(ctx, filepath.Join(b.TempDir(), "w"), n, nil, SMPPOptions{Port: srv.Port(), Window: window, Password: "bench-pw"})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { w.Close() })
	for _, f := range []func(context.Context) error{w.Generate, w.Import, w.SwitchRequest, w.IMSIList} {
		if err := f(ctx); err != nil {
			b.Fatal(err)
		}
	}
	if !sink {
		w.fleet.Opts.Profile = w.a.Party.Profiles[profileName].OTA
		for c := range w.fleet.All() {
			if err := w.fleet.BuildSIM(c); err != nil {
				b.Fatal(err)
			}
			sm.Register(c.MSISDN, c.SIM)
		}
	}
	return w, srv
}

// TestSMPPBenchWorld: the benchmark's SMPP world works end to end: every
// card's message goes over SMPP to its simulated UICC and every card is
// confirmed by its PoR.
func TestSMPPBenchWorld(t *testing.T) {
	const n = 40
	w, srv := smppWorld(t, n, 10, false)
	sum, err := w.a.RunJob(context.Background(), "ota-submit", jobs.RunOptions{Manual: true, Owner: "bench", Wait: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	counts, err := w.a.Ledger.CountByState(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if counts[ledger.CardConfirmed] != n || srv.PoRs.Load() != n {
		t.Fatalf("%v confirmed, %d PoRs; %s", counts, srv.PoRs.Load(), sum)
	}
	// Nothing queued, nothing awaited: the next run does not bind (the
	// SMSC being down does not matter then).
	srv.Close()
	if _, err := w.a.RunJob(context.Background(), "ota-submit", jobs.RunOptions{Owner: "bench"}); err != nil {
		t.Errorf("an idle run with the SMSC down: %v", err)
	}
}

// BenchmarkSMPPSubmit measures submit_sm per second to the simulated SMSC
// on loopback (accepting, not delivering), every submission and its
// response durably recorded in A's ledger, at windows 1, 10 and 100.
func BenchmarkSMPPSubmit(b *testing.B) {
	for _, win := range []int{1, 10, 100} {
		b.Run(fmt.Sprintf("window=%d", win), func(b *testing.B) {
			var segs, secs float64
			for b.Loop() {
				b.StopTimer()
				w, _ := smppWorld(b, *records, win, true)
				b.StartTimer()
				start := time.Now()
				if _, err := w.a.RunJob(context.Background(), "ota-submit", jobs.RunOptions{Manual: true, Owner: "bench"}); err != nil {
					b.Fatal(err)
				}
				secs += time.Since(start).Seconds()
				b.StopTimer()
				var n int
				if err := w.a.Ledger.QueryRow(context.Background(), `SELECT COUNT(*) FROM smpp_segments WHERE state = 'submitted'`).Scan(&n); err != nil {
					b.Fatal(err)
				}
				if n == 0 {
					b.Fatal("nothing submitted")
				}
				segs += float64(n)
				b.StartTimer()
			}
			b.ReportMetric(segs/secs, "submit_sm/s")
		})
	}
}

// BenchmarkSMPPPoR measures PoR intake at window 100: the messages are
// submitted and the simulated UICCs answer first (not timed, their PoRs
// held by the simulated SMSC); then a run binds and takes every PoR as a
// mobile-originated deliver_sm, each matched by (MSISDN, TAR, counter),
// verified with the card's keys, judged and recorded before its
// deliver_sm_resp.
func BenchmarkSMPPPoR(b *testing.B) {
	var pors, secs float64
	for b.Loop() {
		b.StopTimer()
		w, srv := smppWorld(b, *records, 100, false)
		srv.HoldMO.Store(true)
		if _, err := w.a.RunJob(context.Background(), "ota-submit", jobs.RunOptions{Manual: true, Owner: "bench"}); err != nil {
			b.Fatal(err)
		}
		srv.HoldMO.Store(false)
		b.StartTimer()
		start := time.Now()
		if _, err := w.a.RunJob(context.Background(), "ota-submit", jobs.RunOptions{Manual: true, Owner: "bench", Wait: 10 * time.Minute}); err != nil {
			b.Fatal(err)
		}
		secs += time.Since(start).Seconds()
		b.StopTimer()
		counts, _ := w.a.Ledger.CountByState(context.Background())
		if counts[ledger.CardConfirmed] != *records {
			b.Fatalf("%v after the run (%d PoRs sent)", counts, srv.PoRs.Load())
		}
		pors += float64(counts[ledger.CardConfirmed])
		b.StartTimer()
	}
	b.ReportMetric(pors/secs, "PoRs/s")
}

// TestSMPPSubmitSMSCDownOrRefused: an unreachable SMSC is a transient
// failure (exit 3) and a refused bind a configuration error (exit 2)
// carrying the SMSC's status; neither changes a queued message.
func TestSMPPSubmitSMSCDownOrRefused(t *testing.T) {
	ctx := context.Background()
	sm := smsc.New()
	srv, err := sm.ServeSMPP("resub-bench", "another-password")
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	w, err := NewSMPPWorld(ctx, filepath.Join(t.TempDir(), "w"), 5, nil, SMPPOptions{Port: srv.Port(), Window: 5, Password: "bench-pw"})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	for _, f := range []func(context.Context) error{w.Generate, w.Import, w.SwitchRequest, w.IMSIList} {
		if err := f(ctx); err != nil {
			t.Fatal(err)
		}
	}
	queued := func() (q, reserved int) {
		w.a.Ledger.QueryRow(ctx, `SELECT COUNT(*) FROM smpp_messages WHERE state = 'queued'`).Scan(&q)
		w.a.Ledger.QueryRow(ctx, `SELECT COUNT(*) FROM ota_messages WHERE state = 'reserved'`).Scan(&reserved)
		return
	}
	_, err = w.a.RunJob(ctx, "ota-submit", jobs.RunOptions{Manual: true, Owner: "test"})
	var be *smpp.BindError
	var ce interface{ ConfigError() bool }
	if !errors.As(err, &be) || be.Status != 0x0E || !errors.As(err, &ce) || !ce.ConfigError() {
		t.Fatalf("wrong password: want a bind refused with ESME_RINVPASWD as a configuration error, got %v", err)
	}
	if strings.Contains(err.Error(), "bench-pw") {
		t.Errorf("the password is in the error: %v", err)
	}
	if q, r := queued(); q != 5 || r != 5 {
		t.Errorf("after a refused bind: %d queued, %d reserved; want 5 and 5", q, r)
	}
	// The SMSC goes away.
	srv.Close()
	_, err = w.a.RunJob(ctx, "ota-submit", jobs.RunOptions{Manual: true, Owner: "test"})
	var ue *smpp.UnreachableError
	var tmp interface{ Temporary() bool }
	if !errors.As(err, &ue) || !errors.As(err, &tmp) || !tmp.Temporary() {
		t.Fatalf("SMSC down: want unreachable (transient), got %v", err)
	}
	if q, r := queued(); q != 5 || r != 5 {
		t.Errorf("after an unreachable SMSC: %d queued, %d reserved; want 5 and 5", q, r)
	}
}
