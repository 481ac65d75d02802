package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"flag"
	"fmt"
	"image/png"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"resub/samples/demo"
)

var updateScreenshot = flag.Bool("update-screenshot", false, "write the overview's screenshot to samples/status/overview.png")

// syncBuffer is a buffer the serving command writes while the test reads.
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

// serveCLI runs `resub ARGS…` (serve or run) in-process until the test
// ends and returns the status page's URL it prints.
func serveCLI(t *testing.T, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var out, errb syncBuffer
	done := make(chan int, 1)
	go func() { done <- run(ctx, args, stdio{in: strings.NewReader(""), out: &out, err: &errb}) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			t.Error("the server did not stop")
		}
	})
	re := regexp.MustCompile(`status page: (https?://\S+/)`)
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); {
		if m := re.FindStringSubmatch(out.String()); m != nil {
			return m[1]
		}
		select {
		case code := <-done:
			t.Fatalf("resub %s: exit %d\n%s", strings.Join(args, " "), code, errb.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
	t.Fatalf("resub %s printed no address:\n%s\n%s", strings.Join(args, " "), out.String(), errb.String())
	return ""
}

// browser starts headless Chromium. Without it the test is skipped, except
// in CI (CI=true), where it fails.
func browser(t *testing.T) context.Context {
	t.Helper()
	var path string
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			path = p
			break
		}
	}
	if path == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("chromium is not installed (.ci/run installs it)")
		}
		t.Skip("chromium is not installed")
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path), chromedp.NoSandbox, chromedp.Headless, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1280, 1000),
		// Chromium phones home unless told not to; the tests need only
		// the loopback server.
		chromedp.Flag("disable-quic", true), chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true), chromedp.Flag("disable-sync", true),
		chromedp.Flag("no-default-browser-check", true),
	}
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelB := chromedp.NewContext(actx)
	t.Cleanup(func() { cancelB(); cancelA() })
	tctx, cancelT := context.WithTimeout(ctx, 4*time.Minute)
	t.Cleanup(cancelT)
	return tctx
}

// page is what a person reads on one page: its text, its tables by id
// (rows of cell texts) and the cells of the card totals.
type page struct {
	Status string                `json:"status"`
	Title  string                `json:"title"`
	Text   string                `json:"text"`
	Tables map[string][][]string `json:"tables"`
	Totals map[string]string     `json:"totals"`
	Legend []string              `json:"legend"`
	Meta   string                `json:"refresh"`
}

const readPage = `(() => {
  const cells = r => Array.from(r.cells).map(c => c.innerText.trim());
  const tables = {};
  document.querySelectorAll('table[id]').forEach(t => { tables[t.id] = Array.from(t.tBodies[0] ? t.tBodies[0].rows : []).map(cells); });
  const totals = {};
  document.querySelectorAll('tfoot th[data-state]').forEach(th => { totals[th.dataset.state] = th.innerText.trim(); });
  const legend = Array.from(document.querySelectorAll('svg.chart text')).map(t => t.textContent.trim());
  const meta = document.querySelector('meta[http-equiv=refresh]');
  return { status: document.querySelector('h1') ? document.querySelector('h1').innerText : '', title: document.title,
           text: document.body.innerText, tables, totals, legend, refresh: meta ? meta.content : '' };
})()`

func open(t *testing.T, ctx context.Context, url string) page {
	t.Helper()
	if err := chromedp.Do(ctx, chromedp.Navigate(url), chromedp.WaitReady(chromedp.CSS("footer"))); err != nil {
		t.Fatalf("open %s: %v", url, err)
	}
	p, err := chromedp.Run(ctx, chromedp.Evaluate[page](readPage))
	if err != nil {
		t.Fatalf("read %s: %v", url, err)
	}
	return p
}

