package native

import (
	"bytes"
	"io"
	"os"
	"strings"
	"testing"
)

// An inventory whose records repeat earlier ICCIDs and IMSIs, alone and on
// records with other problems: a field's (before or after the repeated
// one) or a cross-field rule's (which a reader finding the repeat never
// checks), and repeating records with problems of their own.
func repeatsInventory(t *testing.T) []byte {
	t.Helper()
	b, err := os.ReadFile("../../testdata/native/algorithm.txt")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	var head []string
	var tmpl []string
	for _, l := range lines {
		switch {
		case strings.HasPrefix(l, "#quantity"):
		case strings.HasPrefix(l, "#") || strings.HasPrefix(l, "iccid|"):
			head = append(head, l)
		case tmpl == nil:
			tmpl = strings.Split(l, "|")
		}
	}
	const (
		iccid, imsi, alg, kvn = 0, 1, 4, 5
	)
	iccids := []string{"8999901000000000013", "8999901000000000021", "8999901000000000039", "8999901000000000047", "8999901000000000054"}
	rec := func(edit func(f []string)) string {
		f := append([]string(nil), tmpl...)
		f[alg] = "milenage"
		edit(f)
		return strings.Join(f, "|")
	}
	recs := []string{
		rec(func(f []string) { f[iccid], f[imsi] = iccids[0], "001010000000001" }),
		rec(func(f []string) { f[iccid], f[imsi], f[alg] = iccids[1], "001010000000002", "nonsense" }), // a field's problem
		rec(func(f []string) { f[iccid], f[imsi] = iccids[0], "001010000000003" }),                     // line 1's ICCID
		rec(func(f []string) { f[iccid], f[imsi] = iccids[2], "001010000000002" }),                     // line 2's IMSI
		rec(func(f []string) { f[iccid], f[imsi], f[alg] = iccids[0], "001010000000005", "nonsense" }), // a repeat and a field's problem
		rec(func(f []string) { f[iccid], f[imsi], f[kvn] = iccids[3], "001010000000006", "" }),         // a cross-field problem
		rec(func(f []string) { f[iccid], f[imsi], f[kvn] = iccids[3], "001010000000007", "" }),         // a repeat and a cross-field problem
		rec(func(f []string) { f[iccid], f[imsi] = "8999901000000000010", "001010000000001" }),         // a bad ICCID and a repeated IMSI
		rec(func(f []string) { f[iccid], f[imsi] = iccids[4], "001010000000001" }),                     // IMSI of line 1
		rec(func(f []string) { f[iccid], f[imsi] = iccids[1], "001010000000002" }),                     // both, of line 2
	}
	var out bytes.Buffer
	for _, l := range head {
		if strings.HasPrefix(l, "iccid|") {
			out.WriteString("#quantity: 10\n")
		}
		out.WriteString(l + "\n")
	}
	for _, r := range recs {
		out.WriteString(r + "\n")
	}
	return out.Bytes()
}

// A caller finding repeats (here with a map, as a stage does with its
// table) and asking WithRepeats gets, record for record, the problems the
// reader gives when it finds them itself.
func TestWithRepeatsSameProblems(t *testing.T) {
	data := repeatsInventory(t)
	read := func(caller bool) []string {
		rd := NewReader(bytes.NewReader(data), Options{File: "inv.txt", CallerFindsDuplicates: caller})
		if _, err := rd.Header(); err != nil {
			t.Fatal(err)
		}
		seenICCID, seenIMSI := map[string]bool{}, map[string]bool{}
		var out []string
		for {
			rec, err := rd.Read()
			if err == io.EOF {
				return out
			}
			if err != nil && !Recoverable(err) {
				t.Fatal(err)
			}
			if caller && rec != nil {
				ic, im := rd.DuplicateKeys(rec)
				err = rd.WithRepeats(rec, err, ic != "" && seenICCID[ic], im != "" && seenIMSI[im])
				seenICCID[ic], seenIMSI[im] = true, true
			}
			var s []string
			for _, p := range Problems(err) {
				s = append(s, p.Error())
			}
			out = append(out, strings.Join(s, "; "))
		}
	}
	own, caller := read(false), read(true)
	if len(own) != 10 || len(caller) != len(own) {
		t.Fatalf("%d and %d records", len(own), len(caller))
	}
	dups := 0
	for i := range own {
		if own[i] != caller[i] {
			t.Errorf("record %d:\nreader: %s\ncaller: %s", i+1, own[i], caller[i])
		}
		if strings.Contains(own[i], ErrDuplicate.Error()+": 8") || strings.Contains(own[i], ErrDuplicate.Error()+": 0") {
			dups++
		}
	}
	if dups != 7 {
		t.Errorf("%d records with a repeat, want 7:\n%s", dups, strings.Join(own, "\n"))
	}
}
