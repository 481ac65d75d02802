package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"resub/formats/mapping"
)

// fixture writes the files a valid configuration refers to and returns the
// folder.
func fixture(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for _, f := range []string{"our.sec.asc", "b.pub.asc", "sftp_key", "known_hosts", "master.key", "tk.key"} {
		if err := os.WriteFile(filepath.Join(dir, f), []byte("x\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(filepath.Join(dir, "smsc"), 0o700); err != nil {
		t.Fatal(err)
	}
	return dir
}

const validYAML = `
party: {name: MNOA, role: operator}
data_dir: data
pgp: {secret_key: our.sec.asc, passphrase: env:RESUB_TEST_PASS}
master_key: {id: mk-1, key: file:master.key}
partners:
  mno-b:
    kind: operator
    code: MNOB
    drop:
      sftp: {host: 127.0.0.1, port: 2222, user: mnoa, private_key: sftp_key, known_hosts: known_hosts}
      inbox: /to-a
      outbox: /from-a
      archive: /archive
      patterns: ["MNOB_MNOA_*.pgp"]
      stable: 30s
    pgp: {public_keys: [b.pub.asc], fingerprints: ["0123456789abcdef0123456789abcdef01234567"], compression: zlib}
    transport_keys: [{id: tk-ab-1, key: file:tk.key}]
    plmns: [{mcc: "999", mnc: "99"}]
    imsi_ranges: [{from: "999990000000000", to: "999990000999999"}]
    deadlines: {imsi-result: 24h}
  smsc:
    kind: smsc
    code: SMSC
    drop: {local: {dir: smsc}, inbox: in, outbox: out}
    pgp: {disabled: true}
profiles:
  usim:
    tar: b00011
    spi: "1639"
    kic: "35"
    kid: "35"
    invalidate: [loci, psloci, epsloci]
    reset: {tar: b00020, apdu: "80e2000000"}
jobs:
  - {name: imsi-list, kind: a-imsi-list, partner: mno-b, schedule: "30 22 * * *", zone: Europe/Berlin, profile: usim}
`

func writeConfig(t *testing.T, dir, body string) string {
	t.Helper()
	p := filepath.Join(dir, "resub.yaml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestValidConfig(t *testing.T) {
	dir := fixture(t)
	cfg, err := Load(writeConfig(t, dir, validYAML))
	if err != nil {
		t.Fatalf("valid config refused: %v", err)
	}
	if got := cfg.Ledger; got != "sqlite:"+filepath.Join(dir, "data", "ledger.db") {
		t.Errorf("default ledger = %q", got)
	}
	if cfg.Partners["mno-b"].Drop.SFTP.Port != 2222 || cfg.Partners["smsc"].PGP.Compression != "none" {
		t.Errorf("defaults or values wrong: %+v", cfg.Partners["mno-b"].Drop.SFTP)
	}
}

func TestEveryProblemReportedWithPath(t *testing.T) {
	dir := fixture(t)
	body := validYAML
	body = strings.Replace(body, "party: {name: MNOA, role: operator}", "party: {name: MNOA, role: operator, colour: blue}", 1)                      // unknown key
	body = strings.Replace(body, "known_hosts: known_hosts}", "known_hosts: missing_known_hosts}", 1)                                                // missing file
	body = strings.Replace(body, `schedule: "30 22 * * *"`, `schedule: "61 22 * * *"`, 1)                                                            // bad cron
	body = strings.Replace(body, `plmns: [{mcc: "999", mnc: "99"}]`, `plmns: [{mcc: "99", mnc: "9999"}]`, 1)                                         // bad PLMN
	body = strings.Replace(body, "master_key: {id: mk-1, key: file:master.key}", "master_key: {id: mk-1, key: 00112233445566778899aabbccddeeff}", 1) // inline secret
	body += `
  - {name: imsi-list, kind: a-imsi-list, partner: mno-b, schedule: "0 1 * * *"}
`
	// A duplicate partner: the same code under a second name.
	body = strings.Replace(body, "profiles:", `  mno-b2:
    kind: operator
    code: MNOB
    drop: {local: {dir: smsc}}
    pgp: {public_keys: [b.pub.asc], fingerprints: ["0123456789abcdef0123456789abcdef01234567"]}
profiles:`, 1)
	_, err := Load(writeConfig(t, dir, body))
	var ce *Error
	if !errors.As(err, &ce) {
		t.Fatalf("want *Error, got %v", err)
	}
	if !ce.ConfigError() {
		t.Error("not marked as a configuration error")
	}
	want := []string{
		"party.colour: unknown key",
		"partners.mno-b.drop.sftp.known_hosts: file not found",
		"jobs[0].schedule: bad cron spec",
		"partners.mno-b.plmns[0].mcc:",
		"partners.mno-b.plmns[0].mnc:",
		"master_key.key: secret given inline",
		"jobs[1].name: duplicate job",
		"partners.mno-b2.code: duplicate partner",
	}
	msg := err.Error()
	for _, w := range want {
		if !strings.Contains(msg, w) {
			t.Errorf("missing problem %q in:\n%s", w, msg)
		}
	}
	if strings.Contains(msg, "00112233445566778899aabbccddeeff") {
		t.Errorf("the inline secret is printed in the error:\n%s", msg)
	}
}

func TestDuplicateKeyAndTypeErrors(t *testing.T) {
	dir := fixture(t)
	body := strings.Replace(validYAML, "data_dir: data", "data_dir: data\ndata_dir: other\nretention: soon", 1)
	_, err := Load(writeConfig(t, dir, body))
	if err == nil || !strings.Contains(err.Error(), "data_dir: duplicate key") || !strings.Contains(err.Error(), "is not a duration") {
		t.Errorf("want duplicate key and duration problems, got %v", err)
	}
}

func TestPostgresLedgerURL(t *testing.T) {
	dir := fixture(t)
	ok := strings.Replace(validYAML, "data_dir: data", "data_dir: data\nledger: postgres://resub@db.example:5432/resub?sslmode=verify-full&sslrootcert=ca.pem\nledger_password: env:RESUB_DB_PASSWORD\ninstance: host-a", 1)
	c, err := Load(writeConfig(t, dir, ok))
	if err != nil {
		t.Fatalf("a PostgreSQL ledger with a password reference refused: %v", err)
	}
	if c.Instance != "host-a" || c.LedgerPassword != "env:RESUB_DB_PASSWORD" || c.LeaseTTL.D() != time.Minute {
		t.Errorf("instance %q, password ref %q, lease_ttl %s", c.Instance, c.LedgerPassword, c.LeaseTTL.D())
	}
	for _, tc := range []struct{ url, want string }{
		{"postgres://resub:s3cr3t-pw@db.example/resub", "holds a password"},
		{"postgres://resub@db.example/resub?password=s3cr3t-pw", "password parameter"},
		{"postgres://resub@db.example", "names no database"},
	} {
		body := strings.Replace(validYAML, "data_dir: data", "data_dir: data\nledger: "+tc.url, 1)
		_, err := Load(writeConfig(t, dir, body))
		if err == nil || !strings.Contains(err.Error(), "ledger: ") || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: want %q, got %v", tc.url, tc.want, err)
		}
		if err != nil && strings.Contains(err.Error(), "s3cr3t-pw") {
			t.Errorf("the password is repeated in the error: %v", err)
		}
	}
	body := strings.Replace(validYAML, "data_dir: data", "data_dir: data\nledger_password: s3cr3t-pw\ninstance: 'two words'", 1)
	_, err = Load(writeConfig(t, dir, body))
	for _, w := range []string{"ledger_password: secret given inline", "ledger_password: only a PostgreSQL ledger", "instance: "} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("want %q, got %v", w, err)
		}
	}
	if err != nil && strings.Contains(err.Error(), "s3cr3t-pw") {
		t.Errorf("the inline password is repeated in the error: %v", err)
	}
}

