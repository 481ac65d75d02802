package status

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"time"

	"resub/jobs"
	"resub/jobs/config"
	"resub/jobs/schedule"
	"resub/processor/ledger"
)

// stateOrder is the order of card states along a cut-over: the donor's
// path, the recipient's, then the ends that need a person.
var stateOrder = []string{
	"active", "requested", "moving", "failed", "confirmed", "handed-over", "incoming",
	"provisioned", "resetting", "released", "erased",
	"unknown", "manual", "rejected", "cancelled",
}

// attention are the states an operator acts on.
var attention = map[string]bool{"unknown": true, "manual": true, "rejected": true, "failed": true}

// stateNotes say what each state means, for the page's legend.
var stateNotes = map[string]string{
	"active":      "in service with us (inventory, authorised or not)",
	"requested":   "recipient: IMSI allocated, handover awaited",
	"moving":      "accepted; IMSI change over the air outstanding",
	"failed":      "change failed; retried up to the limit",
	"confirmed":   "PoR proved the new IMSI",
	"handed-over": "handover sent; acknowledgement awaited",
	"incoming":    "recipient: handover received, keys pending",
	"provisioned": "recipient acknowledged provisioning",
	"resetting":   "reset message outstanding",
	"released":    "no longer ours",
	"erased":      "released; secrets crypto-erased",
	"unknown":     "no PoR by the deadline: the card may have changed",
	"manual":      "retries exhausted: an engineer decides",
	"rejected":    "the donor refused the change",
	"cancelled":   "withdrawn before cut-over",
}

// orderStates sorts states along the cut-over; states the page does not
// know follow in name order.
func orderStates(states []string) []string {
	rank := func(s string) int {
		if i := slices.Index(stateOrder, s); i >= 0 {
			return i
		}
		return len(stateOrder)
	}
	slices.SortFunc(states, func(a, b string) int {
		if ra, rb := rank(a), rank(b); ra != rb {
			return ra - rb
		}
		if a < b {
			return -1
		}
		if a > b {
			return 1
		}
		return 0
	})
	return states
}

// Overview is the overview page and /api/overview.
type Overview struct {
	Party       string    `json:"party"`
	Role        string    `json:"role"`
	GeneratedAt time.Time `json:"generated_at"`
	// TookMillis is how long the figures took to read.
	TookMillis int64 `json:"took_ms"`
	// CardStates are the states present, in cut-over order.
	CardStates []string `json:"card_states"`
	// Cards are the cards per partner and direction by state; Total all
	// cards by state (what `resub cards` prints).
	Cards     []CardRow      `json:"cards"`
	Total     map[string]int `json:"total"`
	TotalN    int            `json:"total_cards"`
	Messages  []MessageRow   `json:"messages"`
	MsgStates []string       `json:"message_states"`
	// Verdicts are the reasons of failed and unknown messages.
	Verdicts      []Verdict         `json:"verdicts"`
	Files         []FileRow         `json:"files"`
	FileStatuses  []string          `json:"file_statuses"`
	Quarantined   []QuarantinedFile `json:"quarantined"`
	FailedBatches []FailedBatch     `json:"failed_batches"`
	Overdue       []OverdueRow      `json:"overdue"`
	Jobs          []JobRow          `json:"jobs"`
}

// CardRow is the cards of one partner and direction by state.
type CardRow struct {
	Direction string         `json:"direction"` // out (moving to), in (came from), own
	Partner   string         `json:"partner"`   // configured partner name, or the party code
	Code      string         `json:"code"`
	ByState   map[string]int `json:"by_state"`
	N         int            `json:"n"`
}

// MessageRow is the OTA messages of one kind by state.
type MessageRow struct {
	Kind    string         `json:"kind"`
	ByState map[string]int `json:"by_state"`
	// AwaitingPoR were sent and wait for their PoR; Overdue of them are
	// past the deadline.
	AwaitingPoR int `json:"awaiting_por"`
	Overdue     int `json:"overdue"`
	// Settled have their verdict: confirmed, failed or unknown.
	Settled int `json:"settled"`
	N       int `json:"n"`
}

