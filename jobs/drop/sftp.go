package drop

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"
)

// SFTPOptions configures an SFTP drop. The zero values of the timeouts,
// the keepalive and the concurrency are replaced by the defaults below.
type SFTPOptions struct {
	Host string
	Port int // default 22
	User string
	// PrivateKey is an OpenSSH or PEM private key (ed25519, RSA, ECDSA),
	// decrypted with Passphrase when it is encrypted. NewSFTP parses it;
	// the caller may zero both slices afterwards.
	PrivateKey, Passphrase []byte
	// Password is used only where a partner insists on password
	// authentication; it is offered after the key.
	Password []byte
	// KnownHosts is the known_hosts file that pins the server's host key.
	// It is required: there is no way to skip verification.
	KnownHosts string

	// Inbox, Outbox, Archive and Quarantine are paths on the server. A
	// partner we only deliver to has no inbox; one we only read from has
	// no outbox. An inbox needs an archive and a quarantine (remote or
	// local).
	Inbox, Outbox, Archive, Quarantine string
	// LocalArchive and LocalQuarantine, when set, are local directories
	// that receive a copy of a moved input instead of a remote rename,
	// for partners who forbid writes; the input stays on the server and
	// List no longer shows it while a copy of the same size is kept.
	LocalArchive, LocalQuarantine string
	// TempPrefix + name + TempSuffix is the name a delivery is written
	// under before its rename. Both empty means suffix ".part".
	TempPrefix, TempSuffix string

	DialTimeout time.Duration // TCP connect and SSH handshake; default 30s
	// IOTimeout is how long a keepalive may go unanswered before the
	// connection is closed; default 30s.
	IOTimeout time.Duration
	// RequestTimeout bounds every SFTP request (list, stat, open,
	// rename, ...) and every pause of a transfer: when the server has
	// not answered, or a transfer has not moved a byte, for this long,
	// the connection is closed (which ends every call pending on it)
	// and the operation fails as temporary. pkg/sftp has no deadline of
	// its own: a server blocked on one file (a FIFO in its place, a hung
	// disk) keeps answering keepalives while the request waits for
	// ever. Default 30s.
	RequestTimeout time.Duration
	// KeepAlive is the interval of keepalive@openssh.com requests;
	// default 15s, negative disables them.
	KeepAlive time.Duration
	// Sessions caps the connections to this partner across all its drops;
	// nil gives the drop its own cap of one connection.
	Sessions *Sessions
	// ReadOnce is for servers that delete a file once it is read or
	// stat'ed: reads go sequentially, without the size probe.
	ReadOnce bool
	// Concurrency is the number of requests in flight per transfer;
	// default 64.
	Concurrency int

	Now  func() time.Time                                                  // for the names of archived duplicates; default time.Now
	Dial func(ctx context.Context, network, addr string) (net.Conn, error) // default net.Dialer
}

// Sessions caps the number of SSH connections to one partner. Share one
// value among all drops of that partner.
type Sessions struct{ ch chan struct{} }

// NewSessions returns a cap of n (at least 1) connections.
func NewSessions(n int) *Sessions {
	if n < 1 {
		n = 1
	}
	return &Sessions{ch: make(chan struct{}, n)}
}

func (s *Sessions) acquire(ctx context.Context) error {
	select {
	case s.ch <- struct{}{}:
		return nil
	case <-ctx.Done():
		return &TemporaryError{Op: "dial", Err: fmt.Errorf("waiting for a free session: %w", ctx.Err())}
	}
}

func (s *Sessions) release() { <-s.ch }

// SFTP is a drop on an SFTP server. It holds at most one SSH connection,
// dialled on first use and again after it broke or after Close. It is
// safe for concurrent use.
type SFTP struct {
	opts    SFTPOptions
	addr    string
	config  *ssh.ClientConfig
	hostKey *hostKeyChecker

	mu  sync.Mutex
	cur *sftpConn

	opened openedFiles
}

var _ Drop = (*SFTP)(nil)

