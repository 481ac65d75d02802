package drop_test

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"strings"
	"testing"
	"time"

	"resub/jobs/drop"
)

// flakyDrop fails its first fails calls of every operation with a
// temporary error; it only exercises the retry policy.
type flakyDrop struct {
	drop.Drop
	fails, calls int
	moveErr      error
}

func (f *flakyDrop) fail() error {
	f.calls++
	if f.calls <= f.fails {
		return &drop.TemporaryError{Op: "test", Err: io.ErrUnexpectedEOF}
	}
	return nil
}

func (f *flakyDrop) List(context.Context) ([]drop.FileInfo, error) { return nil, f.fail() }
func (f *flakyDrop) Put(_ context.Context, _ string, r io.Reader, _ int64) error {
	if err := f.fail(); err != nil {
		return err
	}
	_, err := io.Copy(io.Discard, r)
	return err
}
func (f *flakyDrop) Move(context.Context, string, drop.Folder) error {
	if err := f.fail(); err != nil {
		return err
	}
	return f.moveErr
}

func TestRetryBackoff(t *testing.T) {
	for _, tc := range []struct {
		name   string
		jitter func(int64) int64
		want   []time.Duration
	}{
		{"longest", func(n int64) int64 { return n - 1 }, []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond, 500 * time.Millisecond, 500 * time.Millisecond}},
		{"shortest", func(int64) int64 { return 0 }, []time.Duration{50 * time.Millisecond, 100 * time.Millisecond, 200 * time.Millisecond, 250 * time.Millisecond, 250 * time.Millisecond}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var slept []time.Duration
			f := &flakyDrop{fails: 5}
			r := drop.Retry(f, drop.RetryOptions{Attempts: 6, Base: 100 * time.Millisecond, Max: 500 * time.Millisecond, Jitter: tc.jitter,
				Sleep: func(_ context.Context, d time.Duration) error { slept = append(slept, d); return nil }})
			if _, err := r.List(context.Background()); err != nil {
				t.Fatal(err)
			}
			if len(slept) != len(tc.want) {
				t.Fatalf("slept %v, want %v", slept, tc.want)
			}
			for i := range slept {
				if d := slept[i] - tc.want[i]; d < -time.Millisecond || d > time.Millisecond {
					t.Errorf("backoff %d = %v, want %v", i+1, slept[i], tc.want[i])
				}
			}
		})
	}
}

func TestRetryLimits(t *testing.T) {
	noSleep := func(context.Context, time.Duration) error { return nil }
	ctx := context.Background()

	f := &flakyDrop{fails: 10}
	r := drop.Retry(f, drop.RetryOptions{Attempts: 3, Sleep: noSleep})
	if _, err := r.List(ctx); !drop.IsTemporary(err) || f.calls != 3 {
		t.Errorf("List: %v after %d calls, want a temporary error after 3", err, f.calls)
	}

	// A stream that cannot be rewound is not uploaded twice.
	f = &flakyDrop{fails: 1}
	r = drop.Retry(f, drop.RetryOptions{Sleep: noSleep})
	if err := r.Put(ctx, "x", io.MultiReader(strings.NewReader("data")), 4); err == nil || f.calls != 1 {
		t.Errorf("Put of a one-way stream: %v after %d calls", err, f.calls)
	}
	f = &flakyDrop{fails: 1}
	r = drop.Retry(f, drop.RetryOptions{Sleep: noSleep})
	if err := r.Put(ctx, "x", strings.NewReader("data"), 4); err != nil || f.calls != 2 {
		t.Errorf("Put of a seekable reader: %v after %d calls", err, f.calls)
	}

	// A move whose first answer was lost finds its source gone: done.
	f = &flakyDrop{fails: 1, moveErr: fs.ErrNotExist}
	r = drop.Retry(f, drop.RetryOptions{Sleep: noSleep})
	if err := r.Move(ctx, "x", drop.Archive); err != nil {
		t.Errorf("retried Move: %v", err)
	}
	// ...but a first attempt that finds nothing is an error.
	f = &flakyDrop{moveErr: fs.ErrNotExist}
	r = drop.Retry(f, drop.RetryOptions{Sleep: noSleep})
	if err := r.Move(ctx, "x", drop.Archive); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Move of a missing file: %v", err)
	}
	// Permanent errors are not retried.
	f = &flakyDrop{moveErr: fs.ErrPermission}
	r = drop.Retry(f, drop.RetryOptions{Sleep: noSleep})
	if err := r.Move(ctx, "x", drop.Archive); !errors.Is(err, fs.ErrPermission) || f.calls != 1 {
		t.Errorf("Move refused: %v after %d calls", err, f.calls)
	}
}
