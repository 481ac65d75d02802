package keywrap

// refusal is a problem with an input file's wrapped data (exit 1).
type refusal string

func (r refusal) Error() string { return string(r) }

// Refused reports that the error is a refused input file.
func (r refusal) Refused() bool { return true }

// configError is a problem with configured keys (exit 2).
type configError string

func (c configError) Error() string { return string(c) }

// ConfigError reports that the error is a configuration problem.
func (c configError) ConfigError() bool { return true }

// Errors of wrapped fields in input files.
var (
	ErrBadField    error = refusal("keywrap: malformed wrapped field (want KEYID:HEX)")
	ErrUnknownKey  error = refusal("keywrap: field is wrapped under a transport key that is not configured for this partner")
	ErrUnwrap      error = refusal("keywrap: unwrap failed: wrong transport key or tampered field")
	ErrBadLength   error = refusal("keywrap: wrapped data has a length this mode cannot have")
	ErrKCVMismatch error = refusal("keywrap: key check value does not match the configured transport key")
)

// Errors of configured keys.
var (
	ErrBadKey  error = configError("keywrap: key has the wrong length for its mode")
	ErrBadMode error = configError("keywrap: unknown transport key mode")
	ErrBadID   error = configError("keywrap: key ID must be 1-64 characters of A-Z a-z 0-9 . _ -")
)

// Errors of sealed blobs at rest.
var (
	// ErrOtherMasterKey: the blob is sealed under another master key ID.
	ErrOtherMasterKey error = configError("keywrap: blob is sealed under another master key")
	// ErrSealBroken: the blob does not open under its master key and
	// context: corrupted, moved to another context, or a wrong key
	// configured under the right ID.
	ErrSealBroken = sealError("keywrap: sealed blob does not authenticate (wrong master key, wrong context or corrupted)")
	ErrBadBlob    = sealError("keywrap: not a sealed blob")
)

type sealError string

func (s sealError) Error() string { return string(s) }
