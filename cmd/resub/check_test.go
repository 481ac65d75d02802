package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"resub/crypto/pgp"
	"resub/formats/mapping"
	"resub/formats/native"
	"resub/jobs"
	"resub/jobs/config"
	"resub/processor/ledger"
)

func TestCheckSamples(t *testing.T) {
	files, _ := filepath.Glob("../../samples/*_*_*_*_*.txt")
	files = append(files, "../../samples/vendor-3a.out", "../../samples/vendor-3b.out")
	if len(files) < 16 {
		t.Fatalf("only %d samples", len(files))
	}
	for _, f := range files {
		typ := "inventory"
		if n, err := native.ParseName(filepath.Base(f)); err == nil {
			typ = n.Format
		}
		t.Run(filepath.Base(f), func(t *testing.T) {
			code, out, errs := runCLI(t, "check", "--type", typ, f)
			if code != exitOK || !strings.HasSuffix(out, "valid\n") {
				t.Errorf("exit %d\n%s%s", code, out, errs)
			}
		})
	}
}

// TestCheckInvalid runs check on every invalid case of testdata/native
// and testdata/vendor: exit 1, and the case's line and field named.
func TestCheckInvalid(t *testing.T) {
	for _, dir := range []string{"../../testdata/native", "../../testdata/vendor"} {
		f, err := os.Open(filepath.Join(dir, "cases.txt"))
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			p := strings.Fields(sc.Text())
			if len(p) != 4 || strings.HasPrefix(p[0], "#") {
				continue
			}
			path := filepath.Join(dir, p[0])
			t.Run(p[0], func(t *testing.T) {
				code, out, errs := runCLI(t, "check", "--type", p[1], path)
				if code != exitRefused {
					t.Fatalf("exit %d, want 1\n%s%s", code, out, errs)
				}
				want := fmt.Sprintf("%s:%s: ", path, p[2])
				if p[3] != "-" {
					want += p[3] + ": "
				} else if p[2] == "0" {
					want += "file: "
				} else {
					want += "line: "
				}
				if !strings.Contains(out, "\n"+want) && !strings.HasPrefix(out, want) {
					t.Errorf("no problem %q in\n%s", want, out)
				}
				if !strings.Contains(out, "invalid\n") {
					t.Errorf("no summary line in\n%s", out)
				}
			})
		}
		f.Close()
	}
}

func TestCheckUsage(t *testing.T) {
	sample := "../../samples/MNOB_MNOA_imsi-list_20261130_000001.txt"
	cases := []struct {
		name string
		args []string
		code int
	}{
		{"unknown type", []string{"check", "--type", "imsi-lists", sample}, exitUsage},
		{"no type", []string{"check", sample}, exitUsage},
		{"no file", []string{"check", "--type", "imsi-list"}, exitUsage},
		{"missing file", []string{"check", "--type", "imsi-list", "/nonexistent"}, exitUsage},
		{"config without partner", []string{"check", "--type", "imsi-list", "--config", "x.yaml", sample}, exitUsage},
		{"wrong type for the file", []string{"check", "--type", "msisdn-map", sample}, exitRefused},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if code, out, errs := runCLI(t, c.args...); code != c.code {
				t.Errorf("exit %d, want %d\n%s%s", code, c.code, out, errs)
			}
		})
	}
	_, _, errs := runCLI(t, "check", "--help")
	for _, n := range native.TypeNames() {
		if !strings.Contains(errs, n) {
			t.Errorf("check --help does not list %s", n)
		}
	}
}

func TestCheckCapsProblems(t *testing.T) {
	dir := t.TempDir()
	var b strings.Builder
	b.WriteString("#format: msisdn-map\n#version: 1\n#sender: BSS-A\n#receiver: MNOA\n#business-date: 2026-11-30\n#sequence: 1\n#created: 2026-11-30T06:00:00Z\n#batch: B\n#quantity: 150\niccid|imsi|msisdn\n")
	for i := 0; i < 150; i++ {
		b.WriteString("8999901000000000010|001010000000001|999\n") // bad Luhn; duplicate IMSI after the first
	}
	path := filepath.Join(dir, "many.txt")
	os.WriteFile(path, []byte(b.String()), 0o600)
	code, out, _ := runCLI(t, "check", "--type", "msisdn-map", "--max", "10", path)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if code != exitRefused || len(lines) != 12 || !strings.Contains(out, "and 289 more problems") || !strings.Contains(out, "299 problems") {
		t.Errorf("exit %d, %d lines:\n%s", code, len(lines), out)
	}
}

