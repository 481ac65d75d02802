//go:build failpoints

package failpoint

import (
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
)

// Enabled reports whether this build honours failpoints.
const Enabled = true

// armed maps a point to the hit that kills (1 = the first). It is read
// once from the environment; this build exists for crash tests only.
var (
	once  sync.Once
	armed map[string]int
	stops map[string]bool
	mu    sync.Mutex
	hits  map[string]int
)

func load() {
	armed, hits, stops = map[string]int{}, map[string]int{}, map[string]bool{}
	for _, n := range strings.Split(os.Getenv(Env), ",") {
		n = strings.TrimSpace(n)
		if n == "" {
			continue
		}
		stop := false
		if name, ok := strings.CutSuffix(n, ":stop"); ok {
			n, stop = name, true
		}
		at := 1
		if name, count, ok := strings.Cut(n, "@"); ok {
			c, err := strconv.Atoi(count)
			if err != nil || c < 1 {
				fmt.Fprintf(os.Stderr, "failpoint: bad count in %q\n", n)
				continue
			}
			n, at = name, c
		}
		armed[n] = at
		stops[n] = stop
	}
}

// Hit kills the process with SIGKILL when name is armed (at its count).
func Hit(name string) {
	once.Do(load)
	at, ok := armed[name]
	if !ok {
		return
	}
	mu.Lock()
	hits[name]++
	n := hits[name]
	mu.Unlock()
	if n != at {
		return
	}
	if stops[name] {
		// Paused as a process the operating system stopped (or a
		// machine that hung) and resumed later: SIGCONT goes on here.
		fmt.Fprintf(os.Stderr, "failpoint: %s hit, stopping process %d\n", name, os.Getpid())
		_ = syscall.Kill(os.Getpid(), syscall.SIGSTOP)
		return
	}
	fmt.Fprintf(os.Stderr, "failpoint: %s hit, killing process %d\n", name, os.Getpid())
	_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
	select {} // SIGKILL is not deliverable late; never go on
}

// Reader returns r, reading through which hits name once more than half
// of size bytes went through (a crash in the middle of a copy).
func Reader(name string, r io.Reader, size int64) io.Reader {
	return &halfReader{r: r, name: name, half: size / 2}
}

type halfReader struct {
	r    io.Reader
	name string
	n    int64
	half int64
	hit  bool
}

func (h *halfReader) Read(b []byte) (int, error) {
	if !h.hit && h.n > 0 && h.n >= h.half {
		h.hit = true
		Hit(h.name)
	}
	// Stop the first reads at the half, so that exactly the first half
	// reaches the other side before the point is hit.
	if left := h.half - h.n; left > 0 && int64(len(b)) > left {
		b = b[:left]
	}
	n, err := h.r.Read(b)
	h.n += int64(n)
	return n, err
}
