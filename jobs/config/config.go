// Package config reads resub's one YAML configuration file: who we are, the
// ledger, our keys, our partners with their drops, keys, PLMNs, IMSI ranges,
// column mappings and deadlines, the card profiles, and the jobs with their
// schedules.
//
// Decoding is strict: an unknown key is an error. Validation looks at the
// whole file and reports every problem at once, each with its path
// (partners.mno-b.drop.sftp.known_hosts: file not found). Secrets never
// appear in the file: a secret field holds a reference, env:NAME or
// file:PATH, resolved only when needed into a Secret, which prints as
// [redacted] in every format, log and YAML dump.
package config

import (
	"fmt"
	"time"

	"go.yaml.in/yaml/v3"

	"resub/formats/mapping"
)

// Config is the whole configuration file.
type Config struct {
	// Party is who we are.
	Party Party `yaml:"party"`
	// DataDir holds the ledger (by default), the archive, quarantine and
	// scratch folders. Relative paths in the file are relative to the file.
	DataDir string `yaml:"data_dir"`
	// Ledger is "sqlite:PATH" (default sqlite under DataDir) or a
	// postgres://USER@HOST:PORT/DATABASE?sslmode=… URL (no password in it).
	Ledger string `yaml:"ledger"`
	// LedgerPassword is the PostgreSQL user's password by reference
	// (env:NAME or file:PATH); without it PGPASSFILE or ~/.pgpass is read.
	LedgerPassword SecretRef `yaml:"ledger_password"`
	// Instance names this process among the instances that share one
	// ledger: it holds the job leases. Default host:pid. Every instance
	// on one ledger needs its own name.
	Instance string `yaml:"instance"`
	// LeaseTTL is how long a job's lease lasts unless renewed; a running
	// job renews it every third of that. Another instance takes a job
	// over once its holder let the lease expire. Default 1m.
	LeaseTTL Duration `yaml:"lease_ttl"`
	// LedgerSlowStatement: a ledger statement that runs longer is logged
	// at warning level (its SQL, never its arguments). Unset:
	// DefaultSlowStatement; 0 switches the log off.
	LedgerSlowStatement *Duration `yaml:"ledger_slow_statement"`
	// PGP is our own OpenPGP key.
	PGP OwnPGP `yaml:"pgp"`
	// MasterKey wraps the secrets kept at rest in the ledger.
	MasterKey MasterKey `yaml:"master_key"`
	// Retention is how long a released card's secrets are kept before
	// they are crypto-erased.
	Retention Duration `yaml:"retention"`
	// PLMNs and IMSIRanges are our own numbering resources (a recipient
	// allocates new IMSIs from them).
	PLMNs      []PLMN       `yaml:"plmns"`
	IMSIRanges []IMSIRange  `yaml:"imsi_ranges"`
	Partners   Partners     `yaml:"partners"`
	Profiles   Profiles     `yaml:"profiles"`
	Jobs       []Job        `yaml:"jobs"`
	OTA        OTASettings  `yaml:"ota"`
	Limits     InputLimits  `yaml:"limits"`
	Handover   HandoverOpts `yaml:"handover"`
	// HTTP is how the status page is served (resub serve, run --http).
	HTTP HTTP `yaml:"http"`

	// path is the file the config was read from; relative paths resolve
	// against its folder.
	path string
}

// Party is our own identity.
type Party struct {
	// Name is our party code as it appears in file names and headers
	// (e.g. MNOA): capital letters and digits.
	Name string `yaml:"name"`
	// Role is operator or manufacturer. An operator plays donor and
	// recipient as its jobs say.
	Role string `yaml:"role"`
}

// OwnPGP names our OpenPGP secret key and its passphrase.
type OwnPGP struct {
	SecretKey  string    `yaml:"secret_key"` // path to an armored or binary secret key
	Passphrase SecretRef `yaml:"passphrase"` // optional
}

// MasterKey is the local key that wraps secrets at rest.
type MasterKey struct {
	ID  string    `yaml:"id"`
	Key SecretRef `yaml:"key"` // 32 bytes, hex or raw
	// Previous keys, still able to open blobs until `keys rotate` ran.
	Previous []MasterKeyRef `yaml:"previous"`
}

// MasterKeyRef is a retired master key.
type MasterKeyRef struct {
	ID  string    `yaml:"id"`
	Key SecretRef `yaml:"key"`
}

// Partners maps a partner's local name (e.g. mno-b) to its settings.
type Partners map[string]*Partner

