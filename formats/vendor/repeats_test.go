package vendor

import (
	"bytes"
	"fmt"
	"io"
	"runtime"
	"strings"
	"testing"

	"resub/formats/ident"
	"resub/formats/native"
)

// repeatsFile is a clear 3a output file whose lines repeat earlier ICCIDs
// and IMSIs, alone, together, and on lines with other problems before and
// after the repeated column (a bad counter, an IMSI that is not one, a Ki
// that is not hex), and whose first lines with those values have problems
// of their own. cols orders the columns.
func repeatsFile(t testing.TB, cols []string) []byte {
	t.Helper()
	iccid := func(i int) string {
		body := fmt.Sprintf("8999901%012d", i)
		d, _ := ident.LuhnDigit(body)
		return body + string(d)
	}
	ki := strings.Repeat("11", 16)
	type line struct{ iccid, imsi, ki, cntr string }
	lines := []line{
		{iccid(1), "001010000000001", ki, "0"},
		{iccid(2), "001010000000002", "zz", "0"}, // a Ki that is not hex: its ICCID and IMSI still count
		{iccid(1), "001010000000003", ki, "0"},   // ICCID repeated
		{iccid(4), "001010000000001", ki, "0"},   // IMSI repeated
		{iccid(2), "001010000000002", ki, "0"},   // both, of a line with a problem
		{iccid(1), "001010000000006", ki, "x"},   // ICCID repeated, bad counter after it
		{iccid(7), "001010000000001", "zz", "0"}, // IMSI repeated, bad Ki after it
		{iccid(8), "00101", ki, "0"},             // an IMSI that is not one, no repeat
		{iccid(1), "00101", "zz", "x"},           // ICCID repeated and three other problems
		{iccid(10), "001010000000010", ki, "0"},
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "*HEADER\nCustomer: MNOA\nQuantity: %d\nTransport_key: clear\nAlgorithm: MILENAGE\nvar_Out: %s\n", len(lines), strings.Join(cols, "/"))
	for _, l := range lines {
		vals := map[string]string{"ICCID": l.iccid, "IMSI": l.imsi, "KI": l.ki, "CNTR": l.cntr}
		var f []string
		for _, c := range cols {
			f = append(f, vals[c])
		}
		b.WriteString(strings.Join(f, " ") + "\n")
	}
	return b.Bytes()
}

// A caller finding repeats (here with a map, as a stage does with its
// table) and asking WithRepeats gets, line for line, the problems the
// reader gives when it finds them itself, whatever the column order.
func TestCallerFindsDuplicatesSameProblems(t *testing.T) {
	for _, cols := range [][]string{{"ICCID", "IMSI", "KI", "CNTR"}, {"CNTR", "IMSI", "KI", "ICCID"}} {
		t.Run(strings.Join(cols, "/"), func(t *testing.T) {
			data := repeatsFile(t, cols)
			read := func(caller bool) []string {
				rd := NewReader(bytes.NewReader(data), Options{File: "v.out", CallerFindsDuplicates: caller})
				if _, err := rd.Header(); err != nil {
					t.Fatal(err)
				}
				seenICCID, seenIMSI := map[string]bool{}, map[string]bool{}
				var out []string
				for {
					c, err := rd.Read()
					if err == io.EOF {
						return out
					}
					if err != nil && !native.Recoverable(err) {
						t.Fatal(err)
					}
					if caller && c != nil {
						ic, im := rd.DuplicateKeys(c)
						err = rd.WithRepeats(c, err, ic != "" && seenICCID[ic], im != "" && seenIMSI[im])
						seenICCID[ic], seenIMSI[im] = true, true
					}
					var s []string
					for _, p := range native.Problems(err) {
						s = append(s, p.Error())
					}
					out = append(out, strings.Join(s, "; "))
				}
			}
			own, caller := read(false), read(true)
			if len(own) != 10 || len(caller) != len(own) {
				t.Fatalf("%d and %d lines", len(own), len(caller))
			}
			dups := 0
			for i := range own {
				if own[i] != caller[i] {
					t.Errorf("line %d:\nreader: %s\ncaller: %s", i+1, own[i], caller[i])
				}
				if strings.Contains(own[i], native.ErrDuplicate.Error()) {
					dups++
				}
			}
			if dups != 6 {
				t.Errorf("%d lines with a duplicate, want 6: %q", dups, own)
			}
			rd := NewReader(bytes.NewReader(data), Options{})
			rd.Header()
			ic, im, imsiFirst := rd.KeyColumns()
			if ic != "ICCID" || im != "IMSI" || imsiFirst != (cols[0] == "CNTR") {
				t.Errorf("key columns %s %s %v", ic, im, imsiFirst)
			}
		})
	}
}

// With CallerFindsDuplicates the reader keeps nothing per card: the heap
// after reading 120,000 cards is the heap after 12,000 (within 256 KB),
// where the reader finding repeats itself grows by megabytes.
func TestCallerFindsDuplicatesFlatMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("reads 264,000 cards")
	}
	file := func(n int) []byte {
		var buf bytes.Buffer
		w := NewWriter(&buf)
		w.WriteHeader(&Header{Customer: "MNOA", Quantity: n, Algorithm: "milenage"}, []string{"ICCID", "IMSI", "KI", "OPC", "KIC1", "KID1", "KIK1", "CNTR1"})
		key := bytes.Repeat([]byte{0x11}, 16)
		for i := range n {
			body := fmt.Sprintf("8999901%012d", i)
			d, _ := ident.LuhnDigit(body)
			w.Write(&Card{ICCID: body + string(d), IMSI: fmt.Sprintf("00101%010d", i), Ki: key, OPc: key,
				KeySets: []KeySet{{KVN: 1, KIc: key, KID: key, KIK: key}}})
		}
		if err := w.Flush(); err != nil {
			t.Fatal(err)
		}
		return buf.Bytes()
	}
	// growth reads the file and returns the live heap at its end less the
	// live heap before it.
	growth := func(data []byte, caller bool) int64 {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		rd := NewReader(bytes.NewReader(data), Options{CallerFindsDuplicates: caller})
		for {
			c, err := rd.Read()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			c.Zero()
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		runtime.KeepAlive(rd)
		return int64(after.HeapAlloc) - int64(before.HeapAlloc)
	}
	small, large := file(12_000), file(120_000)
	s, l := growth(small, true), growth(large, true)
	t.Logf("caller finds duplicates: %d bytes at 12,000 cards, %d at 120,000", s, l)
	if l-s > 256<<10 {
		t.Errorf("caller finds duplicates: the reader's heap grows by %d bytes at 12,000 cards and %d at 120,000", s, l)
	}
	s, l = growth(small, false), growth(large, false)
	t.Logf("reader finds duplicates: %d bytes at 12,000 cards, %d at 120,000", s, l)
	if l-s < 1<<20 {
		t.Errorf("reader finds duplicates: %d bytes at 12,000 cards and %d at 120,000; the measure does not see the sets", s, l)
	}
}
