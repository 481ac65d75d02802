package config

import (
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"runtime"
	"strings"
	"time"

	"resub/crypto/pgp"
)

// CheckKeys reads the key material the configuration names and checks what
// Load cannot see from the file alone; `config check` and the start of a
// runtime call it:
//
//   - a secret (our OpenPGP and SSH keys, every file: secret reference)
//     readable or writable by group or others, and a trust anchor (the
//     configuration itself, known_hosts, a partner's public key file)
//     writable by group or others, is refused naming the file and its mode,
//     as OpenSSH refuses them;
//   - a partner's public key file that cannot be read whole is refused;
//   - a pinned fingerprint that is not the primary key of a key in the
//     partner's public_keys (a subkey's fingerprint, a typo) is refused:
//     every file of the partner would be refused otherwise;
//   - a partner none of whose pinned keys can be encrypted to at now
//     (revoked, expired) is refused, before anything is committed.
//
// A key in public_keys that is not pinned, and a pinned key that cannot be
// encrypted to while another can (a rotation), are warnings: the first is
// never used, the second is left out of what we encrypt.
func (c *Config) CheckKeys(now time.Time) (warnings []Problem, err error) {
	ps := &problems{}
	c.checkModes(ps)
	var ws problems
	for _, name := range sortedKeys(c.Partners) {
		p := c.Partners[name]
		if p == nil || p.PGP.Disabled {
			continue
		}
		path := "partners." + name + ".pgp.fingerprints"
		keys, w, pr := c.PinnedKeys(name)
		ws.list = append(ws.list, w...)
		ps.list = append(ps.list, pr...)
		if len(pr) > 0 || len(keys) == 0 {
			continue
		}
		usable, skipped := pgp.EncryptionKeys(keys, now)
		var why []string
		for _, err := range skipped {
			why = append(why, err.Error())
		}
		if len(usable) == 0 {
			ps.add(path, "no pinned key can be encrypted to: %s", strings.Join(why, "; "))
			continue
		}
		for _, w := range why {
			ws.add(path, "left out when encrypting: %s", w)
		}
	}
	if len(ps.list) > 0 {
		return ws.list, &Error{File: c.path, Problems: ps.list}
	}
	return ws.list, nil
}

// PinnedKeys reads the partner's public_keys files and returns the keys
// whose primary fingerprint is pinned in fingerprints, each once: the only
// keys we encrypt to and accept signatures from. Whether they can be
// encrypted to is judged when they are used ([pgp.EncryptionKeys]); the
// problems refused here are as [Config.CheckKeys] reports them for the
// partner, and with any of them keys is nil.
func (c *Config) PinnedKeys(partner string) (keys []*pgp.Key, warnings, refused []Problem) {
	p := c.Partners[partner]
	if p == nil {
		return nil, nil, []Problem{{Path: "partners." + partner, Msg: "no such partner"}}
	}
	base := "partners." + partner + ".pgp"
	ps, ws := &problems{}, &problems{}
	pinned := map[string]int{} // normalised fingerprint -> index in fingerprints
	for i, f := range p.PGP.Fingerprints {
		n, err := pgp.NormalizeFingerprint(f)
		if err != nil {
			continue // Load reported it
		}
		pinned[n] = i
	}
	type found struct {
		key  *pgp.Key
		file int
	}
	primaries := map[string]found{}
	subkeys := map[string]*pgp.Key{}
	var order []string
	unread := false
	for i, f := range p.PGP.PublicKeys {
		path := fmt.Sprintf("%s.public_keys[%d]", base, i)
		data, err := os.ReadFile(c.Abs(f))
		if err != nil {
			ps.add(path, "%v", err)
			unread = true
			continue
		}
		ks, err := pgp.ReadKeys(bytes.NewReader(data))
		if err != nil {
			ps.add(path, "%s: %v", f, err)
			unread = true
			continue
		}
		for _, k := range ks {
			k = k.Public()
			fp := k.Fingerprint()
			if _, dup := primaries[fp]; dup {
				continue
			}
			primaries[fp] = found{k, i}
			order = append(order, fp)
			for _, s := range k.SubkeyFingerprints() {
				subkeys[s] = k
			}
			if _, ok := pinned[fp]; !ok {
				ws.add(path, "key %s (%s) is not pinned in fingerprints: it is neither encrypted to nor accepted as a signer", fp, k.UserID())
			}
		}
	}
	for _, f := range sortedKeys(pinned) {
		i := pinned[f]
		if _, ok := primaries[f]; ok {
			continue
		}
		path := fmt.Sprintf("%s.fingerprints[%d]", base, i)
		if k, ok := subkeys[f]; ok {
			ps.add(path, "%s is a subkey of %s (%s): pin the primary key's fingerprint", f, k.Fingerprint(), k.UserID())
		} else if !unread {
			ps.add(path, "%s is the primary key of none of the keys in public_keys", f)
		}
	}
	for _, fp := range order {
		if _, ok := pinned[fp]; ok {
			keys = append(keys, primaries[fp].key)
		}
	}
	if len(ps.list) > 0 {
		return nil, ws.list, ps.list
	}
	return keys, ws.list, nil
}

