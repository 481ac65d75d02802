package config

import (
	"fmt"
	"io/fs"
	"os/user"
	"strconv"
	"time"

	"go.yaml.in/yaml/v3"
)

// The defaults of the bounds on drops and on our quarantine.
const (
	// DefaultStable is the pickup wait of a drop with neither stable nor
	// marker: a file is taken once unchanged for this long.
	DefaultStable = 10 * time.Second
	// DefaultDirMode and DefaultFileMode are a local drop's permissions:
	// nobody but us (and the group of the files, when one is set).
	DefaultDirMode  FileMode = 0o700
	DefaultFileMode FileMode = 0o640
	// DefaultQuarantineMaxFiles bounds our copies of refused inputs.
	DefaultQuarantineMaxFiles = 1000
)

// DefaultMaxCiphertext is the default bound on an input's size on the
// drop: the plaintext bound plus the expansion of ASCII armor (4/3 and
// line ends) and the packets' overhead.
func DefaultMaxCiphertext(maxFileBytes int64) int64 {
	return maxFileBytes + maxFileBytes/2 + 1<<20
}

// FileMode is a permission written in octal, e.g. "0750".
type FileMode uint32

// UnmarshalYAML reads "0750", "750" or "0o750".
func (m *FileMode) UnmarshalYAML(n *yaml.Node) error {
	var s string
	if err := n.Decode(&s); err != nil {
		return err
	}
	t := s
	if len(t) > 2 && (t[:2] == "0o" || t[:2] == "0O") {
		t = t[2:]
	}
	v, err := strconv.ParseUint(t, 8, 32)
	if err != nil || v > 0o777 || v == 0 {
		return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: %q is not a permission in octal (e.g. 0750)", n.Line, s)}}
	}
	*m = FileMode(v)
	return nil
}

// MarshalYAML writes the mode back in octal.
func (m FileMode) MarshalYAML() (any, error) { return fmt.Sprintf("%#o", uint32(m)), nil }

// Perm is the mode as fs.FileMode.
func (m FileMode) Perm() fs.FileMode { return fs.FileMode(m) & fs.ModePerm }

// GroupID resolves a local drop's group (a name or a number); 0 when
// none is set.
func (l *Local) GroupID() (int, error) {
	if l.Group == "" {
		return 0, nil
	}
	g, err := user.LookupGroup(l.Group)
	if err != nil {
		if g, err = user.LookupGroupId(l.Group); err != nil {
			return 0, fmt.Errorf("no group %q on this host", l.Group)
		}
	}
	id, err := strconv.Atoi(g.Gid)
	if err != nil {
		return 0, fmt.Errorf("group %q has no numeric ID", l.Group)
	}
	return id, nil
}

// applyBoundDefaults fills in the bounds so that `config check --print`
// shows what is in force.
func (c *Config) applyBoundDefaults() {
	if c.Limits.MaxCiphertextBytes == 0 && c.Limits.MaxFileBytes > 0 {
		c.Limits.MaxCiphertextBytes = DefaultMaxCiphertext(c.Limits.MaxFileBytes)
	}
	if c.Limits.QuarantineMaxFiles == 0 {
		c.Limits.QuarantineMaxFiles = DefaultQuarantineMaxFiles
	}
	if c.Limits.QuarantineMaxBytes == 0 {
		c.Limits.QuarantineMaxBytes = 2 * c.Limits.MaxCiphertextBytes
	}
	for _, p := range c.Partners {
		if p == nil {
			continue
		}
		if p.Drop.Stable == 0 && p.Drop.Marker == "" {
			p.Drop.Stable = Duration(DefaultStable)
		}
		if l := p.Drop.Local; l != nil {
			if l.DirMode == 0 {
				l.DirMode = DefaultDirMode
			}
			if l.FileMode == 0 {
				l.FileMode = DefaultFileMode
			}
		}
	}
}

// validateBounds checks the bounds and the local drops' permissions.
func (c *Config) validateBounds(ps *problems) {
	l := c.Limits
	if l.MaxCiphertextBytes < 0 {
		ps.add("limits.max_ciphertext_bytes", "must not be negative")
	}
	if l.QuarantineMaxFiles < 1 {
		ps.add("limits.quarantine_max_files", "must be at least 1")
	}
	if l.QuarantineMaxBytes < l.MaxCiphertextBytes {
		ps.add("limits.quarantine_max_bytes", "%d is less than limits.max_ciphertext_bytes (%d): a refused input of the largest size could not be kept",
			l.QuarantineMaxBytes, l.MaxCiphertextBytes)
	}
	for name, p := range c.Partners {
		if p == nil || p.Drop.Local == nil {
			continue
		}
		lp := "partners." + name + ".drop.local"
		d := p.Drop.Local
		switch {
		case d.DirMode&0o007 != 0:
			ps.add(lp+".dir_mode", "%#o gives others access: at most 0770", uint32(d.DirMode))
		case d.DirMode&0o700 != 0o700:
			ps.add(lp+".dir_mode", "%#o does not give us rwx (0700)", uint32(d.DirMode))
		}
		switch {
		case d.FileMode&0o007 != 0:
			ps.add(lp+".file_mode", "%#o gives others access: at most 0660", uint32(d.FileMode))
		case d.FileMode&0o600 != 0o600:
			ps.add(lp+".file_mode", "%#o does not let us read and write (0600)", uint32(d.FileMode))
		case d.FileMode&0o111 != 0:
			ps.add(lp+".file_mode", "%#o makes deliveries executable", uint32(d.FileMode))
		}
		if _, err := d.GroupID(); err != nil {
			ps.add(lp+".group", "%v", err)
		}
	}
}
