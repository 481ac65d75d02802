package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"resub/jobs/drop"
)

// runCLI runs the CLI in-process and returns its exit code and output.
func runCLI(t testing.TB, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(context.Background(), args, stdio{in: strings.NewReader(""), out: &out, err: &errb})
	return code, out.String(), errb.String()
}

func TestUsageAndUnknownCommand(t *testing.T) {
	if code, _, _ := runCLI(t); code != exitUsage {
		t.Errorf("no command: exit %d, want %d", code, exitUsage)
	}
	if code, _, errs := runCLI(t, "no-such-command"); code != exitUsage || !strings.Contains(errs, "unknown command") {
		t.Errorf("unknown command: exit %d, stderr %q", code, errs)
	}
	if code, out, _ := runCLI(t, "help"); code != exitOK || !strings.Contains(out, "version") {
		t.Errorf("help: exit %d, out %q", code, out)
	}
	if code, _, _ := runCLI(t, "--log-level", "loud", "version"); code != exitUsage {
		t.Errorf("bad log level: exit %d", code)
	}
}

func TestEveryCommandHasHelp(t *testing.T) {
	for name := range commands {
		t.Run(name, func(t *testing.T) {
			code, _, errs := runCLI(t, name, "--help")
			if code != exitOK {
				t.Errorf("%s --help: exit %d", name, code)
			}
			if !strings.Contains(errs, "usage: resub "+name) {
				t.Errorf("%s --help does not print its usage: %q", name, errs)
			}
		})
	}
}

type tempErr struct{}

func (tempErr) Error() string   { return "peer unreachable" }
func (tempErr) Temporary() bool { return true }

type refErr struct{}

func (refErr) Error() string { return "bad signature" }
func (refErr) Refused() bool { return true }

func TestExitCodeMapping(t *testing.T) {
	cases := []struct {
		name string
		err  error
		want int
	}{
		{"nil", nil, exitOK},
		{"usage", usagef("bad flag"), exitUsage},
		{"refused", fmt.Errorf("file x: %w", refErr{}), exitRefused},
		{"transient", fmt.Errorf("dial: %w", tempErr{}), exitTransient},
		{"canceled", context.Canceled, exitTransient},
		{"refused wrapped in usage", usageError{refErr{}}, exitUsage},
		{"plain", errors.New("boom"), exitTransient},
		// A host key of another type than the pinned one is a changed key.
		{"host key", fmt.Errorf("job imsi-list: %w", &drop.HostKeyError{Host: "h:22", Want: nil}), exitUsage},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := exitCode(c.err); got != c.want {
				t.Errorf("exitCode(%v) = %d, want %d", c.err, got, c.want)
			}
		})
	}
}
