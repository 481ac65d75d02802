package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"resub/formats/mapping"
	"resub/formats/native"
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
