// Package processor holds the party steps of a remote subscription change
// (3GPP TR 33.812 §5.4, alternatives 3a and 3b) as stages over streams of
// records, on top of the ledger.
//
// Every unit of work is a batch: an input file (or a sweep over the
// ledger, such as the handover of confirmed cards) whose ledger changes are
// committed in one transaction together with the outputs it plans. Outputs
// are rendered from the ledger afterwards, written encrypted to the data
// folder and delivered by the caller; each step of that is recorded, so a
// process killed at any point and rerun produces each output once, never
// reserves an OTA counter twice and never sends a card two messages for one
// request.
package processor

import (
	"io"
	"log/slog"
	"time"

	"resub/crypto/pgp"
	"resub/formats/ident"
	"resub/formats/native"
	"resub/processor/ledger"
)

// Party is one party's processing context: who we are, our keys, our
// partners, the ledger.
type Party struct {
	// Name is our party code (file names and headers).
	Name   string
	Ledger *ledger.DB
	// Keys are our OpenPGP secret keys, unlocked.
	Keys []*pgp.Key
	// Vault wraps secrets at rest under the master key.
	Vault Vault
	// Partners by local name.
	Partners map[string]*Partner
	// Ranges are our own PLMNs and IMSI ranges (a recipient allocates new
	// IMSIs from them).
	Ranges ident.IMSIRanges
	// RangeList keeps the configured ranges in order, with names, for
	// allocation.
	RangeList []Range
	// Profiles are the card profiles by name.
	Profiles map[string]*Profile
	// OutDir holds rendered (encrypted) outputs until they are delivered.
	OutDir string
	// ScratchDir holds local ciphertext copies of inputs.
	ScratchDir string
	// OTA settings of a donor.
	OTA OTASettings
	// Retention is how long a released card's secrets are kept.
	Retention time.Duration
	// MaxFileBytes caps an input's plaintext size.
	MaxFileBytes int64
	// MaxLineBytes bounds one line of an input.
	MaxLineBytes int
	// Limits bound the records of an input, and its records with
	// problems: past them the input is refused as a whole (zero: no
	// bound).
	Limits native.Limits
	// AuCKey names the transport key (of the hlr partner) for
	// provisioning files.
	AuCKey string

	Now  func() time.Time
	Rand io.Reader
	Log  *slog.Logger
	// Progress, when set, hears how far a long unit of work has come
	// (records read, messages rendered), every progressEvery.
	Progress func(what string, n int)

	// prepared are outputs whose records a committed step rendered as it
	// produced them, until they are rendered (prepared.go).
	prepared preparedOutputs
}

// progressEvery is how often long work reports progress.
const progressEvery = 50_000

func (p *Party) progress(what string, n int) {
	if p.Progress != nil {
		p.Progress(what, n)
	}
}

// Range is one named IMSI range.
type Range struct {
	Name     string
	From, To string
}

// OTASettings are a donor's OTA defaults.
type OTASettings struct {
	Originator  string        // our OTA short code (PoRs by SMS-SUBMIT return there)
	CounterJump int64         // step after a counter-low or counter-high answer
	PoRMargin   time.Duration // added to the validity before a message is unknown
}

// Partner is one organisation we exchange files with.
type Partner struct {
	Name string // local name (config key)
	Code string // party code in files
	Kind string // operator, manufacturer, m2m-operator, smsc, hlr
	// PublicKeys are the partner's keys: we encrypt to them and accept
	// signatures from those whose fingerprints are pinned.
	PublicKeys   []*pgp.Key
	Fingerprints []string
	// PGPOff is set for internal partners that do not speak PGP.
	PGPOff      bool
	Armor       bool
	Compression pgp.Compression
	// Transport wraps and unwraps secret fields for this partner.
	Transport Transport
	// Ranges are the partner's PLMNs and IMSI ranges.
	Ranges ident.IMSIRanges
	// ICCID conventions of the partner's files.
	ICCIDRules ident.ICCIDOptions
	Deadlines  map[string]time.Duration
	Policy     Policy
	// SMPP: an SMSC reached over SMPP takes OTA messages from the
	// submission queue (job a-ota-submit) instead of ota-batch files.
	SMPP bool
}

// Policy holds what was agreed with a partner.
type Policy struct {
	ResetWithUpdate bool
	PerNightCap     int
	MaxAttempts     int
}

// Vault wraps secrets at rest. The associated data binds a blob to its
// place (card and field), so a blob moved elsewhere does not open. It must
// be safe for concurrent use: steps seal and open on every core.
type Vault interface {
	Seal(aad, plain []byte) (blob []byte, err error)
	Open(aad, blob []byte) ([]byte, error)
	// KeyID names the key that Seal uses now.
	KeyID() string
	// Fingerprint is a keyed one-way digest of secrets, for comparing two
	// imports without keeping anything that reveals them.
	Fingerprint(parts ...[]byte) string
}

// Transport wraps secret fields of the files exchanged with one partner.
// It must be safe for concurrent use: steps unwrap on every core.
type Transport interface {
	// WriteKeyID is the key we wrap with; KCV its check value.
	WriteKeyID() string
	KCV(keyID string) ([]byte, bool)
	// Wrap returns the field text "<keyID>:<hex>".
	Wrap(plain []byte) (string, error)
	// Unwrap opens a field written by the partner.
	Unwrap(field string) ([]byte, error)
}

func (p *Party) now() time.Time {
	if p.Now != nil {
		return p.Now().UTC()
	}
	return time.Now().UTC()
}

func (p *Party) log() *slog.Logger {
	if p.Log != nil {
		return p.Log
	}
	return slog.New(slog.DiscardHandler)
}

// PartnerByCode finds a partner by its party code.
func (p *Party) PartnerByCode(code string) *Partner {
	for _, pt := range p.Partners {
		if pt.Code == code {
			return pt
		}
	}
	return nil
}
