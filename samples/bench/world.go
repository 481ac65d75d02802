package bench

import (
	"bufio"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"resub/crypto/pgp"
	"resub/formats/native"
	"resub/formats/ota/simcard"
	"resub/jobs"
	"resub/jobs/config"
	"resub/processor/ledger"
	"resub/processor/ledger/postgres"
	"resub/samples/fleet"
	"resub/samples/smsc"
)

// World is the two operators of the benchmark, each with its own
// configuration, ledger and local-folder drops, and the folders they share
// (A's drop towards B is B's drop towards A). Its methods are the stages;
// Run calls them in order and measures each.
type World struct {
	dir   string
	n     int
	now   func() time.Time
	log   *slog.Logger
	keys  map[string]*pgp.Key
	fleet *fleet.Fleet
	a, b  *jobs.Runtime
	cut   time.Time
	smpp  *SMPPOptions
	// pg is the PostgreSQL ledger place, when the parties' ledgers are
	// there (a schema each); nil: SQLite files under dir.
	pg *pgPlace
	// lo are the ledger options the world was made with.
	lo LedgerOptions
}

// SMPPOptions make A's SMSC one reached over SMPP (the simulated SMSC's
// server on 127.0.0.1:Port, system_id resub-bench, Password).
type SMPPOptions struct {
	Port, Window int
	Password     string
}

// pgPlace is where a benchmark keeps its ledgers on a PostgreSQL server:
// a schema for each party, made at the start and dropped at the end.
type pgPlace struct {
	url      string
	password config.SecretRef
	admin    *sql.DB
	schemas  map[string]string // party code -> schema
}

// LedgerOptions put the benchmark's ledgers on PostgreSQL.
type LedgerOptions struct {
	// URL is a postgres:// URL (no password in it) whose user may create
	// schemas; empty: SQLite files.
	URL string
	// Password is its password by reference (env:NAME or file:PATH), or
	// empty for PGPASSFILE / ~/.pgpass.
	Password string
	// Observe, when set, is told of every statement of both parties'
	// ledgers (ledger.WithStatementObserver), whichever engine they are on.
	Observe func(ledger.Statement)
	// SlowStatement, when set, is both parties' ledger_slow_statement
	// (e.g. "1ns"); empty keeps the default.
	SlowStatement string
}

// party codes and the roles the benchmark gives them.
const (
	codeA, codeB = "MNOA", "MNOB"
	profileName  = "usim-aes"
)

// NewWorld lays out the parties of a benchmark of n cards under dir (which
// must exist and should be empty): keys, secrets (files readable by the
// owner only), configurations, and opens both runtimes.
func NewWorld(ctx context.Context, dir string, n int, log *slog.Logger) (*World, error) {
	return NewWorldOn(ctx, dir, n, log, LedgerOptions{})
}

// NewSMPPWorld is NewWorld with A's SMSC over SMPP: A's imsi-list queues
// the messages, its ota-submit job submits them.
func NewSMPPWorld(ctx context.Context, dir string, n int, log *slog.Logger, o SMPPOptions) (*World, error) {
	return newWorld(ctx, dir, n, log, LedgerOptions{}, &o)
}

// NewWorldOn is NewWorld with the ledgers where lo says.
func NewWorldOn(ctx context.Context, dir string, n int, log *slog.Logger, lo LedgerOptions) (*World, error) {
	return newWorld(ctx, dir, n, log, lo, nil)
}

