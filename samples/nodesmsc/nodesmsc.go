// Package nodesmsc runs node-smpp (the npm package smpp, an SMPP
// implementation the project did not write) as an SMSC for tests: the
// script testdata/smpp/smsc.js, installed by .ci/run with npm ci. Every
// PDU it decoded is an event the test can inspect. Test-only material.
package nodesmsc

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"
)

// Server is the node-smpp server of testdata/smpp/smsc.js, run as a
// child process: what it prints is what it saw.
type Server struct {
	t      testing.TB
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	Port   int
	mu     sync.Mutex
	events []map[string]any
	notify chan struct{}
}

// Notify is signalled when events arrive.
func (n *Server) Notify() <-chan struct{} { return n.notify }

func testdataDir(t testing.TB) string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "testdata", "smpp")
}

// Start starts the server with a scenario. Without node or the
// npm package the test is skipped, except under CI (CI=true), where that
// is a failure: `.ci/run` installs both.
func Start(t testing.TB, scenario map[string]any) *Server {
	t.Helper()
	dir := testdataDir(t)
	node, err := exec.LookPath("node")
	if err == nil {
		_, err = os.Stat(filepath.Join(dir, "node_modules", "smpp", "package.json"))
	}
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("node-smpp interop test cannot run (node and testdata/smpp/node_modules are installed by .ci/run): %v", err)
		}
		t.Skipf("node-smpp not available (run `npm ci` in testdata/smpp): %v", err)
	}
	sc, _ := json.Marshal(scenario)
	cmd := exec.Command(node, filepath.Join(dir, "smsc.js"), string(sc))
	cmd.Dir = dir
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	n := &Server{t: t, cmd: cmd, stdin: stdin, notify: make(chan struct{}, 1)}
	t.Cleanup(func() {
		stdin.Close()
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	})
	go func() {
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			var ev map[string]any
			if json.Unmarshal(sc.Bytes(), &ev) != nil {
				continue
			}
			n.mu.Lock()
			n.events = append(n.events, ev)
			n.mu.Unlock()
			select {
			case n.notify <- struct{}{}:
			default:
			}
		}
	}()
	ev := n.WaitFor(func(ev map[string]any) bool { return ev["event"] == "listening" })
	n.Port = int(ev["port"].(float64))
	return n
}

// WaitFor waits for the first event that matches (10 s at most).
func (n *Server) WaitFor(match func(map[string]any) bool) map[string]any {
	n.t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		n.mu.Lock()
		for _, ev := range n.events {
			if match(ev) {
				n.mu.Unlock()
				return ev
			}
		}
		n.mu.Unlock()
		select {
		case <-n.notify:
		case <-deadline:
			n.t.Fatalf("node SMSC: event not seen; events: %v", n.All())
		}
	}
}

// All are every event so far.
func (n *Server) All() []map[string]any {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]map[string]any(nil), n.events...)
}

// PDUs are the PDUs of one command the server saw so far.
func (n *Server) PDUs(command string) []map[string]any {
	var out []map[string]any
	for _, ev := range n.All() {
		if ev["event"] == "pdu" && ev["command"] == command {
			out = append(out, ev)
		}
	}
	return out
}

// waitCount waits until the server saw at least want PDUs of command.
func (n *Server) WaitCount(command string, want int) []map[string]any {
	n.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := n.PDUs(command)
		if len(got) >= want || time.Now().After(deadline) {
			return got
		}
		select {
		case <-n.notify:
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Send writes one command line to the server.
func (n *Server) Send(v map[string]any) {
	b, _ := json.Marshal(v)
	fmt.Fprintf(n.stdin, "%s\n", b)
}

// Answer is the command_status the server answered a submit_sm event
// with (-1 when its connection closed first); ok is false while it has
// not answered yet.
func (n *Server) Answer(submit map[string]any) (status float64, ok bool) {
	closed := false
	for _, ev := range n.All() {
		if ev["event"] == "resp" && ev["conn"] == submit["conn"] && ev["sequence"] == submit["sequence"] {
			return ev["command_status"].(float64), true
		}
		if ev["event"] == "close" && ev["conn"] == submit["conn"] {
			closed = true
		}
	}
	if closed {
		return -1, true // never answered: the connection is gone
	}
	return 0, false
}
