package bench

import (
	"bytes"
	"context"
	"encoding/hex"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"resub/processor/ledger"
)

// With Statements, each stage tells the statements its jobs ran: the
// import's include its INSERT INTO cards, take no more than the stage
// (its statements run one after the other), and carry no card's
// identifier; the total holds every stage's.
func TestRunStatements(t *testing.T) {
	n := 300
	stages, err := Run(context.Background(), Options{Records: n, Dir: t.TempDir(), Statements: true})
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]Stage{}
	for _, s := range stages {
		byName[s.Name] = s
	}
	imp := byName["import"]
	if len(imp.Statements) == 0 {
		t.Fatal("no statements in the import stage")
	}
	if imp.StatementsElapsed() > imp.Elapsed {
		t.Errorf("the import's statements took %v, the stage %v", imp.StatementsElapsed(), imp.Elapsed)
	}
	for _, s := range stages {
		if (s.Name != "generate" && s.StatementsCovered <= 0) || s.StatementsCovered > s.Elapsed || s.StatementsCovered > s.StatementsElapsed()+time.Millisecond {
			t.Errorf("stage %s: statements cover %v of %v, their sum %v", s.Name, s.StatementsCovered, s.Elapsed, s.StatementsElapsed())
		}
	}
	var cards bool
	for i, st := range imp.Statements {
		if strings.HasPrefix(st.Key, "INSERT INTO cards") || strings.HasPrefix(st.Key, "COPY cards") {
			cards = true
		}
		if st.Calls <= 0 || st.Elapsed <= 0 {
			t.Errorf("statement %+v", st)
		}
		if i > 0 && st.Elapsed > imp.Statements[i-1].Elapsed {
			t.Errorf("statements not the longest first at %d", i)
		}
	}
	if !cards {
		t.Errorf("no INSERT INTO cards among the import's statements: %+v", imp.Statements)
	}
	var calls int
	for _, s := range stages[:len(stages)-1] {
		for _, st := range s.Statements {
			calls += st.Calls
		}
	}
	var total int
	for _, st := range byName["total"].Statements {
		total += st.Calls
	}
	if total != calls || calls == 0 {
		t.Errorf("the total has %d statements, the stages %d", total, calls)
	}
}

// The parties' slow-statement log, its threshold set to a nanosecond,
// warns of the import's statements with their job and never carries a
// card's identifier or key.
func TestSlowStatementLogInTheImport(t *testing.T) {
	ctx := context.Background()
	var buf syncBuffer
	log := slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelWarn}))
	var seen sync.Map
	w, err := NewWorldOn(ctx, t.TempDir(), 40, log, LedgerOptions{SlowStatement: "1ns",
		Observe: func(s ledger.Statement) { seen.Store(s.Text, true) }})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if err := w.Generate(ctx); err != nil {
		t.Fatal(err)
	}
	if err := w.Import(ctx); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	if !strings.Contains(out, `"msg":"slow ledger statement"`) || !strings.Contains(out, `"statement":"INSERT INTO cards`) || !strings.Contains(out, `"job":"`) {
		t.Fatalf("no slow-statement warnings of the import:\n%.2000s", out)
	}
	var texts []string
	seen.Range(func(k, _ any) bool { texts = append(texts, k.(string)); return true })
	for _, c := range w.fleet.Cards {
		for _, v := range []string{c.ICCID, c.IMSI, c.MSISDN, hex.EncodeToString(c.Ki(1)), strings.ToUpper(hex.EncodeToString(c.Ki(1))), hex.EncodeToString(c.OPc)} {
			if strings.Contains(out, v) {
				t.Fatalf("the log carries %s's value %s", c.ICCID, v)
			}
			for _, s := range texts {
				if strings.Contains(s, v) {
					t.Fatalf("a statement's text carries %s's value %s", c.ICCID, v)
				}
			}
		}
	}
}

// syncBuffer is a bytes.Buffer for several goroutines' log lines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// covered counts the time at least one statement ran once, however many
// ran side by side.
func TestCovered(t *testing.T) {
	t0 := time.Date(2026, 12, 7, 0, 0, 0, 0, time.UTC)
	at := func(from, to int) span {
		return span{t0.Add(time.Duration(from) * time.Millisecond), t0.Add(time.Duration(to) * time.Millisecond)}
	}
	for _, c := range []struct {
		spans []span
		want  int
	}{
		{nil, 0},
		{[]span{at(0, 10)}, 10},
		{[]span{at(0, 10), at(20, 25)}, 15},
		{[]span{at(20, 25), at(0, 10), at(5, 12)}, 17},    // out of order, overlapping
		{[]span{at(0, 100), at(10, 20), at(30, 40)}, 100}, // a long wait holding shorter ones
		{[]span{at(0, 10), at(10, 20)}, 20},               // end to end
	} {
		if got := covered(c.spans); got != time.Duration(c.want)*time.Millisecond {
			t.Errorf("covered(%v) = %v, want %d ms", c.spans, got, c.want)
		}
	}
}
