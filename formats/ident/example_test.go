package ident_test

import (
	"fmt"

	"resub/formats/ident"
)

func ExampleLuhnDigit() {
	d, _ := ident.LuhnDigit("898821100000046728") // the ITU-T E.118 example
	fmt.Printf("%c\n", d)
	// Output: 5
}

func ExampleNormalizeICCID() {
	// A partner that pads 19-digit ICCIDs with F, and one that leaves out
	// the check digit.
	a, _ := ident.NormalizeICCID("8988211000000467285F", ident.ICCIDOptions{FPadding: true})
	b, _ := ident.NormalizeICCID("8988211000000467280", ident.ICCIDOptions{NoCheckDigit: true})
	_, err := ident.NormalizeICCID("8988211000000467284", ident.ICCIDOptions{})
	fmt.Println(a, b)
	fmt.Println(err)
	// Output:
	// 8988211000000467285 89882110000004672806
	// ICCID check digit (Luhn) is wrong: last digit 4, expected 5
}

func ExampleIMSIRanges_Contains() {
	r, _ := ident.ParseIMSIRange("999-99:0000-0099") // MSINs starting 0000 to 0099
	rs := ident.IMSIRanges{r}
	fmt.Println(rs.Contains("999990000123456"), rs.Contains("999990100000000"))
	// Output: true false
}
