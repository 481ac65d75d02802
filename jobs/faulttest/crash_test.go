package faulttest

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"

	"resub/jobs"
	"resub/jobs/config"
	"resub/processor/failpoint"
	"resub/samples/demo"
	"resub/samples/smsc"
)

// crashCards is the fleet size of the crash tests: enough for several
// records per file, small enough for dozens of child runs.
const crashCards = 20

// fileCheck names one kind of file a step reads or writes and where.
type fileCheck struct {
	label            string
	dir              string // folder, relative to the stage
	typ              string // native type in the name
	sender, receiver string // for decrypting
}

// crashCase is a staged step and what to compare after it ran.
type crashCase struct {
	name  string // the subtest's name when until does not tell it
	until string
	// tamper flips a byte of the input: the step refuses it, quarantines
	// it and answers the partner with a refusal.
	tamper bool
	party  string // its data folder is lower case
	input  fileCheck
	inbox  string
	archiv string
	quar   string
	outs   []fileCheck
	points []string
	// ota feeds the delivered OTA batches to fresh simulated cards.
	ota string
	// ledger queries whose result rows must equal the uninterrupted run's.
	ledger []string
	// sweep is MNOA's handover sweep, crashed from a copy of the same
	// world taken just before it ran (AtHandover only).
	sweep *crashCase
}

