package jobs

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"resub/crypto/keywrap"
	"resub/crypto/pgp"
	"resub/formats/ident"
	"resub/formats/native"
	"resub/formats/ota"
	"resub/jobs/config"
	"resub/processor"
	"resub/processor/ledger"
	"resub/processor/ledger/postgres"
	"resub/processor/ledger/sqlite"
)

// ConfigError is a configuration that cannot be put to work (a key that
// does not load, a profile the OTA layer refuses): exit code 2.
type ConfigError struct {
	Path string
	Err  error
}

func (e *ConfigError) Error() string      { return e.Path + ": " + e.Err.Error() }
func (e *ConfigError) Unwrap() error      { return e.Err }
func (e *ConfigError) ConfigError() bool  { return true }
func cfgErr(path string, err error) error { return &ConfigError{Path: path, Err: err} }

// OpenLedger opens the configured ledger.
func OpenLedger(ctx context.Context, cfg *config.Config, opts ...ledger.Option) (*ledger.DB, error) {
	return OpenLedgerURL(ctx, cfg, cfg.Ledger, cfg.LedgerPassword, opts...)
}

// OpenLedgerURL opens the ledger spec names (sqlite:PATH or a PostgreSQL
// URL), its password by reference resolved against cfg's folder (cfg may
// be nil: references then resolve against the working folder).
func OpenLedgerURL(ctx context.Context, cfg *config.Config, spec string, password config.SecretRef, opts ...ledger.Option) (*ledger.DB, error) {
	if path, ok := strings.CutPrefix(spec, "sqlite:"); ok {
		if password.IsSet() {
			return nil, cfgErr("ledger_password", errors.New("only a PostgreSQL ledger takes a password"))
		}
		return sqlite.Open(ctx, path, opts...)
	}
	if !postgres.IsURL(spec) {
		return nil, cfgErr("ledger", errors.New("neither sqlite:PATH nor a postgres:// URL"))
	}
	if err := postgres.CheckURL(spec); err != nil {
		return nil, cfgErr("ledger", err)
	}
	var pw config.Secret
	if password.IsSet() {
		var err error
		if cfg != nil {
			pw, err = cfg.Resolve(password)
		} else {
			pw, err = config.ResolveRef(password)
		}
		if err != nil {
			return nil, cfgErr("ledger_password", err)
		}
		defer pw.Wipe()
	}
	db, err := postgres.Open(ctx, spec, pw.Bytes(), opts...)
	switch {
	case err == nil:
		return db, nil
	case postgres.Unreachable(err):
		// Down, restarting, or not reachable now: try again later.
		return nil, &ledger.BusyError{Err: err}
	}
	// A refused login, a missing database, no right to create the
	// ledger's tables: the configuration's (exit 2).
	return nil, cfgErr("ledger", err)
}