// TestCheckPartnerLayout checks partner CSV files through a mapping, as
// `check --config --partner` will: native rules, partner column names.
func TestCheckPartnerLayout(t *testing.T) {
	mf, err := os.Open("../../samples/partner/imsi-list.mapping.yaml")
	if err != nil {
		t.Fatal(err)
	}
	m, err := mapping.Decode(mf)
	mf.Close()
	if err != nil {
		t.Fatal(err)
	}
	run := func(path string) (error, string) {
		var out bytes.Buffer
		e := &env{ctx: context.Background(), io: stdio{out: &out, err: &out}, log: slog.New(slog.DiscardHandler)}
		err := check(e, &checkOptions{Type: "imsi-list", Path: path, MaxProblems: 100, Mapping: m})
		return err, out.String()
	}
	if err, out := run("../../samples/partner/MNOB_MNOA_imsi-list_20261130_000001.csv"); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	bad := filepath.Join(t.TempDir(), "b.csv")
	os.WriteFile(bad, []byte("ICCID;NEW_IMSI;SWITCH_DATE\n8999901000000000013F;999990000000001;07.12.2026\n8999901000000000013F;9999900000002;07.12.2026\n"), 0o600)
	err, out := run(bad)
	if exitCode(err) != exitRefused || !strings.Contains(out, bad+":3: ICCID: duplicate") || !strings.Contains(out, bad+":3: NEW_IMSI: IMSI must have") {
		t.Errorf("exit %d\n%s", exitCode(err), out)
	}
}

const (
	sampleConfig   = "../../samples/config.yaml"
	sampleKeys     = "../../samples/keys/"
	samplePass     = "resub-sample-only" // the throwaway keys' passphrase
	sampleIMSIList = "../../samples/MNOB_MNOA_imsi-list_20261130_000001.txt"
)

// sealSample encrypts src to MNO A's sample key, signed by signer (a
// sample secret key), as name in a new folder.
func sealSample(t *testing.T, src, signer, name string) string {
	t.Helper()
	read := func(p string) []*pgp.Key {
		f, err := os.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		ks, err := pgp.ReadKeys(f)
		if err != nil {
			t.Fatal(err)
		}
		return ks
	}
	sk := read(signer)[0]
	if err := sk.Unlock([]byte(samplePass)); err != nil {
		t.Fatal(err)
	}
	plain, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), name)
	f, err := os.Create(out)
	if err != nil {
		t.Fatal(err)
	}
	w, err := pgp.Encrypt(f, read(sampleKeys+"mnoa.pub.asc"), sk, pgp.EncryptOptions{FileName: name})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(plain); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestCheckWithConfig: --config and --partner bring the partner's code,
