// Package sftpserver is a small SFTP server for tests and the demo: SSH
// on 127.0.0.1 with a fresh ed25519 host key, public-key login, and per
// user a folder that is a jail.
//
// It serves pkg/sftp's request server with handlers that reach files only
// through an *os.Root, so that neither absolute paths, "..", nor symbolic
// links lead outside the user's folder (pkg/sftp's plain NewServer is no
// jail). Rename behaves like OpenSSH's: it never replaces an existing
// file; posix-rename@openssh.com does.
package sftpserver

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path"
	"strings"
	"sync"

	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// Server is a running SFTP server.
type Server struct {
	ln      net.Listener
	hostKey ssh.Signer
	config  *ssh.ServerConfig

	mu    sync.Mutex
	users map[string]user
	conns map[net.Conn]struct{}
	wg    sync.WaitGroup
	done  bool
}

type user struct {
	dir      string
	keys     []ssh.PublicKey
	password []byte
}

// Start listens on 127.0.0.1 at a free port, with a fresh host key.
func Start() (*Server, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &Server{ln: ln, hostKey: signer, users: map[string]user{}, conns: map[net.Conn]struct{}{}}
	s.config = &ssh.ServerConfig{PublicKeyCallback: s.checkKey, PasswordCallback: s.checkPassword}
	s.config.AddHostKey(signer)
	s.wg.Add(1)
	go s.accept()
	return s, nil
}

// AddUser lets name log in with any of keys; its files live in dir.
func (s *Server) AddUser(name, dir string, keys ...ssh.PublicKey) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.users[name] = user{dir: dir, keys: keys}
}

// Addr is the host:port the server listens on.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Port is the port the server listens on.
func (s *Server) Port() int { return s.ln.Addr().(*net.TCPAddr).Port }

// HostKey is the server's public host key.
func (s *Server) HostKey() ssh.PublicKey { return s.hostKey.PublicKey() }

// KnownHostsLine is the known_hosts line that pins the server's key.
func (s *Server) KnownHostsLine() string {
	return knownhosts.Line([]string{knownhosts.Normalize(s.Addr())}, s.HostKey())
}

// DropConnections cuts every open connection, as a crash of the server
// would; the server keeps listening.
func (s *Server) DropConnections() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		c.Close()
	}
}

// Close stops listening, cuts the connections and waits for their
// goroutines.
func (s *Server) Close() error {
	s.mu.Lock()
	s.done = true
	s.mu.Unlock()
	err := s.ln.Close()
	s.DropConnections()
	s.wg.Wait()
	return err
}

// SetPassword lets an added user log in with a password too, for partners
// that insist on one.
func (s *Server) SetPassword(name string, password []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	u := s.users[name]
	u.password = append([]byte(nil), password...)
	s.users[name] = u
}

func (s *Server) checkPassword(meta ssh.ConnMetadata, pw []byte) (*ssh.Permissions, error) {
	s.mu.Lock()
	u, ok := s.users[meta.User()]
	s.mu.Unlock()
	if ok && len(u.password) > 0 && subtle.ConstantTimeCompare(u.password, pw) == 1 {
		return &ssh.Permissions{Extensions: map[string]string{"dir": u.dir}}, nil
	}
	return nil, errors.New("password refused")
}

func (s *Server) checkKey(meta ssh.ConnMetadata, key ssh.PublicKey) (*ssh.Permissions, error) {
	s.mu.Lock()
	u, ok := s.users[meta.User()]
	s.mu.Unlock()
	if ok {
		for _, k := range u.keys {
			if k.Type() == key.Type() && string(k.Marshal()) == string(key.Marshal()) {
				return &ssh.Permissions{Extensions: map[string]string{"dir": u.dir}}, nil
			}
		}
	}
	return nil, errors.New("key not authorised")
}

func (s *Server) accept() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		if s.done {
			s.mu.Unlock()
			c.Close()
			return
		}
		s.conns[c] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go func() {
			defer s.wg.Done()
			s.serveConn(c)
			s.mu.Lock()
			delete(s.conns, c)
			s.mu.Unlock()
			c.Close()
		}()
	}
}

func (s *Server) serveConn(c net.Conn) {
	sc, chans, reqs, err := ssh.NewServerConn(c, s.config)
	if err != nil {
		return
	}
	defer sc.Close()
	go ssh.DiscardRequests(reqs) // answers keepalive@openssh.com with failure, as OpenSSH does
	dir := sc.Permissions.Extensions["dir"]
	var wg sync.WaitGroup
	defer wg.Wait()
	for nc := range chans {
		if nc.ChannelType() != "session" {
			nc.Reject(ssh.UnknownChannelType, "only session channels")
			continue
		}
		ch, chReqs, err := nc.Accept()
		if err != nil {
			return
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.serveSession(ch, chReqs, dir)
		}()
	}
}

