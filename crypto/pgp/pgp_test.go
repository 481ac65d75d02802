package pgp

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

var (
	keyCache   = map[Algo]*Key{}
	keyCacheMu sync.Mutex
)

// ourKey returns a generated secret key per algorithm, shared by the tests
// of this package (RSA generation is slow).
func ourKey(t testing.TB, algo Algo, name string) *Key {
	t.Helper()
	keyCacheMu.Lock()
	defer keyCacheMu.Unlock()
	id := Algo(string(algo) + "/" + name)
	if k, ok := keyCache[id]; ok {
		return k
	}
	k, err := GenerateKey(name, strings.ToLower(name)+"@example.net", algo, GenerateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	keyCache[id] = k
	return k
}

func armoredPublic(t testing.TB, k *Key) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := k.WritePublic(&b, true); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func readOne(t testing.TB, b []byte) *Key {
	t.Helper()
	keys, err := ReadKeys(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 1 {
		t.Fatalf("%d keys, want 1", len(keys))
	}
	return keys[0]
}

func opener(b []byte) func() (io.ReadCloser, error) {
	return func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }
}

// decrypt runs both passes and returns the plaintext.
func decrypt(msg []byte, opts DecryptOptions) (*Verified, []byte, error) {
	v, err := Open(opener(msg), opts)
	if err != nil {
		return nil, nil, err
	}
	rc, err := v.Plaintext()
	if err != nil {
		return v, nil, err
	}
	defer rc.Close()
	plain, err := io.ReadAll(rc)
	return v, plain, err
}

func encryptMsg(t testing.TB, plain []byte, to []*Key, signer *Key, opts EncryptOptions) []byte {
	t.Helper()
	var b bytes.Buffer
	w, err := Encrypt(&b, to, signer, opts)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(plain); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func randomText(t testing.TB, n int) []byte {
	t.Helper()
	b := make([]byte, n/2)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	s := hex.EncodeToString(b)
	var out strings.Builder
	for len(s) > 76 {
		out.WriteString(s[:76] + "\n")
		s = s[76:]
	}
	out.WriteString(s)
	return []byte(out.String())
}

// interop is one GnuPG home with a partner key, our key imported.
type interop struct {
	g          *gnupg
	algo       Algo
	us         *Key
	partner    string // fingerprint of the partner's key in gpg
	partnerPub *Key
}

func newInterop(t *testing.T, algo Algo) *interop {
	t.Helper()
	g := newGnuPG(t)
	us := ourKey(t, algo, "Resub")
	g.importKey(armoredPublic(t, us))
	fpr := g.genKey("Partner <partner@example.org>", string(algo), "never", "")
	return &interop{g: g, algo: algo, us: us, partner: fpr, partnerPub: readOne(t, g.exportPublic(fpr))}
}

func (x *interop) opts() DecryptOptions {
	return DecryptOptions{Keys: []*Key{x.us}, Signers: []*Key{x.partnerPub}}
}

func TestGnuPGToUs(t *testing.T) {
	for _, algo := range []Algo{Curve25519, RSA3072} {
		t.Run(string(algo), func(t *testing.T) {
			x := newInterop(t, algo)
			plain := randomText(t, 300_000)
			for _, tc := range []struct {
				name string
				args []string
			}{
				{"binary-uncompressed", []string{"-z", "0"}},
				{"armored-zlib", []string{"--armor", "--compress-algo", "zlib"}},
				{"binary-zip", []string{"--compress-algo", "zip"}},
				{"textmode-armored", []string{"--armor", "--textmode"}},
				{"hidden-recipient", []string{"--throw-keyids", "-z", "0"}},
			} {
				t.Run(tc.name, func(t *testing.T) {
					args := append([]string{"--encrypt", "--sign", "-r", x.us.Fingerprint(), "-u", x.partner}, tc.args...)
					msg := x.g.must(plain, args...).out
					v, got, err := decrypt(msg, x.opts())
					if err != nil {
						t.Fatalf("decrypt: %v", err)
					}
					if strings.Contains(tc.name, "textmode") {
						// gpg stores text with CRLF line ends, signed as such.
						got = bytes.ReplaceAll(got, []byte("\r\n"), []byte("\n"))
					}
					if !bytes.Equal(got, plain) {
						t.Fatalf("plaintext differs: %d bytes, want %d", len(got), len(plain))
					}
					if v.Signer != x.partner {
						t.Errorf("Signer = %s, want %s", v.Signer, x.partner)
					}
					sum := sha256.Sum256(msg)
					if v.SHA256 != hex.EncodeToString(sum[:]) || v.Size != int64(len(msg)) {
						t.Errorf("SHA256/Size = %s/%d, want sha256 of the file", v.SHA256, v.Size)
					}
					if v.Cipher != "AES256" {
						t.Errorf("Cipher = %s, want AES256 (our key prefers it)", v.Cipher)
					}
					if v.Hash == "SHA-1" || v.Hash == "" {
						t.Errorf("Hash = %q", v.Hash)
					}
				})
			}
		})
	}
}

func TestUsToGnuPG(t *testing.T) {
	for _, algo := range []Algo{Curve25519, RSA3072} {
		t.Run(string(algo), func(t *testing.T) {
			x := newInterop(t, algo)
			plain := randomText(t, 300_000)
			for _, tc := range []struct {
				name string
				opts EncryptOptions
			}{
				{"binary-none", EncryptOptions{}},
				{"armored-zlib", EncryptOptions{Armor: true, Compression: CompressZLIB}},
				{"binary-zip", EncryptOptions{Compression: CompressZIP, Level: 1}},
				{"armored-sha512", EncryptOptions{Armor: true, Hash: 0}},
			} {
				t.Run(tc.name, func(t *testing.T) {
					msg := encryptMsg(t, plain, []*Key{x.partnerPub}, x.us, tc.opts)
					if tc.opts.Armor != bytes.HasPrefix(msg, []byte("-----BEGIN PGP MESSAGE-----")) {
						t.Fatalf("armor = %v, output starts %q", tc.opts.Armor, msg[:20])
					}
					r := x.g.must(msg, "--decrypt")
					if !bytes.Equal(r.out, plain) {
						t.Fatalf("gpg plaintext differs: %d bytes, want %d", len(r.out), len(plain))
					}
					checkGnuPGStatus(t, r, x.us.Fingerprint())
				})
			}
		})
	}
}

// checkGnuPGStatus requires a valid signature by fpr (primary key, last
// field of VALIDSIG) and AES-256 with MDC.
func checkGnuPGStatus(t *testing.T, r gpgResult, fpr string) {
	t.Helper()
	l, ok := r.has("VALIDSIG ")
	if !ok {
		t.Fatalf("no VALIDSIG in %q", r.status)
	}
	f := strings.Fields(l)
	if got := strings.ToLower(f[len(f)-1]); got != fpr {
		t.Errorf("VALIDSIG primary fingerprint %s, want %s", got, fpr)
	}
	if f[8] != "8" && f[8] != "10" && f[8] != "9" { // hash algo: SHA256, SHA512, SHA384
		t.Errorf("VALIDSIG hash algo %s, want SHA-2", f[8])
	}
	l, ok = r.has("DECRYPTION_INFO ")
	if !ok {
		t.Fatalf("no DECRYPTION_INFO in %q", r.status)
	}
	if f := strings.Fields(l); len(f) < 3 || f[1] != "2" || f[2] != "9" {
		t.Errorf("DECRYPTION_INFO %q, want mdc 2 and cipher 9 (AES-256)", l)
	}
	if _, ok := r.has("DECRYPTION_OKAY"); !ok {
		t.Errorf("no DECRYPTION_OKAY")
	}
	if _, ok := r.has("GOODMDC"); !ok {
		t.Errorf("no GOODMDC")
	}
}

// TestRefusals proves each refusal with files made by gpg where it can.
func TestRefusals(t *testing.T) {
	for _, algo := range []Algo{Curve25519, RSA3072} {
		t.Run(string(algo), func(t *testing.T) { testRefusals(t, algo) })
	}
}

func testRefusals(t *testing.T, algo Algo) {
	x := newInterop(t, algo)
	g := x.g
	plain := randomText(t, 200_000)
	us := x.us.Fingerprint()
	signed := g.must(plain, "--encrypt", "--sign", "-z", "0", "-r", us, "-u", x.partner).out

	mallory := g.genKey("Mallory <mallory@example.org>", "curve25519", "never", "")
	expiring := g.genKey("Expiring <exp@example.org>", "curve25519", "1d", "")
	revoked := g.genKey("Revoked <rev@example.org>", "curve25519", "never", "")
	byRevoked := g.must(plain, "--encrypt", "--sign", "-r", us, "-u", revoked).out
	revokeKey(t, g, revoked)
	revokedPub := readOne(t, g.exportPublic(revoked))
	expiringPub := readOne(t, g.exportPublic(expiring))
	mal := readOne(t, g.exportPublic(mallory))

	flipped := bytes.Clone(signed)
	flipped[len(flipped)*2/3] ^= 0x01
	flippedEnd := bytes.Clone(signed)
	flippedEnd[len(flippedEnd)-3] ^= 0x80 // inside the MDC
	armored := g.must(plain, "--encrypt", "--sign", "--armor", "-r", us, "-u", x.partner).out

	zeros := make([]byte, 20<<20)
	bomb := g.must(zeros, "--encrypt", "--sign", "-z", "9", "--compress-algo", "zlib", "-r", us, "-u", x.partner).out

	withSigners := func(keys ...*Key) DecryptOptions {
		o := x.opts()
		o.Signers = keys
		return o
	}
	later := x.opts()
	later.Signers = []*Key{expiringPub}
	later.Now = func() time.Time { return time.Now().Add(72 * time.Hour) }
	small := x.opts()
	small.MaxSize = 1 << 20

	for _, tc := range []struct {
		name string
		msg  []byte
		opts DecryptOptions
		want error
	}{
		{"random bytes", randomText(t, 1000), x.opts(), ErrNotPGP},
		{"user ID packet", []byte{0xcd, 0x03, 'a', 'b', 'c'}, x.opts(), ErrNotPGP},
		{"packet header cut", []byte{0x85, 0x01, 0x02, 0x03}, x.opts(), ErrTruncated},
		{"empty", nil, x.opts(), ErrNotPGP},
		{"public key, not a message", g.exportPublic(x.partner), x.opts(), ErrNotPGP},
		{"signed, not encrypted", g.must(plain, "--sign", "-u", x.partner).out, x.opts(), ErrNotEncrypted},
		{"CAST5 cipher", g.must(plain, "--encrypt", "--sign", "--cipher-algo", "CAST5", "-r", us, "-u", x.partner).out, x.opts(), ErrNotEncrypted},
		{"unsigned", g.must(plain, "--encrypt", "-r", us).out, x.opts(), ErrUnsigned},
		{"signed by another key", g.must(plain, "--encrypt", "--sign", "-r", us, "-u", mallory).out, x.opts(), ErrUnknownSigner},
		{"signer pinned by fingerprint only", signed, func() DecryptOptions {
			o := withSigners(x.partnerPub, mal)
			o.Fingerprints = []string{strings.ToUpper(mallory)}
			return o
		}(), ErrUnknownSigner},
		{"signed by our own key", encryptMsg(t, plain, []*Key{x.us}, x.us, EncryptOptions{}), x.opts(), ErrUnknownSigner},
		{"signed by our own key, pinned by mistake", encryptMsg(t, plain, []*Key{x.us}, x.us, EncryptOptions{}), withSigners(x.partnerPub, x.us.Public()), ErrUnknownSigner},
		{"SHA-1 signature", g.must(plain, "--encrypt", "--sign", "--digest-algo", "SHA1", "-r", us, "-u", x.partner).out, x.opts(), ErrWeakHash},
		{"byte flipped in the data", flipped, x.opts(), ErrBadSignature},
		{"byte flipped in the MDC", flippedEnd, x.opts(), ErrBadSignature},
		{"truncated at half", signed[:len(signed)/2], x.opts(), ErrTruncated},
		{"truncated by 1 byte", signed[:len(signed)-1], x.opts(), ErrTruncated},
		{"armored truncated", armored[:len(armored)*3/4], x.opts(), ErrTruncated},
		{"wrong recipient", g.must(plain, "--encrypt", "--sign", "-r", mallory, "-u", x.partner).out, x.opts(), ErrWrongRecipient},
		{"expired signer key", g.must(plain, "--encrypt", "--sign", "-r", us, "-u", expiring).out, later, ErrKeyExpired},
		{"revoked signer key", byRevoked, withSigners(revokedPub), ErrKeyRevoked},
		{"signature made in the future", g.must(plain, "--faked-system-time", time.Now().Add(48*time.Hour).UTC().Format("20060102T150405")+"!",
			"--encrypt", "--sign", "-r", us, "-u", x.partner).out, x.opts(), ErrFutureSig},
		{"compression bomb", bomb, small, ErrTooLarge},
		{"uncompressed over the cap", signed, func() DecryptOptions { o := x.opts(); o.MaxSize = 1000; return o }(), ErrTooLarge},
		{"nested compression", encryptNested(t, plain, x.us.Public(), ourKey(t, Curve25519, "Nester"), 3), DecryptOptions{Keys: []*Key{x.us}, Signers: []*Key{ourKey(t, Curve25519, "Nester").Public()}}, ErrTooDeep},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v, err := Open(opener(tc.msg), tc.opts)
			if !errors.Is(err, tc.want) {
				t.Fatalf("Open = %v, want %v", err, tc.want)
			}
			if v != nil {
				t.Fatal("Verified returned with an error")
			}
			var rf interface{ Refused() bool }
			if !errors.As(err, &rf) || !rf.Refused() {
				t.Errorf("%v does not say Refused()", err)
			}
		})
	}

	// The controls: the same keys and options accept the good files.
	if _, _, err := decrypt(signed, x.opts()); err != nil {
		t.Errorf("control signed: %v", err)
	}
	if _, _, err := decrypt(armored, x.opts()); err != nil {
		t.Errorf("control armored: %v", err)
	}
	soon := later
	soon.Now = time.Now
	if _, _, err := decrypt(g.must(plain, "--encrypt", "--sign", "-r", us, "-u", expiring).out, soon); err != nil {
		t.Errorf("control expiring key before expiry: %v", err)
	}
	big := x.opts()
	big.MaxSize = int64(len(zeros))
	if _, got, err := decrypt(bomb, big); err != nil || len(got) != len(zeros) {
		t.Errorf("control bomb under a cap of its exact size: %d bytes, %v", len(got), err)
	}
	if _, _, err := decrypt(encryptNested(t, plain, x.us.Public(), ourKey(t, Curve25519, "Nester"), DefaultMaxNesting), DecryptOptions{Keys: []*Key{x.us}, Signers: []*Key{ourKey(t, Curve25519, "Nester").Public()}}); err != nil {
		t.Errorf("control compression layers at the limit: %v", err)
	}
}

