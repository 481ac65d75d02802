package drop_test

import (
	"context"
	"errors"
	"slices"
	"testing"

	"resub/jobs/drop"
)

// TestListReportsUnsafeNames: every name List leaves out for CheckName
// reaches the context's reporter, with ErrBadName; safe names do not.
func TestListReportsUnsafeNames(t *testing.T) {
	unsafe := []string{"esc\x1b[31mape.pgp", "back\\slash.pgp", "new\nline.pgp", "bidi\u202ename.pgp"}
	for _, b := range allBackends(t) {
		t.Run(b.name, func(t *testing.T) {
			b.write("inbox", "ok.pgp", []byte("x"))
			for _, n := range unsafe {
				b.write("inbox", n, []byte("x"))
			}
			var got []string
			ctx := drop.WithSkipReport(context.Background(), func(name string, err error) {
				if !errors.Is(err, drop.ErrBadName) {
					t.Errorf("%q reported with %v, want ErrBadName", name, err)
				}
				got = append(got, name)
			})
			list, err := b.open(t, nil).List(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if len(list) != 1 || list[0].Name != "ok.pgp" {
				t.Fatalf("List = %v, want only ok.pgp", list)
			}
			want := slices.Clone(unsafe)
			slices.Sort(want)
			slices.Sort(got)
			if !slices.Equal(got, want) {
				t.Fatalf("reported %q, want %q", got, want)
			}
		})
	}
}
