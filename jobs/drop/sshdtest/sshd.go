// Package sshdtest runs a real OpenSSH sshd for tests: its own host key
// and configuration, 127.0.0.1 on a free port, an unprivileged user
// chrooted into a folder with inbox, outbox, archive and quarantine, and
// the internal-sftp subsystem. Tests are skipped where sshd is missing or
// the test does not run as root.
package sshdtest

import (
	"bytes"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// Binary is where Debian installs sshd; sshd must be run by absolute path.
const Binary = "/usr/sbin/sshd"

// User is the unprivileged account the fixture logs in as.
const User = "resub-sftp"

// base holds the fixtures. sshd's StrictModes refuses key files below a
// group- or world-writable directory such as /tmp or /var/tmp, and a
// chroot must be root-owned at every component: /var/lib is both.
const base = "/var/lib/resub-sshdtest"

// Folders are the drop folders created in the chroot, owned by User.
var Folders = []string{"inbox", "outbox", "archive", "quarantine"}

// Server is a running sshd.
type Server struct {
	tb     testing.TB
	Dir    string // fixture folder (root-owned)
	Chroot string // the user's chroot; paths on the server are relative to it
	Port   int
	// HostKey (ed25519) and HostKeyRSA are the server's host keys. With
	// both offered, a client must ask for the type it pinned.
	HostKey, HostKeyRSA ssh.PublicKey
	// ClientKey is an ed25519 key authorised for User, in OpenSSH PEM form;
	// ClientKeyFile is the same key on disk, for OpenSSH's sftp client.
	ClientKey     []byte
	ClientKeyFile string
	uid, gid      int

	mu     sync.Mutex
	cmd    *exec.Cmd
	stderr *bytes.Buffer
}

// Start starts sshd and registers its cleanup with tb.
func Start(tb testing.TB) *Server {
	tb.Helper()
	if _, err := os.Stat(Binary); err != nil {
		tb.Skipf("no OpenSSH server at %s (install openssh-server)", Binary)
	}
	if os.Geteuid() != 0 {
		tb.Skip("a real sshd fixture needs root (it creates a user and a chroot)")
	}
	uid, gid := ensureUser(tb)
	if err := os.MkdirAll(base, 0o755); err != nil {
		tb.Fatal(err)
	}
	if err := os.MkdirAll("/run/sshd", 0o755); err != nil { // privilege separation directory
		tb.Fatal(err)
	}
	dir, err := os.MkdirTemp(base, "sshd-")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { os.RemoveAll(dir) })
	must := func(err error) {
		tb.Helper()
		if err != nil {
			tb.Fatal(err)
		}
	}
	must(os.Chmod(dir, 0o755))
	s := &Server{tb: tb, Dir: dir, Chroot: filepath.Join(dir, "chroot"), uid: uid, gid: gid}
	must(os.Mkdir(s.Chroot, 0o755))
	for _, f := range Folders {
		p := filepath.Join(s.Chroot, f)
		must(os.Mkdir(p, 0o755))
		must(os.Chown(p, uid, gid))
	}

	hostKeyFile := filepath.Join(dir, "ssh_host_ed25519_key")
	s.HostKey = writeKey(tb, hostKeyFile, nil)
	// ssh-keygen makes an RSA key far faster than Go under the race
	// detector.
	rsaHostKeyFile := filepath.Join(dir, "ssh_host_rsa_key")
	if out, err := exec.Command("ssh-keygen", "-q", "-t", "rsa", "-b", "2048", "-N", "", "-f", rsaHostKeyFile).CombinedOutput(); err != nil {
		tb.Fatalf("ssh-keygen: %v: %s", err, out)
	}
	pubText, err := os.ReadFile(rsaHostKeyFile + ".pub")
	must(err)
	s.HostKeyRSA, _, _, _, err = ssh.ParseAuthorizedKey(pubText)
	must(err)
	s.ClientKeyFile = filepath.Join(dir, "client_ed25519")
	clientPub := writeKey(tb, s.ClientKeyFile, nil)
	s.ClientKey, err = os.ReadFile(s.ClientKeyFile)
	must(err)
	must(os.WriteFile(filepath.Join(dir, "authorized_keys"), ssh.MarshalAuthorizedKey(clientPub), 0o644))

	s.Port = freePort(tb)
	cfg := fmt.Sprintf(`Port %d
ListenAddress 127.0.0.1
HostKey %s
HostKey %s
PidFile none
AuthorizedKeysFile %s
StrictModes yes
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
AllowUsers %s
ChrootDirectory %s
Subsystem sftp internal-sftp
ForceCommand internal-sftp
AllowTcpForwarding no
X11Forwarding no
MaxStartups 100:30:200
MaxSessions 64
LogLevel ERROR
`, s.Port, rsaHostKeyFile, hostKeyFile, filepath.Join(dir, "authorized_keys"), User, s.Chroot)
	must(os.WriteFile(filepath.Join(dir, "sshd_config"), []byte(cfg), 0o644))
	s.start()
	tb.Cleanup(s.Stop)
	return s
}

