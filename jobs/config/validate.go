package config

import (
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"resub/formats/native"
	"resub/jobs/schedule"
	"resub/processor/ledger/postgres"
)

// PartnerKinds are the kinds of partner.
var PartnerKinds = []string{"operator", "manufacturer", "m2m-operator", "smsc", "hlr", "internal"}

// JobKinds are the job kinds resub runs, with the partner kind each one
// reads from ("" where the job needs no partner).
var JobKinds = map[string]string{
	"b-switch-request": "m2m-operator", // B: switch request -> imsi-list to A
	"a-inventory":      "",             // A: vendor output files -> inventory
	"a-msisdn-map":     "",             // A: MSISDN map -> inventory
	"a-authorisation":  "m2m-operator", // A: switch authorisation
	"a-imsi-list":      "operator",     // A: imsi-list -> imsi-result + ota-batch
	"a-ota-report":     "smsc",         // A: ota-report -> card states, imsi-result
	"a-handover":       "operator",     // A: confirmed cards -> handover (+ key-release for 3b)
	"b-imsi-result":    "operator",     // B: imsi-result -> IMSI allocation states
	"b-handover":       "operator",     // B: handover -> provisioning + ack (3b: key-request)
	"b-key-response":   "manufacturer", // B (3b): key-response -> provisioning + ack
	"a-handover-ack":   "operator",     // A: handover-ack -> reset -> release
	"b-key-rotation":   "smsc",         // B: optional OTA key rotation
	"m-card-import":    "",             // manufacturer: card batch import
	"m-key-release":    "operator",     // manufacturer: key-release from the holder
	"m-key-request":    "operator",     // manufacturer: key-request -> key-response
	"deadlines":        "",             // any: overdue partners
	"erase":            "",             // any: crypto-erase released cards past retention
	"a-ota-deadline":   "smsc",         // A: messages without PoR past deadline -> unknown
	"a-ota-submit":     "smsc",         // A: queued OTA messages -> submit_sm; receipts and PoRs back over SMPP
}

// Deadline names a partner's deadlines may use.
var DeadlineNames = []string{"imsi-result", "ota-report", "handover", "handover-ack", "key-response", "imsi-list"}

func oneOf(v string, set []string) bool {
	for _, s := range set {
		if v == s {
			return true
		}
	}
	return false
}

