package status

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"resub/processor/ledger"
)

// base is what every page's frame shows.
type base struct {
	Title string
	Party string
	Role  string
	Now   time.Time
}

func (s *Server) base(title string) base {
	return base{Title: title, Party: s.o.Config.Party.Name, Role: s.o.Config.Party.Role, Now: s.o.Now().UTC()}
}

type errorView struct {
	base
	Code    int
	Message string
}

var funcs = template.FuncMap{
	"when": func(t time.Time) string {
		if t.IsZero() {
			return "-"
		}
		return t.UTC().Format("2006-01-02 15:04:05")
	},
	"get":       func(m map[string]int, k string) int { return m[k] },
	"attention": func(state string) bool { return attention[state] },
	"colour":    colour,
	"query": func(kv ...string) template.URL {
		v := url.Values{}
		for i := 0; i+1 < len(kv); i += 2 {
			if kv[i+1] != "" && kv[i+1] != "0" {
				v.Set(kv[i], kv[i+1])
			}
		}
		return template.URL("?" + v.Encode())
	},
	"str":       func(n int64) string { return strconv.FormatInt(n, 10) },
	"add":       func(a, b int) int { return a + b },
	"int64":     func(n int) int64 { return int64(n) },
	"stateList": func() []string { return stateOrder },
}

// parseTemplates builds each page from the frame and its own template.
func parseTemplates() (map[string]*template.Template, error) {
	out := map[string]*template.Template{}
	for _, page := range []string{"overview", "wait", "batches", "batch", "cards", "card", "error"} {
		t, err := template.New("layout.html").Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/chart.html", "templates/"+page+".html")
		if err != nil {
			return nil, fmt.Errorf("status: template %s: %w", page, err)
		}
		out[page] = t
	}
	t, err := template.New("chart.html").Funcs(funcs).ParseFS(templateFS, "templates/chart.html")
	if err != nil {
		return nil, fmt.Errorf("status: template chart: %w", err)
	}
	out["chart"] = t
	return out, nil
}

// render executes a page into a buffer first, so that a failure half way
// never sends half a page.
func (s *Server) render(w http.ResponseWriter, r *http.Request, code int, page string, v any) {
	var b bytes.Buffer
	if err := s.tmpl[page].ExecuteTemplate(&b, "layout.html", v); err != nil {
		s.o.Log.Error("status page: template", "page", page, "error", err)
		http.Error(w, "the page could not be rendered; see the log", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Length", strconv.Itoa(b.Len()))
	w.WriteHeader(code)
	if r.Method != http.MethodHead {
		_, _ = w.Write(b.Bytes())
	}
}

// page adapts a page handler: its error becomes an error page.
func (s *Server) page(fn func(http.ResponseWriter, *http.Request) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := fn(w, r); err != nil {
			code, msg := s.errorStatus(r, err)
			s.render(w, r, code, "error", &errorView{base: s.base(http.StatusText(code)), Code: code, Message: msg})
		}
	}
}

// api adapts a JSON handler.
func (s *Server) api(fn func(*http.Request) (any, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		v, err := fn(r)
		if err != nil {
			code, msg := s.errorStatus(r, err)
			writeJSON(w, r, code, map[string]string{"error": msg})
			return
		}
		writeJSON(w, r, http.StatusOK, v)
	}
}

func writeJSON(w http.ResponseWriter, r *http.Request, code int, v any) {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		http.Error(w, "the answer could not be encoded", http.StatusInternalServerError)
		return
	}
	b = append(b, '\n')
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(code)
	if r.Method != http.MethodHead {
		_, _ = w.Write(b)
	}
}

// pageSize is how many rows a list page shows.
const pageSize = 100

// intParam reads a non-negative integer query parameter (0 when absent).
func intParam(r *http.Request, name string) (int64, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 {
		return 0, badRequestf("%s: %q is not a number", name, v)
	}
	return n, nil
}

// word reads a query parameter that names a state or status.
func word(r *http.Request, name string) (string, error) {
	v := r.URL.Query().Get(name)
	if len(v) > 32 {
		return "", badRequestf("%s: too long", name)
	}
	for _, c := range v {
		if !(c >= 'a' && c <= 'z' || c == '-') {
			return "", badRequestf("%s: %q is not a state", name, v)
		}
	}
	return v, nil
}

// Batches is the batch list and /api/batches: newest first, a page at a
// time, with the files (as `resub batches` prints).
type Batches struct {
	Status string     `json:"status,omitempty"`
	List   []BatchRow `json:"batches"`
	// Next is the "before" parameter of the next page (0: none).
	Next  int64          `json:"next_before,omitempty"`
	Files []*FileSummary `json:"files"`
	// NextFiles is the "files_before" parameter of the files' next page.
	NextFiles int64 `json:"next_files_before,omitempty"`
}