func crashCases() []crashCase {
	fileSteps := []string{
		failpoint.WorkBeforeCommit, failpoint.AfterCommit, failpoint.MidRender, failpoint.AfterRender,
		failpoint.MidUpload, failpoint.AfterUpload, failpoint.AfterDelivered, failpoint.BeforeComplete, failpoint.BeforeArchive, failpoint.AfterArchive,
	}
	two := append(append([]string{}, fileSteps...), failpoint.MidRender+"@2", failpoint.AfterRender+"@2", failpoint.MidUpload+"@2", failpoint.AfterUpload+"@2")
	common := []string{
		`SELECT direction, type, status, COUNT(*) FROM files GROUP BY direction, type, status ORDER BY 1, 2, 3`,
		`SELECT type, partner, state, COUNT(*) FROM outputs GROUP BY type, partner, state ORDER BY 1, 2, 3`,
		`SELECT kind, status, records, accepted, rejected FROM batches ORDER BY id`,
	}
	return []crashCase{
		{
			until: demo.AtSwitchRequest, party: "MNOB",
			input: fileCheck{typ: "switch-request"}, inbox: "mnob/drops/m2m/inbox", archiv: "mnob/drops/m2m/archive", quar: "mnob/drops/m2m/quarantine",
			outs: []fileCheck{
				{label: "imsi-list to A", dir: "exchange/MNOB-to-MNOA", typ: "imsi-list", sender: "MNOB", receiver: "MNOA"},
			},
			points: fileSteps,
			ledger: append([]string{
				`SELECT iccid, imsi, state, cutover, request_ref FROM cards ORDER BY iccid`,
				`SELECT imsi, iccid, state, ref FROM imsi_allocations ORDER BY imsi`,
				`SELECT range_name, next FROM alloc_cursors ORDER BY 1`,
				`SELECT line, iccid, imsi, status, reason, partner, data FROM batch_records ORDER BY batch_id, line`,
			}, common...),
		},
		{
			until: demo.AtIMSIList, party: "MNOA",
			input: fileCheck{typ: "imsi-list"}, inbox: "exchange/MNOB-to-MNOA", archiv: "exchange/archive/MNOA/MNOB", quar: "exchange/quarantine/MNOA/MNOB",
			outs: []fileCheck{
				{label: "imsi-result to B", dir: "exchange/MNOA-to-MNOB", typ: "imsi-result", sender: "MNOA", receiver: "MNOB"},
				{label: "ota-batch to the SMSC", dir: "mnoa/drops/smsc/outbox", typ: "ota-batch"},
			},
			points: two,
			ota:    "mnoa/drops/smsc/outbox",
			ledger: append([]string{
				`SELECT iccid, kvn, counter, state FROM ota_messages ORDER BY iccid, counter`,
				`SELECT state, COUNT(*) FROM cards GROUP BY state ORDER BY 1`,
				`SELECT iccid, COUNT(*) FROM ota_messages GROUP BY iccid, kvn, counter HAVING COUNT(*) > 1`,
			}, common...),
		},
		{
			name: "refused-imsi-list", until: demo.AtIMSIList, party: "MNOA", tamper: true,
			input: fileCheck{typ: "imsi-list"}, inbox: "exchange/MNOB-to-MNOA", archiv: "exchange/archive/MNOA/MNOB", quar: "exchange/quarantine/MNOA/MNOB",
			outs: []fileCheck{
				{label: "refusal to B", dir: "exchange/MNOA-to-MNOB", typ: "imsi-result", sender: "MNOA", receiver: "MNOB"},
			},
			points: []string{failpoint.RefusalAfterCommit, failpoint.MidRender, failpoint.AfterRender,
				failpoint.MidUpload, failpoint.AfterUpload, failpoint.AfterDelivered, failpoint.BeforeQuarantine},
			ledger: append([]string{`SELECT COUNT(*) FROM ota_messages`, `SELECT state, COUNT(*) FROM cards GROUP BY state ORDER BY 1`}, common...),
		},
		{
			until: demo.AtHandover, party: "MNOB",
			input: fileCheck{typ: "handover"}, inbox: "exchange/MNOA-to-MNOB", archiv: "exchange/archive/MNOB/MNOA", quar: "exchange/quarantine/MNOB/MNOA",
			outs: []fileCheck{
				{label: "handover-ack to A", dir: "exchange/MNOB-to-MNOA", typ: "handover-ack", sender: "MNOB", receiver: "MNOA"},
				{label: "provisioning to the HLR", dir: "mnob/drops/hlr/outbox", typ: "provisioning"},
			},
			points: append(append([]string{}, fileSteps...), failpoint.AfterRender+"@2", failpoint.MidUpload+"@2"),
			ledger: append([]string{`SELECT iccid, imsi, state FROM cards ORDER BY iccid`}, common...),
			sweep: &crashCase{
				party: "MNOA",
				outs: []fileCheck{
					{label: "handover to B", dir: "exchange/MNOA-to-MNOB", typ: "handover", sender: "MNOA", receiver: "MNOB"},
				},
				points: []string{failpoint.SweepBeforeCommit, failpoint.SweepAfterCommit, failpoint.MidRender, failpoint.AfterRender,
					failpoint.MidUpload, failpoint.AfterUpload, failpoint.AfterDelivered},
				ledger: append([]string{`SELECT iccid, state FROM cards ORDER BY iccid`, `SELECT COUNT(*) FROM card_secrets`}, common...),
			},
		},
		{
			until: demo.AtKeyRequest, party: "MFR",
			input: fileCheck{typ: "key-request"}, inbox: "exchange/MNOB-to-MFR", archiv: "exchange/archive/MFR/MNOB", quar: "exchange/quarantine/MFR/MNOB",
			outs: []fileCheck{
				{label: "key-response to B", dir: "exchange/MFR-to-MNOB", typ: "key-response", sender: "MFR", receiver: "MNOB"},
			},
			points: fileSteps,
			ledger: append([]string{`SELECT * FROM mf_requests ORDER BY 1`}, common...),
		},
		{
			until: demo.AtKeyResponse, party: "MNOB",
			input: fileCheck{typ: "key-response"}, inbox: "exchange/MFR-to-MNOB", archiv: "exchange/archive/MNOB/MFR", quar: "exchange/quarantine/MNOB/MFR",
			// The provisioning first: the drop to A also holds the
			// (empty) acknowledgement of the handover before.
			outs: []fileCheck{
				{label: "provisioning to the HLR", dir: "mnob/drops/hlr/outbox", typ: "provisioning"},
				{label: "handover-ack to A", dir: "exchange/MNOB-to-MNOA", typ: "handover-ack", sender: "MNOB", receiver: "MNOA"},
			},
			points: append(append([]string{}, fileSteps...), failpoint.AfterRender+"@2", failpoint.MidUpload+"@2"),
			ledger: append([]string{`SELECT iccid, imsi, state, key_index FROM cards ORDER BY iccid`,
				`SELECT iccid, name, key_index FROM card_secrets ORDER BY 1, 2, 3`, `SELECT * FROM key_sets ORDER BY 1, 2, 3`}, common...),
		},
	}
}

