package ota

import (
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// The IMSI update of a typical profile: 35 octets of script.
var benchScript = []byte("\x00\xa4\x00\x0c\x02\x3f\x00\x00\xa4\x00\x0c\x02\x7f\xff\x00\xa4\x00\x0c\x02\x6f\x07\x00\xd6\x00\x00\x09\x08\x29\x26\x24\x10\x32\x54\x76\x98")

func benchParams(aes bool) (Params, Keys) {
	if aes {
		return Params{SPI: 0x1639, KIc: 0x12, KID: 0x12, TAR: TAR{0xb0, 0, 0x11}}, Keys{KIc: packetOf(16), KID: packetOf(17)[1:]}
	}
	return Params{SPI: 0x1639, KIc: 0x15, KID: 0x15, TAR: TAR{0xb0, 0, 0x11}}, Keys{KIc: packetOf(16), KID: packetOf(17)[1:]}
}

// BenchmarkEncode: packets per second, one reused codec per goroutine
// (the cost of one more message to a card whose key set is loaded), and
// a fresh codec per packet (a batch where every message goes to another
// card), on one core and in parallel on all cores.
func BenchmarkEncode(b *testing.B) {
	for _, alg := range []struct {
		name string
		aes  bool
	}{{"3DES", false}, {"AES", true}} {
		p, k := benchParams(alg.aes)
		b.Run(alg.name+"/reuse/1core", func(b *testing.B) {
			c, _ := NewCodec(p, k)
			buf := make([]byte, 0, 256)
			b.ReportAllocs()
			var n uint64
			for b.Loop() {
				n++
				buf, _ = c.EncodeCommand(buf[:0], n, benchScript)
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "packets/s")
		})
		b.Run(alg.name+"/percard/1core", func(b *testing.B) {
			buf := make([]byte, 0, 256)
			b.ReportAllocs()
			var n uint64
			for b.Loop() {
				n++
				c, _ := NewCodec(p, k)
				buf, _ = c.EncodeCommand(buf[:0], n, benchScript)
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "packets/s")
		})
		b.Run(alg.name+"/percard/parallel", func(b *testing.B) {
			b.ReportAllocs()
			var n atomic.Uint64
			b.SetParallelism(1)
			b.RunParallel(func(pb *testing.PB) {
				buf := make([]byte, 0, 256)
				for pb.Next() {
					c, _ := NewCodec(p, k)
					buf, _ = c.EncodeCommand(buf[:0], n.Add(1), benchScript)
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "packets/s")
			b.ReportMetric(float64(runtime.GOMAXPROCS(0)), "cores")
		})
		b.Run(alg.name+"/reuse/parallel", func(b *testing.B) {
			b.ReportAllocs()
			var n atomic.Uint64
			b.RunParallel(func(pb *testing.PB) {
				c, _ := NewCodec(p, k)
				buf := make([]byte, 0, 256)
				for pb.Next() {
					buf, _ = c.EncodeCommand(buf[:0], n.Add(1), benchScript)
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "packets/s")
		})
	}
}

func BenchmarkDecodeResponse(b *testing.B) {
	p, k := benchParams(false)
	c, _ := NewCodec(p, k)
	por, _ := c.EncodeResponse(nil, 7, StatusOK, AppendCompactResponse(nil, 5, 0x9000, benchScript[26:]))
	buf := make([]byte, len(por))
	b.ReportAllocs()
	for b.Loop() {
		copy(buf, por)
		if _, err := c.DecodeResponse(buf); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkEncodeFloor: a batch's encoding, every message to another card
// (one rekeyed Encoder per worker), beside the floor — the standard
// library's cipher work for the same packet, key schedules included, and
// nothing else — and the ratio, on one core and on every core.
func BenchmarkEncodeFloor(b *testing.B) {
	for _, alg := range []struct {
		name string
		aes  bool
	}{{"3DES", false}, {"AES", true}} {
		p, k := benchParams(alg.aes)
		b.Run(alg.name+"/1core", func(b *testing.B) {
			// The floor runs in chunks between the encoder's (its time
			// not counted in ns/op), so both see the same machine load.
			const chunk = 256
			var e Encoder
			f := newFloor(b, p, k, benchScript)
			var floorTime time.Duration
			floorN := 0
			b.ReportAllocs()
			var n uint64
			for b.Loop() {
				n++
				if _, err := e.Message(p, k, n, benchScript, byte(n)); err != nil {
					b.Fatal(err)
				}
				if n%chunk == 0 {
					b.StopTimer()
					t0 := time.Now()
					for range chunk {
						f.packet()
					}
					floorTime += time.Since(t0)
					floorN += chunk
					b.StartTimer()
				}
			}
			if floorN == 0 {
				floorTime, floorN = time.Duration(floorTime0(b, p, k, b.N)*float64(b.N)), b.N
			}
			got := float64(b.Elapsed().Nanoseconds()) / float64(b.N)
			floorNs := float64(floorTime.Nanoseconds()) / float64(floorN)
			b.ReportMetric(floorNs, "floor-ns/op")
			b.ReportMetric(got/floorNs, "x-floor")
		})
		b.Run(alg.name+"/parallel", func(b *testing.B) {
			b.ReportAllocs()
			var n atomic.Uint64
			b.RunParallel(func(pb *testing.PB) {
				var e Encoder
				for pb.Next() {
					c := n.Add(1)
					if _, err := e.Message(p, k, c, benchScript, byte(c)); err != nil {
						b.Error(err)
						return
					}
				}
			})
			got := float64(b.Elapsed().Nanoseconds()) / float64(b.N)
			floorNs := floorTime(b, p, k, b.N, runtime.GOMAXPROCS(0))
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "packets/s")
			b.ReportMetric(floorNs, "floor-ns/op")
			b.ReportMetric(got/floorNs, "x-floor")
			b.ReportMetric(float64(runtime.GOMAXPROCS(0)), "cores")
		})
	}
}

// floorTime0 is floorTime on one goroutine.
func floorTime0(b *testing.B, p Params, k Keys, n int) float64 { return floorTime(b, p, k, n, 1) }

// floorTime runs the floor's work for n packets on the given number of
// goroutines, right after the measured loop (so on the same machine
// load), and returns the wall time a packet.
func floorTime(b *testing.B, p Params, k Keys, n, workers int) float64 {
	b.StopTimer()
	defer b.StartTimer()
	fs := make([]*floor, workers)
	for i := range fs {
		fs[i] = newFloor(b, p, k, benchScript)
	}
	var wg sync.WaitGroup
	start := time.Now()
	for i, f := range fs {
		m := n / workers
		if i < n%workers {
			m++
		}
		wg.Go(func() {
			for range m {
				f.packet()
			}
		})
	}
	wg.Wait()
	return float64(time.Since(start).Nanoseconds()) / float64(n)
}