// revokeKey imports the revocation certificate gpg wrote at key creation.
func revokeKey(t *testing.T, g *gnupg, fpr string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(g.home, "openpgp-revocs.d", strings.ToUpper(fpr)+".rev"))
	if err != nil {
		t.Fatal(err)
	}
	// gpg prefixes the armor line with ':' against accidental import.
	b = bytes.Replace(b, []byte(":-----BEGIN PGP PUBLIC KEY BLOCK-----"), []byte("-----BEGIN PGP PUBLIC KEY BLOCK-----"), 1)
	g.importKey(b)
	if _, ok := g.must(nil, "--with-colons", "--list-keys", fpr).has(""); !ok {
		t.Fatal("no status")
	}
}

func TestPassTwoRefusesChangedCiphertext(t *testing.T) {
	us := ourKey(t, Curve25519, "Resub")
	partner := ourKey(t, Curve25519, "Partner")
	plain := randomText(t, 100_000)
	msg1 := encryptMsg(t, plain, []*Key{us.Public()}, partner, EncryptOptions{})
	msg2 := encryptMsg(t, plain, []*Key{us.Public()}, partner, EncryptOptions{}) // same plaintext, valid, different bytes
	calls := 0
	open := func() (io.ReadCloser, error) {
		calls++
		if calls == 1 {
			return io.NopCloser(bytes.NewReader(msg1)), nil
		}
		return io.NopCloser(bytes.NewReader(msg2)), nil
	}
	v, err := Open(open, DecryptOptions{Keys: []*Key{us}, Signers: []*Key{partner.Public()}})
	if err != nil {
		t.Fatal(err)
	}
	rc, err := v.Plaintext()
	if err != nil {
		t.Fatal(err)
	}
	_, err = io.ReadAll(rc)
	if !errors.Is(err, ErrChanged) {
		t.Fatalf("pass 2 = %v, want ErrChanged", err)
	}
}

