package status

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func newTestServer(t *testing.T, n int, password string) (*Server, *httptest.Server) {
	t.Helper()
	db := syntheticLedger(t, t.TempDir(), n)
	cfg := testConfig()
	if password != "" {
		t.Setenv("RESUB_TEST_HTTP_PASSWORD", password)
		cfg.HTTP.Password = "env:RESUB_TEST_HTTP_PASSWORD"
	}
	s, err := New(Options{Config: cfg, Ledger: db, Now: func() time.Time { return fleetStart.Add(72 * time.Hour) }})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(s.Handler())
	t.Cleanup(ts.Close)
	return s, ts
}

func do(t *testing.T, method, url string, auth []string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if auth != nil {
		req.SetBasicAuth(auth[0], auth[1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// routes are every page and API of the site on the synthetic ledger.
var routes = []string{
	"/", "/chart.svg", "/batches", "/batches?status=failed", "/batches/2", "/cards", "/cards?state=unknown",
	"/cards/8999901000000000042", "/api/overview", "/api/chart", "/api/batches", "/api/batches/2",
	"/api/cards?state=manual", "/api/cards/8999901000000000042", "/static/style.css",
}

func TestHeadersOnEveryAnswer(t *testing.T) {
	_, ts := newTestServer(t, 1000, "")
	for _, p := range append(routes, "/nowhere", "/cards/8999909999999999999", "/batches/99999") {
		for _, m := range []string{http.MethodGet, http.MethodHead, http.MethodPost} {
			resp, _ := do(t, m, ts.URL+p, nil)
			h := resp.Header
			if !strings.Contains(h.Get("Content-Security-Policy"), "default-src 'none'") || h.Get("X-Content-Type-Options") != "nosniff" ||
				h.Get("Referrer-Policy") != "no-referrer" || h.Get("Cache-Control") != "no-store" {
				t.Errorf("%s %s: security headers missing: %v", m, p, h)
			}
		}
	}
}

func TestRequestsThatMustFail(t *testing.T) {
	_, ts := newTestServer(t, 1000, "")
	for _, m := range []string{http.MethodPost, http.MethodPut, http.MethodDelete, http.MethodPatch, http.MethodOptions} {
		for _, p := range []string{"/", "/api/overview", "/cards/8999901000000000042", "/metrics"} {
			resp, _ := do(t, m, ts.URL+p, nil)
			if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != "GET, HEAD" {
				t.Errorf("%s %s: %d, Allow %q", m, p, resp.StatusCode, resp.Header.Get("Allow"))
			}
		}
	}
	for _, p := range []string{"/nowhere", "/cards/8999909999999999999", "/cards/not-an-iccid", "/batches/99999", "/batches/x",
		"/api/nowhere", "/api/cards/8999909999999999999", "/api/batches/0", "/static/nothing.css", "/static/", "/../etc/passwd"} {
		resp, body := do(t, http.MethodGet, ts.URL+p, nil)
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s: %d, want 404\n%s", p, resp.StatusCode, body)
		}
	}
	for _, p := range []string{"/cards?state=DROP%20TABLE", "/batches?before=-1", "/api/cards?after=x'", "/cards?iccid=abc"} {
		resp, body := do(t, http.MethodGet, ts.URL+p, nil)
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("GET %s: %d, want 400\n%s", p, resp.StatusCode, body)
		}
	}
}

func TestBasicAuth(t *testing.T) {
	_, ts := newTestServer(t, 1000, "correct horse battery staple")
	for _, tc := range []struct {
		name string
		auth []string
		want int
	}{
		{"none", nil, http.StatusUnauthorized},
		{"wrong password", []string{"resub", "correct horse battery stapler"}, http.StatusUnauthorized},
		{"wrong user", []string{"admin", "correct horse battery staple"}, http.StatusUnauthorized},
		{"empty", []string{"", ""}, http.StatusUnauthorized},
		{"right", []string{"resub", "correct horse battery staple"}, http.StatusOK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, p := range routes {
				resp, body := do(t, http.MethodGet, ts.URL+p, tc.auth)
				if resp.StatusCode != tc.want {
					t.Fatalf("GET %s: %d, want %d", p, resp.StatusCode, tc.want)
				}
				if tc.want == http.StatusUnauthorized && !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Basic ") {
					t.Fatalf("GET %s: no basic-auth challenge", p)
				}
				if strings.Contains(body, "correct horse") {
					t.Fatalf("GET %s: the password is in the answer", p)
				}
				for k, vs := range resp.Header {
					for _, v := range vs {
						if strings.Contains(v, "correct horse") {
							t.Fatalf("GET %s: the password is in header %s", p, k)
						}
					}
				}
			}
		})
	}
}

