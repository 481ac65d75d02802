package drop

import (
	"fmt"
	"sync"
	"time"
)

// identity tells one file from another under the same name: device and
// inode where known (local drops), size and modification time always.
type identity struct {
	dev, ino uint64
	size     int64
	mtimeNS  int64
	known    bool
}

// same reports whether a and b are the same file, unchanged. An unknown
// identity (a server that deletes what is stat'ed) matches anything.
func (a identity) same(b identity) bool {
	if !a.known || !b.known {
		return true
	}
	if a.ino != 0 && b.ino != 0 && (a.dev != b.dev || a.ino != b.ino) {
		return false
	}
	return a.size == b.size && a.mtimeNS == b.mtimeNS
}

func (a identity) String() string {
	s := fmt.Sprintf("%d bytes, modified %s", a.size, time.Unix(0, a.mtimeNS).UTC().Format(time.RFC3339Nano))
	if a.ino != 0 {
		s += fmt.Sprintf(", inode %d", a.ino)
	}
	return s
}

func errReplaced(name string, read, now identity) error {
	return fmt.Errorf("%w: %s was read as %s, is now %s", ErrReplaced, SafeName(name), read, now)
}

// openedFiles remembers the identity of every name Open read, until Move
// moves it.
type openedFiles struct {
	mu sync.Mutex
	m  map[string]identity
}

func (o *openedFiles) set(name string, id identity) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.m == nil {
		o.m = map[string]identity{}
	}
	o.m[name] = id
}

func (o *openedFiles) get(name string) (identity, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	id, ok := o.m[name]
	return id, ok
}

func (o *openedFiles) forget(name string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	delete(o.m, name)
}
