package jobs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"resub/formats/native"
	"resub/jobs/config"
	"resub/jobs/drop"
	"resub/jobs/metrics"
	"resub/processor"
	"resub/processor/failpoint"
	"resub/processor/ledger"
)

// Runtime is one party at work: its configuration, ledger, processor
// party and partners' drops.
type Runtime struct {
	Cfg     *config.Config
	Party   *processor.Party
	Ledger  *ledger.DB
	Log     *slog.Logger
	Metrics *metrics.Metrics
	// Progress, when set, is told how far a long manual run has come.
	Progress func(job string, done, total int)

	now func() time.Time
	// mu guards the maps below and active: the daemon runs different
	// jobs at the same time.
	mu       sync.Mutex
	active   int
	drops    map[string]drop.Drop // per partner: the folder or connection
	wrapped  map[string]drop.Drop // per partner and job: logged, retried
	pickers  map[string]*drop.Picker
	sessions map[string]*drop.Sessions
	// stopGrace is how long a cancelled run may take to return before
	// it is abandoned (its lease released, the run recorded as failed).
	stopGrace time.Duration
	// quarantineMu serialises the pruning of DATA_DIR/quarantine.
	quarantineMu sync.Mutex
}

// Options tune a runtime.
type Options struct {
	Log     *slog.Logger
	Metrics *metrics.Metrics
	Now     func() time.Time
	// StopGrace is how long a run may take to return once its context
	// is cancelled (SIGTERM) before RunJob gives it up, releases its
	// lease and returns; default 10s.
	StopGrace time.Duration
	// Ledger are further options of the ledger's opening (a statement
	// observer beside the slow-statement log, …).
	Ledger []ledger.Option
}

// Open makes a runtime from a validated configuration.
func Open(ctx context.Context, cfg *config.Config, o Options) (*Runtime, error) {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.StopGrace <= 0 {
		o.StopGrace = 10 * time.Second
	}
	for _, d := range []string{cfg.DataDir, filepath.Join(cfg.DataDir, "scratch"), filepath.Join(cfg.DataDir, "quarantine"), filepath.Join(cfg.DataDir, "out")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, err
		}
	}
	if err := checkKeys(cfg, o.Now(), o.Log); err != nil {
		return nil, err
	}
	lopts := []ledger.Option{ledger.WithClock(o.Now)}
	if d := cfg.SlowStatement(); d > 0 {
		lopts = append(lopts, ledger.WithStatementObserver(SlowStatementLog(d, o.Log)))
	}
	db, err := OpenLedger(ctx, cfg, append(lopts, o.Ledger...)...)
	if err != nil {
		return nil, err
	}
	p, err := BuildParty(cfg, db)
	if err != nil {
		db.Close()
		return nil, err
	}
	p.Now, p.Log = o.Now, o.Log
	return &Runtime{Cfg: cfg, Party: p, Ledger: db, Log: o.Log, Metrics: o.Metrics, now: o.Now,
		drops: map[string]drop.Drop{}, wrapped: map[string]drop.Drop{}, pickers: map[string]*drop.Picker{}, sessions: map[string]*drop.Sessions{},
		stopGrace: o.StopGrace}, nil
}

// Close releases the drops and the ledger.
func (r *Runtime) Close() error {
	var errs []error
	for _, d := range r.drops {
		errs = append(errs, d.Close())
	}
	errs = append(errs, r.Ledger.Close())
	return errors.Join(errs...)
}

// Drop returns the partner's drop as the job uses it: its log lines and
// metrics carry the job. The folder or connection underneath is opened on
// first use and shared by the partner's jobs.
func (r *Runtime) Drop(partner, job string) (drop.Drop, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	key := partner + "\x00" + job
	if d, ok := r.wrapped[key]; ok {
		return d, nil
	}
	d, ok := r.drops[partner]
	if !ok {
		var err error
		if d, err = r.openDrop(partner); err != nil {
			return nil, err
		}
		r.drops[partner] = d
	}
	log := r.Log.With("partner", partner, "job", job)
	var meter drop.Meter
	if r.Metrics != nil {
		meter = r.Metrics.Drop(partner, job)
	}
	d = drop.Logged(drop.Retry(d, drop.RetryOptions{Log: log, Meter: meter, Base: 200 * time.Millisecond, Max: 5 * time.Second, Attempts: 4}), log, meter)
	r.wrapped[key] = d
	return d, nil
}