func TestProfileSecurityFloor(t *testing.T) {
	dir := fixture(t)
	body := strings.Replace(validYAML, `spi: "1639"`, `spi: "0000"`, 1)
	_, err := Load(writeConfig(t, dir, body))
	for _, w := range []string{"no cryptographic checksum", "does not check the counter", "no proof of receipt"} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("want %q, got %v", w, err)
		}
	}
	body = strings.Replace(body, `kic: "35"`, "kic: \"35\"\n    test_only: true", 1)
	if _, err := Load(writeConfig(t, dir, body)); err != nil {
		t.Errorf("test-only profile refused: %v", err)
	}
}

func TestDSTScheduleFlagged(t *testing.T) {
	dir := fixture(t)
	body := strings.Replace(validYAML, `schedule: "30 22 * * *"`, `schedule: "30 2 * * *"`, 1)
	_, err := Load(writeConfig(t, dir, body))
	if err == nil || !strings.Contains(err.Error(), "daylight-saving") || !strings.Contains(err.Error(), "jobs[0].schedule") {
		t.Errorf("02:30 Europe/Berlin not flagged: %v", err)
	}
	body = strings.Replace(validYAML, `schedule: "30 22 * * *"`, `schedule: "30 2 * * *"`, 1)
	body = strings.Replace(body, "zone: Europe/Berlin", "zone: UTC", 1)
	if _, err := Load(writeConfig(t, dir, body)); err != nil {
		t.Errorf("02:30 UTC flagged: %v", err)
	}
}

