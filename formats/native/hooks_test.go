package native

import (
	"errors"
	"io"
	"os"
	"strings"
	"testing"

	"resub/formats/ident"
)

func sample(t *testing.T, typ string) string {
	t.Helper()
	b, err := os.ReadFile(samples(t)[typ])
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestHeaderHooks(t *testing.T) {
	inv := sample(t, "inventory")
	il := sample(t, "imsi-list")
	ir := sample(t, "imsi-result")
	kcvOK := func(id string) ([]byte, bool) { return []byte{0xc6, 0xa1, 0x3b}, id == "TK-TEST-1" }
	kcvBad := func(id string) ([]byte, bool) { return []byte{0xc6, 0xa1, 0x3c}, true }
	last := func(n int) func(string, string, string) (int, bool) {
		return func(s, r, f string) (int, bool) { return n, s == "MNOB" && r == "MNOA" && f == "imsi-list" }
	}
	ranges := func(s string) ident.IMSIRanges {
		r, err := ident.ParseIMSIRange(s)
		if err != nil {
			t.Fatal(err)
		}
		return ident.IMSIRanges{r}
	}
	cases := []struct {
		name  string
		file  string
		o     Options
		want  error // nil: no problem at all
		fatal bool
		field string
	}{
		{"kcv right", inv, Options{TransportKey: kcvOK}, nil, false, ""},
		{"kcv wrong refuses", inv, Options{TransportKey: kcvBad}, ErrKCVMismatch, true, HTransportKCV},
		{"key unknown refuses", inv, Options{TransportKey: func(string) ([]byte, bool) { return nil, false }}, ErrUnknownKey, true, HTransportKey},
		{"sequence next", il, Options{LastSequence: last(0)}, nil, false, ""},
		{"sequence repeat", il, Options{LastSequence: last(1)}, ErrSequenceRepeat, false, HSequence},
		{"sequence older", il, Options{LastSequence: last(5)}, ErrSequenceRepeat, false, HSequence},
		{"sequence gap", strings.Replace(il, "#sequence: 1", "#sequence: 3", 1), Options{LastSequence: last(1)}, ErrSequenceGap, false, HSequence},
		{"in reply to a file we sent", ir, Options{SentFile: func(n string, _ [32]byte) bool { return strings.HasPrefix(n, "MNOB_MNOA_imsi-list") }}, nil, false, ""},
		{"in reply to a stranger", ir, Options{SentFile: func(string, [32]byte) bool { return false }}, ErrInReplyTo, false, HInReplyTo},
		{"sender", il, Options{Sender: "MNOC"}, ErrSender, false, HSender},
		{"receiver", il, Options{Receiver: "MNOC"}, ErrReceiver, false, HReceiver},
		{"new IMSI in B's range", il, Options{SenderRanges: ranges("999-99:00000-00000")}, nil, false, ""},
		{"new IMSI outside B's ranges", il, Options{SenderRanges: ranges("999-999")}, ident.ErrIMSINotInRange, false, FieldIMSI},
		{"type from header", il, Options{Type: ""}, nil, false, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.o.File = "f"
			rd := NewReader(strings.NewReader(c.file), c.o)
			h, err := rd.Header()
			if c.fatal {
				if h != nil || !errors.Is(err, c.want) || Recoverable(err) {
					t.Fatalf("want fatal %v, got %v", c.want, err)
				}
				var rf interface{ Refused() bool }
				if !errors.As(err, &rf) || !rf.Refused() {
					t.Errorf("%v does not refuse", err)
				}
				if rec, err2 := rd.Read(); rec != nil || !errors.Is(err2, c.want) {
					t.Errorf("Read after refusal: %v %v", rec, err2)
				}
				return
			}
			probs := Problems(err)
			for {
				_, err := rd.Read()
				if err == io.EOF {
					break
				}
				probs = append(probs, Problems(err)...)
			}
			if c.want == nil {
				if len(probs) > 0 {
					t.Fatalf("unexpected %v", probs)
				}
				return
			}
			for _, p := range probs {
				if errors.Is(p, c.want) && p.Field == c.field {
					return
				}
			}
			t.Errorf("want %v at %s, got %v", c.want, c.field, probs)
		})
	}
}