// AuthorizeKey adds a public key to the user's authorized_keys.
func (s *Server) AuthorizeKey(k ssh.PublicKey) {
	f, err := os.OpenFile(filepath.Join(s.Dir, "authorized_keys"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		s.tb.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write(ssh.MarshalAuthorizedKey(k)); err != nil {
		s.tb.Fatal(err)
	}
}

// Addr is 127.0.0.1:port.
func (s *Server) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.Port)) }

// KnownHostsLine pins the server's ed25519 host key.
func (s *Server) KnownHostsLine() string { return s.KnownHostsLineFor(s.HostKey) }

// KnownHostsLineFor pins key for the server's address.
func (s *Server) KnownHostsLineFor(key ssh.PublicKey) string {
	return knownhosts.Line([]string{knownhosts.Normalize(s.Addr())}, key)
}

// Path is the local path of a file in the chroot, e.g. Path("inbox", "a").
func (s *Server) Path(elem ...string) string {
	return filepath.Join(append([]string{s.Chroot}, elem...)...)
}

// WriteFile writes a file in the chroot owned by the user, as a partner
// would have uploaded it.
func (s *Server) WriteFile(folder, name string, data []byte) {
	p := s.Path(folder, name)
	if err := os.WriteFile(p, data, 0o644); err != nil {
		s.tb.Fatal(err)
	}
	if err := os.Chown(p, s.uid, s.gid); err != nil {
		s.tb.Fatal(err)
	}
}

func (s *Server) start() {
	s.tb.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	var stderr bytes.Buffer
	cmd := exec.Command(Binary, "-D", "-e", "-f", filepath.Join(s.Dir, "sshd_config"))
	cmd.Stderr = &stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		s.tb.Fatalf("start sshd: %v", err)
	}
	s.cmd, s.stderr = cmd, &stderr
	for i := 0; ; i++ {
		c, err := net.Dial("tcp", s.Addr())
		if err == nil {
			c.Close()
			return
		}
		if i == 200 {
			s.killLocked()
			s.tb.Fatalf("sshd did not listen on %s: %s", s.Addr(), stderr.String())
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// Kill kills sshd and every session process it forked, as a crash of the
// server would, and waits for them.
func (s *Server) Kill() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.killLocked()
}

func (s *Server) killLocked() {
	if s.cmd == nil {
		return
	}
	pid := s.cmd.Process.Pid
	// Per-connection children leave sshd's process group (setsid), so
	// walk the process tree.
	for _, p := range descendants(pid) {
		syscall.Kill(p, syscall.SIGKILL)
	}
	syscall.Kill(pid, syscall.SIGKILL)
	s.cmd.Wait()
	if s.stderr.Len() > 0 {
		s.tb.Logf("sshd stderr: %s", s.stderr.String())
	}
	s.cmd = nil
}

// Restart kills sshd and its sessions and starts it again on the same
// port with the same keys.
func (s *Server) Restart() {
	s.Kill()
	s.start()
}

// Stop kills sshd; it is registered as a cleanup by Start.
func (s *Server) Stop() { s.Kill() }

// descendants lists the processes below pid, children first.
func descendants(pid int) []int {
	entries, _ := os.ReadDir("/proc")
	parent := map[int]int{}
	for _, e := range entries {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...: comm may contain spaces.
		i := bytes.LastIndexByte(b, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(b[i+1:]))
		if len(f) < 2 {
			continue
		}
		pp, _ := strconv.Atoi(f[1])
		parent[p] = pp
	}
	var out []int
	var walk func(int)
	walk = func(p int) {
		for c, pp := range parent {
			if pp == p {
				walk(c)
				out = append(out, c)
			}
		}
	}
	walk(pid)
	return out
}

var userMu sync.Mutex

// ensureUser creates the unprivileged user once. useradd locks the new
// account ("!"), which blocks even key logins with UsePAM no: the
// password field is set to "*" (no password, not locked).
func ensureUser(tb testing.TB) (int, int) {
	tb.Helper()
	userMu.Lock()
	defer userMu.Unlock()
	u, err := user.Lookup(User)
	if err != nil {
		out, err := exec.Command("useradd", "--system", "--no-create-home", "--home-dir", "/nonexistent",
			"--shell", "/usr/sbin/nologin", User).CombinedOutput()
		if u2, lerr := user.Lookup(User); lerr == nil { // another test process may have won the race
			u = u2
		} else {
			tb.Fatalf("useradd %s: %v: %s", User, err, out)
		}
	}
	if out, err := exec.Command("usermod", "-p", "*", User).CombinedOutput(); err != nil {
		tb.Fatalf("usermod: %v: %s", err, out)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return uid, gid
}

// writeKey writes key (a fresh ed25519 key if nil) in OpenSSH format
// (mode 0600) and returns its public key.
func writeKey(tb testing.TB, file string, key crypto.Signer) ssh.PublicKey {
	tb.Helper()
	if key == nil {
		_, priv, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			tb.Fatal(err)
		}
		key = priv
	}
	block, err := ssh.MarshalPrivateKey(key, "")
	if err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(file, pem.EncodeToMemory(block), 0o600); err != nil {
		tb.Fatal(err)
	}
	sp, err := ssh.NewPublicKey(key.Public())
	if err != nil {
		tb.Fatal(err)
	}
	return sp
}

// freePort returns a port that was free a moment ago.
func freePort(tb testing.TB) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}
