package ident

import (
	"errors"
	"testing"
)

func TestLuhnDigit(t *testing.T) {
	cases := []struct {
		body string
		want byte
	}{
		{"898821100000046728", '5'}, // ITU-T E.118 example
		{"7992739871", '3'},         // the classic Luhn (ISO/IEC 7812) example
		{"0", '0'},
		{"1", '8'},
	}
	for _, c := range cases {
		got, err := LuhnDigit(c.body)
		if err != nil || got != c.want {
			t.Errorf("LuhnDigit(%q) = %c, %v; want %c", c.body, got, err, c.want)
		}
	}
	if _, err := LuhnDigit("12a"); !errors.Is(err, ErrICCIDDigits) {
		t.Errorf("LuhnDigit of non-digits: %v", err)
	}
}

func TestNormalizeICCID(t *testing.T) {
	strict := ICCIDOptions{}
	noCD := ICCIDOptions{NoCheckDigit: true}
	pad := ICCIDOptions{FPadding: true}
	cases := []struct {
		name string
		in   string
		o    ICCIDOptions
		want string
		err  error
	}{
		{"19 digits with check digit", "8988211000000467285", strict, "8988211000000467285", nil},
		{"18 digits", "898821100000046728", strict, "", ErrICCIDLuhn}, // 18 digits: last digit 8 is taken as check digit
		{"wrong check digit", "8988211000000467284", strict, "", ErrICCIDLuhn},
		{"prefix", "9988211000000467285", strict, "", ErrICCIDPrefix},
		{"too short", "89882110000004672", strict, "", ErrICCIDLength},
		{"too long", "898821100000046728500", strict, "", ErrICCIDLength},
		{"letters", "89882110000004672X5", strict, "", ErrICCIDDigits},
		{"empty", "", strict, "", ErrICCIDDigits},
		{"no check digit convention", "8988211000000467280", noCD, "89882110000004672806", nil},
		{"no check digit convention keeps 20", "89882110000004672806", noCD, "89882110000004672806", nil},
		{"F padding stripped", "8988211000000467285F", pad, "8988211000000467285", nil},
		{"f padding stripped", "8988211000000467285f", pad, "8988211000000467285", nil},
		{"F padding refused when not agreed", "8988211000000467285F", strict, "", ErrICCIDPadding},
		{"F padding with bad check digit", "8988211000000467284F", pad, "", ErrICCIDLuhn},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := NormalizeICCID(c.in, c.o)
			if c.err != nil {
				if !errors.Is(err, c.err) {
					t.Fatalf("NormalizeICCID(%q) error %v, want %v", c.in, err, c.err)
				}
				return
			}
			if err != nil || got != c.want {
				t.Fatalf("NormalizeICCID(%q) = %q, %v; want %q", c.in, got, err, c.want)
			}
			if err := ValidICCID(got); err != nil {
				t.Errorf("normalised %q is not valid: %v", got, err)
			}
		})
	}
}

func TestICCIDKeyDistinct(t *testing.T) {
	a, ok1 := ICCIDKey("898821100000046728")
	b, ok2 := ICCIDKey("8908988211000000467")
	c, ok3 := ICCIDKey("89000000000000000000")
	d, ok4 := ICCIDKey("8900000000000000000")
	f, _ := ICCIDKey("890000000000000000")
	if f == c || f == d || f == 0 {
		t.Errorf("18-digit key %x collides", f)
	}
	if !ok1 || !ok2 || !ok3 || !ok4 {
		t.Fatal("ICCIDKey refused a valid shape")
	}
	e, _ := ICCIDKey("898900000000000000") // body all zeros: still not the zero key
	if a == b || c == d || c == e || d == e || e == 0 {
		t.Errorf("keys collide: %x %x %x %x %x", a, b, c, d, e)
	}
	if _, ok := ICCIDKey("99000000000000000000"); ok {
		t.Error("ICCIDKey accepted a non-89 prefix")
	}
}

func TestIMSI(t *testing.T) {
	for _, s := range []string{"001010000000001", "99999000000001"} {
		if err := ValidIMSI(s); err != nil {
			t.Errorf("ValidIMSI(%q): %v", s, err)
		}
	}
	for s, want := range map[string]error{
		"0010100000001":    ErrIMSILength,
		"0010100000000011": ErrIMSILength,
		"00101000000000a":  ErrIMSIDigits,
		"":                 ErrIMSIDigits,
	} {
		if err := ValidIMSI(s); !errors.Is(err, want) {
			t.Errorf("ValidIMSI(%q) = %v, want %v", s, err, want)
		}
	}
	k1, _ := IMSIKey("001010000000001")
	k2, _ := IMSIKey("01010000000001")
	if k1 == k2 {
		t.Error("IMSIKey ignores the length")
	}
}