// BatchRow is one batch with its file's name.
type BatchRow struct {
	ID       int64     `json:"id"`
	Job      string    `json:"job"`
	Partner  string    `json:"partner"`
	Kind     string    `json:"kind"`
	Status   string    `json:"status"`
	Records  int       `json:"records"`
	Accepted int       `json:"accepted"`
	Rejected int       `json:"rejected"`
	Reason   string    `json:"reason,omitempty"`
	FileID   int64     `json:"file_id,omitempty"`
	File     string    `json:"file,omitempty"`
	Created  time.Time `json:"created"`
}

// FileSummary is one file received or sent.
type FileSummary struct {
	ID        int64     `json:"id"`
	Direction string    `json:"direction"`
	Partner   string    `json:"partner"`
	Type      string    `json:"type"`
	Status    string    `json:"status"`
	Name      string    `json:"name"`
	Reason    string    `json:"reason,omitempty"`
	Size      int64     `json:"size"`
	SHA256    string    `json:"sha256"`
	BatchID   int64     `json:"batch_id,omitempty"`
	Updated   time.Time `json:"updated"`
	Reprocess string    `json:"reprocess,omitempty"`
}

func (s *Server) fileSummary(f *ledger.File) *FileSummary {
	fs := &FileSummary{ID: f.ID, Direction: f.Direction, Partner: f.Partner, Type: f.Type, Status: f.Status, Name: f.Name,
		Reason: f.Reason, Size: f.Size, SHA256: f.SHA256, BatchID: f.BatchID, Updated: f.Updated}
	if f.Status == ledger.FileQuarantined {
		fs.Reprocess = s.reprocessCommand(fmt.Sprintf("file:%d", f.ID))
	}
	return fs
}

func (s *Server) batchRow(r *http.Request, b *ledger.Batch) (BatchRow, error) {
	row := BatchRow{ID: b.ID, Job: b.Job, Partner: b.Partner, Kind: b.Kind, Status: b.Status, Records: b.Records,
		Accepted: b.Accepted, Rejected: b.Rejected, Reason: b.Reason, FileID: b.FileID, Created: b.Created}
	if b.FileID != 0 {
		f, err := s.o.Ledger.FileByID(r.Context(), b.FileID)
		if err != nil && !errors.Is(err, ledger.ErrNotFound) {
			return row, err
		}
		if f != nil {
			row.File = f.Name
		}
	}
	return row, nil
}

func (s *Server) batches(r *http.Request) (*Batches, error) {
	status, err := word(r, "status")
	if err != nil {
		return nil, err
	}
	before, err := intParam(r, "before")
	if err != nil {
		return nil, err
	}
	filesBefore, err := intParam(r, "files_before")
	if err != nil {
		return nil, err
	}
	out := &Batches{Status: status, List: []BatchRow{}, Files: []*FileSummary{}}
	bs, err := s.o.Ledger.BatchesPage(r.Context(), status, before, pageSize)
	if err != nil {
		return nil, err
	}
	for _, b := range bs {
		row, err := s.batchRow(r, b)
		if err != nil {
			return nil, err
		}
		out.List = append(out.List, row)
	}
	if len(bs) == pageSize {
		out.Next = bs[len(bs)-1].ID
	}
	fs, err := s.o.Ledger.FilesPage(r.Context(), status, filesBefore, pageSize)
	if err != nil {
		return nil, err
	}
	for _, f := range fs {
		out.Files = append(out.Files, s.fileSummary(f))
	}
	if len(fs) == pageSize {
		out.NextFiles = fs[len(fs)-1].ID
	}
	return out, nil
}

func (s *Server) batchesPage(w http.ResponseWriter, r *http.Request) error {
	bs, err := s.batches(r)
	if err != nil {
		return err
	}
	s.render(w, r, http.StatusOK, "batches", &struct {
		base
		*Batches
	}{s.base("Batches and files"), bs})
	return nil
}

func (s *Server) batchesAPI(r *http.Request) (any, error) { return s.batches(r) }

// BatchDetail is one batch: its file, counts, records (the rejected ones
// first) and its OTA messages, a page at a time.
type BatchDetail struct {
	Batch        BatchRow       `json:"batch"`
	File         *FileSummary   `json:"file,omitempty"`
	RecordCounts map[string]int `json:"record_counts"`
	// Rejected are the records refused, with their reasons.
	Rejected     []Record  `json:"rejected"`
	NextRejected int       `json:"next_rejected_after,omitempty"`
	Records      []Record  `json:"records"`
	NextRecords  int       `json:"next_records_after,omitempty"`
	Messages     []Message `json:"messages"`
	NextMessages int64     `json:"next_messages_after,omitempty"`
}

