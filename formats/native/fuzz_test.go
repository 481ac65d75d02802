package native

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"testing"
)

// FuzzNative feeds arbitrary bytes to the reader (the type comes from the
// header, so the samples of every type seed it). Whatever the input, the
// reader must not panic; a file it reads without problems must survive
// write → read → write byte for byte.
func FuzzNative(f *testing.F) {
	for _, p := range samples(f) {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	for _, name := range []string{"crlf.txt", "truncated.txt", "binary.txt", "field-count.txt"} {
		if b, err := os.ReadFile(filepath.Join("../../testdata/native", name)); err == nil {
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		out1, ok := rewrite(t, data)
		if !ok {
			return
		}
		out2, ok := rewrite(t, out1)
		if !ok {
			t.Fatalf("rewritten file no longer valid:\n%s", out1)
		}
		if !bytes.Equal(out1, out2) {
			t.Fatalf("write → read → write differs:\n%s\n---\n%s", out1, out2)
		}
	})
}

// rewrite reads data and writes it again; ok is false when data has problems.
func rewrite(t *testing.T, data []byte) ([]byte, bool) {
	rd := NewReader(bytes.NewReader(data), Options{MaxLineLength: 4096})
	h, err := rd.Header()
	if h == nil || err != nil {
		return nil, false
	}
	var buf bytes.Buffer
	w := NewWriter(&buf, rd.Schema())
	if err := w.WriteHeader(h, rd.Columns()); err != nil {
		return nil, false // e.g. a header the writer cannot express
	}
	for {
		rec, err := rd.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, false
		}
		if err := w.Write(rec); err != nil {
			t.Fatalf("valid record refused by the writer: %v", err)
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatalf("flush: %v", err)
	}
	return buf.Bytes(), true
}