// openDrop opens the partner's folder or SFTP drop (r.mu held).
func (r *Runtime) openDrop(partner string) (drop.Drop, error) {
	pc := r.Cfg.Partners[partner]
	if pc == nil {
		return nil, cfgErr("partners", fmt.Errorf("no partner %q", partner))
	}
	path := "partners." + partner + ".drop"
	var d drop.Drop
	switch {
	case pc.Drop.Local != nil:
		base := r.Cfg.Abs(pc.Drop.Local.Dir)
		sub := func(v, def string) string {
			if v == "" {
				v = def
			}
			if filepath.IsAbs(v) {
				return v
			}
			return filepath.Join(base, v)
		}
		lc := pc.Drop.Local
		gid, err := lc.GroupID()
		if err != nil {
			return nil, cfgErr(path+".local.group", err)
		}
		dirMode, fileMode := lc.DirMode.Perm(), lc.FileMode.Perm()
		if dirMode == 0 {
			dirMode = config.DefaultDirMode.Perm()
		}
		o := drop.LocalOptions{Inbox: sub(pc.Drop.Inbox, "inbox"), Outbox: sub(pc.Drop.Outbox, "outbox"),
			Archive: sub(pc.Drop.Archive, "archive"), Quarantine: sub(pc.Drop.Quarantine, "quarantine"), Now: r.now,
			FileMode: fileMode, Group: gid}
		for _, dir := range []string{o.Inbox, o.Outbox, o.Archive, o.Quarantine} {
			if err := makeDropDir(dir, dirMode, gid); err != nil {
				return nil, cfgErr(path+".local", err)
			}
		}
		l, err := drop.NewLocal(o)
		if err != nil {
			return nil, cfgErr(path, err)
		}
		d = l
	case pc.Drop.SFTP != nil:
		s := pc.Drop.SFTP
		o := drop.SFTPOptions{Host: s.Host, Port: s.Port, User: s.User, KnownHosts: r.Cfg.Abs(s.KnownHosts),
			Inbox: pc.Drop.Inbox, Outbox: pc.Drop.Outbox, Archive: pc.Drop.Archive, Quarantine: pc.Drop.Quarantine,
			DialTimeout: s.Timeout.D(), IOTimeout: s.Timeout.D(), RequestTimeout: s.Timeout.D(), KeepAlive: s.Keepalive.D(), ReadOnce: s.ReadOnce, Now: r.now}
		if pc.Drop.LocalArchive {
			o.LocalArchive = filepath.Join(r.Cfg.DataDir, "archive", partner)
			o.LocalQuarantine = filepath.Join(r.Cfg.DataDir, "quarantine", partner)
			for _, dir := range []string{o.LocalArchive, o.LocalQuarantine} {
				if err := os.MkdirAll(dir, 0o700); err != nil {
					return nil, err
				}
			}
		}
		if s.PrivateKey != "" {
			key, err := os.ReadFile(r.Cfg.Abs(s.PrivateKey))
			if err != nil {
				return nil, cfgErr(path+".sftp.private_key", err)
			}
			o.PrivateKey = key
			defer clear(key)
		}
		if s.Passphrase.IsSet() {
			v, err := r.Cfg.Resolve(s.Passphrase)
			if err != nil {
				return nil, cfgErr(path+".sftp.passphrase", err)
			}
			o.Passphrase = v
			defer v.Wipe()
		}
		if s.Password.IsSet() {
			v, err := r.Cfg.Resolve(s.Password)
			if err != nil {
				return nil, cfgErr(path+".sftp.password", err)
			}
			o.Password = v
			defer v.Wipe()
		}
		if r.sessions[partner] == nil {
			r.sessions[partner] = drop.NewSessions(s.MaxSession)
		}
		o.Sessions = r.sessions[partner]
		sd, err := drop.NewSFTP(o)
		if err != nil {
			return nil, cfgErr(path+".sftp", err)
		}
		d = sd
	default:
		return nil, cfgErr(path, errors.New("no drop configured"))
	}
	return d, nil
}

