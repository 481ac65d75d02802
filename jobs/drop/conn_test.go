package drop_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"resub/jobs/drop"
	"resub/jobs/drop/sshdtest"
)

// TestSessionCap: drops of one partner share a cap on connections.
func TestSessionCap(t *testing.T) {
	b, _ := embeddedBackend(t)
	shared := drop.NewSessions(1)
	withCap := func(o *drop.SFTPOptions) { o.Sessions = shared }
	d1, d2 := b.open(t, withCap), b.open(t, withCap)
	ctx := context.Background()
	if _, err := d1.List(ctx); err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	if _, err := d2.List(short); err == nil || !drop.IsTemporary(err) {
		t.Fatalf("second connection over the cap: %v, want a temporary error", err)
	}
	d1.Close()
	if _, err := d2.List(ctx); err != nil {
		t.Fatalf("after the first drop closed: %v", err)
	}
}

// TestHandshakeTimeout: a server that accepts and never speaks SSH does
// not hang the dial (ssh.Dial's timeout covers only the TCP connect).
func TestHandshakeTimeout(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var conns []net.Conn
	var mu sync.Mutex
	go func() {
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
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
	}()
	key, _ := newClientKey(t)
	_, hostPub := newClientKey(t)
	kh := filepath.Join(t.TempDir(), "known_hosts")
	writeFile(t, kh, []byte(knownhosts.Line([]string{knownhosts.Normalize(ln.Addr().String())}, hostPub)+"\n"))
	o := sftpOptions("127.0.0.1", ln.Addr().(*net.TCPAddr).Port, "x", key, kh)
	o.DialTimeout = 300 * time.Millisecond
	d, err := drop.NewSFTP(o)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.List(context.Background()); err == nil || !drop.IsTemporary(err) {
		t.Fatalf("List against a silent server: %v, want a temporary error", err)
	}
}

// freezer is a TCP proxy that can stop forwarding, like a dead peer
// behind a firewall that drops packets.
type freezer struct {
	ln     net.Listener
	frozen chan struct{}
	once   sync.Once
	mu     sync.Mutex
	conns  []net.Conn
}

func newFreezer(t *testing.T, upstream string) *freezer {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &freezer{ln: ln, frozen: make(chan struct{})}
	t.Cleanup(func() {
		ln.Close()
		f.mu.Lock()
		for _, c := range f.conns {
			c.Close()
		}
		f.mu.Unlock()
	})
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			u, err := net.Dial("tcp", upstream)
			if err != nil {
				c.Close()
				continue
			}
			f.mu.Lock()
			f.conns = append(f.conns, c, u)
			f.mu.Unlock()
			go f.pipe(c, u)
			go f.pipe(u, c)
		}
	}()
	return f
}