func newWorld(ctx context.Context, dir string, n int, log *slog.Logger, lo LedgerOptions, smpp *SMPPOptions) (_ *World, err error) {
	if n <= 0 {
		return nil, fmt.Errorf("bench: records must be positive, not %d", n)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	dir, err = filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	w := &World{dir: dir, n: n, now: func() time.Time { return time.Now().UTC() }, log: log, keys: map[string]*pgp.Key{}, smpp: smpp, lo: lo}
	w.cut = w.now().AddDate(0, 0, 1)
	if lo.URL != "" {
		if w.pg, err = newPGPlace(ctx, lo); err != nil {
			return nil, err
		}
		defer func() {
			if err != nil {
				w.Close()
			}
		}()
	}
	for _, d := range []string{"keys", "secrets", "shared/MNOA-to-MNOB", "shared/MNOB-to-MNOA"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o700); err != nil {
			return nil, err
		}
	}
	created := w.now().Add(-time.Hour)
	for _, code := range []string{codeA, codeB, "M2M", "VENDOR"} {
		k, err := pgp.GenerateKey("resub bench "+code, strings.ToLower(code)+"@bench.invalid", pgp.Curve25519,
			pgp.GenerateOptions{Now: func() time.Time { return created }})
		if err != nil {
			return nil, err
		}
		w.keys[code] = k
		if err := writeWith(filepath.Join(dir, "keys", code+".pub.asc"), 0o644, func(f *os.File) error { return k.WritePublic(f, true) }); err != nil {
			return nil, err
		}
	}
	w.fleet, err = fleet.Plan(fleet.Options{N: n, ICCIDBody: "8999901", IMSIBase: "001010000000001", MSISDNBase: "999100000001",
		Seed: "bench", Counter: 5})
	if err != nil {
		return nil, err
	}
	for _, code := range []string{codeA, codeB} {
		path, err := w.writeConfig(code)
		if err != nil {
			return nil, fmt.Errorf("bench: %s configuration: %w", code, err)
		}
		cfg, err := config.Load(path)
		if err != nil {
			return nil, fmt.Errorf("bench: %s configuration: %w", code, err)
		}
		o := jobs.Options{Log: log.With("party", code), Now: w.now}
		if lo.Observe != nil {
			o.Ledger = append(o.Ledger, ledger.WithStatementObserver(lo.Observe))
		}
		rt, err := jobs.Open(ctx, cfg, o)
		if err != nil {
			w.Close()
			return nil, fmt.Errorf("bench: %s: %w", code, err)
		}
		if code == codeA {
			w.a = rt
		} else {
			w.b = rt
		}
	}
	return w, nil
}

// Close closes both runtimes.
func (w *World) Close() error {
	for _, rt := range []*jobs.Runtime{w.a, w.b} {
		if rt != nil {
			rt.Close()
		}
	}
	w.a, w.b = nil, nil
	if w.pg != nil {
		for _, schema := range w.pg.schemas {
			if _, err := w.pg.admin.Exec(`DROP SCHEMA IF EXISTS ` + schema + ` CASCADE`); err != nil {
				w.log.Warn("bench: schema not dropped", "schema", schema, "error", err)
			}
		}
		w.pg.admin.Close()
		w.pg = nil
	}
	return nil
}

// newPGPlace makes a schema for each party on the server.
func newPGPlace(ctx context.Context, lo LedgerOptions) (*pgPlace, error) {
	var pw config.Secret
	if lo.Password != "" {
		var err error
		if pw, err = config.ResolveRef(config.SecretRef(lo.Password)); err != nil {
			return nil, fmt.Errorf("bench: ledger password: %w", err)
		}
		defer pw.Wipe()
	}
	admin, err := postgres.OpenSQL(ctx, lo.URL, pw.Bytes())
	if err != nil {
		return nil, err
	}
	p := &pgPlace{url: lo.URL, password: config.SecretRef(lo.Password), admin: admin, schemas: map[string]string{}}
	tag := make([]byte, 4)
	rand.Read(tag)
	for _, code := range []string{codeA, codeB, codeFloor} {
		schema := "resub_bench_" + strings.ToLower(code) + "_" + hex.EncodeToString(tag)
		if _, err := admin.ExecContext(ctx, `CREATE SCHEMA `+schema); err != nil {
			admin.Close()
			return nil, fmt.Errorf("bench: create schema %s: %w", schema, err)
		}
		p.schemas[code] = schema
	}
	return p, nil
}

