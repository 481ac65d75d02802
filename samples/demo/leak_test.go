package demo

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"resub/samples/fleet"
)

// TestNoSecretLeaks runs the whole demo with the parties' logs captured as
// JSON and searches every log line, the story, every file the demo left
// under its folder (configurations, drops, the SFTP exchange, data, out,
// scratch, archive, quarantine, the SQLite ledgers with any -wal and -shm)
// and every file the run left in the temporary folder, for every secret of
// the input: each card's Ki, OPc, KIc, KID and KIK of every key index, the
// pair-2 key the leaking vendor file carries, and the master keys,
// transport keys and passphrases the configurations refer to. Each is
// searched as raw bytes, lower- and upper-case hex (also byte-spaced),
// base64 (standard, raw and URL alphabets, at any alignment inside a
// longer base64 value) and Go's %v of a byte slice.
//
// The search first has to find a planted copy in a file (straddling a
// read-buffer boundary) and in a log line; then nothing else may be found.
func TestNoSecretLeaks(t *testing.T) {
	if testing.Short() {
		t.Skip("the whole exchange, twice")
	}
	dir := t.TempDir()
	tmp := t.TempDir()
	// Every temporary file the run makes lands in tmp (os.TempDir).
	t.Setenv("TMPDIR", tmp)

	// The fleets are deterministic: a first run tells the cards' keys, so
	// that the tree can be searched while the second run goes on.
	pre, err := Run(context.Background(), Options{Dir: t.TempDir()})
	if err != nil || !pre.OK {
		t.Fatalf("demo: %v", err)
	}
	cards := cardSecrets(t, pre.Cards)

	// The SQLite -wal and -shm files and any scratch or temporary file
	// exist only while a party runs: after every job run (its "run
	// finished" log line) the whole tree is searched as it is then, and
	// the scratch and temporary folders also while each input is handled
	// (its "input verified", "input applied" or "input refused" line).
	var (
		logs, story         bytes.Buffer
		stamps              = map[string]stamp{}
		during              *leakScanner
		duringHits          []leakHit
		scans, wal, scratch int
	)
	json := slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug - 4})
	logger := slog.New(&afterRun{Handler: json, done: func(msg, job string) {
		if during == nil {
			// The configurations' secrets are in the environment by now.
			during = newLeakScanner(append(cards, envSecrets(t, demoEnv())...))
		}
		// A file unchanged since the last search is not searched again.
		only := func(path string, fi fs.FileInfo) bool {
			if msg != "run finished" && !strings.Contains(path, string(filepath.Separator)+"scratch"+string(filepath.Separator)) {
				return false
			}
			st := stamp{fi.Size(), fi.ModTime()}
			if stamps[path] == st {
				return false
			}
			stamps[path] = st
			return true
		}
		hits, st, err := scanTree(during, only, dir, tmp)
		if err != nil {
			t.Errorf("search after %q of job %s: %v", msg, job, err)
		}
		scans++
		wal += st.wal
		scratch += st.scratch
		for _, h := range hits {
			h.where += " (while the demo ran: " + msg + ", job " + job + ")"
			duringHits = append(duringHits, h)
		}
	}})
	res, err := Run(context.Background(), Options{Dir: dir, Out: &story, Log: logger})
	if err != nil {
		t.Fatalf("demo: %v\n%s", err, story.String())
	}
	if !res.OK {
		t.Fatalf("demo ended wrong: %v", res.Problems)
	}
	secrets := append(cardSecrets(t, res.Cards), envSecrets(t, res.secrets)...)
	sc := newLeakScanner(secrets)
	if during == nil || !slices.EqualFunc(during.needles, sc.needles, func(a, b needle) bool { return bytes.Equal(a.pat, b.pat) }) {
		t.Fatal("the secrets searched during the run are not the run's (fleets not deterministic?)")
	}
	t.Logf("searching %d secrets as %d patterns, %d log lines; %d searches during the run met %d -wal/-shm files and %d scratch files",
		len(secrets), len(sc.needles), bytes.Count(logs.Bytes(), []byte("\n")), scans, wal, scratch)
	if scans < 20 || wal == 0 || scratch == 0 {
		t.Fatalf("%d searches during the run met %d -wal/-shm files and %d scratch files", scans, wal, scratch)
	}
	if len(duringHits) > 0 {
		t.Errorf("secrets found in the clear while the demo ran:\n%s", hitList(dedupe(duringHits)))
	}

	// Plant card 0's Ki in a file, across a read-buffer boundary, and in
	// a log line, as a careless slog attribute would write it (base64).
	card := res.Cards[0]
	planted := filepath.Join(dir, "mnoa", "data", "scratch", "planted.bin")
	if err := os.MkdirAll(filepath.Dir(planted), 0o700); err != nil {
		t.Fatal(err)
	}
	junk := bytes.Repeat([]byte{0x5a}, leakChunk-7)
	if err := os.WriteFile(planted, append(append(junk, card.Ki(1)...), junk...), 0o600); err != nil {
		t.Fatal(err)
	}
	logLen := logs.Len()
	logger.Info("planted", "ki", card.Ki(1))

	hits := searchAll(t, sc, dir, tmp, logs.Bytes(), story.Bytes())
	wantLabel := "card " + card.ICCID + " Ki(1)"
	var inFile, inLog bool
	for _, h := range hits {
		if strings.HasPrefix(h.label, wantLabel+" as raw") && h.where == planted && h.offset == int64(len(junk)) {
			inFile = true
		}
		if strings.HasPrefix(h.label, wantLabel+" as base64") && strings.HasPrefix(h.where, "log line ") {
			inLog = true
		}
	}
	if !inFile || !inLog {
		t.Fatalf("the search misses the planted copies (file %v, log %v); it found:\n%s", inFile, inLog, hitList(hits))
	}

	// Without the plants nothing may be found.
	if err := os.Remove(planted); err != nil {
		t.Fatal(err)
	}
	logs.Truncate(logLen)
	if hits := searchAll(t, sc, dir, tmp, logs.Bytes(), story.Bytes()); len(hits) > 0 {
		t.Errorf("secrets found in the clear:\n%s", hitList(hits))
	}
}

