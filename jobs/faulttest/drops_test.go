package faulttest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"resub/formats/native"
	"resub/jobs"
	"resub/jobs/config"
	"resub/jobs/drop/sshdtest"
	"resub/processor/failpoint"
	"resub/samples/demo"
)

// child is `resub …` in a process of its own, its JSON log lines read as
// they come.
type child struct {
	cmd   *exec.Cmd
	mu    sync.Mutex
	lines []string
	seen  chan string // every line, for waiting on one
	done  chan struct{}
	err   error
}

func startChild(t *testing.T, st *demo.Stage, args ...string) *child {
	t.Helper()
	c := &child{seen: make(chan string, 4096), done: make(chan struct{})}
	c.cmd = exec.Command(resubBinary(t), append([]string{"--log-format", "json"}, args...)...)
	c.cmd.Env = append(os.Environ(), st.Env()...)
	stderr, err := c.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			c.mu.Lock()
			c.lines = append(c.lines, sc.Text())
			c.mu.Unlock()
			select {
			case c.seen <- sc.Text():
			default:
			}
		}
		c.err = c.cmd.Wait()
		close(c.done)
	}()
	t.Cleanup(func() {
		select {
		case <-c.done:
		default:
			c.cmd.Process.Kill()
			<-c.done
		}
	})
	return c
}

// waitLine waits for a log line containing every one of parts.
func (c *child) waitLine(t *testing.T, d time.Duration, parts ...string) string {
	t.Helper()
	timeout := time.After(d)
	for {
		select {
		case l := <-c.seen:
			ok := true
			for _, p := range parts {
				ok = ok && strings.Contains(l, p)
			}
			if ok {
				return l
			}
		case <-c.done:
			t.Fatalf("the run ended without a line with %q:\n%s", parts, c.output())
		case <-timeout:
			t.Fatalf("no line with %q within %s:\n%s", parts, d, c.output())
		}
	}
}

// has reports whether a line so far contains every one of parts.
func (c *child) has(parts ...string) bool {
	for _, l := range strings.Split(c.output(), "\n") {
		ok := true
		for _, p := range parts {
			ok = ok && strings.Contains(l, p)
		}
		if ok {
			return true
		}
	}
	return false
}

func (c *child) output() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return strings.Join(c.lines, "\n")
}

// exited waits d for the process to end.
func (c *child) exited(d time.Duration) bool {
	select {
	case <-c.done:
		return true
	case <-time.After(d):
		return false
	}
}

func (c *child) exitCode() int {
	var ee *exec.ExitError
	if errors.As(c.err, &ee) {
		return ee.ExitCode()
	}
	if c.err != nil {
		return -1
	}
	return 0
}

// count is the number of log lines whose message is msg.
func (c *child) count(msg string) int {
	n := 0
	for _, l := range strings.Split(c.output(), "\n") {
		var rec map[string]any
		if json.Unmarshal([]byte(l), &rec) == nil && rec["msg"] == msg {
			n++
		}
	}
	return n
}