func TestPassphraseProtectedGnuPGSecretKey(t *testing.T) {
	g := newGnuPG(t)
	fpr := g.genKey("Partner <partner@example.org>", "curve25519", "never", "correct horse")
	sec := g.exportSecret(fpr, "correct horse")
	for _, armored := range []bool{false, true} {
		b := sec
		if armored {
			b = g.must(nil, "--armor", "--passphrase", "correct horse", "--export-secret-keys", fpr).out
		}
		k := readOne(t, b)
		if k.Fingerprint() != fpr || !k.IsSecret() || !k.IsLocked() {
			t.Fatalf("fingerprint %s secret %v locked %v", k.Fingerprint(), k.IsSecret(), k.IsLocked())
		}
		if err := k.Unlock(nil); !errors.Is(err, ErrKeyLocked) {
			t.Errorf("Unlock(nil) = %v", err)
		}
		if err := k.Unlock([]byte("wrong")); !errors.Is(err, ErrBadPassphrase) {
			t.Errorf("Unlock(wrong) = %v", err)
		}
		if err := k.Unlock([]byte("correct horse")); err != nil {
			t.Fatal(err)
		}
		them := ourKey(t, Curve25519, "Resub")
		msg := encryptMsg(t, []byte("hello"), []*Key{k.Public()}, them, EncryptOptions{})
		if _, got, err := decrypt(msg, DecryptOptions{Keys: []*Key{k}, Signers: []*Key{them.Public()}}); err != nil || string(got) != "hello" {
			t.Fatalf("decrypt with gpg's secret key: %q, %v", got, err)
		}
	}
}

func TestKeysRoundTripThroughGnuPG(t *testing.T) {
	for _, algo := range []Algo{Curve25519, RSA3072, RSA4096} {
		t.Run(string(algo), func(t *testing.T) {
			if algo == RSA4096 && testing.Short() {
				t.Skip("RSA-4096 generation is slow")
			}
			g := newGnuPG(t)
			k := ourKey(t, algo, "Resub")
			var sec bytes.Buffer
			if err := k.WriteSecret(&sec, true, []byte("pw")); err != nil {
				t.Fatal(err)
			}
			g.must(sec.Bytes(), "--passphrase", "pw", "--import")
			r := g.must(nil, "--with-colons", "--fingerprint", "--list-secret-keys", k.Fingerprint())
			if !bytes.Contains(bytes.ToLower(r.out), []byte("fpr:::::::::"+k.Fingerprint())) {
				t.Fatalf("gpg lists no secret key %s:\n%s", k.Fingerprint(), r.out)
			}
			// gpg signs with our imported secret key (passphrase works) and
			// we read back what gpg exports.
			other := g.genKey("Other <o@example.org>", "curve25519", "never", "")
			msg := g.must([]byte("x"), "--passphrase", "pw", "--encrypt", "--sign", "-r", other, "-u", k.Fingerprint()).out
			otherSec := readOne(t, g.exportSecret(other, ""))
			if _, got, err := decrypt(msg, DecryptOptions{Keys: []*Key{otherSec}, Signers: []*Key{k.Public()}}); err != nil || string(got) != "x" {
				t.Fatalf("%q %v", got, err)
			}
			exported := readOne(t, g.must(nil, "--passphrase", "pw", "--export-secret-keys", k.Fingerprint()).out)
			if err := exported.Unlock([]byte("pw")); err != nil {
				t.Fatal(err)
			}
			if exported.Fingerprint() != k.Fingerprint() {
				t.Fatal("fingerprint changed")
			}
		})
	}
}