// codeFloor names the place of the engine floor's ledger.
const codeFloor = "FLOOR"

// measureFloor measures the engine floor for n records on the engine the
// parties' ledgers are on (a ledger of its own beside theirs).
func (w *World) measureFloor(ctx context.Context, n int) (Floor, error) {
	if w.pg == nil {
		return MeasureFloor(ctx, w.dir, n)
	}
	u, err := w.pg.ledgerOf(codeFloor)
	if err != nil {
		return Floor{}, err
	}
	var pw config.Secret
	if w.pg.password != "" {
		if pw, err = config.ResolveRef(w.pg.password); err != nil {
			return Floor{}, fmt.Errorf("bench: ledger password: %w", err)
		}
		defer pw.Wipe()
	}
	db, err := postgres.Open(ctx, u, pw.Bytes())
	if err != nil {
		return Floor{}, err
	}
	defer db.Close()
	return MeasureFloorOn(ctx, db, n)
}

// ledgerOf is a party's ledger URL in the place.
func (p *pgPlace) ledgerOf(code string) (string, error) {
	u, err := url.Parse(p.url)
	if err != nil {
		return "", errors.New("bench: not a valid ledger URL")
	}
	q := u.Query()
	q.Set("search_path", p.schemas[code])
	u.RawQuery = q.Encode()
	return u.String(), nil
}

// Dir is the benchmark's folder.
func (w *World) Dir() string { return w.dir }