func (c *Config) validate(ps *problems) {
	if !reParty.MatchString(c.Party.Name) {
		ps.add("party.name", "%q is not a party code (capital letters, digits and '-', up to 16)", c.Party.Name)
	}
	if !oneOf(c.Party.Role, []string{"operator", "manufacturer"}) {
		ps.add("party.role", "%q is not operator or manufacturer", c.Party.Role)
	}
	switch {
	case strings.HasPrefix(c.Ledger, "sqlite:"):
		if strings.TrimPrefix(c.Ledger, "sqlite:") == "" {
			ps.add("ledger", "sqlite: needs a path")
		}
	case postgres.IsURL(c.Ledger):
		// The message never repeats the URL: it may hold a password.
		if err := postgres.CheckURL(c.Ledger); err != nil {
			ps.add("ledger", "%s", err)
		}
	default:
		ps.add("ledger", "%q is neither sqlite:PATH nor a postgres:// URL", c.Ledger)
	}
	c.checkRef(ps, "ledger_password", c.LedgerPassword, false)
	if c.LedgerPassword.IsSet() && !postgres.IsURL(c.Ledger) {
		ps.add("ledger_password", "only a PostgreSQL ledger takes a password")
	}
	if c.Instance != "" && !reInstance.MatchString(c.Instance) {
		ps.add("instance", "%q is not an instance name (letters, digits, '.', '_', ':' and '-', up to 64)", c.Instance)
	}
	if c.LeaseTTL.D() < 5*time.Second {
		ps.add("lease_ttl", "%s is too short (at least 5s)", c.LeaseTTL.D())
	}
	if c.SlowStatement() < 0 {
		ps.add("ledger_slow_statement", "%s is negative (0s switches the log off)", c.SlowStatement())
	}
	if c.PGP.SecretKey == "" {
		ps.add("pgp.secret_key", "required: our OpenPGP secret key file")
	} else {
		c.fileExists(ps, "pgp.secret_key", c.PGP.SecretKey)
	}
	c.checkRef(ps, "pgp.passphrase", c.PGP.Passphrase, false)
	if c.MasterKey.ID == "" {
		ps.add("master_key.id", "required")
	}
	c.checkRef(ps, "master_key.key", c.MasterKey.Key, true)
	for i, p := range c.MasterKey.Previous {
		path := fmt.Sprintf("master_key.previous[%d]", i)
		if p.ID == "" || p.ID == c.MasterKey.ID {
			ps.add(path+".id", "needs an id different from the current key's")
		}
		c.checkRef(ps, path+".key", p.Key, true)
	}
	for i, pl := range c.PLMNs {
		checkPLMN(ps, fmt.Sprintf("plmns[%d]", i), pl)
	}
	checkRanges(ps, "imsi_ranges", c.IMSIRanges, c.PLMNs)
	c.validateLimits(ps)

	codes := map[string]string{}
	for _, name := range sortedKeys(c.Partners) {
		p := c.Partners[name]
		path := "partners." + name
		if !reName.MatchString(name) {
			ps.add(path, "partner names are lower case letters, digits, '.', '_' and '-'")
		}
		if p == nil {
			ps.add(path, "empty partner")
			continue
		}
		c.validatePartner(ps, path, p)
		if p.Code != "" {
			if other, dup := codes[p.Code]; dup {
				ps.add(path+".code", "duplicate partner: code %s is also partners.%s", p.Code, other)
			}
			codes[p.Code] = name
			if p.Code == c.Party.Name {
				ps.add(path+".code", "is our own party code")
			}
		}
	}
	for _, name := range sortedKeys(c.Profiles) {
		c.validateProfile(ps, "profiles."+name, c.Profiles[name])
	}
	names := map[string]bool{}
	for i, j := range c.Jobs {
		c.validateJob(ps, fmt.Sprintf("jobs[%d]", i), j, names)
	}
	c.validateHTTP(ps)
}

func (c *Config) fileExists(ps *problems, path, file string) {
	if _, err := os.Stat(c.Abs(file)); err != nil {
		if os.IsNotExist(err) {
			ps.add(path, "file not found: %s", file)
		} else {
			ps.add(path, "%v", err)
		}
	}
}

func (c *Config) checkRef(ps *problems, path string, r SecretRef, required bool) {
	if !r.IsSet() {
		if required {
			ps.add(path, "required: a secret reference (env:NAME or file:PATH)")
		}
		return
	}
	if msg := r.check(); msg != "" {
		ps.add(path, "%s", msg)
		return
	}
	if f, ok := strings.CutPrefix(string(r), "file:"); ok {
		c.fileExists(ps, path, f)
	}
}

func checkPLMN(ps *problems, path string, p PLMN) {
	if len(p.MCC) != 3 || !reDigit.MatchString(p.MCC) {
		ps.add(path+".mcc", "%q is not a 3-digit MCC", p.MCC)
	}
	if (len(p.MNC) != 2 && len(p.MNC) != 3) || !reDigit.MatchString(p.MNC) {
		ps.add(path+".mnc", "%q is not a 2- or 3-digit MNC", p.MNC)
	}
}

func checkRanges(ps *problems, path string, rs []IMSIRange, plmns []PLMN) {
	for i, r := range rs {
		p := fmt.Sprintf("%s[%d]", path, i)
		ok := true
		for _, f := range []struct{ name, v string }{{"from", r.From}, {"to", r.To}} {
			if len(f.v) < 14 || len(f.v) > 15 || !reDigit.MatchString(f.v) {
				ps.add(p+"."+f.name, "%q is not a 14- or 15-digit IMSI", f.v)
				ok = false
			}
		}
		if !ok {
			continue
		}
		if len(r.From) != len(r.To) || r.From > r.To {
			ps.add(p, "from %s is after to %s (or of another length)", r.From, r.To)
		}
		in := false
		for _, pl := range plmns {
			if strings.HasPrefix(r.From, pl.MCC+pl.MNC) && strings.HasPrefix(r.To, pl.MCC+pl.MNC) {
				in = true
			}
		}
		if !in {
			ps.add(p, "range %s-%s lies in none of the configured PLMNs", r.From, r.To)
		}
	}
}