// BuildParty turns the configuration into the processor's party: secrets
// are resolved here and kept only in memory.
func BuildParty(cfg *config.Config, db *ledger.DB) (*processor.Party, error) {
	p := &processor.Party{
		Name: cfg.Party.Name, Ledger: db,
		Partners: map[string]*processor.Partner{}, Profiles: map[string]*processor.Profile{},
		OutDir: filepath.Join(cfg.DataDir, "out"), ScratchDir: filepath.Join(cfg.DataDir, "scratch"),
		OTA:       processor.OTASettings{Originator: cfg.OTA.Originator, CounterJump: int64(cfg.OTA.CounterJump), PoRMargin: cfg.OTA.PoRMargin.D()},
		Retention: cfg.Retention.D(), MaxFileBytes: cfg.Limits.MaxFileBytes, MaxLineBytes: cfg.Limits.MaxLineBytes,
		Limits: native.Limits{MaxRecords: cfg.Limits.MaxRecords, MaxRecordErrors: cfg.Limits.MaxRecordErrors},
		AuCKey: cfg.Handover.AuCTransportKey,
	}
	// Our key.
	keyData, err := os.ReadFile(cfg.Abs(cfg.PGP.SecretKey))
	if err != nil {
		return nil, cfgErr("pgp.secret_key", err)
	}
	keys, err := pgp.ReadKeys(bytes.NewReader(keyData))
	if err != nil {
		return nil, cfgErr("pgp.secret_key", err)
	}
	var pass config.Secret
	if cfg.PGP.Passphrase.IsSet() {
		if pass, err = cfg.Resolve(cfg.PGP.Passphrase); err != nil {
			return nil, cfgErr("pgp.passphrase", err)
		}
		defer pass.Wipe()
	}
	for _, k := range keys {
		if !k.IsSecret() {
			continue
		}
		if k.IsLocked() {
			if err := k.Unlock(pass); err != nil {
				return nil, cfgErr("pgp.secret_key", err)
			}
		}
		p.Keys = append(p.Keys, k)
	}
	if len(p.Keys) == 0 {
		return nil, cfgErr("pgp.secret_key", errors.New("holds no secret key"))
	}
	// Master key.
	vault, err := buildVault(cfg)
	if err != nil {
		return nil, err
	}
	p.Vault = vault
	// Our ranges.
	p.Ranges, err = IMSIRanges(cfg.PLMNs, cfg.IMSIRanges)
	if err != nil {
		return nil, cfgErr("imsi_ranges", err)
	}
	for i, r := range cfg.IMSIRanges {
		name := r.Name
		if name == "" {
			name = fmt.Sprintf("range-%d", i+1)
		}
		p.RangeList = append(p.RangeList, processor.Range{Name: name, From: r.From, To: r.To})
	}
	for name, pc := range cfg.Partners {
		pt, err := buildPartner(cfg, name, pc)
		if err != nil {
			return nil, err
		}
		p.Partners[name] = pt
	}
	for name, pr := range cfg.Profiles {
		prof, err := buildProfile(name, pr)
		if err != nil {
			return nil, cfgErr("profiles."+name, err)
		}
		p.Profiles[name] = prof
	}
	return p, nil
}

func buildVault(cfg *config.Config) (*processor.SealVault, error) {
	load := func(path string, ref config.SecretRef, id string) (*keywrap.Sealer, []byte, error) {
		s, err := cfg.Resolve(ref)
		if err != nil {
			return nil, nil, cfgErr(path, err)
		}
		defer s.Wipe()
		key, err := keywrap.ParseMasterKey(s.Bytes())
		if err != nil {
			return nil, nil, cfgErr(path, err)
		}
		sealer, err := keywrap.NewSealer(id, key, nil)
		if err != nil {
			return nil, nil, cfgErr(path, err)
		}
		fp := processor.FingerprintKey(key)
		clear(key)
		return sealer, fp, nil
	}
	cur, fp, err := load("master_key.key", cfg.MasterKey.Key, cfg.MasterKey.ID)
	if err != nil {
		return nil, err
	}
	var prev []*keywrap.Sealer
	for i, pk := range cfg.MasterKey.Previous {
		s, _, err := load(fmt.Sprintf("master_key.previous[%d].key", i), pk.Key, pk.ID)
		if err != nil {
			return nil, err
		}
		prev = append(prev, s)
	}
	v := processor.NewVault(cur, fp, prev...)
	clear(fp)
	return v, nil
}

// IMSIRanges turns configured PLMNs and IMSI ranges into the ranges IMSIs
// must lie in: each range within its PLMN, and every PLMN without a range
// whole. No PLMN: no constraint.
func IMSIRanges(plmns []config.PLMN, rs []config.IMSIRange) (ident.IMSIRanges, error) {
	var out ident.IMSIRanges
	covered := map[string]bool{}
	for _, r := range rs {
		found := false
		for _, pl := range plmns {
			prefix := pl.MCC + pl.MNC
			if strings.HasPrefix(r.From, prefix) && strings.HasPrefix(r.To, prefix) {
				out = append(out, ident.IMSIRange{PLMN: ident.PLMN{MCC: pl.MCC, MNC: pl.MNC}, From: r.From[len(prefix):], To: r.To[len(prefix):]})
				covered[prefix] = true
				found = true
				break
			}
		}
		if !found {
			return nil, fmt.Errorf("range %s-%s is in none of the PLMNs", r.From, r.To)
		}
	}
	for _, pl := range plmns {
		if !covered[pl.MCC+pl.MNC] {
			out = append(out, ident.IMSIRange{PLMN: ident.PLMN{MCC: pl.MCC, MNC: pl.MNC}})
		}
	}
	return out, nil
}

