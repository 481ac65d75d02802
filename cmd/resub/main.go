// Command resub is the batch file-exchange processor of an M2M remote
// subscription change (3GPP TR 33.812 §5.4, alternatives 3a and 3b).
//
// main stays thin: it turns signals into context cancellation, runs the
// selected subcommand and maps the resulting error to the documented exit
// code in exactly one place (exitCode).
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], stdio{in: os.Stdin, out: os.Stdout, err: os.Stderr})
	stop()
	os.Exit(code)
}