// TestSentinels pins each testdata case to its sentinel where one exists,
// so that a rule cannot silently change into another.
func TestSentinels(t *testing.T) {
	want := map[string]error{
		"iccid-luhn.txt":                          ident.ErrICCIDLuhn,
		"iccid-prefix.txt":                        ident.ErrICCIDPrefix,
		"iccid-length.txt":                        ident.ErrICCIDLength,
		"imsi-length.txt":                         ident.ErrIMSILength,
		"duplicate-iccid.txt":                     ErrDuplicate,
		"duplicate-imsi.txt":                      ErrDuplicate,
		"missing-column.txt":                      ErrMissingColumn,
		"unknown-column.txt":                      ErrUnknownColumn,
		"field-count.txt":                         ErrFieldCount,
		"crlf.txt":                                ErrCRLF,
		"bom.txt":                                 ErrBOM,
		"not-utf8.txt":                            ErrNotUTF8,
		"long-line.txt":                           ErrLineTooLong,
		"truncated.txt":                           ErrTruncated,
		"binary.txt":                              ErrBinary,
		"quantity.txt":                            ErrQuantity,
		"quantity-empty.txt":                      ErrQuantity,
		"unknown-header.txt":                      ErrUnknownHeader,
		"missing-header.txt":                      ErrMissingHeader,
		"duplicate-header.txt":                    ErrDuplicateHeader,
		"header-syntax.txt":                       ErrHeaderSyntax,
		"wrong-format.txt":                        ErrWrongFormat,
		"unknown-format.txt":                      ErrUnknownFormat,
		"version.txt":                             ErrVersion,
		"empty-line.txt":                          ErrEmptyLine,
		"no-columns.txt":                          ErrNoColumns,
		"empty-file.txt":                          ErrNoColumns,
		"required.txt":                            ErrRequired,
		"msisdn.txt":                              ident.ErrMSISDN,
		"wrapped.txt":                             ErrWrapped,
		"wrapped-key-id.txt":                      ErrKeyID,
		"no-transport-key.txt":                    ErrNoTransportKey,
		"key-index.txt":                           ident.ErrKeyIndex,
		"kvn-missing.txt":                         ErrRequired,
		"kvn-twice.txt":                           ErrDuplicate,
		"kind-required.txt":                       ErrRequired,
		"reason-required.txt":                     ErrRequired,
		"header-after-columns.txt":                ErrHeaderSyntax,
		"MNOB_MNOA_imsi-list_20261130_000002.txt": ErrName,
	}
	for _, c := range loadCases(t, "../../testdata/native") {
		w, ok := want[c.file]
		if !ok {
			continue
		}
		f, err := os.Open("../../testdata/native/" + c.file)
		if err != nil {
			t.Fatal(err)
		}
		o := Options{File: c.file, Type: c.typ}
		if _, err := ParseName(c.file); err == nil {
			o.Name = c.file
		}
		probs := checkAll(f, o)
		f.Close()
		found := false
		for _, p := range probs {
			found = found || errors.Is(p, w)
		}
		if !found {
			t.Errorf("%s: want %v, got %v", c.file, w, probs)
		}
		delete(want, c.file)
	}
	for f := range want {
		t.Errorf("case %s missing from cases.txt", f)
	}
}

// TestBoundedHeader: a file that never reaches its column line is refused
// after a bounded number of lines, not read into memory.
func TestBoundedHeader(t *testing.T) {
	file := strings.Repeat("#note: x\n", 100000)
	rd := NewReader(strings.NewReader(file), Options{File: "f", Type: "imsi-list"})
	h, err := rd.Header()
	if h != nil || !errors.Is(err, ErrNoColumns) || Recoverable(err) {
		t.Fatalf("%v", err)
	}
	if n := len(Problems(err)); n > maxHeaderLines+1 {
		t.Errorf("%d problems kept", n)
	}
}

// A caller that finds duplicates itself gets the repeated records as
// valid ones: the reader then keeps nothing per record.
func TestCallerFindsDuplicates(t *testing.T) {
	for _, file := range []string{"duplicate-iccid.txt", "duplicate-imsi.txt"} {
		for _, caller := range []bool{false, true} {
			f, err := os.Open("../../testdata/native/" + file)
			if err != nil {
				t.Fatal(err)
			}
			probs := checkAll(f, Options{File: file, Type: "imsi-list", CallerFindsDuplicates: caller})
			f.Close()
			dup := false
			for _, p := range probs {
				dup = dup || errors.Is(p, ErrDuplicate)
			}
			if dup == caller {
				t.Errorf("%s, caller finds duplicates %v: problems %v", file, caller, probs)
			}
		}
	}
}
