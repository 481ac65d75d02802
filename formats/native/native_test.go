package native

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// samples returns the native sample files of the repository, by type.
func samples(t testing.TB) map[string]string {
	t.Helper()
	files, err := filepath.Glob("../../samples/*_*_*_*_*.txt")
	if err != nil || len(files) == 0 {
		t.Fatalf("no samples: %v", err)
	}
	out := map[string]string{}
	for _, f := range files {
		n, err := ParseName(filepath.Base(f))
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		out[n.Format] = f
	}
	return out
}

// readAll reads a whole file, returning its header, records and problems.
func readAll(t testing.TB, r io.Reader, o Options) (*Header, []*Record, []*ParseError) {
	t.Helper()
	rd := NewReader(r, o)
	h, err := rd.Header()
	probs := Problems(err)
	if h == nil {
		return nil, nil, probs
	}
	var recs []*Record
	for {
		rec, err := rd.Read()
		if err == io.EOF {
			break
		}
		if err != nil && !Recoverable(err) {
			t.Fatalf("fatal: %v", err)
		}
		probs = append(probs, Problems(err)...)
		if rec != nil {
			recs = append(recs, rec)
		}
	}
	return h, recs, probs
}

func TestSamplesValid(t *testing.T) {
	got := samples(t)
	for _, name := range TypeNames() {
		t.Run(name, func(t *testing.T) {
			path, ok := got[name]
			if !ok {
				t.Fatalf("no sample of %s", name)
			}
			f, err := os.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			o := Options{File: path, Type: name, Name: filepath.Base(path),
				TransportKey: func(id string) ([]byte, bool) { return []byte{0xc6, 0xa1, 0x3b}, id == "TK-TEST-1" }}
			h, recs, probs := readAll(t, f, o)
			for _, p := range probs {
				t.Error(p)
			}
			if h == nil || h.Quantity != len(recs) || len(recs) == 0 {
				t.Fatalf("header %+v, %d records", h, len(recs))
			}
		})
	}
}

// TestRoundTrip reads each sample, writes it, and reads it again: the
// header and every value must survive, and the bytes must be identical
// (the samples are in canonical form).
func TestRoundTrip(t *testing.T) {
	for name, path := range samples(t) {
		t.Run(name, func(t *testing.T) {
			orig, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			h, recs, probs := readAll(t, bytes.NewReader(orig), Options{File: path})
			if len(probs) > 0 {
				t.Fatal(probs)
			}
			rd := NewReader(bytes.NewReader(orig), Options{})
			rd.Header()
			var out bytes.Buffer
			w := NewWriter(&out, h.schema())
			if err := w.WriteHeader(h, rd.Columns()); err != nil {
				t.Fatal(err)
			}
			for _, r := range recs {
				if err := w.Write(r); err != nil {
					t.Fatal(err)
				}
			}
			if err := w.Flush(); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(out.Bytes(), orig) {
				t.Errorf("rewritten file differs:\n%s", out.String())
			}
			h2, recs2, probs := readAll(t, bytes.NewReader(out.Bytes()), Options{})
			if len(probs) > 0 || len(recs2) != len(recs) || h2.Sequence != h.Sequence || !h2.Created.Equal(h.Created) {
				t.Fatalf("second read: %v, %d records", probs, len(recs2))
			}
			for i := range recs {
				for fi := range recs[i].vals {
					if recs[i].vals[fi] != recs2[i].vals[fi] {
						t.Errorf("record %d field %s: %q != %q", i, h.schema().Fields[fi].Name, recs[i].vals[fi], recs2[i].vals[fi])
					}
				}
			}
		})
	}
}

func (h *Header) schema() *Schema { s, _ := Lookup(h.Format); return s }

