package vendor

import (
	"bytes"
	"encoding/hex"
	"io"
	"strings"
	"testing"
	"time"

	"resub/formats/native"
)

// TestToInventory imports the 3b sample into a native inventory file and
// checks it with the native reader.
func TestToInventory(t *testing.T) {
	h, cards, probs, _ := readAll(t, bytes.NewReader(open(t, "../../samples/vendor-3b.out")), Options{})
	if len(probs) > 0 {
		t.Fatal(probs)
	}
	// Stand-in for package crypto's wrapping: a reversible transform
	// under a named key, enough to follow each secret through.
	wrap := func(b []byte) (string, error) {
		out := make([]byte, len(b)+8)
		for i, c := range b {
			out[i] = c ^ 0x5a
		}
		return "TK-TEST-1:" + hex.EncodeToString(out), nil
	}
	var buf bytes.Buffer
	w := native.NewWriter(&buf, native.Inventory)
	nh := &native.Header{Sender: "VENDOR", Receiver: "MNOA", BusinessDate: time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC), Sequence: 1,
		Created: time.Date(2026, 11, 30, 6, 0, 0, 0, time.UTC), Batch: h.Batch, TransportKey: "TK-TEST-1", KCV: []byte{1, 2, 3}, Quantity: len(cards)}
	if err := w.WriteHeader(nh, nil); err != nil {
		t.Fatal(err)
	}
	for _, c := range cards {
		r, err := ToInventory(c, h, "", wrap)
		if err != nil {
			t.Fatal(err)
		}
		w.Write(r)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	rd := native.NewReader(&buf, native.Options{File: "inv", Type: "inventory"})
	if _, err := rd.Header(); err != nil {
		t.Fatal(err)
	}
	n := 0
	for {
		r, err := rd.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		n++
		if r.Get(native.FieldKeyListLength) != "4" || r.Get(native.FieldKeyIndex) != "1" || r.Get(native.FieldProfile) != "PROFILE-TEST-3B" || !strings.HasPrefix(r.Get(native.FieldKi), "TK-TEST-1:4b4b") {
			t.Errorf("record %v", r)
		}
	}
	if n != len(cards) {
		t.Errorf("%d records", n)
	}
	cards[0].Encrypted = true
	if _, err := ToInventory(cards[0], h, "", wrap); err == nil {
		t.Error("encrypted card imported")
	}
}
