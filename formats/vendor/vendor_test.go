package vendor

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"resub/formats/ident"
	"resub/formats/native"
)

func readAll(t testing.TB, r io.Reader, o Options) (*Header, []*Card, []*native.ParseError, error) {
	t.Helper()
	rd := NewReader(r, o)
	h, err := rd.Header()
	probs := native.Problems(err)
	if h == nil {
		return nil, nil, probs, err
	}
	var cards []*Card
	for {
		c, err := rd.Read()
		if err == io.EOF {
			return h, cards, probs, nil
		}
		if err != nil && !native.Recoverable(err) {
			return h, cards, append(probs, native.Problems(err)...), err
		}
		probs = append(probs, native.Problems(err)...)
		if c != nil {
			cards = append(cards, c)
		}
	}
}

func open(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestSamples(t *testing.T) {
	for _, c := range []struct {
		file    string
		cards   int
		keyList int
	}{{"vendor-3a.out", 3, 0}, {"vendor-3b.out", 2, 4}} {
		t.Run(c.file, func(t *testing.T) {
			h, cards, probs, _ := readAll(t, bytes.NewReader(open(t, "../../samples/"+c.file)), Options{File: c.file})
			if len(probs) > 0 {
				t.Fatal(probs)
			}
			if h.Quantity != c.cards || len(cards) != c.cards || h.KeyListLength != c.keyList || h.Algorithm != "milenage" {
				t.Fatalf("header %+v, %d cards", h, len(cards))
			}
			k := cards[0]
			if ident.ValidICCID(k.ICCID) != nil || len(k.Ki) != 16 || len(k.OPc) != 16 || len(k.KeySets) != 1 || k.KeySets[0].KVN != 1 || len(k.KeySets[0].KIK) != 16 || k.Counter != 0 {
				t.Errorf("card %+v", k)
			}
			if c.keyList > 0 && k.KeyListLength != c.keyList {
				t.Errorf("list length %d", k.KeyListLength)
			}
			if c.keyList == 0 && (k.Other["ACC"] == "" || k.Other["PIN1"] != "") {
				t.Errorf("other columns %v: ACC kept, PIN never", k.Other)
			}
			k.Zero()
			if !bytes.Equal(k.Ki, make([]byte, 16)) {
				t.Error("Zero left the Ki")
			}
		})
	}
}

// TestVariants: lower-case names, separators, CRLF, no blocks, the
// partner's ICCID conventions.
func TestVariants(t *testing.T) {
	const ki = "000102030405060708090a0b0c0d0e0f"
	cases := []struct {
		name string
		file string
		o    Options
		want string // ICCID of the card
	}{
		{"lower case, semicolons, CRLF, no blocks", "quantity: 1\r\nvar_out: iccid/imsi/ki\r\n8999901000000000013;001010000000001;" + ki + "\r\n", Options{}, "8999901000000000013"},
		{"tabs", "Quantity: 1\nvar_Out: ICCID/IMSI/KI\n8999901000000000013\t001010000000001\t" + ki + "\n", Options{}, "8999901000000000013"},
		{"F padding", "Quantity: 1\nvar_Out: ICCID/IMSI/KI\n8999901000000000013F 001010000000001 " + ki + "\n", Options{ICCID: ident.ICCIDOptions{FPadding: true}}, "8999901000000000013"},
		{"no check digit", "Quantity: 1\nvar_Out: ICCID/IMSI/KI\n8999901000000000001 001010000000001 " + ki + "\n", Options{ICCID: ident.ICCIDOptions{NoCheckDigit: true}}, "89999010000000000013"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, cards, probs, _ := readAll(t, strings.NewReader(c.file), c.o)
			if len(probs) > 0 || len(cards) != 1 || cards[0].ICCID != c.want {
				t.Fatalf("%v %+v", probs, cards)
			}
		})
	}
	// The same F-padded file without the convention is a problem.
	_, _, probs, _ := readAll(t, strings.NewReader(cases[2].file), Options{})
	if len(probs) != 1 || !errors.Is(probs[0], ident.ErrICCIDPadding) {
		t.Errorf("F padding without the convention: %v", probs)
	}
}

