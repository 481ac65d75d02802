//go:build !failpoints

package failpoint

import "io"

// Enabled reports whether this build honours failpoints.
const Enabled = false

// Hit does nothing in a normal build.
func Hit(string) {}

// Reader returns r: a normal build never interrupts a copy.
func Reader(_ string, r io.Reader, _ int64) io.Reader { return r }