func writeWith(path string, mode os.FileMode, fn func(*os.File) error) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, mode)
	if err != nil {
		return err
	}
	if err := fn(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// secret makes a random secret of n bytes in a file of its own and returns
// the configuration's reference to it.
func (w *World) secret(name string, n int) (string, error) {
	path := filepath.Join(w.dir, "secrets", name)
	if _, err := os.Stat(path); err == nil {
		return "file:" + path, nil
	}
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	if err := os.WriteFile(path, []byte(hex.EncodeToString(b)), 0o600); err != nil {
		return "", err
	}
	return "file:" + path, nil
}

func (w *World) partyDir(code string) string { return filepath.Join(w.dir, strings.ToLower(code)) }

// dropDir is a folder of a party's local drop.
func (w *World) dropDir(code, drop, sub string) string {
	return filepath.Join(w.partyDir(code), "drops", drop, sub)
}

func (w *World) local(code, name string) map[string]any {
	for _, sub := range []string{"inbox", "outbox", "archive", "quarantine"} {
		os.MkdirAll(w.dropDir(code, name, sub), 0o700)
	}
	return map[string]any{"local": map[string]any{"dir": filepath.Join(w.partyDir(code), "drops", name)}, "stable": "1ms"}
}

// shared is the drop between the two operators: a local folder drop whose
// inbox is the other's outbox.
func (w *World) shared(code, other string) map[string]any {
	d := w.local(code, strings.ToLower(other))
	d["inbox"] = filepath.Join(w.dir, "shared", other+"-to-"+code)
	d["outbox"] = filepath.Join(w.dir, "shared", code+"-to-"+other)
	return d
}

func (w *World) pgpOf(code string) map[string]any {
	return map[string]any{"public_keys": []string{filepath.Join(w.dir, "keys", code+".pub.asc")}, "fingerprints": []string{w.keys[code].Fingerprint()}}
}

func profiles() map[string]any {
	return map[string]any{profileName: map[string]any{
		"tar": "b00011", "spi": "1639", "kic": "12", "kid": "12", "cla": "00",
		"invalidate": []string{"loci", "psloci", "epsloci"},
		"reset":      map[string]any{"tar": "b0ff01", "apdu": "80c20400"},
		"rate":       100, "window": "00:00-23:59", "validity": "24h", "algorithm": "milenage",
	}}
}

func job(name, kind, partner string, to map[string]string) map[string]any {
	m := map[string]any{"name": name, "kind": kind, "schedule": "15 22 * * *", "zone": "UTC", "partner": partner}
	if len(to) > 0 {
		m["to"] = to
	}
	return m
}

var (
	plmnA = map[string]any{"mcc": "001", "mnc": "01"}
	plmnB = map[string]any{"mcc": "999", "mnc": "99"}
)

// B allocates from a range of ten million IMSIs.
const rangeBFrom, rangeBTo = "999990000000000", "999990009999999"

// writeConfig writes a party's configuration (all drops are local folders;
// secrets are files referenced with file:).
func (w *World) writeConfig(code string) (string, error) {
	pd := w.partyDir(code)
	if err := os.MkdirAll(pd, 0o700); err != nil {
		return "", err
	}
	pass, err := w.secret(code+"-pgp-pass", 16)
	if err != nil {
		return "", err
	}
	passBytes, err := os.ReadFile(strings.TrimPrefix(pass, "file:"))
	if err != nil {
		return "", err
	}
	secKey := filepath.Join(pd, code+".sec.asc")
	if err := writeWith(secKey, 0o600, func(f *os.File) error { return w.keys[code].WriteSecret(f, true, passBytes) }); err != nil {
		return "", err
	}
	mk, err := w.secret(code+"-master", 32)
	if err != nil {
		return "", err
	}
	tkAB, err := w.secret("tk-ab", 16)
	if err != nil {
		return "", err
	}
	cfg := map[string]any{
		"party":      map[string]any{"name": code, "role": "operator"},
		"data_dir":   filepath.Join(pd, "data"),
		"pgp":        map[string]any{"secret_key": secKey, "passphrase": pass},
		"master_key": map[string]any{"id": strings.ToLower(code) + "-mk-1", "key": mk},
		"ota":        map[string]any{"originator": "7700", "counter_jump": 16, "por_margin": "1h"},
		"profiles":   profiles(),
	}
	if w.lo.SlowStatement != "" {
		cfg["ledger_slow_statement"] = w.lo.SlowStatement
	}
	if w.smpp != nil {
		// The session's rate, not the profile's, is what is measured.
		cfg["profiles"].(map[string]any)[profileName].(map[string]any)["rate"] = 1_000_000
	}
	if w.pg != nil {
		u, err := w.pg.ledgerOf(code)
		if err != nil {
			return "", err
		}
		cfg["ledger"] = u
		if w.pg.password != "" {
			cfg["ledger_password"] = string(w.pg.password)
		}
	}
	partners := map[string]any{}
	var jobList []map[string]any
	switch code {
	case codeA:
		cfg["plmns"] = []any{plmnA}
		partners["vendor"] = map[string]any{"kind": "manufacturer", "code": "VENDOR", "drop": w.local(code, "vendor"), "pgp": w.pgpOf("VENDOR")}
		partners["bss"] = map[string]any{"kind": "internal", "code": "BSS", "drop": w.local(code, "bss"), "pgp": map[string]any{"disabled": true}}
		partners["m2m"] = map[string]any{"kind": "m2m-operator", "code": "M2M", "drop": w.local(code, "m2m"), "pgp": w.pgpOf("M2M")}
		partners["smsc"] = map[string]any{"kind": "smsc", "code": "SMSC", "drop": w.local(code, "smsc"), "pgp": map[string]any{"disabled": true}}
		if o := w.smpp; o != nil {
			pw := filepath.Join(w.dir, "secrets", "smpp-password")
			if err := writeWith(pw, 0o600, func(f *os.File) error { _, err := f.WriteString(o.Password); return err }); err != nil {
				return "", err
			}
			partners["smsc"] = map[string]any{"kind": "smsc", "code": "SMSC", "pgp": map[string]any{"disabled": true},
				"smpp": map[string]any{"host": "127.0.0.1", "port": o.Port, "system_id": "resub-bench", "password": "file:" + pw,
					"window": o.Window, "rate": 1_000_000, "timeout": "30s"}}
		}
		partners["mno-b"] = map[string]any{"kind": "operator", "code": codeB, "drop": w.shared(code, codeB), "pgp": w.pgpOf(codeB),
			"transport_keys": []map[string]any{{"id": "ab", "key": tkAB}}, "plmns": []any{plmnB},
			"imsi_ranges": []any{map[string]any{"from": rangeBFrom, "to": rangeBTo}}}
		jobList = []map[string]any{
			job("inventory", "a-inventory", "vendor", nil),
			job("msisdn", "a-msisdn-map", "bss", nil),
			job("authorisation", "a-authorisation", "m2m", nil),
			job("imsi-list", "a-imsi-list", "mno-b", map[string]string{"smsc": "smsc"}),
			job("handover", "a-handover", "mno-b", nil),
		}
		if w.smpp != nil {
			jobList = append(jobList, job("ota-submit", "a-ota-submit", "smsc", nil))
		} else {
			jobList = append(jobList, job("ota-report", "a-ota-report", "smsc", nil))
		}
		jobList[0]["profile"] = profileName
	case codeB:
		tkAuC, err := w.secret("tk-aucb", 16)
		if err != nil {
			return "", err
		}
		cfg["plmns"] = []any{plmnB}
		cfg["imsi_ranges"] = []any{map[string]any{"name": "b-main", "from": rangeBFrom, "to": rangeBTo}}
		partners["m2m"] = map[string]any{"kind": "m2m-operator", "code": "M2M", "drop": w.local(code, "m2m"), "pgp": w.pgpOf("M2M")}
		partners["hlr"] = map[string]any{"kind": "hlr", "code": "HLRB", "drop": w.local(code, "hlr"), "pgp": map[string]any{"disabled": true},
			"transport_keys": []map[string]any{{"id": "aucb", "key": tkAuC}}}
		partners["mno-a"] = map[string]any{"kind": "operator", "code": codeA, "drop": w.shared(code, codeA), "pgp": w.pgpOf(codeA),
			"transport_keys": []map[string]any{{"id": "ab", "key": tkAB}}, "plmns": []any{plmnA}}
		jobList = []map[string]any{
			job("switch-request", "b-switch-request", "m2m", nil),
			job("handover-in", "b-handover", "mno-a", map[string]string{"hlr": "hlr"}),
		}
	}
	cfg["partners"] = partners
	cfg["jobs"] = jobList
	b, err := yaml.Marshal(cfg)
	if err != nil {
		return "", err
	}
	path := filepath.Join(pd, "resub.yaml")
	head := "# resub configuration of " + code + " for the benchmark: throwaway keys, test PLMNs.\n"
	return path, os.WriteFile(path, append([]byte(head), b...), 0o600)
}

// Generate writes the fleet's files, one card at a time: the SIM vendor's
// output file (to A, encrypted and signed), the MSISDN map (from A's BSS,
// in clear), the switch authorisation (to A) and the switch request (to
// B), both signed by the M2M operator.
func (w *World) Generate(ctx context.Context) error {
	name := "VENDOR_BENCH-1.out.pgp"
	path := filepath.Join(w.dropDir(codeA, "vendor", "inbox"), name)
	err := writeWith(path+".part", 0o600, func(f *os.File) error {
		enc, err := pgp.Encrypt(f, []*pgp.Key{w.keys[codeA].Public()}, w.keys["VENDOR"], pgp.EncryptOptions{FileName: pgp.PlaintextName(name), Now: w.now})
		if err != nil {
			return err
		}
		bw := bufio.NewWriterSize(enc, 64<<10)
		if err := w.fleet.WriteVendorSeq(bw, w.n, w.fleet.All(), codeA, profileName, "BENCH-1"); err != nil {
			return err
		}
		if err := bw.Flush(); err != nil {
			return err
		}
		if err := enc.Close(); err != nil {
			return err
		}
		return f.Sync()
	})
	if err != nil {
		return fmt.Errorf("bench: vendor file: %w", err)
	}
	if err := os.Rename(path+".part", path); err != nil {
		return err
	}
	now := w.now()
	send := func(inbox, from, to string, schema *native.Schema, signed bool, recs func(func(*native.Record) error) error) error {
		env := fleet.Envelope{Now: w.now}
		if signed {
			env.To, env.Signer = []*pgp.Key{w.keys[to].Public()}, w.keys[from]
		}
		_, err := fleet.WriteFile(inbox, schema, fleet.Header{Sender: from, Receiver: to, Sequence: 1, Date: now}, env, w.n, recs)
		if err != nil {
			return fmt.Errorf("bench: %s file: %w", schema.Name, err)
		}
		return nil
	}
	if err := send(w.dropDir(codeA, "bss", "inbox"), "BSS", codeA, native.MSISDNMap, false, fleet.MSISDNSeq(w.fleet.All())); err != nil {
		return err
	}
	if err := send(w.dropDir(codeA, "m2m", "inbox"), "M2M", codeA, native.SwitchAuthorisation, true, fleet.AuthorisationSeq(w.fleet.All(), codeB, w.cut)); err != nil {
		return err
	}
	return send(w.dropDir(codeB, "m2m", "inbox"), "M2M", codeB, native.SwitchRequest, true, fleet.SwitchRequestSeq(w.fleet.All(), codeA, w.cut))
}

// run runs one job of a party and insists that every record was accepted.
func (w *World) run(ctx context.Context, rt *jobs.Runtime, name string, want int) (*jobs.Summary, error) {
	sum, err := rt.RunJob(ctx, name, jobs.RunOptions{Manual: true, Owner: "bench"})
	if err != nil {
		return sum, fmt.Errorf("bench: %s job %s: %w", rt.Party.Name, name, err)
	}
	if want >= 0 && (sum.Accepted != want || sum.Rejected != 0) {
		return sum, fmt.Errorf("bench: %s job %s: %d accepted, %d rejected of %d records; want %d accepted (%s)",
			rt.Party.Name, name, sum.Accepted, sum.Rejected, sum.Records, want, sum)
	}
	return sum, nil
}

// Import runs A's inventory, MSISDN-map and authorisation jobs.
func (w *World) Import(ctx context.Context) error {
	for _, j := range []string{"inventory", "msisdn", "authorisation"} {
		if _, err := w.run(ctx, w.a, j, -1); err != nil {
			return err
		}
	}
	counts, err := w.a.Ledger.CountByState(ctx)
	if err != nil {
		return err
	}
	if counts[ledger.CardActive] != w.n {
		return fmt.Errorf("bench: %d cards active at A after the import, want %d", counts[ledger.CardActive], w.n)
	}
	return nil
}

// SwitchRequest runs B's switch-request job: B allocates an IMSI to every
// card and sends A the encrypted, signed imsi-list.
func (w *World) SwitchRequest(ctx context.Context) error {
	_, err := w.run(ctx, w.b, "switch-request", w.n)
	return err
}

// IMSIList runs A's nightly step on B's list: pickup, decrypt and
// verify, every record checked against the ledger, a secured OTA packet
// per card, the ota-batch and the imsi-result written, encrypted, signed
// and delivered, the input archived.
func (w *World) IMSIList(ctx context.Context) error {
	sum, err := w.run(ctx, w.a, "imsi-list", w.n)
	if err != nil {
		return err
	}
	if sum.Messages != w.n {
		return fmt.Errorf("bench: A's imsi-list made %d OTA messages, want %d", sum.Messages, w.n)
	}
	return nil
}

// SMSCReport stands in for the SMSC and the cards (it is not timed): it
// reads each ota-batch A delivered to the SMSC's drop, hands each message
// to the simulated UICC of its card (made from the card's keys when its
// message comes, then dropped: memory stays flat in N), and puts the
// report of every card's verified PoR, one per batch, where A's ota-report
// job picks it up.
func (w *World) SMSCReport(ctx context.Context) error {
	outbox := w.dropDir(codeA, "smsc", "outbox")
	batches, err := filepath.Glob(filepath.Join(outbox, "*_ota-batch_*"))
	if err != nil {
		return err
	}
	if len(batches) == 0 {
		return fmt.Errorf("bench: no ota-batch in %s", outbox)
	}
	w.fleet.Opts.Profile = w.a.Party.Profiles[profileName].OTA
	cardOf := func(msisdn string) (*simcard.Card, error) {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		c := w.fleet.ByMSISDN(msisdn)
		if c == nil {
			return nil, nil
		}
		if err := w.fleet.BuildSIM(c); err != nil {
			return nil, err
		}
		return c.SIM, nil
	}
	sm := smsc.New()
	sm.Now = w.now
	pors := 0
	for i, batch := range batches {
		st, err := w.smscReport(sm, batch, i+1, cardOf)
		if err != nil {
			return fmt.Errorf("bench: ota-report for %s: %w", filepath.Base(batch), err)
		}
		pors += st.PoRs
	}
	if pors != w.n {
		return fmt.Errorf("bench: the SMSC has %d PoRs, want %d", pors, w.n)
	}
	return nil
}

// smscReport writes the SMSC's report number seq on one ota-batch.
func (w *World) smscReport(sm *smsc.SMSC, batch string, seq int, cardOf func(string) (*simcard.Card, error)) (smsc.Stats, error) {
	var st smsc.Stats
	in, err := os.Open(batch)
	if err != nil {
		return st, err
	}
	defer in.Close()
	name := fmt.Sprintf("SMSC_%s_ota-report_%s_%06d.txt", codeA, w.now().Format("20060102"), seq)
	path := filepath.Join(w.dropDir(codeA, "smsc", "inbox"), name)
	err = writeWith(path+".part", 0o600, func(f *os.File) error {
		var err error
		if st, err = sm.Stream(in, f, smsc.Report{Sender: "SMSC", Receiver: codeA, Sequence: seq}, cardOf); err != nil {
			return err
		}
		return f.Sync()
	})
	if err != nil {
		return st, err
	}
	return st, os.Rename(path+".part", path)
}

// OTAReport runs A's ota-report job on the SMSC's report: every PoR
// matched to its message, verified with its card's keys and judged, the
// cards confirmed, the imsi-result to B written, encrypted, signed and
// delivered. Every card must end confirmed.
func (w *World) OTAReport(ctx context.Context) error {
	if _, err := w.run(ctx, w.a, "ota-report", w.n); err != nil {
		return err
	}
	counts, err := w.a.Ledger.CountByState(ctx)
	if err != nil {
		return err
	}
	if counts[ledger.CardConfirmed] != w.n {
		return fmt.Errorf("bench: %d cards confirmed at A after the ota-report, want %d", counts[ledger.CardConfirmed], w.n)
	}
	return nil
}

// Handover runs A's handover sweep: every confirmed card handed over to B
// with its secrets re-wrapped under the A–B transport key.
func (w *World) Handover(ctx context.Context) error {
	_, err := w.run(ctx, w.a, "handover", w.n)
	return err
}

// HandoverIntake runs B's handover intake: every card's secrets unwrapped
// and sealed under B's master key, the provisioning file for B's HLR and
// the handover-ack for A written, encrypted, signed and delivered.
func (w *World) HandoverIntake(ctx context.Context) error {
	_, err := w.run(ctx, w.b, "handover-in", w.n)
	return err
}
