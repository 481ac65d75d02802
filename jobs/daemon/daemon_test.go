package daemon_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/crypto/ssh"

	"resub/jobs/daemon"
	"resub/jobs/drop"
	"resub/jobs/drop/sftpserver"
	"resub/jobs/metrics"
	"resub/jobs/schedule"
)

// transfer is a job like the ones resub runs: pick up complete files from
// a partner's SFTP drop, deliver them to another drop, archive the input.
type transfer struct {
	name   string
	picker *drop.Picker
	from   drop.Drop
	to     drop.Drop
	ran    chan struct{}
}

func (j *transfer) Name() string { return j.name }

func (j *transfer) Run(ctx context.Context) error {
	defer func() { j.ran <- struct{}{} }()
	ready, err := j.picker.Ready(ctx)
	if err != nil {
		return err
	}
	for _, fi := range ready {
		select {
		case <-schedule.Stopping(ctx):
			return nil
		default:
		}
		rc, err := j.from.Open(ctx, fi.Name)
		if err != nil {
			return err
		}
		var buf bytes.Buffer
		_, err = io.Copy(&buf, rc)
		rc.Close()
		if err != nil {
			return err
		}
		if err := j.to.Put(ctx, fi.Name, bytes.NewReader(buf.Bytes()), int64(buf.Len())); err != nil {
			return err
		}
		if err := j.picker.Done(ctx, fi.Name, drop.Archive); err != nil {
			return err
		}
	}
	return nil
}

// flaky fails its first run.
type flaky struct {
	mu  sync.Mutex
	n   int
	ran chan struct{}
}

func (f *flaky) Name() string { return "flaky" }
func (f *flaky) Run(context.Context) error {
	f.mu.Lock()
	f.n++
	n := f.n
	f.mu.Unlock()
	defer func() { f.ran <- struct{}{} }()
	if n == 1 {
		return errors.New("partner unreachable")
	}
	return nil
}

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

func mkdirs(t *testing.T, root string) {
	for _, f := range []string{"inbox", "outbox", "archive", "quarantine"} {
		if err := os.MkdirAll(filepath.Join(root, f), 0o755); err != nil {
			t.Fatal(err)
		}
	}
}

