package pgp

import (
	"bytes"
	"errors"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestReadKeysEveryArmoredBlock reads files as people make them: two
// `gpg --armor --export` outputs concatenated, one export of two keys, and
// the same with a comment before and between the blocks.
func TestReadKeysEveryArmoredBlock(t *testing.T) {
	g := newGnuPG(t)
	a := g.genKey("Old <old@example.org>", "curve25519", "never", "")
	b := g.genKey("New <new@example.org>", "rsa3072", "never", "")
	both := []string{a, b}
	slices.Sort(both)
	for _, tc := range []struct {
		name string
		file []byte
	}{
		{"two exports concatenated", append(g.exportPublic(a), g.exportPublic(b)...)},
		{"one export of two keys", g.must(nil, "--armor", "--export", a, b).out},
		{"comments around the blocks", []byte("partner keys, 2026 rotation\n" + string(g.exportPublic(a)) + "\nand the new one:\n" + string(g.exportPublic(b)) + "\n-- end\n")},
		{"binary exports concatenated", append(g.must(nil, "--export", a).out, g.must(nil, "--export", b).out...)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			keys, err := ReadKeys(bytes.NewReader(tc.file))
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, k := range keys {
				got = append(got, k.Fingerprint())
			}
			slices.Sort(got)
			if !slices.Equal(got, both) {
				t.Fatalf("read %v, want both keys %v", got, both)
			}
		})
	}

	// Secret keys: two armored secret exports concatenated.
	sec := append(g.must(nil, "--armor", "--passphrase", "", "--export-secret-keys", a).out,
		g.must(nil, "--armor", "--passphrase", "", "--export-secret-keys", b).out...)
	keys, err := ReadKeys(bytes.NewReader(sec))
	if err != nil || len(keys) != 2 || !keys[0].IsSecret() || !keys[1].IsSecret() {
		t.Fatalf("two secret key blocks: %d keys, %v", len(keys), err)
	}

	// What cannot be read whole is refused, naming the block.
	first := g.exportPublic(a)
	for _, tc := range []struct {
		name, file, detail string
	}{
		{"a message after the key", string(first) + string(g.must([]byte("x"), "--armor", "--sign", "-u", a).out), "block 2 is a PGP MESSAGE"},
		{"second block cut short", string(first) + strings.Join(strings.Split(string(g.exportPublic(b)), "\n")[:5], "\n"), "block 2 (PGP PUBLIC KEY BLOCK) has no END line"},
		{"second block's END missing before a third", string(first) + strings.Replace(string(g.exportPublic(b)), "-----END PGP PUBLIC KEY BLOCK-----", "", 1) + string(first), "no END line before the next BEGIN"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ReadKeys(strings.NewReader(tc.file))
			if !errors.Is(err, ErrBadKey) || !strings.Contains(err.Error(), tc.detail) {
				t.Fatalf("ReadKeys = %v, want ErrBadKey saying %q", err, tc.detail)
			}
		})
	}
}

// TestSubkeyFingerprints compares with the fingerprints gpg lists.
func TestSubkeyFingerprints(t *testing.T) {
	g := newGnuPG(t)
	fpr := g.genKey("Partner <p@example.org>", "curve25519", "never", "")
	k := readOne(t, g.exportPublic(fpr))
	var want []string
	for _, l := range strings.Split(string(g.must(nil, "--with-colons", "--with-subkey-fingerprints", "--list-keys", fpr).out), "\n") {
		if f := strings.Split(l, ":"); len(f) > 9 && f[0] == "fpr" && strings.ToLower(f[9]) != fpr {
			want = append(want, strings.ToLower(f[9]))
		}
	}
	if got := k.SubkeyFingerprints(); len(want) != 1 || !slices.Equal(got, want) {
		t.Fatalf("SubkeyFingerprints = %v, gpg lists %v", got, want)
	}
}

