package faulttest

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"go.yaml.in/yaml/v3"
	"golang.org/x/crypto/ssh/knownhosts"

	"resub/jobs"
	"resub/jobs/config"
	"resub/jobs/drop"
	"resub/jobs/drop/sshdtest"
	"resub/samples/demo"
)

// sshdWorld is MNOA of a staged world whose drop with MNOB is a folder
// on a real OpenSSH server, with MNOB's imsi-list waiting in its inbox.
type sshdWorld struct {
	st       *demo.Stage
	srv      *sshdtest.Server
	cfgPath  string
	listName string
}

// portFor, if set, gives the port the job dials instead of sshd's.
func newSSHDWorld(t *testing.T, portFor func(*sshdtest.Server) int) *sshdWorld {
	t.Helper()
	srv := sshdtest.Start(t)
	st := imsiListStage(t)
	w := &sshdWorld{st: st, srv: srv}
	names, err := demo.Files(st.Exchange("MNOB-to-MNOA"))
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		if strings.Contains(n, "_imsi-list_") {
			w.listName = n
		}
	}
	if w.listName == "" {
		t.Fatal("no imsi-list staged")
	}
	data, err := os.ReadFile(st.Exchange("MNOB-to-MNOA", w.listName))
	if err != nil {
		t.Fatal(err)
	}
	srv.WriteFile("inbox", w.listName, data)
	port := srv.Port
	if portFor != nil {
		port = portFor(srv)
	}
	w.cfgPath = w.config(t, port)
	return w
}

// config rewrites MNOA's configuration: the drop with MNOB on sshd (or
// whatever listens on port), with short network deadlines.
func (w *sshdWorld) config(t *testing.T, port int) string {
	t.Helper()
	data, err := os.ReadFile(w.st.Config("MNOA"))
	if err != nil {
		t.Fatal(err)
	}
	var cfg map[string]any
	if err := yaml.Unmarshal(data, &cfg); err != nil {
		t.Fatal(err)
	}
	known := filepath.Join(t.TempDir(), "known_hosts")
	line := knownhosts.Line([]string{knownhosts.Normalize(net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))}, w.srv.HostKey)
	if err := os.WriteFile(known, []byte(line+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	key := filepath.Join(t.TempDir(), "id_ed25519")
	if err := os.WriteFile(key, w.srv.ClientKey, 0o600); err != nil {
		t.Fatal(err)
	}
	mnob := cfg["partners"].(map[string]any)["mno-b"].(map[string]any)
	mnob["drop"] = map[string]any{
		"sftp": map[string]any{"host": "127.0.0.1", "port": port, "user": sshdtest.User, "private_key": key,
			"known_hosts": known, "timeout": "1s", "keepalive": "300ms"},
		"inbox": "/inbox", "outbox": "/outbox", "archive": "/archive", "quarantine": "/quarantine",
		"patterns": []string{"MNOB_MNOA_*"}, "stable": "20ms",
	}
	out, err := yaml.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(filepath.Dir(w.st.Config("MNOA")), "resub-sshd.yaml")
	if err := os.WriteFile(path, out, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// open opens MNOA's runtime; hook sees every log record first.
func (w *sshdWorld) open(t *testing.T, hook func(slog.Record)) *jobs.Runtime {
	t.Helper()
	cfg, err := config.Load(w.cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	rt, err := jobs.Open(context.Background(), cfg, jobs.Options{Log: slog.New(&hookHandler{hook: hook})})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rt.Close() })
	return rt
}

// checkDone asserts the list was handled once: the imsi-result once on
// the server, the input archived once, the OTA batch once, nothing
// quarantined, the input done in the ledger.
func (w *sshdWorld) checkDone(t *testing.T, rt *jobs.Runtime) {
	t.Helper()
	count := func(dir, typ string) int {
		names, err := demo.Files(dir)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, name := range names {
			if strings.Contains(name, "_"+typ+"_") {
				n++
			}
		}
		return n
	}
	for _, c := range []struct {
		dir, typ string
		want     int
	}{
		{w.srv.Path("outbox"), "imsi-result", 1},
		{w.srv.Path("archive"), "imsi-list", 1},
		{w.srv.Path("inbox"), "imsi-list", 0},
		{w.srv.Path("quarantine"), "imsi-list", 0},
		{w.st.DropDir("MNOA", "smsc", "outbox"), "ota-batch", 1},
	} {
		if got := count(c.dir, c.typ); got != c.want {
			t.Errorf("%s: %d %s files, want %d", c.dir, got, c.typ, c.want)
		}
	}
	var status string
	err := rt.Ledger.QueryRow(context.Background(), `SELECT status FROM files WHERE name = ?`, w.listName).Scan(&status)
	if err != nil || status != "done" {
		t.Errorf("input in the ledger: %q, %v; want done", status, err)
	}
	var pending int
	rt.Ledger.QueryRow(context.Background(), `SELECT COUNT(*) FROM outputs WHERE state <> 'delivered'`).Scan(&pending)
	if pending != 0 {
		t.Errorf("%d outputs not delivered", pending)
	}
}

type hookHandler struct {
	mu   sync.Mutex
	hook func(slog.Record)
}

func (h *hookHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *hookHandler) Handle(_ context.Context, r slog.Record) error {
	if h.hook != nil {
		h.mu.Lock()
		defer h.mu.Unlock()
		h.hook(r)
	}
	return nil
}
func (h *hookHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *hookHandler) WithGroup(string) slog.Handler      { return h }

func attr(r slog.Record, key string) string {
	var v string
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == key {
			v = a.Value.String()
			return false
		}
		return true
	})
	return v
}

// TestSSHDRestartedDuringPickup: sshd is down when the job starts its
// pickup; it comes back while the drop is retrying, and the same run
// picks the list up, answers and archives it once.
func TestSSHDRestartedDuringPickup(t *testing.T) {
	w := newSSHDWorld(t, nil)
	w.srv.Kill()
	var retries int
	rt := w.open(t, func(r slog.Record) {
		if r.Message == "drop retry" {
			retries++
			if retries == 1 {
				w.srv.Restart()
			}
		}
	})
	sum, err := rt.RunJob(context.Background(), "imsi-list", jobs.RunOptions{Manual: true})
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	if retries == 0 {
		t.Fatal("the drop never retried: sshd was not down")
	}
	if sum.Files != 1 || sum.Delivered != 2 {
		t.Errorf("summary: %s", sum)
	}
	w.checkDone(t, rt)
}

// TestSSHDKilledDuringDelivery: sshd dies (with its sessions) once the
// answers are rendered, before they are uploaded. While it stays down
// the run fails as temporary and leaves the input in the inbox; the
// next run, with sshd back, delivers what is pending and archives the
// input, each once. A second case restarts sshd while the drop retries:
// the same run ends well.
func TestSSHDKilledDuringDelivery(t *testing.T) {
	t.Run("down until the next run", func(t *testing.T) {
		w := newSSHDWorld(t, nil)
		killed := false
		rt := w.open(t, func(r slog.Record) {
			if r.Message == "output written" && !killed {
				killed = true
				w.srv.Kill()
			}
		})
		_, err := rt.RunJob(context.Background(), "imsi-list", jobs.RunOptions{Manual: true})
		if !killed {
			t.Fatal("no output was written")
		}
		if err == nil || !drop.IsTemporary(err) {
			t.Fatalf("run with sshd down: %v; want a temporary error", err)
		}
		w.srv.Restart()
		sum, err := rt.RunJob(context.Background(), "imsi-list", jobs.RunOptions{Manual: true})
		if err != nil {
			t.Fatalf("next run: %v", err)
		}
		if sum.Delivered == 0 {
			t.Errorf("next run delivered nothing: %s", sum)
		}
		w.checkDone(t, rt)
	})
	t.Run("back within the run", func(t *testing.T) {
		w := newSSHDWorld(t, nil)
		killed, restarted := false, false
		rt := w.open(t, func(r slog.Record) {
			switch {
			case r.Message == "output written" && !killed:
				killed = true
				w.srv.Kill()
			case r.Message == "drop retry" && killed && !restarted:
				restarted = true
				w.srv.Restart()
			}
		})
		if _, err := rt.RunJob(context.Background(), "imsi-list", jobs.RunOptions{Manual: true}); err != nil {
			t.Fatalf("run: %v", err)
		}
		if !restarted {
			t.Fatal("the delivery never retried")
		}
		w.checkDone(t, rt)
	})
}

// proxy forwards TCP to target; stall makes every open connection go
// silent (no byte either way, nothing closed); new ones still forward.
type proxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	stalls []chan struct{}
	wg     sync.WaitGroup
}

func newProxy(t *testing.T, target string) *proxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{ln: ln, target: target}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(func() { ln.Close(); p.stall(); p.wg.Wait() })
	return p
}

