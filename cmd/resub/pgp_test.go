package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// runCLIIn runs the CLI in-process with stdin.
func runCLIIn(t testing.TB, stdin []byte, args ...string) (code int, stdout []byte, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(context.Background(), args, stdio{in: bytes.NewReader(stdin), out: &out, err: &errb})
	return code, out.Bytes(), errb.String()
}

// keygen makes a key pair with the CLI and returns its prefix and fingerprint.
func keygen(t *testing.T, dir, name string, extra ...string) (prefix, fpr string) {
	t.Helper()
	prefix = filepath.Join(dir, name)
	args := append([]string{"pgp", "keygen", "--name", name, "--email", name + "@example.org", "--out", prefix}, extra...)
	code, out, errs := runCLIIn(t, nil, args...)
	if code != exitOK {
		t.Fatalf("keygen: exit %d: %s", code, errs)
	}
	return prefix, strings.TrimSpace(string(out))
}

func TestPGPKeygenAndFingerprint(t *testing.T) {
	dir := t.TempDir()
	prefix, fpr := keygen(t, dir, "alice")
	if len(fpr) != 40 || strings.ToLower(fpr) != fpr {
		t.Fatalf("keygen printed %q", fpr)
	}
	st, err := os.Stat(prefix + ".sec.asc")
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("secret key mode %v, want 0600", st.Mode().Perm())
	}
	for _, f := range []string{".pub.asc", ".sec.asc"} {
		code, out, errs := runCLIIn(t, nil, "pgp", "fingerprint", prefix+f)
		if code != exitOK || strings.TrimSpace(string(out)) != fpr {
			t.Errorf("fingerprint %s: exit %d out %q err %s", f, code, out, errs)
		}
	}
	// The key files exist now: keygen refuses to overwrite them.
	if code, _, _ := runCLIIn(t, nil, "pgp", "keygen", "--name", "a", "--email", "a@b", "--out", prefix); code != exitUsage {
		t.Errorf("keygen over existing files: exit %d, want %d", code, exitUsage)
	}
	if code, _, _ := runCLIIn(t, nil, "pgp", "keygen", "--name", "a", "--email", "a@b", "--algo", "dsa", "--out", filepath.Join(dir, "x")); code != exitUsage {
		t.Errorf("keygen --algo dsa: exit %d, want %d", code, exitUsage)
	}
}

func TestPGPUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{"pgp"},
		{"pgp", "frobnicate"},
		{"pgp", "encrypt", "--sign-with", "x"},
		{"pgp", "decrypt", "--key", "x"},
		{"pgp", "fingerprint"},
		{"pgp", "encrypt", "--to", "/nonexistent", "--sign-with", "/nonexistent"},
	} {
		if code, _, errs := runCLIIn(t, nil, args...); code != exitUsage {
			t.Errorf("%q: exit %d, want %d (%s)", args, code, exitUsage, errs)
		}
	}
	for _, sub := range []string{"keygen", "encrypt", "decrypt", "fingerprint"} {
		if code, _, errs := runCLIIn(t, nil, "pgp", sub, "--help"); code != exitOK || !strings.Contains(errs, "usage: resub pgp "+sub) {
			t.Errorf("pgp %s --help: exit %d, %q", sub, code, errs)
		}
	}
}