func TestDaemon(t *testing.T) {
	srv, err := sftpserver.Start()
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	remote := t.TempDir()
	mkdirs(t, remote)
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	sp, _ := ssh.NewPublicKey(pub)
	block, _ := ssh.MarshalPrivateKey(priv, "")
	srv.AddUser("mno-a", remote, sp)
	kh := filepath.Join(t.TempDir(), "known_hosts")
	os.WriteFile(kh, []byte(srv.KnownHostsLine()+"\n"), 0o600)

	local := t.TempDir()
	mkdirs(t, local)

	logs := &syncBuffer{}
	log := slog.New(slog.NewJSONHandler(logs, nil))
	reg := prometheus.NewRegistry()
	m, err := metrics.New(reg, nil)
	if err != nil {
		t.Fatal(err)
	}

	jlog := log.With("partner", "mno-a", "job", "transfer")
	sd, err := drop.NewSFTP(drop.SFTPOptions{
		Host: "127.0.0.1", Port: srv.Port(), User: "mno-a", PrivateKey: pem.EncodeToMemory(block), KnownHosts: kh,
		Inbox: "/inbox", Outbox: "/outbox", Archive: "/archive", Quarantine: "/quarantine",
	})
	if err != nil {
		t.Fatal(err)
	}
	meter := m.Drop("mno-a", "transfer")
	from := drop.Logged(drop.Retry(sd, drop.RetryOptions{Log: jlog, Meter: meter}), jlog, meter)
	ld, err := drop.NewLocal(drop.LocalOptions{Inbox: filepath.Join(local, "inbox"), Outbox: filepath.Join(local, "outbox"),
		Archive: filepath.Join(local, "archive"), Quarantine: filepath.Join(local, "quarantine")})
	if err != nil {
		t.Fatal(err)
	}
	to := drop.Logged(ld, log.With("partner", "smsc", "job", "transfer"), m.Drop("smsc", "transfer"))
	picker, err := drop.NewPicker(from, drop.PickerOptions{Patterns: []string{"*.pgp"}, Marker: ".done"})
	if err != nil {
		t.Fatal(err)
	}
	tr := &transfer{name: "transfer", picker: picker, from: from, to: to, ran: make(chan struct{}, 100)}
	fl := &flaky{ran: make(chan struct{}, 100)}

	content := []byte("secret-looking content 0123456789")
	os.WriteFile(filepath.Join(remote, "inbox", "A_B_OTA-REPORT_20260101_000001.csv.pgp"), content, 0o644)
	os.WriteFile(filepath.Join(remote, "inbox", "A_B_OTA-REPORT_20260101_000001.csv.pgp.done"), nil, 0o644)

	d, err := daemon.New(daemon.Options{
		Jobs: []daemon.Spec{
			{Job: tr, Schedule: "@every 1s", Deadline: time.Hour},
			{Job: fl, Schedule: "@every 1s", Deadline: time.Nanosecond},
		},
		Registry: reg, Metrics: m, Log: log, MetricsAddr: "127.0.0.1:0",
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	<-tr.ran
	<-fl.ran
	<-fl.ran // the loop survived the failure

	resp, err := http.Get("http://" + d.MetricsAddr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	stopCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := d.Stop(stopCtx); err != nil {
		t.Fatal(err)
	}
	if err := d.Stop(stopCtx); err != nil {
		t.Fatalf("second Stop: %v", err)
	}

	got, err := os.ReadFile(filepath.Join(local, "outbox", "A_B_OTA-REPORT_20260101_000001.csv.pgp"))
	if err != nil || !bytes.Equal(got, content) {
		t.Fatalf("delivered %q, %v", got, err)
	}
	if _, err := os.Stat(filepath.Join(remote, "archive", "A_B_OTA-REPORT_20260101_000001.csv.pgp")); err != nil {
		t.Errorf("input not archived: %v", err)
	}
	for _, want := range []string{
		`resub_drop_events_total{event="picked_up",job="transfer",partner="mno-a"} 1`,
		`resub_drop_events_total{event="archived",job="transfer",partner="mno-a"} 1`,
		`resub_drop_events_total{event="delivered",job="transfer",partner="smsc"} 1`,
		`resub_job_runs_total{job="flaky",result="error"} 1`,
		`resub_job_overdue{job="transfer"} 0`,
		`resub_job_last_success_timestamp_seconds{job="transfer"}`,
		`resub_job_run_duration_seconds_count{job="transfer"}`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("metrics lack %s", want)
		}
	}

	// The log: one line per pickup and delivery with partner, job, file,
	// size and sha256, never the content.
	sum := sha256.Sum256(content)
	var sawPickup, sawDelivery, sawFailure bool
	for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		switch rec["msg"] {
		case "picked up", "delivered":
			if rec["msg"] == "picked up" {
				sawPickup = true
			} else {
				sawDelivery = true
			}
			if rec["job"] != "transfer" || rec["partner"] == nil || rec["file"] != "A_B_OTA-REPORT_20260101_000001.csv.pgp" ||
				rec["size"] != float64(len(content)) || rec["sha256"] != hex.EncodeToString(sum[:]) {
				t.Errorf("log line %s lacks partner, job, file, size or sha256", line)
			}
		case "job failed":
			sawFailure = rec["job"] == "flaky"
		}
	}
	if !sawPickup || !sawDelivery || !sawFailure {
		t.Errorf("log lacks pickup %v, delivery %v or failure %v:\n%s", sawPickup, sawDelivery, sawFailure, logs)
	}
	if strings.Contains(logs.String(), string(content)) {
		t.Error("file content reached the log")
	}
	if !m.Overdue("flaky") {
		// Deadline of 1ns: even its success is already too old.
		t.Error("flaky not reported overdue")
	}
}

func TestRunOnce(t *testing.T) {
	fl := &flaky{ran: make(chan struct{}, 10)}
	d, err := daemon.New(daemon.Options{Jobs: []daemon.Spec{{Job: fl, Schedule: "0 6 * * *", Zone: "Europe/Paris"}}})
	if err != nil {
		t.Fatal(err)
	}
	err = d.RunOnce(context.Background(), "")
	if err == nil || !strings.Contains(err.Error(), "partner unreachable") {
		t.Errorf("first pass: %v", err)
	}
	if err := d.RunOnce(context.Background(), "flaky"); err != nil {
		t.Errorf("second pass: %v", err)
	}
	err = d.RunOnce(context.Background(), "nope")
	var ce interface{ ConfigError() bool }
	if !errors.As(err, &ce) {
		t.Errorf("unknown job: %v, want a configuration error", err)
	}
	if e := d.Entries(); len(e) != 1 || e[0].Next.IsZero() {
		t.Errorf("Entries = %v", e)
	}
	if err := d.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func TestBadSchedule(t *testing.T) {
	_, err := daemon.New(daemon.Options{Jobs: []daemon.Spec{{Job: &flaky{}, Schedule: "61 * * * *"}}})
	var ce interface{ ConfigError() bool }
	if !errors.As(err, &ce) {
		t.Errorf("New with a bad schedule: %v, want a configuration error", err)
	}
}