func TestWriterNormalisesCase(t *testing.T) {
	var b bytes.Buffer
	w := NewWriter(&b, HandoverAck)
	h := &Header{Sender: "MNOB", Receiver: "MNOA", BusinessDate: time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC), Sequence: 7, Created: time.Date(2026, 11, 30, 6, 0, 0, 0, time.UTC), Batch: "b1", Quantity: 1}
	if err := w.WriteHeader(h, []string{FieldICCID, FieldStatus, FieldReason}); err != nil {
		t.Fatal(err)
	}
	r := NewRecord(HandoverAck)
	r.Set(FieldICCID, "8999901000000000013")
	r.Set(FieldStatus, "REJECTED")
	r.Set(FieldReason, "provisioning_failed")
	w.Write(r)
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(b.String(), "\n8999901000000000013|rejected|PROVISIONING_FAILED\n") {
		t.Errorf("got %q", b.String())
	}
	// A value with the delimiter is refused, and the error sticks.
	w = NewWriter(io.Discard, HandoverAck)
	w.WriteHeader(h, nil)
	r.Set(FieldDetail, "a|b")
	if err := w.Write(r); !errors.Is(err, ErrInvalid) || !errors.Is(w.Flush(), ErrInvalid) {
		t.Errorf("delimiter in a value: %v", err)
	}
	// The quantity must match.
	w = NewWriter(io.Discard, HandoverAck)
	w.WriteHeader(h, nil)
	if err := w.Flush(); !errors.Is(err, ErrQuantity) {
		t.Errorf("quantity: %v", err)
	}
}

func TestName(t *testing.T) {
	n, err := ParseName("MNOB_MNOA_imsi-list_20261130_000042.txt.pgp")
	if err != nil {
		t.Fatal(err)
	}
	want := Name{Sender: "MNOB", Receiver: "MNOA", Format: "imsi-list", Date: time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC), Sequence: 42, Ext: "txt", PGP: true}
	if n != want {
		t.Errorf("ParseName = %+v", n)
	}
	if n.String() != "MNOB_MNOA_imsi-list_20261130_000042.txt.pgp" {
		t.Errorf("String = %s", n)
	}
	for _, bad := range []string{
		"MNOB_MNOA_imsi-list_20261130_000042", "MNOB_MNOA_imsi-list_20261330_000042.txt",
		"MNOB_MNOA_imsi-list_20261130_42.txt", "MNO_B_MNOA_imsi-list_20261130_000042.txt",
		"MNOB_MNOA_imsi-list_20261130_000000.txt", "../MNOB_MNOA_imsi-list_20261130_000042.txt",
		"MNOB_MNOA__20261130_000042.txt", "MNOB_MNOA_imsi-list_20261130_-00042.txt",
	} {
		if _, err := ParseName(bad); !errors.Is(err, ErrNameSyntax) {
			t.Errorf("ParseName(%q) = %v", bad, err)
		}
	}
}

func TestTypeNames(t *testing.T) {
	want := "inventory msisdn-map switch-request switch-authorisation imsi-list imsi-result ota-batch ota-report handover handover-ack key-release key-request key-response provisioning"
	if got := strings.Join(TypeNames(), " "); got != want {
		t.Errorf("TypeNames = %s", got)
	}
}

func TestRefusedHeaderRoundTrip(t *testing.T) {
	var buf bytes.Buffer
	h := &Header{Format: "imsi-result", Sender: "MNOA", Receiver: "MNOB", BusinessDate: time.Date(2026, 11, 28, 0, 0, 0, 0, time.UTC),
		Sequence: 2, Created: time.Date(2026, 11, 28, 22, 0, 0, 0, time.UTC), Batch: "b1",
		InReplyTo: "MNOB_MNOA_imsi-list_20261128_000001.txt.pgp", InReplyToSHA256: [32]byte{1}, Refused: "bad signature\nor tampered"}
	w := NewWriter(&buf, IMSIResult)
	if err := w.WriteHeader(h, []string{FieldICCID, FieldStatus, FieldReason}); err != nil {
		t.Fatal(err)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	r := NewReader(&buf, Options{})
	got, err := r.Header()
	if err != nil {
		t.Fatal(err)
	}
	if got.Refused != "bad signature or tampered" || got.Quantity != 0 {
		t.Fatalf("refused = %q, quantity %d", got.Refused, got.Quantity)
	}
	// A refusal must answer a file and carry no records.
	h.Quantity = 1
	if err := NewWriter(&bytes.Buffer{}, IMSIResult).WriteHeader(h, []string{FieldICCID, FieldStatus}); err == nil {
		t.Error("a refusal with records was written")
	}
}
