// Package demo plays a whole remote subscription change among MNO A, MNO B,
// MNO C and the UICC manufacturer, with the M2M operator, the SIM vendor,
// the SMSC (with simulated UICCs) and the HLRs around them: every party
// runs resub's own job code on its own ledger and configuration, over an
// SFTP server inside the process and local folders. It is what
// `resub demo` runs and what its test asserts on. Test-only material:
// every key is made fresh and thrown away.
package demo

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"go.yaml.in/yaml/v3"
	"golang.org/x/crypto/ssh"

	"resub/crypto/pgp"
	"resub/jobs"
	"resub/jobs/config"
	"resub/jobs/drop/sftpserver"
	"resub/samples/fleet"
	"resub/samples/smsc"
)

// Options tune the demo.
type Options struct {
	// Dir receives every file (a new temporary folder when empty).
	Dir string
	// Out receives the story and the final table.
	Out io.Writer
	// Log receives the parties' structured logs (discarded when nil).
	Log *slog.Logger
	// Cards3a and Cards3b size the two fleets (defaults 10 and 4).
	Cards3a, Cards3b int
}

// world is everything the demo runs.
type world struct {
	o       Options
	dir     string
	start   time.Time
	began   time.Time
	mu      sync.Mutex
	offset  time.Duration
	server  *sftpserver.Server
	keys    map[string]*pgp.Key // every actor's OpenPGP key (secret)
	env     map[string]string   // the secrets the configurations refer to
	parties map[string]*party
	smscs   map[string]*smsc.SMSC
	smscSeq map[string]int
	seqs    map[string]int
	out     io.Writer
	log     *slog.Logger
	cards   []*fleet.Card // every card of the story, for Result.Cards
	// smppA is the simulated SMSC's SMPP server MNOA submits to (the
	// demo; the stages keep the file exchange).
	smppA *smsc.SMPPServer
}

// party is one resub installation.
type party struct {
	name    string // party code
	dir     string
	cfgPath string
	cfg     map[string]any
	rt      *jobs.Runtime
}

// clock is the demo's time: real time plus the days the story skips.
func (w *world) clock() time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.start.Add(time.Since(w.began) + w.offset)
}

func (w *world) skip(d time.Duration) {
	w.mu.Lock()
	w.offset += d
	w.mu.Unlock()
}

func (w *world) say(format string, a ...any) { fmt.Fprintf(w.out, format+"\n", a...) }

// secret makes a random secret of n bytes, keeps it for the process's
// environment under name and returns the reference to it.
func (w *world) secret(name string, n int) string {
	if _, ok := w.env[name]; !ok {
		b := make([]byte, n)
		if _, err := rand.Read(b); err != nil {
			panic(err)
		}
		w.env[name] = hex.EncodeToString(b)
	}
	return "env:" + name
}

// envValue is the value of the secret name (made as secret makes it).
func (w *world) envValue(name string, n int) string {
	w.secret(name, n)
	return w.env[name]
}

func envName(parts ...string) string {
	return "RESUB_DEMO_" + strings.ToUpper(strings.NewReplacer("-", "_").Replace(strings.Join(parts, "_")))
}