// TestCrashAnywhere kills a step at every failpoint, reruns it, and
// compares everything it left with an uninterrupted run from the same
// starting state: every output once and with the same records (so every
// card once in the OTA batch, with the same counter), the input archived
// once, nothing quarantined, the ledger's rows the same.
func TestCrashAnywhere(t *testing.T) {
	resub := resubBinary(t)
	for _, c := range crashCases() {
		name := c.until
		if c.name != "" {
			name = c.name
		}
		t.Run(name, func(t *testing.T) {
			if testing.Short() && c.until != demo.AtIMSIList {
				t.Skip("-short: MNOA's step only")
			}
			ctx := context.Background()
			var st *demo.Stage
			worldDir := t.TempDir()
			sweepSnap := filepath.Join(t.TempDir(), "sweep-snapshot")
			if c.until == demo.AtIMSIList {
				st = imsiListStage(t)
			} else {
				var err error
				st, err = demo.NewStage(ctx, demo.StageOptions{Dir: filepath.Join(worldDir, "world"), Cards: crashCards, Until: c.until, Run: stageRunner(t),
					Pause: func(party, job string) error {
						if party == "MNOA" && job == "handover" {
							return copyTree(filepath.Join(worldDir, "world"), sweepSnap)
						}
						return nil
					}})
				if err != nil {
					t.Fatal(err)
				}
				defer st.Close()
			}
			if c.tamper {
				tamperInput(t, filepath.Join(st.Dir(), c.inbox), c.input.typ)
			}
			snap := filepath.Join(t.TempDir(), "snapshot")
			if err := copyTree(st.Dir(), snap); err != nil {
				t.Fatal(err)
			}
			party, job := st.Job()
			crashPoints(t, resub, st, snap, party, job, c)
			if c.sweep != nil {
				t.Run("a-handover-sweep", func(t *testing.T) {
					crashPoints(t, resub, st, sweepSnap, "MNOA", "handover", *c.sweep)
				})
			}
		})
	}
}

// crashPoints runs job from snap uninterrupted, then killed at each of
// c's points and rerun, and compares.
func crashPoints(t *testing.T, resub string, st *demo.Stage, snap, party, job string, c crashCase) {
	t.Helper()
	work := st.Dir()
	run := func(fp string) (killed bool, out string) {
		t.Helper()
		cmd := exec.Command(resub, "run", "--once", "--job", job, "--config", st.Config(party))
		cmd.Env = append(append(os.Environ(), st.Env()...), failpoint.Env+"="+fp)
		var buf bytes.Buffer
		cmd.Stdout, cmd.Stderr = &buf, &buf
		err := cmd.Run()
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL {
				return true, buf.String()
			}
			if c.tamper && ee.ExitCode() == 1 {
				return false, buf.String() // exit 1: the input was refused, as it must be
			}
		}
		if err != nil {
			t.Fatalf("resub run (failpoint %q): %v\n%s", fp, err, buf.String())
		}
		return false, buf.String()
	}

	if err := restoreTree(snap, work); err != nil {
		t.Fatal(err)
	}
	if killed, out := run(""); killed {
		t.Fatalf("killed without a failpoint:\n%s", out)
	}
	want := observe(t, st, c)
	if len(want.Files[c.outs[0].label]) != 1 {
		t.Fatalf("the uninterrupted run wrote %d %s", len(want.Files[c.outs[0].label]), c.outs[0].label)
	}

	for _, fp := range c.points {
		t.Run(fp, func(t *testing.T) {
			if err := restoreTree(snap, work); err != nil {
				t.Fatal(err)
			}
			killed, out := run(fp)
			if !killed {
				t.Fatalf("failpoint %s was never reached:\n%s", fp, out)
			}
			if killed, out := run(""); killed {
				t.Fatalf("rerun killed:\n%s", out)
			}
			got := observe(t, st, c)
			compareOutcome(t, got, want, c.tamper)
		})
	}
}