// makeDropDir creates a local drop's folder with its mode and group. A
// folder that exists is left as it is: its owner may be another account.
func makeDropDir(dir string, mode os.FileMode, gid int) error {
	if _, err := os.Lstat(dir); err == nil {
		return nil
	}
	if err := os.MkdirAll(dir, mode); err != nil {
		return err
	}
	// MkdirAll is subject to the umask: the mode asked for, exactly.
	if err := os.Chmod(dir, mode); err != nil {
		return err
	}
	if gid > 0 {
		if err := os.Lchown(dir, -1, gid); err != nil {
			return fmt.Errorf("group %d for %s: %w", gid, dir, err)
		}
	}
	return nil
}

// picker returns the job's picker of the partner's inbox (one per job:
// a picker belongs to one goroutine, and jobs sharing a drop may run at
// the same time).
func (r *Runtime) picker(partner, job string) (*drop.Picker, error) {
	d, err := r.Drop(partner, job)
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	key := partner + "\x00" + job
	if p, ok := r.pickers[key]; ok {
		return p, nil
	}
	pc := r.Cfg.Partners[partner]
	o := drop.PickerOptions{Patterns: pc.Drop.Patterns, Marker: pc.Drop.Marker, Stable: pc.Drop.Stable.D(), TempSuffix: ".part", Now: r.now}
	if o.Marker == "" && o.Stable == 0 {
		o.Stable = 10 * time.Second
	}
	if o.Marker != "" {
		o.Stable = 0
	}
	p, err := drop.NewPicker(d, o)
	if err != nil {
		return nil, cfgErr("partners."+partner+".drop", err)
	}
	r.pickers[key] = p
	return p, nil
}

// idle ends a run; when no run is left, the SFTP connections are closed
// (an SFTP drop reconnects on next use), so no session stays open between
// nightly runs.
func (r *Runtime) idle() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.active--
	if r.active > 0 {
		return
	}
	for name, d := range r.drops {
		if pc := r.Cfg.Partners[name]; pc == nil || pc.Drop.SFTP == nil {
			continue // a local folder keeps its handles
		}
		if err := d.Close(); err != nil {
			r.Log.Warn("closing a drop", "partner", name, "error", err)
		}
	}
}

// Summary is what one run did.
type Summary struct {
	Job         string
	Files       int
	Quarantined int
	Skipped     int
	Records     int
	Accepted    int
	Rejected    int
	Messages    int
	PoRsIgnored int // proofs of receipt that did not verify
	Delivered   int
	Refused     []error // inputs refused (quarantined and answered)
	// SMPP is an SMPP run's own counts (a-ota-submit).
	SMPP string
}

func (s *Summary) add(res *processor.Result) {
	s.Records += res.Counts.Records
	s.Accepted += res.Counts.Accepted
	s.Rejected += res.Counts.Rejected
	s.Messages += res.Counts.Messages
	s.PoRsIgnored += res.Counts.PoRsIgnored
}

// String is the one-line summary printed at the end of a run.
func (s *Summary) String() string {
	if s.SMPP != "" {
		line := fmt.Sprintf("job %s: %s, %d files delivered", s.Job, s.SMPP, s.Delivered)
		if s.PoRsIgnored > 0 {
			line += fmt.Sprintf(", %d PoRs ignored (not verified)", s.PoRsIgnored)
		}
		return line
	}
	line := fmt.Sprintf("job %s: %d files (%d quarantined, %d already done), %d records (%d accepted, %d rejected), %d OTA messages, %d files delivered",
		s.Job, s.Files, s.Quarantined, s.Skipped, s.Records, s.Accepted, s.Rejected, s.Messages, s.Delivered)
	if s.PoRsIgnored > 0 {
		line += fmt.Sprintf(", %d PoRs ignored (not verified)", s.PoRsIgnored)
	}
	return line
}

// RefusedError says a run quarantined at least one input (exit code 1).
type RefusedError struct{ Errs []error }

func (e *RefusedError) Error() string {
	msgs := make([]string, len(e.Errs))
	for i, err := range e.Errs {
		msgs[i] = err.Error()
	}
	return strings.Join(msgs, "; ")
}
func (e *RefusedError) Refused() bool   { return true }
func (e *RefusedError) Unwrap() []error { return e.Errs }

// RunOptions tune one run.
type RunOptions struct {
	Manual bool
	DryRun bool
	Owner  string
	// Wait: an SMPP submission (a-ota-submit) listens for receipts and
	// PoRs until every submitted message is settled or Wait passes.
	Wait time.Duration
}

