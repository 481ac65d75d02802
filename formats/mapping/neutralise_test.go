package mapping

import (
	"bytes"
	"strings"
	"testing"

	"resub/formats/native"
)

// TestFormulaValuesNeutralised: a value a spreadsheet would run as a
// formula is written with a leading apostrophe; numbers are left alone.
func TestFormulaValuesNeutralised(t *testing.T) {
	for in, want := range map[string]string{
		`=HYPERLINK("http://evil.example","x")`: `'=HYPERLINK("http://evil.example","x")`,
		"@SUM(A1:A9)":                           "'@SUM(A1:A9)",
		"+cmd|' /C calc'!A0":                    "'+cmd|' /C calc'!A0",
		"-2+3":                                  "'-2+3",
		"\tcontrol":                             "'\tcontrol",
		"+4917012345678":                        "+4917012345678",
		"-5":                                    "-5",
		"1.5":                                   "1.5",
		"card 1 = ok":                           "card 1 = ok",
		"":                                      "",
	} {
		if got := neutralise(in); got != want {
			t.Errorf("neutralise(%q) = %q, want %q", in, got, want)
		}
	}

	s, ok := native.Lookup("imsi-result")
	if !ok {
		t.Fatal("no imsi-result")
	}
	m := &Mapping{Header: false, Delimiter: ";", Columns: []Column{{Name: "ICCID", Field: native.FieldICCID}, {Name: "STATUS", Field: native.FieldStatus}, {Name: "DETAIL", Field: native.FieldDetail}}}
	var buf bytes.Buffer
	w := NewWriter(&buf, m, s)
	r := native.NewRecord(s)
	r.Set(native.FieldICCID, "89999010000000000135")
	r.Set(native.FieldStatus, native.StatusRejected)
	r.Set(native.FieldDetail, "=1+2")
	if err := w.Write(r); err != nil {
		t.Fatal(err)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(buf.String()); got != "89999010000000000135;"+native.StatusRejected+";'=1+2" {
		t.Fatalf("written %q", got)
	}
}
