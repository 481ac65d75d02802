package drop_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"io"
	"log/slog"
	"reflect"
	"sync"
	"testing"
	"time"

	"resub/jobs/drop"
)

// fastRetry retries quickly, so that tests do not wait on backoff.
func fastRetry(d drop.Drop) drop.Drop {
	return drop.Retry(d, drop.RetryOptions{Attempts: 8, Base: 20 * time.Millisecond, Max: 500 * time.Millisecond, Log: slog.New(slog.DiscardHandler)})
}

// triggerReader calls fire once, after at bytes have been read.
type triggerReader struct {
	r    io.ReadSeeker
	at   int64
	n    int64
	once *sync.Once
	fire func()
}

func (t *triggerReader) Read(p []byte) (int, error) {
	if t.n < t.at && t.n+int64(len(p)) > t.at {
		p = p[:t.at-t.n]
	}
	n, err := t.r.Read(p)
	t.n += int64(n)
	if t.n >= t.at {
		t.once.Do(t.fire)
	}
	return n, err
}

func (t *triggerReader) Seek(off int64, whence int) (int64, error) {
	n, err := t.r.Seek(off, whence)
	t.n = n
	return n, err
}

// TestCrashDuringDownload kills the server in the middle of a download:
// the plain drop fails with a temporary error and leaves the input in
// place; the Retry wrapper resumes and gets every byte once; the input
// is then archived exactly once.
func TestCrashDuringDownload(t *testing.T) {
	ctx := context.Background()
	for _, b := range remoteBackends(t) {
		t.Run(b.name, func(t *testing.T) {
			data := randomBytes(t, 8<<20)
			b.write("inbox", "in.pgp", data)

			d := b.open(t, nil)
			rc, err := d.Open(ctx, "in.pgp")
			if err != nil {
				t.Fatal(err)
			}
			head := make([]byte, 1<<20)
			if _, err := io.ReadFull(rc, head); err != nil {
				t.Fatal(err)
			}
			b.crash()
			_, err = io.Copy(io.Discard, rc)
			rc.Close()
			if err == nil || !drop.IsTemporary(err) {
				t.Fatalf("download across a crash: err = %v, want a temporary error", err)
			}
			if got := b.names(t, "inbox"); !reflect.DeepEqual(got, []string{"in.pgp"}) {
				t.Fatalf("inbox after the failed run = %q", got)
			}

			// The next run, with retries, resumes across another crash.
			rd := fastRetry(d)
			rc, err = rd.Open(ctx, "in.pgp")
			if err != nil {
				t.Fatal(err)
			}
			h := sha256.New()
			if _, err := io.CopyN(h, rc, 3<<20); err != nil {
				t.Fatal(err)
			}
			b.crash()
			if _, err := io.Copy(h, rc); err != nil {
				t.Fatalf("download with retries: %v", err)
			}
			rc.Close()
			if want := sha256.Sum256(data); !bytes.Equal(h.Sum(nil), want[:]) {
				t.Fatal("resumed download differs from the input")
			}
			if err := rd.Move(ctx, "in.pgp", drop.Archive); err != nil {
				t.Fatal(err)
			}
			if got := b.names(t, "archive"); !reflect.DeepEqual(got, []string{"in.pgp"}) {
				t.Errorf("archive = %q, want one copy", got)
			}
			if got := b.names(t, "inbox"); len(got) != 0 {
				t.Errorf("inbox = %q, want empty", got)
			}
		})
	}
}

// TestCrashDuringUpload kills the server in the middle of a delivery: the
// partner never sees a partial file under the final name, and the next
// run (or the retry) delivers it exactly once.
func TestCrashDuringUpload(t *testing.T) {
	ctx := context.Background()
	for _, b := range remoteBackends(t) {
		t.Run(b.name, func(t *testing.T) {
			data := randomBytes(t, 8<<20)
			const name = "B_A_HANDOVER_20260101_000001.csv.pgp"
			d := b.open(t, nil)

			tr := &triggerReader{r: bytes.NewReader(data), at: 2 << 20, once: new(sync.Once), fire: b.crash}
			err := d.Put(ctx, name, tr, int64(len(data)))
			if err == nil || !drop.IsTemporary(err) {
				t.Fatalf("put across a crash: err = %v, want a temporary error", err)
			}
			for _, n := range b.names(t, "outbox") {
				if n == name {
					t.Fatalf("the partner sees %s after a failed delivery", name)
				}
			}

			// The next run delivers it; a temporary name left by the
			// crash is reused and renamed away.
			if err := d.Put(ctx, name, bytes.NewReader(data), int64(len(data))); err != nil {
				t.Fatal(err)
			}
			if got := b.names(t, "outbox"); !reflect.DeepEqual(got, []string{name}) {
				t.Fatalf("outbox = %q, want exactly %s", got, name)
			}
			if !bytes.Equal(b.read(t, "outbox", name), data) {
				t.Fatal("delivered content differs")
			}

			// With retries a crash within one run is absorbed.
			const name2 = "B_A_HANDOVER_20260101_000002.csv.pgp"
			tr = &triggerReader{r: bytes.NewReader(data), at: 3 << 20, once: new(sync.Once), fire: b.crash}
			if err := fastRetry(d).Put(ctx, name2, tr, int64(len(data))); err != nil {
				t.Fatalf("put with retries: %v", err)
			}
			if got := b.names(t, "outbox"); !reflect.DeepEqual(got, []string{name, name2}) {
				t.Fatalf("outbox = %q", got)
			}
			if !bytes.Equal(b.read(t, "outbox", name2), data) {
				t.Fatal("delivered content differs")
			}
		})
	}
}