// leaseHeld reports whether a lease on job is in the party's ledger.
func leaseHeld(t *testing.T, cfgPath, job string) bool {
	t.Helper()
	cfg, err := config.Load(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	db, err := jobs.OpenLedger(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRow(context.Background(), `SELECT COUNT(*) FROM leases WHERE job = ?`, job).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n > 0
}

// switchRequestName is a native name of a switch request from M2M to MNOB.
func switchRequestName(seq int) string {
	now := time.Now().UTC()
	h := &native.Header{Format: native.SwitchRequest.Name, Version: native.SwitchRequest.Version, Sender: "M2M", Receiver: "MNOB",
		BusinessDate: time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, time.UTC), Sequence: seq}
	return native.NameOf(h, "txt", true).String()
}

// TestFIFOSwappedIntoLocalInbox: in MNOB's local drop from the M2M
// operator, two listed inputs; while the run handles the first, the
// second is replaced by a FIFO. The run (`resub run --once` in a child)
// refuses the first, skips the FIFO with a log line, and ends by itself
// with its lease released. Today it blocked in open for ever, and SIGTERM
// did not end it.
func TestFIFOSwappedIntoLocalInbox(t *testing.T) {
	st := imsiListStage(t)
	inbox := st.DropDir("MNOB", "m2m", "inbox")
	first, second := switchRequestName(11), switchRequestName(12)
	// The first is large: hashing and keeping it after its download
	// leaves time to swap the second before it is opened.
	if err := os.WriteFile(filepath.Join(inbox, first), bytes.Repeat([]byte("not OpenPGP at all\n"), 48<<20/19), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(inbox, second), []byte("not OpenPGP either\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	fifo := filepath.Join(inbox, second)
	defer func() {
		// Whatever happened, nobody stays blocked on the FIFO.
		if f, err := os.OpenFile(fifo, os.O_RDWR|syscall.O_NONBLOCK, 0); err == nil {
			f.Close()
		}
	}()
	c := startChild(t, st, "run", "--once", "--job", "switch-request", "--config", st.Config("MNOB"))
	c.waitLine(t, 60*time.Second, "picked up", first)
	tmp := filepath.Join(inbox, ".fifo")
	if err := syscall.Mkfifo(tmp, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, fifo); err != nil {
		t.Fatal(err)
	}
	if !c.exited(20 * time.Second) {
		c.cmd.Process.Signal(syscall.SIGTERM)
		if !c.exited(5 * time.Second) {
			t.Fatalf("the run hangs on the FIFO, and SIGTERM did not end it:\n%s", c.output())
		}
		t.Fatalf("the run hung on the FIFO until SIGTERM:\n%s", c.output())
	}
	if code := c.exitCode(); code != 1 {
		t.Errorf("exit code %d, want 1 (the first input refused):\n%s", code, c.output())
	}
	if !c.has("input skipped: not a regular file", second) {
		t.Errorf("no log line for the skipped FIFO:\n%s", c.output())
	}
	if st, err := os.Lstat(fifo); err != nil || st.Mode().Type() != os.ModeNamedPipe {
		t.Errorf("the FIFO did not stay in the inbox: %v %v", st, err)
	}
	if leaseHeld(t, st.Config("MNOB"), "switch-request") {
		t.Error("the job's lease is still held")
	}
}

// TestSIGTERMEndsRun: `resub run --once` of MNOA's imsi-list, its SFTP
// connection (real OpenSSH behind a proxy) gone silent mid-run with long
// deadlines: SIGTERM ends the run within seconds, exit 3, with the job's
// lease released and the run recorded as failed; the next run completes.
func TestSIGTERMEndsRun(t *testing.T) {
	var px *proxy
	w := newSSHDWorld(t, func(srv *sshdtest.Server) int {
		px = newProxy(t, srv.Addr())
		return px.port()
	})
	// Long deadlines: only the signal can end the wait.
	data, err := os.ReadFile(w.cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	data = bytes.Replace(data, []byte("timeout: 1s"), []byte("timeout: 5m"), 1)
	data = bytes.Replace(data, []byte("keepalive: 300ms"), []byte("keepalive: 5m"), 1)
	if err := os.WriteFile(w.cfgPath, data, 0o600); err != nil {
		t.Fatal(err)
	}
	c := startChild(t, w.st, "run", "--once", "--job", "imsi-list", "--config", w.cfgPath)
	c.waitLine(t, 60*time.Second, "output written")
	px.stall()
	time.Sleep(300 * time.Millisecond)
	sent := time.Now()
	c.cmd.Process.Signal(syscall.SIGTERM)
	if !c.exited(15 * time.Second) {
		t.Fatalf("SIGTERM did not end the run within 15s:\n%s", c.output())
	}
	took := time.Since(sent)
	t.Logf("ended %s after SIGTERM", took.Round(time.Millisecond))
	if code := c.exitCode(); code != 3 {
		t.Errorf("exit code %d, want 3:\n%s", code, c.output())
	}
	if leaseHeld(t, w.cfgPath, "imsi-list") {
		t.Error("the job's lease is still held")
	}
	rt := w.open(t, nil)
	if _, err := rt.RunJob(context.Background(), "imsi-list", jobs.RunOptions{Manual: true}); err != nil {
		t.Fatalf("next run: %v", err)
	}
	w.checkDone(t, rt)
}

// recorder is a slog handler that keeps every record with the logger's
// attributes.
type recorder struct {
	mu    *sync.Mutex
	attrs []slog.Attr
	recs  *[]map[string]string
	hook  func(msg string, attrs map[string]string)
}

func newRecorder(hook func(string, map[string]string)) *recorder {
	return &recorder{mu: &sync.Mutex{}, recs: &[]map[string]string{}, hook: hook}
}

func (r *recorder) Enabled(context.Context, slog.Level) bool { return true }
func (r *recorder) Handle(_ context.Context, rec slog.Record) error {
	m := map[string]string{"msg": rec.Message}
	for _, a := range r.attrs {
		m[a.Key] = a.Value.String()
	}
	rec.Attrs(func(a slog.Attr) bool { m[a.Key] = a.Value.String(); return true })
	r.mu.Lock()
	*r.recs = append(*r.recs, m)
	r.mu.Unlock()
	if r.hook != nil {
		r.hook(rec.Message, m)
	}
	return nil
}
func (r *recorder) WithAttrs(as []slog.Attr) slog.Handler {
	c := *r
	c.attrs = append(append([]slog.Attr(nil), r.attrs...), as...)
	return &c
}
func (r *recorder) WithGroup(string) slog.Handler { return r }

func (r *recorder) find(msg string) []map[string]string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []map[string]string
	for _, m := range *r.recs {
		if m["msg"] == msg {
			out = append(out, m)
		}
	}
	return out
}

// openWithLog opens a staged party's runtime (configuration edited by
// edit) with a recording logger.
func openWithLog(t *testing.T, st *demo.Stage, party string, edit func(map[string]any), rec *recorder) *jobs.Runtime {
	t.Helper()
	openParty(t, st, party, edit).Close()
	path := st.Config(party)
	if edit != nil {
		path = filepath.Join(filepath.Dir(path), "resub-edited.yaml")
	}
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	rt, err := jobs.Open(context.Background(), cfg, jobs.Options{Log: slog.New(rec)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rt.Close() })
	return rt
}

// TestInputReplacedBeforeArchive: MNOB replaces its imsi-list on the
// drop while MNOA processes it. The run answers the list it read, moves
// nothing to the archive, logs the replacement, and leaves the new file
// in the inbox; the next run reads it as a new input (here refused: its
// bytes are not a valid signed file), so nothing is lost. Today the
// replacement, never read, was archived as the processed file.
func TestInputReplacedBeforeArchive(t *testing.T) {
	ctx := context.Background()
	st := imsiListStage(t)
	inbox := st.Exchange("MNOB-to-MNOA")
	names, err := demo.Files(inbox)
	if err != nil || len(names) != 1 {
		t.Fatalf("staged inbox: %v %v", names, err)
	}
	name := names[0]
	original, err := os.ReadFile(filepath.Join(inbox, name))
	if err != nil {
		t.Fatal(err)
	}
	replacement := append(append([]byte(nil), original...), "appended by the partner"...)
	replaced := false
	rec := newRecorder(func(msg string, a map[string]string) {
		if msg == "input applied" && a["file"] == name && !replaced {
			replaced = true
			tmp := filepath.Join(inbox, ".replacement")
			if err := os.WriteFile(tmp, replacement, 0o600); err != nil {
				t.Error(err)
			}
			if err := os.Rename(tmp, filepath.Join(inbox, name)); err != nil {
				t.Error(err)
			}
		}
	})
	rt := openWithLog(t, st, "MNOA", nil, rec)
	sum, err := rt.RunJob(ctx, "imsi-list", jobs.RunOptions{Manual: true})
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	if !replaced {
		t.Fatal("the input was never applied")
	}
	if sum.Files != 1 || sum.Delivered != 2 {
		t.Errorf("summary: %s", sum)
	}
	if archived, _ := demo.Files(st.Exchange("archive", "MNOA", "MNOB")); len(archived) != 0 {
		t.Errorf("archived %v: the replacement was moved under the processed file's name", archived)
	}
	if got, err := os.ReadFile(filepath.Join(inbox, name)); err != nil || !bytes.Equal(got, replacement) {
		t.Errorf("the replacement is not in the inbox: %v", err)
	}
	if lines := rec.find("input replaced on the drop after it was read; the new file stays in the inbox for the next run, nothing moved to archive"); len(lines) != 1 ||
		lines[0]["file"] != name || lines[0]["job"] != "imsi-list" {
		t.Errorf("replacement logged as %v", lines)
	}
	if lines := rec.find("archived"); len(lines) != 0 {
		t.Errorf("archive logged: %v", lines)
	}
	// The next run reads the replacement as a new input.
	_, err = rt.RunJob(ctx, "imsi-list", jobs.RunOptions{Manual: true})
	var refused *jobs.RefusedError
	if !errors.As(err, &refused) {
		t.Fatalf("next run: %v; want the replacement refused", err)
	}
	var status string
	if err := rt.Ledger.QueryRow(ctx, `SELECT status FROM files WHERE name = ? ORDER BY id LIMIT 1`, name).Scan(&status); err != nil || status != "done" {
		t.Errorf("the processed input: %q %v; want done", status, err)
	}
	if q, _ := demo.Files(st.Exchange("quarantine", "MNOA", "MNOB")); len(q) != 1 {
		t.Errorf("quarantine on the drop: %v; want the replacement", q)
	}
}

// TestOversizedCiphertext: an input listed larger than
// limits.max_ciphertext_bytes is refused without being downloaded: it
// goes to the drop's quarantine, nothing lands in scratch or in the local
// quarantine, and the run says so (exit 1).
func TestOversizedCiphertext(t *testing.T) {
	ctx := context.Background()
	st := imsiListStage(t)
	inbox := st.Exchange("MNOB-to-MNOA")
	names, err := demo.Files(inbox)
	if err != nil || len(names) != 1 {
		t.Fatalf("staged inbox: %v %v", names, err)
	}
	legit := names[0]
	st0, err := os.Stat(filepath.Join(inbox, legit))
	if err != nil {
		t.Fatal(err)
	}
	// The staged list fits; a 4 MiB one does not.
	limit := st0.Size() + 1024
	big := strings.Replace(legit, "_000001.", "_000002.", 1)
	if big == legit {
		t.Fatalf("cannot derive a second name from %s", legit)
	}
	f, err := os.Create(filepath.Join(inbox, big))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.CopyN(f, zeroReader{}, 4<<20); err != nil {
		t.Fatal(err)
	}
	f.Close()
	rec := newRecorder(nil)
	rt := openWithLog(t, st, "MNOA", func(cfg map[string]any) {
		cfg["limits"] = map[string]any{"max_ciphertext_bytes": limit}
	}, rec)
	sum, err := rt.RunJob(ctx, "imsi-list", jobs.RunOptions{Manual: true})
	var refused *jobs.RefusedError
	if !errors.As(err, &refused) || !strings.Contains(err.Error(), "max_ciphertext_bytes") {
		t.Fatalf("run: %v; want the big input refused for its size", err)
	}
	if sum.Quarantined != 1 || sum.Files != 2 {
		t.Errorf("summary: %s", sum)
	}
	if _, err := os.Stat(st.Exchange("quarantine", "MNOA", "MNOB", big)); err != nil {
		t.Errorf("not quarantined on the drop: %v", err)
	}
	if lines := rec.find("picked up"); len(lines) != 1 || lines[0]["file"] != legit {
		t.Errorf("picked up: %v; want only %s", lines, legit)
	}
	cfg := rt.Cfg
	for _, dir := range []string{filepath.Join(cfg.DataDir, "scratch"), filepath.Join(cfg.DataDir, "quarantine")} {
		entries, _ := os.ReadDir(dir)
		for _, e := range entries {
			if strings.Contains(e.Name(), big) {
				t.Errorf("%s holds %s", dir, e.Name())
			}
		}
	}
	if lines := rec.find("input refused without download: 4194304 bytes listed, larger than limits.max_ciphertext_bytes (" +
		itoa(limit) + " bytes); moved to quarantine on the drop"); len(lines) != 1 {
		t.Errorf("no log line for the refusal")
	}
	// Recorded as a quarantined input, by name and listed size.
	id := checkRefusedUnread(t, rt, st, big, 4194304, "4194304 bytes listed, larger than limits.max_ciphertext_bytes ("+itoa(limit)+" bytes)")
	// Reprocessing says how: nothing of it was downloaded.
	_, err = rt.Reprocess(ctx, "file:"+itoa(id))
	if err == nil || !strings.Contains(err.Error(), "Raise limits.max_ciphertext_bytes above 4194304 bytes") ||
		!strings.Contains(err.Error(), "move "+big+" from the quarantine folder of partner mno-b's drop back to its inbox") {
		t.Errorf("reprocess: %v", err)
	}
	// Done so, after the limit is raised: the input is read in full
	// (here refused: zeros are no signed file), and the record of the
	// unread refusal is closed.
	if err := os.Rename(st.Exchange("quarantine", "MNOA", "MNOB", big), filepath.Join(inbox, big)); err != nil {
		t.Fatal(err)
	}
	rt.Close()
	rt = openWithLog(t, st, "MNOA", func(cfg map[string]any) {
		cfg["limits"] = map[string]any{"max_ciphertext_bytes": 8 << 20}
	}, newRecorder(nil))
	if _, err := rt.RunJob(ctx, "imsi-list", jobs.RunOptions{Manual: true}); !errors.As(err, &refused) || strings.Contains(err.Error(), "max_ciphertext_bytes") {
		t.Fatalf("run after raising the limit: %v; want the input read and refused for its content", err)
	}
	row, err := rt.Ledger.FileByID(ctx, id)
	if err != nil || row.Status != "done" || !strings.Contains(row.Reason, "then read in full as file ") {
		t.Errorf("the unread refusal's record: %+v %v; want closed", row, err)
	}
}

// checkRefusedUnread checks that MNOA recorded the input name, refused
// unread, as quarantined with its listed size and reason, and answered
// MNOB once with a refusal naming it by name and size. It returns the
// input's file ID.
func checkRefusedUnread(t *testing.T, rt *jobs.Runtime, st *demo.Stage, name string, size int64, reason string) int64 {
	t.Helper()
	ctx := context.Background()
	fs, err := rt.Ledger.Files(ctx, "quarantined", 100)
	if err != nil {
		t.Fatal(err)
	}
	var id int64
	for _, f := range fs {
		if f.Direction == "in" && f.Name == name {
			id = f.ID
			if f.SHA256 != "" || f.Size != size || f.Reason != reason {
				t.Errorf("ledger: %+v; want size %d, no SHA-256, reason %q", f, size, reason)
			}
		}
	}
	if id == 0 {
		t.Fatalf("%s not in the ledger's quarantined files: %+v", name, fs)
	}
	answers := 0
	out := st.Exchange("MNOA-to-MNOB")
	names, _ := demo.Files(out)
	for _, n := range names {
		if !strings.Contains(n, "_imsi-result_") {
			continue
		}
		rc, err := st.Open(filepath.Join(out, n), "MNOA", "MNOB")
		if err != nil {
			t.Fatalf("%s: %v", n, err)
		}
		data, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
		text := string(data)
		if !strings.Contains(text, "#in-reply-to: "+name+"\n") {
			continue
		}
		answers++
		if !strings.Contains(text, "#in-reply-to-size: "+itoa(size)+"\n") || !strings.Contains(text, "#refused: "+reason+"\n") ||
			strings.Contains(text, "in-reply-to-sha256") || !strings.Contains(text, "#quantity: 0\n") {
			t.Errorf("answer %s:\n%s", n, text)
		}
	}
	if answers != 1 {
		t.Errorf("%d refusals of %s sent to MNOB; want 1", answers, name)
	}
	return id
}

// TestOversizedRefusalAnsweredOnce: the run that refuses an input for its
// size is killed after the refusal was answered, before the input was
// moved to quarantine. The rerun finds it still listed, resumes the
// refusal without answering again, and moves it.
func TestOversizedRefusalAnsweredOnce(t *testing.T) {
	ctx := context.Background()
	st := imsiListStage(t)
	resub := resubBinary(t)
	inbox := st.Exchange("MNOB-to-MNOA")
	names, err := demo.Files(inbox)
	if err != nil || len(names) != 1 {
		t.Fatalf("staged inbox: %v %v", names, err)
	}
	legit := names[0]
	st0, err := os.Stat(filepath.Join(inbox, legit))
	if err != nil {
		t.Fatal(err)
	}
	limit := st0.Size() + 1024
	big := strings.Replace(legit, "_000001.", "_000002.", 1)
	f, err := os.Create(filepath.Join(inbox, big))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.CopyN(f, zeroReader{}, 1<<20); err != nil {
		t.Fatal(err)
	}
	f.Close()
	edit := func(cfg map[string]any) { cfg["limits"] = map[string]any{"max_ciphertext_bytes": limit} }
	openParty(t, st, "MNOA", edit).Close()
	cfgPath := filepath.Join(filepath.Dir(st.Config("MNOA")), "resub-edited.yaml")
	cmd := exec.Command(resub, "run", "--once", "--job", "imsi-list", "--config", cfgPath)
	cmd.Env = append(append(os.Environ(), st.Env()...), failpoint.Env+"="+failpoint.BeforeQuarantine)
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("run: %v; want killed at %s\n%s", err, failpoint.BeforeQuarantine, out)
	}
	if _, err := os.Stat(filepath.Join(inbox, big)); err != nil {
		t.Fatalf("killed before the move, yet the input left the inbox: %v", err)
	}
	rt := openWithLog(t, st, "MNOA", edit, newRecorder(nil))
	sum, err := rt.RunJob(ctx, "imsi-list", jobs.RunOptions{Manual: true})
	var refused *jobs.RefusedError
	if !errors.As(err, &refused) || sum.Quarantined != 1 {
		t.Fatalf("rerun: %v (%v); want the refusal resumed", err, sum)
	}
	if _, err := os.Stat(st.Exchange("quarantine", "MNOA", "MNOB", big)); err != nil {
		t.Errorf("not quarantined on the drop: %v", err)
	}
	checkRefusedUnread(t, rt, st, big, 1<<20, "1048576 bytes listed, larger than limits.max_ciphertext_bytes ("+itoa(limit)+" bytes)")
}

// TestCiphertextGrowingPastTheLimit: an input listed under
// limits.max_ciphertext_bytes has grown past it when it is read: the
// download stops at the limit (nothing left in scratch), and the input
// is refused and quarantined on the drop.
func TestCiphertextGrowingPastTheLimit(t *testing.T) {
	ctx := context.Background()
	st := imsiListStage(t)
	inbox := st.Exchange("MNOB-to-MNOA")
	names, err := demo.Files(inbox)
	if err != nil || len(names) != 1 {
		t.Fatalf("staged inbox: %v %v", names, err)
	}
	legit := names[0]
	st0, err := os.Stat(filepath.Join(inbox, legit))
	if err != nil {
		t.Fatal(err)
	}
	limit := st0.Size() + 1024
	grows := strings.Replace(legit, "_000001.", "_000002.", 1)
	if err := os.WriteFile(filepath.Join(inbox, grows), []byte("small at first"), 0o600); err != nil {
		t.Fatal(err)
	}
	grown := false
	rec := newRecorder(func(msg string, a map[string]string) {
		if msg == "picked up" && a["file"] == legit && !grown {
			grown = true
			f, err := os.OpenFile(filepath.Join(inbox, grows), os.O_WRONLY|os.O_APPEND, 0)
			if err != nil {
				t.Error(err)
				return
			}
			io.CopyN(f, zeroReader{}, 4<<20)
			f.Close()
		}
	})
	rt := openWithLog(t, st, "MNOA", func(cfg map[string]any) {
		cfg["limits"] = map[string]any{"max_ciphertext_bytes": limit}
	}, rec)
	sum, err := rt.RunJob(ctx, "imsi-list", jobs.RunOptions{Manual: true})
	var refused *jobs.RefusedError
	if !grown || !errors.As(err, &refused) || !strings.Contains(err.Error(), "max_ciphertext_bytes") || sum.Quarantined != 1 {
		t.Fatalf("run: %v (%v, grown: %v); want the grown input refused for its size", err, sum, grown)
	}
	if lines := rec.find("picked up"); len(lines) != 1 {
		t.Errorf("picked up: %v; want only %s", lines, legit)
	}
	if entries, _ := os.ReadDir(filepath.Join(rt.Cfg.DataDir, "scratch")); len(entries) != 0 {
		t.Errorf("scratch holds %d files", len(entries))
	}
	if _, err := os.Stat(st.Exchange("quarantine", "MNOA", "MNOB", grows)); err != nil {
		t.Errorf("not quarantined on the drop: %v", err)
	}
	reason := "14 bytes listed, grew past limits.max_ciphertext_bytes (" + itoa(limit) + " bytes) while read"
	if lines := rec.find("input refused: " + reason + ", the download stopped there; moved to quarantine on the drop"); len(lines) != 1 {
		t.Error("no log line for the refusal")
	}
	checkRefusedUnread(t, rt, st, grows, 14, reason)
}

type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

func itoa(n int64) string {
	b, _ := json.Marshal(n)
	return string(b)
}

// TestLocalQuarantineBounded: with limits.quarantine_max_files 2, three
// refused inputs leave the two newest copies in DATA_DIR/quarantine; the
// oldest is pruned with a log line, `resub batches --status quarantined`
// still lists all three, and reprocessing the pruned one says where the
// input still is.
func TestLocalQuarantineBounded(t *testing.T) {
	ctx := context.Background()
	st := imsiListStage(t)
	inbox := st.Exchange("MNOB-to-MNOA")
	rec := newRecorder(nil)
	rt := openWithLog(t, st, "MNOA", func(cfg map[string]any) {
		cfg["limits"] = map[string]any{"quarantine_max_files": 2}
	}, rec)
	names, _ := demo.Files(inbox)
	for _, n := range names {
		os.Remove(filepath.Join(inbox, n))
	}
	var junk []string
	for i := range 3 {
		n := strings.Replace(names[0], "_000001.", "_00000"+string(rune('2'+i))+".", 1)
		junk = append(junk, n)
		if err := os.WriteFile(filepath.Join(inbox, n), bytes.Repeat([]byte{byte('a' + i)}, 100+i), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := rt.RunJob(ctx, "imsi-list", jobs.RunOptions{Manual: true}); err == nil {
			t.Fatal("junk accepted")
		}
	}
	copies, _ := os.ReadDir(filepath.Join(rt.Cfg.DataDir, "quarantine"))
	var kept []string
	for _, e := range copies {
		if e.Type().IsRegular() {
			kept = append(kept, e.Name())
		}
	}
	if len(kept) != 2 || !strings.HasSuffix(kept[0], "--"+junk[1]) && !strings.HasSuffix(kept[1], "--"+junk[1]) ||
		!strings.HasSuffix(kept[0], "--"+junk[2]) && !strings.HasSuffix(kept[1], "--"+junk[2]) {
		t.Errorf("local quarantine holds %v; want the copies of %s and %s", kept, junk[1], junk[2])
	}
	pruned := rec.find("local quarantine full: oldest copy pruned (the input stays in the drop's quarantine folder)")
	if len(pruned) != 1 || !strings.HasSuffix(pruned[0]["copy"], junk[0]) {
		t.Errorf("pruning logged as %v", pruned)
	}
	out, err := exec.Command(resubBinary(t), "batches", "--config", rt.Cfg.Path(), "--status", "quarantined").CombinedOutput()
	if err != nil {
		t.Fatalf("batches: %v\n%s", err, out)
	}
	for _, n := range junk {
		if !bytes.Contains(out, []byte(n)) {
			t.Errorf("batches --status quarantined does not list %s:\n%s", n, out)
		}
	}
	var id int64
	if err := rt.Ledger.QueryRow(ctx, `SELECT id FROM files WHERE name = ?`, junk[0]).Scan(&id); err != nil {
		t.Fatal(err)
	}
	if _, err := rt.Reprocess(ctx, "file:"+itoa(id)); err == nil || !strings.Contains(err.Error(), "pruned") || !strings.Contains(err.Error(), junk[0]) {
		t.Errorf("reprocess of the pruned copy: %v", err)
	}
}

// TestDropLogsNameTheirJob: the partner's drop is opened by one job and
// then used by another: each one's log lines carry its own job. Today
// every line carried the job that opened the drop first.
func TestDropLogsNameTheirJob(t *testing.T) {
	ctx := context.Background()
	st := imsiListStage(t)
	rec := newRecorder(nil)
	rt := openWithLog(t, st, "MNOA", nil, rec)
	first, err := rt.Drop("mno-b", "imsi-list")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := first.List(ctx); err != nil {
		t.Fatal(err)
	}
	d, err := rt.Drop("mno-b", "handover-ack")
	if err != nil {
		t.Fatal(err)
	}
	const name = "MNOA_MNOB_probe.txt"
	if err := d.Put(ctx, name, strings.NewReader("probe"), 5); err != nil {
		t.Fatal(err)
	}
	defer os.Remove(st.Exchange("MNOA-to-MNOB", name))
	lines := rec.find("delivered")
	if len(lines) != 1 || lines[0]["job"] != "handover-ack" || lines[0]["partner"] != "mno-b" || lines[0]["file"] != name {
		t.Errorf("delivered logged as %v; want job handover-ack, file %s unquoted", lines, name)
	}
}

// TestDaemonLogsStartAndStopOnce: `resub run` (the daemon) says "daemon
// started" and "daemon stopped" once each. Today each came twice.
func TestDaemonLogsStartAndStopOnce(t *testing.T) {
	st := imsiListStage(t)
	c := startChild(t, st, "run", "--config", st.Config("MNOA"))
	c.waitLine(t, 30*time.Second, "daemon started")
	time.Sleep(200 * time.Millisecond)
	c.cmd.Process.Signal(syscall.SIGTERM)
	if !c.exited(30 * time.Second) {
		t.Fatalf("the daemon did not stop:\n%s", c.output())
	}
	if s, e := c.count("daemon started"), c.count("daemon stopped"); s != 1 || e != 1 {
		t.Errorf("daemon started %d times, stopped %d times; want once each:\n%s", s, e, c.output())
	}
}
