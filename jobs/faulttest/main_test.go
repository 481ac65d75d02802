package faulttest

import (
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

var bin struct {
	once sync.Once
	dir  string
	path string
	err  error
	out  []byte
}

func TestMain(m *testing.M) {
	code := m.Run()
	if bin.dir != "" {
		os.RemoveAll(bin.dir)
	}
	os.Exit(code)
}

// resubBinary builds cmd/resub with failpoints once per test binary.
func resubBinary(t *testing.T) string {
	t.Helper()
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command to build the failpoints binary")
	}
	bin.once.Do(func() {
		bin.dir, bin.err = os.MkdirTemp("", "resub-faulttest-")
		if bin.err != nil {
			return
		}
		bin.path = filepath.Join(bin.dir, "resub")
		cmd := exec.Command(gobin, "build", "-tags", "failpoints", "-o", bin.path, "resub/cmd/resub")
		bin.out, bin.err = cmd.CombinedOutput()
	})
	if bin.err != nil {
		t.Fatalf("go build -tags failpoints: %v\n%s", bin.err, bin.out)
	}
	return bin.path
}
