package drop

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"hash"
	"io"
	"log/slog"
	"sync"
)

// Logged wraps a drop so that every pickup, delivery, move and failure is
// one structured log line with the file's name, size and SHA-256 (never
// its content), and is counted by m. Give it a logger that already
// carries the partner and the job (logger.With). Put it outside Retry:
// Logged(Retry(d, ...), ...).
func Logged(d Drop, log *slog.Logger, m Meter) Drop {
	if m == nil {
		m = nopMeter{}
	}
	return &logged{d: d, log: log, m: m, seen: map[string]digest{}}
}

type digest struct {
	size int64
	sum  string
}

type logged struct {
	d   Drop
	log *slog.Logger
	m   Meter

	mu   sync.Mutex
	seen map[string]digest // inputs read to the end, for the move's log line
}

func (l *logged) fail(ctx context.Context, op, name string, err error) {
	if errors.Is(err, ErrReplaced) || errors.Is(err, ErrNotRegular) {
		// Not a failure of the drop: a file the caller skips, and says so.
		return
	}
	l.m.Count("failure")
	attrs := []slog.Attr{slog.String("op", op), slog.String("error", err.Error())}
	if name != "" {
		attrs = append(attrs, slog.String("file", LogName(name)))
	}
	l.log.LogAttrs(ctx, slog.LevelError, "drop failure", attrs...)
}

func (l *logged) List(ctx context.Context) ([]FileInfo, error) {
	out, err := l.d.List(ctx)
	if err != nil {
		l.fail(ctx, "list", "", err)
	}
	return out, err
}

func (l *logged) Open(ctx context.Context, name string) (io.ReadCloser, error) {
	rc, err := l.d.Open(ctx, name)
	if err != nil {
		l.fail(ctx, "open", name, err)
		return nil, err
	}
	return &loggedReader{l: l, ctx: ctx, name: name, rc: rc, h: sha256.New()}, nil
}

type loggedReader struct {
	l    *logged
	ctx  context.Context
	name string
	rc   io.ReadCloser
	h    hash.Hash
	n    int64
	done bool
}

func (r *loggedReader) account(n int64, err error) {
	r.n += n
	switch {
	case err == io.EOF || err == nil && r.done:
		sum := hex.EncodeToString(r.h.Sum(nil))
		r.l.mu.Lock()
		r.l.seen[r.name] = digest{r.n, sum}
		r.l.mu.Unlock()
		r.l.m.Count("picked_up")
		r.l.log.LogAttrs(r.ctx, slog.LevelInfo, "picked up", slog.String("file", LogName(r.name)),
			slog.Int64("size", r.n), slog.String("sha256", sum))
	case err != nil:
		r.l.fail(r.ctx, "read", r.name, err)
	}
}

func (r *loggedReader) Read(p []byte) (int, error) {
	n, err := r.rc.Read(p)
	r.h.Write(p[:n])
	r.account(int64(n), err)
	return n, err
}

func (r *loggedReader) WriteTo(w io.Writer) (int64, error) {
	var n int64
	var err error
	mw := io.MultiWriter(w, r.h)
	if wt, ok := r.rc.(io.WriterTo); ok {
		n, err = wt.WriteTo(mw)
	} else {
		n, err = io.Copy(mw, struct{ io.Reader }{r.rc})
	}
	r.done = err == nil
	r.account(n, err)
	return n, err
}

func (r *loggedReader) Close() error { return r.rc.Close() }

func (l *logged) Put(ctx context.Context, name string, rd io.Reader, size int64) error {
	hr := &hashReader{r: rd, h: sha256.New()}
	err := l.d.Put(ctx, name, hr, size)
	if err != nil {
		l.fail(ctx, "put", name, err)
		return err
	}
	l.m.Count("delivered")
	l.log.LogAttrs(ctx, slog.LevelInfo, "delivered", slog.String("file", LogName(name)),
		slog.Int64("size", hr.n), slog.String("sha256", hex.EncodeToString(hr.h.Sum(nil))))
	return nil
}

// hashReader hashes what is read; seeking back to the start (a retried
// upload) starts the hash again.
type hashReader struct {
	r io.Reader
	h hash.Hash
	n int64
}

func (h *hashReader) Read(p []byte) (int, error) {
	n, err := h.r.Read(p)
	h.h.Write(p[:n])
	h.n += int64(n)
	return n, err
}

func (h *hashReader) Seek(off int64, whence int) (int64, error) {
	s, ok := h.r.(io.Seeker)
	if !ok || off != 0 || whence != io.SeekStart {
		return 0, errors.New("drop: delivery stream cannot be rewound")
	}
	if _, err := s.Seek(0, io.SeekStart); err != nil {
		return 0, err
	}
	h.h.Reset()
	h.n = 0
	return 0, nil
}

func (l *logged) Move(ctx context.Context, name string, to Folder) error {
	err := l.d.Move(ctx, name, to)
	if err != nil {
		l.fail(ctx, "move", name, err)
		return err
	}
	l.mu.Lock()
	dg, ok := l.seen[name]
	delete(l.seen, name)
	l.mu.Unlock()
	event := "archived"
	if to == Quarantine {
		event = "quarantined"
	}
	l.m.Count(event)
	attrs := []slog.Attr{slog.String("file", LogName(name)), slog.String("to", to.String())}
	if ok {
		attrs = append(attrs, slog.Int64("size", dg.size), slog.String("sha256", dg.sum))
	}
	l.log.LogAttrs(ctx, slog.LevelInfo, event, attrs...)
	return nil
}

func (l *logged) Close() error { return l.d.Close() }

func (l *logged) moveMarker(ctx context.Context, name string, to Folder) error {
	err := moveMarker(ctx, l.d, name, to)
	if err != nil {
		l.fail(ctx, "move", name, err)
		return err
	}
	l.log.LogAttrs(ctx, slog.LevelDebug, "marker moved", slog.String("file", LogName(name)), slog.String("to", to.String()))
	return nil
}