// TestStatusPageInBrowser runs the demo, serves MNOA's and MNOB's ledgers
// with `resub serve`, opens every page in headless Chromium and checks
// what a person reads there against `resub cards` and `resub batches`;
// it takes a screenshot of the overview and searches every page, API
// answer and header for the demo's secrets.
func TestStatusPageInBrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the whole demo and a browser")
	}
	dir := t.TempDir()
	if *updateScreenshot {
		// The README shows the commands with this folder.
		dir = filepath.Join(os.TempDir(), "cutover")
		if err := os.RemoveAll(dir); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.RemoveAll(dir) })
	}
	var story bytes.Buffer
	res, err := demo.Run(context.Background(), demo.Options{Dir: dir, Out: &story})
	if err != nil || !res.OK {
		t.Fatalf("demo: %v %v\n%s", err, res, story.String())
	}
	ctx := browser(t)
	secrets := demoSecrets(t, res)
	for _, party := range []string{"mnoa", "mnob"} {
		cfg := filepath.Join(dir, party, "resub.yaml")
		base := serveCLI(t, "serve", "--config", cfg, "--http", "127.0.0.1:0")
		secrets := append(secrets, wrappedBlobs(t, cfg)...)
		t.Run(party, func(t *testing.T) {
			var visited []string
			visit := func(path string) page {
				visited = append(visited, path)
				return open(t, ctx, base+strings.TrimPrefix(path, "/"))
			}

			// The overview: the totals are `resub cards`.
			// A person waits while the page says the figures are being
			// read (a loaded machine), as its reload does.
			ov := visit("/")
			for deadline := time.Now().Add(30 * time.Second); strings.Contains(ov.Text, "being read") && time.Now().Before(deadline); {
				time.Sleep(500 * time.Millisecond)
				ov = visit("/")
			}
			if !strings.Contains(ov.Title, strings.ToUpper(party)) || ov.Meta == "" {
				t.Errorf("overview: title %q, refresh %q", ov.Title, ov.Meta)
			}
			counts := cliCounts(t, cfg)
			for st, n := range counts {
				if got := ov.Totals[st]; got != strconv.Itoa(n) {
					t.Errorf("overview: %s %q, resub cards says %d", st, got, n)
				}
			}
			if len(ov.Totals) != len(counts) {
				t.Errorf("overview totals %v, resub cards %v", ov.Totals, counts)
			}
			// The chart's legend ends where the cards are now.
			for st, n := range counts {
				if st == "total" {
					continue
				}
				if !contains(ov.Legend, fmt.Sprintf("%s %d", st, n)) {
					t.Errorf("chart legend %q lacks %s %d", ov.Legend, st, n)
				}
			}
			for _, s := range []string{"Cards by state", "OTA messages", "Files in and out", "Quarantined files", "Owed past the deadline", "Jobs"} {
				if !strings.Contains(ov.Text, s) {
					t.Errorf("overview lacks %q", s)
				}
			}

			// Quarantined files: each with its reason and the command.
			batches := cliBatches(t, cfg)
			for _, f := range batches.files {
				if f.status != "quarantined" {
					continue
				}
				cmd := "resub reprocess --config " + cfg + " file:" + f.id
				if !strings.Contains(ov.Text, cmd) || !strings.Contains(ov.Text, f.reason) {
					t.Errorf("overview lacks quarantined file %s: %q with %q", f.id, cmd, f.reason)
				}
			}

			// The batch list is `resub batches`.
			bl := visit("/batches")
			if len(bl.Tables["batches"]) != len(batches.batches) {
				t.Fatalf("batch list: %d rows, resub batches %d", len(bl.Tables["batches"]), len(batches.batches))
			}
			for i, want := range batches.batches {
				got := bl.Tables["batches"][i]
				g := []string{got[0], got[1], got[2], got[3], got[4], got[5], got[6], got[7]}
				if strings.Join(g, "|") != strings.Join(want.cols, "|") {
					t.Errorf("batch row %d: page %q, resub batches %q", i, g, want.cols)
				}
				if want.file != "-" && got[8] != want.file {
					t.Errorf("batch %s file: page %q, resub batches %q", want.cols[0], got[8], want.file)
				}
			}
			if len(bl.Tables["files"]) != len(batches.files) {
				t.Errorf("file list: %d rows, resub batches %d", len(bl.Tables["files"]), len(batches.files))
			}

			// Each batch's page: counts, its file, its rejected records.
			for _, b := range batches.batches {
				bp := visit("/batches/" + b.cols[0])
				rejected, _ := strconv.Atoi(b.cols[7])
				if len(bp.Tables["rejected"]) != rejected {
					t.Errorf("batch %s: %d rejected records shown, resub batches says %d", b.cols[0], len(bp.Tables["rejected"]), rejected)
				}
				for _, r := range bp.Tables["rejected"] {
					if r[3] == "" || r[4] == "" {
						t.Errorf("batch %s: a rejected record without reason: %q", b.cols[0], r)
					}
				}
				if name := strings.TrimPrefix(b.file, "file:"+fileID(b.file)+" "); b.file != "-" && !strings.Contains(bp.Text, name) {
					t.Errorf("batch %s page lacks its file %s", b.cols[0], name)
				}
			}

			// Every card's page is `resub cards ICCID`.
			cl := visit("/cards")
			if total := counts["total"]; len(cl.Tables["cards"]) != total {
				t.Fatalf("card list: %d rows, resub cards counts %d", len(cl.Tables["cards"]), total)
			}
			for _, row := range cl.Tables["cards"] {
				iccid := row[0]
				cp := visit("/cards/" + iccid)
				facts, history := cliCard(t, cfg, iccid)
				got := map[string]string{}
				for _, line := range strings.Split(cp.Text, "\n") {
					if k, v, ok := strings.Cut(line, "\t"); ok {
						got[strings.ToLower(k)] = strings.TrimSpace(v)
					}
				}
				for k, v := range facts {
					if got[k] != v {
						t.Errorf("card %s: %s %q on the page, resub cards says %q", iccid, k, got[k], v)
					}
				}
				h := cp.Tables["history"]
				if len(h) != len(history) {
					t.Fatalf("card %s: %d history rows, resub cards %d", iccid, len(h), len(history))
				}
				for i, want := range history {
					g := strings.TrimSpace(strings.Join([]string{h[i][0], h[i][1], h[i][2], h[i][3], h[i][4]}, " "))
					g = strings.Join(strings.Fields(g), " ")
					if g != want {
						t.Errorf("card %s history %d: page %q, resub cards %q", iccid, i, g, want)
					}
				}
				msgs := cp.Tables["messages"]
				if want := cliMessages(t, cfg, iccid); len(msgs) != want {
					t.Errorf("card %s: %d messages on the page, %d in the ledger", iccid, len(msgs), want)
				}
				// A message went out in an OTA batch, listed with the
				// card's files.
				for _, m := range msgs {
					if sent := m[9]; sent != "-" && (!strings.Contains(sent, "_ota-batch_") || !tableHas(cp.Tables["files"], 5, sent)) {
						t.Errorf("card %s: message %s sent in %q", iccid, m[0], sent)
					}
				}
			}

			// The search form finds a card as a person would use it.
			iccid := cl.Tables["cards"][0][0]
			if err := chromedp.Do(ctx, chromedp.Navigate(base), chromedp.WaitReady(chromedp.ID("iccid")),
				chromedp.SendKeys(chromedp.ID("iccid"), iccid), chromedp.Submit(chromedp.ID("iccid")),
				chromedp.WaitReady(chromedp.CSS("#facts"))); err != nil {
				t.Fatalf("search: %v", err)
			}
			if loc, _ := chromedp.Run(ctx, chromedp.Location()); !strings.HasSuffix(loc, "/cards/"+iccid) {
				t.Errorf("search for %s went to %s", iccid, loc)
			}

			// A screenshot of MNOA's overview, for the README.
			if party == "mnoa" {
				shot := screenshot(t, ctx, base)
				if *updateScreenshot {
					if err := os.WriteFile(filepath.Join("..", "..", "samples", "status", "overview.png"), shot, 0o644); err != nil {
						t.Fatal(err)
					}
				}
			}

			// No secret of the demo's inputs in any page, answer or header.
			apis := []string{"api/overview", "api/chart", "api/batches", "api/cards", "chart.svg", "static/style.css"}
			for _, b := range batches.batches {
				apis = append(apis, "api/batches/"+b.cols[0])
			}
			for _, row := range cl.Tables["cards"] {
				apis = append(apis, "api/cards/"+row[0])
			}
			for _, p := range visited {
				apis = append(apis, strings.TrimPrefix(p, "/"))
			}
			for _, p := range apis {
				resp, err := http.Get(base + p)
				if err != nil {
					t.Fatal(err)
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					t.Errorf("GET /%s: %d", p, resp.StatusCode)
				}
				var hdr bytes.Buffer
				_ = resp.Header.Write(&hdr)
				for _, s := range secrets {
					for _, form := range s.forms {
						if bytes.Contains(body, form) || bytes.Contains(hdr.Bytes(), form) {
							t.Errorf("GET /%s shows %s", p, s.label)
						}
					}
				}
			}
			t.Logf("%s: %d pages read in the browser, %d answers searched for %d secrets", party, len(visited), len(apis), len(secrets))
		})
	}

	// Requests that must fail.
	a := filepath.Join(dir, "mnoa", "resub.yaml")
	base := serveCLI(t, "serve", "--config", a, "--http", "127.0.0.1:0")
	for _, m := range []string{http.MethodPost, http.MethodPut, http.MethodDelete} {
		req, _ := http.NewRequest(m, base+"api/overview", strings.NewReader("{}"))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusMethodNotAllowed {
			t.Errorf("%s: %d", m, resp.StatusCode)
		}
	}
	if resp, err := http.Get(base + "etc/passwd"); err != nil || resp.StatusCode != http.StatusNotFound {
		t.Errorf("a path outside the routes: %v %v", resp, err)
	}
	if code, _, e := runCLI(t, "serve", "--config", a, "--http", "0.0.0.0:0"); code != exitUsage || !strings.Contains(e, "http.password") {
		t.Errorf("a non-loopback address without auth: exit %d %s", code, e)
	}
	// With a password: a wrong one is refused, the right one answers,
	// and now every interface may be served.
	cfgText, err := os.ReadFile(a)
	if err != nil {
		t.Fatal(err)
	}
	auth := filepath.Join(dir, "mnoa", "resub-auth.yaml")
	if err := os.WriteFile(auth, append(cfgText, []byte("\nhttp:\n  password: env:RESUB_TEST_STATUS_PASSWORD\n")...), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("RESUB_TEST_STATUS_PASSWORD", "status-page-password-1")
	if code, o, e := runCLI(t, "config", "check", "--config", auth); code != exitOK {
		t.Fatalf("config with http.password: %d %s %s", code, o, e)
	}
	abase := serveCLI(t, "serve", "--config", auth, "--http", "127.0.0.1:0")
	for _, tc := range []struct {
		user, pw string
		want     int
	}{{"resub", "wrong", 401}, {"resub", "", 401}, {"resub", "status-page-password-1", 200}} {
		req, _ := http.NewRequest(http.MethodGet, abase, nil)
		req.SetBasicAuth(tc.user, tc.pw)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.want || bytes.Contains(body, []byte("status-page-password-1")) {
			t.Errorf("password %q: %d, want %d", tc.pw, resp.StatusCode, tc.want)
		}
	}
	serveCLI(t, "serve", "--config", auth, "--http", "0.0.0.0:0")

	// Behind the daemon: the page and /metrics on one listener.
	dbase := serveCLI(t, "run", "--config", a, "--http", "127.0.0.1:0")
	for _, p := range []string{"", "metrics", "api/overview"} {
		resp, err := http.Get(dbase + p)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || (p == "metrics" && !bytes.Contains(body, []byte("resub_"))) {
			t.Errorf("daemon /%s: %d\n%.300s", p, resp.StatusCode, body)
		}
	}
	// With its own address, /metrics is not on the page's listener.
	dbase = serveCLI(t, "run", "--config", a, "--http", "127.0.0.1:0", "--metrics-addr", "127.0.0.1:0")
	if resp, err := http.Get(dbase + "metrics"); err != nil || resp.StatusCode != http.StatusNotFound {
		t.Errorf("/metrics on the page's listener with --metrics-addr: %v %v", resp, err)
	}
}

