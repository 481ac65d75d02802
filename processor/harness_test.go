package processor_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"os"
	"path/filepath"
	"testing"
	"time"

	"resub/crypto/keywrap"
	"resub/crypto/pgp"
	"resub/formats/ident"
	"resub/formats/native"
	"resub/formats/ota"
	"resub/processor"
	"resub/processor/ledger"
	"resub/processor/ledger/ledgertest"
	"resub/samples/fleet"
	"resub/samples/smsc"
)

// world is a set of parties exchanging files by hand (no drops): what one
// party delivers, the next processes.
type world struct {
	t       testing.TB
	dir     string
	now     time.Time
	keys    map[string]*pgp.Key
	tks     map[string]*keywrap.TransportKey
	parties map[string]*processor.Party
	smsc    *smsc.SMSC
	smscSeq int
	seqs    map[string]int
	prof    *processor.Profile
}

func newWorld(t testing.TB) *world {
	w := &world{t: t, dir: t.TempDir(), now: time.Date(2026, 11, 28, 21, 0, 0, 0, time.UTC),
		keys: map[string]*pgp.Key{}, tks: map[string]*keywrap.TransportKey{}, parties: map[string]*processor.Party{},
		smsc: smsc.New(), seqs: map[string]int{}}
	w.smsc.Now = w.clock
	for _, n := range []string{"MNOA", "MNOB", "MNOC", "M2M", "VENDOR", "MFR"} {
		k, err := pgp.GenerateKey(n, n+"@test.invalid", pgp.Curve25519, pgp.GenerateOptions{Now: func() time.Time { return w.now.Add(-time.Hour) }})
		if err != nil {
			t.Fatal(err)
		}
		w.keys[n] = k
	}
	for _, id := range []string{"tk-va", "tk-ab", "tk-bc", "tk-aucb", "tk-aucc", "tk-ma", "tk-mb", "tk-mc"} {
		key := make([]byte, 16)
		rand.Read(key)
		tk, err := keywrap.NewTransportKey(id, key, keywrap.AESKWP, keywrap.TransportKeyOptions{})
		if err != nil {
			t.Fatal(err)
		}
		w.tks[id] = tk
	}
	w.prof = testProfile(t)
	return w
}

func (w *world) clock() time.Time { return w.now }

func testProfile(t testing.TB) *processor.Profile {
	resetTAR, _ := ota.ParseTAR("b0ff01")
	p := &ota.Profile{
		Name: "usim-aes", TAR: ota.TAR{0xb0, 0x00, 0x11}, SPI: 0x1639, KIc: 0x12, KID: 0x12, CLA: 0x00, Format: ota.FormatCompact,
		InvalidateLOCI: true, InvalidatePSLOCI: true, InvalidateEPSLOCI: true,
		ResetTAR: resetTAR, ResetAPDU: ota.APDU{0x80, 0xc2, 0x04, 0x00},
	}
	if err := p.Validate(); err != nil {
		t.Fatal(err)
	}
	return &processor.Profile{Name: "usim-aes", OTA: p, Algorithm: "milenage", Rate: 50, Window: "22:00-05:00", Validity: 24 * time.Hour}
}

func mustRanges(t testing.TB, specs ...string) ident.IMSIRanges {
	var out ident.IMSIRanges
	for _, s := range specs {
		r, err := ident.ParseIMSIRange(s)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, r)
	}
	return out
}

// party makes a party with its own ledger.
func (w *world) party(name string, ranges ident.IMSIRanges, list []processor.Range) *processor.Party {
	dir := filepath.Join(w.dir, name)
	// The engine of the test run (RESUB_TEST_LEDGER): a SQLite file, or
	// a database of the PostgreSQL test server.
	db := ledgertest.Open(w.t, filepath.Join(dir, "ledger.db"), ledger.WithClock(w.clock))
	mk := make([]byte, 32)
	rand.Read(mk)
	sealer, err := keywrap.NewSealer("mk-"+name, mk, nil)
	if err != nil {
		w.t.Fatal(err)
	}
	p := &processor.Party{
		Name: name, Ledger: db, Keys: []*pgp.Key{w.keys[name]}, Vault: processor.NewVault(sealer, processor.FingerprintKey(mk)),
		Partners: map[string]*processor.Partner{}, Ranges: ranges, RangeList: list,
		Profiles: map[string]*processor.Profile{w.prof.Name: w.prof},
		OutDir:   filepath.Join(dir, "out"), ScratchDir: filepath.Join(dir, "scratch"),
		OTA: processor.OTASettings{Originator: "12345", CounterJump: 16, PoRMargin: time.Hour},
		Now: w.clock,
	}
	if err := os.MkdirAll(p.ScratchDir, 0o700); err != nil {
		w.t.Fatal(err)
	}
	w.parties[name] = p
	return p
}

