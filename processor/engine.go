package processor

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"resub/crypto/pgp"
	"resub/formats/native"
	"resub/processor/failpoint"
	"resub/processor/ledger"
)

// Input is one file picked up from a partner, copied to local storage by
// the caller (ciphertext: nothing in clear touches the disk).
type Input struct {
	Partner *Partner
	Name    string // the file's name on the drop (already checked safe)
	Path    string // the local copy
	Job     string
	// Reprocess runs a quarantined file again.
	Reprocess bool
	// DryRun checks and applies the file in a transaction that is rolled
	// back: nothing is recorded, no counter or IMSI reserved, nothing
	// rendered. The result's counts say what a real run would do.
	DryRun bool
}

// Result says what became of an input.
type Result struct {
	FileID  int64
	Status  string // done, quarantined, skipped (already done)
	Reason  string
	BatchID int64
	// Outputs are rendered files waiting for delivery.
	Outputs []*ledger.Output
	Counts  Counts
}

// Counts are a unit of work's record counts.
type Counts struct {
	Records, Accepted, Rejected, Messages int
	// PoRsIgnored counts proofs of receipt that did not verify and
	// changed nothing (resub_por_ignored_total).
	PoRsIgnored int
}

// RefusedError is an input refused as a whole: it is quarantined and the
// partner told why. It maps to exit code 1.
type RefusedError struct {
	File   string
	Reason string
	Err    error
}

func (e *RefusedError) Error() string {
	return fmt.Sprintf("%s refused: %s", e.File, e.Reason)
}
func (e *RefusedError) Unwrap() error { return e.Err }
func (e *RefusedError) Refused() bool { return true }

// Work is the context of one unit of work inside its transaction.
type Work struct {
	P       *Party
	Tx      *ledger.Tx
	Partner *Partner // where the input came from (nil for sweeps)
	File    *ledger.File
	Header  *native.Header
	Reader  *native.Reader
	BatchID int64
	Job     string
	Source  string
	Counts  Counts
	DryRun  bool
	refused error
	// prepared are the outputs the work rendered as it planned them
	// (taken by the party once the work commits).
	prepared []*prepared
}

// Refuse ends the work: the whole input is refused (rolled back and
// quarantined) with reason.
func (w *Work) Refuse(reason string, err error) error {
	w.refused = &RefusedError{File: w.File.Name, Reason: reason, Err: err}
	return w.refused
}

// FileStep is a party step driven by an input file.
type FileStep interface {
	// InputType is the native type the step reads.
	InputType() string
	// Apply processes the records of a verified input inside the work's
	// transaction, planning its outputs with w.Plan.
	Apply(ctx context.Context, w *Work) error
}

// duplicateFinder is a FileStep that finds repeated ICCIDs and IMSIs of
// its input itself (in the records it stages in the ledger), so that the
// reader keeps no memory per record.
type duplicateFinder interface {
	findsDuplicates() bool
}

// RawStep is a FileStep that can also read a file that is not in our
// native layout (a SIM vendor's output file).
type RawStep interface {
	FileStep
	// Native reports, from the first bytes, whether the file is native.
	Native(r *bufio.Reader) bool
	// ApplyRaw processes a non-native file.
	ApplyRaw(ctx context.Context, w *Work, r io.Reader) error
}