// outcome is everything a step left that must not depend on a crash.
type outcome struct {
	Files    map[string][][]string // label -> per file, its record lines
	Leftover []string              // temporary files anywhere in the drops
	Archived int
	Inbox    int
	Quar     []string
	Cards    []string // per card: messages received, IMSI, counter
	Ledger   map[string][]string
}

func compareOutcome(t *testing.T, got, want outcome, refused bool) {
	t.Helper()
	switch {
	case refused:
		// Quarantined once (the same files as the uninterrupted run),
		// never archived.
		if got.Archived != 0 || got.Inbox != 0 {
			t.Errorf("refused input archived %d times, %d left in the inbox; want 0 and 0", got.Archived, got.Inbox)
		}
		if len(want.Quar) == 0 || !reflect.DeepEqual(got.Quar, want.Quar) {
			t.Errorf("quarantined %v, want %v", got.Quar, want.Quar)
		}
	default:
		if got.Archived != 1 || got.Inbox != 0 {
			t.Errorf("input archived %d times, %d left in the inbox; want 1 and 0", got.Archived, got.Inbox)
		}
		if len(got.Quar) != 0 {
			t.Errorf("quarantined: %v", got.Quar)
		}
	}
	if len(got.Leftover) != 0 {
		t.Errorf("temporary files left: %v", got.Leftover)
	}
	for label, files := range want.Files {
		if len(got.Files[label]) != len(files) {
			t.Errorf("%s: %d files, want %d", label, len(got.Files[label]), len(files))
			continue
		}
		if !reflect.DeepEqual(got.Files[label], files) {
			t.Errorf("%s differs from the uninterrupted run:\n got %q\nwant %q", label, got.Files[label], files)
		}
	}
	if !reflect.DeepEqual(got.Cards, want.Cards) {
		t.Errorf("cards after the OTA batches:\n got %q\nwant %q", got.Cards, want.Cards)
	}
	for q, rows := range want.Ledger {
		if !reflect.DeepEqual(got.Ledger[q], rows) {
			t.Errorf("ledger %s:\n got %q\nwant %q", q, got.Ledger[q], rows)
		}
	}
}

func observe(t *testing.T, st *demo.Stage, c crashCase) outcome {
	t.Helper()
	dir := st.Dir()
	o := outcome{Files: map[string][][]string{}, Ledger: map[string][]string{}}
	count := func(rel, typ string) int {
		names, err := demo.Files(filepath.Join(dir, rel))
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			t.Fatal(err)
		}
		n := 0
		for _, name := range names {
			if strings.Contains(name, "_"+typ+"_") {
				n++
			}
		}
		return n
	}
	o.Archived = 1 // a sweep reads no file
	if c.input.typ != "" {
		o.Archived = count(c.archiv, c.input.typ)
		o.Inbox = count(c.inbox, c.input.typ)
	}
	for _, q := range []string{c.quar, filepath.Join(strings.ToLower(c.party), "data", "quarantine")} {
		if q == "" {
			continue
		}
		names, _ := demo.Files(filepath.Join(dir, q))
		o.Quar = append(o.Quar, names...)
	}
	filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && (strings.HasSuffix(path, ".part") || strings.HasSuffix(path, ".tmp")) {
			o.Leftover = append(o.Leftover, path)
		}
		return nil
	})
	var batches [][]byte
	for _, fc := range c.outs {
		names, err := demo.Files(filepath.Join(dir, fc.dir))
		if err != nil {
			t.Fatal(err)
		}
		for _, name := range names {
			if !strings.Contains(name, "_"+fc.typ+"_") {
				continue
			}
			rc, err := st.Open(filepath.Join(dir, fc.dir, name), fc.sender, fc.receiver)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			data, err := io.ReadAll(rc)
			rc.Close()
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			if fc.dir == c.ota {
				batches = append(batches, data)
			}
			o.Files[fc.label] = append(o.Files[fc.label], append([]string{name}, records(data)...))
		}
	}
	if c.ota != "" {
		o.Cards = feedCards(t, st, batches)
	}
	o.Ledger = queryLedger(t, st, c.party, c.ledger)
	return o
}

// records are a native file's lines without its header block (which
// holds the creation time).
func records(data []byte) []string {
	var out []string
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		if l := sc.Text(); !strings.HasPrefix(l, "#") {
			out = append(out, l)
		}
	}
	return out
}

