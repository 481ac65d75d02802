package processor

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"time"

	"resub/crypto/scp80"
	"resub/formats/ident"
	"resub/formats/native"
	"resub/formats/ota"
	"resub/processor/ledger"
)

// Profile is a card profile: how the card is changed over the air, plus
// what the batch around the messages needs.
type Profile struct {
	Name       string
	OTA        *ota.Profile
	Algorithm  string
	ListLength int
	Rate       int    // messages per second at the SMSC
	Window     string // submission window HH:MM-HH:MM, local to Zone
	// Zone is the time zone of Window and of cut-over dates (UTC when
	// nil).
	Zone     *time.Location
	Validity time.Duration // SMS validity period
	// KeyIndexAtReset: the 3b key index takes effect at the next reset
	// (otherwise at once).
	KeyIndexAtReset bool
	// Rotation, when set, lets the recipient replace the OTA key set it
	// received from the donor (step_rotation.go).
	Rotation *Rotation
}

// Secret names in the ledger.
const (
	SecKi  = "ki"
	SecOPc = "opc"
	SecKIc = "kic"
	SecKID = "kid"
	SecKIK = "kik"
)

func secretAAD(iccid, name string, keyIndex int) []byte {
	return appendSecretAAD(nil, iccid, name, keyIndex)
}

// appendSecretAAD is secretAAD appended to dst (a worker's buffer).
func appendSecretAAD(dst []byte, iccid, name string, keyIndex int) []byte {
	dst = append(dst, iccid...)
	dst = append(dst, '/')
	dst = append(dst, name...)
	dst = append(dst, '/')
	return strconv.AppendInt(dst, int64(keyIndex), 10)
}

// seal wraps a card secret under the master key and stores it.
func (p *Party) seal(ctx context.Context, tx *ledger.Tx, iccid, name string, keyIndex int, plain []byte) error {
	blob, err := p.Vault.Seal(secretAAD(iccid, name, keyIndex), plain)
	if err != nil {
		return fmt.Errorf("seal %s of %s: %w", name, iccid, err)
	}
	return tx.PutSecret(ctx, iccid, ledger.Secret{Name: name, KeyIndex: keyIndex, MasterKey: p.Vault.KeyID(), Blob: blob})
}

// sealAll wraps several secrets of a card under the master key and
// stores them in one statement, in name order.
func (p *Party) sealAll(ctx context.Context, tx *ledger.Tx, iccid string, keyIndex int, secrets map[string][]byte) error {
	list := make([]ledger.Secret, 0, len(secrets))
	for _, name := range slices.Sorted(maps.Keys(secrets)) {
		blob, err := p.Vault.Seal(secretAAD(iccid, name, keyIndex), secrets[name])
		if err != nil {
			return fmt.Errorf("seal %s of %s: %w", name, iccid, err)
		}
		list = append(list, ledger.Secret{Name: name, KeyIndex: keyIndex, MasterKey: p.Vault.KeyID(), Blob: blob})
	}
	return tx.PutSecrets(ctx, iccid, list)
}

// cardSecrets opens a card's secrets of one key index. The caller wipes
// them with wipe when done.
func (p *Party) cardSecrets(ctx context.Context, tx *ledger.Tx, iccid string, keyIndex int) (map[string][]byte, error) {
	var list []ledger.Secret
	var err error
	if tx != nil {
		list, err = tx.Secrets(ctx, iccid, keyIndex)
	} else {
		list, err = p.Ledger.SecretsOf(ctx, iccid, keyIndex)
	}
	if err != nil {
		return nil, err
	}
	return p.openSecrets(iccid, list)
}

