package main

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"resub/jobs"
	"resub/jobs/config"
	"resub/processor/ledger"
	"resub/processor/ledger/postgres"
)

func init() {
	register(&command{name: "ledger", summary: "move a ledger to another database (ledger copy --from LEDGER --to LEDGER)", run: runLedger})
}

func runLedger(e *env, args []string) error {
	fs := e.newFlags("ledger", "ledger copy --from LEDGER --to LEDGER [--from-password REF] [--to-password REF]\n\n"+
		"Copies every table of one ledger into an empty one, each sqlite:PATH or postgres://USER@HOST:PORT/DB?sslmode=…\n"+
		"(passwords by reference, env:NAME or file:PATH, or from PGPASSFILE / ~/.pgpass). Ids and sequences are kept,\n"+
		"secrets travel sealed; both ledgers must be at this resub's schema version. Row counts and a digest of every\n"+
		"table are checked on the target before it commits. Stop the parties first; point their ledger: at the target after.")
	from := fs.String("from", "", "the ledger to copy")
	to := fs.String("to", "", "the empty ledger to copy into")
	fromPw := fs.String("from-password", "", "the source's PostgreSQL password, by reference (env:NAME or file:PATH)")
	toPw := fs.String("to-password", "", "the target's PostgreSQL password, by reference (env:NAME or file:PATH)")
	if len(args) == 0 {
		fs.Usage()
		return usagef("ledger: missing subcommand (copy)")
	}
	if args[0] == "--help" || args[0] == "-h" {
		fs.Usage()
		return nil
	}
	if args[0] != "copy" {
		return usagef("ledger: unknown subcommand %q (copy)", args[0])
	}
	if err := parseFlags(fs, args[1:]); err != nil {
		return err
	}
	if *from == "" || *to == "" {
		return usagef("ledger copy: --from and --to are required")
	}
	if *from == *to {
		return usagef("ledger copy: --from and --to name the same ledger")
	}
	for _, f := range []struct{ flag, spec, pw string }{{"from", *from, *fromPw}, {"to", *to, *toPw}} {
		if postgres.IsURL(f.spec) {
			if err := postgres.CheckURL(f.spec); err != nil {
				return &jobs.ConfigError{Path: "--" + f.flag, Err: err}
			}
		} else if !strings.HasPrefix(f.spec, "sqlite:") {
			return usagef("ledger copy: --%s is neither sqlite:PATH nor a postgres:// URL", f.flag)
		}
		if f.pw != "" && !strings.HasPrefix(f.pw, "env:") && !strings.HasPrefix(f.pw, "file:") {
			return usagef("ledger copy: --%s-password takes a reference (env:NAME or file:PATH), never the password", f.flag)
		}
	}
	if path, ok := strings.CutPrefix(*from, "sqlite:"); ok {
		if _, err := os.Stat(path); err != nil {
			return &jobs.ConfigError{Path: "--from", Err: fmt.Errorf("no ledger at %s", path)}
		}
	}
	src, err := jobs.OpenLedgerURL(e.ctx, nil, *from, config.SecretRef(*fromPw), ledger.AsIs())
	if err != nil {
		return err
	}
	defer src.Close()
	dst, err := jobs.OpenLedgerURL(e.ctx, nil, *to, config.SecretRef(*toPw), ledger.AsIs())
	if err != nil {
		return err
	}
	defer dst.Close()
	// An empty target gets this resub's schema; one that has a schema
	// keeps it (Copy refuses another version).
	if v, err := dst.Version(e.ctx); err != nil || v == 0 {
		if err := dst.Migrate(e.ctx, ledger.SchemaVersion()); err != nil {
			return err
		}
	}
	rep, err := ledger.Copy(e.ctx, src, dst)
	var refusal *ledger.CopyRefusal
	if errors.As(err, &refusal) {
		return &jobs.ConfigError{Path: "--to", Err: err}
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(e.io.out, "%-20s %10s  %s\n", "TABLE", "ROWS", "DIGEST")
	for _, t := range rep.Tables {
		fmt.Fprintf(e.io.out, "%-20s %10d  %s\n", t.Table, t.Rows, t.Digest)
	}
	fmt.Fprintf(e.io.out, "copied %d rows in %d tables at schema version %d; counts and digests verified on the target\n", rep.Rows(), len(rep.Tables), rep.Version)
	e.log.Info("ledger copied", "tables", len(rep.Tables), "rows", rep.Rows(), "schema", rep.Version)
	return nil
}