// Record is one record of a batch as the ledger holds it.
type Record struct {
	BatchID int64  `json:"batch_id"`
	Line    int    `json:"line"`
	ICCID   string `json:"iccid"`
	IMSI    string `json:"imsi"`
	Status  string `json:"status"`
	Reason  string `json:"reason"`
	Detail  string `json:"detail"`
	Partner string `json:"partner"`
}

func record(r ledger.BatchRecord) Record {
	return Record{BatchID: r.BatchID, Line: r.Line, ICCID: r.ICCID, IMSI: r.IMSI, Status: r.Status, Reason: r.Reason, Detail: r.Detail, Partner: r.Partner}
}

// Message is one OTA message and its PoR verdict (no key, no packet).
type Message struct {
	ID       int64     `json:"id"`
	ICCID    string    `json:"iccid"`
	BatchID  int64     `json:"batch_id"`
	Kind     string    `json:"kind"`
	KeyIndex int       `json:"key_index,omitempty"`
	KVN      int       `json:"kvn"`
	Counter  int64     `json:"counter"`
	TAR      string    `json:"tar"`
	MSISDN   string    `json:"msisdn"`
	Attempt  int       `json:"attempt"`
	State    string    `json:"state"`
	Deadline time.Time `json:"deadline,omitzero"`
	Verdict  string    `json:"verdict"`
	// SentIn is the file the message went out in (an output of ours),
	// FileID that file's row once delivered.
	SentIn  string    `json:"sent_in,omitempty"`
	FileID  int64     `json:"file_id,omitempty"`
	Created time.Time `json:"created"`
}

// sentIn names the files messages went out in, reading each output once
// per request.
type sentIn struct {
	s    *Server
	seen map[int64]*ledger.File
}

// fill sets m's file from the output its file_id names.
func (si *sentIn) fill(ctx context.Context, m *Message, outputID int64) error {
	if outputID == 0 {
		return nil
	}
	if si.seen == nil {
		si.seen = map[int64]*ledger.File{}
	}
	f, ok := si.seen[outputID]
	if !ok {
		o, err := si.s.o.Ledger.OutputByID(ctx, outputID)
		switch {
		case errors.Is(err, ledger.ErrNotFound):
		case err != nil:
			return err
		default:
			f = &ledger.File{Name: o.Name}
			if df, err := si.s.o.Ledger.FileByName(ctx, "out", o.Name); err == nil {
				f = df
			} else if !errors.Is(err, ledger.ErrNotFound) {
				return err
			}
		}
		si.seen[outputID] = f
	}
	if f != nil {
		m.SentIn, m.FileID = f.Name, f.ID
	}
	return nil
}

func message(m *ledger.Message) Message {
	v := m.Detail
	if m.PoRStatus != "" {
		v = strings.TrimSpace(m.PoRStatus + " " + v)
	}
	return Message{ID: m.ID, ICCID: m.ICCID, BatchID: m.BatchID, Kind: m.Kind, KeyIndex: m.KeyIndex, KVN: m.KVN, Counter: m.Counter, TAR: m.TAR,
		MSISDN: m.MSISDN, Attempt: m.Attempt, State: m.State, Deadline: m.Deadline, Verdict: v, Created: m.Created}
}

func pathID(r *http.Request) (int64, error) {
	v := r.PathValue("id")
	id, err := strconv.ParseInt(v, 10, 64)
	if err != nil || id <= 0 {
		return 0, notFoundf("no batch %q", v)
	}
	return id, nil
}

