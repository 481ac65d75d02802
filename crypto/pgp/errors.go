package pgp

import "errors"

// refusal is a sentinel for a refused input file.
type refusal string

func (r refusal) Error() string { return string(r) }

// Refused reports that the error is a refused input file (exit code 1).
func (r refusal) Refused() bool { return true }

// Reasons a message is refused. Match with errors.Is.
var (
	ErrNotPGP         error = refusal("pgp: not an OpenPGP message, or garbled")
	ErrNotEncrypted   error = refusal("pgp: message is not encrypted with integrity protection")
	ErrUnsigned       error = refusal("pgp: message is not signed")
	ErrUnknownSigner  error = refusal("pgp: message is signed by a key that is not pinned for this partner")
	ErrBadSignature   error = refusal("pgp: bad signature or tampered message")
	ErrTruncated      error = refusal("pgp: message is truncated")
	ErrWrongRecipient error = refusal("pgp: message is not encrypted to any of our keys")
	ErrKeyExpired     error = refusal("pgp: signer key or signature expired")
	ErrFutureSig      error = refusal("pgp: signature made in the future")
	ErrKeyRevoked     error = refusal("pgp: signer key is revoked")
	ErrWeakHash       error = refusal("pgp: signature uses a weak hash (SHA-1 or older)")
	ErrTooLarge       error = refusal("pgp: decompressed message exceeds the size cap")
	ErrTooDeep        error = refusal("pgp: packets nested too deeply")
	ErrChanged        error = refusal("pgp: ciphertext changed between verification and use")
)

// Errors about keys given by the caller: configuration problems, not
// refused files.
var (
	ErrKeyLocked     error = keyError("pgp: secret key is passphrase-protected and no passphrase was given")
	ErrBadPassphrase error = keyError("pgp: wrong passphrase for secret key")
	ErrNoSecretKey   error = keyError("pgp: key has no secret part")
	ErrNoKeys        error = keyError("pgp: no keys given")
	ErrBadKey        error = keyError("pgp: unusable key")
	// ErrNoEncryptionKey: a recipient's key is revoked or expired, or has
	// no encryption subkey.
	ErrNoEncryptionKey error = keyError("pgp: no valid encryption key")
)

// keyError is a sentinel for a key problem (exit code 2).
type keyError string

func (k keyError) Error() string { return string(k) }

// ConfigError reports that the error is a configuration problem.
func (k keyError) ConfigError() bool { return true }

// Error is a refusal or key problem with its detail. It unwraps to one of
// the sentinels of this package, which decides its class; Detail never
// contains plaintext or secrets.
type Error struct {
	Reason error  // one of the Err* sentinels
	Detail string // what was observed, for the log
	Err    error  // the underlying library error, if any
}

func (e *Error) Error() string {
	s := e.Reason.Error()
	if e.Detail != "" {
		s += ": " + e.Detail
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Unwrap returns the sentinel and the underlying error.
func (e *Error) Unwrap() []error {
	if e.Err == nil {
		return []error{e.Reason}
	}
	return []error{e.Reason, e.Err}
}

// Refused reports whether the error is a refused input file.
func (e *Error) Refused() bool {
	var r refusal
	return errors.As(e.Reason, &r)
}

// ConfigError reports whether the error is a key or configuration problem.
func (e *Error) ConfigError() bool {
	var k keyError
	return errors.As(e.Reason, &k)
}

func refuse(reason error, detail string, err error) error {
	return &Error{Reason: reason, Detail: detail, Err: err}
}
