// Package ident validates and normalises the identifiers and key material
// that resub's files carry: ICCID (ITU-T E.118), IMSI (3GPP TS 23.003) with
// PLMNs and IMSI ranges, MSISDN (ITU-T E.164), hex keys of the length their
// algorithm needs, key versions and key-list indexes.
//
// Every check returns a documented sentinel error (wrapped with detail) so
// that callers use errors.Is; no function panics on any input.
package ident
