package main

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"resub/crypto/keywrap"
	"resub/crypto/pgp"
	"resub/formats/ident"
	"resub/formats/mapping"
	"resub/formats/native"
	"resub/formats/vendor"
	"resub/jobs"
	"resub/jobs/config"
	"resub/processor/ledger"
)

func init() {
	register(&command{name: "check", summary: "validate one file: every problem as FILE:LINE: field: message", run: runCheck})
}

// checkOptions is everything `resub check` needs. The flags fill Type,
// Path and MaxProblems; with --config and --partner the configuration
// fills the partner's expectations and hooks (Native, Vendor, Mapping)
// and, with the keys (--key and --signer, or the configuration's), Open
// (decrypt and verify before the check).
type checkOptions struct {
	Type        string
	Path        string
	MaxProblems int
	Native      native.Options
	Vendor      vendor.Options
	// Mapping, when set, says the file is in the partner's CSV layout:
	// it is read through the mapping and its records checked by the
	// native rules, problems named by the partner's column names.
	// PartnerTransportKey is then the key ID its wrapped fields must name.
	// MappingUnlessNative applies Mapping only to a file that does not
	// start like a native file.
	Mapping             *mapping.Mapping
	MappingUnlessNative bool
	PartnerTransportKey string
	// Open opens the file to check; nil opens it as is.
	Open func(path string) (io.ReadCloser, error)

	// lateErr is a configuration problem met during the check (a
	// transport key that did not resolve); it decides the exit code.
	lateErr error
}

// checkConfig holds the flags that select a configuration and keys.
type checkConfig struct {
	Config, Partner, Key, Signer string
	Pass                         passphraseFlags
}

// configureCheck fills opts from the configuration and keys named by the
// flags: the partner's code as sender and ours as receiver, its PLMNs and
// IMSI ranges, ICCID conventions, transport key check values, column
// mapping, and the last sequence numbers and files sent from the ledger
// (when it exists). With --key and --signer, or with --config for a
// partner that uses PGP and a file that is PGP, the file is decrypted and
// its signature verified before anything is checked (two passes, no
// plaintext on disk). The returned function releases what it opened.
func configureCheck(e *env, cc checkConfig, opts *checkOptions) (func(), error) {
	done := func() {}
	if cc.Config == "" && cc.Partner == "" && cc.Key == "" && cc.Signer == "" {
		return done, nil
	}
	if (cc.Config == "") != (cc.Partner == "") {
		return done, usagef("check: --config and --partner go together")
	}
	if cc.Config == "" && (cc.Key == "") != (cc.Signer == "") {
		return done, usagef("check: --key and --signer go together (or give --config and --partner)")
	}
	var pc *partnerConfig
	if cc.Config != "" {
		var err error
		if pc, err = loadPartner(cc.Config, cc.Partner); err != nil {
			return done, err
		}
		if err := pc.fillCheck(e, opts); err != nil {
			return done, err
		}
		if db := pc.openLedger(e); db != nil {
			ctx := e.ctx
			opts.Native.LastSequence = func(sender, receiver, format string) (int, bool) {
				l, ok := db.LastSeq(ctx, sender, receiver, format)
				return int(l), ok
			}
			opts.Native.SentFile = func(name string, sum [32]byte) bool {
				return db.SentFile(ctx, name, hex.EncodeToString(sum[:]))
			}
			done = func() { db.Close() }
		}
	}

	// Decryption and verification. The keys are read when a file needs
	// them: a file in clear checks without our passphrase.
	usePGP := cc.Key != "" || cc.Signer != "" || (pc != nil && !pc.p.PGP.Disabled)
	if !usePGP {
		return done, nil
	}
	always := cc.Key != "" || cc.Signer != ""
	opts.Open = func(path string) (io.ReadCloser, error) {
		if !always && !looksPGP(path) {
			return os.Open(path)
		}
		do, err := decryptOptions(cc, pc)
		if err != nil {
			return nil, err
		}
		open := func() (io.ReadCloser, error) { return os.Open(path) }
		v, err := pgp.Open(open, do)
		if err != nil {
			return nil, err
		}
		e.log.Info("decrypted and verified", "file", path, "signer", v.Signer, "signed_at", v.SignedAt, "sha256", v.SHA256, "bytes", v.PlaintextSize, "cipher", v.Cipher)
		return v.Plaintext()
	}
	return done, nil
}