// ProcessFile runs a verified-or-refused input through step: the file is
// recorded, verified (signature mandatory), parsed, applied and its
// outputs rendered. The caller delivers Result.Outputs (then calls
// Delivered), archives or quarantines the input as Result.Status says, and
// then calls Complete.
func (p *Party) ProcessFile(ctx context.Context, step FileStep, in Input) (*Result, error) {
	if in.DryRun {
		return p.dryRun(ctx, step, in)
	}
	log := p.log().With("partner", in.Partner.Name, "file", in.Name, "job", in.Job)
	sum, size, err := fileSHA256(in.Path)
	if err != nil {
		return nil, err
	}
	var row *ledger.File
	var seen bool
	err = p.Ledger.InTx(ctx, func(tx *ledger.Tx) error {
		row, seen, err = tx.ReceiveFile(ctx, &ledger.File{Partner: in.Partner.Name, Name: in.Name, SHA256: sum, Size: size, Job: in.Job, Type: step.InputType()})
		if err != nil || seen {
			return err
		}
		return closeUnread(ctx, tx, row)
	})
	if err != nil {
		return nil, err
	}
	res := &Result{FileID: row.ID}
	log = log.With("file_id", row.ID, "sha256", sum, "size", size)
	if seen {
		switch row.Status {
		case ledger.FileDone:
			log.Info("input already processed; archiving again")
			res.Status = "skipped"
			return res, nil
		case ledger.FileProcessing:
			log.Info("resuming an input whose work was committed")
			res.Status = ledger.FileDone
			res.BatchID = row.BatchID
			outs, err := p.renderPending(ctx, "file:"+strconv.FormatInt(row.ID, 10))
			res.Outputs = outs
			return res, err
		case ledger.FileRefusing:
			// Refused and answered, then interrupted before it was
			// moved to quarantine: the refusal stands and goes out
			// once; only what was not delivered is handed back.
			log.Info("resuming a refused input", "reason", row.Reason)
			outs, err := p.renderPendingPrefix(ctx, "file:"+strconv.FormatInt(row.ID, 10)+":refusal:")
			if err != nil {
				return nil, err
			}
			res.Status, res.Reason, res.Outputs = ledger.FileQuarantined, row.Reason, outs
			return res, &RefusedError{File: in.Name, Reason: row.Reason}
		case ledger.FileQuarantined:
			// The same bytes dropped again, or an explicit reprocess:
			// run it again (the cause may have been fixed here).
			log.Info("reprocessing a quarantined input", "reason", row.Reason)
		}
	}

	refuse := func(reason string, cause error) (*Result, error) {
		return p.quarantine(ctx, in, row, step, reason, cause)
	}

	w := &Work{P: p, Partner: in.Partner, File: row, Job: in.Job, Source: "file:" + strconv.FormatInt(row.ID, 10)}
	op, reason, cause, err := p.openInput(ctx, step, in, w)
	if err != nil {
		return nil, err
	}
	if reason != "" {
		return refuse(reason, cause)
	}
	defer op.close()
	log.Info("input verified", "signer", op.signer, "plaintext_size", op.size)
	// Outputs the step prepared are rendered from what it held only by
	// this call, right after the commit; whatever is left is dropped.
	defer func() { p.prepared.drop(w.prepared) }()
	err = p.Ledger.InTx(ctx, func(tx *ledger.Tx) error {
		w.Tx = tx
		w.Counts = Counts{}
		w.refused = nil
		p.prepared.drop(w.prepared)
		w.prepared = nil
		id, err := tx.CreateBatch(ctx, &ledger.Batch{Job: in.Job, Partner: in.Partner.Name, Kind: step.InputType(), FileID: row.ID})
		if err != nil {
			return err
		}
		w.BatchID = id
		if err := op.apply(ctx, w); err != nil {
			return err
		}
		if err := tx.FinishBatch(ctx, id, ledger.BatchDone, w.Counts.Records, w.Counts.Accepted, w.Counts.Rejected, ""); err != nil {
			return err
		}
		if h := w.Header; h != nil {
			if err := tx.AcceptSeq(ctx, h.Sender, h.Receiver, h.Format, int64(h.Sequence)); err != nil {
				return err
			}
			if err := tx.SetFileMeta(ctx, row.ID, h.Format, int64(h.Sequence), id); err != nil {
				return err
			}
		} else if err := tx.SetFileMeta(ctx, row.ID, step.InputType(), 0, id); err != nil {
			return err
		}
		if err := tx.SetFileStatus(ctx, row.ID, ledger.FileProcessing, ""); err != nil {
			return err
		}
		failpoint.Hit(failpoint.WorkBeforeCommit)
		return nil
	})
	if w.refused != nil {
		var re *RefusedError
		errors.As(w.refused, &re)
		return refuse(re.Reason, re.Err)
	}
	if err != nil {
		return nil, err
	}
	failpoint.Hit(failpoint.AfterCommit)
	p.prepared.adopt(w.prepared)
	res.Status = ledger.FileDone
	res.BatchID = w.BatchID
	res.Counts = w.Counts
	log.Info("input applied", "batch", w.BatchID, "records", w.Counts.Records, "accepted", w.Counts.Accepted, "rejected", w.Counts.Rejected, "messages", w.Counts.Messages, "pors_ignored", w.Counts.PoRsIgnored)
	res.Outputs, err = p.renderPending(ctx, w.Source)
	return res, err
}

