package faulttest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"resub/samples/demo"
)

var bin struct {
	once sync.Once
	dir  string
	path string
	err  error
	out  []byte
}

// shared is one world staged at demo.AtIMSIList for every test that
// starts there: staging costs seconds (tens under the race detector), a
// restore from its snapshot almost nothing. Tests run one at a time.
var shared struct {
	once      sync.Once
	st        *demo.Stage
	base, dir string
	snap      string
	err       error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if bin.dir != "" {
		os.RemoveAll(bin.dir)
	}
	if shared.st != nil {
		shared.st.Close()
	}
	if shared.base != "" {
		os.RemoveAll(shared.base)
	}
	os.Exit(code)
}

// imsiListStage returns the shared world as staged: MNOB's imsi-list of
// crashCards cards waiting in MNOA's drop. Its folder is restored from
// the snapshot on every call; the stage stays open for the test binary.
func imsiListStage(t *testing.T) *demo.Stage {
	t.Helper()
	run := stageRunner(t)
	shared.once.Do(func() {
		shared.base, shared.err = os.MkdirTemp("", "resub-faulttest-world-")
		if shared.err != nil {
			return
		}
		shared.dir = filepath.Join(shared.base, "world")
		shared.snap = filepath.Join(shared.base, "snapshot")
		shared.st, shared.err = demo.NewStage(context.Background(), demo.StageOptions{Dir: shared.dir, Cards: crashCards, Until: demo.AtIMSIList, Run: run})
		if shared.err != nil {
			return
		}
		shared.err = copyTree(shared.dir, shared.snap)
	})
	if shared.err != nil {
		t.Fatalf("staging: %v", shared.err)
	}
	if err := restoreTree(shared.snap, shared.dir); err != nil {
		t.Fatal(err)
	}
	// Other stages put their own secrets under the same names.
	for _, kv := range shared.st.Env() {
		k, v, _ := strings.Cut(kv, "=")
		os.Setenv(k, v)
	}
	return shared.st
}

// stageRunner runs a staged party's job in the failpoints binary (with
// no failpoint armed): the stage's steps then run at full speed even
// under the race detector.
func stageRunner(t *testing.T) func(ctx context.Context, config, job string) error {
	resub := resubBinary(t)
	return func(ctx context.Context, config, job string) error {
		cmd := exec.CommandContext(ctx, resub, "run", "--once", "--job", job, "--config", config)
		out, err := cmd.CombinedOutput()
		if err != nil {
			return fmt.Errorf("%v\n%s", err, out)
		}
		return nil
	}
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