// decryptOptions gathers the keys: ours from --key or the configuration,
// the sender's from --signer or the partner's pinned keys.
func decryptOptions(cc checkConfig, pc *partnerConfig) (pgp.DecryptOptions, error) {
	var (
		do  = pgp.DecryptOptions{MaxSize: pgp.DefaultMaxSize}
		err error
	)
	switch {
	case cc.Key != "":
		do.Keys, err = readSecretKeys("--key", []string{cc.Key}, &cc.Pass)
	case pc != nil:
		do.Keys, err = pc.ourKeys()
	default:
		err = usagef("check: --key is needed to decrypt")
	}
	if err != nil {
		return do, err
	}
	switch {
	case cc.Signer != "":
		do.Signers, err = readPublicKeys("--signer", []string{cc.Signer})
	case pc != nil && !pc.p.PGP.Disabled:
		do.Signers, err = pc.partnerKeys()
		do.Fingerprints = pc.p.PGP.Fingerprints
	default:
		err = usagef("check: --signer is needed to verify the signature")
	}
	if pc != nil {
		do.MaxSize = pc.cfg.Limits.MaxFileBytes
	}
	return do, err
}

// looksPGP reports whether a file starts like an OpenPGP message (binary
// packet or ASCII armor).
func looksPGP(path string) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	b := make([]byte, 32)
	n, _ := io.ReadFull(f, b)
	b = b[:n]
	return (n > 0 && b[0]&0x80 != 0) || bytes.HasPrefix(b, []byte("-----BEGIN PGP"))
}

// partnerConfig is a loaded configuration and one of its partners.
type partnerConfig struct {
	cfg  *config.Config
	name string // partners.<name>
	p    *config.Partner
}

// loadPartner loads the configuration and finds the partner by its name
// in the configuration or by its party code.
func loadPartner(path, partner string) (*partnerConfig, error) {
	cfg, err := config.Load(path)
	if err != nil {
		return nil, err
	}
	if p := cfg.Partners[partner]; p != nil {
		return &partnerConfig{cfg: cfg, name: partner, p: p}, nil
	}
	names := make([]string, 0, len(cfg.Partners))
	for name, p := range cfg.Partners {
		if p != nil && p.Code == partner {
			return &partnerConfig{cfg: cfg, name: name, p: p}, nil
		}
		names = append(names, name)
	}
	sort.Strings(names)
	return nil, usagef("%s has no partner %q (partners: %s)", path, partner, strings.Join(names, ", "))
}

func (pc *partnerConfig) path() string { return "partners." + pc.name }

// fillCheck sets the partner's expectations in opts.
func (pc *partnerConfig) fillCheck(e *env, opts *checkOptions) error {
	p := pc.p
	opts.Native.Sender = p.Code
	opts.Native.Receiver = pc.cfg.Party.Name
	opts.Native.MaxLineLength = pc.cfg.Limits.MaxLineBytes
	opts.Native.Limits = native.Limits{MaxRecords: pc.cfg.Limits.MaxRecords, MaxRecordErrors: pc.cfg.Limits.MaxRecordErrors}
	opts.Vendor.Limits = opts.Native.Limits
	rs, err := jobs.IMSIRanges(p.PLMNs, p.IMSIRanges)
	if err != nil {
		return &jobs.ConfigError{Path: pc.path() + ".imsi_ranges", Err: err}
	}
	opts.Native.SenderRanges = rs
	opts.Vendor.ICCID = ident.ICCIDOptions{NoCheckDigit: p.ICCID.NoCheckDigit, FPadding: p.ICCID.FPadded}
	// The transport keys are resolved only when a header names one: a
	// file without wrapped fields checks without their secrets.
	var first string
	if len(p.TransportKeys) > 0 {
		first = p.TransportKeys[0].ID
		var (
			kcvs     map[string][]byte
			resolved bool
		)
		opts.Native.TransportKey = func(id string) ([]byte, bool) {
			if !resolved {
				resolved = true
				kcvs, _, opts.lateErr = pc.transportKCVs()
			}
			k, ok := kcvs[id]
			return k, ok
		}
	}
	m, ok, err := p.Mapping(opts.Type)
	if err != nil {
		return &jobs.ConfigError{Path: pc.path() + ".columns." + opts.Type, Err: err}
	}
	if ok {
		opts.Mapping, opts.MappingUnlessNative, opts.PartnerTransportKey = m, true, first
	}
	e.log.Debug("checking against the configuration", "config", pc.cfg.Path(), "partner", pc.name, "sender", p.Code, "receiver", pc.cfg.Party.Name, "mapping", ok)
	return nil
}