// Complete marks an input done once its outputs were delivered and the
// input archived.
func (p *Party) Complete(ctx context.Context, fileID int64) error {
	return p.Ledger.InTx(ctx, func(tx *ledger.Tx) error {
		f, err := p.Ledger.FileByID(ctx, fileID)
		if err != nil {
			return err
		}
		if f.Status == ledger.FileQuarantined || f.Status == ledger.FileRefusing {
			return nil
		}
		return tx.SetFileStatus(ctx, fileID, ledger.FileDone, "")
	})
}

// Quarantined records that a refused input (whose refusal is answered)
// now lies in quarantine: it waits for reprocessing. Until then a rerun
// resumes the refusal instead of refusing it again.
func (p *Party) Quarantined(ctx context.Context, fileID int64) error {
	return p.Ledger.InTx(ctx, func(tx *ledger.Tx) error {
		f, err := p.Ledger.FileByID(ctx, fileID)
		if err != nil {
			return err
		}
		if f.Status != ledger.FileRefusing {
			return nil
		}
		return tx.SetFileStatus(ctx, fileID, ledger.FileQuarantined, f.Reason)
	})
}

func (p *Party) maxFile() int64 {
	if p.MaxFileBytes > 0 {
		return p.MaxFileBytes
	}
	return pgp.DefaultMaxSize
}

// readerOptions ties the native reader's checks to our state.
func (p *Party) readerOptions(ctx context.Context, in Input, typ string) native.Options {
	o := native.Options{
		File:          in.Name,
		Type:          typ,
		Name:          strings.TrimSuffix(in.Name, ""),
		Sender:        in.Partner.Code,
		Receiver:      p.Name,
		SenderRanges:  in.Partner.Ranges,
		MaxLineLength: p.MaxLineBytes,
		Limits:        p.Limits,
		LastSequence: func(sender, receiver, format string) (int, bool) {
			l, ok := p.Ledger.LastSeq(ctx, sender, receiver, format)
			return int(l), ok
		},
		SentFile: func(name string, sum [32]byte) bool {
			if p.Ledger.SentFile(ctx, name, hex.EncodeToString(sum[:])) {
				return true
			}
			// The partner answers a file of ours whose bytes it saw
			// differently: it was altered on the way. The answer still
			// belongs to our file; say so loudly.
			if f, err := p.Ledger.FileByName(ctx, "out", name); err == nil {
				p.log().Warn("partner answers our file but saw other bytes: altered in transit", "partner", in.Partner.Name,
					"file", in.Name, "answers", name, "our_sha256", f.SHA256, "their_sha256", hex.EncodeToString(sum[:]))
				return true
			}
			return false
		},
		SentFileOfSize: func(name string, size int64) bool {
			// The partner refused our file unread, naming its size.
			f, err := p.Ledger.FileByName(ctx, "out", name)
			if err != nil {
				return false
			}
			if f.Size != size {
				p.log().Warn("partner refused our file unread at another size than we sent", "partner", in.Partner.Name,
					"file", in.Name, "answers", name, "our_size", f.Size, "their_size", size)
			}
			return true
		},
	}
	if in.Partner.Transport != nil {
		o.TransportKey = in.Partner.Transport.KCV
	}
	return o
}