func TestPGPEncryptDecryptCLI(t *testing.T) {
	dir := t.TempDir()
	us, _ := keygen(t, dir, "us")
	them, _ := keygen(t, dir, "them", "--algo", "rsa3072")
	mallory, _ := keygen(t, dir, "mallory")
	plain := make([]byte, 100_000)
	rand.Read(plain)
	in := filepath.Join(dir, "plain.bin")
	if err := os.WriteFile(in, plain, 0o600); err != nil {
		t.Fatal(err)
	}

	for _, mode := range [][]string{{}, {"--armor", "--compress", "zlib"}, {"--compress", "zip"}} {
		ct := filepath.Join(dir, "msg.pgp")
		os.Remove(ct)
		args := append([]string{"pgp", "encrypt", "--to", them + ".pub.asc", "--sign-with", us + ".sec.asc", "-o", ct}, mode...)
		if code, _, errs := runCLIIn(t, nil, append(args, in)...); code != exitOK {
			t.Fatalf("encrypt %q: exit %d: %s", mode, code, errs)
		}
		ctBytes, _ := os.ReadFile(ct)
		// From a file, to a file.
		out := filepath.Join(dir, "out.bin")
		os.Remove(out)
		if code, _, errs := runCLIIn(t, nil, "pgp", "decrypt", "--key", them+".sec.asc", "--signer", mallory+".pub.asc", "--signer", us+".pub.asc", "-o", out, ct); code != exitOK {
			t.Fatalf("decrypt %q: exit %d: %s", mode, code, errs)
		}
		if got, _ := os.ReadFile(out); !bytes.Equal(got, plain) {
			t.Fatalf("decrypt %q: plaintext differs", mode)
		}
		// From standard input, to standard output.
		code, got, errs := runCLIIn(t, ctBytes, "pgp", "decrypt", "--key", them+".sec.asc", "--signer", us+".pub.asc")
		if code != exitOK || !bytes.Equal(got, plain) {
			t.Fatalf("decrypt stdin %q: exit %d: %s", mode, code, errs)
		}
	}

	// Refused files: exit 1, and neither OUT nor a temporary file remains.
	ct := filepath.Join(dir, "good.pgp")
	if code, _, errs := runCLIIn(t, nil, "pgp", "encrypt", "--to", them+".pub.asc", "--sign-with", us+".sec.asc", "-o", ct, in); code != exitOK {
		t.Fatalf("encrypt: %s", errs)
	}
	good, _ := os.ReadFile(ct)
	tampered := bytes.Clone(good)
	tampered[len(tampered)/2] ^= 0x40
	bad := filepath.Join(dir, "bad.pgp")
	os.WriteFile(bad, tampered, 0o600)
	byMallory := filepath.Join(dir, "mallory.pgp")
	if code, _, _ := runCLIIn(t, nil, "pgp", "encrypt", "--to", them+".pub.asc", "--sign-with", mallory+".sec.asc", "-o", byMallory, in); code != exitOK {
		t.Fatal("encrypt by mallory")
	}
	for _, tc := range []struct {
		name, file, signer string
	}{
		{"tampered", bad, us},
		{"unknown signer", byMallory, us},
		{"good file, wrong pinned signer", ct, mallory},
	} {
		t.Run(tc.name, func(t *testing.T) {
			outDir := t.TempDir()
			out := filepath.Join(outDir, "plain.csv")
			code, stdout, errs := runCLIIn(t, nil, "pgp", "decrypt", "--key", them+".sec.asc", "--signer", tc.signer+".pub.asc", "-o", out, tc.file)
			if code != exitRefused {
				t.Fatalf("exit %d, want %d: %s", code, exitRefused, errs)
			}
			if len(stdout) != 0 {
				t.Errorf("stdout not empty")
			}
			left, _ := os.ReadDir(outDir)
			if len(left) != 0 {
				t.Errorf("left behind: %v", left)
			}
			code, stdout, _ = runCLIIn(t, mustRead(t, tc.file), "pgp", "decrypt", "--key", them+".sec.asc", "--signer", tc.signer+".pub.asc")
			if code != exitRefused || len(stdout) != 0 {
				t.Errorf("stdin: exit %d with %d bytes of output", code, len(stdout))
			}
		})
	}
	// Control: the same command with the right signer writes the file.
	out := filepath.Join(t.TempDir(), "plain.csv")
	if code, _, errs := runCLIIn(t, nil, "pgp", "decrypt", "--key", them+".sec.asc", "--signer", us+".pub.asc", "-o", out, ct); code != exitOK {
		t.Fatalf("control: exit %d: %s", code, errs)
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestPGPPassphraseProtectedKeyCLI(t *testing.T) {
	dir := t.TempDir()
	pw := filepath.Join(dir, "pw")
	os.WriteFile(pw, []byte("s3cret\n"), 0o600)
	us, _ := keygen(t, dir, "us", "--passphrase-file", pw)
	them, _ := keygen(t, dir, "them")
	if bytes.Contains(mustRead(t, us+".sec.asc"), []byte("s3cret")) {
		t.Fatal("passphrase in key file")
	}
	ct := filepath.Join(dir, "m.pgp")
	args := []string{"pgp", "encrypt", "--to", them + ".pub.asc", "--sign-with", us + ".sec.asc", "-o", ct}
	if code, _, _ := runCLIIn(t, []byte("x"), args...); code != exitUsage {
		t.Errorf("locked key without passphrase: exit %d, want %d", code, exitUsage)
	}
	t.Setenv("RESUB_TEST_PW", "wrong")
	if code, _, _ := runCLIIn(t, []byte("x"), append(args, "--passphrase-env", "RESUB_TEST_PW")...); code != exitUsage {
		t.Errorf("wrong passphrase: exit %d, want %d", code, exitUsage)
	}
	t.Setenv("RESUB_TEST_PW", "s3cret")
	if code, _, errs := runCLIIn(t, []byte("x"), append(args, "--passphrase-env", "RESUB_TEST_PW")...); code != exitOK {
		t.Fatalf("passphrase from env: exit %d: %s", code, errs)
	}
}

// TestPGPCLIWithGnuPG: gpg decrypts what the CLI wrote, the CLI decrypts
// what gpg wrote.
func TestPGPCLIWithGnuPG(t *testing.T) {
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
	os.Chmod(home, 0o700)
	status := filepath.Join(home, "status")
	gpg := func(stdin []byte, args ...string) ([]byte, []string) {
		t.Helper()
		cmd := exec.Command("gpg", append([]string{"--homedir", home, "--batch", "--yes", "--pinentry-mode", "loopback", "--passphrase", "", "--trust-model", "always", "--status-file", status}, args...)...)
		cmd.Stdin = bytes.NewReader(stdin)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("gpg %q: %v: %s", args, err, stderr.String())
		}
		var lines []string
		b, _ := os.ReadFile(status)
		sc := bufio.NewScanner(bytes.NewReader(b))
		for sc.Scan() {
			lines = append(lines, strings.TrimPrefix(sc.Text(), "[GNUPG:] "))
		}
		return out, lines
	}
	dir := t.TempDir()
	us, ourFpr := keygen(t, dir, "us")
	gpg(mustRead(t, us+".pub.asc"), "--import")
	gpg(nil, "--quick-gen-key", "Partner <p@example.org>", "ed25519", "sign", "never")
	colons, _ := gpg(nil, "--with-colons", "--fingerprint", "p@example.org")
	var partner string
	for _, l := range strings.Split(string(colons), "\n") {
		if f := strings.Split(l, ":"); f[0] == "fpr" && partner == "" {
			partner = strings.ToLower(f[9])
		}
	}
	gpg(nil, "--quick-add-key", partner, "cv25519", "encr", "never")
	pub, _ := gpg(nil, "--armor", "--export", partner)
	partnerPub := filepath.Join(dir, "partner.pub.asc")
	os.WriteFile(partnerPub, pub, 0o644)

	plain := []byte(strings.Repeat("89014103211118510720,242011234567890\n", 1000))
	// CLI -> gpg.
	ct := filepath.Join(dir, "to-partner.pgp")
	if code, _, errs := runCLIIn(t, plain, "pgp", "encrypt", "--to", partnerPub, "--sign-with", us+".sec.asc", "--armor", "-o", ct); code != exitOK {
		t.Fatalf("encrypt: %s", errs)
	}
	got, st := gpg(mustRead(t, ct), "--decrypt")
	if !bytes.Equal(got, plain) {
		t.Fatal("gpg plaintext differs")
	}
	// The literal data names the plaintext, not the .pgp file.
	if packets, _ := gpg(mustRead(t, ct), "--list-packets"); !strings.Contains(string(packets), `name="to-partner"`) {
		t.Errorf("literal data name, want \"to-partner\":\n%s", packets)
	}
	var validsig, decinfo string
	for _, l := range st {
		if strings.HasPrefix(l, "VALIDSIG ") {
			validsig = l
		}
		if strings.HasPrefix(l, "DECRYPTION_INFO ") {
			decinfo = l
		}
	}
	if f := strings.Fields(validsig); len(f) < 2 || strings.ToLower(f[len(f)-1]) != ourFpr {
		t.Errorf("VALIDSIG %q, want our fingerprint %s", validsig, ourFpr)
	}
	if f := strings.Fields(decinfo); len(f) < 3 || f[2] != "9" {
		t.Errorf("DECRYPTION_INFO %q, want cipher 9 (AES-256)", decinfo)
	}
	// gpg -> CLI.
	msg, _ := gpg(plain, "--encrypt", "--sign", "-r", ourFpr, "-u", partner)
	code, out, errs := runCLIIn(t, msg, "pgp", "decrypt", "--key", us+".sec.asc", "--signer", partnerPub)
	if code != exitOK || !bytes.Equal(out, plain) {
		t.Fatalf("decrypt gpg's file: exit %d: %s", code, errs)
	}
	// gpg's file signed by nobody we pin: refused.
	unsigned, _ := gpg(plain, "--encrypt", "-r", ourFpr)
	if code, out, _ := runCLIIn(t, unsigned, "pgp", "decrypt", "--key", us+".sec.asc", "--signer", partnerPub); code != exitRefused || len(out) != 0 {
		t.Errorf("unsigned: exit %d, %d bytes out", code, len(out))
	}
}
