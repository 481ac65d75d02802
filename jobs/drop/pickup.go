package drop

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"strings"
	"time"
)

// PickerOptions says which files of an inbox are ready.
type PickerOptions struct {
	// Patterns are path.Match globs; a file is considered when its name
	// matches one. None means every file.
	Patterns []string
	// Names with this prefix or suffix are deliveries in progress (the
	// partner's temporary names) and are never picked up.
	TempPrefix, TempSuffix string
	// Stable: a file is complete once its size and modification time have
	// not changed for this long. Marker: a file is complete once
	// NAME+Marker exists (e.g. ".done", ".ok"); the marker moves with the
	// file. Exactly one must be set.
	Stable time.Duration
	Marker string
	Now    func() time.Time                                 // default time.Now
	Sleep  func(ctx context.Context, d time.Duration) error // default a timer
}

type observation struct {
	size  int64
	mtime time.Time
	since time.Time
}

// Picker finds the complete files of a drop's inbox. It remembers what it
// saw between calls; use one Picker per drop, from one goroutine.
type Picker struct {
	d    Drop
	o    PickerOptions
	seen map[string]observation
}

// NewPicker checks the options.
func NewPicker(d Drop, o PickerOptions) (*Picker, error) {
	var problems []error
	for _, p := range o.Patterns {
		if _, err := path.Match(p, ""); err != nil {
			problems = append(problems, fmt.Errorf("pattern %q: %w", p, err))
		}
	}
	switch {
	case o.Stable > 0 && o.Marker != "":
		problems = append(problems, errors.New("set either stable or marker, not both"))
	case o.Stable <= 0 && o.Marker == "":
		problems = append(problems, errors.New("set stable (e.g. 30s) or marker (.done or .ok) to recognise complete files"))
	case o.Marker != "" && (CheckName("x"+o.Marker) != nil || !strings.HasPrefix(o.Marker, ".")):
		problems = append(problems, fmt.Errorf("marker %q: want a suffix such as .done", o.Marker))
	}
	if len(problems) > 0 {
		return nil, &ConfigError{fmt.Errorf("pickup: %w", errors.Join(problems...))}
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Sleep == nil {
		o.Sleep = sleepCtx
	}
	return &Picker{d: d, o: o, seen: map[string]observation{}}, nil
}

func (p *Picker) candidate(name string) bool {
	if p.o.TempPrefix != "" && strings.HasPrefix(name, p.o.TempPrefix) ||
		p.o.TempSuffix != "" && strings.HasSuffix(name, p.o.TempSuffix) ||
		p.o.Marker != "" && strings.HasSuffix(name, p.o.Marker) {
		return false
	}
	if len(p.o.Patterns) == 0 {
		return true
	}
	for _, pat := range p.o.Patterns {
		if ok, _ := path.Match(pat, name); ok {
			return true
		}
	}
	return false
}

// Ready returns the complete files, sorted by name. With the stable rule,
// a file seen for the first time, or changed since, is watched: when any
// is, Ready waits once for the stable interval and looks again, so that
// a single pass picks up a file that has stopped growing. A file still
// changing is left for a later call.
func (p *Picker) Ready(ctx context.Context) ([]FileInfo, error) {
	ready, wait, err := p.scan(ctx)
	if err != nil || wait <= 0 {
		return ready, err
	}
	if err := p.o.Sleep(ctx, wait); err != nil {
		return nil, err
	}
	ready, _, err = p.scan(ctx)
	return ready, err
}

// scan lists the inbox once; wait is how long until the next watched
// file could become stable (0 when none is watched).
func (p *Picker) scan(ctx context.Context) (ready []FileInfo, wait time.Duration, err error) {
	list, err := p.d.List(ctx)
	if err != nil {
		return nil, 0, err
	}
	names := make(map[string]bool, len(list))
	for _, fi := range list {
		names[fi.Name] = true
	}
	now := p.o.Now()
	current := make(map[string]observation, len(list))
	for _, fi := range list {
		if !p.candidate(fi.Name) {
			continue
		}
		if p.o.Marker != "" {
			if names[fi.Name+p.o.Marker] {
				ready = append(ready, fi)
			}
			continue
		}
		o, ok := p.seen[fi.Name]
		if !ok || o.size != fi.Size || !o.mtime.Equal(fi.ModTime) {
			o = observation{size: fi.Size, mtime: fi.ModTime, since: now}
		}
		current[fi.Name] = o
		if left := o.since.Add(p.o.Stable).Sub(now); left <= 0 {
			ready = append(ready, fi)
		} else if wait == 0 || left < wait {
			wait = left
		}
	}
	p.seen = current
	return ready, wait, nil
}

// Done moves a picked-up file, and its marker if any, to the archive or
// the quarantine.
func (p *Picker) Done(ctx context.Context, name string, to Folder) error {
	if err := p.d.Move(ctx, name, to); err != nil {
		return err
	}
	delete(p.seen, name)
	if p.o.Marker != "" {
		if err := moveMarker(ctx, p.d, name+p.o.Marker, to); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	return nil
}

// markerMover is implemented by the wrappers, so that moving a marker is
// not counted as moving a file.
type markerMover interface {
	moveMarker(ctx context.Context, name string, to Folder) error
}

func moveMarker(ctx context.Context, d Drop, name string, to Folder) error {
	if m, ok := d.(markerMover); ok {
		return m.moveMarker(ctx, name, to)
	}
	return d.Move(ctx, name, to)
}
