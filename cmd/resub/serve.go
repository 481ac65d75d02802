package main

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"resub/jobs/config"
	"resub/jobs/status"
	"resub/processor/ledger"
)

func init() {
	register(&command{name: "serve", summary: "serve the read-only status page (no jobs run)", run: runServe})
}

func runServe(e *env, args []string) error {
	fs := e.newFlags("serve", "serve --config FILE --http ADDR")
	path := fs.String("config", "", "configuration file")
	addr := fs.String("http", "127.0.0.1:8080", "serve the status page on this address (loopback unless http.password or http.tls is configured)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("serve: unexpected argument %q", fs.Arg(0))
	}
	cfg, db, err := openLedger(e, *path)
	if err != nil {
		return err
	}
	defer db.Close()
	st, err := startStatus(e, cfg, db, *addr, nil)
	if err != nil {
		return err
	}
	<-e.ctx.Done()
	return stopStatus(e, st)
}

// startStatus starts the status page on addr; extra handlers (the
// daemon's /metrics) share its listener.
func startStatus(e *env, cfg *config.Config, db *ledger.DB, addr string, extra map[string]http.Handler) (*status.Server, error) {
	st, err := status.New(status.Options{Config: cfg, Ledger: db, Addr: addr, Extra: extra, Log: e.log})
	if err != nil {
		return nil, err
	}
	if err := st.Start(e.ctx); err != nil {
		return nil, err
	}
	fmt.Fprintf(e.io.out, "status page: %s\n", st.URL())
	return st, nil
}

func stopStatus(e *env, st *status.Server) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := st.Stop(ctx)
	e.log.Info("status page stopped")
	return err
}
