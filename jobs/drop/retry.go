package drop

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"log/slog"
	"math/rand/v2"
	"time"
)

// Meter counts drop events for metrics. The events are "picked_up",
// "delivered", "archived", "quarantined", "retry" and "failure".
type Meter interface {
	Count(event string)
}

type nopMeter struct{}

func (nopMeter) Count(string) {}

// RetryOptions configures Retry.
type RetryOptions struct {
	// Attempts is the number of tries per operation, the first included;
	// default 5.
	Attempts int
	// Base and Max bound the exponential backoff: the n-th retry waits a
	// random time between half and all of min(Max, Base*2^n).
	// Defaults 500ms and 30s.
	Base, Max time.Duration
	// Jitter returns a random int64 in [0, n); default math/rand/v2.
	Jitter func(n int64) int64
	// Sleep waits for d or until ctx ends; default a timer.
	Sleep func(ctx context.Context, d time.Duration) error
	Log   *slog.Logger // default discards
	Meter Meter
}

// Retry wraps a drop so that operations failing with a temporary error
// are tried again after a backoff. The drop underneath is expected to
// reconnect by itself, as SFTP does. Put is retried only when its reader
// is an io.Seeker (it starts again from offset 0); a stream from Open
// resumes at its offset after a reconnect when the underlying stream is
// an io.Seeker. A retried Move that finds its source gone takes the
// earlier attempt, whose answer was lost, as done.
func Retry(d Drop, o RetryOptions) Drop {
	if o.Attempts <= 0 {
		o.Attempts = 5
	}
	if o.Base <= 0 {
		o.Base = 500 * time.Millisecond
	}
	if o.Max <= 0 {
		o.Max = 30 * time.Second
	}
	if o.Jitter == nil {
		o.Jitter = rand.Int64N
	}
	if o.Sleep == nil {
		o.Sleep = sleepCtx
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Meter == nil {
		o.Meter = nopMeter{}
	}
	return &retry{d: d, o: o}
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

type retry struct {
	d Drop
	o RetryOptions
}

// backoff returns the wait before retry n (n >= 1).
func (r *retry) backoff(n int) time.Duration {
	d := r.o.Base
	for i := 1; i < n && d < r.o.Max; i++ {
		d *= 2
	}
	d = min(d, r.o.Max)
	half := int64(d / 2)
	return time.Duration(half + r.o.Jitter(half+1))
}

// wait logs a retry and sleeps; it reports whether to try again.
func (r *retry) wait(ctx context.Context, op, name string, attempt int, err error) bool {
	if !IsTemporary(err) || attempt >= r.o.Attempts || ctx.Err() != nil {
		return false
	}
	d := r.backoff(attempt)
	r.o.Meter.Count("retry")
	r.o.Log.LogAttrs(ctx, slog.LevelWarn, "drop retry", slog.String("op", op), slog.String("file", LogName(name)),
		slog.Int("attempt", attempt), slog.Duration("backoff", d), slog.String("error", err.Error()))
	return r.o.Sleep(ctx, d) == nil
}

func (r *retry) List(ctx context.Context) ([]FileInfo, error) {
	for n := 1; ; n++ {
		out, err := r.d.List(ctx)
		if err == nil || !r.wait(ctx, "list", "", n, err) {
			return out, err
		}
	}
}

// identified is a stream that knows the identity of the file it reads.
type identified interface{ fileIdentity() identity }

func (r *retry) Open(ctx context.Context, name string) (io.ReadCloser, error) {
	rc, err := r.open(ctx, name, 0, identity{})
	if err != nil {
		return nil, err
	}
	rr := &retryReader{r: r, ctx: ctx, name: name, rc: rc}
	if f, ok := rc.(identified); ok {
		rr.id = f.fileIdentity()
	}
	return rr, nil
}

// open opens name, at offset off to resume a download of the file whose
// identity is id: a file replaced meanwhile is not resumed (ErrReplaced).
func (r *retry) open(ctx context.Context, name string, off int64, id identity) (io.ReadCloser, error) {
	for n := 1; ; n++ {
		rc, err := r.d.Open(ctx, name)
		if err == nil && off > 0 {
			if f, ok := rc.(identified); ok && !id.same(f.fileIdentity()) {
				rc.Close()
				return nil, errReplaced(name, id, f.fileIdentity())
			}
			s, ok := rc.(io.Seeker)
			if !ok {
				rc.Close()
				return nil, errors.New("drop: cannot resume " + SafeName(name) + ": stream not seekable")
			}
			if _, err = s.Seek(off, io.SeekStart); err != nil {
				rc.Close()
				err = &TemporaryError{Op: "open", Err: err}
			}
		}
		if err == nil || !r.wait(ctx, "open", name, n, err) {
			return rc, err
		}
	}
}

func (r *retry) Put(ctx context.Context, name string, rd io.Reader, size int64) error {
	for n := 1; ; n++ {
		err := r.d.Put(ctx, name, rd, size)
		if err == nil {
			return nil
		}
		s, ok := rd.(io.Seeker)
		if !ok || !r.wait(ctx, "put", name, n, err) {
			return err
		}
		if _, serr := s.Seek(0, io.SeekStart); serr != nil {
			return errors.Join(err, serr)
		}
	}
}

func (r *retry) Move(ctx context.Context, name string, to Folder) error {
	return r.move(ctx, name, to, r.d.Move)
}

func (r *retry) moveMarker(ctx context.Context, name string, to Folder) error {
	return r.move(ctx, name, to, func(ctx context.Context, name string, to Folder) error {
		return moveMarker(ctx, r.d, name, to)
	})
}

func (r *retry) move(ctx context.Context, name string, to Folder, move func(context.Context, string, Folder) error) error {
	for n := 1; ; n++ {
		err := move(ctx, name, to)
		if n > 1 && errors.Is(err, fs.ErrNotExist) {
			r.o.Log.LogAttrs(ctx, slog.LevelWarn, "drop move: source gone on retry, taking the earlier attempt as done",
				slog.String("file", LogName(name)), slog.String("to", to.String()))
			return nil
		}
		if err == nil || !r.wait(ctx, "move", name, n, err) {
			return err
		}
	}
}

func (r *retry) Close() error { return r.d.Close() }

// retryReader resumes a download at its offset after a temporary error.
type retryReader struct {
	r    *retry
	ctx  context.Context
	name string
	rc   io.ReadCloser
	id   identity // of the file read, when the stream tells
	off  int64
	n    int // retries so far
}

func (rr *retryReader) reopen(err error) error {
	rr.n++
	if !rr.r.wait(rr.ctx, "read", rr.name, rr.n, err) {
		return err
	}
	rr.rc.Close()
	rc, oerr := rr.r.open(rr.ctx, rr.name, rr.off, rr.id)
	if oerr != nil {
		rr.rc = io.NopCloser(errReader{oerr})
		return oerr
	}
	rr.rc = rc
	return nil
}

func (rr *retryReader) Read(p []byte) (int, error) {
	for {
		n, err := rr.rc.Read(p)
		rr.off += int64(n)
		if err == nil || err == io.EOF || n > 0 && IsTemporary(err) {
			if err != nil && err != io.EOF {
				// Report the bytes now; the next Read resumes.
				if rerr := rr.reopen(err); rerr != nil {
					return n, rerr
				}
				return n, nil
			}
			return n, err
		}
		if rerr := rr.reopen(err); rerr != nil {
			return 0, rerr
		}
	}
}

func (rr *retryReader) WriteTo(w io.Writer) (int64, error) {
	var total int64
	for {
		var n int64
		var err error
		if wt, ok := rr.rc.(io.WriterTo); ok {
			n, err = wt.WriteTo(w)
		} else {
			n, err = io.Copy(w, struct{ io.Reader }{rr.rc})
		}
		total += n
		rr.off += n
		if err == nil {
			return total, nil
		}
		if rerr := rr.reopen(err); rerr != nil {
			return total, rerr
		}
	}
}

func (rr *retryReader) Close() error { return rr.rc.Close() }

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }
