package mapping

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"resub/formats/native"
)

func load(t testing.TB, path string) *Mapping {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	m, err := Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func readNative(t testing.TB, path string) (*native.Header, []string, []*native.Record) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rd := native.NewReader(f, native.Options{File: path})
	h, err := rd.Header()
	if err != nil {
		t.Fatal(err)
	}
	var recs []*native.Record
	for {
		r, err := rd.Read()
		if err == io.EOF {
			return h, rd.Columns(), recs
		}
		if err != nil {
			t.Fatal(err)
		}
		recs = append(recs, r)
	}
}

// TestPartnerSample pins the conversion both ways to hand-written files:
// the partner's CSV (F-padded ICCIDs, DD.MM.YYYY, ';', header, CRLF,
// a quoted value, an ignored column) and our native sample.
func TestPartnerSample(t *testing.T) {
	m := load(t, "../../samples/partner/imsi-list.mapping.yaml")
	csvPath := "../../samples/partner/MNOB_MNOA_imsi-list_20261130_000001.csv"
	_, _, want := readNative(t, "../../samples/MNOB_MNOA_imsi-list_20261130_000001.txt")

	f, _ := os.Open(csvPath)
	defer f.Close()
	rd := NewReader(f, m, native.IMSIList, csvPath)
	var got []*native.Record
	for {
		r, err := rd.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, r)
	}
	if len(got) != len(want) {
		t.Fatalf("%d records, want %d", len(got), len(want))
	}
	for i := range want {
		for _, fld := range []string{native.FieldICCID, native.FieldIMSI, native.FieldCutoverDate} {
			if got[i].Get(fld) != want[i].Get(fld) {
				t.Errorf("record %d %s = %q, want %q", i, fld, got[i].Get(fld), want[i].Get(fld))
			}
		}
	}
	if got[0].Line != 2 {
		t.Errorf("line %d", got[0].Line)
	}

	// Back: native → partner gives the partner's file, except the ignored
	// column which resub leaves empty.
	m.CRLF = true
	var out bytes.Buffer
	w := NewWriter(&out, m, native.IMSIList)
	w.WriteHeader()
	for _, r := range want {
		w.Write(r)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	orig, _ := os.ReadFile(csvPath)
	wantCSV := strings.Replace(string(orig), `"fleet 1; north"`, "", 1)
	if out.String() != wantCSV {
		t.Errorf("native → partner:\n%q\nwant\n%q", out.String(), wantCSV)
	}
}

// allFields maps every field of s to a column of the same name.
func allFields(s *native.Schema, header bool) *Mapping {
	m := &Mapping{Header: header, Delimiter: ",", HexCase: "upper"}
	for _, f := range s.Fields {
		m.Columns = append(m.Columns, Column{Name: strings.ToUpper(f.Name), Field: f.Name})
	}
	return m
}

// TestRoundTripEveryType: native sample → partner CSV → native, for every
// type, values equal (hex compared case-insensitively).
func TestRoundTripEveryType(t *testing.T) {
	files, _ := filepath.Glob("../../samples/*_*_*_*_*.txt")
	if len(files) != len(native.TypeNames()) {
		t.Fatalf("%d samples", len(files))
	}
	for _, path := range files {
		h, _, recs := readNative(t, path)
		s, _ := native.Lookup(h.Format)
		t.Run(s.Name, func(t *testing.T) {
			m := allFields(s, true)
			var buf bytes.Buffer
			w := NewWriter(&buf, m, s)
			w.WriteHeader()
			for _, r := range recs {
				if err := w.Write(r); err != nil {
					t.Fatal(err)
				}
			}
			if err := w.Flush(); err != nil {
				t.Fatal(err)
			}
			rd := NewReader(&buf, m, s, "x.csv")
			for i := 0; ; i++ {
				r, err := rd.Read()
				if err == io.EOF {
					if i != len(recs) {
						t.Fatalf("%d records back, want %d", i, len(recs))
					}
					return
				}
				if err != nil {
					t.Fatal(err)
				}
				for _, f := range s.Fields {
					if !strings.EqualFold(r.Get(f.Name), recs[i].Get(f.Name)) {
						t.Errorf("record %d %s: %q != %q", i, f.Name, r.Get(f.Name), recs[i].Get(f.Name))
					}
				}
			}
		})
	}
}

func TestMappingErrors(t *testing.T) {
	cases := []struct {
		name string
		m    Mapping
	}{
		{"required field unmapped", Mapping{Columns: []Column{{Name: "A", Field: "iccid"}}}},
		{"unknown field", Mapping{Columns: []Column{{Name: "A", Field: "iccid"}, {Name: "B", Field: "imsi"}, {Name: "C", Field: "cutover-date"}, {Name: "D", Field: "colour"}}}},
		{"twice", Mapping{Columns: []Column{{Name: "A", Field: "iccid"}, {Name: "B", Field: "iccid"}}}},
		{"delimiter", Mapping{Delimiter: ";;", Columns: []Column{{Name: "A", Field: "iccid"}}}},
		{"format on a non-date", Mapping{Columns: []Column{{Name: "A", Field: "iccid", Format: "YYYY"}, {Name: "B", Field: "imsi"}, {Name: "C", Field: "cutover-date"}}}},
	}
	for _, c := range cases {
		if err := c.m.Check(native.IMSIList); !errors.Is(err, ErrMapping) {
			t.Errorf("%s: %v", c.name, err)
		}
	}
	if _, err := Decode(strings.NewReader("delimiter: ','\ncolour: red\n")); !errors.Is(err, ErrMapping) {
		t.Errorf("unknown YAML key accepted: %v", err)
	}
}

func TestPartnerFileProblems(t *testing.T) {
	m := load(t, "../../samples/partner/imsi-list.mapping.yaml")
	cases := []struct {
		name, file string
		line       int
		field      string
	}{
		{"bad date", "ICCID;NEW_IMSI;SWITCH_DATE\n8999901000000000013F;999990000000001;2026-12-07\n", 2, "SWITCH_DATE"},
		{"bad ICCID", "ICCID;NEW_IMSI;SWITCH_DATE\n8999901000000000014F;999990000000001;07.12.2026\n", 2, "ICCID"},
		{"field count", "ICCID;NEW_IMSI;SWITCH_DATE\n8999901000000000013F;999990000000001\n", 2, ""},
		{"missing column", "ICCID;SWITCH_DATE\n8999901000000000013F;07.12.2026\n", 1, "NEW_IMSI"},
		{"long line", "ICCID;NEW_IMSI;SWITCH_DATE\n" + strings.Repeat("9", 30000) + "\n", 2, ""},
		{"long quoted value over many lines", "ICCID;NEW_IMSI;SWITCH_DATE\n\"" + strings.Repeat("9\n", 30000) + "\"\n", 2, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rd := NewReader(strings.NewReader(c.file), m, native.IMSIList, "p.csv")
			var probs []*native.ParseError
			for {
				_, err := rd.Read()
				if err == io.EOF {
					break
				}
				probs = append(probs, native.Problems(err)...)
				if err != nil && !native.Recoverable(err) {
					break
				}
			}
			for _, p := range probs {
				if p.Line == c.line && p.Field == c.field {
					return
				}
			}
			t.Errorf("want %d: %q, got %v", c.line, c.field, probs)
		})
	}
}

// FuzzMapping: arbitrary partner bytes never panic the reader; what it
// reads without problems writes and reads back to the same values.
func FuzzMapping(f *testing.F) {
	b, err := os.ReadFile("../../samples/partner/MNOB_MNOA_imsi-list_20261130_000001.csv")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Add([]byte("ICCID;NEW_IMSI;SWITCH_DATE\n\"a\"\"b\";1;2\n"))
	m := load(f, "../../samples/partner/imsi-list.mapping.yaml")
	m.MaxLineLength = 1024
	f.Fuzz(func(t *testing.T, data []byte) {
		rd := NewReader(bytes.NewReader(data), m, native.IMSIList, "f")
		var recs []*native.Record
		for {
			r, err := rd.Read()
			if err == io.EOF {
				break
			}
			if err != nil {
				return
			}
			recs = append(recs, r)
		}
		var buf bytes.Buffer
		w := NewWriter(&buf, m, native.IMSIList)
		w.WriteHeader()
		for _, r := range recs {
			if w.Write(r) != nil {
				return // e.g. a date the partner's format cannot hold
			}
		}
		if w.Flush() != nil {
			return
		}
		rd = NewReader(&buf, m, native.IMSIList, "g")
		for i := 0; ; i++ {
			r, err := rd.Read()
			if err == io.EOF {
				if i != len(recs) {
					t.Fatalf("%d records, then %d", len(recs), i)
				}
				return
			}
			if err != nil {
				t.Fatalf("re-read: %v\n%q", err, buf.String())
			}
			for _, fld := range []string{native.FieldICCID, native.FieldIMSI, native.FieldCutoverDate} {
				if r.Get(fld) != recs[i].Get(fld) {
					t.Fatalf("%s: %q then %q", fld, recs[i].Get(fld), r.Get(fld))
				}
			}
		}
	})
}
