package drop

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// HostKeyError is an SSH server whose host key is not the one pinned in
// known_hosts: unknown, changed or revoked. It is a configuration error:
// retrying cannot help; a person has to confirm the key with the partner.
type HostKeyError struct {
	Host        string // host:port as dialled
	KnownHosts  string // the known_hosts file
	Offered     ssh.PublicKey
	Fingerprint string                // SHA256 fingerprint of the offered key
	Want        []knownhosts.KnownKey // pinned keys; empty for an unknown host
	Revoked     bool
}

func (e *HostKeyError) Error() string {
	var b strings.Builder
	switch {
	case e.Revoked:
		fmt.Fprintf(&b, "ssh: host %s offered a revoked %s key %s", e.Host, e.Offered.Type(), e.Fingerprint)
	case len(e.Want) == 0:
		fmt.Fprintf(&b, "ssh: host %s is not in %s; it offered %s key %s. "+
			"Confirm this fingerprint with the partner out of band, then add this line to %s: %s",
			e.Host, e.KnownHosts, e.Offered.Type(), e.Fingerprint, e.KnownHosts,
			knownhosts.Line([]string{knownhosts.Normalize(e.Host)}, e.Offered))
	default:
		fmt.Fprintf(&b, "ssh: HOST KEY CHANGED for %s: it offered %s key %s, but %s pins", e.Host, e.Offered.Type(), e.Fingerprint, e.KnownHosts)
		for i, w := range e.Want {
			if i > 0 {
				b.WriteString(",")
			}
			fmt.Fprintf(&b, " %s %s (line %d)", w.Key.Type(), ssh.FingerprintSHA256(w.Key), w.Line)
		}
		if e.otherType() {
			fmt.Fprintf(&b, "; the server offers no key of the pinned type")
		}
		b.WriteString(". This may be an attack. Do not connect until the partner confirms the new key out of band; then replace the pinned line.")
	}
	return b.String()
}

// otherType reports whether no pinned key has the offered key's type.
func (e *HostKeyError) otherType() bool {
	for _, w := range e.Want {
		if w.Key.Type() == e.Offered.Type() {
			return false
		}
	}
	return len(e.Want) > 0
}

// ConfigError reports true: a person must act.
func (e *HostKeyError) ConfigError() bool { return true }

// hostKeyChecker verifies host keys against a known_hosts file.
type hostKeyChecker struct {
	file     string
	callback ssh.HostKeyCallback
}

func newHostKeyChecker(file string) (*hostKeyChecker, error) {
	if file == "" {
		return nil, &ConfigError{errors.New("ssh: no known_hosts file: host keys are always verified")}
	}
	cb, err := knownhosts.New(file)
	if err != nil {
		return nil, &ConfigError{fmt.Errorf("ssh: known_hosts: %w", err)}
	}
	return &hostKeyChecker{file: file, callback: cb}, nil
}

// check is the ssh.HostKeyCallback. It never accepts a key that
// known_hosts does not pin for the host.
func (h *hostKeyChecker) check(hostname string, remote net.Addr, key ssh.PublicKey) error {
	err := h.callback(hostname, remote, key)
	if err == nil {
		return nil
	}
	he := &HostKeyError{Host: hostname, KnownHosts: h.file, Offered: key, Fingerprint: ssh.FingerprintSHA256(key)}
	var ke *knownhosts.KeyError
	var re *knownhosts.RevokedError
	switch {
	case errors.As(err, &ke):
		he.Want = ke.Want
	case errors.As(err, &re):
		he.Revoked = true
	default:
		return err
	}
	return he
}

// algorithms returns the host key algorithms to offer for addr, derived
// from the keys pinned for it, so that the server presents a key of a
// pinned type. It returns nil (the library's default) for an unknown host:
// the handshake then fails in check with the offered key's fingerprint.
func (h *hostKeyChecker) algorithms(addr string) []string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil
	}
	p, _ := strconv.Atoi(port)
	remote := &net.TCPAddr{IP: net.ParseIP(host), Port: p}
	// Asking about a key that cannot be pinned makes knownhosts list the
	// keys that are.
	probe, _ := ssh.NewPublicKey(ed25519.PublicKey(make([]byte, ed25519.PublicKeySize)))
	var ke *knownhosts.KeyError
	if err := h.callback(addr, remote, probe); !errors.As(err, &ke) {
		return nil
	}
	var algos []string
	seen := map[string]bool{}
	add := func(a ...string) {
		for _, x := range a {
			if !seen[x] {
				seen[x] = true
				algos = append(algos, x)
			}
		}
	}
	for _, w := range ke.Want {
		switch t := w.Key.Type(); t {
		case ssh.KeyAlgoRSA:
			add(ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256)
		default:
			add(t)
		}
	}
	return algos
}
