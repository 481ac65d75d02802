package drop_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"

	"resub/jobs/drop"
)

func allBackends(t *testing.T) []*backend {
	return append([]*backend{localBackend(t)}, remoteBackends(t)...)
}

// TestEndToEnd picks up, reads, archives, quarantines and delivers on
// every kind of drop.
func TestEndToEnd(t *testing.T) {
	ctx := context.Background()
	for _, b := range allBackends(t) {
		t.Run(b.name, func(t *testing.T) {
			a := randomBytes(t, 3<<20)
			b.write("inbox", "A_B_IMSI-LIST_20260101_000001.csv.pgp", a)
			b.write("inbox", "A_B_IMSI-LIST_20260101_000002.csv.pgp", []byte("bad"))
			b.write("inbox", "partial.pgp.part", []byte("in progress"))
			if err := os.Mkdir(filepath.Join(b.dir("inbox"), "subdir"), 0o755); err != nil {
				t.Fatal(err)
			}
			d := b.open(t, nil)
			list, err := d.List(ctx)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, fi := range list {
				got = append(got, fi.Name)
			}
			want := []string{"A_B_IMSI-LIST_20260101_000001.csv.pgp", "A_B_IMSI-LIST_20260101_000002.csv.pgp", "partial.pgp.part"}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("List = %q, want %q", got, want)
			}
			if list[0].Size != int64(len(a)) {
				t.Errorf("size = %d, want %d", list[0].Size, len(a))
			}

			p, err := drop.NewPicker(d, drop.PickerOptions{Patterns: []string{"*.pgp"}, TempSuffix: ".part", Marker: ".done"})
			if err != nil {
				t.Fatal(err)
			}
			b.write("inbox", "A_B_IMSI-LIST_20260101_000001.csv.pgp.done", nil)
			b.write("inbox", "A_B_IMSI-LIST_20260101_000002.csv.pgp.done", nil)
			ready, err := p.Ready(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if len(ready) != 2 {
				t.Fatalf("Ready = %v, want the two .pgp files", ready)
			}

			rc, err := d.Open(ctx, ready[0].Name)
			if err != nil {
				t.Fatal(err)
			}
			var buf bytes.Buffer
			if _, err := io.Copy(&buf, rc); err != nil {
				t.Fatal(err)
			}
			rc.Close()
			if !bytes.Equal(buf.Bytes(), a) {
				t.Fatal("downloaded content differs")
			}
			if err := p.Done(ctx, ready[0].Name, drop.Archive); err != nil {
				t.Fatal(err)
			}
			if err := p.Done(ctx, ready[1].Name, drop.Quarantine); err != nil {
				t.Fatal(err)
			}
			if got, want := b.names(t, "inbox"), []string{"partial.pgp.part", "subdir"}; !reflect.DeepEqual(got, want) {
				t.Errorf("inbox = %q, want %q", got, want)
			}
			if got, want := b.names(t, "archive"), []string{"A_B_IMSI-LIST_20260101_000001.csv.pgp", "A_B_IMSI-LIST_20260101_000001.csv.pgp.done"}; !reflect.DeepEqual(got, want) {
				t.Errorf("archive = %q, want %q", got, want)
			}
			if got := b.names(t, "quarantine"); len(got) != 2 {
				t.Errorf("quarantine = %q, want the file and its marker", got)
			}
			if !bytes.Equal(b.read(t, "archive", "A_B_IMSI-LIST_20260101_000001.csv.pgp"), a) {
				t.Error("archived content differs")
			}

			// An input of the same name archived again keeps both copies.
			b.write("inbox", "A_B_IMSI-LIST_20260101_000001.csv.pgp", []byte("again"))
			if err := d.Move(ctx, "A_B_IMSI-LIST_20260101_000001.csv.pgp", drop.Archive); err != nil {
				t.Fatal(err)
			}
			if got := b.names(t, "archive"); len(got) != 3 {
				t.Errorf("archive after a second move = %q, want 3 files", got)
			}

			// Delivery, then a redelivery that replaces it (posix-rename on
			// OpenSSH, where a plain rename would fail).
			out := randomBytes(t, 5<<20+17)
			for i, data := range [][]byte{out, out[:1000]} {
				if err := d.Put(ctx, "B_A_IMSI-RESULT_20260101_000001.csv.pgp", bytes.NewReader(data), int64(len(data))); err != nil {
					t.Fatalf("put %d: %v", i, err)
				}
				if got, want := b.names(t, "outbox"), []string{"B_A_IMSI-RESULT_20260101_000001.csv.pgp"}; !reflect.DeepEqual(got, want) {
					t.Fatalf("outbox = %q, want %q", got, want)
				}
				if !bytes.Equal(b.read(t, "outbox", "B_A_IMSI-RESULT_20260101_000001.csv.pgp"), data) {
					t.Fatalf("put %d: delivered content differs", i)
				}
			}

			// A size that does not match what was read is refused, and
			// nothing appears under the final name.
			err = d.Put(ctx, "short.pgp", bytes.NewReader([]byte("12345")), 6)
			if err == nil {
				t.Fatal("put with a wrong size succeeded")
			}
			if slices.Contains(b.names(t, "outbox"), "short.pgp") {
				t.Error("a failed delivery is visible under its final name")
			}
		})
	}
}