func TestAddressNeedsAuthOffLoopback(t *testing.T) {
	for _, tc := range []struct {
		addr        string
		auth, tlsOn bool
		ok          bool
	}{
		{"127.0.0.1:8080", false, false, true},
		{"[::1]:8080", false, false, true},
		{"localhost:8080", false, false, true},
		{"127.0.0.2:0", false, false, true},
		{"0.0.0.0:8080", false, false, false},
		{":8080", false, false, false},
		{"192.0.2.10:8080", false, false, false},
		{"[::]:8080", false, false, false},
		{"status.example.net:8080", false, false, false},
		{"0.0.0.0:8080", true, false, true},
		{"192.0.2.10:8080", false, true, true},
		{"no-port", true, true, false},
	} {
		err := CheckAddr(tc.addr, tc.auth, tc.tlsOn)
		if (err == nil) != tc.ok {
			t.Errorf("CheckAddr(%q, auth %v, tls %v) = %v", tc.addr, tc.auth, tc.tlsOn, err)
		}
		if !tc.ok && tc.addr != "no-port" && !errors.Is(err, ErrExposed) {
			t.Errorf("CheckAddr(%q): %v is not ErrExposed", tc.addr, err)
		}
	}
	// New refuses the address before anything listens.
	db := syntheticLedger(t, t.TempDir(), 10)
	if _, err := New(Options{Config: testConfig(), Ledger: db, Addr: "0.0.0.0:0"}); !errors.Is(err, ErrExposed) {
		t.Fatalf("New on 0.0.0.0 without auth: %v", err)
	}
	cfg := testConfig()
	t.Setenv("RESUB_TEST_HTTP_PASSWORD", "s3cret-for-the-page")
	cfg.HTTP.Password = "env:RESUB_TEST_HTTP_PASSWORD"
	s, err := New(Options{Config: cfg, Ledger: db, Addr: "0.0.0.0:0"})
	if err != nil {
		t.Fatalf("New on 0.0.0.0 with a password: %v", err)
	}
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := s.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	cfg.HTTP.Password = "env:RESUB_TEST_HTTP_PASSWORD_UNSET"
	if _, err := New(Options{Config: cfg, Ledger: db, Addr: "127.0.0.1:0"}); err == nil || strings.Contains(err.Error(), "s3cret") {
		t.Fatalf("an unresolvable password: %v", err)
	}
}

