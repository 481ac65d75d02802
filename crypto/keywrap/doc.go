// Package keywrap protects secret fields (Ki, OPc, OTA keys) in two places:
// in transit between partners, wrapped under a transport key agreed per
// partner, and at rest in the ledger, sealed under the local master key.
//
// # Transport keys
//
// A [TransportKey] has an ID (named in every wrapped field), the key bytes
// and a mode. Files carry the key's check value ([KCV]) in their header, so
// a wrong key is caught before any record is read. The modes:
//
//   - aes-kwp (default for what we write): AES key wrap with padding,
//     RFC 5649, under an AES-128/192/256 key. Any length from 1 byte;
//     authenticated: a wrong key or a changed byte fails [ErrUnwrap].
//   - aes-kw: AES key wrap, RFC 3394, for plaintext of 16 bytes or more in
//     multiples of 8. Authenticated like aes-kwp. For partners that use it.
//   - aes-gcm: AES-GCM with a random 12-byte nonce; the wrapped bytes are
//     nonce || ciphertext || 16-byte tag and the key ID is the additional
//     data. Authenticated.
//   - aes-cbc-fixed-iv (read for compatibility): AES-CBC without padding
//     under a fixed IV, by default 16 bytes of 0x23, each field (column)
//     encrypted on its own, as one public SIM card tool exchanges card keys.
//     Plaintext must be a multiple of 16 bytes. Not authenticated: a wrong
//     key yields garbage, which only the header's KCV check prevents.
//   - aes-ecb (read for compatibility): AES-ECB without padding, each field
//     on its own, multiples of 16 bytes. Not authenticated; leaks equal
//     blocks.
//   - 3des-ecb (read for compatibility): two- or three-key 3DES-ECB
//     without padding, multiples of 8 bytes (a 16-byte Ki is two blocks), as
//     SIM vendor output files commonly carry it. Not authenticated.
//
// # Field encoding
//
// A wrapped field in our native files is "<keyID>:<lower-case hex of the
// wrapped bytes>", for example "tk-b-2026:1f2e…" ([WrapField],
// [UnwrapField]); hex of either case is accepted on input. A key ID is 1 to
// 64 characters of A-Z a-z 0-9 . _ -.
//
// # Check values
//
// [KCV] is the first 3 bytes of the key's encryption of a zero block: 16
// zero bytes under AES, 8 zero bytes under DES or 3DES ([DESKCV]).
//
// # Master key at rest
//
// A [Sealer] seals values with AES-256-GCM under a 32-byte master key, with
// a random nonce and additional data that binds the blob to its place (for
// example ICCID and field name), so a blob copied to another card or field
// does not open. Each blob names the master key ID that sealed it
// ([KeyID]), so that key rotation can find the blobs still under the old
// key and [Reseal] them under the new one.
//
// Secrets are []byte that the caller owns; functions that return plaintext
// return a fresh slice that the caller should zero ([Zero]) after use. No
// error of this package contains key or plaintext bytes.
package keywrap
