package processor

import (
	"context"
	"database/sql"
	"errors"
	"strconv"
	"strings"

	"resub/processor/ledger"
)

// RefuseUnread refuses an input that was not read (larger than the
// configured bound on ciphertext): it is recorded with its listed size and
// no SHA-256, refused, and the partner gets a refusal result naming it by
// name and size (in-reply-to-size). The caller delivers Result.Outputs,
// moves the input to the drop's quarantine and calls Quarantined, as for
// any refused input: a run interrupted in between resumes the refusal
// (the answer goes out once).
//
// The same name refused unread again after its record was quarantined
// (sent again, or moved back to the inbox while still too large) is
// answered again.
func (p *Party) RefuseUnread(ctx context.Context, step FileStep, in Input, size int64, reason string) (*Result, error) {
	var row *ledger.File
	var seen bool
	err := p.Ledger.InTx(ctx, func(tx *ledger.Tx) error {
		var err error
		row, seen, err = tx.ReceiveFile(ctx, &ledger.File{Partner: in.Partner.Name, Name: in.Name, Size: size, Job: in.Job, Type: step.InputType()})
		return err
	})
	if err != nil {
		return nil, err
	}
	if seen && row.Status == ledger.FileRefusing {
		p.log().Info("resuming a refused input", "partner", in.Partner.Name, "file", in.Name, "file_id", row.ID, "reason", row.Reason)
		outs, err := p.renderPendingPrefix(ctx, "file:"+strconv.FormatInt(row.ID, 10)+":refusal:")
		if err != nil {
			return nil, err
		}
		return &Result{FileID: row.ID, Status: ledger.FileQuarantined, Reason: row.Reason, Outputs: outs},
			&RefusedError{File: in.Name, Reason: row.Reason}
	}
	if seen && row.Size != size && size > 0 {
		// The same name listed again at another size: the answer names
		// the size seen now.
		if err := p.Ledger.InTx(ctx, func(tx *ledger.Tx) error {
			_, err := tx.Exec(ctx, `UPDATE files SET size = ? WHERE id = ?`, size, row.ID)
			return err
		}); err != nil {
			return nil, err
		}
		row.Size = size
	}
	return p.quarantine(ctx, in, row, step, reason, nil)
}

// unreadSize is the listed size of the input a refusal output answers
// when that input was refused unread (no SHA-256), else 0.
func unreadSize(ctx context.Context, p *Party, o *ledger.Output) int64 {
	if o.InReplySHA != "" {
		return 0
	}
	rest, ok := strings.CutPrefix(o.Source, "file:")
	if !ok {
		return 0
	}
	num, _, _ := strings.Cut(rest, ":")
	id, err := strconv.ParseInt(num, 10, 64)
	if err != nil {
		return 0
	}
	f, err := p.Ledger.FileByID(ctx, id)
	if err != nil || f.SHA256 != "" {
		return 0
	}
	return f.Size
}

// closeUnread closes the record of an input of the same name refused
// unread and quarantined, now that the input was read in full (moved back
// to the inbox after the bound was raised, or sent again): it no longer
// waits for anyone.
func closeUnread(ctx context.Context, tx *ledger.Tx, read *ledger.File) error {
	var id int64
	var status string
	err := tx.QueryRow(ctx, `SELECT id, status FROM files WHERE partner = ? AND direction = 'in' AND name = ? AND sha256 = ''`,
		read.Partner, read.Name).Scan(&id, &status)
	if errors.Is(err, sql.ErrNoRows) || (err == nil && status != ledger.FileQuarantined) {
		return nil
	}
	if err != nil {
		return err
	}
	return tx.SetFileStatus(ctx, id, ledger.FileDone, "refused unread for its size, then read in full as file "+strconv.FormatInt(read.ID, 10))
}