func TestServeUsage(t *testing.T) {
	for _, args := range [][]string{
		{"serve"},
		{"serve", "--config", "x.yaml", "extra"},
		{"run", "--config", "x.yaml", "--once", "--http", "127.0.0.1:0"},
		{"run", "--config", "x.yaml", "--dry-run", "--http", "127.0.0.1:0"},
	} {
		if code, _, e := runCLI(t, args...); code != exitUsage {
			t.Errorf("resub %s: exit %d %s", strings.Join(args, " "), code, e)
		}
	}
}

func screenshot(t *testing.T, ctx context.Context, url string) []byte {
	t.Helper()
	if err := chromedp.Do(ctx, chromedp.Navigate(url), chromedp.WaitReady(chromedp.CSS("footer"))); err != nil {
		t.Fatal(err)
	}
	shot, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(shot))
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	if b := img.Bounds(); b.Dx() < 1000 || b.Dy() < 800 {
		t.Fatalf("screenshot of %v", b)
	}
	return shot
}

// tableHas reports whether a row of rows has v in column col.
func tableHas(rows [][]string, col int, v string) bool {
	for _, r := range rows {
		if col < len(r) && r[col] == v {
			return true
		}
	}
	return false
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// cliCounts is `resub cards --config FILE`: state → count, and total.
func cliCounts(t *testing.T, cfg string) map[string]int {
	t.Helper()
	code, out, e := runCLI(t, "cards", "--config", cfg)
	if code != exitOK {
		t.Fatalf("resub cards: %d %s", code, e)
	}
	m := map[string]int{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.Fields(line)
		n, err := strconv.Atoi(f[len(f)-1])
		if len(f) != 2 || err != nil {
			t.Fatalf("resub cards: %q", line)
		}
		m[f[0]] = n
	}
	return m
}

type cliBatch struct {
	cols []string // BATCH JOB PARTNER KIND STATUS RECORDS ACCEPTED REJECTED
	file string
}

type cliFile struct{ id, dir, partner, status, name, reason string }

// cliBatches is `resub batches --config FILE`, read by its columns.
func cliBatches(t *testing.T, cfg string) struct {
	batches []cliBatch
	files   []cliFile
} {
	t.Helper()
	code, out, e := runCLI(t, "batches", "--config", cfg, "--limit", "1000")
	if code != exitOK {
		t.Fatalf("resub batches: %d %s", code, e)
	}
	var r struct {
		batches []cliBatch
		files   []cliFile
	}
	sc := bufio.NewScanner(strings.NewReader(out))
	section := ""
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "BATCH "):
			section = "b"
			continue
		case strings.HasPrefix(line, "FILE "):
			section = "f"
			continue
		case strings.TrimSpace(line) == "":
			continue
		}
		// Fixed columns as runBatches prints them.
		col := func(from, to int) string {
			if from >= len(line) {
				return ""
			}
			return strings.TrimSpace(line[from:min(to, len(line))])
		}
		if section == "b" {
			cols := []string{col(0, 7), col(7, 28), col(28, 41), col(41, 64), col(64, 73), col(73, 82), col(82, 91), col(91, 100)}
			r.batches = append(r.batches, cliBatch{cols: cols, file: col(100, len(line))})
		} else {
			r.files = append(r.files, cliFile{id: col(0, 7), dir: col(7, 12), partner: col(12, 25), status: col(25, 38), name: strings.Fields(col(38, len(line)))[0],
				reason: strings.TrimSpace(strings.TrimPrefix(col(38, len(line)), strings.Fields(col(38, len(line)))[0]))})
		}
	}
	return r
}

