package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"resub/crypto/pgp"
)

func init() {
	register(&command{name: "pgp", summary: "OpenPGP keys and files, GnuPG-compatible (pgp keygen|encrypt|decrypt|fingerprint)", run: runPGP})
}

const pgpUsage = `pgp SUBCOMMAND [FLAGS]

subcommands:
  keygen --name NAME --email EMAIL [--algo curve25519|rsa3072|rsa4096] --out PREFIX
  encrypt --to PUBKEY [--to PUBKEY ...] --sign-with SECKEY [--armor] [--compress none|zip|zlib] [-o OUT] [IN]
  decrypt --key SECKEY --signer PUBKEY [--signer PUBKEY ...] [-o OUT] [IN]
  fingerprint KEYFILE   (prints each key's 40-hex fingerprint, one a line)
run 'resub pgp SUBCOMMAND --help' for its flags`

func runPGP(e *env, args []string) error {
	if len(args) == 0 {
		fmt.Fprintf(e.io.err, "usage: resub %s\n", pgpUsage)
		return usagef("pgp: missing subcommand (keygen, encrypt, decrypt, fingerprint)")
	}
	switch args[0] {
	case "--help", "-h", "help":
		fmt.Fprintf(e.io.err, "usage: resub %s\n", pgpUsage)
		return nil
	case "keygen":
		return pgpKeygen(e, args[1:])
	case "encrypt":
		return pgpEncrypt(e, args[1:])
	case "decrypt":
		return pgpDecrypt(e, args[1:])
	case "fingerprint":
		return pgpFingerprint(e, args[1:])
	}
	return usagef("pgp: unknown subcommand %q (keygen, encrypt, decrypt, fingerprint)", args[0])
}

// passphraseFlags are the optional passphrase references of a command.
type passphraseFlags struct{ env, file string }

func (p *passphraseFlags) register(fs interface {
	StringVar(*string, string, string, string)
}, what string) {
	fs.StringVar(&p.env, "passphrase-env", "", "name of the environment variable that holds the passphrase of "+what)
	fs.StringVar(&p.file, "passphrase-file", "", "file whose content (less a final newline) is the passphrase of "+what)
}

// read returns the passphrase, or nil if none was given. The caller zeroes it.
func (p *passphraseFlags) read() ([]byte, error) {
	switch {
	case p.env != "" && p.file != "":
		return nil, usagef("--passphrase-env and --passphrase-file are exclusive")
	case p.env != "":
		v, ok := os.LookupEnv(p.env)
		if !ok {
			return nil, usagef("--passphrase-env: variable %s is not set", p.env)
		}
		return []byte(v), nil
	case p.file != "":
		b, err := os.ReadFile(p.file)
		if err != nil {
			return nil, usagef("--passphrase-file: %v", err)
		}
		n := len(b)
		for n > 0 && (b[n-1] == '\n' || b[n-1] == '\r') {
			n--
		}
		clear(b[n:])
		return b[:n], nil
	}
	return nil, nil
}

// readKeyFile reads every key in path.
func readKeyFile(flag, path string) ([]*pgp.Key, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, usagef("%s: %v", flag, err)
	}
	defer f.Close()
	keys, err := pgp.ReadKeys(f)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", flag, path, err)
	}
	return keys, nil
}

// readSecretKeys reads and unlocks the secret keys in paths.
func readSecretKeys(flag string, paths []string, pass *passphraseFlags) ([]*pgp.Key, error) {
	passphrase, err := pass.read()
	if err != nil {
		return nil, err
	}
	defer clear(passphrase)
	var out []*pgp.Key
	for _, p := range paths {
		keys, err := readKeyFile(flag, p)
		if err != nil {
			return nil, err
		}
		for _, k := range keys {
			if !k.IsSecret() {
				return nil, fmt.Errorf("%s %s: %w", flag, p, pgp.ErrNoSecretKey)
			}
			if err := k.Unlock(passphrase); err != nil {
				return nil, fmt.Errorf("%s %s: %w", flag, p, err)
			}
			out = append(out, k)
		}
	}
	return out, nil
}

func readPublicKeys(flag string, paths []string) ([]*pgp.Key, error) {
	var out []*pgp.Key
	for _, p := range paths {
		keys, err := readKeyFile(flag, p)
		if err != nil {
			return nil, err
		}
		for _, k := range keys {
			out = append(out, k.Public())
		}
	}
	return out, nil
}

