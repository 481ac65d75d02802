//go:build race

package faulttest

// raceEnabled: the race detector slows in-process work about tenfold;
// the heaviest inputs shrink under it.
const raceEnabled = true
