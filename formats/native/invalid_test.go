package native

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// invalidCase is one line of testdata/native/cases.txt.
type invalidCase struct {
	file, typ, field string
	line             int
}

func loadCases(t testing.TB, dir string) []invalidCase {
	t.Helper()
	f, err := os.Open(filepath.Join(dir, "cases.txt"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []invalidCase
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		l := sc.Text()
		if l == "" || l[0] == '#' {
			continue
		}
		p := strings.Fields(l)
		n, err := strconv.Atoi(p[2])
		if len(p) != 4 || err != nil {
			t.Fatalf("bad case line %q", l)
		}
		c := invalidCase{file: p[0], typ: p[1], line: n, field: p[3]}
		if c.field == "-" {
			c.field = ""
		}
		out = append(out, c)
	}
	return out
}

// TestInvalidFiles reads every invalid case of testdata/native and wants
// the problem the case names, at its line and field.
func TestInvalidFiles(t *testing.T) {
	dir := "../../testdata/native"
	cases := loadCases(t, dir)
	if len(cases) < 40 {
		t.Fatalf("only %d cases", len(cases))
	}
	for _, c := range cases {
		t.Run(c.file, func(t *testing.T) {
			f, err := os.Open(filepath.Join(dir, c.file))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			o := Options{File: c.file, Type: c.typ, Name: c.file}
			if _, err := ParseName(c.file); err != nil {
				o.Name = ""
			}
			probs := checkAll(f, o)
			for _, p := range probs {
				if p.Line == c.line && p.Field == c.field {
					return
				}
			}
			t.Errorf("want a problem at %d: %q; got %v", c.line, c.field, probs)
		})
	}
}

// checkAll reads a file to the end and returns every problem; it must
// never panic whatever the input.
func checkAll(r io.Reader, o Options) []*ParseError {
	rd := NewReader(r, o)
	h, err := rd.Header()
	probs := Problems(err)
	if h == nil {
		return probs
	}
	for {
		_, err := rd.Read()
		if err == io.EOF {
			return probs
		}
		if err != nil && !Recoverable(err) {
			return append(probs, Problems(err)...)
		}
		probs = append(probs, Problems(err)...)
	}
}

func ExampleReader() {
	const file = `#format: imsi-list
#version: 1
#sender: MNOB
#receiver: MNOA
#business-date: 2026-11-30
#sequence: 1
#created: 2026-11-30T06:00:00Z
#batch: B-1
#quantity: 2
iccid|imsi|cutover-date
8999901000000000013|999990000000001|2026-12-07
8999901000000000014|999990000000002|2026-12-07
`
	r := NewReader(strings.NewReader(file), Options{File: "in.txt", Type: "imsi-list"})
	h, _ := r.Header()
	fmt.Println(h.Sender, "->", h.Receiver, h.Quantity, "records")
	for {
		rec, err := r.Read()
		if err == io.EOF {
			break
		}
		for _, p := range Problems(err) {
			fmt.Println(p)
		}
		if rec != nil {
			fmt.Println(rec.Line, rec.Get(FieldICCID), rec.Get(FieldIMSI))
		}
	}
	// Output:
	// MNOB -> MNOA 2 records
	// 11 8999901000000000013 999990000000001
	// in.txt:12: iccid: ICCID check digit (Luhn) is wrong: last digit 4, expected 3
	// 12 8999901000000000014 999990000000002
}
