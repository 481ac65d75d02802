package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const (
	partnerMapping = "../../samples/partner/imsi-list.mapping.yaml"
	partnerCSV     = "../../samples/partner/MNOB_MNOA_imsi-list_20261130_000001.csv"
	nativeSample   = "../../samples/MNOB_MNOA_imsi-list_20261130_000001.txt"
)

func TestConvertRoundTrip(t *testing.T) {
	dir := t.TempDir()
	nat := filepath.Join(dir, "MNOB_MNOA_imsi-list_20261130_000001.txt")
	code, out, errs := runCLI(t, "convert", "--mapping", partnerMapping, "--type", "imsi-list", "--from", "partner", "-o", nat, partnerCSV)
	if code != exitOK {
		t.Fatalf("partner → native: exit %d\n%s%s", code, out, errs)
	}
	// The result checks clean and has the sample's records.
	if code, out, _ := runCLI(t, "check", "--type", "imsi-list", nat); code != exitOK {
		t.Fatalf("check of the converted file: exit %d\n%s", code, out)
	}
	got, _ := os.ReadFile(nat)
	want, _ := os.ReadFile(nativeSample)
	recs := func(b []byte) string { s := string(b); return s[strings.Index(s, "iccid|"):] }
	if recs(got) != recs(want) {
		t.Errorf("records differ:\n%s\nwant\n%s", recs(got), recs(want))
	}
	// And back to the partner's layout.
	back := filepath.Join(dir, "back.csv")
	if code, out, errs := runCLI(t, "convert", "--mapping", partnerMapping, "--type", "imsi-list", "--from", "native", "-o", back, nat); code != exitOK {
		t.Fatalf("native → partner: exit %d\n%s%s", code, out, errs)
	}
	b, _ := os.ReadFile(back)
	orig, _ := os.ReadFile(partnerCSV)
	wantCSV := strings.ReplaceAll(strings.Replace(string(orig), `"fleet 1; north"`, "", 1), "\r\n", "\n")
	if string(b) != wantCSV {
		t.Errorf("back:\n%s\nwant\n%s", b, wantCSV)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, ".resub-convert-*")); len(left) > 0 {
		t.Errorf("temporary files left: %v", left)
	}
}

func TestConvertRefusesInvalid(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "MNOB_MNOA_imsi-list_20261130_000002.csv")
	os.WriteFile(bad, []byte("ICCID;NEW_IMSI;SWITCH_DATE\n8999901000000000013F;999990000000001;07.12.2026\n8999901000000000014F;99999000000000;32.12.2026\n"), 0o600)
	out := filepath.Join(dir, "out.txt")
	code, stdout, _ := runCLI(t, "convert", "--mapping", partnerMapping, "--type", "imsi-list", "--from", "partner", "-o", out, bad)
	if code != exitRefused || !strings.Contains(stdout, bad+":3: ICCID: ") || !strings.Contains(stdout, bad+":3: SWITCH_DATE: ") {
		t.Errorf("exit %d\n%s", code, stdout)
	}
	// The short IMSI is found by the check of the converted file.
	os.WriteFile(bad, []byte("ICCID;NEW_IMSI;SWITCH_DATE\n8999901000000000013F;9999900000000;07.12.2026\n"), 0o600)
	code, stdout, _ = runCLI(t, "convert", "--mapping", partnerMapping, "--type", "imsi-list", "--from", "partner", "-o", out, bad)
	if code != exitRefused || !strings.Contains(stdout, ":11: imsi: ") {
		t.Errorf("exit %d\n%s", code, stdout)
	}
	if _, err := os.Stat(out); err == nil {
		t.Error("output written despite problems")
	}
	if left, _ := filepath.Glob(filepath.Join(dir, ".resub-convert-*")); len(left) > 0 {
		t.Errorf("temporary files left: %v", left)
	}
}