func fileID(s string) string {
	f := strings.Fields(strings.TrimPrefix(s, "file:"))
	if len(f) == 0 {
		return ""
	}
	return f[0]
}

// cliCard is `resub cards --config FILE ICCID`: its facts by the page's
// names, and its history lines as the page shows them.
func cliCard(t *testing.T, cfg, iccid string) (map[string]string, []string) {
	t.Helper()
	code, out, e := runCLI(t, "cards", "--config", cfg, iccid)
	if code != exitOK {
		t.Fatalf("resub cards %s: %d %s", iccid, code, e)
	}
	facts := map[string]string{}
	var history []string
	inHistory := false
	hist := regexp.MustCompile(`^  (\S+)  (\S*)\s+-> (\S*)\s*(.*)$`)
	for _, line := range strings.Split(strings.TrimRight(out, "\n"), "\n") {
		if line == "history:" {
			inHistory = true
			continue
		}
		if inHistory {
			m := hist.FindStringSubmatch(line)
			if m == nil {
				t.Fatalf("resub cards %s: history line %q", iccid, line)
			}
			at, err := time.Parse(time.RFC3339, m[1])
			if err != nil {
				t.Fatal(err)
			}
			history = append(history, strings.Join(strings.Fields(at.UTC().Format("2006-01-02 15:04:05")+" "+m[2]+" "+m[3]+" "+m[4]), " "))
			continue
		}
		for _, k := range []string{"iccid", "imsi", "msisdn", "state", "profile", "owner", "new imsi", "recipient", "cut-over", "attempts", "key index"} {
			if v, ok := strings.CutPrefix(line, k+" "); ok {
				facts[k] = v
				break
			}
		}
	}
	return facts, history
}