func (p *proxy) port() int { return p.ln.Addr().(*net.TCPAddr).Port }

func (p *proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		s, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		stall := make(chan struct{})
		p.mu.Lock()
		p.stalls = append(p.stalls, stall)
		p.mu.Unlock()
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			var cw sync.WaitGroup
			cw.Add(2)
			go func() { defer cw.Done(); pipe(c, s, stall) }()
			go func() { defer cw.Done(); pipe(s, c, stall) }()
			<-stall
			// Hold the sockets open and silent until the client gives
			// up and closes its end.
			io.Copy(io.Discard, c)
			c.Close()
			s.Close()
			cw.Wait()
		}()
	}
}

func pipe(dst, src net.Conn, stall chan struct{}) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		select {
		case <-stall:
			return
		default:
		}
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func (p *proxy) stall() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, s := range p.stalls {
		select {
		case <-s:
		default:
			close(s)
		}
	}
	p.stalls = nil
}

// TestStalledConnection: the connection goes silent (no byte, nothing
// closed) in the middle of the job; the keepalive's I/O deadline ends
// it, the drop retries on a new connection and the run ends well. A
// server that accepts TCP but never speaks SSH fails the run as
// temporary within the deadlines.
func TestStalledConnection(t *testing.T) {
	t.Run("mid-session", func(t *testing.T) {
		var px *proxy
		w := newSSHDWorld(t, func(srv *sshdtest.Server) int {
			px = newProxy(t, srv.Addr())
			return px.port()
		})
		stalled, retried := false, false
		var retryErr string
		rt := w.open(t, func(r slog.Record) {
			switch {
			case r.Message == "output written" && !stalled:
				stalled = true
				px.stall()
			case r.Message == "drop retry" && stalled && !retried:
				retried, retryErr = true, attr(r, "error")
			}
		})
		if _, err := rt.RunJob(context.Background(), "imsi-list", jobs.RunOptions{Manual: true}); err != nil {
			t.Fatalf("run: %v", err)
		}
		if !retried {
			t.Fatal("the stalled connection was never given up")
		}
		t.Logf("retried after: %s", retryErr)
		w.checkDone(t, rt)
	})
	t.Run("never speaks", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		var conns []net.Conn
		var mu sync.Mutex
		done := make(chan struct{})
		go func() {
			defer close(done)
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				mu.Lock()
				conns = append(conns, c)
				mu.Unlock()
			}
		}()
		defer func() {
			ln.Close()
			<-done
			mu.Lock()
			for _, c := range conns {
				c.Close()
			}
			mu.Unlock()
		}()
		w := newSSHDWorld(t, func(*sshdtest.Server) int { return ln.Addr().(*net.TCPAddr).Port })
		rt := w.open(t, nil)
		_, err = rt.RunJob(context.Background(), "imsi-list", jobs.RunOptions{Manual: true})
		if err == nil || !drop.IsTemporary(err) {
			t.Fatalf("run against a silent server: %v; want a temporary error", err)
		}
		if !strings.Contains(err.Error(), "timeout") && !strings.Contains(err.Error(), "deadline") {
			t.Errorf("the error does not say it timed out: %v", err)
		}
		t.Logf("error: %v", err)
	})
}

// TestReadOnlyPartnerDrop: the partner's outbox refuses writes; the run
// fails with a clear error naming the file, the input stays; once the
// folder is writable again the next run delivers and archives, once.
func TestReadOnlyPartnerDrop(t *testing.T) {
	w := newSSHDWorld(t, nil)
	out := w.srv.Path("outbox")
	if err := os.Chmod(out, 0o555); err != nil {
		t.Fatal(err)
	}
	rt := w.open(t, nil)
	_, err := rt.RunJob(context.Background(), "imsi-list", jobs.RunOptions{Manual: true})
	if err == nil {
		t.Fatal("delivery to a read-only drop succeeded")
	}
	if !strings.Contains(strings.ToLower(err.Error()), "permission denied") || !strings.Contains(err.Error(), "imsi-result") {
		t.Errorf("unclear failure: %v", err)
	}
	t.Logf("error: %v", err)
	var refused *jobs.RefusedError
	if errors.As(err, &refused) {
		t.Errorf("a delivery failure reported as a refused input: %v", err)
	}
	if err := os.Chmod(out, 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := rt.RunJob(context.Background(), "imsi-list", jobs.RunOptions{Manual: true}); err != nil {
		t.Fatalf("next run: %v", err)
	}
	w.checkDone(t, rt)
}