// Job returns the configured job of that name.
func (r *Runtime) Job(name string) (*config.Job, error) {
	for i := range r.Cfg.Jobs {
		if r.Cfg.Jobs[i].Name == name {
			return &r.Cfg.Jobs[i], nil
		}
	}
	return nil, cfgErr("jobs", fmt.Errorf("no job %q", name))
}

// Instance is this process's name among the instances sharing the
// ledger: the configured instance, or host:pid.
func (r *Runtime) Instance() string {
	if r.Cfg.Instance != "" {
		return r.Cfg.Instance
	}
	host, _ := os.Hostname()
	return host + ":" + strconv.Itoa(os.Getpid())
}

// leaseTTL is how long a job's lease lasts unless renewed.
func (r *Runtime) leaseTTL() time.Duration {
	if d := r.Cfg.LeaseTTL.D(); d > 0 {
		return d
	}
	return time.Minute
}

// RunJob runs one pass of a job under its lease. A refused input makes the
// pass end with *RefusedError after everything else was done.
func (r *Runtime) RunJob(ctx context.Context, name string, o RunOptions) (*Summary, error) {
	r.mu.Lock()
	r.active++
	r.mu.Unlock()
	defer r.idle()
	j, err := r.Job(name)
	if err != nil {
		return nil, err
	}
	if o.Owner == "" {
		o.Owner = r.Instance()
	}
	if err := r.checkRecipients(j); err != nil {
		return nil, err
	}
	if err := r.acquireLease(ctx, name, o.Owner); err != nil {
		return nil, err
	}
	defer r.Ledger.ReleaseLease(context.WithoutCancel(ctx), name, o.Owner)
	// Every transaction of the run commits only while the lease is ours;
	// the lease is renewed while the run lasts, and a run whose lease was
	// lost stops.
	outer := ctx
	ctx, stop := r.keepLease(ledger.WithFence(ctx, name, o.Owner), name, o.Owner)
	defer stop()
	if !o.Manual && r.ranThisTick(ctx, j) {
		r.Log.Info("job already ran for this schedule tick (another daemon); skipped", "job", name)
		return &Summary{Job: name}, nil
	}
	// We hold the lease: a run of this job still marked running was cut
	// short (its process died).
	if n, err := r.Ledger.AbandonRuns(ctx, name); err != nil {
		return nil, err
	} else if n > 0 {
		r.Log.Warn("an earlier run of the job was cut short; this run completes its work", "job", name, "runs", n)
	}
	runID, err := r.Ledger.StartRun(ctx, name, o.Owner, o.Manual)
	if err != nil {
		return nil, err
	}
	sum, err := r.runBounded(ctx, j.Name, func() (*Summary, error) { return r.run(ctx, j, o) })
	status := "ok"
	if err != nil {
		status = "failed"
	}
	text := ""
	if sum != nil {
		text = sum.String()
		if len(sum.Refused) > 0 && err == nil {
			status = "refused"
			err = &RefusedError{Errs: sum.Refused}
		}
	}
	if ferr := r.Ledger.FinishRun(ledger.WithoutFence(context.WithoutCancel(outer)), runID, status, text); ferr != nil && err == nil {
		err = ferr
	}
	if sum != nil {
		r.Log.Info("run finished", "job", name, "status", status, "files", sum.Files, "quarantined", sum.Quarantined,
			"records", sum.Records, "accepted", sum.Accepted, "rejected", sum.Rejected, "messages", sum.Messages, "delivered", sum.Delivered)
	}
	return sum, err
}

// runBounded runs the job (run) and waits for it; once ctx is cancelled (a
// SIGTERM, the daemon stopping) it waits stopGrace at most. A run still
// blocked then (in a system call no context reaches) is given up: the
// caller records it as failed and releases its lease, and the process,
// which is shutting down, exits without it. Everything the run committed
// is crash-safe, as after a kill.
func (r *Runtime) runBounded(ctx context.Context, job string, run func() (*Summary, error)) (*Summary, error) {
	type result struct {
		sum *Summary
		err error
	}
	done := make(chan result, 1)
	go func() {
		sum, err := run()
		done <- result{sum, err}
	}()
	select {
	case res := <-done:
		return res.sum, res.err
	case <-ctx.Done():
	}
	t := time.NewTimer(r.stopGrace)
	defer t.Stop()
	select {
	case res := <-done:
		return res.sum, res.err
	case <-t.C:
		r.Log.Error("run did not stop after cancellation; given up, its lease released", "job", job, "grace", r.stopGrace.String())
		return nil, &abandonedError{job: job, grace: r.stopGrace}
	}
}