func TestDSTOverlapAndGap(t *testing.T) {
	if _, err := time.LoadLocation("Europe/Berlin"); err != nil {
		t.Skip("no zoneinfo")
	}
	dir := fixture(t)
	for spec, want := range map[string]string{
		"30 2 * * *":  "skipped", // the spring gap, every year
		"30 2 * * 0":  "twice",   // Sundays 02:30: the October change (a Sunday) runs it twice
		"0 4 * * *":   "",
		"59 23 * * *": "",
	} {
		body := strings.Replace(validYAML, `schedule: "30 22 * * *"`, `schedule: "`+spec+`"`, 1)
		_, err := Load(writeConfig(t, dir, body))
		switch {
		case want == "" && err != nil:
			t.Errorf("%s flagged: %v", spec, err)
		case want != "" && (err == nil || !strings.Contains(err.Error(), "jobs[0].schedule") || !strings.Contains(err.Error(), want)):
			t.Errorf("%s: want a %q problem at jobs[0].schedule, got %v", spec, want, err)
		}
	}
}

func TestSecretsNeverPrint(t *testing.T) {
	dir := fixture(t)
	const value = "s3cr3t-Passphrase-7731"
	t.Setenv("RESUB_TEST_PASS", value)
	if err := os.WriteFile(filepath.Join(dir, "master.key"), []byte("ab12cd34ab12cd34ab12cd34ab12cd34ab12cd34ab12cd34ab12cd34ab12cd34\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := Load(writeConfig(t, dir, validYAML))
	if err != nil {
		t.Fatal(err)
	}
	pass, err := cfg.Resolve(cfg.PGP.Passphrase)
	if err != nil {
		t.Fatal(err)
	}
	mk, err := cfg.Resolve(cfg.MasterKey.Key)
	if err != nil {
		t.Fatal(err)
	}
	if string(pass) != value {
		t.Fatal("resolve returned the wrong secret")
	}
	// The search must find a planted copy, or proving absence means nothing.
	planted := fmt.Sprintf("%s", string(pass))
	if !strings.Contains(planted, value) {
		t.Fatal("search cannot find a planted secret")
	}
	var logBuf bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&logBuf, nil))
	logger.Info("resolved", "passphrase", pass, "master", mk)
	logger.Info("config", "cfg", cfg)
	y, _ := yaml.Marshal(struct{ P, M Secret }{pass, mk})
	j, _ := json.Marshal(struct{ P, M Secret }{pass, mk})
	outputs := map[string]string{
		"%v":       fmt.Sprintf("%v %v", pass, mk),
		"%s":       fmt.Sprintf("%s %s", pass, mk),
		"%x":       fmt.Sprintf("%x %x", pass, mk),
		"%q":       fmt.Sprintf("%q %q", pass, mk),
		"%#v":      fmt.Sprintf("%#v %+v", pass, mk),
		"slog":     logBuf.String(),
		"yaml":     string(y),
		"json":     string(j),
		"redacted": cfg.Redacted(),
		"config%v": fmt.Sprintf("%+v", *cfg),
	}
	hexMK := "ab12cd34ab12cd34"
	for name, out := range outputs {
		for _, s := range []string{value, hexMK, fmt.Sprintf("%x", value)} {
			if strings.Contains(strings.ToLower(out), strings.ToLower(s)) {
				t.Errorf("%s output leaks a secret: %s", name, out)
			}
		}
	}
	if !strings.Contains(cfg.Redacted(), "env:RESUB_TEST_PASS") {
		t.Error("redacted config should still show the reference")
	}
	pass.Wipe()
	if string(pass) == value {
		t.Error("Wipe left the secret")
	}
}

