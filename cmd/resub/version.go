package main

import (
	"fmt"
	"runtime/debug"
)

func init() {
	register(&command{name: "version", summary: "print the version of this build", run: runVersion})
}

func runVersion(e *env, args []string) error {
	fs := e.newFlags("version", "version")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	v := "(devel)"
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		v = bi.Main.Version
	}
	fmt.Fprintf(e.io.out, "resub %s\n", v)
	return nil
}