// abandonedError is a run given up after cancellation: transient.
type abandonedError struct {
	job   string
	grace time.Duration
}

func (e *abandonedError) Error() string {
	return fmt.Sprintf("job %s did not stop within %s of being cancelled; given up", e.job, e.grace)
}
func (e *abandonedError) Temporary() bool { return true }
func (e *abandonedError) Unwrap() error   { return context.Canceled }

func (r *Runtime) partner(j *config.Job, role string) *processor.Partner {
	name := j.To[role]
	if name == "" {
		// The only partner of that kind, if there is exactly one.
		var found []string
		for n, p := range r.Cfg.Partners {
			if p.Kind == role {
				found = append(found, n)
			}
		}
		if len(found) != 1 {
			return nil
		}
		name = found[0]
	}
	return r.Party.Partners[name]
}

// step maps a file-driven job kind to its processor step.
func (r *Runtime) step(j *config.Job) (processor.FileStep, error) {
	switch j.Kind {
	case "b-switch-request":
		return &processor.SwitchRequest{Donor: r.partner(j, "donor")}, nil
	case "a-inventory":
		return &processor.InventoryImport{Profile: j.Profile}, nil
	case "a-msisdn-map":
		return processor.MSISDNImport{}, nil
	case "a-authorisation":
		return processor.Authorisation{}, nil
	case "a-imsi-list":
		return &processor.IMSIList{SMSC: r.partner(j, "smsc")}, nil
	case "a-ota-report":
		return &processor.OTAReport{}, nil
	case "b-imsi-result":
		return processor.IMSIResultIntake{}, nil
	case "b-handover":
		return &processor.HandoverIntake{HLR: r.partner(j, "hlr"), Manufacturer: r.partner(j, "manufacturer")}, nil
	case "b-key-response":
		return &processor.KeyResponseIntake{HLR: r.partner(j, "hlr")}, nil
	case "a-handover-ack":
		return &processor.HandoverAck{SMSC: r.partner(j, "smsc")}, nil
	case "m-key-release":
		return processor.KeyReleaseIntake{}, nil
	case "m-key-request":
		return processor.KeyRequestIntake{}, nil
	case "m-card-import":
		return &processor.ManufacturerImport{Holder: r.partner(j, "holder")}, nil
	}
	return nil, nil
}

// sweep maps a ledger-driven job kind to its processor step.
func (r *Runtime) sweep(j *config.Job) (processor.SweepStep, error) {
	switch j.Kind {
	case "a-handover":
		rec := r.Party.Partners[j.Partner]
		return &processor.Handover{Recipient: rec, Manufacturer: r.partner(j, "manufacturer")}, nil
	case "a-ota-deadline":
		return &processor.OTADeadline{SMSC: r.Party.Partners[j.Partner]}, nil
	case "b-key-rotation":
		return &processor.KeyRotation{SMSC: r.Party.Partners[j.Partner]}, nil
	case "erase":
		return processor.Erase{}, nil
	}
	return nil, cfgErr("jobs", fmt.Errorf("job kind %s is not runnable", j.Kind))
}

func (r *Runtime) run(ctx context.Context, j *config.Job, o RunOptions) (*Summary, error) {
	sum := &Summary{Job: j.Name}
	if j.Kind == "deadlines" {
		return sum, r.checkDeadlines(ctx, sum)
	}
	if j.Kind == "a-ota-submit" {
		return sum, r.runSubmit(ctx, j, o, sum)
	}
	// First what an earlier run of this job left undelivered.
	if !o.DryRun {
		if err := r.deliverPending(ctx, j, sum); err != nil {
			return sum, err
		}
	}
	fs, err := r.step(j)
	if err != nil {
		return sum, err
	}
	if fs == nil {
		sw, err := r.sweep(j)
		if err != nil {
			return sum, err
		}
		res, err := r.Party.RunSweep(ctx, j.Name, sw, o.DryRun)
		if err != nil {
			return sum, err
		}
		sum.add(res)
		if o.DryRun {
			return sum, nil
		}
		return sum, r.deliver(ctx, j, res.Outputs, sum)
	}
	if j.Partner == "" {
		return sum, cfgErr("jobs", fmt.Errorf("job %s needs a partner to read from", j.Name))
	}
	pk, err := r.picker(j.Partner, j.Name)
	if err != nil {
		return sum, err
	}
	files, err := pk.Ready(r.withSkipLog(ctx, j))
	if err != nil {
		return sum, err
	}
	files = forStep(files, fs)
	sort.Slice(files, func(a, b int) bool { return files[a].Name < files[b].Name })
	for i, fi := range files {
		if ctx.Err() != nil {
			break
		}
		if r.Progress != nil {
			r.Progress(j.Name, i, len(files))
		}
		if o.DryRun {
			if err := r.dryRunOne(ctx, j, fs, fi, sum); err != nil {
				return sum, err
			}
			continue
		}
		if err := r.processOne(ctx, j, fs, pk, fi, sum); err != nil {
			return sum, err
		}
	}
	if r.Progress != nil && len(files) > 0 {
		r.Progress(j.Name, len(files), len(files))
	}
	return sum, nil
}

// checkDeadlines logs, as errors, what partners owe us past their
// deadlines (the same list as `resub overdue`).
func (r *Runtime) checkDeadlines(ctx context.Context, sum *Summary) error {
	items, err := Overdue(ctx, r.Cfg, r.Ledger, r.now())
	if err != nil {
		return err
	}
	for _, it := range items {
		sum.Records += it.Count
		r.Log.Error("deadline missed", "partner", it.Partner, "owes", it.What, "count", it.Count,
			"oldest", it.Oldest, "deadline", it.Deadline.String())
	}
	return nil
}

// forStep keeps the files a step reads: a native name must carry the
// step's type (several jobs may read one drop, each its own type); other
// names only go to steps that read foreign layouts (vendor files).
func forStep(files []drop.FileInfo, fs processor.FileStep) []drop.FileInfo {
	_, raw := fs.(processor.RawStep)
	out := files[:0:0]
	for _, fi := range files {
		n, err := native.ParseName(fi.Name)
		switch {
		case err == nil && n.Format == fs.InputType():
			out = append(out, fi)
		case err != nil && raw:
			out = append(out, fi)
		}
	}
	return out
}

// processOne takes one file: copy (ciphertext) to scratch, process, deliver
// outputs, archive or quarantine, complete.
func (r *Runtime) processOne(ctx context.Context, j *config.Job, fs processor.FileStep, pk *drop.Picker, fi drop.FileInfo, sum *Summary) error {
	d, err := r.Drop(j.Partner, j.Name)
	if err != nil {
		return err
	}
	sum.Files++
	if fi.Size > r.maxCiphertext() {
		return r.refuseOversized(ctx, j, fs, pk, fi.Name, fi.Size, false, sum)
	}
	local := filepath.Join(r.Party.ScratchDir, j.Partner+"--"+fi.Name)
	if err := r.copyIn(ctx, d, fi.Name, local); err != nil {
		defer os.Remove(local)
		if r.skipNonRegular(j, fi.Name, err) {
			sum.Files--
			return nil
		}
		if errors.Is(err, errTooLarge) {
			return r.refuseOversized(ctx, j, fs, pk, fi.Name, fi.Size, true, sum)
		}
		return err
	}
	defer os.Remove(local)
	in := processor.Input{Partner: r.Party.Partners[j.Partner], Name: fi.Name, Path: local, Job: j.Name}
	res, perr := r.Party.ProcessFile(ctx, fs, in)
	var refused *processor.RefusedError
	if perr != nil && !errors.As(perr, &refused) {
		return perr
	}
	if res != nil {
		sum.add(res)
		if r.Metrics != nil {
			r.Metrics.PoRsIgnored(j.Name, res.Counts.PoRsIgnored)
		}
		if err := r.deliver(ctx, j, res.Outputs, sum); err != nil {
			return err
		}
	}
	if refused != nil {
		sum.Quarantined++
		sum.Refused = append(sum.Refused, perr)
		// Keep our own copy: reprocessing needs the bytes.
		if err := r.keepQuarantined(local, res.FileID, fi.Name); err != nil {
			return err
		}
		failpoint.Hit(failpoint.BeforeQuarantine)
		if err := pk.Done(ctx, fi.Name, drop.Quarantine); err != nil {
			if !r.replaced(j, fi.Name, drop.Quarantine, err) {
				return err
			}
		}
		return r.Party.Quarantined(ctx, res.FileID)
	}
	if res.Status == "skipped" {
		sum.Skipped++
	}
	// Complete before archiving: a crash in between leaves a done file in
	// the inbox, which the next run archives as already processed. The
	// other order left a processing file nobody would pick up again.
	failpoint.Hit(failpoint.BeforeComplete)
	if err := r.Party.Complete(ctx, res.FileID); err != nil {
		return err
	}
	failpoint.Hit(failpoint.BeforeArchive)
	if err := pk.Done(ctx, fi.Name, drop.Archive); err != nil {
		if !r.replaced(j, fi.Name, drop.Archive, err) {
			return err
		}
	}
	failpoint.Hit(failpoint.AfterArchive)
	return nil
}