func TestInlineSecretRedactedInDump(t *testing.T) {
	r := SecretRef("hunter2-inline")
	if s := fmt.Sprintf("%v %s", r, r); strings.Contains(s, "hunter2") {
		t.Errorf("inline secret printed: %s", s)
	}
	if SecretRef("env:X").String() != "env:X" {
		t.Error("references should print")
	}
}

// TestColumnMappingIsFormatsMapping: partners.<id>.columns.<type> holds
// exactly the shape formats/mapping decodes; the sample mapping file
// pasted under columns decodes to the same Mapping.
func TestColumnMappingIsFormatsMapping(t *testing.T) {
	dir := fixture(t)
	file, err := os.ReadFile("../../samples/partner/imsi-list.mapping.yaml")
	if err != nil {
		t.Fatal(err)
	}
	want, err := mapping.Decode(bytes.NewReader(file))
	if err != nil {
		t.Fatal(err)
	}
	indented := "    columns:\n      imsi-list:\n"
	for _, l := range strings.Split(strings.TrimRight(string(file), "\n"), "\n") {
		indented += "        " + l + "\n"
	}
	body := strings.Replace(validYAML, "    deadlines: {imsi-result: 24h}\n", "    deadlines: {imsi-result: 24h}\n    iccid: {no_check_digit: true}\n"+indented, 1)
	cfg, err := Load(writeConfig(t, dir, body))
	if err != nil {
		t.Fatalf("%v\n%s", err, body)
	}
	p := cfg.Partners["mno-b"]
	got, ok, err := p.Mapping("imsi-list")
	if err != nil || !ok {
		t.Fatalf("Mapping: %v %v", ok, err)
	}
	// The partner's ICCID conventions are applied to its mappings.
	want.ICCIDNoCheckDigit = true
	if !reflect.DeepEqual(got, want) {
		t.Errorf("config mapping\n%+v\nwant\n%+v", got, want)
	}
	if _, ok, _ := p.Mapping("msisdn-map"); ok {
		t.Error("a mapping for an unconfigured type")
	}
	if s := cfg.Redacted(); !strings.Contains(s, "NEW_IMSI") || !strings.Contains(s, "DD.MM.YYYY") {
		t.Errorf("the mapping is not printed back:\n%s", s)
	}
}

func TestColumnMappingProblems(t *testing.T) {
	dir := fixture(t)
	with := func(cols string) string {
		return strings.Replace(validYAML, "    deadlines: {imsi-result: 24h}\n", "    deadlines: {imsi-result: 24h}\n    columns:\n"+cols, 1)
	}
	cases := []struct {
		name, cols, want string
	}{
		{"unknown key", "      imsi-list:\n        colums: [{name: A, field: iccid}]\n", "partners.mno-b.columns.imsi-list.colums: unknown key (line"},
		{"unknown key in a column", "      imsi-list:\n        columns: [{name: A, field: iccid, width: 3}]\n", "partners.mno-b.columns.imsi-list.columns[0].width: unknown key"},
		{"old shape", "      imsi-list:\n        columns: [ICCID, NEW_IMSI]\n        fields: {ICCID: iccid}\n", "partners.mno-b.columns.imsi-list.fields: unknown key"},
		{"unknown type", "      imsi-lists:\n        columns: [{name: A, field: iccid}]\n", `partners.mno-b.columns.imsi-lists: "imsi-lists" is not a file type`},
		{"unknown field", "      imsi-list:\n        columns: [{name: A, field: iccid}, {name: B, field: new-imsi}]\n", `partners.mno-b.columns.imsi-list: column mapping: imsi-list has no field "new-imsi"`},
		{"required field missing", "      imsi-list:\n        columns: [{name: A, field: iccid}]\n", `partners.mno-b.columns.imsi-list: column mapping: required field "imsi" of imsi-list is not mapped`},
		{"bad delimiter", "      imsi-list:\n        delimiter: ';;'\n        columns: [{name: A, field: iccid}, {name: B, field: imsi}, {name: C, field: cutover-date}]\n", "partners.mno-b.columns.imsi-list: column mapping: delimiter"},
		{"bad hex case", "      imsi-list:\n        hex-case: mixed\n        columns: [{name: A, field: iccid}, {name: B, field: imsi}, {name: C, field: cutover-date}]\n", "partners.mno-b.columns.imsi-list: column mapping: hex-case"},
		{"not a mapping", "      imsi-list: [a, b]\n", "partners.mno-b.columns.imsi-list: column mapping:"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Load(writeConfig(t, dir, with(c.cols)))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("want %q, got %v", c.want, err)
			}
		})
	}
}