// our code, its IMSI ranges, its column mapping, its pinned keys and ours.
func TestCheckWithConfig(t *testing.T) {
	t.Setenv("RESUB_PGP_PASSPHRASE", samplePass)
	cfg := []string{"check", "--config", sampleConfig, "--partner", "mno-b"}
	dir := t.TempDir()
	outside := filepath.Join(dir, "MNOB_MNOA_imsi-list_20261130_000001.txt")
	b, _ := os.ReadFile(sampleIMSIList)
	os.WriteFile(outside, []byte(strings.Replace(string(b), "|999990000000002|", "|999990001000002|", 1)), 0o600)
	sealed := sealSample(t, sampleIMSIList, sampleKeys+"mnob.sec.asc", filepath.Base(sampleIMSIList)+".pgp")
	ownSigned := sealSample(t, sampleIMSIList, sampleKeys+"mnoa.sec.asc", filepath.Base(sampleIMSIList)+".pgp")
	tampered := filepath.Join(dir, filepath.Base(sealed))
	tb, _ := os.ReadFile(sealed)
	tb[len(tb)/2] ^= 1
	os.WriteFile(tampered, tb, 0o600)

	cases := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"native file", append(cfg, "--type", "imsi-list", sampleIMSIList), exitOK, "3 records, valid"},
		{"by party code", []string{"check", "--config", sampleConfig, "--partner", "MNOB", "--type", "imsi-list", sampleIMSIList}, exitOK, "valid"},
		{"partner layout through the configured mapping", append(cfg, "--type", "imsi-list", partnerCSV), exitOK, "valid"},
		{"another sender", append(cfg, "--type", "switch-authorisation", "../../samples/M2MCO_MNOA_switch-authorisation_20261130_000001.txt"), exitRefused, ":3: sender: "},
		{"IMSI outside the partner's ranges", append(cfg, "--type", "imsi-list", outside), exitRefused, outside + ":12: imsi: "},
		{"PGP: decrypted with our key, verified against the pinned key", append(cfg, "--type", "imsi-list", sealed), exitOK, "3 records, valid"},
		{"PGP: signed by our own key", append(cfg, "--type", "imsi-list", ownSigned), exitRefused, "refused"},
		{"PGP: tampered", append(cfg, "--type", "imsi-list", tampered), exitRefused, "refused"},
		{"PGP with --key and --signer", []string{"check", "--type", "imsi-list", "--key", sampleKeys + "mnoa.sec.asc", "--passphrase-env", "RESUB_PGP_PASSPHRASE", "--signer", sampleKeys + "mnob.pub.asc", sealed}, exitOK, "valid"},
		{"--key and --signer against the wrong signer", []string{"check", "--type", "imsi-list", "--key", sampleKeys + "mnoa.sec.asc", "--passphrase-env", "RESUB_PGP_PASSPHRASE", "--signer", sampleKeys + "mfr.pub.asc", sealed}, exitRefused, "refused"},
		{"--key without --signer", []string{"check", "--type", "imsi-list", "--key", sampleKeys + "mnoa.sec.asc", sealed}, exitUsage, ""},
		{"unknown partner", []string{"check", "--config", sampleConfig, "--partner", "mno-x", "--type", "imsi-list", sampleIMSIList}, exitUsage, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, out, errs := runCLI(t, c.args...)
			if code != c.code || !strings.Contains(out, c.want) {
				t.Errorf("exit %d, want %d and %q\n%s%s", code, c.code, c.want, out, errs)
			}
		})
	}
	// Without our passphrase a clear file still checks; a PGP file cannot.
	t.Setenv("RESUB_PGP_PASSPHRASE", "")
	os.Unsetenv("RESUB_PGP_PASSPHRASE")
	if code, out, errs := runCLI(t, append(cfg, "--type", "imsi-list", sampleIMSIList)...); code != exitOK {
		t.Errorf("clear file without passphrase: exit %d\n%s%s", code, out, errs)
	}
	if code, out, errs := runCLI(t, append(cfg, "--type", "imsi-list", sealed)...); code != exitUsage || !strings.Contains(errs, "pgp.passphrase") {
		t.Errorf("PGP file without passphrase: exit %d\n%s%s", code, out, errs)
	}
}

