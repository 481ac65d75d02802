package native_test

import (
	"bytes"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"resub/formats/native"
)

// TestRefusedUnread: a refusal of a file the receiver never read (larger
// than its bound) names the file by in-reply-to and in-reply-to-size, as
// it has no SHA-256; the reader checks the name and size against what we
// sent. A size without refused, or beside a SHA-256, is a header error.
func TestRefusedUnread(t *testing.T) {
	h := &native.Header{
		Sender: "MNOA", Receiver: "MNOB",
		BusinessDate: time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC), Sequence: 2,
		Created: time.Date(2026, 11, 30, 6, 0, 0, 0, time.UTC), Batch: "B-2",
		InReplyTo:     "MNOB_MNOA_imsi-list_20261130_000002.txt.pgp",
		InReplyToSize: 4194304,
		Refused:       "4194304 bytes listed, larger than limits.max_ciphertext_bytes (65536 bytes)",
	}
	var buf bytes.Buffer
	w := native.NewWriter(&buf, native.IMSIResult)
	if err := w.WriteHeader(h, nil); err != nil {
		t.Fatal(err)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	text := buf.String()
	if !strings.Contains(text, "#in-reply-to-size: 4194304\n") || strings.Contains(text, "in-reply-to-sha256") {
		t.Fatalf("written:\n%s", text)
	}
	read := func(text string, sent func(string, int64) bool) (*native.Header, error) {
		rd := native.NewReader(strings.NewReader(text), native.Options{Type: native.IMSIResult.Name, SentFileOfSize: sent})
		return rd.Header()
	}
	var asked string
	got, err := read(text, func(name string, size int64) bool {
		asked = name + " " + strconv.FormatInt(size, 10)
		return true
	})
	if err != nil || got.InReplyToSize != 4194304 || got.Refused != h.Refused || asked != h.InReplyTo+" 4194304" {
		t.Fatalf("read: %+v %v (asked %q)", got, err, asked)
	}
	if _, err := read(text, func(string, int64) bool { return false }); !errors.Is(err, native.ErrInReplyTo) {
		t.Errorf("a file we did not send: %v; want ErrInReplyTo", err)
	}
	// Without refused, or beside a SHA-256, a size is refused.
	noRefused := strings.Replace(text, "#refused: "+h.Refused+"\n", "", 1)
	withSHA := strings.Replace(text, "#in-reply-to-size: 4194304\n", "#in-reply-to-size: 4194304\n#in-reply-to-sha256: "+strings.Repeat("ab", 32)+"\n", 1)
	for name, bad := range map[string]string{"without refused": noRefused, "beside a SHA-256": withSHA} {
		if _, err := read(bad, nil); err == nil || !strings.Contains(err.Error(), "in-reply-to-size") {
			t.Errorf("%s: %v", name, err)
		}
	}
	// The writer refuses a size without refused.
	h.Refused = ""
	if err := native.NewWriter(&bytes.Buffer{}, native.IMSIResult).WriteHeader(h, nil); err == nil {
		t.Error("writer: a size without refused was written")
	}
}
