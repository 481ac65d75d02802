package bench

import (
	"bufio"
	"bytes"
	"os"
	"strconv"
)

// PeakRSS is the process's peak resident set size in bytes: VmHWM of
// /proc/self/status on Linux (which resetPeak sets back to the current
// RSS, so that a stage measures its own peak), else the lifetime peak from
// getrusage where the system has it, else 0.
func PeakRSS() int64 {
	if f, err := os.Open("/proc/self/status"); err == nil {
		defer f.Close()
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			line := sc.Bytes()
			if v, ok := bytes.CutPrefix(line, []byte("VmHWM:")); ok {
				v = bytes.TrimSpace(bytes.TrimSuffix(bytes.TrimSpace(v), []byte("kB")))
				if kb, err := strconv.ParseInt(string(v), 10, 64); err == nil {
					return kb << 10
				}
			}
		}
	}
	return rusagePeak()
}

// resetPeak sets the kernel's peak RSS mark (VmHWM) back to the current
// RSS (Linux ≥ 4.0: write "5" to /proc/self/clear_refs). Where that is not
// possible the peak stays the process's lifetime peak.
func resetPeak() {
	_ = os.WriteFile("/proc/self/clear_refs", []byte("5"), 0)
}
