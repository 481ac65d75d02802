package jobs

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// TestMakeDropDir: a local drop's folder is created with the configured
// mode whatever the umask, and given the group; a folder that exists
// (perhaps another account's) is left as it is.
func TestMakeDropDir(t *testing.T) {
	old := syscall.Umask(0o077)
	defer syscall.Umask(old)
	gid := os.Getgid()
	if gs, _ := os.Getgroups(); len(gs) > 0 {
		gid = gs[len(gs)-1]
	}
	dir := filepath.Join(t.TempDir(), "drops", "smsc", "outbox")
	if err := makeDropDir(dir, 0o750, gid); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o750 {
		t.Errorf("mode %v, want 0750", st.Mode().Perm())
	}
	if g := int(st.Sys().(*syscall.Stat_t).Gid); gid > 0 && g != gid {
		t.Errorf("group %d, want %d", g, gid)
	}
	existing := t.TempDir()
	os.Chmod(existing, 0o711)
	if err := makeDropDir(existing, 0o700, 0); err != nil {
		t.Fatal(err)
	}
	if st, _ := os.Stat(existing); st.Mode().Perm() != 0o711 {
		t.Errorf("an existing folder's mode changed to %v", st.Mode().Perm())
	}
}