// TestOverviewAgreesWithTheLedger checks the aggregates against counts
// made with plain SQL over the tables.
func TestOverviewAgreesWithTheLedger(t *testing.T) {
	s, ts := newTestServer(t, 10_000, "")
	_, body := do(t, http.MethodGet, ts.URL+"/api/overview", nil)
	var ov Overview
	if err := json.Unmarshal([]byte(body), &ov); err != nil {
		t.Fatalf("%v\n%s", err, body)
	}
	want, err := s.o.Ledger.CountByState(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if ov.TotalN != 10_000 || len(ov.Total) != len(want) {
		t.Fatalf("total %d %v, want %v", ov.TotalN, ov.Total, want)
	}
	for st, n := range want {
		if ov.Total[st] != n {
			t.Errorf("%s: %d, want %d", st, ov.Total[st], n)
		}
	}
	if want["unknown"] != 300 || want["released"] != 6000 {
		t.Fatalf("fixture: %v", want)
	}
	var out, own int
	for _, r := range ov.Cards {
		switch {
		case r.Direction == "out" && r.Code == "MNOB" && r.Partner == "mno-b":
			out = r.N
		case r.Direction == "own":
			own = r.N
		}
	}
	if out != 8000 || own != 2000 {
		t.Errorf("moving to MNOB %d, own %d: %+v", out, own, ov.Cards)
	}
	var upd *MessageRow
	for i := range ov.Messages {
		if ov.Messages[i].Kind == "update" {
			upd = &ov.Messages[i]
		}
	}
	// Messages of moving cards are sent with a deadline in 2026-11; now
	// is three days after the start: every one of them is overdue.
	if upd == nil || upd.AwaitingPoR != 500 || upd.Overdue != 500 || upd.ByState["unknown"] != 400 || upd.ByState["failed"] != 100 || upd.Settled != 7500 {
		t.Fatalf("messages: %+v", ov.Messages)
	}
	if len(ov.Quarantined) != 1 || !strings.HasPrefix(ov.Quarantined[0].Command, "resub reprocess --config ") || !strings.HasSuffix(ov.Quarantined[0].Command, " file:"+itoa(ov.Quarantined[0].ID)) {
		t.Fatalf("quarantined: %+v", ov.Quarantined)
	}
	if len(ov.Jobs) != 1 || ov.Jobs[0].Status != "ok" || ov.Jobs[0].Next.IsZero() {
		t.Fatalf("jobs: %+v", ov.Jobs)
	}

	// The chart's last point is the cards' states now (every card's
	// history is complete in the fixture).
	_, body = do(t, http.MethodGet, ts.URL+"/api/chart", nil)
	var ch Series
	if err := json.Unmarshal([]byte(body), &ch); err != nil {
		t.Fatal(err)
	}
	last := ch.Counts[len(ch.Counts)-1]
	for j, st := range ch.States {
		if last[j] != want[st] {
			t.Errorf("chart %s at the end: %d, want %d", st, last[j], want[st])
		}
	}
	if len(ch.Hours) < 48 {
		t.Errorf("chart: %d hours", len(ch.Hours))
	}
	// A new event is picked up by the next request.
	if _, err := s.o.Ledger.SQL().Exec(`UPDATE cards SET state = 'manual' WHERE iccid = '8999901000000000098'`); err != nil {
		t.Fatal(err)
	}
	if _, err := s.o.Ledger.SQL().Exec(`INSERT INTO card_events (iccid, at, from_state, to_state, reason, ref) VALUES ('8999901000000000098', '2026-11-05T10:00:00Z', 'unknown', 'manual', 'engineer', '')`); err != nil {
		t.Fatal(err)
	}
	_, body = do(t, http.MethodGet, ts.URL+"/api/chart", nil)
	if err := json.Unmarshal([]byte(body), &ch); err != nil {
		t.Fatal(err)
	}
	last = ch.Counts[len(ch.Counts)-1]
	for j, st := range ch.States {
		w := want[st]
		switch st {
		case "manual":
			w++
		case "unknown":
			w--
		}
		if last[j] != w {
			t.Errorf("chart after one more event, %s: %d, want %d", st, last[j], w)
		}
	}
}

func itoa(n int64) string { b, _ := json.Marshal(n); return string(b) }

// TestOverviewDoesNotWaitForTheChart: while the cards' history is being
// read, the overview answers with the chart it has (none at first).
func TestOverviewDoesNotWaitForTheChart(t *testing.T) {
	s, ts := newTestServer(t, 100, "")
	s.chart.mu.Lock() // a first read of a big history in flight
	resp, body := do(t, http.MethodGet, ts.URL+"/", nil)
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, "being read") {
		s.chart.mu.Unlock()
		t.Fatalf("%d\n%s", resp.StatusCode, body)
	}
	s.chart.mu.Unlock()
	_, body = do(t, http.MethodGet, ts.URL+"/", nil)
	if strings.Contains(body, "being read") || !strings.Contains(body, "<polygon") {
		t.Fatalf("the chart is missing once read:\n%s", body)
	}
	s.chart.mu.Lock()
	_, body = do(t, http.MethodGet, ts.URL+"/", nil)
	s.chart.mu.Unlock()
	if !strings.Contains(body, "<polygon") {
		t.Fatal("the last chart is not shown while the history is read again")
	}
}

// TestFirstOverviewDoesNotWait: while the first figures are read, the
// page says so and reloads itself; the API waits for them.
func TestFirstOverviewDoesNotWait(t *testing.T) {
	s, ts := newTestServer(t, 100, "")
	release := make(chan struct{})
	s.computeOverview = func(ctx context.Context) (*Overview, error) {
		<-release // the first figures take a while
		return s.overview(ctx)
	}
	resp, body := do(t, http.MethodGet, ts.URL+"/", nil)
	close(release)
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, "being read") || !strings.Contains(body, `http-equiv="refresh" content="2"`) {
		t.Fatalf("%d\n%s", resp.StatusCode, body)
	}
	_, body = do(t, http.MethodGet, ts.URL+"/api/overview", nil)
	if !strings.Contains(body, `"total_cards": 100`) {
		t.Fatalf("API: %s", body)
	}
	_, body = do(t, http.MethodGet, ts.URL+"/", nil)
	if !strings.Contains(body, "Cards by state") {
		t.Fatalf("overview after the first figures:\n%s", body)
	}
}
