package jobs

import (
	"fmt"
	"log/slog"
	"strings"
	"time"

	"resub/crypto/pgp"
	"resub/jobs/config"
	"resub/processor"
)

// checkKeys runs the configuration's key checks when a runtime opens: a
// refused key file, mode or pin is a configuration error (exit 2) before
// any ledger is touched; warnings (an unpinned key, a pinned key left out
// during a rotation) are logged.
func checkKeys(cfg *config.Config, now time.Time, log *slog.Logger) error {
	warns, err := cfg.CheckKeys(now)
	for _, w := range warns {
		log.Warn("key configuration", "path", w.Path, "problem", w.Msg)
	}
	return err
}

// pinnedKeys are the partner's keys whose fingerprints are pinned: the
// only ones we encrypt to or accept signatures from.
func pinnedKeys(cfg *config.Config, name string) ([]*pgp.Key, error) {
	keys, _, refused := cfg.PinnedKeys(name)
	if len(refused) > 0 {
		return nil, &config.Error{File: cfg.Path(), Problems: refused}
	}
	return keys, nil
}

// checkRecipients refuses a job run, before it commits anything, when a
// partner the job may write to has no pinned key that can be encrypted
// to at now (every one expired or revoked since start-up).
func (r *Runtime) checkRecipients(j *config.Job) error {
	seen := map[*processor.Partner]bool{}
	var list []*processor.Partner
	add := func(p *processor.Partner) {
		if p != nil && !seen[p] {
			seen[p] = true
			list = append(list, p)
		}
	}
	add(r.Party.Partners[j.Partner])
	for _, role := range []string{"smsc", "hlr", "manufacturer", "donor", "holder"} {
		add(r.partner(j, role))
	}
	for _, p := range list {
		if p.PGPOff {
			continue
		}
		usable, skipped := pgp.EncryptionKeys(p.PublicKeys, r.now())
		if len(usable) > 0 {
			continue
		}
		var why []string
		for _, err := range skipped {
			why = append(why, err.Error())
		}
		return cfgErr("partners."+p.Name+".pgp.fingerprints", fmt.Errorf("no pinned key can be encrypted to: %s", strings.Join(why, "; ")))
	}
	return nil
}