// afterRun passes every log record on and calls done after each job run
// and each input handled.
type afterRun struct {
	slog.Handler
	done func(msg, job string)
}

func (h *afterRun) Handle(ctx context.Context, r slog.Record) error {
	err := h.Handler.Handle(ctx, r)
	switch r.Message {
	case "run finished", "input verified", "input applied", "input refused":
		job := ""
		r.Attrs(func(a slog.Attr) bool {
			if a.Key == "job" {
				job = a.Value.String()
			}
			return true
		})
		h.done(r.Message, job)
	}
	return err
}

func (h *afterRun) WithAttrs(as []slog.Attr) slog.Handler {
	return &afterRun{Handler: h.Handler.WithAttrs(as), done: h.done}
}

func (h *afterRun) WithGroup(name string) slog.Handler {
	return &afterRun{Handler: h.Handler.WithGroup(name), done: h.done}
}

// demoEnv returns the demo's secrets from the process environment.
func demoEnv() map[string]string {
	m := map[string]string{}
	for _, kv := range os.Environ() {
		if k, v, ok := strings.Cut(kv, "="); ok && strings.HasPrefix(k, "RESUB_DEMO_") {
			m[k] = v
		}
	}
	return m
}

// cardSecrets lists every key of every card, and the key the leaking
// vendor file carries.
func cardSecrets(t *testing.T, cards []*fleet.Card) []leakSecret {
	t.Helper()
	var out []leakSecret
	add := func(label string, b []byte) { out = append(out, mustSecret(t, label, b)) }
	if len(cards) < 12 {
		t.Fatalf("Result.Cards has %d cards", len(cards))
	}
	for _, c := range cards {
		add("card "+c.ICCID+" OPc", c.OPc)
		for i := range c.Pairs {
			n := i + 1
			ks := c.Keys(n)
			add(fmt.Sprintf("card %s Ki(%d)", c.ICCID, n), c.Ki(n))
			add(fmt.Sprintf("card %s KIc(%d)", c.ICCID, n), ks.KIc)
			add(fmt.Sprintf("card %s KID(%d)", c.ICCID, n), ks.KID)
			add(fmt.Sprintf("card %s KIK(%d)", c.ICCID, n), ks.KIK)
		}
	}
	leaked, _ := hex.DecodeString("00112233445566778899AABBCCDDEEFF") // see story3b
	add("the leaking vendor file's KI2", leaked)
	return out
}