// partner adds a partner to p.
func (w *world) partner(p *processor.Party, local, code, kind string, tk string, ranges ident.IMSIRanges, pgpOff bool) *processor.Partner {
	pt := &processor.Partner{Name: local, Code: code, Kind: kind, PGPOff: pgpOff, Ranges: ranges,
		Policy: processor.Policy{MaxAttempts: 3}}
	if !pgpOff {
		k := w.keys[code]
		pt.PublicKeys = []*pgp.Key{k.Public()}
		pt.Fingerprints = []string{k.Fingerprint()}
	}
	if tk != "" {
		pt.Transport = processor.NewTransport(w.tks[tk])
	}
	p.Partners[local] = pt
	return pt
}

// send writes a native file from sender to receiver (encrypted and signed
// unless clear) and returns it as an input of the receiver.
func (w *world) send(from, to string, schema *native.Schema, n int, clear bool, tk string, recs func(func(*native.Record) error) error) string {
	key := from + ">" + to + ">" + schema.Name
	w.seqs[key]++
	h := fleet.Header{Sender: from, Receiver: to, Sequence: w.seqs[key], Date: w.now}
	if tk != "" {
		h.TransportKey, h.KCV = tk, w.tks[tk].KCV()
	}
	env := fleet.Envelope{Now: w.clock}
	if !clear {
		env.To, env.Signer = []*pgp.Key{w.keys[to].Public()}, w.keys[from]
	}
	dir := filepath.Join(w.dir, "wire")
	os.MkdirAll(dir, 0o700)
	path, err := fleet.WriteFile(dir, schema, h, env, n, recs)
	if err != nil {
		w.t.Fatal(err)
	}
	return path
}

// process runs step at party p on a file from partner.
func (w *world) process(p *processor.Party, partner string, step processor.FileStep, path string) *processor.Result {
	w.t.Helper()
	res, err := p.ProcessFile(context.Background(), step, processor.Input{Partner: p.Partners[partner], Name: filepath.Base(path), Path: path, Job: partner + "-" + step.InputType()})
	if err != nil {
		w.t.Fatalf("%s processing %s: %v", p.Name, filepath.Base(path), err)
	}
	w.deliverAll(p, res.Outputs)
	if err := p.Complete(context.Background(), res.FileID); err != nil {
		w.t.Fatal(err)
	}
	return res
}

// deliverAll marks outputs delivered (the caller moves them by hand).
func (w *world) deliverAll(p *processor.Party, outs []*ledger.Output) {
	for _, o := range outs {
		if err := p.Delivered(context.Background(), o); err != nil {
			w.t.Fatal(err)
		}
	}
}

// output finds the output of type typ among outs.
func output(t testing.TB, outs []*ledger.Output, typ string) *ledger.Output {
	t.Helper()
	for _, o := range outs {
		if o.Type == typ {
			return o
		}
	}
	t.Fatalf("no %s output among %d", typ, len(outs))
	return nil
}

// runSMSC plays the SMSC on an ota-batch (clear: the SMSC is internal)
// and returns the path of its report to A.
func (w *world) runSMSC(batch *ledger.Output, receiver string) string {
	f, err := os.Open(batch.Path)
	if err != nil {
		w.t.Fatal(err)
	}
	defer f.Close()
	var buf bytes.Buffer
	w.smscSeq++
	if _, err := w.smsc.Process(f, &buf, smsc.Report{Sender: "SMSC", Receiver: receiver, Sequence: w.smscSeq}); err != nil {
		w.t.Fatal(err)
	}
	h := &native.Header{Format: "ota-report", Sender: "SMSC", Receiver: receiver, BusinessDate: w.now, Sequence: w.smscSeq}
	path := filepath.Join(w.dir, "wire", native.NameOf(h, "txt", false).String())
	if err := os.WriteFile(path, buf.Bytes(), 0o600); err != nil {
		w.t.Fatal(err)
	}
	return path
}
