package jobs

import (
	"context"
	"sync"

	"resub/jobs/config"
	"resub/jobs/drop"
)

// withSkipLog makes the drop's listings of this run log each inbox name
// they leave out as unsafe, once per run however often the inbox is
// listed. The name is logged escaped (drop.SafeName), never raw: it may
// hold control characters or bidirectional marks meant for a terminal.
func (r *Runtime) withSkipLog(ctx context.Context, j *config.Job) context.Context {
	var (
		mu   sync.Mutex
		seen = map[string]bool{}
	)
	return drop.WithSkipReport(ctx, func(name string, err error) {
		mu.Lock()
		first := !seen[name]
		seen[name] = true
		mu.Unlock()
		if first {
			r.Log.Warn("inbox file left alone: unsafe name", "partner", j.Partner, "job", j.Name, "file", drop.SafeName(name), "err", err)
		}
	})
}
