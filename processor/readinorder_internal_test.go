package processor

import (
	"context"
	"errors"
	"math/rand/v2"
	"runtime"
	"testing"
	"time"
)

// Pages read at once, each taking its own time, are used one at a time
// in the order of their bounds; an error of a read, of the use or of the
// bounds ends the whole with that error, and no goroutine is left behind.
func TestReadInOrder(t *testing.T) {
	ctx := context.Background()
	const pages = 200
	bounds := func(n int, failAt int) func(context.Context, func(int) error) error {
		return func(ctx context.Context, next func(int) error) error {
			for i := range n {
				if i == failAt {
					return errors.New("bounds failed")
				}
				if err := next(i); err != nil {
					return err
				}
			}
			return nil
		}
	}
	read := func(failAt int) func(context.Context, int) ([]int, error) {
		return func(ctx context.Context, b int) ([]int, error) {
			time.Sleep(time.Duration(rand.IntN(300)) * time.Microsecond)
			if b == failAt {
				return nil, errors.New("read failed")
			}
			return []int{b, b}, ctx.Err()
		}
	}
	before := runtime.NumGoroutine()
	for _, readers := range []int{1, 2, 5} {
		var got []int
		err := readInOrder(ctx, readers, bounds(pages, -1), read(-1), func(ctx context.Context, page []int) error {
			got = append(got, page[0])
			return nil
		})
		if err != nil || len(got) != pages {
			t.Fatalf("%d readers: %d pages, %v", readers, len(got), err)
		}
		for i, b := range got {
			if b != i {
				t.Fatalf("%d readers: page %d used in place %d", readers, b, i)
			}
		}
	}
	cases := []struct {
		name        string
		bound, read int
		useFails    int
		want        string
	}{
		{"read", -1, 57, -1, "read failed"},
		{"use", -1, -1, 33, "use failed"},
		{"bounds", 120, -1, -1, "bounds failed"},
	}
	for _, c := range cases {
		used := 0
		err := readInOrder(ctx, 2, bounds(pages, c.bound), read(c.read), func(ctx context.Context, page []int) error {
			if page[0] == c.useFails {
				return errors.New("use failed")
			}
			used++
			return nil
		})
		if err == nil || err.Error() != c.want {
			t.Errorf("%s: %v, want %s", c.name, err, c.want)
		}
		if c.read >= 0 && used > c.read {
			t.Errorf("%s: %d pages used, past the page that failed", c.name, used)
		}
	}
	deadline := time.Now().Add(2 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		t.Errorf("%d goroutines left, %d before", n, before)
	}
}
