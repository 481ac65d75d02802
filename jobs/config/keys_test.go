package config

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"resub/crypto/pgp"
)

const validFpr = "0123456789abcdef0123456789abcdef01234567"

var (
	keyOnce sync.Once
	keySet  map[string]*pgp.Key
	keyErr  error
)

// testKeys are partner keys made once: "old" and "new" valid for ever,
// "expired" expired a day ago, "expired2" too.
func testKeys(t *testing.T) map[string]*pgp.Key {
	t.Helper()
	keyOnce.Do(func() {
		keySet = map[string]*pgp.Key{}
		for _, n := range []string{"old", "new", "expired", "expired2"} {
			o := pgp.GenerateOptions{}
			if strings.HasPrefix(n, "expired") {
				o.Now = func() time.Time { return time.Now().Add(-48 * time.Hour) }
				o.Lifetime = 24 * time.Hour
			}
			k, err := pgp.GenerateKey("Partner "+n, n+"@example.org", pgp.Curve25519, o)
			if err != nil {
				keyErr = err
				return
			}
			keySet[n] = k.Public()
		}
	})
	if keyErr != nil {
		t.Fatal(keyErr)
	}
	return keySet
}

func armoredKeys(t *testing.T, keys ...*pgp.Key) []byte {
	t.Helper()
	var b bytes.Buffer
	for _, k := range keys {
		if err := k.WritePublic(&b, true); err != nil {
			t.Fatal(err)
		}
	}
	return b.Bytes()
}

// keyConfig writes the valid configuration with b.pub.asc holding keys and
// fingerprints pinned, and loads it.
func keyConfig(t *testing.T, pub []byte, fingerprints ...string) (*Config, string) {
	t.Helper()
	dir := fixture(t)
	if err := os.WriteFile(filepath.Join(dir, "b.pub.asc"), pub, 0o644); err != nil {
		t.Fatal(err)
	}
	body := strings.Replace(validYAML, `fingerprints: ["`+validFpr+`"]`, `fingerprints: ["`+strings.Join(fingerprints, `", "`)+`"]`, 1)
	cfg, err := Load(writeConfig(t, dir, body))
	if err != nil {
		t.Fatal(err)
	}
	return cfg, dir
}

func fingerprints(keys []*pgp.Key) []string {
	var out []string
	for _, k := range keys {
		out = append(out, k.Fingerprint())
	}
	slices.Sort(out)
	return out
}

// problemsOf returns the problems of a CheckKeys error, one string each.
func problemsOf(t *testing.T, err error) []string {
	t.Helper()
	if err == nil {
		return nil
	}
	var ce *Error
	if !errors.As(err, &ce) || !ce.ConfigError() {
		t.Fatalf("CheckKeys error %v is not a configuration error", err)
	}
	var out []string
	for _, p := range ce.Problems {
		out = append(out, p.String())
	}
	return out
}

func containsAll(list []string, subs ...string) bool {
	for _, l := range list {
		ok := true
		for _, s := range subs {
			ok = ok && strings.Contains(l, s)
		}
		if ok {
			return true
		}
	}
	return false
}

