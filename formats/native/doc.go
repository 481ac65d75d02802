// Package native reads, writes and validates resub's native file layout,
// one schema per type name (inventory, msisdn-map, switch-request,
// switch-authorisation, imsi-list, imsi-result, ota-batch, ota-report,
// handover, handover-ack, key-release, key-request, key-response,
// provisioning).
//
// A file is UTF-8 text, LF line ends, no BOM: header lines "#key: value",
// then one column line naming the fields, then one record a line with
// values separated by '|'. README.md is the specification, with a worked
// example of every type; the samples directory holds one valid file each.
//
//	#format: imsi-list
//	#version: 1
//	#sender: MNOB
//	#receiver: MNOA
//	#business-date: 2026-11-30
//	#sequence: 1
//	#created: 2026-11-30T06:00:00Z
//	#batch: B-20261130-1
//	#quantity: 1
//	iccid|imsi|cutover-date
//	8999901000000000013|999990000000001|2026-12-07
//
// Reader streams: it holds one line (bounded by Options.MaxLineLength)
// and, for duplicate detection, 8 to 16 bytes per record and unique
// field. It parses tolerantly and reports every problem as a *ParseError
// naming file, line and field; a record with problems is still returned.
// Header checks call the caller's hooks (Options): the last sequence
// number, the files we sent, the transport keys' check values. A wrong
// KCV or an unknown key refuses the file before any record is read.
package native