// openSecrets opens wrapped secrets already read from the ledger (a
// page's), like cardSecrets. The caller wipes them with wipe when done.
func (p *Party) openSecrets(iccid string, list []ledger.Secret) (map[string][]byte, error) {
	out := make(map[string][]byte, len(list))
	for _, s := range list {
		b, err := p.Vault.Open(secretAAD(iccid, s.Name, s.KeyIndex), s.Blob)
		if err != nil {
			wipe(out)
			return nil, fmt.Errorf("open %s of %s: %w", s.Name, iccid, err)
		}
		out[s.Name] = b
	}
	return out, nil
}

// checkSecrets applies the one length rule (ident.CheckSecret) to a
// card's secrets once unwrapped, as every path that takes secrets in does
// before it seals or forwards them: Ki and OPc by the authentication
// algorithm alg, KIc, KID and KIK by the key set's cipher otaAlg. Secrets
// absent from the map (or of other names) are not checked. The error names the field (the
// first wrong one, in a fixed order), never the value; the caller answers
// the record INVALID_RECORD with it.
func checkSecrets(secrets map[string][]byte, alg, otaAlg string) error {
	for _, name := range handoverSecrets {
		b, ok := secrets[name]
		if !ok {
			continue
		}
		if err := ident.CheckSecret(name, b, ident.AuthAlg(alg), ident.CipherAlg(otaAlg)); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
	}
	return nil
}

func wipe(m map[string][]byte) {
	for _, b := range m {
		clear(b)
	}
}

// otaCodec builds the codec for a card's key set under a profile and TAR:
// the profile gives the algorithms (low nibbles), the card's key set its
// version (high nibble).
func otaParams(prof *Profile, kvn int, tar ota.TAR) ota.Params {
	pr := prof.OTA.Params(tar)
	pr.KIc = ota.KIc(byte(pr.KIc)&0x0f | byte(kvn)<<4)
	pr.KID = ota.KID(byte(pr.KID)&0x0f | byte(kvn)<<4)
	return pr
}

// mncLen is the MNC length of the PLMN (among ranges) an IMSI is in; 0
// when none holds it.
func mncLen(imsi string, lists ...ident.IMSIRanges) int {
	for _, l := range lists {
		for _, r := range l {
			if r.PLMN.Contains(imsi) {
				return len(r.PLMN.MNC)
			}
		}
	}
	return 0
}

// wrapInto wraps the named secrets under a partner's transport key into
// the record's fields of the same names (absent secrets are left out).
func wrapInto(rec *native.Record, t Transport, secrets map[string][]byte, names ...string) error {
	for _, name := range names {
		v, ok := secrets[name]
		if !ok {
			continue
		}
		f, err := t.Wrap(v)
		if err != nil {
			return fmt.Errorf("wrap %s: %w", name, err)
		}
		rec.Set(name, f)
	}
	return nil
}

// profileOTAAlg is the OTA cipher of a key set as a profile implies it:
// the KIc's algorithm (TS 102 225 §5.1.2), with AES's length from the
// key (keyLen octets of KIc). It is the algorithm recorded for a key set
// whose import file does not name one.
func profileOTAAlg(prof *Profile, keyLen int) (string, error) {
	if prof == nil || prof.OTA == nil {
		return "", fmt.Errorf("no card profile")
	}
	alg, err := prof.OTA.KIc.Algorithm()
	if err != nil {
		return "", fmt.Errorf("profile %s: %w", prof.Name, err)
	}
	switch alg {
	case scp80.CipherDESCBC, scp80.CipherDESECB:
		return string(ident.DES), nil
	case scp80.Cipher3DES2:
		return string(ident.TDES2), nil
	case scp80.Cipher3DES3:
		return string(ident.TDES3), nil
	case scp80.CipherAES:
		switch keyLen {
		case 16:
			return string(ident.AES128), nil
		case 24:
			return string(ident.AES192), nil
		case 32:
			return string(ident.AES256), nil
		}
		return "", fmt.Errorf("profile %s: AES with a KIc of %d octets", prof.Name, keyLen)
	}
	return "", fmt.Errorf("profile %s: KIc %s names no OTA cipher", prof.Name, prof.OTA.KIc)
}
