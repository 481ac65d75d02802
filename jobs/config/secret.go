package config

import (
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"go.yaml.in/yaml/v3"
)

// SecretRef is a reference to a secret: env:NAME or file:PATH. The
// configuration never holds a secret itself.
type SecretRef string

// check reports what is wrong with the reference, if anything.
func (r SecretRef) check() string {
	s := string(r)
	switch {
	case s == "":
		return ""
	case strings.HasPrefix(s, "env:"):
		if len(s) == len("env:") {
			return "env: reference names no variable"
		}
		return ""
	case strings.HasPrefix(s, "file:"):
		if len(s) == len("file:") {
			return "file: reference names no file"
		}
		return ""
	}
	return "secret given inline: write env:NAME or file:PATH instead"
}

// IsSet reports whether a reference is present.
func (r SecretRef) IsSet() bool { return r != "" }

// Resolve reads the secret the reference names. A file's trailing newline
// is dropped. base resolves relative file paths.
func (r SecretRef) resolve(base string) (Secret, error) {
	s := string(r)
	switch {
	case strings.HasPrefix(s, "env:"):
		name := s[len("env:"):]
		v, ok := os.LookupEnv(name)
		if !ok {
			return nil, fmt.Errorf("environment variable %s is not set", name)
		}
		return Secret(v), nil
	case strings.HasPrefix(s, "file:"):
		p := s[len("file:"):]
		if !filepath.IsAbs(p) {
			p = filepath.Join(base, p)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("secret file: %w", err)
		}
		for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == '\r') {
			b[len(b)-1] = 0
			b = b[:len(b)-1]
		}
		return Secret(b), nil
	}
	return nil, fmt.Errorf("not a secret reference (env:NAME or file:PATH)")
}

// Resolve reads the secret named by r, resolving relative files against
// the configuration's folder.
func (c *Config) Resolve(r SecretRef) (Secret, error) {
	return r.resolve(c.dir())
}

// ResolveRef reads the secret a reference given outside a configuration
// names (a command-line flag): a relative file is relative to the working
// folder.
func ResolveRef(r SecretRef) (Secret, error) {
	if msg := r.check(); msg != "" {
		return nil, errors.New(msg)
	}
	return r.resolve(".")
}

// Secret is a resolved secret. It never prints: every formatting path
// (fmt verbs, slog, YAML, JSON) yields [redacted]. Callers zero it with
// Wipe when done.
type Secret []byte

const redacted = "[redacted]"

func (Secret) String() string               { return redacted }
func (Secret) GoString() string             { return redacted }
func (s Secret) Format(f fmt.State, _ rune) { fmt.Fprint(f, redacted) }
func (Secret) LogValue() slog.Value         { return slog.StringValue(redacted) }
func (Secret) MarshalYAML() (any, error)    { return redacted, nil }
func (Secret) MarshalJSON() ([]byte, error) { return []byte(`"` + redacted + `"`), nil }
func (Secret) MarshalText() ([]byte, error) { return []byte(redacted), nil }

// Wipe zeroes the secret in place.
func (s Secret) Wipe() { clear(s) }

// Bytes returns the secret's bytes (the caller must not log them).
func (s Secret) Bytes() []byte { return s }

// KeyBytes interprets the secret as a key: hex text (either case, spaces
// allowed) or, if it is not hex, the raw bytes.
func (s Secret) KeyBytes() ([]byte, error) {
	t := strings.Join(strings.Fields(string(s)), "")
	if len(t) > 0 && len(t)%2 == 0 {
		if b, err := hex.DecodeString(t); err == nil {
			return b, nil
		}
	}
	if len(s) == 0 {
		return nil, fmt.Errorf("empty key")
	}
	out := make([]byte, len(s))
	copy(out, s)
	return out, nil
}

// UnmarshalYAML keeps the reference as written.
func (r *SecretRef) UnmarshalYAML(n *yaml.Node) error {
	var s string
	if err := n.Decode(&s); err != nil {
		return err
	}
	*r = SecretRef(s)
	return nil
}

// String prints a reference: the reference is not the secret, but an
// inline secret by mistake must not print either.
func (r SecretRef) String() string {
	if r.check() != "" {
		return redacted
	}
	return string(r)
}

// Format applies String to every verb.
func (r SecretRef) Format(f fmt.State, _ rune) { fmt.Fprint(f, r.String()) }

// MarshalYAML prints the reference, or [redacted] for an inline value.
func (r SecretRef) MarshalYAML() (any, error) { return r.String(), nil }
