package drop_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"resub/jobs/drop"
)

// fakeClock is advanced only by the picker's Sleep.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time { return c.t }

// TestStableFile: a file still being written is not picked up until its
// size and modification time stay unchanged across the interval.
func TestStableFile(t *testing.T) {
	ctx := context.Background()
	for _, b := range allBackends(t) {
		t.Run(b.name, func(t *testing.T) {
			d := b.open(t, nil)
			clock := &fakeClock{time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)}
			growing := true
			var slept int
			p, err := drop.NewPicker(d, drop.PickerOptions{
				Patterns: []string{"*.pgp"}, Stable: 30 * time.Second, Now: clock.now,
				Sleep: func(_ context.Context, dur time.Duration) error {
					slept++
					clock.t = clock.t.Add(dur)
					if growing {
						f, err := os.OpenFile(filepath.Join(b.dir("inbox"), "big.pgp"), os.O_APPEND|os.O_WRONLY, 0)
						if err != nil {
							t.Fatal(err)
						}
						f.Write([]byte("more"))
						f.Close()
					}
					return nil
				},
			})
			if err != nil {
				t.Fatal(err)
			}
			b.write("inbox", "big.pgp", []byte("start"))
			b.write("inbox", "other.txt", []byte("not matching"))

			for round := range 3 {
				ready, err := p.Ready(ctx)
				if err != nil {
					t.Fatal(err)
				}
				if len(ready) != 0 {
					t.Fatalf("round %d: picked up %v while it was growing", round, ready)
				}
			}
			growing = false
			ready, err := p.Ready(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if len(ready) != 1 || ready[0].Name != "big.pgp" || ready[0].Size != int64(len("start")+3*len("more")) {
				t.Fatalf("after it stopped growing: Ready = %v", ready)
			}
			if slept != 4 {
				t.Errorf("slept %d times, want once per call", slept)
			}
			// Already stable: no wait.
			if ready, _ := p.Ready(ctx); len(ready) != 1 || slept != 4 {
				t.Errorf("second Ready = %v after %d sleeps", ready, slept)
			}
		})
	}
}

func TestPickerOptions(t *testing.T) {
	l := localBackend(t).open(t, nil)
	for _, o := range []drop.PickerOptions{
		{},
		{Stable: time.Second, Marker: ".done"},
		{Marker: "done/x"},
		{Stable: time.Second, Patterns: []string{"["}},
	} {
		if _, err := drop.NewPicker(l, o); err == nil {
			t.Errorf("NewPicker(%+v) accepted", o)
		}
	}
}