// Verdict is how many messages of a kind ended failed or unknown for one
// reason.
type Verdict struct {
	Kind   string `json:"kind"`
	State  string `json:"state"`
	Reason string `json:"reason"`
	N      int    `json:"n"`
}

// FileRow is one partner's files in one direction by status.
type FileRow struct {
	Partner   string         `json:"partner"`
	Direction string         `json:"direction"`
	ByStatus  map[string]int `json:"by_status"`
	N         int            `json:"n"`
}

// QuarantinedFile is a refused file and how to run it again.
type QuarantinedFile struct {
	ID      int64     `json:"id"`
	Partner string    `json:"partner"`
	Name    string    `json:"name"`
	Reason  string    `json:"reason"`
	Since   time.Time `json:"since"`
	Command string    `json:"reprocess"`
}

// FailedBatch is a batch that failed and how to run it again.
type FailedBatch struct {
	ID      int64  `json:"id"`
	Job     string `json:"job"`
	Partner string `json:"partner"`
	Reason  string `json:"reason"`
	Command string `json:"reprocess"`
}

// OverdueRow is what a partner owes past its deadline (`resub overdue`).
type OverdueRow struct {
	Partner  string    `json:"partner"`
	What     string    `json:"what"`
	Count    int       `json:"count"`
	Oldest   time.Time `json:"oldest,omitzero"`
	Deadline string    `json:"deadline,omitempty"`
}

// JobRow is one configured job with its last and next run (`resub jobs`).
type JobRow struct {
	Name     string    `json:"name"`
	Kind     string    `json:"kind"`
	Partner  string    `json:"partner"`
	Schedule string    `json:"schedule"`
	Next     time.Time `json:"next,omitzero"`
	Last     time.Time `json:"last,omitzero"`
	Finished time.Time `json:"finished,omitzero"`
	Status   string    `json:"status"`
	Summary  string    `json:"summary"`
	LastOK   time.Time `json:"last_ok,omitzero"`
}

// firstWait is how long the overview page waits for the first figures.
const firstWait = 750 * time.Millisecond

// listLimit bounds the lists on the overview; the batch list pages on.
const listLimit = 50

