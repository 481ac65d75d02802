package jobs

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"resub/crypto/pgp"
	"resub/jobs/config"
)

// keyWorld is an installation whose partner mno-b has three keys in its
// key file: current (pinned), expiring in an hour (pinned), stray (not
// pinned).
type keyWorld struct {
	dir, cfgPath             string
	now                      time.Time
	log                      *slog.Logger
	current, expiring, stray *pgp.Key
}

func newKeyWorld(t *testing.T, pinned func(w *keyWorld) []string) *keyWorld {
	t.Helper()
	w := &keyWorld{dir: t.TempDir(), now: time.Now().UTC().Truncate(time.Second)}
	gen := func(name string, lifetime time.Duration) *pgp.Key {
		k, err := pgp.GenerateKey(name, strings.ToLower(name)+"@example.org", pgp.Curve25519, pgp.GenerateOptions{
			Now: func() time.Time { return w.now.Add(-time.Hour) }, Lifetime: lifetime})
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	us := gen("Us", 0)
	w.current, w.expiring, w.stray = gen("Current", 0), gen("Expiring", 2*time.Hour), gen("Stray", 0)
	write := func(name string, mode os.FileMode, fill func(*bytes.Buffer) error) {
		var b bytes.Buffer
		if err := fill(&b); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(w.dir, name), b.Bytes(), mode); err != nil {
			t.Fatal(err)
		}
	}
	write("us.sec.asc", 0o600, func(b *bytes.Buffer) error { return us.WriteSecret(b, true, nil) })
	write("master.key", 0o600, func(b *bytes.Buffer) error { _, err := b.WriteString(strings.Repeat("5a", 32) + "\n"); return err })
	write("b.pub.asc", 0o644, func(b *bytes.Buffer) error {
		for _, k := range []*pgp.Key{w.current, w.expiring, w.stray} {
			if err := k.WritePublic(b, true); err != nil {
				return err
			}
		}
		return nil
	})
	if err := os.Mkdir(filepath.Join(w.dir, "drop"), 0o700); err != nil {
		t.Fatal(err)
	}
	body := `party: {name: MNOA, role: operator}
pgp: {secret_key: us.sec.asc}
master_key: {id: mk-1, key: file:master.key}
partners:
  mno-b:
    kind: operator
    code: MNOB
    drop: {local: {dir: drop}, stable: 1ms}
    pgp: {public_keys: [b.pub.asc], fingerprints: ["` + strings.Join(pinned(w), `", "`) + `"]}
jobs:
  - {name: imsi-result, kind: b-imsi-result, partner: mno-b, schedule: "0 4 * * *"}
`
	w.cfgPath = filepath.Join(w.dir, "resub.yaml")
	if err := os.WriteFile(w.cfgPath, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return w
}

func (w *keyWorld) open(t *testing.T, at time.Time) (*Runtime, error) {
	t.Helper()
	cfg, err := config.Load(w.cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	clock := at
	rt, err := Open(context.Background(), cfg, Options{Now: func() time.Time { return clock }, Log: w.log})
	if rt != nil {
		t.Cleanup(func() { rt.Close() })
	}
	return rt, err
}

func isConfigError(err error) bool {
	var ce interface{ ConfigError() bool }
	return errors.As(err, &ce) && ce.ConfigError()
}

// Finding 6: the partner as the runtime builds it holds only its pinned
// keys: the stray key in its key file is never encrypted to.
func TestRuntimePartnerHoldsPinnedKeysOnly(t *testing.T) {
	w := newKeyWorld(t, func(w *keyWorld) []string { return []string{w.current.Fingerprint(), w.expiring.Fingerprint()} })
	rt, err := w.open(t, w.now)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, k := range rt.Party.Partners["mno-b"].PublicKeys {
		got = append(got, k.Fingerprint())
	}
	if len(got) != 2 || strings.Contains(strings.Join(got, " "), w.stray.Fingerprint()) {
		t.Fatalf("partner keys %v, want the two pinned ones (not %s)", got, w.stray.Fingerprint())
	}
}

// Finding 8: a runtime does not open on a secret others can read.
func TestOpenRefusesLooseSecret(t *testing.T) {
	w := newKeyWorld(t, func(w *keyWorld) []string { return []string{w.current.Fingerprint()} })
	f := filepath.Join(w.dir, "master.key")
	if err := os.Chmod(f, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := w.open(t, w.now)
	if !isConfigError(err) || !strings.Contains(err.Error(), "master_key.key: "+f+" has mode 0644") {
		t.Fatalf("Open = %v, want a configuration error naming %s and its mode", err, f)
	}
	if _, err := os.Stat(filepath.Join(w.dir, "data", "ledger.db")); err == nil {
		t.Error("the ledger was created before the refusal")
	}
}

// Finding 7: with only an expired key pinned nothing starts; a key that
// expires while the daemon runs stops the job before it commits anything.
func TestNoKeyToEncryptToIsFoundBeforeCommit(t *testing.T) {
	w := newKeyWorld(t, func(w *keyWorld) []string { return []string{w.expiring.Fingerprint()} })
	later := w.now.Add(3 * time.Hour)
	if _, err := w.open(t, later); !isConfigError(err) || !strings.Contains(err.Error(), "no pinned key can be encrypted to") {
		t.Fatalf("Open after the only pinned key expired = %v, want a configuration error", err)
	}

	rt, err := w.open(t, w.now)
	if err != nil {
		t.Fatalf("Open while the key is valid: %v", err)
	}
	if _, err := rt.RunJob(context.Background(), "imsi-result", RunOptions{Manual: true}); err != nil {
		t.Fatalf("run while the key is valid: %v", err)
	}
	rt.now = func() time.Time { return later }
	_, err = rt.RunJob(context.Background(), "imsi-result", RunOptions{Manual: true})
	if !isConfigError(err) || !strings.Contains(err.Error(), "partners.mno-b.pgp.fingerprints") || !strings.Contains(err.Error(), w.expiring.Fingerprint()+" expired") {
		t.Fatalf("run after the key expired = %v, want a configuration error naming the key", err)
	}
	var runs int
	if err := rt.Ledger.QueryRow(context.Background(), `SELECT count(*) FROM job_runs`).Scan(&runs); err != nil {
		t.Fatal(err)
	}
	if runs != 1 {
		t.Errorf("%d runs recorded, want only the first", runs)
	}
}