func (s *Server) serveSession(ch ssh.Channel, reqs <-chan *ssh.Request, dir string) {
	defer ch.Close()
	for req := range reqs {
		ok := req.Type == "subsystem" && len(req.Payload) > 4 && string(req.Payload[4:]) == "sftp"
		req.Reply(ok, nil)
		if !ok {
			continue
		}
		root, err := os.OpenRoot(dir)
		if err != nil {
			return
		}
		h := &handlers{root: root}
		srv := sftp.NewRequestServer(ch, sftp.Handlers{FileGet: h, FilePut: h, FileCmd: h, FileList: h})
		go func() {
			for r := range reqs {
				r.Reply(false, nil)
			}
		}()
		srv.Serve()
		srv.Close()
		root.Close()
		return
	}
}

// handlers serve requests inside root.
type handlers struct{ root *os.Root }

// rel turns the request's absolute, cleaned path into a root-relative one.
func rel(p string) string {
	p = strings.TrimPrefix(path.Clean("/"+p), "/")
	if p == "" {
		return "."
	}
	return p
}

func (h *handlers) Fileread(r *sftp.Request) (io.ReaderAt, error) {
	f, err := h.root.Open(rel(r.Filepath))
	if err != nil {
		return nil, err
	}
	if st, err := f.Stat(); err != nil || st.IsDir() {
		f.Close()
		return nil, fs.ErrInvalid
	}
	return f, nil
}

func (h *handlers) Filewrite(r *sftp.Request) (io.WriterAt, error) {
	pf := r.Pflags()
	flags := os.O_WRONLY
	if pf.Read {
		flags = os.O_RDWR
	}
	if pf.Creat {
		flags |= os.O_CREATE
	}
	if pf.Trunc {
		flags |= os.O_TRUNC
	}
	if pf.Excl {
		flags |= os.O_EXCL
	}
	return h.root.OpenFile(rel(r.Filepath), flags, 0o644)
}

func (h *handlers) Filecmd(r *sftp.Request) error {
	p := rel(r.Filepath)
	switch r.Method {
	case "Rename":
		// SFTP v3 rename, as OpenSSH does it: never over an existing file.
		if _, err := h.root.Lstat(rel(r.Target)); err == nil {
			return fs.ErrExist
		}
		return h.root.Rename(p, rel(r.Target))
	case "Remove":
		if st, err := h.root.Lstat(p); err == nil && st.IsDir() {
			return fs.ErrInvalid
		}
		return h.root.Remove(p)
	case "Rmdir":
		return h.root.Remove(p)
	case "Mkdir":
		return h.root.Mkdir(p, 0o755)
	case "Setstat":
		attrs := r.Attributes()
		flags := r.AttrFlags()
		if flags.Size {
			f, err := h.root.OpenFile(p, os.O_WRONLY, 0)
			if err != nil {
				return err
			}
			err = f.Truncate(int64(attrs.Size))
			f.Close()
			if err != nil {
				return err
			}
		}
		if flags.Permissions {
			if err := h.root.Chmod(p, attrs.FileMode().Perm()); err != nil {
				return err
			}
		}
		if flags.Acmodtime {
			if err := h.root.Chtimes(p, attrs.AccessTime(), attrs.ModTime()); err != nil {
				return err
			}
		}
		return nil
	}
	return sftp.ErrSSHFxOpUnsupported
}

// PosixRename replaces the target, as posix-rename@openssh.com does.
func (h *handlers) PosixRename(r *sftp.Request) error {
	return h.root.Rename(rel(r.Filepath), rel(r.Target))
}

func (h *handlers) Filelist(r *sftp.Request) (sftp.ListerAt, error) {
	p := rel(r.Filepath)
	switch r.Method {
	case "List":
		d, err := h.root.Open(p)
		if err != nil {
			return nil, err
		}
		defer d.Close()
		entries, err := d.ReadDir(-1)
		if err != nil {
			return nil, err
		}
		infos := make([]fs.FileInfo, 0, len(entries))
		for _, e := range entries {
			if fi, err := e.Info(); err == nil {
				infos = append(infos, fi)
			}
		}
		return lister(infos), nil
	case "Stat":
		fi, err := h.root.Stat(p)
		if err != nil {
			return nil, err
		}
		return lister{fi}, nil
	}
	return nil, sftp.ErrSSHFxOpUnsupported
}

// Lstat does not follow a final symbolic link.
func (h *handlers) Lstat(r *sftp.Request) (sftp.ListerAt, error) {
	fi, err := h.root.Lstat(rel(r.Filepath))
	if err != nil {
		return nil, err
	}
	return lister{fi}, nil
}

type lister []fs.FileInfo

func (l lister) ListAt(out []fs.FileInfo, off int64) (int, error) {
	if off >= int64(len(l)) {
		return 0, io.EOF
	}
	n := copy(out, l[off:])
	if n < len(out) {
		return n, io.EOF
	}
	return n, nil
}

var (
	_ sftp.PosixRenameFileCmder = (*handlers)(nil)
	_ sftp.LstatFileLister      = (*handlers)(nil)
)

// String describes the server for logs.
func (s *Server) String() string { return fmt.Sprintf("sftp server on %s", s.Addr()) }