// TestUnsafeNames: names from the server are data.
func TestUnsafeNames(t *testing.T) {
	ctx := context.Background()
	for _, b := range allBackends(t) {
		t.Run(b.name, func(t *testing.T) {
			for _, n := range []string{"ok.pgp", "esc\x1b[31mape.pgp", "back\\slash.pgp", "new\nline.pgp", "bidi\u202ename.pgp"} {
				b.write("inbox", n, []byte("x"))
			}
			d := b.open(t, nil)
			list, err := d.List(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if len(list) != 1 || list[0].Name != "ok.pgp" {
				t.Fatalf("List = %v, want only ok.pgp", list)
			}
			for _, n := range []string{"../inbox/ok.pgp", "/etc/passwd", "..", "a\x00b"} {
				if _, err := d.Open(ctx, n); !errors.Is(err, drop.ErrBadName) {
					t.Errorf("Open(%q) = %v, want ErrBadName", n, err)
				}
				if err := d.Move(ctx, n, drop.Archive); !errors.Is(err, drop.ErrBadName) {
					t.Errorf("Move(%q) = %v, want ErrBadName", n, err)
				}
				if err := d.Put(ctx, n, strings.NewReader("x"), 1); !errors.Is(err, drop.ErrBadName) {
					t.Errorf("Put(%q) = %v, want ErrBadName", n, err)
				}
			}
		})
	}
}

// TestHostKeyRefused: an unknown or changed host key fails with the
// offered key's fingerprint, as a configuration error.
func TestHostKeyRefused(t *testing.T) {
	ctx := context.Background()
	_, otherPub := newClientKey(t)
	for _, b := range remoteBackends(t) {
		pinned, err := os.ReadFile(b.knownHosts)
		if err != nil {
			t.Fatal(err)
		}
		addr := strings.Fields(string(pinned))[0]
		for _, tc := range []struct {
			name, knownHosts, want string
		}{
			{"changed", addr + " " + string(ssh.MarshalAuthorizedKey(otherPub)), "HOST KEY CHANGED"},
			{"unknown", "[127.0.0.1]:1 " + string(ssh.MarshalAuthorizedKey(otherPub)), "is not in"},
		} {
			t.Run(b.name+"/"+tc.name, func(t *testing.T) {
				kh := filepath.Join(t.TempDir(), "known_hosts")
				writeFile(t, kh, []byte(tc.knownHosts))
				d := b.open(t, func(o *drop.SFTPOptions) { o.KnownHosts = kh })
				_, err := d.List(ctx)
				var he *drop.HostKeyError
				if !errors.As(err, &he) {
					t.Fatalf("List = %v, want a HostKeyError", err)
				}
				// The error names the key the server offered, one of its own.
				offered := false
				for _, k := range b.hostKeys {
					if fp := ssh.FingerprintSHA256(k); he.Fingerprint == fp && strings.Contains(err.Error(), fp) {
						offered = true
					}
				}
				if !offered || !strings.Contains(err.Error(), tc.want) {
					t.Errorf("error %q lacks the fingerprint of a server key or %q", err, tc.want)
				}
				var ce interface{ ConfigError() bool }
				if !errors.As(err, &ce) || !ce.ConfigError() || drop.IsTemporary(err) {
					t.Errorf("error %v is not a configuration error", err)
				}
			})
		}
	}
}

func TestCheckName(t *testing.T) {
	for _, tc := range []struct {
		name string
		ok   bool
	}{
		{"A_B_IMSI-LIST_20260101_000001.csv.pgp", true},
		{"données.csv", true},
		{"", false}, {".", false}, {"..", false}, {"a/b", false}, {`a\b`, false},
		{"a\x00b", false}, {"a\tb", false}, {"a\x7fb", false}, {"a\u0085b", false},
		{"\xff\xfe", false}, {"rtl\u202egpj.exe", false}, {strings.Repeat("a", 256), false},
	} {
		if err := drop.CheckName(tc.name); (err == nil) != tc.ok {
			t.Errorf("CheckName(%q) = %v, want ok=%v", tc.name, err, tc.ok)
		}
	}
}

func FuzzCheckName(f *testing.F) {
	for _, s := range []string{"a.pgp", "../x", "a\x1bb", "\u202e"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		safe := drop.SafeName(name)
		for _, r := range safe {
			if r < 0x20 || r == 0x7f {
				t.Fatalf("SafeName(%q) = %q has a control character", name, safe)
			}
		}
		if drop.CheckName(name) != nil {
			return
		}
		if filepath.Base(name) != name || filepath.Clean(name) != name || strings.ContainsAny(name, "/\\\x00") {
			t.Fatalf("CheckName accepted %q", name)
		}
	})
}

// TestPinnedKeyType: with a server that has ed25519 and RSA host keys,
// the client asks for the type that known_hosts pins, whichever it is.
func TestPinnedKeyType(t *testing.T) {
	b, srv := sshdBackend(t)
	for _, k := range []ssh.PublicKey{srv.HostKey, srv.HostKeyRSA} {
		t.Run(k.Type(), func(t *testing.T) {
			kh := filepath.Join(t.TempDir(), "known_hosts")
			writeFile(t, kh, []byte(srv.KnownHostsLineFor(k)+"\n"))
			d := b.open(t, func(o *drop.SFTPOptions) { o.KnownHosts = kh })
			if _, err := d.List(context.Background()); err != nil {
				t.Fatalf("List with only %s pinned: %v", k.Type(), err)
			}
		})
	}
}