// transportKCVs returns the check value of each of the partner's
// transport keys, and the first key's ID (the current one). A KCV written
// in the configuration is taken as it is; otherwise the key is resolved
// through its secret reference, its KCV computed and the key zeroed.
func (pc *partnerConfig) transportKCVs() (map[string][]byte, string, error) {
	out := map[string][]byte{}
	first := ""
	for i, t := range pc.p.TransportKeys {
		tp := fmt.Sprintf("%s.transport_keys[%d]", pc.path(), i)
		if first == "" {
			first = t.ID
		}
		if t.KCV != "" {
			b, err := hex.DecodeString(t.KCV)
			if err != nil {
				return nil, "", &jobs.ConfigError{Path: tp + ".kcv", Err: err}
			}
			out[t.ID] = b
			continue
		}
		s, err := pc.cfg.Resolve(t.Key)
		if err != nil {
			return nil, "", &jobs.ConfigError{Path: tp + ".key", Err: err}
		}
		key, err := s.KeyBytes()
		s.Wipe()
		if err != nil {
			return nil, "", &jobs.ConfigError{Path: tp + ".key", Err: err}
		}
		tk, err := keywrap.NewTransportKey(t.ID, key, keywrap.Mode(t.Mode), keywrap.TransportKeyOptions{})
		clear(key)
		if err != nil {
			return nil, "", &jobs.ConfigError{Path: tp, Err: err}
		}
		out[t.ID] = tk.KCV()
		tk.Zero()
	}
	return out, first, nil
}

// ourKeys reads and unlocks our own secret key from the configuration.
func (pc *partnerConfig) ourKeys() ([]*pgp.Key, error) {
	cfg := pc.cfg
	keys, err := readKeyFile("pgp.secret_key", cfg.Abs(cfg.PGP.SecretKey))
	if err != nil {
		return nil, &jobs.ConfigError{Path: "pgp.secret_key", Err: err}
	}
	var pass config.Secret
	if cfg.PGP.Passphrase.IsSet() {
		if pass, err = cfg.Resolve(cfg.PGP.Passphrase); err != nil {
			return nil, &jobs.ConfigError{Path: "pgp.passphrase", Err: err}
		}
		defer pass.Wipe()
	}
	var out []*pgp.Key
	for _, k := range keys {
		if !k.IsSecret() {
			continue
		}
		if err := k.Unlock(pass); err != nil {
			return nil, &jobs.ConfigError{Path: "pgp.secret_key", Err: err}
		}
		out = append(out, k)
	}
	if len(out) == 0 {
		return nil, &jobs.ConfigError{Path: "pgp.secret_key", Err: pgp.ErrNoSecretKey}
	}
	return out, nil
}

// partnerKeys reads the partner's pinned public keys.
func (pc *partnerConfig) partnerKeys() ([]*pgp.Key, error) {
	var out []*pgp.Key
	for i, f := range pc.p.PGP.PublicKeys {
		keys, err := readKeyFile("public key", pc.cfg.Abs(f))
		if err != nil {
			return nil, &jobs.ConfigError{Path: fmt.Sprintf("%s.pgp.public_keys[%d]", pc.path(), i), Err: err}
		}
		for _, k := range keys {
			out = append(out, k.Public())
		}
	}
	return out, nil
}

