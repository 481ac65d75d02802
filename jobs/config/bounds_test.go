package config

import (
	"errors"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestBoundDefaultsPrinted: the pickup wait of a drop without stable or
// marker, the ciphertext and quarantine bounds and a local drop's modes
// are set at load, so `config check --print` shows what is in force.
func TestBoundDefaultsPrinted(t *testing.T) {
	dir := fixture(t)
	cfg, err := Load(writeConfig(t, dir, validYAML))
	if err != nil {
		t.Fatal(err)
	}
	smsc := cfg.Partners["smsc"]
	if smsc.Drop.Stable.D() != 10*time.Second {
		t.Errorf("smsc stable = %s, want the 10s default", smsc.Drop.Stable.D())
	}
	if cfg.Partners["mno-b"].Drop.Stable.D() != 30*time.Second {
		t.Errorf("configured stable changed")
	}
	if l := smsc.Drop.Local; l.DirMode != 0o700 || l.FileMode != 0o640 {
		t.Errorf("local modes %#o %#o", l.DirMode, l.FileMode)
	}
	if want := cfg.Limits.MaxFileBytes + cfg.Limits.MaxFileBytes/2 + 1<<20; cfg.Limits.MaxCiphertextBytes != want {
		t.Errorf("max_ciphertext_bytes = %d, want %d", cfg.Limits.MaxCiphertextBytes, want)
	}
	if cfg.Limits.QuarantineMaxFiles != 1000 || cfg.Limits.QuarantineMaxBytes != 2*cfg.Limits.MaxCiphertextBytes {
		t.Errorf("quarantine bounds %d files, %d bytes", cfg.Limits.QuarantineMaxFiles, cfg.Limits.QuarantineMaxBytes)
	}
	out := cfg.Redacted()
	for _, want := range []string{"stable: 10s", "dir_mode: \"0700\"", "file_mode: \"0640\"", "max_ciphertext_bytes:", "quarantine_max_files: 1000", "quarantine_max_bytes:"} {
		if !strings.Contains(out, want) {
			t.Errorf("--print lacks %q", want)
		}
	}
	// What is printed loads again to the same values.
	again, err := Load(writeConfig(t, dir, out))
	if err != nil {
		t.Fatalf("printed configuration does not load: %v", err)
	}
	if again.Partners["smsc"].Drop.Local.FileMode != 0o640 || again.Limits.MaxCiphertextBytes != cfg.Limits.MaxCiphertextBytes {
		t.Error("printed configuration loads to other values")
	}
	// A ciphertext bound derives from the plaintext bound.
	cfg, err = Load(writeConfig(t, dir, validYAML+"limits: {max_file_bytes: 1000000}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Limits.MaxCiphertextBytes != 1000000+500000+1<<20 {
		t.Errorf("derived max_ciphertext_bytes = %d", cfg.Limits.MaxCiphertextBytes)
	}
}

// TestBoundProblems: modes that open a drop to others, a quarantine that
// cannot hold one input of the largest size, an unknown group.
func TestBoundProblems(t *testing.T) {
	dir := fixture(t)
	body := strings.Replace(validYAML, "drop: {local: {dir: smsc}, inbox: in, outbox: out}",
		`drop: {local: {dir: smsc, dir_mode: "0777", file_mode: "0644", group: no-such-group-here}, inbox: in, outbox: out}`, 1)
	body += "limits: {max_ciphertext_bytes: 5000, quarantine_max_files: -1, quarantine_max_bytes: 100}\n"
	_, err := Load(writeConfig(t, dir, body))
	var ce *Error
	if !errors.As(err, &ce) {
		t.Fatalf("Load = %v", err)
	}
	got := map[string]bool{}
	for _, p := range ce.Problems {
		got[p.Path] = true
	}
	for _, want := range []string{"partners.smsc.drop.local.dir_mode", "partners.smsc.drop.local.file_mode", "partners.smsc.drop.local.group",
		"limits.quarantine_max_files", "limits.quarantine_max_bytes"} {
		if !got[want] {
			t.Errorf("no problem at %s in %v", want, err)
		}
	}
	// A mode that is not octal is a problem too.
	body = strings.Replace(validYAML, "local: {dir: smsc}", `local: {dir: smsc, file_mode: "rw-r-----"}`, 1)
	if _, err := Load(writeConfig(t, dir, body)); err == nil || !strings.Contains(err.Error(), "octal") {
		t.Errorf("Load with a symbolic mode = %v", err)
	}
	// The group of the running process is accepted.
	if g := os.Getgid(); g >= 0 {
		body = strings.Replace(validYAML, "local: {dir: smsc}", `local: {dir: smsc, dir_mode: "0770", file_mode: "0660", group: "`+strconv.Itoa(g)+`"}`, 1)
		if _, err := Load(writeConfig(t, dir, body)); err != nil {
			t.Errorf("Load with our own group: %v", err)
		}
	}
}