func (s *Server) overview(ctx context.Context) (*Overview, error) {
	cfg, db := s.o.Config, s.o.Ledger
	now := s.o.Now()
	ov := &Overview{Party: cfg.Party.Name, Role: cfg.Party.Role, GeneratedAt: now.UTC(), Total: map[string]int{}}

	// Cards: each in one row: moving to (or moved to) a recipient, else
	// come from a partner, else our own fleet.
	byCode := map[string]string{}
	for name, p := range cfg.Partners {
		if p != nil && p.Code != "" {
			byCode[p.Code] = name
		}
	}
	tallies, err := db.CardTallies(ctx)
	if err != nil {
		return nil, err
	}
	rows := map[[2]string]*CardRow{}
	states := map[string]bool{}
	for _, t := range tallies {
		key := [2]string{"own", cfg.Party.Name}
		switch {
		case t.Recipient != "":
			key = [2]string{"out", t.Recipient}
		case byCode[t.Source] != "":
			key = [2]string{"in", t.Source}
		}
		r := rows[key]
		if r == nil {
			r = &CardRow{Direction: key[0], Code: key[1], Partner: byCode[key[1]], ByState: map[string]int{}}
			if key[0] == "own" {
				r.Partner = "own fleet"
			}
			rows[key] = r
		}
		r.ByState[t.State] += t.N
		r.N += t.N
		ov.Total[t.State] += t.N
		ov.TotalN += t.N
		states[t.State] = true
	}
	for _, r := range rows {
		ov.Cards = append(ov.Cards, *r)
	}
	dirRank := map[string]int{"own": 0, "out": 1, "in": 2}
	sort.Slice(ov.Cards, func(i, j int) bool {
		a, b := ov.Cards[i], ov.Cards[j]
		if a.Direction != b.Direction {
			return dirRank[a.Direction] < dirRank[b.Direction]
		}
		return a.Code < b.Code
	})
	for st := range states {
		ov.CardStates = append(ov.CardStates, st)
	}
	orderStates(ov.CardStates)

	// Messages by kind and state.
	mts, err := db.MessageTallies(ctx, now)
	if err != nil {
		return nil, err
	}
	kinds := map[string]*MessageRow{}
	mstates := map[string]bool{}
	for _, t := range mts {
		r := kinds[t.Kind]
		if r == nil {
			r = &MessageRow{Kind: t.Kind, ByState: map[string]int{}}
			kinds[t.Kind] = r
		}
		r.ByState[t.State] += t.N
		r.N += t.N
		r.Overdue += t.Overdue
		switch t.State {
		case ledger.MsgSent:
			r.AwaitingPoR += t.N
		case ledger.MsgConfirmed, ledger.MsgFailed, ledger.MsgUnknown:
			r.Settled += t.N
		}
		mstates[t.State] = true
	}
	for _, r := range kinds {
		ov.Messages = append(ov.Messages, *r)
	}
	sort.Slice(ov.Messages, func(i, j int) bool { return ov.Messages[i].Kind < ov.Messages[j].Kind })
	for _, st := range []string{ledger.MsgReserved, ledger.MsgSent, ledger.MsgConfirmed, ledger.MsgFailed, ledger.MsgUnknown} {
		if mstates[st] {
			ov.MsgStates = append(ov.MsgStates, st)
			delete(mstates, st)
		}
	}
	for st := range mstates {
		ov.MsgStates = append(ov.MsgStates, st)
	}
	sort.Strings(ov.MsgStates[len(ov.MsgStates)-len(mstates):])
	vs, err := db.FailureVerdicts(ctx, 20)
	if err != nil {
		return nil, err
	}
	for _, v := range vs {
		ov.Verdicts = append(ov.Verdicts, Verdict{Kind: v.Kind, State: v.State, Reason: v.Detail, N: v.N})
	}

	// Files by partner, direction and status.
	fts, err := db.FileTallies(ctx)
	if err != nil {
		return nil, err
	}
	fstatuses := map[string]bool{}
	var fr *FileRow
	for _, t := range fts {
		if fr == nil || fr.Partner != t.Partner || fr.Direction != t.Direction {
			ov.Files = append(ov.Files, FileRow{Partner: t.Partner, Direction: t.Direction, ByStatus: map[string]int{}})
			fr = &ov.Files[len(ov.Files)-1]
		}
		fr.ByStatus[t.Status] += t.N
		fr.N += t.N
		fstatuses[t.Status] = true
	}
	for _, st := range []string{ledger.FileReceived, ledger.FileProcessing, ledger.FileDone, ledger.FileDelivered, ledger.FileRefusing, ledger.FileQuarantined} {
		if fstatuses[st] {
			ov.FileStatuses = append(ov.FileStatuses, st)
			delete(fstatuses, st)
		}
	}
	rest := make([]string, 0, len(fstatuses))
	for st := range fstatuses {
		rest = append(rest, st)
	}
	sort.Strings(rest)
	ov.FileStatuses = append(ov.FileStatuses, rest...)

	qs, err := db.FilesPage(ctx, ledger.FileQuarantined, 0, listLimit)
	if err != nil {
		return nil, err
	}
	for _, f := range qs {
		ov.Quarantined = append(ov.Quarantined, QuarantinedFile{ID: f.ID, Partner: f.Partner, Name: f.Name, Reason: f.Reason, Since: f.Updated,
			Command: s.reprocessCommand(fmt.Sprintf("file:%d", f.ID))})
	}
	fbs, err := db.BatchesPage(ctx, ledger.BatchFailed, 0, listLimit)
	if err != nil {
		return nil, err
	}
	for _, b := range fbs {
		ov.FailedBatches = append(ov.FailedBatches, FailedBatch{ID: b.ID, Job: b.Job, Partner: b.Partner, Reason: b.Reason,
			Command: s.reprocessCommand(fmt.Sprintf("batch:%d", b.ID))})
	}

	items, err := jobs.Overdue(ctx, cfg, db, now)
	if err != nil {
		return nil, err
	}
	for _, it := range items {
		r := OverdueRow{Partner: it.Partner, What: it.What, Count: it.Count, Oldest: it.Oldest}
		if it.Deadline > 0 {
			r.Deadline = it.Deadline.String()
		}
		ov.Overdue = append(ov.Overdue, r)
	}

	ov.Jobs, err = s.jobRows(ctx, cfg, now)
	return ov, err
}