func (f *freezer) pipe(dst, src net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		select {
		case <-f.frozen:
			return // swallow everything from now on
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

func (f *freezer) freeze() { f.once.Do(func() { close(f.frozen) }) }

// TestKeepaliveClosesDeadConnection: when the peer stops answering, the
// keepalive times out and closes the connection, which unblocks the call
// in progress with a temporary error.
func TestKeepaliveClosesDeadConnection(t *testing.T) {
	_, srv := embeddedBackend(t)
	fz := newFreezer(t, srv.Addr())
	key, pub := newClientKey(t)
	root := t.TempDir()
	for _, f := range folders {
		os.Mkdir(filepath.Join(root, f), 0o755)
	}
	srv.AddUser("frozen", root, pub)
	kh := filepath.Join(t.TempDir(), "known_hosts")
	writeFile(t, kh, []byte(knownhosts.Line([]string{knownhosts.Normalize(fz.ln.Addr().String())}, srv.HostKey())+"\n"))
	o := sftpOptions("127.0.0.1", fz.ln.Addr().(*net.TCPAddr).Port, "frozen", key, kh)
	o.KeepAlive, o.IOTimeout = 50*time.Millisecond, 200*time.Millisecond
	d, err := drop.NewSFTP(o)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	ctx := context.Background()
	if _, err := d.List(ctx); err != nil {
		t.Fatal(err)
	}
	fz.freeze()
	if _, err := d.List(ctx); err == nil || !drop.IsTemporary(err) {
		t.Fatalf("List over a dead connection: %v, want a temporary error", err)
	}
}

// TestEmbeddedServerIsAJail: no path leads outside the user's folder.
func TestEmbeddedServerIsAJail(t *testing.T) {
	_, srv := embeddedBackend(t)
	parent := t.TempDir()
	root := filepath.Join(parent, "root")
	os.Mkdir(root, 0o755)
	writeFile(t, filepath.Join(parent, "secret"), []byte("outside"))
	if err := os.Symlink(parent, filepath.Join(root, "escape")); err != nil {
		t.Fatal(err)
	}
	signer, pub := newSigner(t)
	srv.AddUser("jailed", root, pub)
	conn, err := ssh.Dial("tcp", srv.Addr(), &ssh.ClientConfig{
		User: "jailed", Auth: []ssh.AuthMethod{ssh.PublicKeys(signer)},
		HostKeyCallback: ssh.FixedHostKey(srv.HostKey()),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	c, err := sftp.NewClient(conn)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, p := range []string{"/../secret", "../../secret", "/escape/secret", "escape/secret", "/etc/hostname", "/proc/self/environ"} {
		if f, err := c.Open(p); err == nil {
			data, _ := io.ReadAll(f)
			f.Close()
			t.Errorf("Open(%q) succeeded: %q", p, data)
		}
	}
	for _, p := range []string{"/escape/planted", "/../planted"} {
		if f, err := c.OpenFile(p, os.O_WRONLY|os.O_CREATE); err == nil {
			f.Close()
		}
	}
	if _, err := os.Stat(filepath.Join(parent, "planted")); err == nil {
		t.Error("a write escaped the jail")
	}
	// Rename never replaces; posix-rename does.
	for _, n := range []string{"a", "b"} {
		writeFile(t, filepath.Join(root, n), []byte(n))
	}
	if err := c.Rename("/a", "/b"); err == nil {
		t.Error("Rename replaced an existing file (OpenSSH refuses)")
	}
	if err := c.PosixRename("/a", "/b"); err != nil {
		t.Errorf("PosixRename: %v", err)
	}
}

func newSigner(t *testing.T) (ssh.Signer, ssh.PublicKey) {
	key, pub := newClientKey(t)
	s, err := ssh.ParsePrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return s, pub
}

// TestLocalArchive: for a partner who forbids writes, inputs are copied
// to a local archive and stay on the server, and are not listed again.
func TestLocalArchive(t *testing.T) {
	b, _ := embeddedBackend(t)
	la, lq := t.TempDir(), t.TempDir()
	d := b.open(t, func(o *drop.SFTPOptions) {
		o.Archive, o.Quarantine, o.LocalArchive, o.LocalQuarantine = "", "", la, lq
	})
	data := randomBytes(t, 1<<20)
	b.write("inbox", "in.pgp", data)
	b.write("inbox", "bad.pgp", []byte("bad"))
	ctx := context.Background()
	if err := d.Move(ctx, "in.pgp", drop.Archive); err != nil {
		t.Fatal(err)
	}
	if err := d.Move(ctx, "bad.pgp", drop.Quarantine); err != nil {
		t.Fatal(err)
	}
	if got, err := os.ReadFile(filepath.Join(la, "in.pgp")); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("local archive: %v", err)
	}
	if _, err := os.Stat(filepath.Join(lq, "bad.pgp")); err != nil {
		t.Fatalf("local quarantine: %v", err)
	}
	if got := b.names(t, "inbox"); len(got) != 2 {
		t.Errorf("inbox = %q: the inputs must stay on the server", got)
	}
	list, err := d.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 0 {
		t.Errorf("List = %v, want the archived inputs hidden", list)
	}
	// A new file of the same name but another size is new.
	b.write("inbox", "in.pgp", data[:100])
	if list, _ := d.List(ctx); len(list) != 1 {
		t.Errorf("List = %v, want the new in.pgp", list)
	}
}

// TestRSAKeyWithPassphrase logs in to OpenSSH with an encrypted RSA key
// made by ssh-keygen (one KDF round: bcrypt is slow under -race).
func TestRSAKeyWithPassphrase(t *testing.T) {
	b, srv := sshdBackend(t)
	file := filepath.Join(t.TempDir(), "id_rsa")
	if out, err := exec.Command("ssh-keygen", "-q", "-t", "rsa", "-b", "2048", "-a", "1", "-N", "correct horse", "-f", file).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen: %v: %s", err, out)
	}
	key, _ := os.ReadFile(file)
	pubText, _ := os.ReadFile(file + ".pub")
	pub, _, _, _, err := ssh.ParseAuthorizedKey(pubText)
	if err != nil {
		t.Fatal(err)
	}
	srv.AuthorizeKey(pub)
	d := b.open(t, func(o *drop.SFTPOptions) { o.PrivateKey, o.Passphrase = key, []byte("correct horse") })
	if _, err := d.List(context.Background()); err != nil {
		t.Fatal(err)
	}
	// A wrong passphrase is a configuration error at once.
	o := sftpOptions("127.0.0.1", srv.Port, sshdtest.User, key, b.knownHosts)
	o.Passphrase = []byte("wrong")
	_, err = drop.NewSFTP(o)
	var ce interface{ ConfigError() bool }
	if !errors.As(err, &ce) {
		t.Errorf("wrong passphrase: %v, want a configuration error", err)
	}
	// A key the server does not know is refused as a configuration error.
	other, _ := newClientKey(t)
	d = b.open(t, func(o *drop.SFTPOptions) { o.PrivateKey = other })
	if _, err := d.List(context.Background()); !errors.As(err, &ce) || drop.IsTemporary(err) {
		t.Errorf("unknown key: %v, want a configuration error", err)
	}
}

// TestPassword: password login where a partner insists on it.
func TestPassword(t *testing.T) {
	b, srv := embeddedBackend(t)
	srv.SetPassword("partner", []byte("s3cret"))
	d := b.open(t, func(o *drop.SFTPOptions) { o.PrivateKey, o.Password = nil, []byte("s3cret") })
	if _, err := d.List(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// TestOneWayDrops: a partner we only deliver to has no inbox.
func TestOneWayDrops(t *testing.T) {
	b, _ := embeddedBackend(t)
	d := b.open(t, func(o *drop.SFTPOptions) { o.Inbox, o.Archive, o.Quarantine = "", "", "" })
	ctx := context.Background()
	if err := d.Put(ctx, "out.csv", bytes.NewReader([]byte("x")), 1); err != nil {
		t.Fatal(err)
	}
	var ce interface{ ConfigError() bool }
	if _, err := d.List(ctx); !errors.As(err, &ce) {
		t.Errorf("List without an inbox: %v, want a configuration error", err)
	}
	l := localBackend(t)
	ld, err := drop.NewLocal(drop.LocalOptions{Inbox: l.dir("inbox"), Archive: l.dir("archive"), Quarantine: l.dir("quarantine")})
	if err != nil {
		t.Fatal(err)
	}
	defer ld.Close()
	if err := ld.Put(ctx, "out.csv", bytes.NewReader([]byte("x")), 1); !errors.As(err, &ce) {
		t.Errorf("Put without an outbox: %v, want a configuration error", err)
	}
	if _, err := drop.NewLocal(drop.LocalOptions{Inbox: l.dir("inbox")}); err == nil {
		t.Error("an inbox without archive and quarantine was accepted")
	}
}
