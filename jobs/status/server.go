// Package status serves the read-only status page of a cut-over in
// progress: per partner and direction the cards by state, the OTA messages
// and their PoR verdicts, the files in and out, quarantined files with the
// command that reprocesses them, what partners owe past their deadlines
// and the jobs; a chart of cards by state over time; a page per batch and
// per card; the same data as JSON under /api/.
//
// Everything is read through the ledger's read functions (those that
// `resub cards` and `resub batches` use, and aggregates answered from
// indexes); no request changes anything and no party step runs. Pages are
// rendered on the server with html/template and work without JavaScript;
// the overview refreshes itself.
//
// The server listens on loopback unless basic auth (http.password) or TLS
// (http.tls) is configured. Only GET and HEAD are answered. No page, API
// response or header carries a secret: the ledger holds none in clear, the
// pages show no wrapped blob, and the password is only compared.
package status

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"resub/jobs/config"
	"resub/processor/ledger"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Options configure a Server.
type Options struct {
	// Config is the party's configuration: its partners, jobs and the
	// http section (password, TLS).
	Config *config.Config
	// Ledger is read, never written.
	Ledger *ledger.DB
	// Addr is where Start listens (host:port).
	Addr string
	// Extra handlers served on the same listener behind the same checks,
	// by path (e.g. /metrics).
	Extra map[string]http.Handler
	// Refresh is how often the overview reloads itself (default 10s).
	Refresh time.Duration
	Log     *slog.Logger
	Now     func() time.Time
}

// Server is the status page.
type Server struct {
	o     Options
	tmpl  map[string]*template.Template
	chart chartCache
	snap  snapshotCache
	// computeOverview reads the overview's figures (tests slow it down).
	computeOverview func(context.Context) (*Overview, error)
	// life ends at Stop: background computations stop with it.
	life     context.Context
	endLife  context.CancelFunc
	bg       sync.WaitGroup
	password []byte // sha256 of the password; nil: no auth
	handler  http.Handler

	mu      sync.Mutex
	srv     *http.Server
	ln      net.Listener
	done    chan error
	stopped bool
}

// ErrExposed says the address is not loopback and neither basic auth nor
// TLS is configured.
var ErrExposed = errors.New("the status page serves a non-loopback address only with http.password (basic auth) or http.tls configured")

// New prepares the server: it resolves the password and checks that the
// address may be served with the configuration.
func New(o Options) (*Server, error) {
	if o.Config == nil || o.Ledger == nil {
		return nil, errors.New("status: a configuration and a ledger are required")
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Refresh <= 0 {
		o.Refresh = 10 * time.Second
	}
	s := &Server{o: o}
	s.computeOverview = s.overview
	s.life, s.endLife = context.WithCancel(context.Background())
	if o.Config.HTTP.Password.IsSet() {
		pw, err := o.Config.Resolve(o.Config.HTTP.Password)
		if err != nil {
			return nil, configError{fmt.Errorf("http.password: %w", err)}
		}
		if len(pw) == 0 {
			return nil, configError{errors.New("http.password: empty")}
		}
		sum := sha256.Sum256(pw)
		pw.Wipe()
		s.password = sum[:]
	}
	if o.Addr != "" {
		if err := CheckAddr(o.Addr, s.password != nil, o.Config.HTTP.TLS.Enabled()); err != nil {
			return nil, configError{err}
		}
	}
	t, err := parseTemplates()
	if err != nil {
		return nil, err
	}
	s.tmpl = t
	s.handler = s.routes()
	return s, nil
}

// configError is a problem of the configuration or the command line: the
// CLI exits 2.
type configError struct{ error }

func (c configError) ConfigError() bool { return true }
func (c configError) Unwrap() error     { return c.error }

// CheckAddr refuses to serve a non-loopback address (or every interface)
// without basic auth or TLS.
func CheckAddr(addr string, auth, tlsOn bool) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("http address %q: %w", addr, err)
	}
	if auth || tlsOn {
		return nil
	}
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return nil
	}
	return fmt.Errorf("http address %q: %w", addr, ErrExposed)
}

// Handler is the whole site: security headers, method and auth checks,
// then the routes.
func (s *Server) Handler() http.Handler { return s.handler }

// Start listens on Options.Addr and serves until Stop. It returns at once.
func (s *Server) Start(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.srv != nil {
		return nil
	}
	if s.o.Addr == "" {
		return errors.New("status: no address to listen on")
	}
	ln, err := (&net.ListenConfig{}).Listen(ctx, "tcp", s.o.Addr)
	if err != nil {
		return configError{fmt.Errorf("http address: %w", err)}
	}
	scheme := "http"
	if t := s.o.Config.HTTP.TLS; t.Enabled() {
		cert, err := tls.LoadX509KeyPair(s.o.Config.Abs(t.Cert), s.o.Config.Abs(t.Key))
		if err != nil {
			ln.Close()
			return configError{fmt.Errorf("http.tls: %w", err)}
		}
		ln = tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})
		scheme = "https"
	}
	s.ln = ln
	s.srv = &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(s.o.Log.Handler(), slog.LevelWarn),
	}
	s.done = make(chan error, 1)
	srv := s.srv
	go func() { s.done <- srv.Serve(ln) }()
	// Warm the aggregates and the chart, so that the first visitor of a
	// big ledger does not wait for them.
	s.snap.mu.Lock()
	s.refreshLocked()
	s.snap.mu.Unlock()
	s.bg.Add(1)
	go func() {
		defer s.bg.Done()
		if _, err := s.chart.series(s.life, s.o.Ledger); err != nil && s.life.Err() == nil {
			s.o.Log.Error("status page: chart", "error", err)
		}
	}()
	s.o.Log.Info("serving the status page", "url", scheme+"://"+ln.Addr().String()+"/", "auth", s.password != nil)
	return nil
}

