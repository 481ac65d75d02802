//go:build !unix

package jobs

// processExists cannot tell elsewhere: a lease runs to its expiry.
func processExists(int) bool { return true }
