package drop_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"

	"resub/jobs/drop"
	"resub/jobs/drop/sshdtest"
)

// BenchmarkTransfer100MB compares resub's SFTP drop with OpenSSH's own
// sftp client (sftp -b) on the same loopback sshd: upload and download
// of a 100 MB file, each with its own connection and handshake. Run
// with -benchtime=3x.
func BenchmarkTransfer100MB(b *testing.B) {
	const size = 100 << 20
	srv := sshdtest.Start(b)
	kh := filepath.Join(b.TempDir(), "known_hosts")
	writeFile(b, kh, []byte(srv.KnownHostsLine()+"\n"))
	local := b.TempDir()
	src := filepath.Join(local, "src.bin")
	f, err := os.Create(src)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := io.CopyN(f, rand.Reader, size); err != nil {
		b.Fatal(err)
	}
	f.Close()
	srv.WriteFile("inbox", "big.bin", nil)
	if err := copyFile(src, srv.Path("inbox", "big.bin")); err != nil {
		b.Fatal(err)
	}

	d, err := drop.NewSFTP(sftpOptions("127.0.0.1", srv.Port, sshdtest.User, srv.ClientKey, kh))
	if err != nil {
		b.Fatal(err)
	}
	defer d.Close()
	ctx := context.Background()

	b.Run("resub/put", func(b *testing.B) {
		b.SetBytes(size)
		for b.Loop() {
			f, err := os.Open(src)
			if err != nil {
				b.Fatal(err)
			}
			err = d.Put(ctx, "up.bin", f, size)
			f.Close()
			d.Close() // a fresh connection per transfer, as the sftp client has
			if err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("resub/get", func(b *testing.B) {
		b.SetBytes(size)
		for b.Loop() {
			out, err := os.Create(filepath.Join(local, "down.bin"))
			if err != nil {
				b.Fatal(err)
			}
			rc, err := d.Open(ctx, "big.bin")
			if err != nil {
				b.Fatal(err)
			}
			n, err := io.Copy(out, rc)
			rc.Close()
			out.Close()
			d.Close()
			if err != nil || n != size {
				b.Fatalf("got %d bytes: %v", n, err)
			}
		}
	})
	sftp := func(b *testing.B, batch string) {
		bf := filepath.Join(local, "batch")
		writeFile(b, bf, []byte(batch))
		cmd := exec.Command("sftp", "-q", "-b", bf, "-i", srv.ClientKeyFile, "-P", strconv.Itoa(srv.Port),
			"-o", "UserKnownHostsFile="+kh, "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes",
			sshdtest.User+"@127.0.0.1")
		if out, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("sftp: %v: %s", err, out)
		}
	}
	if _, err := exec.LookPath("sftp"); err != nil {
		b.Log("no OpenSSH sftp client: skipping the comparison")
		return
	}
	b.Run("openssh/put", func(b *testing.B) {
		b.SetBytes(size)
		for b.Loop() {
			sftp(b, fmt.Sprintf("put %s /outbox/up-openssh.bin\n", src))
		}
	})
	b.Run("openssh/get", func(b *testing.B) {
		b.SetBytes(size)
		for b.Loop() {
			sftp(b, fmt.Sprintf("get /inbox/big.bin %s\n", filepath.Join(local, "down-openssh.bin")))
		}
	})
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
