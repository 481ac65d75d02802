package main

import (
	"fmt"
	"time"

	"resub/jobs/config"
)

func init() {
	register(&command{name: "config", summary: "check a configuration file (config check --config FILE)", run: runConfig})
}

func runConfig(e *env, args []string) error {
	fs := e.newFlags("config", "config check --config FILE [--print]")
	path := fs.String("config", "", "configuration file")
	show := fs.Bool("print", false, "print the configuration with secrets redacted")
	if len(args) == 0 {
		fs.Usage()
		return usagef("config: missing subcommand (check)")
	}
	if args[0] == "--help" || args[0] == "-h" || args[0] == "help" {
		fs.Usage()
		return nil
	}
	if args[0] != "check" {
		return usagef("config: unknown subcommand %q (check)", args[0])
	}
	if err := parseFlags(fs, args[1:]); err != nil {
		return err
	}
	if *path == "" {
		return usagef("config check: --config FILE is required")
	}
	cfg, err := config.Load(*path)
	if err != nil {
		return err
	}
	warnings, err := cfg.CheckKeys(time.Now())
	for _, w := range warnings {
		fmt.Fprintf(e.io.out, "%s: warning: %s\n", *path, w)
	}
	if err != nil {
		return err
	}
	if *show {
		fmt.Fprint(e.io.out, cfg.Redacted())
	}
	fmt.Fprintf(e.io.out, "%s: configuration valid (%d partners, %d profiles, %d jobs)\n", *path, len(cfg.Partners), len(cfg.Profiles), len(cfg.Jobs))
	return nil
}