// envSecrets lists the master keys, transport keys and passphrases the
// configurations refer to, held as hex text: both the bytes and the text.
func envSecrets(t *testing.T, env map[string]string) []leakSecret {
	t.Helper()
	if len(env) == 0 {
		t.Fatal("no configuration secrets")
	}
	var out []leakSecret
	for _, k := range slices.Sorted(maps.Keys(env)) {
		b, err := hex.DecodeString(env[k])
		if err != nil {
			t.Fatalf("%s is not hex", k)
		}
		out = append(out, mustSecret(t, k, b), mustSecret(t, k+" text", []byte(env[k])))
	}
	return out
}

func mustSecret(t *testing.T, label string, b []byte) leakSecret {
	if len(b) < 8 {
		t.Fatalf("%s: %d bytes is too short to search for", label, len(b))
	}
	return leakSecret{label, bytes.Clone(b)}
}

func hitList(hits []leakHit) string {
	var b strings.Builder
	for _, h := range hits {
		fmt.Fprintf(&b, "  %s at byte %d: %s\n", h.where, h.offset, h.label)
	}
	return b.String()
}

type treeStats struct{ files, ledgers, wal, scratch int }

// stamp tells whether a file changed.
type stamp struct {
	size int64
	mod  time.Time
}

// scanTree searches every regular file under the roots (those only
// accepts, if not nil). Files that vanish while it runs are skipped.
func scanTree(sc *leakScanner, only func(path string, fi fs.FileInfo) bool, roots ...string) ([]leakHit, treeStats, error) {
	var hits []leakHit
	var st treeStats
	for _, root := range roots {
		err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			if err != nil {
				return err
			}
			if !d.Type().IsRegular() {
				return nil
			}
			f, err := os.Open(path)
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			if err != nil {
				return err
			}
			defer f.Close()
			if only != nil {
				fi, err := f.Stat()
				if err != nil {
					return err
				}
				if !only(path, fi) {
					return nil
				}
			}
			st.files++
			switch {
			case strings.HasSuffix(path, "-wal"), strings.HasSuffix(path, "-shm"):
				st.wal++
			case strings.HasSuffix(path, ".db"):
				st.ledgers++
			case strings.Contains(path, string(filepath.Separator)+"scratch"+string(filepath.Separator)):
				st.scratch++
			}
			return sc.scan(f, func(off int64, label string) {
				hits = append(hits, leakHit{path, off, label})
			})
		})
		if err != nil {
			return hits, st, err
		}
	}
	return hits, st, nil
}

// searchAll searches the folders, the log lines and the story; one hit
// per place and secret form.
func searchAll(t *testing.T, sc *leakScanner, dir, tmp string, logs, story []byte) []leakHit {
	t.Helper()
	hits, st, err := scanTree(sc, nil, dir, tmp)
	if err != nil {
		t.Fatal(err)
	}
	if st.ledgers < 4 {
		t.Fatalf("only %d ledgers among %d files under %s", st.ledgers, st.files, dir)
	}
	for i, line := range bytes.Split(logs, []byte("\n")) {
		where := fmt.Sprintf("log line %d", i+1)
		_ = sc.scan(bytes.NewReader(line), func(off int64, label string) {
			hits = append(hits, leakHit{where, off, label})
		})
	}
	_ = sc.scan(bytes.NewReader(story), func(off int64, label string) {
		hits = append(hits, leakHit{"story", off, label})
	})
	t.Logf("searched %d files (%d ledgers, %d -wal/-shm), the log and the story", st.files, st.ledgers, st.wal)
	return dedupe(hits)
}

