package faulttest

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"resub/formats/native"
	"resub/jobs"
	"resub/jobs/config"
	"resub/samples/demo"
	"resub/samples/fleet"
)

// heapBound is the generous bound on the heap in use while a hostile or
// huge input is processed (a memory bound, not a timing assertion).
const heapBound = 200 << 20

// rssBound bounds a child run's peak resident memory: the fleet issue's
// goal (256 MB). It counts what the Go heap does not: SQLite's own
// memory, the runtime, the binary.
const rssBound = 256 << 20

// heapPeak samples the heap in use until stop is called.
func heapPeak() (stop func() uint64) {
	var peak uint64
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		var ms runtime.MemStats
		for {
			runtime.ReadMemStats(&ms)
			peak = max(peak, ms.HeapInuse)
			select {
			case <-done:
				return
			case <-tick.C:
			}
		}
	}()
	return func() uint64 {
		close(done)
		wg.Wait()
		return peak
	}
}

// openParty opens a staged party's runtime, with its configuration edited.
func openParty(t *testing.T, st *demo.Stage, party string, edit func(cfg map[string]any)) *jobs.Runtime {
	t.Helper()
	path := st.Config(party)
	if edit != nil {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		var cfg map[string]any
		if err := yaml.Unmarshal(data, &cfg); err != nil {
			t.Fatal(err)
		}
		edit(cfg)
		out, err := yaml.Marshal(cfg)
		if err != nil {
			t.Fatal(err)
		}
		path = filepath.Join(filepath.Dir(path), "resub-edited.yaml")
		if err := os.WriteFile(path, out, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	rt, err := jobs.Open(context.Background(), cfg, jobs.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rt.Close() })
	return rt
}

func schemaFields(s *native.Schema) []string {
	out := make([]string, len(s.Fields))
	for i, f := range s.Fields {
		out[i] = f.Name
	}
	return out
}

// TestOneBadRecordAmongMany: a switch request of 100,000 records with one
// bad ICCID: MNOB (`resub run --once` in a child process) rejects that
// record only and sends MNOA the list of all the others, its peak
// resident memory bounded (the kernel's own accounting of the child).
func TestOneBadRecordAmongMany(t *testing.T) {
	resub := resubBinary(t)
	n := 100_000
	if testing.Short() {
		n = 10_000
	}
	ctx := context.Background()
	st := imsiListStage(t)
	f, err := fleet.New(fleet.Options{N: n, ICCIDBody: "8999903", IMSIBase: "001010001000001", MSISDNBase: "999200000001", Seed: "bad-record"})
	if err != nil {
		t.Fatal(err)
	}
	bad := n / 2
	badICCID := f.Cards[bad].ICCID[:len(f.Cards[bad].ICCID)-1] + string("0123456789"[(f.Cards[bad].ICCID[len(f.Cards[bad].ICCID)-1]-'0'+1)%10])
	now := time.Now().UTC()
	h := &native.Header{Format: native.SwitchRequest.Name, Version: native.SwitchRequest.Version, Sender: "M2M", Receiver: "MNOB",
		BusinessDate: time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, time.UTC), Sequence: 2, Created: now.Truncate(time.Second),
		Batch: "M2M-BIG", Quantity: n}
	name := native.NameOf(h, "txt", true).String()
	inbox := st.DropDir("MNOB", "m2m", "inbox")
	out, err := os.Create(filepath.Join(inbox, name+".part"))
	if err != nil {
		t.Fatal(err)
	}
	seal, err := st.Seal(out, "M2M", "MNOB", false)
	if err != nil {
		t.Fatal(err)
	}
	bw := bufio.NewWriterSize(seal, 64<<10)
	nw := native.NewWriter(bw, native.SwitchRequest)
	if err := nw.WriteHeader(h, schemaFields(native.SwitchRequest)); err != nil {
		t.Fatal(err)
	}
	i := 0
	err = fleet.SwitchRequestRecords(f.Cards, "MNOA", now.AddDate(0, 0, 1))(func(r *native.Record) error {
		if i == bad {
			r.Set(native.FieldICCID, badICCID)
		}
		i++
		return nw.Write(r)
	})
	for _, step := range []func() error{func() error { return err }, nw.Flush, bw.Flush, seal.Close, out.Close} {
		if err := step(); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Rename(filepath.Join(inbox, name+".part"), filepath.Join(inbox, name)); err != nil {
		t.Fatal(err)
	}
	f = nil

	cmd := exec.Command(resub, "run", "--once", "--job", "switch-request", "--config", st.Config("MNOB"))
	cmd.Env = append(os.Environ(), st.Env()...)
	if msg, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("run: %v\n%s", err, msg)
	}
	ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	if !ok {
		t.Fatal("no resource usage of the child")
	}
	peak := uint64(ru.Maxrss) << 10 // kilobytes on Linux
	t.Logf("peak resident memory of the run: %d MB", peak>>20)
	if peak > rssBound {
		t.Errorf("peak resident memory %d MB", peak>>20)
	}
	rt := openParty(t, st, "MNOB", nil)
	var records, accepted, rejected int
	if err := rt.Ledger.QueryRow(ctx, `SELECT records, accepted, rejected FROM batches WHERE kind = 'switch-request' ORDER BY id DESC LIMIT 1`).Scan(&records, &accepted, &rejected); err != nil {
		t.Fatal(err)
	}
	if records != n || accepted != n-1 || rejected != 1 {
		t.Errorf("records %d accepted %d rejected %d; want %d, %d, 1", records, accepted, rejected, n, n-1)
	}
	var iccid, reason string
	if err := rt.Ledger.QueryRow(ctx, `SELECT iccid, reason FROM batch_records WHERE status = 'rejected'`).Scan(&iccid, &reason); err != nil {
		t.Fatal(err)
	}
	if iccid != badICCID || reason == "" {
		t.Errorf("rejected record: %s %q; want %s with a reason", iccid, reason, badICCID)
	}
	t.Logf("rejected %s: %s", iccid, reason)
	// The list to MNOA holds every other card, and not the bad one.
	names, err := demo.Files(st.Exchange("MNOB-to-MNOA"))
	if err != nil {
		t.Fatal(err)
	}
	var list string
	for _, nm := range names {
		if strings.Contains(nm, "_imsi-list_") && !strings.HasSuffix(nm, "000001.txt.pgp") {
			list = nm
		}
	}
	if list == "" {
		t.Fatalf("no new imsi-list to MNOA in %v", names)
	}
	rc, err := st.Open(st.Exchange("MNOB-to-MNOA", list), "MNOB", "MNOA")
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	recs, found := 0, false
	sc := bufio.NewScanner(rc)
	for sc.Scan() {
		l := sc.Text()
		if strings.HasPrefix(l, "#") || strings.HasPrefix(l, "iccid") {
			continue
		}
		recs++
		if strings.HasPrefix(l, badICCID) {
			found = true
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if recs != n-1 || found {
		t.Errorf("imsi-list to MNOA: %d records (bad one listed: %v); want %d", recs, found, n-1)
	}
}

// TestHostileInputs: files that are not what they claim, each in MNOA's
// drop as an imsi-list from MNOB: each is refused with its own reason,
// quarantined on the drop and in our own store, and answered to MNOB
// with a refusal, with the heap bounded all along.
func TestHostileInputs(t *testing.T) {
	ctx := context.Background()
	st := imsiListStage(t)
	inbox := st.Exchange("MNOB-to-MNOA")
	names, err := demo.Files(inbox)
	if err != nil || len(names) != 1 {
		t.Fatalf("staged inbox: %v %v", names, err)
	}
	good, err := os.ReadFile(filepath.Join(inbox, names[0]))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(inbox, names[0])); err != nil {
		t.Fatal(err)
	}
	// Inputs of up to maxFile plaintext; the bomb inflates far beyond
	// it, the line far beyond the reader's line limit (64 KiB). Under the
	// race detector (tenfold slower) the sizes shrink, not the ratios.
	maxFile, lineLen, bomb := 128<<20, 96<<20, 512<<20
	if testing.Short() || raceEnabled {
		maxFile, lineLen, bomb = 16<<20, 12<<20, 64<<20
	}
	const maxRecords = 1000
	rt := openParty(t, st, "MNOA", func(cfg map[string]any) {
		cfg["limits"] = map[string]any{"max_file_bytes": maxFile, "max_records": maxRecords}
	})
	now := time.Now().UTC()
	seq := 1
	nameOf := func() string {
		seq++
		h := &native.Header{Format: "imsi-list", Sender: "MNOB", Receiver: "MNOA", BusinessDate: time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, time.UTC), Sequence: seq}
		return native.NameOf(h, "txt", true).String()
	}
	sealed := func(compress bool, body func(w io.Writer) error) []byte {
		var buf bytes.Buffer
		w, err := st.Seal(&buf, "MNOB", "MNOA", compress)
		if err != nil {
			t.Fatal(err)
		}
		if err := body(w); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		return buf.Bytes()
	}
	repeat := func(w io.Writer, b byte, n int) error {
		chunk := bytes.Repeat([]byte{b}, 1<<20)
		for n > 0 {
			k := min(n, len(chunk))
			if _, err := w.Write(chunk[:k]); err != nil {
				return err
			}
			n -= k
		}
		return nil
	}
	// A well-formed imsi-list of n records whose header says quantity
	// q, followed by blank empty lines.
	listFile := func(q, n, blank int) []byte {
		f, err := fleet.New(fleet.Options{N: max(n, 1), ICCIDBody: "8999904", IMSIBase: "999990002000001", Seed: "hostile-list"})
		if err != nil {
			t.Fatal(err)
		}
		return sealed(true, func(w io.Writer) error {
			bw := bufio.NewWriter(w)
			day := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, time.UTC)
			fmt.Fprintf(bw, "#format: imsi-list\n#version: 1\n#sender: MNOB\n#receiver: MNOA\n#business-date: %s\n#sequence: %d\n#created: %s\n#batch: B-HOSTILE-%d\n#quantity: %d\niccid|imsi|cutover-date\n",
				day.Format(time.DateOnly), seq, now.Truncate(time.Second).Format(time.RFC3339), seq, q)
			for _, c := range f.Cards[:n] {
				fmt.Fprintf(bw, "%s|%s|%s\n", c.ICCID, c.IMSI, day.AddDate(0, 0, 1).Format(time.DateOnly))
			}
			if err := repeat(bw, '\n', blank); err != nil {
				return err
			}
			return bw.Flush()
		})
	}
	cases := []struct {
		name string
		data func() []byte
		want string // in the reason
	}{
		{"not OpenPGP", func() []byte { return bytes.Repeat([]byte("iccid|imsi|date\n"), 1000) }, ""},
		{"truncated", func() []byte { return good[:len(good)/2] }, ""},
		{"compression bomb", func() []byte {
			return sealed(true, func(w io.Writer) error { return repeat(w, 0, bomb) })
		}, ""},
		{"line beyond the limit", func() []byte {
			return sealed(true, func(w io.Writer) error {
				if _, err := io.WriteString(w, "#format: imsi-list\n#version: 1\n#sender: MNOB\n#receiver: MNOA\n"); err != nil {
					return err
				}
				return repeat(w, 'A', lineLen)
			})
		}, ""},
		// Empty lines are not records, and more of them than
		// limits.max_record_errors (default 10,000) refuse the file
		// after that many: a 1 KB file is not a million answers.
		{"a million blank lines", func() []byte { return listFile(0, 0, 1_000_000) }, "too many records with problems: more than 10000 (the last at line 10011) (limits.max_record_errors)"},
		// One record more than limits.max_records: refused at the
		// header when it says so, at the record past the limit when
		// it lies.
		{"too many records", func() []byte { return listFile(maxRecords+1, maxRecords+1, 0) }, "quantity: too many records: the header announces 1001, at most 1000 are taken (limits.max_records)"},
		{"too many records, header lying", func() []byte { return listFile(maxRecords, maxRecords+1, 0) }, "too many records: more than 1000 (line 1011 is record 1001) (limits.max_records)"},
	}
	reasons := map[string]string{}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			name := nameOf()
			data := c.data()
			if err := os.WriteFile(filepath.Join(inbox, name), data, 0o600); err != nil {
				t.Fatal(err)
			}
			var answers int
			if err := rt.Ledger.QueryRow(ctx, `SELECT COUNT(*) FROM batch_records`).Scan(&answers); err != nil {
				t.Fatal(err)
			}
			data = nil
			runtime.GC()
			stop := heapPeak()
			sum, err := rt.RunJob(ctx, "imsi-list", jobs.RunOptions{Manual: true})
			peak := stop()
			var refused *jobs.RefusedError
			if !errors.As(err, &refused) {
				t.Fatalf("run: %v; want the input refused", err)
			}
			t.Logf("refused: %v (heap in use peak %d MB)", err, peak>>20)
			if peak > heapBound {
				t.Errorf("heap in use reached %d MB", peak>>20)
			}
			if sum.Quarantined != 1 {
				t.Errorf("summary: %s", sum)
			}
			var status, reason string
			if err := rt.Ledger.QueryRow(ctx, `SELECT status, reason FROM files WHERE name = ?`, name).Scan(&status, &reason); err != nil {
				t.Fatal(err)
			}
			if status != "quarantined" || reason == "" || !strings.Contains(reason, c.want) {
				t.Errorf("ledger: %s %q, want the reason to say %q", status, reason, c.want)
			}
			var after int
			if err := rt.Ledger.QueryRow(ctx, `SELECT COUNT(*) FROM batch_records`).Scan(&after); err != nil || after != answers {
				t.Errorf("records answered: %d, were %d (%v)", after, answers, err)
			}
			reasons[c.name] = reason
			if _, err := os.Stat(st.Exchange("quarantine", "MNOA", "MNOB", name)); err != nil {
				t.Errorf("not quarantined on the drop: %v", err)
			}
			if _, err := os.Stat(filepath.Join(inbox, name)); err == nil {
				t.Error("still in the inbox")
			}
			// The refusal to MNOB answers this file and says why.
			answered := false
			outs, _ := demo.Files(st.Exchange("MNOA-to-MNOB"))
			for _, o := range outs {
				rc, err := st.Open(st.Exchange("MNOA-to-MNOB", o), "MNOA", "MNOB")
				if err != nil {
					t.Fatal(err)
				}
				b, _ := io.ReadAll(rc)
				rc.Close()
				if bytes.Contains(b, []byte("#in-reply-to: "+name)) {
					answered = true
					if !bytes.Contains(b, []byte("#refused:")) {
						t.Errorf("answer %s does not say refused:\n%s", o, b)
					}
				}
			}
			if !answered {
				t.Errorf("no refusal answers %s", name)
			}
		})
	}
	// Each kind of damage has its own reason.
	seen := map[string]string{}
	for k, r := range reasons {
		if other, dup := seen[r]; dup {
			t.Errorf("%s and %s refused for the same reason %q", k, other, r)
		}
		seen[r] = k
	}
}