func (s *Server) batchDetail(r *http.Request) (*BatchDetail, error) {
	id, err := pathID(r)
	if err != nil {
		return nil, err
	}
	ctx := r.Context()
	db := s.o.Ledger
	b, err := db.Batch(ctx, id)
	if errors.Is(err, ledger.ErrNotFound) {
		return nil, notFoundf("no batch %d in the ledger", id)
	}
	if err != nil {
		return nil, err
	}
	d := &BatchDetail{Rejected: []Record{}, Records: []Record{}, Messages: []Message{}}
	if d.Batch, err = s.batchRow(r, b); err != nil {
		return nil, err
	}
	if b.FileID != 0 {
		if f, err := db.FileByID(ctx, b.FileID); err == nil {
			d.File = s.fileSummary(f)
		}
	}
	if d.RecordCounts, err = db.RecordTallies(ctx, id); err != nil {
		return nil, err
	}
	rejAfter, err := intParam(r, "rejected_after")
	if err != nil {
		return nil, err
	}
	recAfter, err := intParam(r, "records_after")
	if err != nil {
		return nil, err
	}
	msgAfter, err := intParam(r, "messages_after")
	if err != nil {
		return nil, err
	}
	rej, err := db.RecordsPage(ctx, id, "rejected", int(rejAfter), pageSize)
	if err != nil {
		return nil, err
	}
	for _, x := range rej {
		d.Rejected = append(d.Rejected, record(x))
	}
	if len(rej) == pageSize {
		d.NextRejected = rej[len(rej)-1].Line
	}
	recs, err := db.RecordsPage(ctx, id, "", int(recAfter), pageSize)
	if err != nil {
		return nil, err
	}
	for _, x := range recs {
		d.Records = append(d.Records, record(x))
	}
	if len(recs) == pageSize {
		d.NextRecords = recs[len(recs)-1].Line
	}
	msgs, err := db.MessagesOfBatchPage(ctx, id, msgAfter, pageSize)
	if err != nil {
		return nil, err
	}
	var si sentIn
	si.s = s
	for _, m := range msgs {
		v := message(m)
		if err := si.fill(ctx, &v, m.FileID); err != nil {
			return nil, err
		}
		d.Messages = append(d.Messages, v)
	}
	if len(msgs) == pageSize {
		d.NextMessages = msgs[len(msgs)-1].ID
	}
	return d, nil
}

func (s *Server) batchPage(w http.ResponseWriter, r *http.Request) error {
	d, err := s.batchDetail(r)
	if err != nil {
		return err
	}
	s.render(w, r, http.StatusOK, "batch", &struct {
		base
		*BatchDetail
	}{s.base(fmt.Sprintf("Batch %d", d.Batch.ID)), d})
	return nil
}

func (s *Server) batchAPI(r *http.Request) (any, error) { return s.batchDetail(r) }

// CardList is a page of cards, optionally of one state.
type CardList struct {
	State string        `json:"state,omitempty"`
	Cards []CardSummary `json:"cards"`
	// Next is the "after" parameter of the next page.
	Next string `json:"next_after,omitempty"`
}

// CardSummary is what the ledger knows of a card (no secret: the ledger
// keeps those wrapped elsewhere, and no page reads them).
type CardSummary struct {
	ICCID      string    `json:"iccid"`
	IMSI       string    `json:"imsi"`
	MSISDN     string    `json:"msisdn"`
	State      string    `json:"state"`
	Profile    string    `json:"profile"`
	Owner      string    `json:"owner"`
	Source     string    `json:"source"`
	NewIMSI    string    `json:"new_imsi,omitempty"`
	Recipient  string    `json:"recipient,omitempty"`
	Cutover    string    `json:"cutover,omitempty"`
	Attempts   int       `json:"attempts"`
	KeyIndex   int       `json:"key_index,omitempty"`
	ListLength int       `json:"list_length,omitempty"`
	Updated    time.Time `json:"updated"`
}

func cardSummary(c *ledger.Card) CardSummary {
	return CardSummary{ICCID: c.ICCID, IMSI: c.IMSI, MSISDN: c.MSISDN, State: c.State, Profile: c.Profile, Owner: c.Owner, Source: c.Source,
		NewIMSI: c.NewIMSI, Recipient: c.Recipient, Cutover: c.Cutover, Attempts: c.Attempts, KeyIndex: c.KeyIndex, ListLength: c.ListLength, Updated: c.Updated}
}

func (s *Server) cards(r *http.Request) (*CardList, error) {
	state, err := word(r, "state")
	if err != nil {
		return nil, err
	}
	after := r.URL.Query().Get("after")
	if !isICCID(after) && after != "" {
		return nil, badRequestf("after: %q is not an ICCID", after)
	}
	cs, err := s.o.Ledger.CardsPage(r.Context(), state, after, pageSize)
	if err != nil {
		return nil, err
	}
	out := &CardList{State: state, Cards: []CardSummary{}}
	for _, c := range cs {
		out.Cards = append(out.Cards, cardSummary(c))
	}
	if len(cs) == pageSize {
		out.Next = cs[len(cs)-1].ICCID
	}
	return out, nil
}

// isICCID accepts the digits (and the F padding some partners use) of an
// ICCID.
func isICCID(v string) bool {
	if len(v) < 10 || len(v) > 22 {
		return false
	}
	for _, c := range v {
		if !(c >= '0' && c <= '9' || c == 'f' || c == 'F') {
			return false
		}
	}
	return true
}