// feedCards delivers the OTA batches to the staged fleet's simulated
// cards in their factory state; each card checks the secured packet
// (keys, counter above its last one) before it changes its IMSI.
func feedCards(t *testing.T, st *demo.Stage, batches [][]byte) []string {
	t.Helper()
	cards, err := st.Cards()
	if err != nil {
		t.Fatal(err)
	}
	sm := smsc.New()
	for _, c := range cards {
		sm.Register(c.MSISDN, c.SIM)
	}
	total := 0
	for i, b := range batches {
		var rep bytes.Buffer
		s, err := sm.Process(bytes.NewReader(b), &rep, smsc.Report{Sender: "SMSC", Receiver: "MNOA", Sequence: i + 1})
		if err != nil {
			t.Fatal(err)
		}
		if s.PoRs != s.Messages {
			t.Errorf("batch %d: %d messages, %d PoRs", i, s.Messages, s.PoRs)
		}
		total += s.Messages
	}
	var out []string
	moved := 0
	for _, c := range cards {
		ctr, _ := c.SIM.Counter(c.KVN)
		n := c.SIM.Received()
		if n > 1 {
			t.Errorf("card %s received %d messages", c.ICCID, n)
		}
		if n == 1 {
			moved++
			if c.SIM.IMSI() == c.IMSI {
				t.Errorf("card %s got its message but kept IMSI %s", c.ICCID, c.IMSI)
			}
		}
		out = append(out, fmt.Sprintf("%s received=%d imsi=%s counter=%d", c.ICCID, n, c.SIM.IMSI(), ctr))
	}
	if moved != total || moved == 0 {
		t.Errorf("%d messages in the batches, %d cards changed", total, moved)
	}
	return out
}

func queryLedger(t *testing.T, st *demo.Stage, party string, queries []string) map[string][]string {
	t.Helper()
	ctx := context.Background()
	cfg, err := config.Load(st.Config(party))
	if err != nil {
		t.Fatal(err)
	}
	db, err := jobs.OpenLedger(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	out := map[string][]string{}
	for _, q := range queries {
		rows, err := db.Query(ctx, q)
		if err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		cols, _ := rows.Columns()
		for rows.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				t.Fatal(err)
			}
			var parts []string
			for i, v := range vals {
				if strings.HasSuffix(cols[i], "_at") || cols[i] == "id" {
					continue // times and ids may differ
				}
				if b, ok := v.([]byte); ok {
					v = string(b)
				}
				parts = append(parts, fmt.Sprint(v))
			}
			out[q] = append(out[q], strings.Join(parts, "|"))
		}
		rows.Close()
	}
	return out
}

// copyTree copies a folder with its files' modes and times.
func copyTree(from, to string) error {
	return filepath.WalkDir(from, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(from, path)
		if err != nil {
			return err
		}
		dst := filepath.Join(to, rel)
		info, err := d.Info()
		if err != nil {
			return err
		}
		if d.IsDir() {
			return os.MkdirAll(dst, info.Mode().Perm()|0o700)
		}
		if !info.Mode().IsRegular() {
			return nil
		}
		in, err := os.Open(path)
		if err != nil {
			return err
		}
		defer in.Close()
		out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, info.Mode().Perm())
		if err != nil {
			return err
		}
		if _, err := io.Copy(out, in); err != nil {
			out.Close()
			return err
		}
		if err := out.Close(); err != nil {
			return err
		}
		return os.Chtimes(dst, info.ModTime(), info.ModTime())
	})
}

// restoreTree puts a folder back as the snapshot has it.
func restoreTree(snap, dir string) error {
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	return copyTree(snap, dir)
}

// tamperInput flips one byte in the middle of the input of type typ in
// dir: the file no longer verifies.
func tamperInput(t *testing.T, dir, typ string) {
	t.Helper()
	names, err := demo.Files(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range names {
		if !strings.Contains(name, "_"+typ+"_") {
			continue
		}
		path := filepath.Join(dir, name)
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		data[len(data)/2] ^= 0x01
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return
	}
	t.Fatalf("no %s input in %s", typ, dir)
}
