package pgp

import (
	"bufio"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
)

// benchMB is the size of the benchmark file: 100 MB unless RESUB_BENCH_MB
// says otherwise.
func benchMB() int {
	if n, err := strconv.Atoi(os.Getenv("RESUB_BENCH_MB")); err == nil && n > 0 {
		return n
	}
	return 100
}

// writeBenchFile writes card records (ICCID, IMSI, wrapped Ki and OPc) of
// about mb megabytes: text that compresses as real files do.
func writeBenchFile(b *testing.B, path string, mb int) int64 {
	b.Helper()
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	w := bufio.NewWriterSize(f, 1<<20)
	r := rand.New(rand.NewPCG(1, 2))
	var n int64
	for i := 0; n < int64(mb)<<20; i++ {
		k, err := fmt.Fprintf(w, "89014103%012d,24201%010d,tk-b-2026:%016x%016x%016x,tk-b-2026:%016x%016x%016x,milenage,3\n",
			i, i, r.Uint64(), r.Uint64(), r.Uint64(), r.Uint64(), r.Uint64(), r.Uint64())
		if err != nil {
			b.Fatal(err)
		}
		n += int64(k)
	}
	if err := w.Flush(); err != nil {
		b.Fatal(err)
	}
	if err := f.Close(); err != nil {
		b.Fatal(err)
	}
	return n
}

// benchSetup: a plaintext file, our key, a GnuPG home with the partner's
// key, each knowing the other's public key.
type benchEnv struct {
	dir, plain string
	size       int64
	us         *Key
	partnerPub *Key
	g          *gnupg
	partner    string
}

func newBenchEnv(b *testing.B) *benchEnv {
	b.Helper()
	e := &benchEnv{dir: b.TempDir()}
	e.plain = filepath.Join(e.dir, "plain.csv")
	e.size = writeBenchFile(b, e.plain, benchMB())
	e.us = ourKey(b, Curve25519, "Resub")
	e.g = newGnuPG(b)
	e.g.importKey(armoredPublic(b, e.us))
	e.partner = e.g.genKey("Partner <partner@example.org>", "curve25519", "never", "")
	e.partnerPub = readOne(b, e.g.exportPublic(e.partner))
	return e
}

func gpgCmd(e *benchEnv, args ...string) *exec.Cmd {
	base := []string{"--homedir", e.g.home, "--batch", "--yes", "--no-tty", "--pinentry-mode", "loopback", "--trust-model", "always"}
	return exec.Command("gpg", append(base, args...)...)
}

// BenchmarkEncryptSign compares encrypt+sign of the benchmark file (file to
// file) with gpg's, AES-256 both, uncompressed and ZLIB level 6.
func BenchmarkEncryptSign(b *testing.B) {
	e := newBenchEnv(b)
	for _, c := range []struct {
		name   string
		comp   Compression
		level  int
		gpgArg []string
	}{
		{"none", CompressNone, 0, []string{"-z", "0"}},
		{"zlib6", CompressZLIB, 6, []string{"--compress-algo", "zlib", "-z", "6"}},
		{"zlib1", CompressZLIB, 1, []string{"--compress-algo", "zlib", "-z", "1"}},
	} {
		out := filepath.Join(e.dir, "out.pgp")
		b.Run(c.name+"/resub", func(b *testing.B) {
			b.SetBytes(e.size)
			for b.Loop() {
				in, err := os.Open(e.plain)
				if err != nil {
					b.Fatal(err)
				}
				f, err := os.Create(out)
				if err != nil {
					b.Fatal(err)
				}
				bw := bufio.NewWriterSize(f, 256<<10)
				w, err := Encrypt(bw, []*Key{e.partnerPub}, e.us, EncryptOptions{Compression: c.comp, Level: c.level})
				if err != nil {
					b.Fatal(err)
				}
				if _, err := io.Copy(w, in); err != nil {
					b.Fatal(err)
				}
				if err := w.Close(); err != nil {
					b.Fatal(err)
				}
				if err := bw.Flush(); err != nil {
					b.Fatal(err)
				}
				f.Close()
				in.Close()
			}
		})
		b.Run(c.name+"/gpg", func(b *testing.B) {
			b.SetBytes(e.size)
			for b.Loop() {
				args := append([]string{"--encrypt", "--sign", "--cipher-algo", "AES256", "-r", e.us.Fingerprint(), "-u", e.partner, "-o", out}, c.gpgArg...)
				if out, err := gpgCmd(e, append(args, e.plain)...).CombinedOutput(); err != nil {
					b.Fatalf("%v: %s", err, out)
				}
			}
		})
	}
}