func TestFingerprintFormat(t *testing.T) {
	k := ourKey(t, Curve25519, "Resub")
	fp := k.Fingerprint()
	if len(fp) != 40 || strings.ToLower(fp) != fp {
		t.Fatalf("fingerprint %q", fp)
	}
	if _, err := hex.DecodeString(fp); err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprintf("%016x", k.e.PrimaryKey.KeyId); !strings.HasSuffix(fp, got) || k.KeyID() != got {
		t.Fatalf("v4 key ID %s is not the fingerprint's tail", got)
	}
}

// encryptNested writes a valid message with layers compression layers.
func encryptNested(t testing.TB, plain []byte, to, signer *Key, layers int) []byte {
	t.Helper()
	var b bytes.Buffer
	w, err := encrypt(&b, []*Key{to}, signer, EncryptOptions{Compression: CompressZLIB}, layers-1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(plain); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestScratchMode(t *testing.T) {
	us := ourKey(t, Curve25519, "Resub")
	partner := ourKey(t, Curve25519, "Partner")
	for _, size := range []int{0, 1, scratchChunk - 1, scratchChunk, 3*scratchChunk + 17} {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			dir := t.TempDir()
			plain := randomText(t, size)
			msg := encryptMsg(t, plain, []*Key{us.Public()}, partner, EncryptOptions{Compression: CompressZLIB})
			opts := DecryptOptions{Keys: []*Key{us}, Signers: []*Key{partner.Public()}, ScratchDir: dir}
			v, got, err := decrypt(msg, opts)
			if err != nil || !bytes.Equal(got, plain) {
				t.Fatalf("%d of %d bytes, %v", len(got), len(plain), err)
			}
			files, _ := os.ReadDir(dir)
			if len(files) != 1 {
				t.Fatalf("%d scratch files", len(files))
			}
			scratch := filepath.Join(dir, files[0].Name())
			raw, _ := os.ReadFile(scratch)
			if len(plain) > 16 && bytes.Contains(raw, plain[:16]) {
				t.Fatal("plaintext in the scratch file")
			}
			// Every change of the scratch file fails pass 2.
			for name, bad := range map[string][]byte{
				"flipped":   flipAt(raw, len(raw)/2),
				"truncated": raw[:len(raw)-1],
				"chunk cut": raw[:min(len(raw), scratchChunk+16)],
				"extended":  append(bytes.Clone(raw), raw...),
			} {
				if bytes.Equal(bad, raw) {
					continue
				}
				os.WriteFile(scratch, bad, 0o600)
				rc, err := v.Plaintext()
				if err != nil {
					t.Fatal(err)
				}
				if _, err := io.ReadAll(rc); !errors.Is(err, ErrChanged) {
					t.Errorf("%s scratch: %v, want ErrChanged", name, err)
				}
				rc.Close()
			}
			if err := v.Close(); err != nil {
				t.Fatal(err)
			}
			if files, _ := os.ReadDir(dir); len(files) != 0 {
				t.Errorf("scratch left after Close: %v", files)
			}
		})
	}
	// A refused file leaves no scratch file.
	dir := t.TempDir()
	msg := encryptMsg(t, []byte("x"), []*Key{us.Public()}, us, EncryptOptions{})
	if _, err := Open(opener(msg), DecryptOptions{Keys: []*Key{us}, Signers: []*Key{partner.Public()}, ScratchDir: dir}); !errors.Is(err, ErrUnknownSigner) {
		t.Fatal(err)
	}
	good := encryptMsg(t, randomText(t, 2*scratchChunk), []*Key{us.Public()}, partner, EncryptOptions{})
	if _, err := Open(opener(flipAt(good, len(good)-100)), DecryptOptions{Keys: []*Key{us}, Signers: []*Key{partner.Public()}, ScratchDir: dir}); !errors.Is(err, ErrBadSignature) {
		t.Fatal(err)
	}
	if files, _ := os.ReadDir(dir); len(files) != 0 {
		t.Errorf("scratch left after refusal: %v", files)
	}
}