func buildPartner(cfg *config.Config, name string, pc *config.Partner) (*processor.Partner, error) {
	path := "partners." + name
	pt := &processor.Partner{
		Name: name, Code: pc.Code, Kind: pc.Kind, PGPOff: pc.PGP.Disabled, Armor: pc.PGP.Armor,
		Compression: pgp.Compression(pc.PGP.Compression), Fingerprints: pc.PGP.Fingerprints,
		ICCIDRules: ident.ICCIDOptions{NoCheckDigit: pc.ICCID.NoCheckDigit, FPadding: pc.ICCID.FPadded},
		Deadlines:  map[string]time.Duration{},
		Policy:     processor.Policy{ResetWithUpdate: pc.Policy.ResetWithUpdate, PerNightCap: pc.Policy.PerNightCap, MaxAttempts: pc.Policy.MaxAttempts},
		SMPP:       pc.SMPP != nil,
	}
	for k, d := range pc.Deadlines {
		pt.Deadlines[k] = d.D()
	}
	if !pc.PGP.Disabled {
		keys, err := pinnedKeys(cfg, name)
		if err != nil {
			return nil, err
		}
		pt.PublicKeys = keys
	}
	var tks []*keywrap.TransportKey
	for i, t := range pc.TransportKeys {
		tp := fmt.Sprintf("%s.transport_keys[%d]", path, i)
		s, err := cfg.Resolve(t.Key)
		if err != nil {
			return nil, cfgErr(tp+".key", err)
		}
		key, err := s.KeyBytes()
		s.Wipe()
		if err != nil {
			return nil, cfgErr(tp+".key", err)
		}
		tk, err := keywrap.NewTransportKey(t.ID, key, keywrap.Mode(t.Mode), keywrap.TransportKeyOptions{})
		clear(key)
		if err != nil {
			return nil, cfgErr(tp, err)
		}
		if t.KCV != "" {
			if err := tk.CheckKCV(t.KCV); err != nil {
				return nil, cfgErr(tp+".kcv", err)
			}
		}
		tks = append(tks, tk)
	}
	if len(tks) > 0 {
		pt.Transport = processor.NewTransport(tks[0], tks[1:]...)
	}
	var err error
	pt.Ranges, err = IMSIRanges(pc.PLMNs, pc.IMSIRanges)
	if err != nil {
		return nil, cfgErr(path+".imsi_ranges", err)
	}
	return pt, nil
}

func unhex(s string) ([]byte, error) { return hex.DecodeString(strings.ReplaceAll(s, " ", "")) }

func tar(s string) (ota.TAR, error) { return ota.ParseTAR(s) }