// NewSFTP checks the options, parses the key and reads known_hosts. It
// does not connect.
func NewSFTP(opts SFTPOptions) (*SFTP, error) {
	if opts.Port == 0 {
		opts.Port = 22
	}
	if opts.DialTimeout <= 0 {
		opts.DialTimeout = 30 * time.Second
	}
	if opts.IOTimeout <= 0 {
		opts.IOTimeout = 30 * time.Second
	}
	if opts.RequestTimeout <= 0 {
		opts.RequestTimeout = 30 * time.Second
	}
	if opts.KeepAlive == 0 {
		opts.KeepAlive = 15 * time.Second
	}
	if opts.Concurrency <= 0 {
		opts.Concurrency = 64
	}
	if opts.Sessions == nil {
		opts.Sessions = NewSessions(1)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Dial == nil {
		d := &net.Dialer{Timeout: opts.DialTimeout, KeepAlive: 30 * time.Second}
		opts.Dial = d.DialContext
	}
	if opts.TempPrefix == "" && opts.TempSuffix == "" {
		opts.TempSuffix = ".part"
	}
	var problems []error
	if opts.Host == "" || opts.User == "" {
		problems = append(problems, errors.New("sftp: host and user are required"))
	}
	if opts.Inbox == "" && opts.Outbox == "" {
		problems = append(problems, errors.New("sftp: no inbox and no outbox"))
	}
	if opts.Inbox != "" && opts.Archive == "" && opts.LocalArchive == "" {
		problems = append(problems, errors.New("sftp: an inbox needs an archive (remote or local)"))
	}
	if opts.Inbox != "" && opts.Quarantine == "" && opts.LocalQuarantine == "" {
		problems = append(problems, errors.New("sftp: an inbox needs a quarantine (remote or local)"))
	}
	var auth []ssh.AuthMethod
	if len(opts.PrivateKey) > 0 {
		var signer ssh.Signer
		var err error
		if len(opts.Passphrase) > 0 {
			signer, err = ssh.ParsePrivateKeyWithPassphrase(opts.PrivateKey, opts.Passphrase)
		} else {
			signer, err = ssh.ParsePrivateKey(opts.PrivateKey)
		}
		if err != nil {
			// The parse error never contains key material.
			problems = append(problems, fmt.Errorf("sftp: private key: %w", err))
		} else {
			auth = append(auth, ssh.PublicKeys(signer))
		}
	}
	if len(opts.Password) > 0 {
		pw := append([]byte(nil), opts.Password...)
		auth = append(auth, ssh.PasswordCallback(func() (string, error) { return string(pw), nil }))
	}
	opts.PrivateKey, opts.Passphrase, opts.Password = nil, nil, nil
	if len(auth) == 0 {
		problems = append(problems, errors.New("sftp: no private key or password"))
	}
	hk, err := newHostKeyChecker(opts.KnownHosts)
	if err != nil {
		problems = append(problems, err)
	}
	if len(problems) > 0 {
		return nil, &ConfigError{errors.Join(problems...)}
	}
	s := &SFTP{opts: opts, hostKey: hk, addr: net.JoinHostPort(opts.Host, strconv.Itoa(opts.Port))}
	s.config = &ssh.ClientConfig{
		User:              opts.User,
		Auth:              auth,
		HostKeyCallback:   hk.check,
		HostKeyAlgorithms: hk.algorithms(s.addr),
		Timeout:           opts.DialTimeout,
	}
	return s, nil
}

// newSFTPClient starts the sftp subsystem on a session of client, noting
// in last when the server last sent a byte.
func newSFTPClient(client *ssh.Client, last *atomic.Int64, opts []sftp.ClientOption) (*sftp.Client, error) {
	sess, err := client.NewSession()
	if err != nil {
		return nil, err
	}
	pw, err := sess.StdinPipe()
	if err != nil {
		return nil, err
	}
	pr, err := sess.StdoutPipe()
	if err != nil {
		return nil, err
	}
	perr, err := sess.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := sess.RequestSubsystem("sftp"); err != nil {
		return nil, err
	}
	// Unread stderr would use up the channel's window.
	go io.Copy(io.Discard, perr)
	last.Store(time.Now().UnixNano())
	return sftp.NewClientPipe(recvReader{pr, last}, pw, opts...)
}

// sftpConn is one SSH connection with its SFTP session.
type sftpConn struct {
	ssh      *ssh.Client
	sftp     *sftp.Client
	lastRecv atomic.Int64 // unix nanoseconds of the server's last byte
	posix    bool         // posix-rename@openssh.com offered
	done     chan struct{}
	once     sync.Once
	rel      func()
}

func (c *sftpConn) close() {
	c.once.Do(func() {
		close(c.done)
		// The SSH connection first: sftp.Client.Close waits for the
		// session to end, which never happens on a dead peer.
		c.ssh.Close()
		c.sftp.Close()
		c.rel()
	})
}

func (c *sftpConn) closed() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// conn returns the live connection, dialling one if needed.
func (s *SFTP) conn(ctx context.Context) (*sftpConn, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cur != nil && !s.cur.closed() {
		return s.cur, nil
	}
	s.cur = nil
	c, err := s.dial(ctx)
	if err != nil {
		return nil, err
	}
	s.cur = c
	return c, nil
}

func (s *SFTP) dial(ctx context.Context) (*sftpConn, error) {
	if err := s.opts.Sessions.acquire(ctx); err != nil {
		return nil, err
	}
	released := false
	release := func() {
		if !released {
			released = true
			s.opts.Sessions.release()
		}
	}
	fail := func(err error) (*sftpConn, error) { release(); return nil, err }

	dctx, cancel := context.WithTimeout(ctx, s.opts.DialTimeout)
	defer cancel()
	raw, err := s.opts.Dial(dctx, "tcp", s.addr)
	if err != nil {
		return fail(&TemporaryError{Op: "dial", Err: err})
	}
	// ssh.Dial's timeout covers only the TCP connect: bound the handshake
	// with a deadline on the raw connection, and let ctx interrupt it.
	raw.SetDeadline(time.Now().Add(s.opts.DialTimeout)) // the real clock: a network deadline
	stop := context.AfterFunc(dctx, func() { raw.Close() })
	hostKeyChecked := false
	cfg := *s.config
	cfg.HostKeyCallback = func(h string, r net.Addr, k ssh.PublicKey) error {
		err := s.hostKey.check(h, r, k)
		hostKeyChecked = err == nil
		return err
	}
	cc, chans, reqs, err := ssh.NewClientConn(raw, s.addr, &cfg)
	stopped := stop()
	if err != nil {
		raw.Close()
		var hke *HostKeyError
		var ne net.Error
		var ane *ssh.AlgorithmNegotiationError
		switch {
		case errors.As(err, &hke):
			return fail(hke)
		case errors.As(err, &ane) && ane.What == "host key":
			// The server offers no key of a pinned type: find out which
			// key it does offer, and report it as a changed key.
			if perr := s.offeredKey(ctx); perr != nil {
				return fail(perr)
			}
			return fail(&ConfigError{fmt.Errorf("ssh handshake with %s: %w", s.addr, err)})
		case !stopped || ctx.Err() != nil:
			return fail(&TemporaryError{Op: "dial", Err: fmt.Errorf("ssh handshake with %s: %w", s.addr, dctx.Err())})
		case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.As(err, &ne):
			return fail(&TemporaryError{Op: "dial", Err: err})
		case hostKeyChecked:
			// The server is the pinned one and refused us, or we share
			// no algorithm: a configuration matter.
			return fail(&ConfigError{fmt.Errorf("ssh login to %s as %s: %w", s.addr, s.opts.User, err)})
		default:
			return fail(&TemporaryError{Op: "dial", Err: err})
		}
	}
	raw.SetDeadline(time.Time{})
	client := ssh.NewClient(cc, chans, reqs)
	var copts []sftp.ClientOption
	copts = append(copts, sftp.MaxConcurrentRequestsPerFile(s.opts.Concurrency), sftp.UseConcurrentWrites(true))
	if s.opts.ReadOnce {
		copts = append(copts, sftp.UseConcurrentReads(false))
	}
	// The session by hand rather than sftp.NewClient: what the server
	// sends goes through recvReader, for the request deadline.
	c := &sftpConn{ssh: client, done: make(chan struct{}), rel: release}
	sc, err := newSFTPClient(client, &c.lastRecv, copts)
	if err != nil {
		client.Close()
		return fail(&TemporaryError{Op: "dial", Err: fmt.Errorf("sftp subsystem: %w", err)})
	}
	c.sftp = sc
	_, c.posix = sc.HasExtension("posix-rename@openssh.com")
	go func() {
		client.Wait()
		c.close()
	}()
	if s.opts.KeepAlive > 0 {
		go c.keepalive(s.opts.KeepAlive, s.opts.IOTimeout)
	}
	return c, nil
}

// offeredKey connects once more, accepting any host key algorithm, only
// to learn the key the server offers; the handshake ends at the key. It
// returns the *HostKeyError of that key (nil if the key is pinned after
// all), or a TemporaryError when the server cannot be reached.
func (s *SFTP) offeredKey(ctx context.Context) error {
	dctx, cancel := context.WithTimeout(ctx, s.opts.DialTimeout)
	defer cancel()
	raw, err := s.opts.Dial(dctx, "tcp", s.addr)
	if err != nil {
		return &TemporaryError{Op: "dial", Err: err}
	}
	defer raw.Close()
	raw.SetDeadline(time.Now().Add(s.opts.DialTimeout)) // the real clock: a network deadline
	stop := context.AfterFunc(dctx, func() { raw.Close() })
	defer stop()
	var checked, keyErr error
	cfg := *s.config
	cfg.HostKeyAlgorithms = nil
	cfg.HostKeyCallback = func(h string, r net.Addr, k ssh.PublicKey) error {
		checked = errors.New("host key seen")
		keyErr = s.hostKey.check(h, r, k)
		if keyErr == nil {
			return checked // never log in on this connection
		}
		return keyErr
	}
	_, _, _, err = ssh.NewClientConn(raw, s.addr, &cfg)
	if checked == nil {
		return &TemporaryError{Op: "dial", Err: fmt.Errorf("ssh handshake with %s: %w", s.addr, err)}
	}
	return keyErr
}

// keepalive sends keepalive@openssh.com every interval and closes the
// connection when a reply does not come within timeout; closing unblocks
// every pending SFTP call.
func (c *sftpConn) keepalive(interval, timeout time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-c.done:
			return
		case <-t.C:
		}
		res := make(chan error, 1)
		go func() {
			_, _, err := c.ssh.SendRequest("keepalive@openssh.com", true, nil)
			res <- err
		}()
		timer := time.NewTimer(timeout)
		select {
		case err := <-res:
			timer.Stop()
			if err != nil {
				c.close()
				return
			}
		case <-timer.C:
			c.close()
			return
		case <-c.done:
			timer.Stop()
			return
		}
	}
}