func flipAt(b []byte, i int) []byte {
	c := bytes.Clone(b)
	c[i] ^= 1
	return c
}

// TestSEIPDChunkBoundaries: messages whose encrypted body ends around the
// 64 KiB partial-length chunks are read by gpg and by us.
func TestSEIPDChunkBoundaries(t *testing.T) {
	x := newInterop(t, Curve25519)
	partnerSec := readOne(t, x.g.exportSecret(x.partner, ""))
	// OPS, literal header and signature add a fixed overhead, so a window
	// of sizes crosses each boundary case (MDC split across chunks, empty
	// final chunk, exact fit).
	var sizes []int
	for _, base := range []int{0, partialChunk, 2 * partialChunk} {
		for d := -300; d <= 40; d += 17 {
			if base+d >= 0 {
				sizes = append(sizes, base+d)
			}
		}
	}
	for _, n := range sizes {
		plain := randomText(t, n)
		msg := encryptMsg(t, plain, []*Key{x.partnerPub, x.us.Public()}, x.us, EncryptOptions{})
		r := x.g.run(msg, "--decrypt")
		if r.err != nil || !bytes.Equal(r.out, plain) {
			t.Fatalf("size %d: gpg: %v %s", n, r.err, r.stderr)
		}
		if _, got, err := decrypt(msg, DecryptOptions{Keys: []*Key{partnerSec}, Signers: []*Key{x.us.Public()}}); err != nil || !bytes.Equal(got, plain) {
			t.Fatalf("size %d: us: %v", n, err)
		}
	}
}