// BenchmarkDecryptVerify compares decrypt+verify of the benchmark file with
// gpg's. "resub" is the whole verify-before-use path (pass 1 then pass 2
// streaming the plaintext); "resub-pass1" is one pass, gpg's equivalent.
func BenchmarkDecryptVerify(b *testing.B) {
	e := newBenchEnv(b)
	for _, c := range []struct {
		name   string
		gpgArg []string
	}{
		{"none", []string{"-z", "0"}},
		{"zlib6", []string{"--compress-algo", "zlib", "-z", "6"}},
	} {
		// Made by gpg, so both read the same file; gpg decrypts a copy
		// encrypted to its key with the same settings.
		toUs := filepath.Join(e.dir, c.name+"-to-us.pgp")
		toGPG := filepath.Join(e.dir, c.name+"-to-gpg.pgp")
		args := append([]string{"--encrypt", "--sign", "--cipher-algo", "AES256", "-u", e.partner}, c.gpgArg...)
		if out, err := gpgCmd(e, append(args, "-r", e.us.Fingerprint(), "-o", toUs, e.plain)...).CombinedOutput(); err != nil {
			b.Fatalf("%v: %s", err, out)
		}
		if out, err := gpgCmd(e, append(args, "-r", e.partner, "-o", toGPG, e.plain)...).CombinedOutput(); err != nil {
			b.Fatalf("%v: %s", err, out)
		}
		opts := DecryptOptions{Keys: []*Key{e.us}, Signers: []*Key{e.partnerPub}, MaxSize: e.size + 1}
		b.Run(c.name+"/resub", func(b *testing.B) {
			b.SetBytes(e.size)
			for b.Loop() {
				v, err := Open(fileOpener(toUs), opts)
				if err != nil {
					b.Fatal(err)
				}
				rc, err := v.Plaintext()
				if err != nil {
					b.Fatal(err)
				}
				if n, err := io.Copy(io.Discard, rc); err != nil || n != e.size {
					b.Fatalf("%d bytes, %v", n, err)
				}
				rc.Close()
			}
		})
		b.Run(c.name+"/resub-scratch", func(b *testing.B) {
			b.SetBytes(e.size)
			sopts := opts
			sopts.ScratchDir = b.TempDir()
			for b.Loop() {
				v, err := Open(fileOpener(toUs), sopts)
				if err != nil {
					b.Fatal(err)
				}
				rc, err := v.Plaintext()
				if err != nil {
					b.Fatal(err)
				}
				if n, err := io.Copy(io.Discard, rc); err != nil || n != e.size {
					b.Fatalf("%d bytes, %v", n, err)
				}
				rc.Close()
				v.Close()
			}
		})
		b.Run(c.name+"/resub-pass1", func(b *testing.B) {
			b.SetBytes(e.size)
			for b.Loop() {
				if _, err := Open(fileOpener(toUs), opts); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(c.name+"/gpg", func(b *testing.B) {
			b.SetBytes(e.size)
			for b.Loop() {
				if out, err := gpgCmd(e, "--decrypt", "-o", "/dev/null", toGPG).CombinedOutput(); err != nil {
					b.Fatalf("%v: %s", err, out)
				}
			}
		})
	}
}
