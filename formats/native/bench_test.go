package native

import (
	"fmt"
	"io"
	"runtime"
	"strconv"
	"testing"

	"resub/formats/ident"
)

// imsiListSource generates an imsi-list of n records without holding it.
type imsiListSource struct {
	n, i int
	buf  []byte
	head bool
}

func newIMSIListSource(n int) *imsiListSource { return &imsiListSource{n: n} }

func (s *imsiListSource) Read(p []byte) (int, error) {
	for len(s.buf) < len(p) {
		if !s.head {
			s.head = true
			s.buf = fmt.Appendf(s.buf, "#format: imsi-list\n#version: 1\n#sender: MNOB\n#receiver: MNOA\n#business-date: 2026-11-30\n#sequence: 1\n#created: 2026-11-30T06:00:00Z\n#batch: BENCH\n#quantity: %d\niccid|imsi|cutover-date\n", s.n)
			continue
		}
		if s.i == s.n {
			break
		}
		s.i++
		body := strconv.AppendInt([]byte("8999901"), int64(100000000000+s.i), 10)
		cd, _ := ident.LuhnDigit(string(body))
		s.buf = append(s.buf, body...)
		s.buf = append(s.buf, cd, '|')
		s.buf = strconv.AppendInt(append(s.buf, "99999"...), int64(1000000000+s.i), 10)
		s.buf = append(s.buf, "|2026-12-07\n"...)
	}
	if len(s.buf) == 0 {
		return 0, io.EOF
	}
	n := copy(p, s.buf)
	s.buf = s.buf[:copy(s.buf, s.buf[n:])]
	return n, nil
}

// BenchmarkCheckIMSIList reads and validates a 1,000,000-record imsi-list
// (duplicate detection of ICCID and IMSI included) and reports the
// records per second and the largest heap in use, sampled every 50,000
// records, and the heap still in use after a collection at the end (the
// duplicate tables: everything else is per line).
func BenchmarkCheckIMSIList(b *testing.B) {
	const n = 1_000_000
	var peak, live uint64
	var ms runtime.MemStats
	runtime.GC()
	b.ReportAllocs()
	for b.Loop() {
		rd := NewReader(newIMSIListSource(n), Options{File: "bench"})
		rd.ReuseRecord = true
		if _, err := rd.Header(); err != nil {
			b.Fatal(err)
		}
		count := 0
		for {
			_, err := rd.Read()
			if err == io.EOF {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
			count++
			if count%50_000 == 0 {
				runtime.ReadMemStats(&ms)
				peak = max(peak, ms.HeapInuse)
			}
		}
		if count != n {
			b.Fatalf("%d records", count)
		}
		runtime.GC()
		runtime.ReadMemStats(&ms)
		live = ms.HeapInuse
		runtime.KeepAlive(rd)
	}
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "records/s")
	b.ReportMetric(float64(peak)/(1<<20), "MB-heap-peak")
	b.ReportMetric(float64(live)/(1<<20), "MB-heap-live-at-end")
}