func dedupe(hits []leakHit) []leakHit {
	seen := map[string]bool{}
	var out []leakHit
	for _, h := range hits {
		k := h.where + "\x00" + h.label
		if !seen[k] {
			seen[k] = true
			out = append(out, h)
		}
	}
	return out
}

type leakSecret struct {
	label string
	b     []byte
}

type leakHit struct {
	where  string
	offset int64
	label  string
}

type needle struct {
	label string
	pat   []byte
}

// leakScanner finds many byte patterns (each at least 8 bytes) in one
// streaming pass: a bit set of first byte pairs (small enough to stay in
// the L1 cache) filters positions, a map of 8-byte prefixes finds the
// candidates.
type leakScanner struct {
	needles []needle
	pairs   [1 << 16 / 64]uint64 // bit set over the first two bytes
	prefix  map[uint64][]int
	maxLen  int
}

// leakChunk is the scanner's read size; files are never read whole.
const leakChunk = 1 << 20

func newLeakScanner(secrets []leakSecret) *leakScanner {
	sc := &leakScanner{prefix: map[uint64][]int{}}
	seen := map[string]bool{}
	add := func(label string, pat []byte) {
		if len(pat) < 8 || seen[string(pat)] {
			return
		}
		seen[string(pat)] = true
		sc.needles = append(sc.needles, needle{label, pat})
		p2 := binary.LittleEndian.Uint16(pat)
		sc.pairs[p2/64] |= 1 << (p2 % 64)
		k := binary.LittleEndian.Uint64(pat)
		sc.prefix[k] = append(sc.prefix[k], len(sc.needles)-1)
		sc.maxLen = max(sc.maxLen, len(pat))
	}
	for _, s := range secrets {
		b := s.b
		add(s.label+" as raw bytes", b)
		lower := hex.EncodeToString(b)
		add(s.label+" as lower-case hex", []byte(lower))
		add(s.label+" as upper-case hex", []byte(strings.ToUpper(lower)))
		spaced := spacedHex(b)
		add(s.label+" as byte-spaced hex", []byte(spaced))
		add(s.label+" as byte-spaced upper-case hex", []byte(strings.ToUpper(spaced)))
		add(s.label+" as %v of []byte", []byte(strings.Trim(fmt.Sprint(b), "[]")))
		for _, enc := range []struct {
			name string
			e    *base64.Encoding
		}{{"std", base64.StdEncoding}, {"url", base64.URLEncoding}} {
			add(s.label+" as base64 ("+enc.name+")", []byte(enc.e.EncodeToString(b)))
			add(s.label+" as base64 ("+enc.name+", raw)", []byte(enc.e.WithPadding(base64.NoPadding).EncodeToString(b)))
			// Inside a longer base64 value the secret starts at a byte
			// offset of 0, 1 or 2 modulo 3: search the characters that
			// depend on the secret's bits only.
			for k := 0; k < 3; k++ {
				add(fmt.Sprintf("%s as base64 (%s, inside a value at offset %d mod 3)", s.label, enc.name, k), base64Core(enc.e, b, k))
			}
		}
	}
	return sc
}

func spacedHex(b []byte) string {
	parts := make([]string, len(b))
	for i, c := range b {
		parts[i] = hex.EncodeToString([]byte{c})
	}
	return strings.Join(parts, " ")
}

// base64Core returns the base64 characters of b encoded after k other
// bytes that are determined by b alone.
func base64Core(e *base64.Encoding, b []byte, k int) []byte {
	s := e.EncodeToString(append(make([]byte, k), b...))
	from := (8*k + 5) / 6
	to := (8*(k+len(b)))/6 - 1
	return []byte(s[from : to+1])
}

