package main

import "fmt"

func init() {
	register(&command{name: "keys", summary: "re-wrap the ledger's secrets under a new master key (keys rotate)", run: runKeys})
}

func runKeys(e *env, args []string) error {
	fs := e.newFlags("keys", "keys rotate --config FILE\n\n"+
		"Put the new key in master_key and the old one under master_key.previous, then run this;\n"+
		"it re-wraps every secret not yet under the new key (safe to rerun after a crash).")
	path := fs.String("config", "", "configuration file")
	if len(args) == 0 {
		fs.Usage()
		return usagef("keys: missing subcommand (rotate)")
	}
	if args[0] == "--help" || args[0] == "-h" {
		fs.Usage()
		return nil
	}
	if args[0] != "rotate" {
		return usagef("keys: unknown subcommand %q (rotate)", args[0])
	}
	if err := parseFlags(fs, args[1:]); err != nil {
		return err
	}
	rt, err := openRuntime(e, *path)
	if err != nil {
		return err
	}
	defer rt.Close()
	n, kept, err := rt.RotateKeys(e.ctx)
	fmt.Fprintf(e.io.out, "re-wrapped %d secrets under master key %s; %d already were\n", n, rt.Cfg.MasterKey.ID, kept)
	return err
}
