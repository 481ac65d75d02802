package ledgertest

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"testing"
)

// Server is a PostgreSQL server of one test's own (a test that stops and
// restarts it must not share the run's server): initdb'd into a temporary
// folder, listening on 127.0.0.1 on a free port, run as the unprivileged
// postgres user when the test runs as root (PostgreSQL refuses root), and
// stopped at the end of the test.
type Server struct {
	dir, bin string
	port     int
	as       []string
}

// StartServer starts a server of the test's own.
func StartServer(t testing.TB) *Server { return startServer(t, "") }

// StartServerWithPassword starts a server whose TCP connections need the
// postgres user's password (SCRAM).
func StartServerWithPassword(t testing.TB, password string) *Server { return startServer(t, password) }

func startServer(t testing.TB, password string) *Server {
	t.Helper()
	ServerURL(t) // no server at all: fail in CI, skip elsewhere
	s := &Server{bin: serverBin()}
	if s.bin == "" {
		t.Fatal("no PostgreSQL binaries (pg_ctl) found")
	}
	dir, err := os.MkdirTemp("", "resub-pg-")
	if err != nil {
		t.Fatal(err)
	}
	s.dir = dir
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{"data", "sock"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			t.Fatalf("running as root needs the postgres user: %v", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		for _, d := range []string{dir, filepath.Join(dir, "data"), filepath.Join(dir, "sock")} {
			if err := os.Chown(d, uid, gid); err != nil {
				t.Fatal(err)
			}
		}
		s.as = []string{"runuser", "-u", "postgres", "--"}
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.port = l.Addr().(*net.TCPAddr).Port
	l.Close()
	initdb := []string{"-D", filepath.Join(dir, "data"), "-U", "postgres", "-E", "UTF8", "--locale=C.UTF-8"}
	if password == "" {
		initdb = append(initdb, "--auth=trust")
	} else {
		pwfile := filepath.Join(dir, "pwfile")
		if err := os.WriteFile(pwfile, []byte(password+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		initdb = append(initdb, "--auth-local=trust", "--auth-host=scram-sha-256", "--pwfile="+pwfile)
	}
	s.run(t, filepath.Join(s.bin, "initdb"), initdb...)
	if password != "" {
		os.Remove(filepath.Join(dir, "pwfile"))
	}
	s.Start(t)
	t.Cleanup(func() {
		cmd := s.cmd(filepath.Join(s.bin, "pg_ctl"), "-D", filepath.Join(dir, "data"), "-m", "immediate", "-w", "stop")
		_ = cmd.Run()
	})
	return s
}

// Port is the server's TCP port.
func (s *Server) Port() int { return s.port }

// URL is the server's postgres database as its superuser.
func (s *Server) URL() string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", s.port)
}

// Start starts the (stopped) server and waits until it takes connections.
func (s *Server) Start(t testing.TB) {
	t.Helper()
	s.run(t, filepath.Join(s.bin, "pg_ctl"), "-D", filepath.Join(s.dir, "data"), "-l", filepath.Join(s.dir, "server.log"), "-w", "-t", "60",
		"-o", fmt.Sprintf("-c listen_addresses=127.0.0.1 -p %d -k %s -c fsync=off -c synchronous_commit=off", s.port, filepath.Join(s.dir, "sock")),
		"start")
}

// Stop stops the server the way an operator's restart does: sessions are
// ended, open transactions rolled back.
func (s *Server) Stop(t testing.TB) {
	t.Helper()
	s.run(t, filepath.Join(s.bin, "pg_ctl"), "-D", filepath.Join(s.dir, "data"), "-m", "fast", "-w", "stop")
}

func (s *Server) cmd(name string, args ...string) *exec.Cmd {
	all := append(append(append([]string{}, s.as...), name), args...)
	cmd := exec.Command(all[0], all[1:]...)
	cmd.Dir = s.dir
	return cmd
}

func (s *Server) run(t testing.TB, name string, args ...string) {
	t.Helper()
	if out, err := s.cmd(name, args...).CombinedOutput(); err != nil {
		log, _ := os.ReadFile(filepath.Join(s.dir, "server.log"))
		t.Fatalf("%s: %v\n%s\n%s", filepath.Base(name), err, out, log)
	}
}

// serverBin finds PostgreSQL's programs: RESUB_TEST_POSTGRES_BIN, Debian's
// folder, or the PATH.
func serverBin() string {
	if d := os.Getenv("RESUB_TEST_POSTGRES_BIN"); d != "" {
		return d
	}
	if m, _ := filepath.Glob("/usr/lib/postgresql/*/bin/pg_ctl"); len(m) > 0 {
		return filepath.Dir(m[len(m)-1])
	}
	if p, err := exec.LookPath("pg_ctl"); err == nil {
		return filepath.Dir(p)
	}
	return ""
}
