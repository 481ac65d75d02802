package vendor

import (
	"bytes"
	"fmt"
	"io"
	"testing"

	"resub/formats/ident"
)

// BenchmarkRead reads a synthetic 100,000-card 3a output file written by
// the Writer (the shape the pipeline benchmark's fleet uses).
func BenchmarkRead(b *testing.B) {
	const n = 100_000
	var buf bytes.Buffer
	w := NewWriter(&buf)
	w.WriteHeader(&Header{Customer: "MNOA", Quantity: n, Type: "USIM-TEST", Batch: "BENCH", Algorithm: "milenage"},
		[]string{"ICCID", "IMSI", "KI", "OPC", "KIC1", "KID1", "KIK1", "CNTR1"})
	key := func(p byte) []byte { return bytes.Repeat([]byte{p}, 16) }
	for i := 0; i < n; i++ {
		body := fmt.Sprintf("8999901%012d", i)
		d, _ := ident.LuhnDigit(body)
		w.Write(&Card{ICCID: body + string(d), IMSI: fmt.Sprintf("00101%010d", i), Ki: key(0x11), OPc: key(0x22),
			KeySets: []KeySet{{KVN: 1, KIc: key(0x33), KID: key(0x44), KIK: key(0x55)}}, Counter: 0})
	}
	if err := w.Flush(); err != nil {
		b.Fatal(err)
	}
	data := buf.Bytes()
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		rd := NewReader(bytes.NewReader(data), Options{})
		count := 0
		for {
			c, err := rd.Read()
			if err == io.EOF {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
			c.Zero()
			count++
		}
		if count != n {
			b.Fatalf("%d cards", count)
		}
	}
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "cards/s")
}