// cliMessages counts a card's OTA messages in the ledger.
func cliMessages(t *testing.T, cfg, iccid string) int {
	t.Helper()
	e := &env{ctx: context.Background(), io: stdio{out: io.Discard, err: io.Discard}}
	_, db, err := openLedger(e, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRow(context.Background(), `SELECT COUNT(*) FROM ota_messages WHERE iccid = ?`, iccid).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// wrappedBlobs are the party's secrets as its ledger keeps them, sealed
// under the master key: no page shows those either.
func wrappedBlobs(t *testing.T, cfg string) []pageSecret {
	t.Helper()
	e := &env{ctx: context.Background(), io: stdio{out: io.Discard, err: io.Discard}}
	_, db, err := openLedger(e, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query(context.Background(), `SELECT iccid, name, key_index, blob FROM card_secrets`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []pageSecret
	for rows.Next() {
		var iccid, name string
		var idx int
		var b []byte
		if err := rows.Scan(&iccid, &name, &idx, &b); err != nil {
			t.Fatal(err)
		}
		h := hex.EncodeToString(b)
		out = append(out, pageSecret{fmt.Sprintf("card %s %s(%d) wrapped", iccid, name, idx), [][]byte{b, []byte(h), []byte(strings.ToUpper(h)),
			[]byte(base64.StdEncoding.EncodeToString(b)), []byte(base64.RawURLEncoding.EncodeToString(b))}})
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

type pageSecret struct {
	label string
	forms [][]byte
}

// demoSecrets are the demo's secrets in the forms a page could show them:
// raw, hex in either case, base64.
func demoSecrets(t *testing.T, res *demo.Result) []pageSecret {
	t.Helper()
	var out []pageSecret
	add := func(label string, b []byte) {
		if len(b) < 8 {
			t.Fatalf("%s: too short to search for", label)
		}
		h := hex.EncodeToString(b)
		out = append(out, pageSecret{label, [][]byte{b, []byte(h), []byte(strings.ToUpper(h)),
			[]byte(base64.StdEncoding.EncodeToString(b)), []byte(base64.RawURLEncoding.EncodeToString(b))}})
	}
	for _, c := range res.Cards {
		add("card "+c.ICCID+" OPc", c.OPc)
		for i := range c.Pairs {
			ks := c.Keys(i + 1)
			add(fmt.Sprintf("card %s Ki(%d)", c.ICCID, i+1), c.Ki(i+1))
			add(fmt.Sprintf("card %s KIc(%d)", c.ICCID, i+1), ks.KIc)
			add(fmt.Sprintf("card %s KID(%d)", c.ICCID, i+1), ks.KID)
			add(fmt.Sprintf("card %s KIK(%d)", c.ICCID, i+1), ks.KIK)
		}
	}
	n := 0
	for _, kv := range os.Environ() {
		k, v, _ := strings.Cut(kv, "=")
		if !strings.HasPrefix(k, "RESUB_DEMO_") {
			continue
		}
		n++
		out = append(out, pageSecret{k + " text", [][]byte{[]byte(v)}})
		if b, err := hex.DecodeString(v); err == nil && len(b) >= 8 {
			add(k, b)
		}
	}
	if len(res.Cards) < 12 || n == 0 {
		t.Fatalf("%d cards, %d configuration secrets", len(res.Cards), n)
	}
	return out
}
