package bench

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"resub/jobs"
	"resub/jobs/config"
	"resub/processor/failpoint"
	"resub/processor/ledger"
	"resub/samples/smsc"
)

// TestSMPPCrashBetweenSendAndRecord kills resub (SIGKILL, a failpoints
// build) right after it wrote submit_sm and before it recorded their
// responses, then runs it again: what may have reached the SMSC is never
// submitted again under the same counter (the simulated SMSC counts every
// user data it got), it waits as unknown for its deadline, and everything
// else is submitted and confirmed. Then the CLI's exit codes: 3 with the
// SMSC gone, 2 when it refuses the bind.
func TestSMPPCrashBetweenSendAndRecord(t *testing.T) {
	if testing.Short() {
		t.Skip("builds resub with failpoints")
	}
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command to build the failpoints binary")
	}
	bin := filepath.Join(t.TempDir(), "resub")
	if out, err := exec.Command(gobin, "build", "-tags", "failpoints", "-o", bin, "resub/cmd/resub").CombinedOutput(); err != nil {
		t.Fatalf("go build -tags failpoints: %v\n%s", err, out)
	}
	const n = 8
	w, srv := smppWorld(t, n, 2, false)
	cfg := filepath.Join(w.partyDir(codeA), "resub.yaml")
	w.Close() // the binary has the ledger to itself

	run := func(fp string, args ...string) error {
		cmd := exec.Command(bin, append([]string{"--log-format", "json", "run", "--config", cfg, "--once", "--job", "ota-submit"}, args...)...)
		cmd.Env = append(os.Environ(), failpoint.Env+"="+fp)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Logf("resub %s: %v\n%s", fp, err, out)
		}
		return err
	}
	err = run(failpoint.SMPPAfterSend+"@2", "--wait", "20s")
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != -1 || !strings.Contains(ee.String(), "killed") {
		t.Fatalf("the run was not killed at the failpoint: %v", err)
	}
	before := srv.Seen()
	if len(before) == 0 {
		t.Fatal("nothing reached the SMSC before the crash")
	}
	if err := run("", "--wait", "8s"); err != nil {
		t.Fatalf("rerun: %v", err)
	}
	for ud, k := range srv.Seen() {
		if k != 1 {
			t.Errorf("user data %s… submitted %d times", ud[:32], k)
		}
	}
	// The SMSC goes away while a message still awaits its PoR: the run
	// cannot bind and says so with exit code 3 (try again later).
	srv.Close()
	err = run("")
	if !errors.As(err, &ee) || ee.ExitCode() != 3 {
		t.Errorf("SMSC down: %v, want exit code 3", err)
	}
	// An SMSC that refuses our password: exit code 2, with its status.
	other, err := smsc.New().ServeSMPPAt(fmt.Sprintf("127.0.0.1:%d", srv.Port()), "resub-bench", "not-ours")
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	cmd := exec.Command(bin, "run", "--config", cfg, "--once", "--job", "ota-submit")
	out, err := cmd.CombinedOutput()
	if !errors.As(err, &ee) || ee.ExitCode() != 2 || !strings.Contains(string(out), "ESME_RINVPASWD") || strings.Contains(string(out), "bench-pw") {
		t.Errorf("bind refused: %v, want exit code 2 naming ESME_RINVPASWD (and never the password)\n%s", err, out)
	}
	// Reopen the ledger: every card is confirmed, or its message (sent
	// before the crash, its response never recorded) waits as unknown.
	w2, err := reopenA(w)
	if err != nil {
		t.Fatal(err)
	}
	defer w2.Close()
	ctx := context.Background()
	counts, err := w2.a.Ledger.CountByState(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// The SMSC stores the PoRs it could not hand over when the process
	// died and forwards them when the rerun binds: a message whose
	// submission outcome is unknown may still be confirmed by its PoR.
	var unknown, awaiting, sent int
	w2.a.Ledger.QueryRow(ctx, `SELECT COUNT(*) FROM smpp_messages WHERE state = ?`, ledger.SubUnknown).Scan(&unknown)
	w2.a.Ledger.QueryRow(ctx, `SELECT COUNT(*) FROM smpp_messages s JOIN ota_messages o ON o.id = s.message_id WHERE s.state = ? AND o.state = 'sent'`, ledger.SubUnknown).Scan(&awaiting)
	w2.a.Ledger.QueryRow(ctx, `SELECT COUNT(*) FROM ota_messages WHERE state = 'sent'`).Scan(&sent)
	if unknown == 0 || counts[ledger.CardConfirmed]+awaiting != n || sent != awaiting {
		t.Errorf("after the crash and the rerun: cards %v, %d unknown submissions (%d awaiting their PoR), %d messages awaiting their PoR", counts, unknown, awaiting, sent)
	}
}

// reopenA opens A's runtime again from its configuration.
func reopenA(w *World) (*World, error) {
	cfg, err := config.Load(filepath.Join(w.partyDir(codeA), "resub.yaml"))
	if err != nil {
		return nil, err
	}
	rt, err := jobs.Open(context.Background(), cfg, jobs.Options{Log: w.log, Now: w.now})
	if err != nil {
		return nil, err
	}
	return &World{a: rt, dir: w.dir, n: w.n, log: w.log, now: w.now}, nil
}