func TestLaterPairRefused(t *testing.T) {
	const base = "Key_list: 4\nvar_Out: ICCID/IMSI/KI/%s\n"
	for col, refused := range map[string]bool{
		"KI2": true, "OPC3": true, "KIC2": true, "KID2": true, "KIK15": true, "KI_P2": true, "KIC1_P3": true,
		"KIC1": false, "KIC2_P1": false, "OPC": false, "KI_P1": false, "ACC": false,
	} {
		t.Run(col, func(t *testing.T) {
			file := strings.Replace(base, "%s", col, 1)
			rd := NewReader(strings.NewReader(file), Options{File: "f"})
			h, err := rd.Header()
			var rf interface{ Refused() bool }
			got := h == nil && errors.Is(err, ErrLaterPair) && errors.As(err, &rf) && rf.Refused()
			if got != refused {
				t.Errorf("refused = %v (%v)", got, err)
			}
		})
	}
	// In a 3a file (no key list), KIC2 is key set 2 and is read.
	rd := NewReader(strings.NewReader("Quantity: 0\nvar_Out: ICCID/IMSI/KI/KIC2\n"), Options{})
	if h, err := rd.Header(); h == nil || err != nil {
		t.Errorf("3a KIC2: %v", err)
	}
	// The caller's configuration makes a file 3b even when it does not say so.
	rd = NewReader(strings.NewReader("var_Out: ICCID/IMSI/KI/KIC2\n"), Options{KeyList: true})
	if h, err := rd.Header(); h != nil || !errors.Is(err, ErrLaterPair) {
		t.Errorf("configured 3b KIC2: %v", err)
	}
}

func TestRoundTrip(t *testing.T) {
	for _, f := range []string{"vendor-3a.out", "vendor-3b.out"} {
		t.Run(f, func(t *testing.T) {
			h, cards, probs, _ := readAll(t, bytes.NewReader(open(t, "../../samples/"+f)), Options{})
			if len(probs) > 0 {
				t.Fatal(probs)
			}
			rd := NewReader(bytes.NewReader(open(t, "../../samples/"+f)), Options{})
			rd.Header()
			var cols []string
			for _, c := range rd.cols {
				cols = append(cols, c.name)
			}
			var buf bytes.Buffer
			w := NewWriter(&buf)
			w.WriteHeader(h, cols)
			for _, c := range cards {
				w.Write(c)
			}
			if err := w.Flush(); err != nil {
				t.Fatal(err)
			}
			h2, cards2, probs, _ := readAll(t, &buf, Options{})
			if len(probs) > 0 || len(cards2) != len(cards) || h2.Batch != h.Batch || h2.KeyListLength != h.KeyListLength {
				t.Fatalf("%v %d", probs, len(cards2))
			}
			for i := range cards {
				a, b := cards[i], cards2[i]
				if a.ICCID != b.ICCID || a.IMSI != b.IMSI || !bytes.Equal(a.Ki, b.Ki) || !bytes.Equal(a.OPc, b.OPc) || !bytes.Equal(a.KeySets[0].KIc, b.KeySets[0].KIc) || a.Counter != b.Counter {
					t.Errorf("card %d differs", i)
				}
			}
		})
	}
}

func TestInvalidFiles(t *testing.T) {
	dir := "../../testdata/vendor"
	f, err := os.Open(filepath.Join(dir, "cases.txt"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	n := 0
	for sc.Scan() {
		p := strings.Fields(sc.Text())
		if len(p) == 0 || p[0][0] == '#' {
			continue
		}
		n++
		line, _ := strconv.Atoi(p[2])
		field := strings.TrimPrefix(p[3], "-")
		t.Run(p[0], func(t *testing.T) {
			_, _, probs, _ := readAll(t, bytes.NewReader(open(t, filepath.Join(dir, p[0]))), Options{File: p[0]})
			for _, pr := range probs {
				if pr.Line == line && pr.Field == field {
					return
				}
			}
			t.Errorf("want %d: %q, got %v", line, field, probs)
		})
	}
	if n < 8 {
		t.Errorf("only %d cases", n)
	}
}

// FuzzVendor: no input makes the reader panic; a file it reads without
// problems survives write → read with the same cards.
func FuzzVendor(f *testing.F) {
	for _, p := range []string{"../../samples/vendor-3a.out", "../../samples/vendor-3b.out", "../../testdata/vendor/field-count.out"} {
		f.Add(open(f, p))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		rd := NewReader(bytes.NewReader(data), Options{MaxLineLength: 1024})
		h, cards, probs, err := readAll(t, bytes.NewReader(data), Options{MaxLineLength: 1024})
		if h == nil || len(probs) > 0 || err != nil {
			return
		}
		rd.Header()
		var cols []string
		for _, c := range rd.cols {
			cols = append(cols, c.name)
		}
		var buf bytes.Buffer
		w := NewWriter(&buf)
		w.WriteHeader(h, cols)
		for _, c := range cards {
			w.Write(c)
		}
		if w.Flush() != nil {
			return
		}
		_, cards2, _, _ := readAll(t, &buf, Options{})
		if len(cards2) != len(cards) {
			t.Fatalf("%d cards, then %d:\n%s", len(cards), len(cards2), buf.String())
		}
		for i := range cards {
			if cards[i].ICCID != cards2[i].ICCID || !bytes.Equal(cards[i].Ki, cards2[i].Ki) {
				t.Fatalf("card %d differs", i)
			}
		}
	})
}