// quarantine records a refused input, plans the refusal result for the
// partner and renders it.
func (p *Party) quarantine(ctx context.Context, in Input, row *ledger.File, step FileStep, reason string, cause error) (*Result, error) {
	p.log().Warn("input refused", "partner", in.Partner.Name, "file", in.Name, "file_id", row.ID, "reason", reason)
	source := "file:" + strconv.FormatInt(row.ID, 10)
	err := p.Ledger.InTx(ctx, func(tx *ledger.Tx) error {
		if err := tx.SetFileStatus(ctx, row.ID, ledger.FileRefusing, reason); err != nil {
			return err
		}
		if err := tx.Audit(ctx, p.Name, "quarantine", in.Name, reason); err != nil {
			return err
		}
		rt := resultTypeFor(step.InputType())
		if rt == "" {
			return nil
		}
		_, err := p.plan(ctx, tx, planSpec{
			job: in.Job, source: source + ":refusal:" + strconv.Itoa(refusalCount(ctx, p, row.ID)), renderer: "refusal", partner: in.Partner, typ: rt,
			inReplyTo: in.Name, inReplySHA: row.SHA256, note: reason,
		})
		return err
	})
	if err != nil {
		return nil, err
	}
	failpoint.Hit(failpoint.RefusalAfterCommit)
	outs, err := p.renderPendingPrefix(ctx, source+":refusal:")
	if err != nil {
		return nil, err
	}
	return &Result{FileID: row.ID, Status: ledger.FileQuarantined, Reason: reason, Outputs: outs}, &RefusedError{File: in.Name, Reason: reason, Err: cause}
}

func refusalCount(ctx context.Context, p *Party, fileID int64) int {
	var n int
	_ = p.Ledger.QueryRow(ctx, `SELECT COUNT(*) FROM outputs WHERE source LIKE ?`, "file:"+strconv.FormatInt(fileID, 10)+":refusal:%").Scan(&n)
	return n + 1
}

// resultTypeFor names the type that answers an input type.
func resultTypeFor(in string) string {
	switch in {
	case "imsi-list":
		return "imsi-result"
	case "handover":
		return "handover-ack"
	case "key-request":
		return "key-response"
	}
	return ""
}

func pgpReason(err error) string {
	var pe *pgp.Error
	if errors.As(err, &pe) {
		return pe.Error()
	}
	return err.Error()
}

func firstProblem(err error) string {
	ps := native.Problems(err)
	if len(ps) == 0 {
		return err.Error()
	}
	msgs := make([]string, 0, len(ps))
	for i, pr := range ps {
		if i == 5 {
			msgs = append(msgs, fmt.Sprintf("and %d more", len(ps)-5))
			break
		}
		msgs = append(msgs, pr.Error())
	}
	s := strings.Join(msgs, "; ")
	// A bound passed: name the setting.
	switch {
	case errors.Is(err, native.ErrTooManyRecords):
		s += " (limits.max_records)"
	case errors.Is(err, native.ErrTooManyErrors):
		s += " (limits.max_record_errors)"
	}
	return s
}

func fileSHA256(path string) (string, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return "", 0, err
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}

