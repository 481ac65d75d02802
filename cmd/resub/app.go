package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sort"
	"strings"

	"golang.org/x/term"
)

// stdio is the process's standard streams, injected so tests can run the
// CLI in-process.
type stdio struct {
	in  io.Reader
	out io.Writer
	err io.Writer
}

// env is what every subcommand receives.
type env struct {
	ctx context.Context
	io  stdio
	log *slog.Logger
}

// command is one subcommand. run receives the arguments after its name.
type command struct {
	name    string
	summary string
	run     func(e *env, args []string) error
}

// commands is filled by the init functions of the files in this package,
// one file per subcommand.
var commands = map[string]*command{}

func register(c *command) {
	if _, dup := commands[c.name]; dup {
		panic("duplicate command " + c.name)
	}
	commands[c.name] = c
}

// run parses the global flags, picks the subcommand and returns the exit code.
func run(ctx context.Context, args []string, sio stdio) int {
	global := flag.NewFlagSet("resub", flag.ContinueOnError)
	global.SetOutput(sio.err)
	logLevel := global.String("log-level", "info", "log level: debug, info, warn, error")
	logFormat := global.String("log-format", "auto", "log format: auto (text on a terminal, JSON otherwise), text, json")
	global.Usage = func() { printUsage(sio.err, global) }
	if err := global.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	rest := global.Args()
	if len(rest) == 0 {
		printUsage(sio.err, global)
		return exitUsage
	}
	if rest[0] == "help" {
		if len(rest) > 1 {
			if c, ok := commands[rest[1]]; ok {
				return report(sio, nil, c.run(&env{ctx: ctx, io: sio, log: slog.New(slog.DiscardHandler)}, []string{"--help"}))
			}
		}
		printUsage(sio.out, global)
		return exitOK
	}
	c, ok := commands[rest[0]]
	if !ok {
		fmt.Fprintf(sio.err, "resub: unknown command %q (resub help lists them)\n", rest[0])
		return exitUsage
	}
	logger, err := newLogger(sio.err, *logLevel, *logFormat)
	if err != nil {
		fmt.Fprintf(sio.err, "resub: %v\n", err)
		return exitUsage
	}
	e := &env{ctx: ctx, io: sio, log: logger}
	return report(sio, logger, c.run(e, rest[1:]))
}

// report prints err (if any) and maps it to an exit code.
func report(sio stdio, logger *slog.Logger, err error) int {
	if err == nil || errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	code := exitCode(err)
	var silent silentError
	if !errors.As(err, &silent) {
		fmt.Fprintf(sio.err, "resub: %v\n", err)
	}
	return code
}

func printUsage(w io.Writer, global *flag.FlagSet) {
	fmt.Fprintln(w, "usage: resub [--log-level L] [--log-format F] COMMAND [ARGS]")
	fmt.Fprintln(w, "\ncommands:")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-10s %s\n", n, commands[n].summary)
	}
	fmt.Fprintln(w, "\nglobal flags:")
	global.SetOutput(w)
	global.PrintDefaults()
	fmt.Fprintln(w, "\nexit codes: 0 done, 1 file refused, 2 usage or configuration error, 3 transient failure (retry)")
	fmt.Fprintln(w, "run 'resub COMMAND --help' for the flags of a command")
}

// newLogger builds the process logger: text on a terminal, JSON otherwise.
func newLogger(w io.Writer, level, format string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, usagef("--log-level: %q is not one of debug, info, warn, error", level)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch strings.ToLower(format) {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	case "auto", "":
		if f, ok := w.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
			return slog.New(slog.NewTextHandler(w, opts)), nil
		}
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, usagef("--log-format: %q is not one of auto, text, json", format)
}

// newFlags returns a flag set for a subcommand whose errors and help go to
// the command's stderr and come back as errors (never os.Exit).
func (e *env) newFlags(name, usage string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(e.io.err)
	fs.Usage = func() {
		fmt.Fprintf(e.io.err, "usage: resub %s\n", usage)
		fs.PrintDefaults()
	}
	return fs
}

// parseFlags parses args, turning flag errors into usage errors.
func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return silentError{usageError{err}}
	}
	return nil
}

// multiFlag collects a repeatable string flag.
type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }
