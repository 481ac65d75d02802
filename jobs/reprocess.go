package jobs

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"resub/processor"
	"resub/processor/ledger"
)

// Reprocess runs a quarantined input again ("file:N"), or the input of a
// batch ("batch:N"), after its cause was fixed. The bytes come from our own
// copy, kept when the file was quarantined.
func (r *Runtime) Reprocess(ctx context.Context, ref string) (*Summary, error) {
	kind, num, ok := strings.Cut(ref, ":")
	id, err := strconv.ParseInt(num, 10, 64)
	if !ok || err != nil || (kind != "file" && kind != "batch") {
		return nil, cfgErr("reprocess", fmt.Errorf("%q is not file:N or batch:N", ref))
	}
	if kind == "batch" {
		b, err := r.Ledger.Batch(ctx, id)
		if err != nil {
			return nil, err
		}
		if b.FileID == 0 {
			return nil, cfgErr("reprocess", fmt.Errorf("batch %d has no input file (a sweep): run its job again", id))
		}
		id = b.FileID
	}
	f, err := r.Ledger.FileByID(ctx, id)
	if err != nil {
		return nil, err
	}
	if f.Status != ledger.FileQuarantined {
		return nil, cfgErr("reprocess", fmt.Errorf("file %d (%s) is %s, not quarantined", id, f.Name, f.Status))
	}
	j, err := r.Job(f.Job)
	if err != nil {
		return nil, err
	}
	fs, err := r.step(j)
	if err != nil || fs == nil {
		return nil, cfgErr("reprocess", fmt.Errorf("job %s does not read files", j.Name))
	}
	if f.SHA256 == "" {
		// Refused unread for its size: nothing of it was downloaded.
		return nil, cfgErr("reprocess", fmt.Errorf("file %d (%s) was refused unread (%s): there is no copy to run again. "+
			"Raise limits.max_ciphertext_bytes above %d bytes if such a file is expected, then move %s from the quarantine folder of partner %s's drop back to its inbox: "+
			"the next run of job %s reads it as a new input (and closes this record)", id, f.Name, f.Reason, f.Size, f.Name, f.Partner, j.Name))
	}
	local := filepath.Join(r.Cfg.DataDir, "quarantine", quarantineName(id, f.Name))
	if _, err := os.Stat(local); err != nil {
		return nil, fmt.Errorf("reprocess file %d: our copy is missing (pruned when the local quarantine was full, or never kept): "+
			"move %s from the drop's quarantine folder back to its inbox to have it read again: %w", id, f.Name, err)
	}
	owner := r.Instance()
	if err := r.acquireLease(ctx, j.Name, owner); err != nil {
		return nil, err
	}
	defer r.Ledger.ReleaseLease(context.WithoutCancel(ctx), j.Name, owner)
	ctx, stop := r.keepLease(ledger.WithFence(ctx, j.Name, owner), j.Name, owner)
	defer stop()
	sum := &Summary{Job: j.Name, Files: 1}
	in := processor.Input{Partner: r.Party.Partners[j.Partner], Name: f.Name, Path: local, Job: j.Name, Reprocess: true}
	res, perr := r.Party.ProcessFile(ctx, fs, in)
	var refused *processor.RefusedError
	if perr != nil && !errors.As(perr, &refused) {
		return sum, perr
	}
	if refused != nil {
		// Our copy is the quarantined input: it stays where it is,
		// whether or not the refusal reaches the partner now.
		if err := r.Party.Quarantined(ctx, res.FileID); err != nil {
			return sum, err
		}
	}
	if res != nil {
		sum.add(res)
		if r.Metrics != nil {
			r.Metrics.PoRsIgnored(j.Name, res.Counts.PoRsIgnored)
		}
		if err := r.deliver(ctx, j, res.Outputs, sum); err != nil {
			return sum, err
		}
	}
	if refused != nil {
		sum.Quarantined++
		return sum, &RefusedError{Errs: []error{perr}}
	}
	if err := r.Party.Complete(ctx, res.FileID); err != nil {
		return sum, err
	}
	os.Remove(local)
	r.Log.Info("reprocessed", "file", f.Name, "file_id", id, "records", res.Counts.Records)
	return sum, nil
}