// newWorld lays out the folders, keys and the SFTP server.
func newWorld(o Options) (*world, error) {
	dir := o.Dir
	if dir == "" {
		d, err := os.MkdirTemp("", "resub-demo-")
		if err != nil {
			return nil, err
		}
		dir = d
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	w := &world{o: o, dir: dir, start: time.Now().UTC().Truncate(time.Second), began: time.Now(),
		keys: map[string]*pgp.Key{}, env: map[string]string{}, parties: map[string]*party{},
		smscs: map[string]*smsc.SMSC{}, smscSeq: map[string]int{}, seqs: map[string]int{}, out: o.Out, log: o.Log}
	if w.out == nil {
		w.out = io.Discard
	}
	if w.log == nil {
		w.log = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(filepath.Join(dir, "keys"), 0o700); err != nil {
		return nil, err
	}
	for _, n := range []string{"MNOA", "MNOB", "MNOC", "MFR", "M2M", "M2M2", "VENDOR"} {
		k, err := pgp.GenerateKey("resub demo "+n, strings.ToLower(n)+"@demo.invalid", pgp.Curve25519, pgp.GenerateOptions{Now: func() time.Time { return w.start.Add(-time.Hour) }})
		if err != nil {
			return nil, err
		}
		w.keys[n] = k
		f, err := os.OpenFile(filepath.Join(dir, "keys", n+".pub.asc"), os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
		if err != nil {
			return nil, err
		}
		if err := k.WritePublic(f, true); err != nil {
			f.Close()
			return nil, err
		}
		f.Close()
	}
	srv, err := sftpserver.Start()
	if err != nil {
		return nil, err
	}
	w.server = srv
	for _, sub := range []string{"exchange"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o700); err != nil {
			return nil, err
		}
	}
	return w, nil
}

// exchangeDir is a folder of the SFTP server's shared root.
func (w *world) exchangeDir(parts ...string) string {
	return filepath.Join(append([]string{w.dir, "exchange"}, parts...)...)
}

// writeSecretKey stores a party's OpenPGP secret key under a passphrase.
func (w *world) writeSecretKey(p *party) (string, error) {
	path := filepath.Join(p.dir, "keys", p.name+".sec.asc")
	ref := w.secret(envName(p.name, "pgp", "pass"), 16)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return "", err
	}
	defer f.Close()
	pass := []byte(w.env[strings.TrimPrefix(ref, "env:")])
	if err := w.keys[p.name].WriteSecret(f, true, pass); err != nil {
		return "", err
	}
	return path, nil
}

// sshLogin makes a party's SSH key (stored under a passphrase) and
// known_hosts, and adds the user to the server.
func (w *world) sshLogin(p *party) (keyPath, knownHosts, passRef string, err error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return "", "", "", err
	}
	passRef = w.secret(envName(p.name, "ssh", "pass"), 16)
	block, err := ssh.MarshalPrivateKeyWithPassphrase(priv, p.name, []byte(w.env[strings.TrimPrefix(passRef, "env:")]))
	if err != nil {
		return "", "", "", err
	}
	keyPath = filepath.Join(p.dir, "keys", "ssh_ed25519")
	if err := os.WriteFile(keyPath, pem.EncodeToMemory(block), 0o600); err != nil {
		return "", "", "", err
	}
	sp, err := ssh.NewPublicKey(pub)
	if err != nil {
		return "", "", "", err
	}
	w.server.AddUser(strings.ToLower(p.name), w.exchangeDir(), sp)
	knownHosts = filepath.Join(p.dir, "keys", "known_hosts")
	if err := os.WriteFile(knownHosts, []byte(w.server.KnownHostsLine()+"\n"), 0o644); err != nil {
		return "", "", "", err
	}
	return keyPath, knownHosts, passRef, nil
}

// writeConfig writes a party's configuration and checks it.
func (w *world) writeConfig(p *party) error {
	b, err := yaml.Marshal(p.cfg)
	if err != nil {
		return err
	}
	head := "# resub configuration of " + p.name + " for the demo: throwaway keys, test PLMNs.\n# Secrets are referenced (env:...), never written here.\n"
	if err := os.WriteFile(p.cfgPath, append([]byte(head), b...), 0o600); err != nil {
		return err
	}
	_, err = config.Load(p.cfgPath)
	return err
}

// open (re)opens a party's runtime from its configuration.
func (w *world) open(ctx context.Context, p *party) error {
	if p.rt != nil {
		p.rt.Close()
		p.rt = nil
	}
	cfg, err := config.Load(p.cfgPath)
	if err != nil {
		return err
	}
	rt, err := jobs.Open(ctx, cfg, jobs.Options{Log: w.log.With("party", p.name), Now: w.clock})
	if err != nil {
		return err
	}
	p.rt = rt
	return nil
}

func (w *world) close() {
	for _, p := range w.parties {
		if p.rt != nil {
			p.rt.Close()
		}
	}
	if w.server != nil {
		w.server.Close()
	}
	if w.smppA != nil {
		w.smppA.Close()
	}
}

// setEnv puts the secrets into the process's environment, where the
// configurations' env: references find them.
func (w *world) setEnv() error {
	for k, v := range w.env {
		if err := os.Setenv(k, v); err != nil {
			return err
		}
	}
	return nil
}

func hexKey(s string) ([]byte, error) { return hex.DecodeString(s) }
