package pgp

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// gnupg is a real GnuPG 2.2 with its own temporary home.
type gnupg struct {
	t    testing.TB
	home string
}

func newGnuPG(t testing.TB) *gnupg {
	t.Helper()
	if _, err := exec.LookPath("gpg"); err != nil {
		t.Skip("gpg not on PATH")
	}
	// A short path: gpg-agent's socket path must fit in sun_path.
	home, err := os.MkdirTemp("", "gpg")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(home, 0o700); err != nil {
		t.Fatal(err)
	}
	g := &gnupg{t: t, home: home}
	t.Cleanup(func() {
		exec.Command("gpgconf", "--homedir", home, "--kill", "all").Run()
		os.RemoveAll(home)
	})
	return g
}

// gpgResult is one gpg run.
type gpgResult struct {
	out    []byte
	status []string // status lines without the "[GNUPG:] " prefix
	stderr string
	err    error
}

// has reports whether a status line starts with prefix.
func (r gpgResult) has(prefix string) (string, bool) {
	for _, l := range r.status {
		if strings.HasPrefix(l, prefix) {
			return l, true
		}
	}
	return "", false
}

// run runs gpg with stdin, batch mode and a status file.
func (g *gnupg) run(stdin []byte, args ...string) gpgResult {
	g.t.Helper()
	statusFile := filepath.Join(g.home, "status")
	base := []string{"--homedir", g.home, "--batch", "--yes", "--no-tty", "--pinentry-mode", "loopback",
		"--trust-model", "always", "--status-file", statusFile}
	cmd := exec.Command("gpg", append(base, args...)...)
	cmd.Stdin = bytes.NewReader(stdin)
	var out, stderr bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &stderr
	err := cmd.Run()
	var r gpgResult
	r.out, r.stderr, r.err = out.Bytes(), stderr.String(), err
	if b, rerr := os.ReadFile(statusFile); rerr == nil {
		sc := bufio.NewScanner(bytes.NewReader(b))
		for sc.Scan() {
			r.status = append(r.status, strings.TrimPrefix(sc.Text(), "[GNUPG:] "))
		}
	}
	return r
}

// must runs gpg and fails the test on a non-zero exit.
func (g *gnupg) must(stdin []byte, args ...string) gpgResult {
	g.t.Helper()
	r := g.run(stdin, args...)
	if r.err != nil {
		g.t.Fatalf("gpg %s: %v\n%s", strings.Join(args, " "), r.err, r.stderr)
	}
	return r
}

// genKey makes a key with a signing primary and an encryption subkey and
// returns its fingerprint. algo is "curve25519" or "rsa3072"; expire is a
// gpg expiry ("never", "1d"); passphrase may be empty.
func (g *gnupg) genKey(uid, algo, expire, passphrase string) string {
	g.t.Helper()
	signAlgo, encAlgo := "ed25519", "cv25519"
	if algo == "rsa3072" {
		signAlgo, encAlgo = "rsa3072", "rsa3072"
	}
	r := g.must(nil, "--passphrase", passphrase, "--quick-gen-key", uid, signAlgo, "sign", expire)
	fpr := ""
	for _, l := range r.status {
		if f := strings.Fields(l); len(f) >= 3 && f[0] == "KEY_CREATED" {
			fpr = strings.ToLower(f[2])
		}
	}
	if fpr == "" {
		g.t.Fatalf("no KEY_CREATED in %q", r.status)
	}
	g.must(nil, "--passphrase", passphrase, "--quick-add-key", fpr, encAlgo, "encr", expire)
	return fpr
}

func (g *gnupg) exportPublic(fpr string) []byte {
	g.t.Helper()
	return g.must(nil, "--armor", "--export", fpr).out
}

func (g *gnupg) exportSecret(fpr, passphrase string) []byte {
	g.t.Helper()
	return g.must(nil, "--passphrase", passphrase, "--export-secret-keys", fpr).out
}

func (g *gnupg) importKey(key []byte) {
	g.t.Helper()
	g.must(key, "--import")
}