// Partner is one organisation we exchange files with.
type Partner struct {
	// Kind is operator, manufacturer, m2m-operator, smsc, hlr or internal
	// (our own systems, e.g. a factory or BSS feed). smsc, hlr and
	// internal partners may go without PGP.
	Kind string `yaml:"kind"`
	// Code is the partner's party code in file names and headers.
	Code string `yaml:"code"`
	Drop Drop   `yaml:"drop"`
	// SMPP, for an smsc partner, submits OTA messages over SMPP; its
	// file drop is then optional.
	SMPP *SMPP `yaml:"smpp"`
	PGP  PGP   `yaml:"pgp"`
	// TransportKeys wrap the secret fields of the files we exchange.
	TransportKeys []TransportKey `yaml:"transport_keys"`
	PLMNs         []PLMN         `yaml:"plmns"`
	IMSIRanges    []IMSIRange    `yaml:"imsi_ranges"`
	ICCID         ICCIDRules     `yaml:"iccid"`
	// Columns maps a type name to the partner's CSV layout of it, in the
	// shape formats/mapping defines (see ColumnMapping).
	Columns   map[string]ColumnMapping `yaml:"columns"`
	Deadlines map[string]Duration      `yaml:"deadlines"`
	Policy    Policy                   `yaml:"policy"`
}

// Internal reports whether the partner is inside our own organisation
// (SMSC, HLR/AuC), for which PGP is optional.
func (p *Partner) Internal() bool { return p.Kind == "smsc" || p.Kind == "hlr" || p.Kind == "internal" }

// Drop is where a partner's files come from and go to: an SFTP server or
// a local folder.
type Drop struct {
	SFTP  *SFTP  `yaml:"sftp"`
	Local *Local `yaml:"local"`
	// Inbox is where we pick up the partner's files; Outbox where we
	// deliver ours; Archive and Quarantine where inputs go afterwards.
	Inbox      string `yaml:"inbox"`
	Outbox     string `yaml:"outbox"`
	Archive    string `yaml:"archive"`
	Quarantine string `yaml:"quarantine"`
	// LocalArchive keeps processed inputs in the data folder when the
	// partner forbids writes on its server.
	LocalArchive bool     `yaml:"local_archive"`
	Patterns     []string `yaml:"patterns"`
	// Stable is how long size and modification time must stay unchanged
	// before a file is picked up; Marker instead waits for NAME+Marker
	// (".done" or ".ok").
	Stable Duration `yaml:"stable"`
	Marker string   `yaml:"marker"`
}

// SFTP is a partner's SFTP server.
type SFTP struct {
	Host       string    `yaml:"host"`
	Port       int       `yaml:"port"`
	User       string    `yaml:"user"`
	PrivateKey string    `yaml:"private_key"` // path to our SSH key for this partner
	Passphrase SecretRef `yaml:"passphrase"`
	Password   SecretRef `yaml:"password"` // only where the partner insists
	KnownHosts string    `yaml:"known_hosts"`
	Timeout    Duration  `yaml:"timeout"`
	Keepalive  Duration  `yaml:"keepalive"`
	MaxSession int       `yaml:"max_sessions"`
	ReadOnce   bool      `yaml:"read_once"`
}

// Local is a local folder drop.
type Local struct {
	Dir string `yaml:"dir"`
	// DirMode is the permission of the drop's folders resub creates
	// (default 0700); FileMode that of the files it delivers (default
	// 0640); Group, a group name or ID, owns both when set (e.g. the
	// account of an SMSC connector that reads the outbox).
	DirMode  FileMode `yaml:"dir_mode"`
	FileMode FileMode `yaml:"file_mode"`
	Group    string   `yaml:"group"`
}

// PGP is a partner's OpenPGP settings.
type PGP struct {
	// PublicKeys are the partner's key files; Fingerprints pins the
	// signing keys we accept (several during a rotation).
	PublicKeys   []string `yaml:"public_keys"`
	Fingerprints []string `yaml:"fingerprints"`
	Armor        bool     `yaml:"armor"`
	Compression  string   `yaml:"compression"` // none, zip, zlib
	// Disabled turns PGP off; allowed only for internal partners.
	Disabled bool `yaml:"disabled"`
}

// TransportKey is a key agreed with a partner to wrap secret fields.
type TransportKey struct {
	ID   string    `yaml:"id"`
	Key  SecretRef `yaml:"key"`
	Mode string    `yaml:"mode"` // aes-kwp (default), aes-gcm, aes-cbc-fixed-iv, aes-ecb, 3des-ecb
	KCV  string    `yaml:"kcv"`  // optional: checked against the key at load
}

// PLMN is a public land mobile network: MCC and MNC. The MNC's length
// (2 or 3) is part of its identity and cannot be derived from an IMSI.
type PLMN struct {
	MCC string `yaml:"mcc"`
	MNC string `yaml:"mnc"`
}