func pgpKeygen(e *env, args []string) error {
	fs := e.newFlags("pgp keygen", "pgp keygen --name NAME --email EMAIL [--algo curve25519|rsa3072|rsa4096] --out PREFIX [--passphrase-file F|--passphrase-env V]")
	name := fs.String("name", "", "user ID name")
	email := fs.String("email", "", "user ID email")
	algo := fs.String("algo", string(pgp.Curve25519), "key algorithm: curve25519, rsa3072 or rsa4096")
	out := fs.String("out", "", "output prefix: writes PREFIX.pub.asc and PREFIX.sec.asc (mode 0600)")
	var pass passphraseFlags
	pass.register(fs, "the new secret key (optional: unprotected without)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *name == "" || *email == "" || *out == "" {
		return usagef("pgp keygen: --name, --email and --out are required")
	}
	if fs.NArg() > 0 {
		return usagef("pgp keygen: unexpected argument %q", fs.Arg(0))
	}
	switch pgp.Algo(*algo) {
	case pgp.Curve25519, pgp.RSA3072, pgp.RSA4096:
	default:
		return usagef("pgp keygen: --algo %q is not curve25519, rsa3072 or rsa4096", *algo)
	}
	passphrase, err := pass.read()
	if err != nil {
		return err
	}
	defer clear(passphrase)
	key, err := pgp.GenerateKey(*name, *email, pgp.Algo(*algo), pgp.GenerateOptions{})
	if err != nil {
		return err
	}
	pubPath, secPath := *out+".pub.asc", *out+".sec.asc"
	if err := writeNewFile(secPath, 0o600, func(w io.Writer) error { return key.WriteSecret(w, true, passphrase) }); err != nil {
		return err
	}
	if err := writeNewFile(pubPath, 0o644, func(w io.Writer) error { return key.WritePublic(w, true) }); err != nil {
		os.Remove(secPath)
		return err
	}
	fmt.Fprintln(e.io.out, key.Fingerprint())
	e.log.Info("key generated", "fingerprint", key.Fingerprint(), "algo", *algo, "public", pubPath, "secret", secPath)
	return nil
}

// writeNewFile creates path (which must not exist) with mode, fills it and
// syncs it; on any error it removes it.
func writeNewFile(path string, mode os.FileMode, fill func(io.Writer) error) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return usagef("%v", err)
	}
	err = fill(f)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// atomicOutput writes to a temporary file beside path and renames it onto
// path only on commit, so that a reader never sees a partial file.
type atomicOutput struct {
	f    *os.File
	path string
}

func createAtomic(path string, mode os.FileMode) (*atomicOutput, error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	f, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return nil, usagef("%v", err)
	}
	if err := f.Chmod(mode); err != nil {
		f.Close()
		os.Remove(f.Name())
		return nil, err
	}
	return &atomicOutput{f: f, path: path}, nil
}

func (a *atomicOutput) commit() error {
	err := a.f.Sync()
	if cerr := a.f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(a.f.Name(), a.path)
	}
	if err != nil {
		os.Remove(a.f.Name())
	}
	return err
}

func (a *atomicOutput) abort() {
	a.f.Close()
	os.Remove(a.f.Name())
}

func pgpEncrypt(e *env, args []string) error {
	fs := e.newFlags("pgp encrypt", "pgp encrypt --to PUBKEY [--to PUBKEY ...] --sign-with SECKEY [--armor] [--compress none|zip|zlib] [-o OUT] [IN]")
	var to multiFlag
	fs.Var(&to, "to", "recipient public key file (repeatable)")
	signWith := fs.String("sign-with", "", "our secret key file to sign with")
	armor := fs.Bool("armor", false, "ASCII-armor the output")
	compress := fs.String("compress", string(pgp.CompressNone), "compression: none, zip or zlib")
	out := fs.String("o", "", "output file (default standard output)")
	var pass passphraseFlags
	pass.register(fs, "the signing key")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if len(to) == 0 || *signWith == "" {
		return usagef("pgp encrypt: --to and --sign-with are required")
	}
	if fs.NArg() > 1 {
		return usagef("pgp encrypt: at most one input file")
	}
	switch pgp.Compression(*compress) {
	case pgp.CompressNone, pgp.CompressZIP, pgp.CompressZLIB:
	default:
		return usagef("pgp encrypt: --compress %q is not none, zip or zlib", *compress)
	}
	recipients, err := readPublicKeys("--to", to)
	if err != nil {
		return err
	}
	signers, err := readSecretKeys("--sign-with", []string{*signWith}, &pass)
	if err != nil {
		return err
	}
	var in io.Reader = e.io.in
	if fs.NArg() == 1 {
		f, err := os.Open(fs.Arg(0))
		if err != nil {
			return usagef("pgp encrypt: %v", err)
		}
		defer f.Close()
		in = f
	}
	var (
		dst io.Writer = e.io.out
		ao  *atomicOutput
	)
	if *out != "" {
		if ao, err = createAtomic(*out, 0o644); err != nil {
			return err
		}
		defer func() {
			if ao != nil {
				ao.abort()
			}
		}()
		dst = ao.f
	}
	// The literal data names the plaintext, as gpg names its input.
	name := ""
	switch {
	case fs.NArg() == 1:
		name = filepath.Base(fs.Arg(0))
	case *out != "":
		name = pgp.PlaintextName(filepath.Base(*out))
	}
	w, err := pgp.Encrypt(dst, recipients, signers[0], pgp.EncryptOptions{Armor: *armor, Compression: pgp.Compression(*compress), FileName: name})
	if err != nil {
		return err
	}
	n, err := io.Copy(w, in)
	if err != nil {
		return fmt.Errorf("pgp encrypt: %w", err)
	}
	if err := w.Close(); err != nil {
		return err
	}
	if ao != nil {
		err := ao.commit()
		ao = nil
		if err != nil {
			return err
		}
	}
	e.log.Info("encrypted and signed", "bytes", n, "signer", signers[0].Fingerprint(), "recipients", len(recipients), "armor", *armor, "compress", *compress)
	return nil
}