// dryRun runs a file through verification and the step inside a
// transaction that is always rolled back.
func (p *Party) dryRun(ctx context.Context, step FileStep, in Input) (*Result, error) {
	res := &Result{Status: "dry-run"}
	sum, size, err := fileSHA256(in.Path)
	if err != nil {
		return nil, err
	}
	w := &Work{P: p, Partner: in.Partner, Job: in.Job, DryRun: true, Source: "dry-run"}
	op, reason, _, err := p.openInput(ctx, step, in, w)
	if err != nil {
		return nil, err
	}
	if reason != "" {
		res.Status, res.Reason = "would-quarantine", reason
		return res, nil
	}
	defer op.close()
	err = p.Ledger.InTx(ctx, func(tx *ledger.Tx) error {
		w.Tx = tx
		row, _, err := tx.ReceiveFile(ctx, &ledger.File{Partner: in.Partner.Name, Name: in.Name, SHA256: sum, Size: size, Job: in.Job, Type: step.InputType()})
		if err != nil {
			return err
		}
		w.File = row
		if w.BatchID, err = tx.CreateBatch(ctx, &ledger.Batch{Job: in.Job, Partner: in.Partner.Name, Kind: step.InputType(), FileID: row.ID}); err != nil {
			return err
		}
		if err := op.apply(ctx, w); err != nil {
			return err
		}
		return errDryRun
	})
	res.Counts = w.Counts
	if w.refused != nil {
		res.Status, res.Reason = "would-quarantine", w.refused.Error()
		return res, nil
	}
	if err != nil && !errors.Is(err, errDryRun) {
		return nil, err
	}
	return res, nil
}

// opened is a verified input ready for its step.
type opened struct {
	step   FileStep
	raw    RawStep // set when the file is not native
	br     *bufio.Reader
	rc     io.ReadCloser
	v      *pgp.Verified
	signer string
	size   int64
}

// openInput verifies an input (pass 1: decrypt, integrity and the pinned
// signature, plaintext discarded), then opens its plaintext (pass 2) and,
// for a native file, reads and checks its header into w. A refusal comes
// back as a reason, not an error.
func (p *Party) openInput(ctx context.Context, step FileStep, in Input, w *Work) (op *opened, reason string, cause, err error) {
	op = &opened{step: step}
	open := func() (io.ReadCloser, error) { return os.Open(in.Path) }
	plain := open
	if !in.Partner.PGPOff {
		v, err := pgp.Open(open, pgp.DecryptOptions{
			Keys: p.Keys, Signers: in.Partner.PublicKeys, Fingerprints: in.Partner.Fingerprints,
			MaxSize: p.maxFile(), Now: p.Now, ScratchDir: p.ScratchDir,
		})
		if err != nil {
			return nil, pgpReason(err), err, nil
		}
		op.v, op.signer, op.size, plain = v, v.Signer, v.PlaintextSize, v.Plaintext
	}
	rc, err := plain()
	if err != nil {
		op.close()
		return nil, "decryption failed on the second pass", err, nil
	}
	op.rc = rc
	if raw, ok := step.(RawStep); ok {
		op.br = bufio.NewReaderSize(rc, 64<<10)
		if !raw.Native(op.br) {
			op.raw = raw
			return op, "", nil, nil
		}
		rc = io.NopCloser(op.br)
	}
	opts := p.readerOptions(ctx, in, step.InputType())
	if d, ok := step.(duplicateFinder); ok {
		opts.CallerFindsDuplicates = d.findsDuplicates()
	}
	rd := native.NewReader(rc, opts)
	h, herr := rd.Header()
	if herr != nil {
		op.close()
		return nil, "header: " + firstProblem(herr), herr, nil
	}
	w.Header, w.Reader = h, rd
	return op, "", nil, nil
}

func (op *opened) close() {
	if op.rc != nil {
		op.rc.Close()
	}
	if op.v != nil {
		op.v.Close()
	}
}

// apply hands the opened input to its step inside the work's transaction.
func (op *opened) apply(ctx context.Context, w *Work) error {
	switch {
	case w.Header != nil && w.Header.Refused != "":
		// The partner refused one of our files as a whole: nothing in
		// it was acted on; an operator sends it again once the cause is
		// fixed.
		w.P.log().Error("partner refused our file", "partner", w.Partner.Name, "file", w.Header.InReplyTo, "reason", w.Header.Refused)
		return w.Tx.Audit(ctx, w.Partner.Code, "file-refused", w.Header.InReplyTo, w.Header.Refused)
	case op.raw != nil:
		return op.raw.ApplyRaw(ctx, w, op.br)
	}
	return op.step.Apply(ctx, w)
}
