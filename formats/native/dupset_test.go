package native

import "testing"

func TestDupSet(t *testing.T) {
	d := newDupSet()
	const n = 200_000
	for i := uint64(1); i <= n; i++ {
		if !d.add(i * 7919) {
			t.Fatalf("key %d reported as seen", i)
		}
	}
	for i := uint64(1); i <= n; i += 997 {
		if d.add(i * 7919) {
			t.Fatalf("key %d not found", i)
		}
	}
	if d.n != n || d.n > len(d.slots)*92/100 {
		t.Errorf("n %d, slots %d", d.n, len(d.slots))
	}
}