// permanent reports whether err is an answer from the server (or a check
// of ours) rather than a broken connection.
func permanent(err error) bool {
	var se *sftp.StatusError
	var ce interface{ ConfigError() bool }
	return errors.As(err, &se) || errors.Is(err, fs.ErrNotExist) || errors.Is(err, fs.ErrPermission) ||
		errors.Is(err, fs.ErrExist) || errors.Is(err, ErrBadName) || errors.Is(err, ErrNotRegular) ||
		errors.Is(err, ErrReplaced) || errors.As(err, &ce)
}

// do runs fn on a live connection. ctx ending closes the connection, which
// unblocks fn; so does the request deadline (see watchdog), which fn
// pushes back with w.touch while a transfer moves. An error that is not
// an answer from the server closes the connection and comes back as a
// TemporaryError.
func (s *SFTP) do(ctx context.Context, op string, fn func(c *sftpConn, w *watchdog) error) error {
	c, err := s.conn(ctx)
	if err != nil {
		return err
	}
	stop := context.AfterFunc(ctx, c.close)
	w := c.watch(s.opts.RequestTimeout)
	err = fn(c, w)
	w.stop()
	stop()
	return s.classify(ctx, c, w, op, err)
}

// watchdog is a request deadline. pkg/sftp has no per-request timeout: a
// server blocked on one file (a FIFO in its place, a hung disk) keeps
// answering keepalives while the request waits for ever. The watchdog
// closes the connection, which ends every call pending on it, once
// neither a byte came from the SFTP server nor the operation moved a byte
// (touch) for d.
type watchdog struct {
	d       time.Duration
	c       *sftpConn
	last    atomic.Int64 // unix nanoseconds of the last touch
	t       *time.Timer
	fired   atomic.Bool
	stopped atomic.Bool
}

