package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// installedSample copies samples/config.yaml and its keys into a fresh
// folder as an operator installs them: secrets readable by their owner only
// (git keeps no permission bits beyond the executable one), public keys
// and known_hosts 0644. It returns the configuration's path.
func installedSample(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "keys"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "drops"), 0o700); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(sampleKeys)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(sampleKeys, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		mode := os.FileMode(0o644)
		if strings.HasSuffix(e.Name(), ".sec.asc") || strings.HasSuffix(e.Name(), "_ed25519") {
			mode = 0o600
		}
		if err := os.WriteFile(filepath.Join(dir, "keys", e.Name()), b, mode); err != nil {
			t.Fatal(err)
		}
	}
	b, err := os.ReadFile(sampleConfig)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestConfigCheckKeyMaterial: `config check` refuses a secret key file
// others can read and a public key file others can write, naming file and
// mode, and names a key in public_keys that is not pinned.
func TestConfigCheckKeyMaterial(t *testing.T) {
	cfg := installedSample(t)
	dir := filepath.Dir(cfg)
	if code, out, errs := runCLI(t, "config", "check", "--config", cfg); code != exitOK || strings.Contains(out, "warning") {
		t.Fatalf("installed sample: exit %d\n%s%s", code, out, errs)
	}

	sec, pub := filepath.Join(dir, "keys", "mnoa.sec.asc"), filepath.Join(dir, "keys", "mnob.pub.asc")
	os.Chmod(sec, 0o640)
	os.Chmod(pub, 0o664)
	code, out, errs := runCLI(t, "config", "check", "--config", cfg)
	for _, want := range []string{"pgp.secret_key: " + sec + " has mode 0640", "partners.mno-b.pgp.public_keys[0]: " + pub + " has mode 0664"} {
		if code != exitUsage || !strings.Contains(errs, want) {
			t.Errorf("exit %d, want %d and %q in\n%s%s", code, exitUsage, want, out, errs)
		}
	}
	os.Chmod(sec, 0o600)
	os.Chmod(pub, 0o644)

	// MNO B's key file gains the manufacturer's key, not pinned for MNO B.
	b, _ := os.ReadFile(pub)
	m, _ := os.ReadFile(filepath.Join(dir, "keys", "mfr.pub.asc"))
	if err := os.WriteFile(pub, append(b, m...), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, errs = runCLI(t, "config", "check", "--config", cfg)
	if code != exitOK || !strings.Contains(out, "warning: partners.mno-b.pgp.public_keys[0]: key ") || !strings.Contains(out, "is not pinned") {
		t.Fatalf("exit %d, want a warning naming the unpinned key\n%s%s", code, out, errs)
	}
}