func TestConvertUsage(t *testing.T) {
	for name, args := range map[string][]string{
		"no mapping":   {"convert", "--type", "imsi-list", "--from", "partner", partnerCSV},
		"bad from":     {"convert", "--mapping", partnerMapping, "--type", "imsi-list", "--from", "csv", partnerCSV},
		"unknown type": {"convert", "--mapping", partnerMapping, "--type", "imsi", "--from", "partner", partnerCSV},
		"wrong type":   {"convert", "--mapping", partnerMapping, "--type", "msisdn-map", "--from", "partner", partnerCSV},
		"no input":     {"convert", "--mapping", partnerMapping, "--type", "imsi-list", "--from", "partner"},
	} {
		t.Run(name, func(t *testing.T) {
			if code, out, errs := runCLI(t, args...); code != exitUsage {
				t.Errorf("exit %d\n%s%s", code, out, errs)
			}
		})
	}
}

// TestConvertWithConfig: the partner's mapping and codes come from the
// configuration and give the same result as --mapping.
func TestConvertWithConfig(t *testing.T) {
	dir := t.TempDir()
	viaConfig := filepath.Join(dir, "a.txt")
	viaFile := filepath.Join(dir, "b.txt")
	if code, out, errs := runCLI(t, "convert", "--config", sampleConfig, "--partner", "mno-b", "--type", "imsi-list", "--from", "partner", "-o", viaConfig, partnerCSV); code != exitOK {
		t.Fatalf("exit %d\n%s%s", code, out, errs)
	}
	if code, out, errs := runCLI(t, "convert", "--mapping", partnerMapping, "--type", "imsi-list", "--from", "partner", "-o", viaFile, partnerCSV); code != exitOK {
		t.Fatalf("exit %d\n%s%s", code, out, errs)
	}
	a, _ := os.ReadFile(viaConfig)
	b, _ := os.ReadFile(viaFile)
	noCreated := func(b []byte) string {
		var keep []string
		for _, l := range strings.Split(string(b), "\n") {
			if !strings.HasPrefix(l, "#created:") {
				keep = append(keep, l)
			}
		}
		return strings.Join(keep, "\n")
	}
	if noCreated(a) != noCreated(b) || !strings.Contains(string(a), "#sender: MNOB\n") || !strings.Contains(string(a), "#receiver: MNOA\n") {
		t.Errorf("via the configuration:\n%s\nvia the mapping file:\n%s", a, b)
	}
	// The result checks clean against the partner's settings.
	if code, out, errs := runCLI(t, "check", "--config", sampleConfig, "--partner", "mno-b", "--type", "imsi-list", viaConfig); code != exitOK {
		t.Errorf("check: exit %d\n%s%s", code, out, errs)
	}
	// And back.
	back := filepath.Join(dir, "back.csv")
	if code, out, errs := runCLI(t, "convert", "--config", sampleConfig, "--partner", "mno-b", "--type", "imsi-list", "--from", "native", "-o", back, viaConfig); code != exitOK {
		t.Fatalf("exit %d\n%s%s", code, out, errs)
	}
	for name, args := range map[string][]string{
		"no mapping for the type": {"convert", "--config", sampleConfig, "--partner", "mno-b", "--type", "msisdn-map", "--from", "partner", partnerCSV},
		"unknown partner":         {"convert", "--config", sampleConfig, "--partner", "nobody", "--type", "imsi-list", "--from", "partner", partnerCSV},
		"config without partner":  {"convert", "--config", sampleConfig, "--type", "imsi-list", "--from", "partner", partnerCSV},
		"config and mapping":      {"convert", "--config", sampleConfig, "--partner", "mno-b", "--mapping", partnerMapping, "--type", "imsi-list", "--from", "partner", partnerCSV},
		"configuration not found": {"convert", "--config", filepath.Join(dir, "none.yaml"), "--partner", "mno-b", "--type", "imsi-list", "--from", "partner", partnerCSV},
	} {
		t.Run(name, func(t *testing.T) {
			if code, out, errs := runCLI(t, args...); code != exitUsage {
				t.Errorf("exit %d\n%s%s", code, out, errs)
			}
		})
	}
}