// IMSIRange is an inclusive range of IMSIs within one PLMN.
type IMSIRange struct {
	Name string `yaml:"name"`
	From string `yaml:"from"`
	To   string `yaml:"to"`
}

// ICCIDRules are a partner's vendor conventions for ICCIDs.
type ICCIDRules struct {
	// NoCheckDigit accepts 19-digit ICCIDs without a Luhn digit.
	NoCheckDigit bool `yaml:"no_check_digit"`
	// FPadded accepts a 20th nibble 'F'.
	FPadded bool `yaml:"f_padded"`
}

// ColumnMapping is a partner's CSV layout of one file type, kept as
// written. Its shape is formats/mapping's Mapping, the one definition of
// a column mapping (the same YAML `resub convert --mapping FILE` reads):
//
//	columns:
//	  imsi-list:
//	    delimiter: ";"
//	    header: true
//	    hex-case: upper
//	    columns:
//	      - {name: ICCID, field: iccid}
//	      - {name: NEW_IMSI, field: imsi}
//	      - {name: SWITCH_DATE, field: cutover-date, format: DD.MM.YYYY}
//
// Validation decodes it with formats/mapping and checks it against the
// type's native schema, reporting problems with their configuration path.
type ColumnMapping struct {
	node yaml.Node
}

// UnmarshalYAML keeps the mapping's YAML for formats/mapping.
func (c *ColumnMapping) UnmarshalYAML(n *yaml.Node) error {
	c.node = *n
	return nil
}

// MarshalYAML writes the mapping back as written.
func (c ColumnMapping) MarshalYAML() (any, error) { return &c.node, nil }

// Mapping decodes the column mapping (a new value on each call).
func (c ColumnMapping) Mapping() (*mapping.Mapping, error) {
	var m mapping.Mapping
	if err := c.node.Decode(&m); err != nil {
		return nil, fmt.Errorf("%w: %v", mapping.ErrMapping, err)
	}
	return &m, nil
}

// Mapping returns the partner's column mapping of type typ, with the
// partner's ICCID conventions applied (ok false: none configured).
func (p *Partner) Mapping(typ string) (m *mapping.Mapping, ok bool, err error) {
	c, ok := p.Columns[typ]
	if !ok {
		return nil, false, nil
	}
	if m, err = c.Mapping(); err != nil {
		return nil, true, err
	}
	m.ICCIDNoCheckDigit = m.ICCIDNoCheckDigit || p.ICCID.NoCheckDigit
	m.ICCIDFPadding = m.ICCIDFPadding || p.ICCID.FPadded
	return m, true, nil
}

// Policy holds a partner's agreed options.
type Policy struct {
	// ResetWithUpdate does the seed's literal order: the reset is the last
	// stage of the IMSI-update message and the handover follows its PoR.
	ResetWithUpdate bool `yaml:"reset_with_update"`
	// PerNightCap limits the cards moved per night (0: no cap).
	PerNightCap int `yaml:"per_night_cap"`
	// MaxAttempts is how often a failed card is retried (default 3).
	MaxAttempts int `yaml:"max_attempts"`
}

// Profiles maps a card profile name to its OTA settings.
type Profiles map[string]*Profile

// Profile describes how one kind of card is changed over the air.
type Profile struct {
	TAR     string `yaml:"tar"` // USIM RFM TAR, 3 bytes hex
	SPI     string `yaml:"spi"` // 2 bytes hex
	KIc     string `yaml:"kic"` // 1 byte hex: algorithm + key version
	KID     string `yaml:"kid"`
	CLA     string `yaml:"cla"`            // 00 (UICC) or A0 (SIM)
	Format  string `yaml:"command_format"` // compact (default) or expanded
	GSMCopy bool   `yaml:"gsm_copy"`       // DF GSM 7F20 keeps its own EF_IMSI
	// Addressing is how the script reaches ADF.USIM's files: adf (the
	// default: the TAR starts in ADF.USIM), adf-only (an ADF RFM that
	// reaches nothing else), 7fff, aid (by USIMAID) or path (3F00/7FFF/…).
	Addressing string       `yaml:"addressing"`
	USIMAID    string       `yaml:"usim_aid"`      // hex, for addressing aid
	ADOffset   int          `yaml:"ad_mnc_offset"` // offset of EF_AD's MNC-length byte (default 3)
	Invalidate []string     `yaml:"invalidate"`    // loci, psloci, epsloci, 5gsloci
	Extra      []FileUpdate `yaml:"extra_updates"`
	Reset      ResetStep    `yaml:"reset"`
	KeyIndex   *KeyIndexCmd `yaml:"key_index"` // 3b only
	Algorithm  string       `yaml:"algorithm"` // milenage, tuak, xor-test…
	ListLength int          `yaml:"list_length"`
	// Rate and Window shape the OTA batch: messages per second and the
	// submission window (HH:MM-HH:MM, local to Zone).
	Rate   int    `yaml:"rate"`
	Window string `yaml:"window"`
	// Zone is the time zone of Window and of the cards' cut-over dates
	// (IANA name; UTC when empty).
	Zone     string   `yaml:"zone"`
	Validity Duration `yaml:"validity"`
	// TestOnly allows an SPI without checksum, counter check or PoR.
	TestOnly bool `yaml:"test_only"`
	// Rotation lets the recipient replace the OTA key set a donor handed
	// over (3a; job kind b-key-rotation).
	Rotation *Rotation `yaml:"rotation"`
}

