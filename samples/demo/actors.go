package demo

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"resub/crypto/keywrap"
	"resub/crypto/pgp"
	"resub/formats/native"
	"resub/jobs"
	"resub/samples/fleet"
	"resub/samples/smsc"
)

// dropDir is a folder of a party's local drop.
func (w *world) dropDir(code, drop, sub string) string {
	return filepath.Join(w.parties[code].dir, "drops", drop, sub)
}

// send writes a native file from an actor that is not a resub party (the
// M2M operator, the vendor, the BSS, the factory) into a party's inbox.
func (w *world) send(inbox, from, to string, schema *native.Schema, n int, clear bool, tk *keywrap.TransportKey, recs func(func(*native.Record) error) error) (string, error) {
	return w.sendSigned(inbox, from, from, to, schema, n, clear, tk, recs)
}

// sendSigned is send with the signature of another of the sender's keys.
func (w *world) sendSigned(inbox, from, signer, to string, schema *native.Schema, n int, clear bool, tk *keywrap.TransportKey, recs func(func(*native.Record) error) error) (string, error) {
	key := from + ">" + to + ">" + schema.Name
	w.seqs[key]++
	h := fleet.Header{Sender: from, Receiver: to, Sequence: w.seqs[key], Date: w.clock()}
	if tk != nil {
		h.TransportKey, h.KCV = tk.ID(), tk.KCV()
	}
	env := fleet.Envelope{Now: w.clock}
	if !clear {
		env.To, env.Signer = []*pgp.Key{w.keys[to].Public()}, w.keys[signer]
	}
	return fleet.WriteFile(inbox, schema, h, env, n, recs)
}

// transportKey rebuilds a transport key the configurations refer to.
func (w *world) transportKey(id string) (*keywrap.TransportKey, error) {
	key, err := hexKey(w.env[envName("tk", id)])
	if err != nil {
		return nil, err
	}
	return keywrap.NewTransportKey(id, key, keywrap.AESKWP, keywrap.TransportKeyOptions{})
}

// runJob runs one pass of a party's job and tells what it did.
func (w *world) runJob(ctx context.Context, code, name string) (*jobs.Summary, error) {
	p := w.parties[code]
	sum, err := p.rt.RunJob(ctx, name, jobs.RunOptions{Manual: true, Owner: "demo"})
	var refused *jobs.RefusedError
	if errors.As(err, &refused) {
		w.say("    %s %-14s refused: %v", code, name, err)
		err = nil
	}
	if err != nil {
		return sum, fmt.Errorf("%s job %s: %w", code, name, err)
	}
	if sum != nil && (sum.Files > 0 || sum.Records > 0 || sum.Delivered > 0) {
		w.say("    %s %-14s %d file(s), %d record(s): %d accepted, %d rejected; %d OTA message(s); %d file(s) delivered",
			code, name, sum.Files, sum.Records, sum.Accepted, sum.Rejected, sum.Messages, sum.Delivered)
		if sum.PoRsIgnored > 0 {
			w.say("    %s %-14s %d PoR(s) did not verify: ignored, nothing changed", code, name, sum.PoRsIgnored)
		}
	}
	return sum, nil
}

// submitSMPP runs the party's SMPP submission: what is due goes to the
// simulated SMSC over SMPP; the receipts and the cards' PoRs come back on
// the same session until every message is settled (or a short wait for
// a card that does not answer).
func (w *world) submitSMPP(ctx context.Context, code string) error {
	p := w.parties[code]
	sum, err := p.rt.RunJob(ctx, "ota-submit", jobs.RunOptions{Manual: true, Owner: "demo", Wait: 2 * time.Second})
	if err != nil {
		return fmt.Errorf("%s job ota-submit: %w", code, err)
	}
	w.say("    %s %-14s %s", code, "ota-submit", strings.TrimPrefix(sum.String(), "job ota-submit: "))
	if sum.PoRsIgnored > 0 {
		w.say("    %s %-14s %d PoR(s) did not verify: ignored, nothing changed", code, "ota-submit", sum.PoRsIgnored)
	}
	return nil
}

// runSMSC plays the SMSC of an operator: every ota-batch in the party's
// SMSC outbox goes to the cards; the report lands in the party's inbox.
func (w *world) runSMSC(code string, sm *smsc.SMSC) (smsc.Stats, error) {
	var total smsc.Stats
	out := w.dropDir(code, "smsc", "outbox")
	entries, err := os.ReadDir(out)
	if err != nil {
		return total, err
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].Name() < entries[j].Name() })
	for _, e := range entries {
		if e.IsDir() || strings.HasSuffix(e.Name(), ".part") {
			continue
		}
		data, err := os.ReadFile(filepath.Join(out, e.Name()))
		if err != nil {
			return total, err
		}
		w.smscSeq[code]++
		var rep bytes.Buffer
		st, err := sm.Process(bytes.NewReader(data), &rep, smsc.Report{Sender: "SMSC", Receiver: code, Sequence: w.smscSeq[code]})
		if err != nil {
			return total, err
		}
		h := &native.Header{Format: native.OTAReport.Name, Sender: "SMSC", Receiver: code, BusinessDate: w.clock(), Sequence: w.smscSeq[code]}
		inbox := w.dropDir(code, "smsc", "inbox")
		name := native.NameOf(h, "txt", false).String()
		if err := os.WriteFile(filepath.Join(inbox, name+".part"), rep.Bytes(), 0o600); err != nil {
			return total, err
		}
		if err := os.Rename(filepath.Join(inbox, name+".part"), filepath.Join(inbox, name)); err != nil {
			return total, err
		}
		done := filepath.Join(w.dropDir(code, "smsc", "outbox"), "..", "smsc-done")
		os.MkdirAll(done, 0o700)
		if err := os.Rename(filepath.Join(out, e.Name()), filepath.Join(done, e.Name())); err != nil {
			return total, err
		}
		w.say("    SMSC of %s: %d message(s), %d PoR(s), %d delivered without answer, %d expired", code, st.Messages, st.PoRs, st.Unknown, st.Expired)
		total.Messages += st.Messages
		total.PoRs += st.PoRs
	}
	return total, nil
}