func (c *sftpConn) watch(d time.Duration) *watchdog {
	w := &watchdog{d: d, c: c}
	w.last.Store(time.Now().UnixNano())
	w.t = time.AfterFunc(d, w.check)
	return w
}

func (w *watchdog) check() {
	if w.stopped.Load() {
		return
	}
	last := max(w.last.Load(), w.c.lastRecv.Load())
	if idle := time.Duration(time.Now().UnixNano() - last); idle < w.d {
		w.t.Reset(w.d - idle)
		return
	}
	w.fired.Store(true)
	w.c.close()
}

// touch pushes the deadline back: the transfer moved.
func (w *watchdog) touch() { w.last.Store(time.Now().UnixNano()) }

func (w *watchdog) stop() {
	w.stopped.Store(true)
	w.t.Stop()
}

// expired is the error of a request that hit the deadline.
func (w *watchdog) expired() error {
	return fmt.Errorf("no answer from the server within %s (request deadline)", w.d)
}

// recvReader notes when the SFTP server last sent a byte.
type recvReader struct {
	r    io.Reader
	last *atomic.Int64
}

func (r recvReader) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	if n > 0 {
		r.last.Store(time.Now().UnixNano())
	}
	return n, err
}

// touchReader and touchWriter push a watchdog back at every byte moved.
type touchReader struct {
	r io.Reader
	w *watchdog
}