func pgpDecrypt(e *env, args []string) error {
	fs := e.newFlags("pgp decrypt", "pgp decrypt --key SECKEY --signer PUBKEY [--signer PUBKEY ...] [-o OUT] [IN]")
	var keys, signers multiFlag
	fs.Var(&keys, "key", "our secret key file (repeatable, e.g. during rotation)")
	fs.Var(&signers, "signer", "pinned public key file of the sender (repeatable)")
	out := fs.String("o", "", "output file, created only after the signature verified and renamed into place only after the second pass verified again (default standard output, which gets the second pass as it streams: on exit 1, discard it)")
	maxSize := fs.Int64("max-size", pgp.DefaultMaxSize, "refuse plaintext larger than this many bytes")
	var pass passphraseFlags
	pass.register(fs, "the secret key")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if len(keys) == 0 || len(signers) == 0 {
		return usagef("pgp decrypt: --key and --signer are required")
	}
	if fs.NArg() > 1 {
		return usagef("pgp decrypt: at most one input file")
	}
	ours, err := readSecretKeys("--key", keys, &pass)
	if err != nil {
		return err
	}
	pinned, err := readPublicKeys("--signer", signers)
	if err != nil {
		return err
	}

	// Both passes need the ciphertext: a named file is read twice; standard
	// input is spooled (it is ciphertext, safe on disk) to a temporary file.
	path := ""
	if fs.NArg() == 1 {
		path = fs.Arg(0)
		if _, err := os.Stat(path); err != nil {
			return usagef("pgp decrypt: %v", err)
		}
	} else {
		spool, err := os.CreateTemp("", "resub-ciphertext-*")
		if err != nil {
			return err
		}
		defer os.Remove(spool.Name())
		_, err = io.Copy(spool, e.io.in)
		if cerr := spool.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("pgp decrypt: spool standard input: %w", err)
		}
		path = spool.Name()
	}
	open := func() (io.ReadCloser, error) { return os.Open(path) }
	v, err := pgp.Open(open, pgp.DecryptOptions{Keys: ours, Signers: pinned, MaxSize: *maxSize})
	if err != nil {
		return err
	}
	defer v.Close()
	plain, err := v.Plaintext()
	if err != nil {
		return err
	}
	defer plain.Close()
	if *out == "" {
		if _, err := io.Copy(e.io.out, plain); err != nil {
			return fmt.Errorf("pgp decrypt: %w", err)
		}
	} else {
		ao, err := createAtomic(*out, 0o600)
		if err != nil {
			return err
		}
		if _, err := io.Copy(ao.f, plain); err != nil {
			ao.abort()
			return decryptErr(err)
		}
		if err := ao.commit(); err != nil {
			return err
		}
	}
	e.log.Info("decrypted and verified", "signer", v.Signer, "signing_key", v.SigningKey, "signed_at", v.SignedAt, "sha256", v.SHA256, "bytes", v.PlaintextSize, "cipher", v.Cipher, "hash", v.Hash)
	return nil
}

// decryptErr keeps refusals as they are and labels other errors.
func decryptErr(err error) error {
	var pe *pgp.Error
	if errors.As(err, &pe) {
		return err
	}
	return fmt.Errorf("pgp decrypt: %w", err)
}

func pgpFingerprint(e *env, args []string) error {
	fs := e.newFlags("pgp fingerprint", "pgp fingerprint KEYFILE")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usagef("pgp fingerprint: one KEYFILE is required")
	}
	keys, err := readKeyFile("pgp fingerprint", fs.Arg(0))
	if err != nil {
		return err
	}
	for _, k := range keys {
		fmt.Fprintln(e.io.out, k.Fingerprint())
	}
	return nil
}