// TestSampleConfigLoads: the example configuration of the samples passes
// validation and says what its comments say.
func TestSampleConfigLoads(t *testing.T) {
	cfg, err := Load("../../samples/config.yaml")
	if err != nil {
		t.Fatal(err)
	}
	b := cfg.Partners["mno-b"]
	if cfg.Party.Name != "MNOA" || len(cfg.Partners) != 8 || len(cfg.Profiles) != 2 || len(cfg.Jobs) != 16 ||
		b == nil || b.Drop.SFTP == nil || b.TransportKeys[0].KCV != "c6a13b" || cfg.Profiles["usim-3b"].KeyIndex == nil ||
		cfg.Partners["smsc-smpp"] == nil || cfg.Partners["smsc-smpp"].SMPP == nil || cfg.Partners["smsc-smpp"].SMPP.Window != 10 {
		t.Errorf("sample configuration: %+v", cfg)
	}
	kinds := map[string]bool{}
	for _, p := range cfg.Partners {
		kinds[p.Kind] = true
	}
	for _, k := range PartnerKinds {
		if !kinds[k] {
			t.Errorf("no partner of kind %s in the sample", k)
		}
	}
	if _, ok, err := b.Mapping("imsi-list"); !ok || err != nil {
		t.Errorf("mno-b imsi-list mapping: %v %v", ok, err)
	}
}

// ledger_slow_statement: unset is the default, 0s switches the log off,
// a negative duration is refused.
func TestLedgerSlowStatement(t *testing.T) {
	dir := fixture(t)
	c, err := Load(writeConfig(t, dir, validYAML))
	if err != nil {
		t.Fatal(err)
	}
	if c.SlowStatement() != DefaultSlowStatement || DefaultSlowStatement <= 0 {
		t.Errorf("default %s, want %s", c.SlowStatement(), DefaultSlowStatement)
	}
	for _, tc := range []struct {
		v    string
		want time.Duration
	}{{"250ms", 250 * time.Millisecond}, {"0s", 0}, {"2m", 2 * time.Minute}} {
		body := strings.Replace(validYAML, "data_dir: data", "data_dir: data\nledger_slow_statement: "+tc.v, 1)
		c, err := Load(writeConfig(t, dir, body))
		if err != nil {
			t.Fatalf("%s: %v", tc.v, err)
		}
		if c.SlowStatement() != tc.want {
			t.Errorf("%s: %s, want %s", tc.v, c.SlowStatement(), tc.want)
		}
		// --print shows it, and what it shows loads to the same.
		out := c.Redacted()
		if !strings.Contains(out, "ledger_slow_statement: ") {
			t.Errorf("%s: --print lacks ledger_slow_statement", tc.v)
		}
		again, err := Load(writeConfig(t, dir, out))
		if err != nil {
			t.Errorf("%s: the printed configuration does not load: %v", tc.v, err)
		} else if again.SlowStatement() != tc.want {
			t.Errorf("%s: printed and loaded again: %s", tc.v, again.SlowStatement())
		}
	}
	body := strings.Replace(validYAML, "data_dir: data", "data_dir: data\nledger_slow_statement: -1s", 1)
	if _, err := Load(writeConfig(t, dir, body)); err == nil || !strings.Contains(err.Error(), "ledger_slow_statement: ") {
		t.Errorf("a negative threshold: %v", err)
	}
	var zero Config
	if zero.SlowStatement() != DefaultSlowStatement {
		t.Errorf("a configuration made in code: %s", zero.SlowStatement())
	}
}
