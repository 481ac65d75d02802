package drop_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"os"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"resub/jobs/drop"
	"resub/jobs/drop/sftpserver"
	"resub/jobs/drop/sshdtest"
)

// backend is one kind of drop under test, with a view of the partner's
// side of it.
type backend struct {
	name string
	// open returns a new drop on the backend.
	open func(t testing.TB, mod func(*drop.SFTPOptions)) drop.Drop
	// dir is the local path of a folder as the partner sees it.
	dir func(folder string) string
	// write puts a file into a folder as the partner would.
	write func(folder, name string, data []byte)
	// crash cuts every connection, as a server crash would; the server is
	// available again when crash returns. Nil for local drops.
	crash func()
	// knownHosts is the file that pins the server's key.
	knownHosts string
	// hostKeys are all the server's host keys.
	hostKeys []ssh.PublicKey
}

var folders = []string{"inbox", "outbox", "archive", "quarantine"}

func localBackend(t testing.TB) *backend {
	root := t.TempDir()
	for _, f := range folders {
		if err := os.Mkdir(filepath.Join(root, f), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	b := &backend{name: "local", dir: func(f string) string { return filepath.Join(root, f) }}
	b.write = func(folder, name string, data []byte) { writeFile(t, filepath.Join(root, folder, name), data) }
	b.open = func(t testing.TB, _ func(*drop.SFTPOptions)) drop.Drop {
		d, err := drop.NewLocal(drop.LocalOptions{Inbox: b.dir("inbox"), Outbox: b.dir("outbox"), Archive: b.dir("archive"), Quarantine: b.dir("quarantine")})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { d.Close() })
		return d
	}
	return b
}

// newClientKey returns a fresh ed25519 key in OpenSSH PEM form.
func newClientKey(t testing.TB) ([]byte, ssh.PublicKey) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	block, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		t.Fatal(err)
	}
	sp, _ := ssh.NewPublicKey(pub)
	return pem.EncodeToMemory(block), sp
}

func sftpOptions(host string, port int, user string, key []byte, knownHosts string) drop.SFTPOptions {
	return drop.SFTPOptions{
		Host: host, Port: port, User: user, PrivateKey: key, KnownHosts: knownHosts,
		Inbox: "/inbox", Outbox: "/outbox", Archive: "/archive", Quarantine: "/quarantine",
		DialTimeout: 20 * time.Second, KeepAlive: -1,
	}
}

func embeddedBackend(t testing.TB) (*backend, *sftpserver.Server) {
	srv, err := sftpserver.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	root := t.TempDir()
	for _, f := range folders {
		if err := os.Mkdir(filepath.Join(root, f), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	key, pub := newClientKey(t)
	srv.AddUser("partner", root, pub)
	kh := filepath.Join(t.TempDir(), "known_hosts")
	writeFile(t, kh, []byte(srv.KnownHostsLine()+"\n"))
	b := &backend{name: "embedded", knownHosts: kh, hostKeys: []ssh.PublicKey{srv.HostKey()}, dir: func(f string) string { return filepath.Join(root, f) }}
	b.write = func(folder, name string, data []byte) { writeFile(t, filepath.Join(root, folder, name), data) }
	b.crash = srv.DropConnections
	b.open = func(t testing.TB, mod func(*drop.SFTPOptions)) drop.Drop {
		o := sftpOptions("127.0.0.1", srv.Port(), "partner", key, kh)
		if mod != nil {
			mod(&o)
		}
		d, err := drop.NewSFTP(o)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { d.Close() })
		return d
	}
	return b, srv
}

func sshdBackend(t testing.TB) (*backend, *sshdtest.Server) {
	srv := sshdtest.Start(t)
	kh := filepath.Join(t.TempDir(), "known_hosts")
	writeFile(t, kh, []byte(srv.KnownHostsLine()+"\n"))
	b := &backend{name: "openssh", knownHosts: kh, hostKeys: []ssh.PublicKey{srv.HostKey, srv.HostKeyRSA}, dir: func(f string) string { return srv.Path(f) }}
	b.write = func(folder, name string, data []byte) { srv.WriteFile(folder, name, data) }
	b.crash = srv.Restart
	b.open = func(t testing.TB, mod func(*drop.SFTPOptions)) drop.Drop {
		o := sftpOptions("127.0.0.1", srv.Port, sshdtest.User, srv.ClientKey, kh)
		if mod != nil {
			mod(&o)
		}
		d, err := drop.NewSFTP(o)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { d.Close() })
		return d
	}
	return b, srv
}

// remoteBackends are the SFTP servers every SFTP test runs against.
func remoteBackends(t *testing.T) []*backend {
	e, _ := embeddedBackend(t)
	o, _ := sshdBackend(t)
	return []*backend{e, o}
}

func writeFile(t testing.TB, p string, data []byte) {
	t.Helper()
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// names lists a folder on the partner's side.
func (b *backend) names(t testing.TB, folder string) []string {
	t.Helper()
	entries, err := os.ReadDir(b.dir(folder))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		out = append(out, e.Name())
	}
	sort.Strings(out)
	return out
}

func (b *backend) read(t testing.TB, folder, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(b.dir(folder), name))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func randomBytes(t testing.TB, n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}
