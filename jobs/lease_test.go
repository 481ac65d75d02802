package jobs

import (
	"os"
	"os/exec"
	"strconv"
	"testing"
)

func TestDeadLocalOwner(t *testing.T) {
	host, err := os.Hostname()
	if err != nil {
		t.Skip(err)
	}
	// A process that has exited (and was reaped): its pid is free.
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	gone := cmd.Process.Pid
	for _, c := range []struct {
		name, owner string
		want        bool
	}{
		{"a process of ours that is gone", host + ":" + strconv.Itoa(gone), true},
		{"this process", host + ":" + strconv.Itoa(os.Getpid()), false},
		{"our parent, alive", host + ":" + strconv.Itoa(os.Getppid()), false},
		{"another host", "elsewhere.invalid:" + strconv.Itoa(gone), false},
		{"not host:pid", "demo", false},
		{"no number", host + ":x", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := deadLocalOwner(c.owner); got != c.want {
				t.Errorf("deadLocalOwner(%q) = %v, want %v", c.owner, got, c.want)
			}
		})
	}
}