func (t touchReader) Read(p []byte) (int, error) {
	n, err := t.r.Read(p)
	if n > 0 {
		t.w.touch()
	}
	return n, err
}

type touchWriter struct {
	wr io.Writer
	w  *watchdog
}

func (t touchWriter) Write(p []byte) (int, error) {
	n, err := t.wr.Write(p)
	t.w.touch()
	return n, err
}

func (s *SFTP) classify(ctx context.Context, c *sftpConn, w *watchdog, op string, err error) error {
	switch {
	case err == nil:
		return nil
	case ctx.Err() != nil:
		return &TemporaryError{Op: op, Err: ctx.Err()}
	case w != nil && w.fired.Load():
		c.close()
		return &TemporaryError{Op: op, Err: w.expired()}
	case IsTemporary(err):
		c.close()
		return err
	case permanent(err) && !c.closed():
		return err
	default:
		c.close()
		return &TemporaryError{Op: op, Err: err}
	}
}

func (s *SFTP) remote(dir, name string) string { return path.Join(dir, name) }

// List implements Drop.
func (s *SFTP) List(ctx context.Context) ([]FileInfo, error) {
	if s.opts.Inbox == "" {
		return nil, errNoFolder(Inbox)
	}
	var out []FileInfo
	err := s.do(ctx, "list", func(c *sftpConn, _ *watchdog) error {
		infos, err := c.sftp.ReadDirContext(ctx, s.opts.Inbox)
		if err != nil {
			return err
		}
		for _, fi := range infos {
			if !fi.Mode().IsRegular() || nameRefused(ctx, fi.Name()) {
				continue
			}
			if s.keptLocally(fi.Name(), fi.Size()) {
				continue
			}
			out = append(out, FileInfo{Name: fi.Name(), Size: fi.Size(), ModTime: fi.ModTime()})
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// keptLocally reports whether a copy of the input is already in the local
// archive or quarantine.
func (s *SFTP) keptLocally(name string, size int64) bool {
	for _, dir := range []string{s.opts.LocalArchive, s.opts.LocalQuarantine} {
		if dir == "" {
			continue
		}
		if st, err := os.Lstat(filepath.Join(dir, name)); err == nil && st.Mode().IsRegular() && st.Size() == size {
			return true
		}
	}
	return false
}

// Open implements Drop. Reading the returned stream after a connection
// loss fails with a TemporaryError; the Retry wrapper resumes it.
func (s *SFTP) Open(ctx context.Context, name string) (io.ReadCloser, error) {
	if err := CheckName(name); err != nil {
		return nil, err
	}
	if s.opts.Inbox == "" {
		return nil, errNoFolder(Inbox)
	}
	var f *sftp.File
	var conn *sftpConn
	var id identity
	p := s.remote(s.opts.Inbox, name)
	err := s.do(ctx, "open", func(c *sftpConn, _ *watchdog) error {
		var err error
		conn = c
		// A server that deletes what is stat'ed gets no stat: its file
		// cannot be replaced under us once read anyway.
		// The identity is what Lstat says, as Move will ask again: some
		// servers fill in fewer attributes for an open handle.
		if !s.opts.ReadOnce {
			st, err := c.sftp.Lstat(p)
			if err != nil {
				return err
			}
			if !st.Mode().IsRegular() {
				return fmt.Errorf("%w: %s (%s)", ErrNotRegular, SafeName(name), st.Mode().Type())
			}
			id = sftpIdentity(st)
		}
		f, err = c.sftp.Open(p)
		if err != nil || s.opts.ReadOnce {
			return err
		}
		// Swapped between the Lstat and the open: the handle says so.
		if st, err := f.Stat(); err == nil {
			switch {
			case !st.Mode().IsRegular():
				f.Close()
				return fmt.Errorf("%w: %s (%s)", ErrNotRegular, SafeName(name), st.Mode().Type())
			case st.Size() != id.size:
				f.Close()
				return &TemporaryError{Op: "open", Err: fmt.Errorf("%s changed while it was opened", SafeName(name))}
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	s.opened.set(name, id)
	return &sftpReader{s: s, ctx: ctx, c: conn, f: f, id: id, stop: context.AfterFunc(ctx, conn.close)}, nil
}

// sftpIdentity: SFTP gives size and modification time (in seconds).
func sftpIdentity(fi fs.FileInfo) identity {
	return identity{size: fi.Size(), mtimeNS: fi.ModTime().UnixNano(), known: true}
}

type sftpReader struct {
	s    *SFTP
	ctx  context.Context
	c    *sftpConn
	f    *sftp.File
	id   identity
	stop func() bool
}

// fileIdentity lets Retry check that a resumed download reads on in the
// same file.
func (r *sftpReader) fileIdentity() identity { return r.id }

func (r *sftpReader) Read(p []byte) (int, error) {
	w := r.c.watch(r.s.opts.RequestTimeout)
	n, err := r.f.Read(p)
	w.stop()
	if err == io.EOF {
		return n, err
	}
	return n, r.s.classify(r.ctx, r.c, w, "read", err)
}

// WriteTo keeps pkg/sftp's concurrent download for io.Copy; the request
// deadline runs from the last byte written.
func (r *sftpReader) WriteTo(dst io.Writer) (int64, error) {
	w := r.c.watch(r.s.opts.RequestTimeout)
	n, err := r.f.WriteTo(touchWriter{dst, w})
	w.stop()
	return n, r.s.classify(r.ctx, r.c, w, "read", err)
}

// Seek lets the Retry wrapper resume after a reconnect.
func (r *sftpReader) Seek(off int64, whence int) (int64, error) { return r.f.Seek(off, whence) }

func (r *sftpReader) Close() error {
	r.stop()
	err := r.f.Close()
	if r.c.closed() {
		return nil // nothing left to close
	}
	return err
}

// Put implements Drop: OpenFile(O_WRONLY|O_CREATE|O_TRUNC) under the
// temporary name (Create would ask for read access too, which some servers
// refuse), a concurrent upload, the size checked on the server, then a
// POSIX rename where the server offers it. Without posix-rename a plain
// rename cannot replace an existing file on OpenSSH; Put then fails rather
// than delete the partner's copy.
func (s *SFTP) Put(ctx context.Context, name string, r io.Reader, size int64) error {
	if err := CheckName(name); err != nil {
		return err
	}
	if s.opts.Outbox == "" {
		return errNoFolder(Outbox)
	}
	tmp := s.remote(s.opts.Outbox, s.opts.TempPrefix+name+s.opts.TempSuffix)
	final := s.remote(s.opts.Outbox, name)
	return s.do(ctx, "put", func(c *sftpConn, w *watchdog) (err error) {
		defer func() {
			if err != nil && !c.closed() {
				c.sftp.Remove(tmp)
			}
		}()
		f, err := c.sftp.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC)
		if err != nil {
			return err
		}
		n, err := f.ReadFromWithConcurrency(touchReader{ctxReader{ctx, r}, w}, s.opts.Concurrency)
		// With concurrent writes a failed write may surface only at Close.
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
		if n != size {
			return fmt.Errorf("put %s: read %d bytes, want %d", SafeName(name), n, size)
		}
		st, err := c.sftp.Stat(tmp)
		if err != nil {
			return err
		}
		if st.Size() != size {
			return &TemporaryError{Op: "put", Err: fmt.Errorf("%s: %d bytes on the server, want %d", SafeName(name), st.Size(), size)}
		}
		if c.posix {
			return c.sftp.PosixRename(tmp, final)
		}
		if err := c.sftp.Rename(tmp, final); err != nil {
			if _, serr := c.sftp.Lstat(final); serr == nil {
				return fmt.Errorf("put %s: already delivered, and the server has no posix-rename to replace it: %w", SafeName(name), err)
			}
			return err
		}
		return nil
	})
}

// Move implements Drop.
func (s *SFTP) Move(ctx context.Context, name string, to Folder) error {
	if err := CheckName(name); err != nil {
		return err
	}
	var dir, local string
	switch to {
	case Archive:
		dir, local = s.opts.Archive, s.opts.LocalArchive
	case Quarantine:
		dir, local = s.opts.Quarantine, s.opts.LocalQuarantine
	default:
		return fmt.Errorf("drop: move %s to %s: only archive or quarantine", SafeName(name), to)
	}
	if s.opts.Inbox == "" {
		return errNoFolder(Inbox)
	}
	read, wasRead := s.opened.get(name)
	src := s.remote(s.opts.Inbox, name)
	// What lies under the name now: a regular file, and the one read.
	check := func(c *sftpConn) error {
		if s.opts.ReadOnce {
			return nil
		}
		st, err := c.sftp.Lstat(src)
		if err != nil {
			return err
		}
		if !st.Mode().IsRegular() {
			return fmt.Errorf("%w: %s (%s)", ErrNotRegular, SafeName(name), st.Mode().Type())
		}
		if now := sftpIdentity(st); wasRead && !read.same(now) {
			return errReplaced(name, read, now)
		}
		return nil
	}
	if local != "" {
		if err := s.do(ctx, "move", func(c *sftpConn, _ *watchdog) error { return check(c) }); err != nil {
			if errors.Is(err, ErrReplaced) {
				s.opened.forget(name)
			}
			return err
		}
		err := s.copyLocal(ctx, name, local, read)
		if err == nil || errors.Is(err, ErrReplaced) {
			s.opened.forget(name)
		}
		return err
	}
	err := s.do(ctx, "move", func(c *sftpConn, _ *watchdog) error {
		if err := check(c); err != nil {
			return err
		}
		dst := s.remote(dir, name)
		if _, err := c.sftp.Lstat(dst); err == nil {
			dst = s.remote(dir, archiveName(name, s.opts.Now()))
		} else if !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		// A plain rename never replaces an existing file on OpenSSH.
		if err := c.sftp.Rename(src, dst); err != nil {
			return err
		}
		if wasRead && read.known {
			// Replaced between the check and the rename: the newcomer
			// goes back to the inbox.
			if st, err := c.sftp.Lstat(dst); err == nil && !read.same(sftpIdentity(st)) {
				if err := c.sftp.Rename(dst, src); err == nil {
					return errReplaced(name, read, sftpIdentity(st))
				}
			}
		}
		return nil
	})
	if err == nil || errors.Is(err, ErrReplaced) {
		s.opened.forget(name)
	}
	return err
}

// copyLocal downloads an input into a local folder, atomically and
// without replacing an earlier copy.
func (s *SFTP) copyLocal(ctx context.Context, name, dir string, read identity) error {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return &ConfigError{err}
	}
	defer root.Close()
	target := name
	if _, err := root.Lstat(target); err == nil {
		target = archiveName(name, s.opts.Now())
	}
	tmp := "." + target + ".part"
	return s.do(ctx, "move", func(c *sftpConn, w *watchdog) (err error) {
		src, err := c.sftp.Open(s.remote(s.opts.Inbox, name))
		if err != nil {
			return err
		}
		defer src.Close()
		if read.known && !s.opts.ReadOnce {
			st, err := src.Stat()
			if err != nil {
				return err
			}
			if now := sftpIdentity(st); !read.same(now) {
				return errReplaced(name, read, now)
			}
		}
		f, err := root.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o640)
		if err != nil {
			return &ConfigError{err}
		}
		defer func() {
			if err != nil {
				f.Close()
				root.Remove(tmp)
			}
		}()
		n, err := src.WriteTo(touchWriter{f, w})
		if err != nil {
			return err
		}
		st, err := src.Stat()
		if err != nil {
			return err
		}
		if n != st.Size() {
			return &TemporaryError{Op: "move", Err: fmt.Errorf("%s: copied %d bytes of %d", SafeName(name), n, st.Size())}
		}
		if err = f.Sync(); err != nil {
			return err
		}
		if err = f.Close(); err != nil {
			return err
		}
		if err = root.Rename(tmp, target); err != nil {
			return err
		}
		return syncDir(dir)
	})
}

// Close implements Drop.
func (s *SFTP) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cur != nil {
		s.cur.close()
		s.cur = nil
	}
	return nil
}
