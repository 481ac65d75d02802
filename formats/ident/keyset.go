package ident

import (
	"math/bits"
	"math/rand/v2"
)

// KeySet detects repeated ICCIDs or IMSIs in one file. Values are packed
// into non-zero uint64 keys (ICCIDKey, IMSIKey) and kept in an
// open-addressing table with linear probing, indexed by multiply-shift
// (any size, not just powers of two), grown by 1.25x at 92 % load: 8 bytes
// a slot, 9 to 11 bytes a key. The hash is keyed with a random seed
// (hash/maphash), so a file cannot be crafted to make probing quadratic.
// A million-record imsi-list (two such sets) holds about 20 MB of live
// heap at the end and peaks at about 41 MB (BenchmarkCheckIMSIList); Go's
// map takes about 2.5 times that.
type KeySet struct {
	slots []uint64
	n     int
	seed  uint64
}

const keySetMinSlots = 1024

// NewKeySet returns an empty set.
func NewKeySet() *KeySet { return &KeySet{seed: rand.Uint64()} }

// Add adds key (non-zero) and reports whether it was new.
func (d *KeySet) Add(key uint64) bool {
	if d.n >= len(d.slots)*92/100 {
		d.grow()
	}
	if d.insert(key) {
		d.n++
		return true
	}
	return false
}

func (d *KeySet) insert(key uint64) bool {
	n := uint64(len(d.slots))
	i, _ := bits.Mul64(mix(key^d.seed), n)
	for {
		switch d.slots[i] {
		case 0:
			d.slots[i] = key
			return true
		case key:
			return false
		}
		if i++; i == n {
			i = 0
		}
	}
}

func (d *KeySet) grow() {
	old := d.slots
	d.slots = make([]uint64, max(keySetMinSlots, len(old)+len(old)/4))
	for _, k := range old {
		if k != 0 {
			d.insert(k)
		}
	}
}

// mix is splitmix64's finaliser, a bijection that spreads sequential keys.
func mix(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}