func (c *Config) validatePartner(ps *problems, path string, p *Partner) {
	if !oneOf(p.Kind, PartnerKinds) {
		ps.add(path+".kind", "%q is not one of %s", p.Kind, strings.Join(PartnerKinds, ", "))
	}
	if !reParty.MatchString(p.Code) {
		ps.add(path+".code", "%q is not a party code (capital letters, digits and '-')", p.Code)
	}
	if p.SMPP != nil {
		c.validateSMPP(ps, path+".smpp", p)
	}
	d := p.Drop
	switch {
	case d.SFTP == nil && d.Local == nil && p.SMPP != nil:
		// An SMSC over SMPP needs no file drop.
	case d.SFTP == nil && d.Local == nil:
		ps.add(path+".drop", "needs sftp or local")
	case d.SFTP != nil && d.Local != nil:
		ps.add(path+".drop", "sftp and local are exclusive")
	case d.SFTP != nil:
		s := d.SFTP
		sp := path + ".drop.sftp"
		if s.Host == "" {
			ps.add(sp+".host", "required")
		}
		if s.Port < 1 || s.Port > 65535 {
			ps.add(sp+".port", "%d is not a TCP port", s.Port)
		}
		if s.User == "" {
			ps.add(sp+".user", "required")
		}
		if s.PrivateKey == "" && !s.Password.IsSet() {
			ps.add(sp+".private_key", "required (or a password reference where the partner insists)")
		}
		if s.PrivateKey != "" {
			c.fileExists(ps, sp+".private_key", s.PrivateKey)
		}
		c.checkRef(ps, sp+".passphrase", s.Passphrase, false)
		c.checkRef(ps, sp+".password", s.Password, false)
		if s.KnownHosts == "" {
			ps.add(sp+".known_hosts", "required: host keys are always verified")
		} else {
			c.fileExists(ps, sp+".known_hosts", s.KnownHosts)
		}
		if s.MaxSession < 1 {
			ps.add(sp+".max_sessions", "must be at least 1")
		}
	case d.Local != nil:
		if d.Local.Dir == "" {
			ps.add(path+".drop.local.dir", "required")
		} else {
			c.fileExists(ps, path+".drop.local.dir", d.Local.Dir)
		}
	}
	for i, pat := range d.Patterns {
		if _, err := filepath.Match(pat, ""); err != nil || strings.Contains(pat, "/") {
			ps.add(fmt.Sprintf("%s.drop.patterns[%d]", path, i), "%q is not a file name pattern", pat)
		}
	}
	if d.Marker != "" && d.Marker != ".done" && d.Marker != ".ok" {
		ps.add(path+".drop.marker", "%q is not .done or .ok", d.Marker)
	}
	if d.Stable < 0 {
		ps.add(path+".drop.stable", "must not be negative")
	}
	if p.PGP.Disabled {
		if !p.Internal() {
			ps.add(path+".pgp.disabled", "PGP is mandatory for a %s partner", p.Kind)
		}
	} else {
		if len(p.PGP.PublicKeys) == 0 {
			ps.add(path+".pgp.public_keys", "required: the partner's public key file(s)")
		}
		for i, f := range p.PGP.PublicKeys {
			c.fileExists(ps, fmt.Sprintf("%s.pgp.public_keys[%d]", path, i), f)
		}
		if len(p.PGP.Fingerprints) == 0 {
			ps.add(path+".pgp.fingerprints", "required: the signing key fingerprint(s) we accept")
		}
		for i, f := range p.PGP.Fingerprints {
			if !reFpr.MatchString(strings.ReplaceAll(f, " ", "")) {
				ps.add(fmt.Sprintf("%s.pgp.fingerprints[%d]", path, i), "%q is not a 40- or 64-hex-digit fingerprint", f)
			}
		}
	}
	if !oneOf(p.PGP.Compression, []string{"none", "zip", "zlib"}) {
		ps.add(path+".pgp.compression", "%q is not none, zip or zlib", p.PGP.Compression)
	}
	ids := map[string]bool{}
	for i, tk := range p.TransportKeys {
		tp := fmt.Sprintf("%s.transport_keys[%d]", path, i)
		if tk.ID == "" || strings.ContainsAny(tk.ID, ": \t") {
			ps.add(tp+".id", "required, without ':' or spaces")
		} else if ids[tk.ID] {
			ps.add(tp+".id", "duplicate transport key id %s", tk.ID)
		}
		ids[tk.ID] = true
		c.checkRef(ps, tp+".key", tk.Key, true)
		if !oneOf(tk.Mode, []string{"aes-kwp", "aes-gcm", "aes-cbc-fixed-iv", "aes-ecb", "3des-ecb"}) {
			ps.add(tp+".mode", "%q is not aes-kwp, aes-gcm, aes-cbc-fixed-iv, aes-ecb or 3des-ecb", tk.Mode)
		}
		if tk.KCV != "" {
			if b, err := hex.DecodeString(tk.KCV); err != nil || len(b) != 3 {
				ps.add(tp+".kcv", "%q is not 3 bytes of hex", tk.KCV)
			}
		}
	}
	for i, pl := range p.PLMNs {
		checkPLMN(ps, fmt.Sprintf("%s.plmns[%d]", path, i), pl)
	}
	checkRanges(ps, path+".imsi_ranges", p.IMSIRanges, p.PLMNs)
	for _, t := range sortedKeys(p.Columns) {
		mp := path + ".columns." + t
		c := p.Columns[t]
		schema, ok := native.Lookup(t)
		if !ok {
			ps.addLine(mp, c.node.Line, "%q is not a file type", t)
			continue
		}
		m, err := c.Mapping()
		if err != nil {
			ps.addLine(mp, c.node.Line, "%v", err)
			continue
		}
		if err := m.Check(schema); err != nil {
			ps.addLine(mp, c.node.Line, "%v", err)
		}
	}
	for _, k := range sortedKeys(p.Deadlines) {
		if !oneOf(k, DeadlineNames) {
			ps.add(path+".deadlines."+k, "unknown deadline (one of %s)", strings.Join(DeadlineNames, ", "))
		} else if p.Deadlines[k] <= 0 {
			ps.add(path+".deadlines."+k, "must be positive")
		}
	}
	if p.Policy.PerNightCap < 0 {
		ps.add(path+".policy.per_night_cap", "must not be negative")
	}
}

