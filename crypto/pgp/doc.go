// Package pgp is the OpenPGP layer of resub: reading and generating keys,
// decrypting and verifying partner files, encrypting and signing ours, in
// packets that GnuPG 2.2 reads and writes.
//
// # Verify before use
//
// A signature is only known after the last byte of a message, so [Open]
// reads a message twice. The first pass reads the local ciphertext to EOF,
// records its SHA-256, decrypts it with our keys, checks its integrity
// (MDC), its size and nesting limits and its signature, and discards the
// plaintext. Only when every check passed does it return a [Verified]; its
// [Verified.Plaintext] then streams a second pass, which repeats every check
// and additionally requires the ciphertext to be byte-for-byte the one
// verified (same SHA-256 and length). A consumer must treat an error from
// the second pass, which can arrive at its very end, as a refusal of the
// whole file.
//
// With [DecryptOptions.ScratchDir] set, pass 1 also keeps the plaintext in
// a scratch file sealed in AES-256-GCM chunks under a key that lives only
// in memory, and pass 2 streams that copy back (failing on any change of
// it) instead of decrypting and decompressing the message again; no
// plaintext reaches the disk either way. [Verified.Close] removes it.
//
// # Pinned signers
//
// A message must carry a signature, and that signature must be made by one
// of the keys pinned for the partner ([DecryptOptions.Signers], optionally
// narrowed to fingerprints in [DecryptOptions.Fingerprints]). Our own
// decryption keys are never accepted as signers, even if the caller pins
// them by mistake: a file we signed coming back to us is a reflection, not
// a partner's file. Signatures over SHA-1 (or weaker) are refused, as are
// signatures by expired or revoked keys, judged at the injected clock.
//
// # Refusals
//
// Every reason a file is refused has its own sentinel error, matched with
// [errors.Is]: [ErrNotPGP], [ErrNotEncrypted], [ErrUnsigned],
// [ErrUnknownSigner], [ErrBadSignature], [ErrTruncated], [ErrWrongRecipient],
// [ErrKeyExpired], [ErrFutureSig], [ErrKeyRevoked], [ErrWeakHash], [ErrTooLarge],
// [ErrTooDeep] and [ErrChanged]. Each implements Refused() bool returning
// true, which the CLI maps to exit code 1. The library below masks several
// of these causes as one "parsing error" to avoid oracles; this package
// recovers the precise reason from what it observed itself (bytes counted
// against the cap, nesting counted while unpacking, end of input reached
// early), and records it only after the message has been refused.
//
// # Writing
//
// [Encrypt] always uses AES-256 in a SEIPD v1 packet with MDC (never AEAD,
// never v6 keys, so GnuPG 2.2 reads it), a SHA-256 (or stronger) one-pass
// signature, optional ASCII armor and optional ZIP or ZLIB compression.
// [Encrypt] refuses a recipient key that is revoked or expired
// ([ErrNoEncryptionKey]); [Key.EncryptionProblem] says so ahead of time, so
// that a caller can leave such a key out or refuse at start-up.
// [GenerateKey] makes v4 keys (Ed25519/Cv25519 legacy or RSA) that GnuPG 2.2
// imports.
package pgp