func TestPLMNAndRanges(t *testing.T) {
	p2, err := ParsePLMN("001-01")
	if err != nil {
		t.Fatal(err)
	}
	p3, err := ParsePLMN("999-999")
	if err != nil {
		t.Fatal(err)
	}
	if !p2.Contains("001010000000001") || p2.Contains("001020000000001") {
		t.Error("2-digit MNC prefix wrong")
	}
	// 999-99 and 999-999 differ: an IMSI 99999 9... is in both, 99999 0... only in the 2-digit one.
	if p3.Contains("999990000000001") || !p3.Contains("999999000000001") {
		t.Error("3-digit MNC prefix wrong")
	}
	if m, ok := p3.MSIN("999999123456789"); !ok || m != "123456789" {
		t.Errorf("MSIN = %q, %v", m, ok)
	}
	for _, bad := range []string{"00101", "01-01", "001-1", "001-0101", "abc-01"} {
		if _, err := ParsePLMN(bad); !errors.Is(err, ErrPLMN) {
			t.Errorf("ParsePLMN(%q) = %v", bad, err)
		}
	}

	r, err := ParseIMSIRange("001-01:0000-0009")
	if err != nil {
		t.Fatal(err)
	}
	cases := map[string]bool{
		"001010000000001": true,
		"001010009999999": true,
		"001010010000000": false,
		"001020000000001": false,
		"00101000000001":  true, // 14 digits, MSIN 9 digits
	}
	for imsi, want := range cases {
		if got := r.Contains(imsi); got != want {
			t.Errorf("%s contains %s = %v, want %v", r, imsi, got, want)
		}
	}
	whole, _ := ParseIMSIRange("999-99")
	rs := IMSIRanges{r, whole}
	if err := rs.Check("999990000000007"); err != nil {
		t.Errorf("whole PLMN: %v", err)
	}
	if err := rs.Check("001010100000000"); !errors.Is(err, ErrIMSINotInRange) {
		t.Errorf("outside ranges: %v", err)
	}
	for _, bad := range []string{"001-01:5-4", "001-01:00-1", "001-01:0a-0b", "001-01:1"} {
		if _, err := ParseIMSIRange(bad); err == nil {
			t.Errorf("ParseIMSIRange(%q) accepted", bad)
		}
	}
}

func TestMSISDN(t *testing.T) {
	if s, err := NormalizeMSISDN("+447700900123"); err != nil || s != "447700900123" {
		t.Errorf("NormalizeMSISDN = %q, %v", s, err)
	}
	for _, bad := range []string{"", "07700900123", "4477009001234567", "44 7700", "12"} {
		if err := ValidMSISDN(bad); !errors.Is(err, ErrMSISDN) {
			t.Errorf("ValidMSISDN(%q) = %v", bad, err)
		}
	}
	if err := ValidMSISDN("447700900123456"); err != nil {
		t.Errorf("15 digits: %v", err)
	}
}

func TestKeys(t *testing.T) {
	hexOf := func(n int) string {
		b := make([]byte, 2*n)
		for i := range b {
			b[i] = "0123456789abcdefABCDEF"[i%22]
		}
		return string(b)
	}
	ciphers := []struct {
		alg  CipherAlg
		good []int
		bad  []int
	}{
		{DES, []int{8}, []int{7, 16}},
		{TDES2, []int{16}, []int{8, 24}},
		{TDES3, []int{24}, []int{16, 32}},
		{AES, []int{16, 24, 32}, []int{8, 20}},
		{AES128, []int{16}, []int{32}},
		{AES192, []int{24}, []int{16}},
		{AES256, []int{32}, []int{24}},
	}
	for _, c := range ciphers {
		l, err := c.alg.Lengths()
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range c.good {
			k, err := DecodeKey(hexOf(n), l...)
			if err != nil || CheckCipherKey(k, c.alg) != nil {
				t.Errorf("%s with %d bytes refused: %v", c.alg, n, err)
			}
		}
		for _, n := range c.bad {
			if _, err := DecodeKey(hexOf(n), l...); !errors.Is(err, ErrKeyLength) {
				t.Errorf("%s with %d bytes: %v", c.alg, n, err)
			}
		}
	}
	if _, err := DecodeKey("0g", 1); !errors.Is(err, ErrHex) {
		t.Errorf("non-hex: %v", err)
	}
	if _, err := DecodeKey("000", 1); !errors.Is(err, ErrHex) {
		t.Errorf("odd hex: %v", err)
	}
	k16, k32 := make([]byte, 16), make([]byte, 32)
	if CheckKi(k16, Milenage) != nil || CheckKi(k32, Milenage) == nil {
		t.Error("MILENAGE Ki must be 16 bytes")
	}
	if CheckKi(k16, TUAK) != nil || CheckKi(k32, TUAK) != nil || CheckKi(make([]byte, 24), TUAK) == nil {
		t.Error("TUAK Ki must be 16 or 32 bytes")
	}
	if CheckOPc(k16, Milenage) != nil || CheckOPc(k32, Milenage) == nil {
		t.Error("MILENAGE OPc must be 16 bytes")
	}
	if CheckOPc(k32, TUAK) != nil || CheckOPc(k16, TUAK) == nil {
		t.Error("TUAK TOPc must be 32 bytes")
	}
	if CheckKi(k16, "md5") == nil {
		t.Error("unknown algorithm accepted")
	}
	for _, v := range []int{1, 15} {
		if CheckKeyVersion(v) != nil {
			t.Errorf("KVN %d refused", v)
		}
	}
	for _, v := range []int{0, 16, -1} {
		if !errors.Is(CheckKeyVersion(v), ErrKeyVersion) {
			t.Errorf("KVN %d accepted", v)
		}
	}
	if CheckKeyIndex(1, 1) != nil || CheckKeyIndex(4, 4) != nil {
		t.Error("valid key index refused")
	}
	if !errors.Is(CheckKeyIndex(0, 4), ErrKeyIndex) || !errors.Is(CheckKeyIndex(5, 4), ErrKeyIndex) {
		t.Error("out-of-list key index accepted")
	}
}