// buildProfile maps a configured card profile to the OTA layer's.
func buildProfile(name string, c *config.Profile) (*processor.Profile, error) {
	p := &ota.Profile{Name: name, TestOnly: c.TestOnly, ADMNCOffset: c.ADOffset}
	var err error
	if p.TAR, err = tar(c.TAR); err != nil {
		return nil, err
	}
	b, err := unhex(c.SPI)
	if err != nil || len(b) != 2 {
		return nil, fmt.Errorf("spi %q", c.SPI)
	}
	p.SPI = ota.SPI(uint16(b[0])<<8 | uint16(b[1]))
	for _, f := range []struct {
		v   string
		dst *byte
	}{{c.KIc, (*byte)(&p.KIc)}, {c.KID, (*byte)(&p.KID)}, {c.CLA, &p.CLA}} {
		b, err := unhex(f.v)
		if err != nil || len(b) != 1 {
			return nil, fmt.Errorf("%q is not one byte of hex", f.v)
		}
		*f.dst = b[0]
	}
	if c.Format == "expanded" {
		p.Format = ota.FormatExpanded
	}
	if c.GSMCopy {
		p.GSMIMSIPath, _ = ota.ParsePath("3F00/7F20/6F07")
	}
	if p.Addressing, err = ota.ParseAddressing(c.Addressing); err != nil {
		return nil, err
	}
	if c.USIMAID != "" {
		if p.USIMAID, err = unhex(c.USIMAID); err != nil {
			return nil, fmt.Errorf("usim_aid: %w", err)
		}
	}
	for _, v := range c.Invalidate {
		switch v {
		case "loci":
			p.InvalidateLOCI = true
		case "psloci":
			p.InvalidatePSLOCI = true
		case "epsloci":
			p.InvalidateEPSLOCI = true
		case "5gsloci":
			p.Invalidate5GSLOCI = true
		}
	}
	for _, u := range c.Extra {
		path, err := ota.ParsePath(strings.Join(splitFIDs(u.Path), "/"))
		if err != nil {
			return nil, err
		}
		data, err := unhex(u.Data)
		if err != nil {
			return nil, err
		}
		p.Extra = append(p.Extra, ota.FileUpdate{Path: path, Offset: u.Offset, Data: data})
	}
	if p.ResetTAR, err = tar(c.Reset.TAR); err != nil {
		return nil, fmt.Errorf("reset.tar: %w", err)
	}
	if p.ResetAPDU, err = unhex(c.Reset.APDU); err != nil {
		return nil, fmt.Errorf("reset.apdu: %w", err)
	}
	prof := &processor.Profile{Name: name, OTA: p, Algorithm: c.Algorithm, ListLength: c.ListLength, Rate: c.Rate, Window: c.Window, Validity: c.Validity.D()}
	if c.Zone != "" {
		if prof.Zone, err = time.LoadLocation(c.Zone); err != nil {
			return nil, fmt.Errorf("zone: %w", err)
		}
	}
	if k := c.KeyIndex; k != nil {
		t, err := tar(k.TAR)
		if err != nil {
			return nil, fmt.Errorf("key_index.tar: %w", err)
		}
		tmpl := strings.ToUpper(strings.ReplaceAll(k.APDU, " ", ""))
		at := strings.Index(tmpl, "II")
		if at < 0 || at%2 != 0 {
			return nil, fmt.Errorf("key_index.apdu: II must stand at a byte boundary")
		}
		apdu, err := unhex(strings.Replace(tmpl, "II", "00", 1))
		if err != nil {
			return nil, fmt.Errorf("key_index.apdu: %w", err)
		}
		kc := &ota.KeyIndexCommand{TAR: t, Template: apdu, IndexOffset: at / 2, WithUpdate: k.Message != "separate", Timing: ota.KeyIndexImmediately}
		if k.Effect == "reset" {
			kc.Timing = ota.KeyIndexAtReset
			prof.KeyIndexAtReset = true
		}
		p.KeyIndex = kc
	}
	if r := c.Rotation; r != nil {
		rt := &processor.Rotation{KVN: r.KVN, Replace: r.Replace == nil || *r.Replace}
		if r.TAR != "" {
			if rt.TAR, err = tar(r.TAR); err != nil {
				return nil, fmt.Errorf("rotation.tar: %w", err)
			}
		}
		prof.Rotation = rt
	}
	if err := p.Validate(); err != nil {
		return nil, err
	}
	return prof, nil
}

// splitFIDs reads "6F7B" or "3F007F206F07" or "3F00/7F20" as FIDs.
func splitFIDs(s string) []string {
	s = strings.ReplaceAll(s, "/", "")
	var out []string
	for i := 0; i+4 <= len(s); i += 4 {
		out = append(out, s[i:i+4])
	}
	return out
}
