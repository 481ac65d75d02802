package drop_test

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"resub/jobs/drop"
)

// A pass of a pickup job: the complete files of the inbox are read,
// answered in the outbox and archived.
func Example() {
	base, _ := os.MkdirTemp("", "drop-example")
	defer os.RemoveAll(base)
	dir := func(f string) string { p := filepath.Join(base, f); os.Mkdir(p, 0o755); return p }
	d, err := drop.NewLocal(drop.LocalOptions{Inbox: dir("inbox"), Outbox: dir("outbox"), Archive: dir("archive"), Quarantine: dir("quarantine")})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer d.Close()
	os.WriteFile(filepath.Join(base, "inbox", "B_A_IMSI-LIST_20260101_000001.csv.pgp"), []byte("request"), 0o644)
	os.WriteFile(filepath.Join(base, "inbox", "B_A_IMSI-LIST_20260101_000001.csv.pgp.done"), nil, 0o644)
	os.WriteFile(filepath.Join(base, "inbox", "B_A_IMSI-LIST_20260101_000002.csv.pgp"), []byte("still uploading"), 0o644)

	ctx := context.Background()
	p, err := drop.NewPicker(d, drop.PickerOptions{Patterns: []string{"B_A_*.pgp"}, Marker: ".done"})
	if err != nil {
		fmt.Println(err)
		return
	}
	ready, _ := p.Ready(ctx)
	for _, fi := range ready {
		rc, _ := d.Open(ctx, fi.Name)
		data, _ := io.ReadAll(rc)
		rc.Close()
		answer := "answer to " + string(data)
		d.Put(ctx, strings.Replace(fi.Name, "IMSI-LIST", "IMSI-RESULT", 1), strings.NewReader(answer), int64(len(answer)))
		p.Done(ctx, fi.Name, drop.Archive)
		fmt.Println("processed", fi.Name)
	}
	out, _ := os.ReadDir(filepath.Join(base, "outbox"))
	for _, e := range out {
		fmt.Println("delivered", e.Name())
	}
	// Output:
	// processed B_A_IMSI-LIST_20260101_000001.csv.pgp
	// delivered B_A_IMSI-RESULT_20260101_000001.csv.pgp
}
