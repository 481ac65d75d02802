//go:build !unix

package bench

func rusagePeak() int64 { return 0 }