// Finding 6: a key in public_keys that is not pinned is never encrypted
// to, and config check names it.
func TestPinnedKeysOnly(t *testing.T) {
	k := testKeys(t)
	cfg, _ := keyConfig(t, armoredKeys(t, k["old"], k["new"]), k["new"].Fingerprint())
	keys, _, refused := cfg.PinnedKeys("mno-b")
	if len(refused) > 0 {
		t.Fatalf("refused: %v", refused)
	}
	if got := fingerprints(keys); !slices.Equal(got, []string{k["new"].Fingerprint()}) {
		t.Fatalf("pinned keys %v, want only %s", got, k["new"].Fingerprint())
	}
	w, err := cfg.CheckKeys(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	var ws []string
	for _, p := range w {
		ws = append(ws, p.String())
	}
	if !containsAll(ws, "partners.mno-b.pgp.public_keys[0]", k["old"].Fingerprint(), "not pinned") {
		t.Errorf("no warning names the unpinned key %s: %q", k["old"].Fingerprint(), ws)
	}
	if containsAll(ws, k["new"].Fingerprint()) {
		t.Errorf("a warning names the pinned key: %q", ws)
	}
}

// Finding 6: a pinned fingerprint that is a subkey's, or nobody's, is
// refused by config check.
func TestPinnedFingerprintMustBeAPrimaryKey(t *testing.T) {
	k := testKeys(t)
	sub := k["new"].SubkeyFingerprints()[0]
	for _, tc := range []struct {
		name string
		fpr  string
		want []string
	}{
		{"subkey", strings.ToUpper(sub), []string{"partners.mno-b.pgp.fingerprints[0]", sub, "is a subkey of " + k["new"].Fingerprint()}},
		{"typo", k["new"].Fingerprint()[:39] + "0", []string{"partners.mno-b.pgp.fingerprints[0]", "primary key of none"}},
		{"another partner's key", k["old"].Fingerprint(), []string{"partners.mno-b.pgp.fingerprints[0]", k["old"].Fingerprint(), "primary key of none"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.name == "typo" && strings.HasSuffix(k["new"].Fingerprint(), "0") {
				tc.fpr = k["new"].Fingerprint()[:39] + "1"
			}
			cfg, _ := keyConfig(t, armoredKeys(t, k["new"]), tc.fpr)
			_, err := cfg.CheckKeys(time.Now())
			if ps := problemsOf(t, err); !containsAll(ps, tc.want...) {
				t.Fatalf("problems %q, want one with %q", ps, tc.want)
			}
		})
	}
}

// Finding 7: during a rotation an expired pinned key is left out with a
// warning; with no pinned key able to encrypt, config check refuses.
func TestRotationWithAnExpiredKey(t *testing.T) {
	k := testKeys(t)
	cfg, _ := keyConfig(t, armoredKeys(t, k["expired"], k["new"]), k["expired"].Fingerprint(), k["new"].Fingerprint())
	warns, err := cfg.CheckKeys(time.Now())
	if err != nil {
		t.Fatalf("refused during a rotation: %v", err)
	}
	var ws []string
	for _, p := range warns {
		ws = append(ws, p.String())
	}
	if !containsAll(ws, "partners.mno-b.pgp.fingerprints", k["expired"].Fingerprint(), "left out", "expired") {
		t.Errorf("no warning about the expired key: %q", ws)
	}
	pinned, _, _ := cfg.PinnedKeys("mno-b")
	keys, _ := pgp.EncryptionKeys(pinned, time.Now())
	if got := fingerprints(keys); !slices.Equal(got, []string{k["new"].Fingerprint()}) {
		t.Fatalf("keys to encrypt to %v, want the valid one", got)
	}
	// What Encrypt does with the keys PinnedKeys returns: it works.
	signer, err := pgp.GenerateKey("Us", "us@example.org", pgp.Curve25519, pgp.GenerateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	w, err := pgp.Encrypt(&bytes.Buffer{}, keys, signer, pgp.EncryptOptions{})
	if err != nil {
		t.Fatalf("encrypt to the pinned keys: %v", err)
	}
	w.Close()

	cfg, _ = keyConfig(t, armoredKeys(t, k["expired"], k["expired2"]), k["expired"].Fingerprint(), k["expired2"].Fingerprint())
	_, err = cfg.CheckKeys(time.Now())
	if ps := problemsOf(t, err); !containsAll(ps, "partners.mno-b.pgp.fingerprints", "no pinned key can be encrypted to", k["expired"].Fingerprint(), k["expired2"].Fingerprint()) {
		t.Fatalf("problems %q, want no pinned key can be encrypted to", ps)
	}
}

// Finding 8: secrets readable by others and trust anchors writable by
// others are refused, naming the file and its mode.
func TestKeyMaterialPermissions(t *testing.T) {
	k := testKeys(t)
	for _, tc := range []struct {
		file string
		mode os.FileMode
		path string // "" for a control that must pass
	}{
		{"our.sec.asc", 0o644, "pgp.secret_key"},
		{"our.sec.asc", 0o640, "pgp.secret_key"},
		{"sftp_key", 0o604, "partners.mno-b.drop.sftp.private_key"},
		{"master.key", 0o660, "master_key.key"},
		{"tk.key", 0o644, "partners.mno-b.transport_keys[0].key"},
		{"known_hosts", 0o664, "partners.mno-b.drop.sftp.known_hosts"},
		{"known_hosts", 0o646, "partners.mno-b.drop.sftp.known_hosts"},
		{"b.pub.asc", 0o666, "partners.mno-b.pgp.public_keys[0]"},
		{"resub.yaml", 0o664, "resub.yaml"},
		{"our.sec.asc", 0o400, ""},
		{"master.key", 0o600, ""},
		{"known_hosts", 0o644, ""},
		{"b.pub.asc", 0o444, ""},
		{"resub.yaml", 0o640, ""},
	} {
		t.Run(tc.file+"-"+tc.mode.String(), func(t *testing.T) {
			cfg, dir := keyConfig(t, armoredKeys(t, k["new"]), k["new"].Fingerprint())
			f := filepath.Join(dir, tc.file)
			if err := os.Chmod(f, tc.mode); err != nil {
				t.Fatal(err)
			}
			_, err := cfg.CheckKeys(time.Now())
			ps := problemsOf(t, err)
			if tc.path == "" {
				if len(ps) > 0 {
					t.Fatalf("mode %04o refused: %q", tc.mode, ps)
				}
				return
			}
			mode := "mode " + octal(tc.mode)
			if !containsAll(ps, tc.path, f, mode) {
				t.Fatalf("problems %q, want %s naming %s and %s", ps, tc.path, f, mode)
			}
		})
	}
}

// octal prints permission bits as chmod takes them ("0644").
func octal(m os.FileMode) string {
	const digits = "01234567"
	p := uint32(m.Perm())
	return string([]byte{'0', digits[p>>6&7], digits[p>>3&7], digits[p&7]})
}

// Finding 10: a public key file of two gpg exports concatenated gives
// both keys; a file with a block that is not a key is refused.
func TestKeyFileOfSeveralBlocks(t *testing.T) {
	if _, err := exec.LookPath("gpg"); err != nil {
		t.Skip("gpg not on PATH")
	}
	home, err := os.MkdirTemp("", "gpg")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		exec.Command("gpgconf", "--homedir", home, "--kill", "all").Run()
		os.RemoveAll(home)
	})
	gpg := func(args ...string) []byte {
		t.Helper()
		cmd := exec.Command("gpg", append([]string{"--homedir", home, "--batch", "--no-tty", "--pinentry-mode", "loopback", "--passphrase", ""}, args...)...)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("gpg %v: %v\n%s", args, err, stderr.String())
		}
		return out
	}
	var fprs []string
	for _, uid := range []string{"Old <old@example.org>", "New <new@example.org>"} {
		gpg("--quick-gen-key", uid, "ed25519", "sign", "never")
		for _, l := range strings.Split(string(gpg("--with-colons", "--list-keys", uid)), "\n") {
			if f := strings.Split(l, ":"); len(f) > 9 && f[0] == "fpr" {
				fprs = append(fprs, strings.ToLower(f[9]))
				break
			}
		}
		gpg("--quick-add-key", fprs[len(fprs)-1], "cv25519", "encr", "never")
	}
	file := append(gpg("--armor", "--export", fprs[0]), gpg("--armor", "--export", fprs[1])...)
	cfg, _ := keyConfig(t, file, fprs...)
	keys, _, refused := cfg.PinnedKeys("mno-b")
	want := slices.Clone(fprs)
	slices.Sort(want)
	if got := fingerprints(keys); len(refused) > 0 || !slices.Equal(got, want) {
		t.Fatalf("keys %v (refused %v), want both %v", got, refused, want)
	}

	bad := append(gpg("--armor", "--export", fprs[0]), gpg("--armor", "--clearsign", "-u", fprs[0])...)
	cfg, _ = keyConfig(t, append(bad, []byte("x\n")...), fprs[0])
	_, err = cfg.CheckKeys(time.Now())
	if ps := problemsOf(t, err); !containsAll(ps, "partners.mno-b.pgp.public_keys[0]", "block 2", "not a key block") {
		t.Fatalf("problems %q, want the file refused naming block 2", ps)
	}
}