// openLedger opens the configured ledger if it exists (a check never
// creates one); nil when there is none.
func (pc *partnerConfig) openLedger(e *env) *ledger.DB {
	path, ok := strings.CutPrefix(pc.cfg.Ledger, "sqlite:")
	if !ok {
		// A server ledger: its database exists already.
		path = "the PostgreSQL ledger"
	} else if _, err := os.Stat(path); err != nil {
		e.log.Debug("no ledger: sequence and in-reply-to not checked against it", "ledger", path)
		return nil
	}
	db, err := jobs.OpenLedger(e.ctx, pc.cfg)
	if err != nil {
		e.log.Warn("ledger not opened: sequence and in-reply-to not checked against it", "ledger", path, "err", err)
		return nil
	}
	return db
}

func checkUsage() string {
	return "check --type TYPE [--config FILE --partner P] [--key SEC [--passphrase-env V|--passphrase-file F] --signer PUB] [--max N] FILE\n\n" +
		"with --config and --partner: the partner's code, our party code, its PLMNs and IMSI ranges, ICCID\n" +
		"conventions, transport key check values, column mapping (for a file not in the native layout) and\n" +
		"the ledger's sequence numbers and sent files; a PGP file is decrypted with our key and verified\n" +
		"against the partner's pinned keys (or --key and --signer) before the check, nothing in clear on disk\n\n" +
		"types: " + strings.Join(native.TypeNames(), " ") + "\n" +
		"(inventory reads our native inventory or the SIM vendor's output file)\n" +
		"exit 0 valid, 1 invalid, 2 unknown type or usage\n"
}

func runCheck(e *env, args []string) error {
	fs := e.newFlags("check", checkUsage())
	var opts checkOptions
	var cc checkConfig
	fs.StringVar(&opts.Type, "type", "", "file type (see the list above)")
	fs.StringVar(&cc.Config, "config", "", "configuration `FILE` (with --partner: check against that partner's settings)")
	fs.StringVar(&cc.Partner, "partner", "", "partner ID of the configuration")
	fs.StringVar(&cc.Key, "key", "", "our secret key, to decrypt the file")
	fs.StringVar(&cc.Signer, "signer", "", "the sender's public key, to verify its signature")
	cc.Pass.register(fs, "--key")
	fs.IntVar(&opts.MaxProblems, "max", 100, "print at most `N` problems (the rest are counted)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usagef("check: one FILE expected")
	}
	opts.Path = fs.Arg(0)
	if opts.Type == "" {
		return usagef("check: --type is required (one of %s)", strings.Join(native.TypeNames(), " "))
	}
	if _, ok := native.Lookup(opts.Type); !ok {
		return usagef("check: unknown type %q (one of %s)", opts.Type, strings.Join(native.TypeNames(), " "))
	}
	done, err := configureCheck(e, cc, &opts)
	defer done()
	if err != nil {
		return err
	}
	return check(e, &opts)
}

// invalidFile is the result of a check that found problems (exit 1).
type invalidFile struct{ problems int }

func (f invalidFile) Error() string { return fmt.Sprintf("%d problems", f.problems) }
func (f invalidFile) Refused() bool { return true }

// check runs the check and prints the problems and a summary line.
func check(e *env, opts *checkOptions) error {
	open := opts.Open
	if open == nil {
		open = func(p string) (io.ReadCloser, error) { return os.Open(p) }
	}
	f, err := open(opts.Path)
	if err != nil {
		var refused interface{ Refused() bool }
		if errors.As(err, &refused) && refused.Refused() {
			fmt.Fprintf(e.io.out, "%s: %s: refused: %v\n", opts.Path, opts.Type, err)
			return silentError{err}
		}
		return usagef("check: %v", err)
	}
	defer f.Close()
	br := bufio.NewReader(f)

	p := &problemPrinter{w: e.io.out, max: opts.MaxProblems}
	var records int
	if opts.Mapping != nil && !(opts.MappingUnlessNative && isNative(br)) {
		records, err = checkPartner(br, opts, p)
	} else if opts.Type == "inventory" && !isNative(br) {
		vo := opts.Vendor
		vo.File = opts.Path
		records, err = checkVendor(br, vo, p)
	} else {
		no := opts.Native
		no.File = opts.Path
		no.Type = opts.Type
		if no.Name == "" {
			if _, perr := native.ParseName(filepath.Base(opts.Path)); perr == nil {
				no.Name = filepath.Base(opts.Path)
			}
		}
		records, err = checkNative(br, no, p)
	}
	if err != nil {
		return err
	}
	if opts.lateErr != nil {
		return opts.lateErr
	}
	if p.more > 0 {
		fmt.Fprintf(e.io.out, "%s: ... and %d more %s\n", opts.Path, p.more, noun(p.more, "problem"))
	}
	if p.n == 0 {
		fmt.Fprintf(e.io.out, "%s: %s: %d records, valid\n", opts.Path, opts.Type, records)
		return nil
	}
	fmt.Fprintf(e.io.out, "%s: %s: %d records, %s: invalid\n", opts.Path, opts.Type, records, plural(p.n, "problem"))
	return silentError{invalidFile{p.n}}
}

