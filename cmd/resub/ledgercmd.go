package main

import (
	"errors"
	"fmt"
	"sort"
	"time"

	"resub/jobs"
	"resub/jobs/config"
	"resub/processor/ledger"
)

func init() {
	register(&command{name: "batches", summary: "list batches and their files from the ledger", run: runBatches})
	register(&command{name: "cards", summary: "one card's history, or counts of cards by state", run: runCards})
	register(&command{name: "overdue", summary: "what partners owe us past their deadlines", run: runOverdue})
	register(&command{name: "reprocess", summary: "run a quarantined file or failed batch again (file:N or batch:N)", run: runReprocess})
}

func openLedger(e *env, path string) (*config.Config, *ledger.DB, error) {
	if path == "" {
		return nil, nil, usagef("--config FILE is required")
	}
	cfg, err := config.Load(path)
	if err != nil {
		return nil, nil, err
	}
	db, err := jobs.OpenLedger(e.ctx, cfg)
	return cfg, db, err
}

func runBatches(e *env, args []string) error {
	fs := e.newFlags("batches", "batches --config FILE [--status S] [--limit N]")
	path := fs.String("config", "", "configuration file")
	status := fs.String("status", "", "only batches (open, done, failed) or files (quarantined, …) of this status")
	limit := fs.Int("limit", 50, "at most this many rows")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	_, db, err := openLedger(e, *path)
	if err != nil {
		return err
	}
	defer db.Close()
	bs, err := db.Batches(e.ctx, *status, *limit)
	if err != nil {
		return err
	}
	fmt.Fprintf(e.io.out, "%-6s %-20s %-12s %-22s %-8s %8s %8s %8s  %s\n", "BATCH", "JOB", "PARTNER", "KIND", "STATUS", "RECORDS", "ACCEPTED", "REJECTED", "FILE")
	for _, b := range bs {
		file := "-"
		if b.FileID != 0 {
			if f, err := db.FileByID(e.ctx, b.FileID); err == nil {
				file = fmt.Sprintf("file:%d %s", f.ID, f.Name)
			}
		}
		fmt.Fprintf(e.io.out, "%-6d %-20s %-12s %-22s %-8s %8d %8d %8d  %s\n", b.ID, b.Job, b.Partner, b.Kind, b.Status, b.Records, b.Accepted, b.Rejected, file)
	}
	files, err := db.Files(e.ctx, "", *limit)
	if err != nil {
		return err
	}
	fmt.Fprintf(e.io.out, "\n%-6s %-4s %-12s %-12s %-50s %s\n", "FILE", "DIR", "PARTNER", "STATUS", "NAME", "REASON")
	for _, f := range files {
		if *status != "" && f.Status != *status {
			continue
		}
		fmt.Fprintf(e.io.out, "%-6d %-4s %-12s %-12s %-50s %s\n", f.ID, f.Direction, f.Partner, f.Status, f.Name, f.Reason)
	}
	return nil
}

func runCards(e *env, args []string) error {
	fs := e.newFlags("cards", "cards --config FILE [ICCID]")
	path := fs.String("config", "", "configuration file")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	_, db, err := openLedger(e, *path)
	if err != nil {
		return err
	}
	defer db.Close()
	if fs.NArg() == 0 {
		counts, err := db.CountByState(e.ctx)
		if err != nil {
			return err
		}
		states := make([]string, 0, len(counts))
		total := 0
		for s, n := range counts {
			states = append(states, s)
			total += n
		}
		sort.Strings(states)
		for _, s := range states {
			fmt.Fprintf(e.io.out, "%-14s %d\n", s, counts[s])
		}
		fmt.Fprintf(e.io.out, "%-14s %d\n", "total", total)
		return nil
	}
	iccid := fs.Arg(0)
	c, err := db.Card(e.ctx, iccid)
	if errors.Is(err, ledger.ErrNotFound) {
		return usagef("no card %s in the ledger", iccid)
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(e.io.out, "iccid %s\nimsi %s\nmsisdn %s\nstate %s\nprofile %s\nowner %s\n", c.ICCID, c.IMSI, c.MSISDN, c.State, c.Profile, c.Owner)
	if c.NewIMSI != "" || c.Recipient != "" {
		fmt.Fprintf(e.io.out, "new imsi %s\nrecipient %s\ncut-over %s\nattempts %d\n", c.NewIMSI, c.Recipient, c.Cutover, c.Attempts)
	}
	if c.ListLength > 0 {
		fmt.Fprintf(e.io.out, "key index %d of %d\n", c.KeyIndex, c.ListLength)
	}
	h, err := db.History(e.ctx, iccid)
	if err != nil {
		return err
	}
	fmt.Fprintln(e.io.out, "history:")
	for _, ev := range h {
		fmt.Fprintf(e.io.out, "  %s  %-12s -> %-12s %s %s\n", ev.At.Format(time.RFC3339), ev.From, ev.To, ev.Reason, ev.Ref)
	}
	return nil
}

func runOverdue(e *env, args []string) error {
	fs := e.newFlags("overdue", "overdue --config FILE")
	path := fs.String("config", "", "configuration file")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	cfg, db, err := openLedger(e, *path)
	if err != nil {
		return err
	}
	defer db.Close()
	items, err := jobs.Overdue(e.ctx, cfg, db, time.Now())
	if err != nil {
		return err
	}
	if len(items) == 0 {
		fmt.Fprintln(e.io.out, "nothing overdue")
		return nil
	}
	fmt.Fprintf(e.io.out, "%-14s %-14s %8s  %-20s %s\n", "PARTNER", "OWES", "COUNT", "OLDEST", "DEADLINE")
	for _, it := range items {
		fmt.Fprintf(e.io.out, "%-14s %-14s %8d  %-20s %s\n", it.Partner, it.What, it.Count, it.Oldest.Format("2006-01-02 15:04"), it.Deadline)
	}
	return nil
}

func runReprocess(e *env, args []string) error {
	fs := e.newFlags("reprocess", "reprocess --config FILE file:N|batch:N")
	path := fs.String("config", "", "configuration file")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usagef("reprocess: name one file:N or batch:N")
	}
	rt, err := openRuntime(e, *path)
	if err != nil {
		return err
	}
	defer rt.Close()
	sum, err := rt.Reprocess(e.ctx, fs.Arg(0))
	if sum != nil {
		fmt.Fprintln(e.io.out, sum.String())
	}
	return err
}
