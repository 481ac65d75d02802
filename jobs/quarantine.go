package jobs

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"resub/jobs/config"
)

// maxCiphertext is limits.max_ciphertext_bytes, or its default where a
// configuration was not loaded through config.Load.
func (r *Runtime) maxCiphertext() int64 {
	l := r.Cfg.Limits
	switch {
	case l.MaxCiphertextBytes > 0:
		return l.MaxCiphertextBytes
	case l.MaxFileBytes > 0:
		return config.DefaultMaxCiphertext(l.MaxFileBytes)
	}
	return config.DefaultMaxCiphertext(4 << 30)
}

// quarantineCopy is one of our copies of a refused input: FILEID--NAME.
type quarantineCopy struct {
	name  string
	size  int64
	mtime time.Time
}

// quarantineName is our copy's name for a refused input.
func quarantineName(fileID int64, name string) string {
	return fmt.Sprintf("%d--%s", fileID, name)
}

// keepQuarantined copies a refused input into DATA_DIR/quarantine, within
// limits.quarantine_max_files and limits.quarantine_max_bytes: the oldest
// copies are pruned first, each with a log line (the input itself stays
// in the drop's quarantine folder, and the ledger keeps its record). A
// copy larger than the whole bound is not kept, and that is logged.
func (r *Runtime) keepQuarantined(local string, fileID int64, name string) error {
	r.quarantineMu.Lock()
	defer r.quarantineMu.Unlock()
	dir := filepath.Join(r.Cfg.DataDir, "quarantine")
	keep := quarantineName(fileID, name)
	st, err := os.Stat(local)
	if err != nil {
		return err
	}
	maxFiles, maxBytes := r.Cfg.Limits.QuarantineMaxFiles, r.Cfg.Limits.QuarantineMaxBytes
	if maxFiles <= 0 {
		maxFiles = config.DefaultQuarantineMaxFiles
	}
	if maxBytes <= 0 {
		maxBytes = 2 * r.maxCiphertext()
	}
	if st.Size() > maxBytes {
		r.Log.Error("refused input not kept in the local quarantine: larger than limits.quarantine_max_bytes",
			"file", name, "file_id", fileID, "size", st.Size(), "limit", maxBytes)
		return nil
	}
	copies, err := quarantineCopies(dir)
	if err != nil {
		return err
	}
	files, bytes := 0, int64(0)
	for _, c := range copies {
		if c.name == keep {
			continue // replaced below
		}
		files++
		bytes += c.size
	}
	for _, c := range copies {
		if files+1 <= maxFiles && bytes+st.Size() <= maxBytes {
			break
		}
		if c.name == keep {
			continue
		}
		if err := os.Remove(filepath.Join(dir, c.name)); err != nil {
			return err
		}
		files--
		bytes -= c.size
		r.Log.Warn("local quarantine full: oldest copy pruned (the input stays in the drop's quarantine folder)",
			"copy", c.name, "size", c.size, "kept_since", c.mtime.UTC().Format(time.RFC3339),
			"max_files", maxFiles, "max_bytes", maxBytes)
	}
	return copyFile(local, filepath.Join(dir, keep))
}

// quarantineCopies lists our copies, oldest first. Folders (the local
// quarantine of partners without write access) are not copies.
func quarantineCopies(dir string) ([]quarantineCopy, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var out []quarantineCopy
	for _, e := range entries {
		id, _, ok := strings.Cut(e.Name(), "--")
		if !e.Type().IsRegular() || !ok {
			continue
		}
		if _, err := strconv.ParseInt(id, 10, 64); err != nil {
			continue
		}
		info, err := e.Info()
		if err != nil {
			continue
		}
		out = append(out, quarantineCopy{name: e.Name(), size: info.Size(), mtime: info.ModTime()})
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].mtime.Equal(out[j].mtime) {
			return out[i].mtime.Before(out[j].mtime)
		}
		return out[i].name < out[j].name
	})
	return out, nil
}