func hexLen(ps *problems, path, v string, n int) []byte {
	b, err := hex.DecodeString(v)
	if err != nil || !reHex.MatchString(v) || (n > 0 && len(b) != n) {
		if n > 0 {
			ps.add(path, "%q is not %d byte(s) of hex", v, n)
		} else {
			ps.add(path, "%q is not hex", v)
		}
		return nil
	}
	return b
}

func (c *Config) validateProfile(ps *problems, path string, p *Profile) {
	if p == nil {
		ps.add(path, "empty profile")
		return
	}
	hexLen(ps, path+".tar", p.TAR, 3)
	if spi := hexLen(ps, path+".spi", p.SPI, 2); spi != nil && !p.TestOnly {
		if spi[0]&0x03 != 0x02 && spi[0]&0x03 != 0x03 {
			ps.add(path+".spi", "SPI %s has no cryptographic checksum (mark the profile test_only to allow it)", p.SPI)
		}
		if m := (spi[0] >> 3) & 0x03; m != 0x02 && m != 0x03 {
			ps.add(path+".spi", "SPI %s does not check the counter (10 or 11) (mark the profile test_only to allow it)", p.SPI)
		}
		if spi[1]&0x03 != 0x01 {
			ps.add(path+".spi", "SPI %s asks for no proof of receipt (mark the profile test_only to allow it)", p.SPI)
		}
	}
	hexLen(ps, path+".kic", p.KIc, 1)
	hexLen(ps, path+".kid", p.KID, 1)
	if !oneOf(strings.ToUpper(p.CLA), []string{"00", "A0"}) {
		ps.add(path+".cla", "%q is not 00 (UICC) or A0 (SIM)", p.CLA)
	}
	if !oneOf(p.Format, []string{"compact", "expanded"}) {
		ps.add(path+".command_format", "%q is not compact or expanded", p.Format)
	}
	switch p.Addressing {
	case "", "adf", "7fff", "path":
		if p.USIMAID != "" {
			ps.add(path+".usim_aid", "only for addressing aid")
		}
	case "adf-only":
		// An ADF RFM reaches ADF.USIM alone: nothing by absolute path.
		if p.GSMCopy {
			ps.add(path+".gsm_copy", "addressing adf-only has no route to DF GSM (3F00/7F20)")
		}
		for i, u := range p.Extra {
			if strings.HasPrefix(strings.ToUpper(strings.TrimSpace(u.Path)), "3F00") {
				ps.add(fmt.Sprintf("%s.extra_updates[%d].path", path, i), "addressing adf-only has no route to %s", u.Path)
			}
		}
	case "aid":
		if b := hexLen(ps, path+".usim_aid", p.USIMAID, 0); b != nil && (len(b) < 5 || len(b) > 16) {
			ps.add(path+".usim_aid", "an AID of 5 to 16 bytes is required for addressing aid")
		}
		if strings.EqualFold(p.CLA, "a0") {
			ps.add(path+".addressing", "a 2G SIM (cla A0) has no applications to select by AID")
		}
	default:
		ps.add(path+".addressing", "%q is not adf, adf-only, 7fff, aid or path", p.Addressing)
	}
	for i, v := range p.Invalidate {
		if !oneOf(v, []string{"loci", "psloci", "epsloci", "5gsloci"}) {
			ps.add(fmt.Sprintf("%s.invalidate[%d]", path, i), "%q is not loci, psloci, epsloci or 5gsloci", v)
		}
	}
	for i, u := range p.Extra {
		ep := fmt.Sprintf("%s.extra_updates[%d]", path, i)
		if b := hexLen(ps, ep+".path", u.Path, 0); b != nil && (len(b) == 0 || len(b)%2 != 0) {
			ps.add(ep+".path", "%q is not a list of 2-byte file IDs", u.Path)
		}
		hexLen(ps, ep+".data", u.Data, 0)
		if u.Offset < 0 || u.Offset > 0x7fff {
			ps.add(ep+".offset", "%d is out of range", u.Offset)
		}
	}
	if p.Reset.TAR != "" || p.Reset.APDU != "" {
		hexLen(ps, path+".reset.tar", p.Reset.TAR, 3)
		hexLen(ps, path+".reset.apdu", p.Reset.APDU, 0)
	} else {
		ps.add(path+".reset", "required: the reset step (tar and apdu)")
	}
	if k := p.KeyIndex; k != nil {
		hexLen(ps, path+".key_index.tar", k.TAR, 3)
		if !strings.Contains(strings.ToUpper(k.APDU), "II") {
			ps.add(path+".key_index.apdu", "template must contain II where the absolute index goes")
		} else {
			hexLen(ps, path+".key_index.apdu", strings.ReplaceAll(strings.ToUpper(k.APDU), "II", "00"), 0)
		}
		if !oneOf(k.Effect, []string{"immediate", "reset"}) {
			ps.add(path+".key_index.effect", "%q is not immediate or reset", k.Effect)
		}
		if !oneOf(k.Message, []string{"same", "separate"}) {
			ps.add(path+".key_index.message", "%q is not same or separate", k.Message)
		}
		if p.ListLength < 2 {
			ps.add(path+".list_length", "a 3b profile needs a key list of at least 2")
		}
	}
	if r := p.Rotation; r != nil {
		if r.TAR != "" {
			hexLen(ps, path+".rotation.tar", r.TAR, 3)
		}
		if r.KVN < 0 || r.KVN > 15 {
			ps.add(path+".rotation.kvn", "%d is not an SCP80 key version (1..15, or 0 to keep the current one)", r.KVN)
		}
		if r.Replace != nil && !*r.Replace && r.KVN == 0 {
			ps.add(path+".rotation.kvn", "required when replace is false: the added key set needs its own version")
		}
		if p.KeyIndex != nil {
			ps.add(path+".rotation", "a 3b profile's keys come from the manufacturer: rotation is for 3a profiles")
		}
	}
	if p.Rate < 1 {
		ps.add(path+".rate", "must be at least 1 message per second")
	}
	if p.Window != "" {
		if _, _, err := ParseWindow(p.Window); err != nil {
			ps.add(path+".window", "%v", err)
		}
	}
	if p.Zone != "" {
		if _, err := time.LoadLocation(p.Zone); err != nil {
			ps.add(path+".zone", "%q is not a time zone", p.Zone)
		}
	}
}