// scan reads r in chunks, reporting each match's offset and label.
func (sc *leakScanner) scan(r io.Reader, found func(off int64, label string)) error {
	overlap := sc.maxLen - 1
	buf := make([]byte, leakChunk+overlap)
	n := 0         // bytes held in buf
	var base int64 // offset of buf[0] in the stream
	eof := false
	for !eof {
		m, err := io.ReadFull(r, buf[n:])
		n += m
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			eof = true
		} else if err != nil {
			return err
		}
		data := buf[:n]
		// Positions whose longest pattern could run past the data are
		// left for the next round, unless this is the end.
		end := n - overlap
		if eof {
			end = n
		}
		for i := 0; i < end && i+8 <= n; i++ {
			if p2 := binary.LittleEndian.Uint16(data[i:]); sc.pairs[p2/64]&(1<<(p2%64)) == 0 {
				continue
			}
			for _, ni := range sc.prefix[binary.LittleEndian.Uint64(data[i:])] {
				if bytes.HasPrefix(data[i:], sc.needles[ni].pat) {
					found(base+int64(i), sc.needles[ni].label)
				}
			}
		}
		if eof {
			break
		}
		if end < 0 {
			end = 0
		}
		copy(buf, data[end:])
		n -= end
		base += int64(end)
	}
	return nil
}

// TestLeakScanner pins the scanner on known placements: every form, at
// the start, the end and across a chunk boundary, and nothing in noise.
func TestLeakScanner(t *testing.T) {
	secret, _ := hex.DecodeString("8e27b6d3a1c0f94d5b62e80d117fa3c9")
	sc := newLeakScanner([]leakSecret{{"s", secret}})
	find := func(data []byte) map[string]int64 {
		got := map[string]int64{}
		if err := sc.scan(bufio.NewReaderSize(bytes.NewReader(data), 16), func(off int64, label string) { got[label] = off }); err != nil {
			t.Fatal(err)
		}
		return got
	}
	cases := []struct {
		name  string
		data  []byte
		label string
		off   int64
	}{
		{"raw at start", append(bytes.Clone(secret), 'x'), "s as raw bytes", 0},
		{"raw at end", append([]byte("xyz"), secret...), "s as raw bytes", 3},
		{"raw across a chunk", append(make([]byte, leakChunk-5), secret...), "s as raw bytes", leakChunk - 5},
		{"upper hex", []byte(`{"ki":"8E27B6D3A1C0F94D5B62E80D117FA3C9"}`), "s as upper-case hex", 7},
		{"lower hex", []byte("ki=8e27b6d3a1c0f94d5b62e80d117fa3c9"), "s as lower-case hex", 3},
		{"spaced hex", []byte("8E 27 B6 D3 A1 C0 F9 4D 5B 62 E8 0D 11 7F A3 C9"), "s as byte-spaced upper-case hex", 0},
		{"%v", []byte(fmt.Sprintf("key %v", secret)), "s as %v of []byte", 5},
		{"base64 std", []byte(base64.StdEncoding.EncodeToString(secret)), "s as base64 (std)", 0},
		{"base64 in a longer value", []byte(base64.StdEncoding.EncodeToString(append([]byte{1, 2, 3, 4}, secret...))), "s as base64 (std, inside a value at offset 1 mod 3)", 6},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := find(c.data)
			if off, ok := got[c.label]; !ok || off != c.off {
				t.Errorf("found %v, want %q at %d", got, c.label, c.off)
			}
		})
	}
	noise := bytes.Repeat([]byte("8e27b6d3a1c0f94d5b62e80d117fa3c8 jinfx"), 100000)
	if got := find(noise); len(got) > 0 {
		t.Errorf("found %v in noise", got)
	}
}

// BenchmarkLeakScanner measures the search of the demo's 1,678 patterns
// through random bytes.
func BenchmarkLeakScanner(b *testing.B) {
	var secrets []leakSecret
	for i := range 133 {
		s := make([]byte, 16)
		rand.Read(s)
		secrets = append(secrets, leakSecret{fmt.Sprint(i), s})
	}
	sc := newLeakScanner(secrets)
	data := make([]byte, 8<<20)
	rand.Read(data)
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if err := sc.scan(bytes.NewReader(data), func(int64, string) { b.Fatal("found") }); err != nil {
			b.Fatal(err)
		}
	}
}