// TestEncryptionProblem names why a key made by gpg cannot be encrypted to.
func TestEncryptionProblem(t *testing.T) {
	g := newGnuPG(t)
	good := readOne(t, g.exportPublic(g.genKey("Good <g@example.org>", "curve25519", "never", "")))
	expiring := readOne(t, g.exportPublic(g.genKey("Expiring <e@example.org>", "curve25519", "1d", "")))
	rfpr := g.genKey("Revoked <r@example.org>", "curve25519", "never", "")
	revokeKey(t, g, rfpr)
	revoked := readOne(t, g.exportPublic(rfpr))
	signOnly := g.must(nil, "--passphrase", "", "--quick-gen-key", "Sign Only <s@example.org>", "ed25519", "sign", "never")
	sfpr := ""
	for _, l := range signOnly.status {
		if f := strings.Fields(l); len(f) >= 3 && f[0] == "KEY_CREATED" {
			sfpr = strings.ToLower(f[2])
		}
	}
	noEnc := readOne(t, g.exportPublic(sfpr))
	now := time.Now()
	later := now.Add(72 * time.Hour)
	signer := ourKey(t, Curve25519, "Resub")

	for _, tc := range []struct {
		name   string
		k      *Key
		at     time.Time
		detail string
	}{
		{"expired", expiring, later, "expired 20"},
		{"revoked", revoked, now, "is revoked"},
		{"no encryption subkey", noEnc, now, "has no encryption subkey"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.k.EncryptionProblem(tc.at)
			if !errors.Is(err, ErrNoEncryptionKey) || !strings.Contains(err.Error(), tc.detail) || !strings.Contains(err.Error(), tc.k.Fingerprint()) {
				t.Fatalf("EncryptionProblem = %v, want ErrNoEncryptionKey naming the key and %q", err, tc.detail)
			}
			_, err = Encrypt(&bytes.Buffer{}, []*Key{good, tc.k}, signer, EncryptOptions{Now: func() time.Time { return tc.at }})
			if !errors.Is(err, ErrNoEncryptionKey) {
				t.Fatalf("Encrypt = %v, want ErrNoEncryptionKey", err)
			}
		})
	}
	for _, k := range []*Key{good, expiring} {
		if err := k.EncryptionProblem(now); err != nil {
			t.Errorf("control %s: %v", k.UserID(), err)
		}
	}
}

// TestLiteralFileNameSeenByGnuPG: the name inside the message is the one
// given, as gpg --list-packets shows it.
func TestLiteralFileNameSeenByGnuPG(t *testing.T) {
	x := newInterop(t, Curve25519)
	x.g.importKey(armoredSecret(t, x.us))
	msg := encryptMsg(t, []byte("H|x\n"), []*Key{x.us.Public()}, x.us, EncryptOptions{FileName: "MNOA_MNOB_IMSI-RESULT_20261207_000001.txt"})
	r := x.g.run(msg, "--list-packets")
	m := regexp.MustCompile(`name="([^"]*)"`).FindSubmatch(r.out)
	if m == nil {
		t.Fatalf("no literal data name in gpg --list-packets:\n%s\n%s", r.out, r.stderr)
	}
	if got := string(m[1]); got != "MNOA_MNOB_IMSI-RESULT_20261207_000001.txt" {
		t.Fatalf("literal data name %q", got)
	}
}

func armoredSecret(t testing.TB, k *Key) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := k.WriteSecret(&b, true, nil); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestPlaintextName(t *testing.T) {
	for in, want := range map[string]string{
		"MNOA_MNOB_imsi-result_20261207_000001.txt.pgp": "MNOA_MNOB_imsi-result_20261207_000001.txt",
		"VENDOR_B1.out.gpg":                             "VENDOR_B1.out",
		"x.asc":                                         "x",
		"plain.txt":                                     "plain.txt",
		".pgp":                                          ".pgp",
	} {
		if got := PlaintextName(in); got != want {
			t.Errorf("PlaintextName(%q) = %q, want %q", in, got, want)
		}
	}
}
