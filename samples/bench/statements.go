package bench

import (
	"cmp"
	"slices"
	"sync"
	"time"

	"resub/processor/ledger"
)

// StatementTime is the time a stage spent in one kind of ledger
// statement: every statement with the same ledger.StatementKey, whichever
// party ran it.
type StatementTime struct {
	// Key is the statement's text as ledger.StatementKey writes it.
	Key string
	// Calls is how many times it ran.
	Calls int
	// Elapsed is the sum of its durations: to each statement's return
	// (a query's cursor read afterwards is not included).
	Elapsed time.Duration
	// Rows is the sum of the rows it wrote where the driver said, -1
	// when it never did (queries, COMMIT).
	Rows int64
}

// maxKeyCache bounds the texts whose keys a tally remembers (a text built
// at run time would otherwise grow the cache without end).
const maxKeyCache = 4096

// tally sums the statements both parties' ledgers run, by key. Reads
// run side by side on their own connections, so it takes a lock.
type tally struct {
	mu   sync.Mutex
	keys map[string]string // text -> key
	by   map[string]*StatementTime
	// spans are when each statement ran (a lease renewal's wait
	// aside), for the time covered by at least one of them (statements
	// on several connections overlap).
	spans []span
}

// span is the time one statement ran.
type span struct{ from, to time.Time }

func newTally() *tally {
	return &tally{keys: map[string]string{}, by: map[string]*StatementTime{}}
}

// observe is the ledgers' statement observer.
func (c *tally) observe(s ledger.Statement) {
	end := time.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	if s.Text != ledger.BeginUpkeep {
		// A lease renewal waiting for the write lock runs beside the
		// step, during its statements and its own work alike: it covers
		// none of the step's time.
		c.spans = append(c.spans, span{end.Add(-s.Duration), end})
	}
	key, ok := c.keys[s.Text]
	if !ok {
		key = ledger.StatementKey(s.Text)
		if len(c.keys) < maxKeyCache {
			c.keys[s.Text] = key
		}
	}
	st := c.by[key]
	if st == nil {
		st = &StatementTime{Key: key, Rows: -1}
		c.by[key] = st
	}
	st.Calls++
	st.Elapsed += s.Duration
	if s.Rows >= 0 {
		st.Rows = max(st.Rows, 0) + s.Rows
	}
}

// take returns what was summed since the last take, the longest first,
// and the time during which at least one of those statements ran; then
// starts again.
func (c *tally) take() ([]StatementTime, time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]StatementTime, 0, len(c.by))
	for _, st := range c.by {
		out = append(out, *st)
	}
	clear(c.by)
	sortStatements(out)
	covered := covered(c.spans)
	c.spans = c.spans[:0]
	return out, covered
}

// covered is the length of the union of spans (it sorts them).
func covered(spans []span) time.Duration {
	slices.SortFunc(spans, func(a, b span) int { return a.from.Compare(b.from) })
	var total time.Duration
	var cur span
	for i, s := range spans {
		switch {
		case i == 0:
			cur = s
		case s.from.After(cur.to):
			total += cur.to.Sub(cur.from)
			cur = s
		case s.to.After(cur.to):
			cur.to = s.to
		}
	}
	if len(spans) > 0 {
		total += cur.to.Sub(cur.from)
	}
	return total
}

// sortStatements orders statements by time, the longest first (then by
// key, for a stable report).
func sortStatements(s []StatementTime) {
	slices.SortFunc(s, func(a, b StatementTime) int {
		if c := cmp.Compare(b.Elapsed, a.Elapsed); c != 0 {
			return c
		}
		return cmp.Compare(a.Key, b.Key)
	})
}

// mergeStatements adds the statements of b to those of a, by key.
func mergeStatements(a, b []StatementTime) []StatementTime {
	at := make(map[string]int, len(a))
	for i, s := range a {
		at[s.Key] = i
	}
	for _, s := range b {
		i, ok := at[s.Key]
		if !ok {
			at[s.Key] = len(a)
			a = append(a, s)
			continue
		}
		a[i].Calls += s.Calls
		a[i].Elapsed += s.Elapsed
		if s.Rows >= 0 {
			a[i].Rows = max(a[i].Rows, 0) + s.Rows
		}
	}
	sortStatements(a)
	return a
}

// StatementsElapsed is the time of all of a stage's statements together.
// Statements that ran side by side (reads on their own connections, a
// transaction waiting for another's write lock) each count their own
// time, so it can exceed the stage's wall time; StatementsCovered does
// not.
func (s Stage) StatementsElapsed() time.Duration {
	var d time.Duration
	for _, st := range s.Statements {
		d += st.Elapsed
	}
	return d
}