// TestCheckSequenceFromLedger: with a ledger, a sequence number already
// accepted from the partner is reported as a repeat.
func TestCheckSequenceFromLedger(t *testing.T) {
	dir := t.TempDir()
	abs, _ := filepath.Abs("../../samples")
	b, err := os.ReadFile(sampleConfig)
	if err != nil {
		t.Fatal(err)
	}
	body := strings.ReplaceAll(string(b), "keys/", abs+"/keys/")
	body = strings.ReplaceAll(body, "{dir: drops", "{dir: "+abs+"/drops")
	path := filepath.Join(dir, "resub.yaml")
	os.WriteFile(path, []byte(body), 0o600)
	args := []string{"check", "--config", path, "--partner", "mno-b", "--type", "imsi-list", sampleIMSIList}
	if code, out, errs := runCLI(t, args...); code != exitOK {
		t.Fatalf("no ledger: exit %d\n%s%s", code, out, errs)
	}
	if _, err := os.Stat(filepath.Join(dir, "data", "ledger.db")); err == nil {
		t.Fatal("check created a ledger")
	}
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	db, err := jobs.OpenLedger(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	err = db.InTx(ctx, func(tx *ledger.Tx) error { return tx.AcceptSeq(ctx, "MNOB", "MNOA", "imsi-list", 1) })
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	code, out, errs := runCLI(t, args...)
	if code != exitRefused || !strings.Contains(out, ":6: sequence: ") {
		t.Errorf("repeated sequence: exit %d\n%s%s", code, out, errs)
	}
}

// TestSampleConfig: samples/config.yaml passes `config check` and builds
// a party with throwaway secrets in the environment.
func TestSampleConfig(t *testing.T) {
	if code, out, errs := runCLI(t, "config", "check", "--config", installedSample(t)); code != exitOK || !strings.Contains(out, "configuration valid (8 partners, 2 profiles, 16 jobs)") {
		t.Fatalf("exit %d\n%s%s", code, out, errs)
	}
	for k, v := range map[string]string{
		"RESUB_PGP_PASSPHRASE": samplePass, "RESUB_SFTP_PASSPHRASE": samplePass,
		"RESUB_MASTER_KEY": strings.Repeat("5a", 32), "RESUB_MASTER_KEY_OLD": strings.Repeat("a5", 32),
		"RESUB_TK_MNOB": "000102030405060708090a0b0c0d0e0f", // the samples' TK-TEST-1
		"RESUB_TK_MFR":  strings.Repeat("01", 16), "RESUB_TK_VENDOR": strings.Repeat("02", 16), "RESUB_TK_AUC": strings.Repeat("03", 16),
	} {
		t.Setenv(k, v)
	}
	cfg, err := config.Load(sampleConfig)
	if err != nil {
		t.Fatal(err)
	}
	p, err := jobs.BuildParty(cfg, nil)
	if err != nil {
		t.Fatalf("BuildParty: %v", err)
	}
	if p.Name != "MNOA" || len(p.Partners) != 8 || !p.Partners["smsc-smpp"].SMPP || len(p.Profiles) != 2 || p.Partners["mno-b"].Transport == nil {
		t.Errorf("party %s: %d partners, %d profiles", p.Name, len(p.Partners), len(p.Profiles))
	}
	// The mapping decodes to the same as the stand-alone sample file.
	m, ok, err := cfg.Partners["mno-b"].Mapping("imsi-list")
	mf, _ := os.Open(partnerMapping)
	want, _ := mapping.Decode(mf)
	mf.Close()
	if err != nil || !ok || !reflect.DeepEqual(m, want) {
		t.Errorf("mapping %+v (%v), want %+v", m, err, want)
	}
}

// TestCheckTransportKeyKCV: the KCV of a transport key resolved through
// its secret reference is checked against the header; a wrong key
// refuses the file.
func TestCheckTransportKeyKCV(t *testing.T) {
	dir := t.TempDir()
	abs, _ := filepath.Abs("../../samples")
	b, err := os.ReadFile(sampleConfig)
	if err != nil {
		t.Fatal(err)
	}
	// MNO B's view: we are MNOB, the partner mno-b plays MNOA; the key
	// comes from the environment with no kcv in the file.
	body := strings.ReplaceAll(string(b), "keys/", abs+"/keys/")
	body = strings.ReplaceAll(body, "{dir: drops", "{dir: "+abs+"/drops")
	body = strings.Replace(body, "  name: MNOA\n", "  name: MNOB\n", 1)
	body = strings.Replace(body, "    code: MNOB\n", "    code: MNOA\n", 1)
	body = strings.Replace(body, "        kcv: c6a13b\n", "", 1)
	path := filepath.Join(dir, "resub.yaml")
	os.WriteFile(path, []byte(body), 0o600)
	args := []string{"check", "--config", path, "--partner", "mno-b", "--type", "handover", "../../samples/MNOA_MNOB_handover_20261130_000001.txt"}
	for _, c := range []struct {
		key  string
		code int
		want string
	}{
		{"000102030405060708090a0b0c0d0e0f", exitOK, "3 records, valid"},
		{"000102030405060708090a0b0c0d0e0e", exitRefused, ":10: transport-kcv: "},
	} {
		t.Setenv("RESUB_TK_MNOB", c.key)
		if code, out, errs := runCLI(t, args...); code != c.code || !strings.Contains(out, c.want) {
			t.Errorf("key %s: exit %d, want %d and %q\n%s%s", c.key, code, c.code, c.want, out, errs)
		}
	}
	os.Unsetenv("RESUB_TK_MNOB")
	if code, out, errs := runCLI(t, args...); code != exitUsage || !strings.Contains(errs, "partners.mno-b.transport_keys[0].key") {
		t.Errorf("key not set: exit %d\n%s%s", code, out, errs)
	}
}
