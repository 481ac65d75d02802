//go:build !unix

package bench

import "time"

func rusagePeak() int64 { return 0 }

func cpuTime() time.Duration { return 0 }