// ParseWindow reads a submission window "HH:MM-HH:MM" (it may wrap past
// midnight) as offsets from midnight.
func ParseWindow(s string) (from, to time.Duration, err error) {
	a, b, ok := strings.Cut(s, "-")
	if !ok {
		return 0, 0, fmt.Errorf("%q is not HH:MM-HH:MM", s)
	}
	ta, err1 := time.Parse("15:04", a)
	tb, err2 := time.Parse("15:04", b)
	if err1 != nil || err2 != nil {
		return 0, 0, fmt.Errorf("%q is not HH:MM-HH:MM", s)
	}
	return time.Duration(ta.Hour())*time.Hour + time.Duration(ta.Minute())*time.Minute,
		time.Duration(tb.Hour())*time.Hour + time.Duration(tb.Minute())*time.Minute, nil
}

func (c *Config) validateJob(ps *problems, path string, j Job, names map[string]bool) {
	if !reName.MatchString(j.Name) {
		ps.add(path+".name", "%q is not a job name (lower case letters, digits, '.', '_', '-')", j.Name)
	} else if names[j.Name] {
		ps.add(path+".name", "duplicate job %s", j.Name)
	}
	names[j.Name] = true
	wantKind, ok := JobKinds[j.Kind]
	if !ok {
		ps.add(path+".kind", "%q is not a job kind", j.Kind)
	}
	if j.Partner != "" {
		p, ok := c.Partners[j.Partner]
		if !ok || p == nil {
			ps.add(path+".partner", "no partner %q", j.Partner)
		} else if wantKind != "" && p.Kind != wantKind {
			ps.add(path+".partner", "job kind %s reads from a %s partner, %s is a %s", j.Kind, wantKind, j.Partner, p.Kind)
		} else if j.Kind == "a-ota-submit" && p.SMPP == nil {
			ps.add(path+".partner", "job kind a-ota-submit needs a partner with smpp settings; %s has none", j.Partner)
		}
	} else if ok && wantKind != "" {
		ps.add(path+".partner", "required for job kind %s", j.Kind)
	}
	for role, name := range j.To {
		if _, ok := c.Partners[name]; !ok {
			ps.add(path+".to."+role, "no partner %q", name)
		}
	}
	if j.Profile != "" {
		if _, ok := c.Profiles[j.Profile]; !ok {
			ps.add(path+".profile", "no profile %q", j.Profile)
		}
	}
	if _, err := time.LoadLocation(j.Zone); err != nil {
		ps.add(path+".zone", "%q is not a time zone", j.Zone)
		return
	}
	if j.Schedule == "" {
		ps.add(path+".schedule", "required: a cron expression")
		return
	}
	if _, err := schedule.Parse(j.Schedule, j.Zone); err != nil {
		ps.add(path+".schedule", "bad cron spec %q: %v", j.Schedule, err)
		return
	}
	if err := schedule.CheckDST(j.Schedule, j.Zone, time.Now()); err != nil {
		ps.add(path+".schedule", "%v: move it outside the change or use UTC", err)
	}
}