func (s *Server) cardsPage(w http.ResponseWriter, r *http.Request) error {
	// The search form on every page asks for /cards?iccid=…
	if q := strings.TrimSpace(r.URL.Query().Get("iccid")); q != "" {
		if !isICCID(q) {
			return badRequestf("%q is not an ICCID", q)
		}
		http.Redirect(w, r, "/cards/"+url.PathEscape(q), http.StatusSeeOther)
		return nil
	}
	cl, err := s.cards(r)
	if err != nil {
		return err
	}
	title := "Cards"
	if cl.State != "" {
		title = "Cards " + cl.State
	}
	s.render(w, r, http.StatusOK, "cards", &struct {
		base
		*CardList
	}{s.base(title), cl})
	return nil
}

func (s *Server) cardsAPI(r *http.Request) (any, error) { return s.cards(r) }

// CardDetail is one card: what `resub cards --config FILE ICCID` prints,
// and every message with its PoR verdict and every record and file that
// named it.
type CardDetail struct {
	Card     CardSummary    `json:"card"`
	History  []Event        `json:"history"`
	Messages []Message      `json:"messages"`
	Records  []Record       `json:"records"`
	Files    []*FileSummary `json:"files"`
}

// Event is one step of a card's history.
type Event struct {
	At     time.Time `json:"at"`
	From   string    `json:"from"`
	To     string    `json:"to"`
	Reason string    `json:"reason"`
	Ref    string    `json:"ref"`
	// FileID is the file the ref names (file:N), if any.
	FileID int64 `json:"file_id,omitempty"`
}

// cardRecords bounds the records shown for one card.
const cardRecords = 500

func (s *Server) cardDetail(r *http.Request) (*CardDetail, error) {
	iccid := r.PathValue("iccid")
	if !isICCID(iccid) {
		return nil, notFoundf("%q is not an ICCID", iccid)
	}
	ctx := r.Context()
	db := s.o.Ledger
	c, err := db.Card(ctx, iccid)
	if errors.Is(err, ledger.ErrNotFound) {
		return nil, notFoundf("no card %s in the ledger", iccid)
	}
	if err != nil {
		return nil, err
	}
	d := &CardDetail{Card: cardSummary(c), History: []Event{}, Messages: []Message{}, Records: []Record{}, Files: []*FileSummary{}}
	h, err := db.History(ctx, iccid)
	if err != nil {
		return nil, err
	}
	files := map[int64]bool{}
	var order []int64
	addFile := func(id int64) {
		if id > 0 && !files[id] {
			files[id] = true
			order = append(order, id)
		}
	}
	for _, e := range h {
		ev := Event{At: e.At, From: e.From, To: e.To, Reason: e.Reason, Ref: e.Ref}
		// References name a file (file:N, or file:N:LINE for a record)
		// or a batch (batch:N).
		kind, rest, _ := strings.Cut(e.Ref, ":")
		n, _, _ := strings.Cut(rest, ":")
		if id, err := strconv.ParseInt(n, 10, 64); err == nil && id > 0 {
			switch kind {
			case "file":
				ev.FileID = id
				addFile(id)
			case "batch":
				if b, err := db.Batch(ctx, id); err == nil {
					addFile(b.FileID)
				}
			}
		}
		d.History = append(d.History, ev)
	}
	ms, err := db.MessagesOfCard(ctx, iccid)
	if err != nil {
		return nil, err
	}
	var si sentIn
	si.s = s
	for _, m := range ms {
		v := message(m)
		if err := si.fill(ctx, &v, m.FileID); err != nil {
			return nil, err
		}
		d.Messages = append(d.Messages, v)
		addFile(v.FileID)
	}
	recs, err := db.RecordsOfCard(ctx, iccid, cardRecords)
	if err != nil {
		return nil, err
	}
	for _, x := range recs {
		d.Records = append(d.Records, record(x))
		if b, err := db.Batch(ctx, x.BatchID); err == nil {
			addFile(b.FileID)
		}
	}
	for _, id := range order {
		f, err := db.FileByID(ctx, id)
		if errors.Is(err, ledger.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		d.Files = append(d.Files, s.fileSummary(f))
	}
	return d, nil
}

func (s *Server) cardPage(w http.ResponseWriter, r *http.Request) error {
	d, err := s.cardDetail(r)
	if err != nil {
		return err
	}
	s.render(w, r, http.StatusOK, "card", &struct {
		base
		*CardDetail
	}{s.base("Card " + d.Card.ICCID), d})
	return nil
}

func (s *Server) cardAPI(r *http.Request) (any, error) { return s.cardDetail(r) }