func (s *Server) jobRows(ctx context.Context, cfg *config.Config, now time.Time) ([]JobRow, error) {
	var out []JobRow
	for _, j := range cfg.Jobs {
		r := JobRow{Name: j.Name, Kind: j.Kind, Partner: j.Partner, Schedule: j.Schedule + " " + j.Zone, Status: "never run"}
		if ts, err := schedule.Next(j.Schedule, j.Zone, now, 1); err == nil && len(ts) > 0 {
			r.Next = ts[0]
		}
		last, ok, err := s.o.Ledger.LastRun(ctx, j.Name)
		if err != nil {
			return nil, err
		}
		if last != nil {
			r.Last, r.Finished, r.Status, r.Summary = last.Started, last.Finished, last.Status, last.Summary
		}
		if ok != nil {
			r.LastOK = ok.Started
		}
		out = append(out, r)
	}
	return out, nil
}

// reprocessCommand is the command line that runs a quarantined file or a
// failed batch again.
func (s *Server) reprocessCommand(ref string) string {
	return "resub reprocess --config " + shellQuote(s.o.Config.Path()) + " " + ref
}

// shellQuote quotes a path for a POSIX shell when it needs it.
func shellQuote(p string) string {
	safe := p != ""
	for _, r := range p {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '/' || r == '.' || r == '-' || r == '_' || r == ':' || r == '+' || r == ',' || r == '=' || r == '@') {
			safe = false
			break
		}
	}
	if safe {
		return p
	}
	out := []byte{'\''}
	for i := 0; i < len(p); i++ {
		if p[i] == '\'' {
			out = append(out, `'\''`...)
			continue
		}
		out = append(out, p[i])
	}
	return string(append(out, '\''))
}

// overviewView is what the overview template renders.
type overviewView struct {
	base
	*Overview
	// Party and Role are in both: named here, they are not ambiguous.
	Party, Role string
	Chart       chartView
	Refresh     int
	Notes       map[string]string
}

func (s *Server) overviewPage(w http.ResponseWriter, r *http.Request) error {
	// A person is not kept waiting by the first reading of a big
	// ledger: the page says so and reloads itself.
	ctx, cancel := context.WithTimeout(r.Context(), firstWait)
	defer cancel()
	ov, err := s.overviewSnapshot(ctx)
	if errors.Is(err, context.DeadlineExceeded) && r.Context().Err() == nil {
		s.render(w, r, http.StatusOK, "wait", &errorView{base: s.base("Overview")})
		return nil
	}
	if err != nil {
		return err
	}
	ch, err := s.chart.current(r.Context(), s.o.Ledger)
	if err != nil {
		return err
	}
	v := &overviewView{base: s.base("Overview"), Overview: ov, Chart: renderChart(ch, 960, 300), Refresh: int(s.o.Refresh / time.Second), Notes: stateNotes,
		Party: ov.Party, Role: ov.Role}
	if v.Refresh < 1 {
		v.Refresh = 1
	}
	s.render(w, r, http.StatusOK, "overview", v)
	return nil
}

func (s *Server) overviewAPI(r *http.Request) (any, error) {
	return s.overviewSnapshot(r.Context())
}
