package ident

import "testing"

func TestKeySet(t *testing.T) {
	d := NewKeySet()
	const n = 200_000
	for i := uint64(1); i <= n; i++ {
		if !d.Add(i * 7919) {
			t.Fatalf("key %d reported as seen", i)
		}
	}
	for i := uint64(1); i <= n; i += 997 {
		if d.Add(i * 7919) {
			t.Fatalf("key %d not found", i)
		}
	}
	if d.n != n || d.n > len(d.slots)*92/100 {
		t.Errorf("n %d, slots %d", d.n, len(d.slots))
	}
}