// TestRotation: several pinned signer keys and several own keys, as during
// a key rollover on either side.
func TestRotation(t *testing.T) {
	oldUs, newUs := ourKey(t, Curve25519, "UsOld"), ourKey(t, Curve25519, "UsNew")
	oldThem, newThem := ourKey(t, Curve25519, "ThemOld"), ourKey(t, Curve25519, "ThemNew")
	plain := []byte("HEADER,handover,1\n")
	opts := DecryptOptions{Keys: []*Key{oldUs, newUs}, Signers: []*Key{oldThem.Public(), newThem.Public()}}
	for _, tc := range []struct {
		name   string
		to     *Key
		signer *Key
	}{
		{"old/old", oldUs, oldThem},
		{"new/old", newUs, oldThem},
		{"old/new", oldUs, newThem},
		{"new/new", newUs, newThem},
	} {
		msg := encryptMsg(t, plain, []*Key{tc.to.Public()}, tc.signer, EncryptOptions{Armor: true})
		v, got, err := decrypt(msg, opts)
		if err != nil || !bytes.Equal(got, plain) {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if v.Signer != tc.signer.Fingerprint() {
			t.Errorf("%s: Signer %s, want %s", tc.name, v.Signer, tc.signer.Fingerprint())
		}
		narrowed := opts
		narrowed.Fingerprints = []string{strings.ToUpper(newThem.Fingerprint())}
		_, _, err = decrypt(msg, narrowed)
		if tc.signer == newThem && err != nil {
			t.Errorf("%s narrowed to the new key: %v", tc.name, err)
		}
		if tc.signer == oldThem && !errors.Is(err, ErrUnknownSigner) {
			t.Errorf("%s narrowed to the new key: %v, want ErrUnknownSigner", tc.name, err)
		}
	}
	// Several recipients: each of them can read it.
	msg := encryptMsg(t, plain, []*Key{oldUs.Public(), newThem.Public()}, newUs, EncryptOptions{})
	if _, _, err := decrypt(msg, DecryptOptions{Keys: []*Key{newThem}, Signers: []*Key{newUs.Public()}}); err != nil {
		t.Errorf("second recipient: %v", err)
	}
	if _, _, err := decrypt(msg, DecryptOptions{Keys: []*Key{newUs}, Signers: []*Key{newThem.Public()}}); !errors.Is(err, ErrWrongRecipient) {
		t.Errorf("non-recipient: %v", err)
	}
}

// TestNoGoroutineLeft: every way out of Open stops its hashing goroutine.
func TestNoGoroutineLeft(t *testing.T) {
	us := ourKey(t, Curve25519, "Resub")
	partner := ourKey(t, Curve25519, "Partner")
	good := encryptMsg(t, randomText(t, 300_000), []*Key{us.Public()}, partner, EncryptOptions{})
	opts := DecryptOptions{Keys: []*Key{us}, Signers: []*Key{partner.Public()}}
	before := runtime.NumGoroutine()
	for i := 0; i < 50; i++ {
		for _, msg := range [][]byte{good, good[:len(good)/2], flipAt(good, len(good)/2), []byte("junk"), good[:3]} {
			Open(opener(msg), opts)
		}
	}
	time.Sleep(10 * time.Millisecond) // let exited goroutines be reaped
	if after := runtime.NumGoroutine(); after > before+10 {
		t.Fatalf("goroutines %d -> %d", before, after)
	}
}

func TestPublicDropsSecrets(t *testing.T) {
	k := ourKey(t, Curve25519, "Resub")
	p := k.Public()
	if p.IsSecret() || !k.IsSecret() || p.Fingerprint() != k.Fingerprint() {
		t.Fatalf("public secret=%v, original secret=%v", p.IsSecret(), k.IsSecret())
	}
	for _, s := range p.e.Subkeys {
		if s.PrivateKey != nil {
			t.Fatal("secret subkey kept")
		}
	}
	if err := p.WriteSecret(io.Discard, true, nil); !errors.Is(err, ErrNoSecretKey) {
		t.Fatalf("WriteSecret of a public key: %v", err)
	}
	var b bytes.Buffer
	if err := p.WritePublic(&b, false); err != nil {
		t.Fatal(err)
	}
	if back := readOne(t, b.Bytes()); back.IsSecret() || back.Fingerprint() != k.Fingerprint() {
		t.Fatal("public key round trip")
	}
}

func TestNormalizeFingerprint(t *testing.T) {
	const want = "b880f640ff40125c7951e0d3889d231a935de16e"
	for _, in := range []string{want, "B880 F640 FF40 125C 7951  E0D3 889D 231A 935D E16E", "0xB880F640FF40125C7951E0D3889D231A935DE16E\n"} {
		if got, err := NormalizeFingerprint(in); err != nil || got != want {
			t.Errorf("NormalizeFingerprint(%q) = %q, %v", in, got, err)
		}
	}
	for _, in := range []string{"", "b880f640", want + "00", "z880f640ff40125c7951e0d3889d231a935de16e"} {
		if _, err := NormalizeFingerprint(in); !errors.Is(err, ErrBadKey) {
			t.Errorf("NormalizeFingerprint(%q) = %v", in, err)
		}
	}
}