// checkModes refuses secrets that others may read and trust anchors that
// others may change.
func (c *Config) checkModes(ps *problems) {
	if runtime.GOOS == "windows" {
		return // no Unix permission bits to judge
	}
	secret := func(path, file string) {
		c.checkMode(ps, path, file, 0o077, "a secret must be readable by its owner only (chmod 600)")
	}
	anchor := func(path, file string) {
		c.checkMode(ps, path, file, 0o022, "a trust anchor must not be writable by group or others (chmod 644)")
	}
	secretRef := func(path string, r SecretRef) {
		if f, ok := strings.CutPrefix(string(r), "file:"); ok && f != "" {
			secret(path, f)
		}
	}
	if c.path != "" {
		anchor("", c.path)
	}
	if c.PGP.SecretKey != "" {
		secret("pgp.secret_key", c.PGP.SecretKey)
	}
	secretRef("pgp.passphrase", c.PGP.Passphrase)
	secretRef("master_key.key", c.MasterKey.Key)
	for i, p := range c.MasterKey.Previous {
		secretRef(fmt.Sprintf("master_key.previous[%d].key", i), p.Key)
	}
	for _, name := range sortedKeys(c.Partners) {
		p := c.Partners[name]
		if p == nil {
			continue
		}
		path := "partners." + name
		if s := p.Drop.SFTP; s != nil {
			if s.PrivateKey != "" {
				secret(path+".drop.sftp.private_key", s.PrivateKey)
			}
			secretRef(path+".drop.sftp.passphrase", s.Passphrase)
			secretRef(path+".drop.sftp.password", s.Password)
			if s.KnownHosts != "" {
				anchor(path+".drop.sftp.known_hosts", s.KnownHosts)
			}
		}
		if !p.PGP.Disabled {
			for i, f := range p.PGP.PublicKeys {
				anchor(fmt.Sprintf("%s.pgp.public_keys[%d]", path, i), f)
			}
		}
		for i, tk := range p.TransportKeys {
			secretRef(fmt.Sprintf("%s.transport_keys[%d].key", path, i), tk.Key)
		}
	}
}

// checkMode adds a problem when the file's permission bits (of the file a
// symbolic link leads to: that is what is read) include any of deny.
func (c *Config) checkMode(ps *problems, path, file string, deny fs.FileMode, why string) {
	fi, err := os.Stat(c.Abs(file))
	if err != nil {
		return // a missing file is Load's to report
	}
	if m := fi.Mode().Perm(); m&deny != 0 {
		ps.add(path, "%s has mode %04o: %s", c.Abs(file), m, why)
	}
}