// isNative reports whether the file starts like a native file.
func isNative(br *bufio.Reader) bool {
	b, _ := br.Peek(16)
	b = []byte(strings.TrimPrefix(string(b), "\ufeff"))
	return strings.HasPrefix(string(b), "#")
}

type problemPrinter struct {
	w       io.Writer
	max     int
	n, more int
}

func (p *problemPrinter) add(err error) {
	for _, pe := range native.Problems(err) {
		p.n++
		if p.n > p.max {
			p.more++
			continue
		}
		fmt.Fprintln(p.w, pe.Error())
	}
}

// checkNative reads a native file to the end; err is only for I/O.
func checkNative(r io.Reader, o native.Options, p *problemPrinter) (int, error) {
	rd := native.NewReader(r, o)
	rd.ReuseRecord = true
	h, err := rd.Header()
	p.add(err)
	if h == nil {
		return 0, ioOnly(err)
	}
	for {
		_, err := rd.Read()
		if err == io.EOF {
			return rd.Count(), nil
		}
		if err != nil && !native.Recoverable(err) {
			p.add(err)
			return rd.Count(), ioOnly(err)
		}
		p.add(err)
	}
}

func checkVendor(r io.Reader, o vendor.Options, p *problemPrinter) (int, error) {
	rd := vendor.NewReader(r, o)
	h, err := rd.Header()
	p.add(err)
	if h == nil {
		return 0, ioOnly(err)
	}
	n := 0
	for {
		c, err := rd.Read()
		if err == io.EOF {
			return n, nil
		}
		if err != nil && !native.Recoverable(err) {
			p.add(err)
			return n, ioOnly(err)
		}
		p.add(err)
		if c != nil {
			n++
			c.Zero()
		}
	}
}

// ioOnly keeps an error that is not a reported problem (an I/O error).
func ioOnly(err error) error {
	var pe *native.ParseError
	var el native.ErrorList
	if err == nil || errors.As(err, &pe) || errors.As(err, &el) {
		return nil
	}
	return err
}

// checkPartner checks a partner's CSV file under opts.Mapping.
func checkPartner(r io.Reader, opts *checkOptions, p *problemPrinter) (int, error) {
	s, _ := native.Lookup(opts.Type)
	if err := opts.Mapping.Check(s); err != nil {
		return 0, usagef("check: %v", err)
	}
	partnerName := map[string]string{}
	for _, c := range opts.Mapping.Columns {
		if c.Field != "" {
			partnerName[c.Field] = c.Name
		}
	}
	no := opts.Native
	no.File = opts.Path
	rd := mapping.NewReader(r, opts.Mapping, s, opts.Path)
	rd.SetLimits(opts.Native.Limits)
	ck := native.NewRecordChecker(s, opts.PartnerTransportKey, mappedColumns(opts.Mapping), no)
	n := 0
	for {
		rec, err := rd.Read()
		if err == io.EOF {
			return n, nil
		}
		p.add(err)
		if err != nil && !native.Recoverable(err) {
			return n, ioOnly(err)
		}
		if rec == nil {
			continue
		}
		n++
		if err == nil { // fields that did not convert are already reported
			for _, pe := range ck.Check(rec) {
				if name, ok := partnerName[pe.Field]; ok {
					pe.Field = name
				}
				p.add(pe)
			}
		}
	}
}

// plural returns "1 problem", "2 problems".
func plural(n int, what string) string { return fmt.Sprintf("%d %s", n, noun(n, what)) }

func noun(n int, what string) string {
	if n == 1 {
		return what
	}
	return what + "s"
}