// replaced reports whether err says the input was replaced under its
// name after it was read (drop.ErrReplaced), and logs it: the newcomer
// stays in the inbox for the next run, which reads it as a new input.
func (r *Runtime) replaced(j *config.Job, name string, to drop.Folder, err error) bool {
	if !errors.Is(err, drop.ErrReplaced) {
		return false
	}
	r.Log.Warn("input replaced on the drop after it was read; the new file stays in the inbox for the next run, nothing moved to "+to.String(),
		"job", j.Name, "partner", j.Partner, "file", name, "error", err.Error())
	return true
}

// skipNonRegular reports whether err from opening an input says it is not
// a regular file, and logs it: a FIFO, device or link put in a file's place is
// never read and stays where it is.
func (r *Runtime) skipNonRegular(j *config.Job, name string, err error) bool {
	if !errors.Is(err, drop.ErrNotRegular) {
		return false
	}
	r.Log.Warn("input skipped: not a regular file", "job", j.Name, "partner", j.Partner, "file", name, "error", err.Error())
	return true
}

// refuseOversized refuses an input larger than limits.max_ciphertext_bytes
// (size as listed; grew when the download went past the limit): it is
// not downloaded (or no further). As any refused input it is recorded in
// the ledger (quarantined, by name and listed size: nothing of it was
// read), answered with a refusal result, and moved to quarantine on the
// drop; an interrupted run resumes the refusal, which goes out once.
func (r *Runtime) refuseOversized(ctx context.Context, j *config.Job, fs processor.FileStep, pk *drop.Picker, name string, size int64, grew bool, sum *Summary) error {
	limit := r.maxCiphertext()
	reason := fmt.Sprintf("%d bytes listed, larger than limits.max_ciphertext_bytes (%d bytes)", size, limit)
	if grew {
		reason = fmt.Sprintf("%d bytes listed, grew past limits.max_ciphertext_bytes (%d bytes) while read", size, limit)
	}
	in := processor.Input{Partner: r.Party.Partners[j.Partner], Name: name, Job: j.Name}
	res, perr := r.Party.RefuseUnread(ctx, fs, in, size, reason)
	var refused *processor.RefusedError
	if !errors.As(perr, &refused) {
		return perr
	}
	sum.Refused = append(sum.Refused, perr)
	if err := r.deliver(ctx, j, res.Outputs, sum); err != nil {
		return err
	}
	failpoint.Hit(failpoint.BeforeQuarantine)
	if err := pk.Done(ctx, name, drop.Quarantine); err != nil {
		if !r.replaced(j, name, drop.Quarantine, err) {
			return err
		}
		// It changed while we read it: the next run reads the newcomer;
		// the refusal of what we saw stands.
		r.Log.Error("input refused: "+reason+"; left in the inbox", "job", j.Name, "partner", j.Partner, "file", name, "limit", limit)
		return r.Party.Quarantined(ctx, res.FileID)
	}
	sum.Quarantined++
	msg := "input refused without download: " + reason + "; moved to quarantine on the drop"
	if grew {
		msg = "input refused: " + reason + ", the download stopped there; moved to quarantine on the drop"
	}
	r.Log.Error(msg, "job", j.Name, "partner", j.Partner, "file", name, "file_id", res.FileID, "size", size, "limit", limit)
	return r.Party.Quarantined(ctx, res.FileID)
}