// FileUpdate is one extra UPDATE BINARY of the IMSI-change script.
type FileUpdate struct {
	Path   string `yaml:"path"` // FIDs from the ADF, e.g. 6F7B
	Offset int    `yaml:"offset"`
	Data   string `yaml:"data"` // hex
}

// ResetStep is the message that makes the card refresh with UICC reset.
type ResetStep struct {
	TAR  string `yaml:"tar"`
	APDU string `yaml:"apdu"`
}

// KeyIndexCmd is the 3b command that moves the card to an absolute key
// index. APDU is a hex template in which "II" stands for the index byte.
type KeyIndexCmd struct {
	TAR     string `yaml:"tar"`
	APDU    string `yaml:"apdu"`
	Effect  string `yaml:"effect"`  // immediate or reset
	Message string `yaml:"message"` // same (appended to the update) or separate
}

// Rotation is a profile's OTA key rotation: GlobalPlatform PUT KEY on
// the card's RAM/ISD TAR, secured under the key set it replaces.
type Rotation struct {
	TAR string `yaml:"tar"` // RAM/ISD TAR, 3 bytes hex (default 000000)
	KVN int    `yaml:"kvn"` // key version written, 1..15; 0 keeps the current one
	// Replace: the new version replaces the old key set (default). false:
	// the new set is added and the old one deleted in the same script
	// (then kvn must name another version).
	Replace *bool `yaml:"replace"`
}

// OTASettings are the donor's OTA defaults.
type OTASettings struct {
	// Originator is our OTA short code, where SMS-SUBMIT PoRs return.
	Originator string `yaml:"originator"`
	// CounterJump is the step taken after a counter-low/high answer.
	CounterJump int `yaml:"counter_jump"`
	// PoRMargin is added to the validity period before a message without
	// PoR becomes unknown.
	PoRMargin Duration `yaml:"por_margin"`
}

// InputLimits bound every input.
type InputLimits struct {
	MaxFileBytes int64 `yaml:"max_file_bytes"` // decompressed
	MaxLineBytes int   `yaml:"max_line_bytes"`
	// MaxRecords and MaxRecordErrors: a file with more records, or more
	// malformed records (empty lines included), is refused as a whole.
	MaxRecords      int64 `yaml:"max_records"`
	MaxRecordErrors int64 `yaml:"max_record_errors"`
	// MaxCiphertextBytes bounds an input as listed on the drop and as
	// downloaded (default derived from MaxFileBytes, see bounds.go).
	MaxCiphertextBytes int64 `yaml:"max_ciphertext_bytes"`
	// QuarantineMaxFiles and QuarantineMaxBytes bound our copies of
	// refused inputs in DATA_DIR/quarantine; the oldest are pruned.
	QuarantineMaxFiles int   `yaml:"quarantine_max_files"`
	QuarantineMaxBytes int64 `yaml:"quarantine_max_bytes"`
}

// HandoverOpts are the recipient's intake settings.
type HandoverOpts struct {
	// AuCTransportKey names the transport key (of the hlr partner) under
	// which Ki and OPc travel in provisioning files.
	AuCTransportKey string `yaml:"auc_transport_key"`
}

// Job is one scheduled job.
type Job struct {
	Name     string   `yaml:"name"`
	Kind     string   `yaml:"kind"`
	Partner  string   `yaml:"partner"`
	Schedule string   `yaml:"schedule"` // cron expression, 5 fields
	Zone     string   `yaml:"zone"`     // IANA zone, default UTC
	Deadline Duration `yaml:"deadline"` // a run must succeed within this
	// Profile is the card profile a job uses where it needs one.
	Profile string `yaml:"profile"`
	// To names further partners a job writes to (e.g. the smsc).
	To map[string]string `yaml:"to"`
}

// Path is the file the configuration came from.
func (c *Config) Path() string { return c.path }

// Duration is a time.Duration written as "30s", "24h".
type Duration time.Duration

// D returns the duration.
func (d Duration) D() time.Duration { return time.Duration(d) }