// URL is the page's address, once started.
func (s *Server) URL() string {
	a := s.Addr()
	if a == "" {
		return ""
	}
	if s.o.Config.HTTP.TLS.Enabled() {
		return "https://" + a + "/"
	}
	return "http://" + a + "/"
}

// Addr is the address the server listens on, once started.
func (s *Server) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln == nil {
		return ""
	}
	return s.ln.Addr().String()
}

// Stop shuts the server down, waiting for requests in flight until ctx
// ends. It is safe to call more than once.
func (s *Server) Stop(ctx context.Context) error {
	s.mu.Lock()
	srv, done := s.srv, s.done
	if s.stopped {
		s.mu.Unlock()
		return nil
	}
	s.stopped = true
	s.mu.Unlock()
	s.endLife()
	defer s.bg.Wait()
	if srv == nil {
		return nil
	}
	err := srv.Shutdown(ctx)
	if err != nil {
		err = errors.Join(err, srv.Close())
	}
	if serr := <-done; serr != nil && !errors.Is(serr, http.ErrServerClosed) {
		err = errors.Join(err, serr)
	}
	return err
}

// contentSecurityPolicy allows the page's own style sheet and nothing
// else: no script, no frame, no form posting anywhere.
const contentSecurityPolicy = "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

// guard sets the security headers on every answer, answers only GET and
// HEAD, and checks basic auth when a password is configured.
func (s *Server) guard(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", contentSecurityPolicy)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Cache-Control", "no-store")
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			h.Set("Allow", "GET, HEAD")
			http.Error(w, "read-only: only GET and HEAD are answered", http.StatusMethodNotAllowed)
			return
		}
		if s.password != nil && !s.authorised(r) {
			h.Set("WWW-Authenticate", `Basic realm="resub status", charset="UTF-8"`)
			http.Error(w, "authorisation required", http.StatusUnauthorized)
			s.o.Log.Warn("status page: authorisation refused", "remote", r.RemoteAddr, "path", r.URL.Path)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// authorised compares the user and the password's digest in constant time.
func (s *Server) authorised(r *http.Request) bool {
	user, pw, ok := r.BasicAuth()
	if !ok {
		return false
	}
	sum := sha256.Sum256([]byte(pw))
	wantUser := sha256.Sum256([]byte(s.o.Config.HTTP.UserName()))
	gotUser := sha256.Sum256([]byte(user))
	userOK := subtle.ConstantTimeCompare(wantUser[:], gotUser[:])
	pwOK := subtle.ConstantTimeCompare(s.password, sum[:])
	return userOK&pwOK == 1
}

func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", s.page(s.overviewPage))
	mux.HandleFunc("GET /chart.svg", s.chartSVG)
	mux.HandleFunc("GET /batches", s.page(s.batchesPage))
	mux.HandleFunc("GET /batches/{id}", s.page(s.batchPage))
	mux.HandleFunc("GET /cards", s.page(s.cardsPage))
	mux.HandleFunc("GET /cards/{iccid}", s.page(s.cardPage))
	mux.HandleFunc("GET /api/overview", s.api(s.overviewAPI))
	mux.HandleFunc("GET /api/chart", s.api(s.chartAPI))
	mux.HandleFunc("GET /api/batches", s.api(s.batchesAPI))
	mux.HandleFunc("GET /api/batches/{id}", s.api(s.batchAPI))
	mux.HandleFunc("GET /api/cards", s.api(s.cardsAPI))
	mux.HandleFunc("GET /api/cards/{iccid}", s.api(s.cardAPI))
	static, _ := fs.Sub(staticFS, "static")
	files := http.StripPrefix("/static/", http.FileServerFS(static))
	mux.HandleFunc("GET /static/", func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/") { // no folder listings
			s.notFound(w, r, "no page at "+r.URL.Path)
			return
		}
		files.ServeHTTP(w, r)
	})
	for path, h := range s.o.Extra {
		mux.Handle("GET "+path, h)
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		s.notFound(w, r, "no page at "+r.URL.Path)
	})
	return s.guard(mux)
}

// clientError is a request the server cannot answer: a page that does not
// exist or a malformed parameter.
type clientError struct {
	code int
	msg  string
}

func (e *clientError) Error() string { return e.msg }

func notFoundf(format string, a ...any) error {
	return &clientError{http.StatusNotFound, fmt.Sprintf(format, a...)}
}

func badRequestf(format string, a ...any) error {
	return &clientError{http.StatusBadRequest, fmt.Sprintf(format, a...)}
}

// errorStatus maps an error to its status and the text shown: a client
// error as it is, anything else as a generic message (the log has it).
func (s *Server) errorStatus(r *http.Request, err error) (int, string) {
	var ce *clientError
	if errors.As(err, &ce) {
		return ce.code, ce.msg
	}
	if errors.Is(err, context.Canceled) {
		return 499, "request cancelled"
	}
	s.o.Log.Error("status page", "path", r.URL.Path, "error", err)
	return http.StatusInternalServerError, "the ledger could not be read; see the log"
}

func (s *Server) notFound(w http.ResponseWriter, r *http.Request, msg string) {
	if strings.HasPrefix(r.URL.Path, "/api/") {
		writeJSON(w, r, http.StatusNotFound, map[string]string{"error": msg})
		return
	}
	s.render(w, r, http.StatusNotFound, "error", &errorView{base: s.base("Not found"), Code: http.StatusNotFound, Message: msg})
}
