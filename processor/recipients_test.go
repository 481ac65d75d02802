package processor_test

import (
	"bytes"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"resub/crypto/pgp"
	"resub/formats/native"
	"resub/processor"
)

// TestOutputRecipientsAndLiteralName: during the partner's key rotation
// (an expired key still pinned next to the current one) and with a key in
// its key file that is not pinned, A's answer is encrypted to the current
// pinned key only, and the name inside the message is the plaintext's,
// as real gpg lists the packets.
func TestOutputRecipientsAndLiteralName(t *testing.T) {
	if _, err := exec.LookPath("gpg"); err != nil {
		t.Skip("gpg not on PATH")
	}
	w, f, a, _ := setup3a(t, 1)
	expired, err := pgp.GenerateKey("MNOB 2025", "old@mnob.invalid", pgp.Curve25519, pgp.GenerateOptions{Now: func() time.Time { return w.now.Add(-48 * time.Hour) }, Lifetime: 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	stray, err := pgp.GenerateKey("Someone", "someone@else.invalid", pgp.Curve25519, pgp.GenerateOptions{Now: func() time.Time { return w.now.Add(-time.Hour) }})
	if err != nil {
		t.Fatal(err)
	}
	current := w.keys["MNOB"]
	pt := a.Partners["mno-b"]
	pt.PublicKeys = []*pgp.Key{expired.Public(), current.Public(), stray.Public()}
	pt.Fingerprints = []string{strings.ToUpper(expired.Fingerprint()), current.Fingerprint()}

	// A card nobody authorised: A rejects the record and answers B.
	list := w.send("MNOB", "MNOA", native.IMSIList, 1, false, "", listRecords([]listRec{{f.Cards[0].ICCID, "999990000000001", w.now.AddDate(0, 0, 1).Format("2006-01-02")}}))
	res := w.process(a, "mno-b", &processor.IMSIList{SMSC: a.Partners["smsc"]}, list)
	out := output(t, res.Outputs, "imsi-result")
	msg, err := os.ReadFile(out.Path)
	if err != nil {
		t.Fatal(err)
	}

	home, err := os.MkdirTemp("", "gpg")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		exec.Command("gpgconf", "--homedir", home, "--kill", "all").Run()
		os.RemoveAll(home)
	})
	gpg := func(stdin []byte, args ...string) string {
		t.Helper()
		cmd := exec.Command("gpg", append([]string{"--homedir", home, "--batch", "--no-tty", "--pinentry-mode", "loopback", "--passphrase", ""}, args...)...)
		cmd.Stdin = bytes.NewReader(stdin)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		o, err := cmd.Output()
		if err != nil {
			t.Fatalf("gpg %v: %v\n%s", args, err, stderr.String())
		}
		return string(o)
	}
	var sec bytes.Buffer
	if err := current.WriteSecret(&sec, true, nil); err != nil {
		t.Fatal(err)
	}
	gpg(sec.Bytes(), "--import")
	packets := gpg(msg, "--list-packets")

	keyIDs := regexp.MustCompile(`:pubkey enc packet: [^\n]*keyid ([0-9A-Fa-f]{16})`).FindAllStringSubmatch(packets, -1)
	want := strings.ToUpper(current.SubkeyFingerprints()[0][24:])
	if len(keyIDs) != 1 || strings.ToUpper(keyIDs[0][1]) != want {
		t.Errorf("session keys for %q, want one, for B's current encryption subkey %s\n%s", keyIDs, want, packets)
	}
	name := regexp.MustCompile(`name="([^"]*)"`).FindStringSubmatch(packets)
	plain := strings.TrimSuffix(out.Name, ".pgp")
	if name == nil || name[1] != plain || plain == out.Name {
		t.Errorf("literal data name %q, want the plaintext name %q (file %s)\n%s", name, plain, out.Name, packets)
	}
}