// dryRunOne checks a file and applies it in a rolled-back transaction: it
// stays in the inbox, nothing is recorded or delivered.
func (r *Runtime) dryRunOne(ctx context.Context, j *config.Job, fs processor.FileStep, fi drop.FileInfo, sum *Summary) error {
	d, err := r.Drop(j.Partner, j.Name)
	if err != nil {
		return err
	}
	if fi.Size > r.maxCiphertext() {
		r.Log.Warn("dry run: the file would be refused: larger than limits.max_ciphertext_bytes", "job", j.Name, "file", fi.Name,
			"size", fi.Size, "limit", r.maxCiphertext())
		sum.Files++
		sum.Quarantined++
		return nil
	}
	sum.Files++
	local := filepath.Join(r.Party.ScratchDir, j.Partner+"--dry--"+fi.Name)
	if err := r.copyIn(ctx, d, fi.Name, local); err != nil {
		os.Remove(local)
		if r.skipNonRegular(j, fi.Name, err) {
			sum.Files--
			return nil
		}
		return err
	}
	defer os.Remove(local)
	res, err := r.Party.ProcessFile(ctx, fs, processor.Input{Partner: r.Party.Partners[j.Partner], Name: fi.Name, Path: local, Job: j.Name, DryRun: true})
	if err != nil {
		return err
	}
	sum.add(res)
	if res.Status == "would-quarantine" {
		sum.Quarantined++
		r.Log.Warn("dry run: the file would be refused", "job", j.Name, "file", fi.Name, "reason", res.Reason)
	}
	return nil
}

// copyIn downloads an input to local, stopping at
// limits.max_ciphertext_bytes (errTooLarge).
func (r *Runtime) copyIn(ctx context.Context, d drop.Drop, name, local string) error {
	rc, err := d.Open(ctx, name)
	if err != nil {
		return err
	}
	defer rc.Close()
	f, err := os.OpenFile(local, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(&limitWriter{w: f, left: r.maxCiphertext()}, rc); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

var errTooLarge = errors.New("input larger than limits.max_ciphertext_bytes")

// limitWriter fails once more than left bytes were written: the download
// stops there (a writer keeps pkg/sftp's concurrent WriteTo).
type limitWriter struct {
	w    io.Writer
	left int64
}

func (l *limitWriter) Write(p []byte) (int, error) {
	if int64(len(p)) > l.left {
		n, err := l.w.Write(p[:l.left])
		l.left -= int64(n)
		if err != nil {
			return n, err
		}
		return n, errTooLarge
	}
	n, err := l.w.Write(p)
	l.left -= int64(n)
	return n, err
}

func copyFile(from, to string) error {
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	if err := out.Sync(); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// deliver puts rendered outputs on their partners' drops and records them.
func (r *Runtime) deliver(ctx context.Context, j *config.Job, outs []*ledger.Output, sum *Summary) error {
	for _, o := range outs {
		if o.State == ledger.OutDelivered {
			continue
		}
		d, err := r.Drop(o.Partner, j.Name)
		if err != nil {
			return err
		}
		// An instance whose lease another took over delivers nothing.
		if err := r.Ledger.CheckFence(ctx); err != nil {
			return err
		}
		f, err := os.Open(o.Path)
		if err != nil {
			return fmt.Errorf("output %s: %w", o.Name, err)
		}
		err = d.Put(ctx, o.Name, failpoint.Reader(failpoint.MidUpload, f, o.Size), o.Size)
		f.Close()
		if err != nil {
			return fmt.Errorf("deliver %s to %s: %w", o.Name, o.Partner, err)
		}
		failpoint.Hit(failpoint.AfterUpload)
		if err := r.Party.Delivered(ctx, o); err != nil {
			return err
		}
		failpoint.Hit(failpoint.AfterDelivered)
		sum.Delivered++
	}
	return nil
}

// deliverPending delivers outputs an interrupted run of the job left.
func (r *Runtime) deliverPending(ctx context.Context, j *config.Job, sum *Summary) error {
	outs, err := r.Party.PendingOutputs(ctx, j.Name)
	if err != nil {
		return err
	}
	if len(outs) > 0 {
		r.Log.Info("delivering outputs of an interrupted run", "job", j.Name, "outputs", len(outs))
	}
	return r.deliver(ctx, j, outs, sum)
}
