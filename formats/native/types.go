package native

import (
	"fmt"
	"slices"
	"strings"

	"resub/formats/ident"
)

// Field names shared by the types.
const (
	FieldKind          = "kind"
	FieldICCID         = "iccid"
	FieldIMSI          = "imsi"
	FieldMSISDN        = "msisdn"
	FieldKi            = "ki"
	FieldOPc           = "opc"
	FieldAlgorithm     = "algorithm"
	FieldAlgParams     = "alg-params"
	FieldKVN           = "kvn"
	FieldOTAAlg        = "ota-alg"
	FieldKIc           = "kic"
	FieldKID           = "kid"
	FieldKIK           = "kik"
	FieldCounter       = "counter"
	FieldProfile       = "profile"
	FieldKeyIndex      = "key-index"
	FieldKeyListLength = "key-list-length"
	FieldCounterRule   = "counter-rule"
	FieldCutoverDate   = "cutover-date"
	FieldRecipient     = "recipient"
	FieldDonor         = "donor"
	FieldStatus        = "status"
	FieldReason        = "reason"
	FieldDetail        = "detail"
	FieldMessageID     = "message-id"
	FieldTON           = "ton"
	FieldNPI           = "npi"
	FieldOriginator    = "originator"
	FieldPID           = "pid"
	FieldDCS           = "dcs"
	FieldUDHI          = "udhi"
	FieldRegDelivery   = "registered-delivery"
	FieldValidity      = "validity"
	FieldPriority      = "priority"
	FieldNotBefore     = "not-before"
	FieldSegments      = "segments"
	FieldTime          = "time"
	FieldPoR           = "por"
	FieldRequestID     = "request-id"
)

// Record kinds of a handover.
const (
	Kind3a     = "3a"
	Kind3b     = "3b"
	KindCancel = "cancel"
)

// Statuses.
const (
	StatusAccepted    = "accepted"
	StatusRejected    = "rejected"
	StatusCompleted   = "completed"
	StatusFailed      = "failed"
	StatusUnknown     = "unknown"
	StatusProvisioned = "provisioned"
	StatusReleased    = "released"
	StatusRefused     = "refused"
	StatusDelivered   = "delivered"
	StatusExpired     = "expired"
)

// Reason codes of imsi-result, handover-ack and key-response (written in
// upper case). See README.md for when each is used.
var ReasonCodes = []string{
	"UNKNOWN_ICCID",       // the ICCID is not in the receiver's inventory
	"NOT_ACTIVE",          // the card is not active with the donor
	"NOT_AUTHORISED",      // no switch-authorisation for this card to this recipient
	"ALREADY_MOVING",      // the card is already in a subscription change
	"IMSI_NOT_IN_RANGE",   // the new IMSI is not in the recipient's PLMNs and ranges
	"IMSI_IN_USE",         // the new IMSI is already used
	"DATE_PAST",           // the cut-over date is before the business date
	"LIST_EXHAUSTED",      // 3b: the card's key list has no further index
	"DUPLICATE",           // the record repeats another of the same file or an earlier one
	"INVALID_RECORD",      // the record failed validation
	"CANCELLED",           // the move was withdrawn (handover cancel)
	"OTA_FAILED",          // the PoR proves the card did not run the IMSI update, after the retries
	"NO_POR",              // no proof of receipt by the deadline: outcome unknown
	"OTA_INCOMPLETE",      // the PoR proves the EF_IMSI write, a later command failed after the retries: outcome unknown
	"PROVISIONING_FAILED", // the recipient's HLR/AuC refused the subscriber
	"KEY_INDEX",           // 3b: the key index is not the next one of the list
	"INTERNAL",            // the sender's own failure; retry later
}

var (
	secret = func(name, doc string) Field { return Field{Name: name, Kind: Wrapped, Doc: doc} }
	iccid  = Field{Name: FieldICCID, Kind: ICCID, Required: true, Unique: true, Doc: "the card (E.118 with check digit)"}
	// answered is the ICCID of an answer file: it may repeat, since each
	// record of the answered file gets its answer (a repeated record too).
	answered = Field{Name: FieldICCID, Kind: ICCID, Required: true, Doc: "the card the answer is about (repeats where the answered file repeated it)"}
	alg      = Field{Name: FieldAlgorithm, Kind: Enum, Values: ident.AuthAlgs, Doc: "authentication algorithm"}
	kvn      = Field{Name: FieldKVN, Kind: Int, Min: 1, Max: 15, Doc: "OTA key version number of the key set"}
	otaAlg   = Field{Name: FieldOTAAlg, Kind: Enum, Values: ident.CipherAlgs, Doc: "cipher of KIc/KID"}
	kic      = secret(FieldKIc, "OTA ciphering key")
	kid      = secret(FieldKID, "OTA integrity key")
	kik      = secret(FieldKIK, "OTA key-encryption key")
	ctr      = Field{Name: FieldCounter, Kind: Int, Min: 0, Max: 1<<40 - 1, Doc: "OTA replay counter (5 bytes): the highest value the receiver must treat as used (start above it)"}
	prof     = Field{Name: FieldProfile, Kind: ID, Doc: "card profile (commands, file IDs, reset method)"}
	date     = Field{Name: FieldCutoverDate, Kind: Date, Required: true, Doc: "the day the card moves"}
	reason   = Field{Name: FieldReason, Kind: Enum, Values: lowerAll(ReasonCodes), Doc: "reason code (upper case)"}
	detail   = Field{Name: FieldDetail, Kind: Text, Doc: "free text for people"}
)

func lowerAll(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = strings.ToLower(s)
	}
	return out
}

func req(f Field) Field { f.Required = true; return f }

func reqFor(f Field, kinds ...string) Field { f.For = kinds; return f }

func uniq(f Field) Field { f.Unique = true; return f }

// needReason: a reason code is required for the listed statuses.
func needReason(statuses ...string) func(r *Record, add func(string, error)) {
	return func(r *Record, add func(string, error)) {
		st := strings.ToLower(r.Get(FieldStatus))
		for _, s := range statuses {
			if st == s && r.Get(FieldReason) == "" {
				add(FieldReason, fmt.Errorf("%w for status %s", ErrRequired, s))
			}
		}
	}
}

// keyChecks: key index within the list; secrets of the algorithm.
func keyChecks(r *Record, add func(string, error)) {
	if r.Get(FieldKeyIndex) != "" && r.Get(FieldKeyListLength) != "" {
		i, _ := r.Int(FieldKeyIndex)
		n, _ := r.Int(FieldKeyListLength)
		if err := ident.CheckKeyIndex(int(i), int(n)); err != nil {
			add(FieldKeyIndex, err)
		}
	}
	seen := map[string]bool{}
	for _, ks := range r.KeySets() {
		if ks.KVN == "" {
			add(ks.names[0], fmt.Errorf("%w with a key set", ErrRequired))
			continue
		}
		if seen[ks.KVN] {
			add(ks.names[0], fmt.Errorf("%w: key version %s given twice", ErrDuplicate, ks.KVN))
		}
		seen[ks.KVN] = true
	}
}

// MaxKeySets is the number of OTA key sets a record can carry: set 1 in
// kvn, ota-alg, kic, kid, kik, counter; set n in kvn-n, ota-alg-n, ….
const MaxKeySets = 3

var keySetFields = []string{FieldKVN, FieldOTAAlg, FieldKIc, FieldKID, FieldKIK, FieldCounter}

// keySetField names field base of key set n (1-based).
func keySetField(base string, n int) string {
	if n == 1 {
		return base
	}
	return fmt.Sprintf("%s-%d", base, n)
}

// keySetNames are the field names of each key set, worked out once: a
// reader asks for them on every record.
var keySetNames = func() (out [MaxKeySets][]string) {
	for n := range out {
		for _, base := range keySetFields {
			out[n] = append(out[n], keySetField(base, n+1))
		}
	}
	return out
}()

// keySets returns the fields of MaxKeySets key sets (with counters or not).
func keySets(counters bool) []Field {
	var out []Field
	for n := 1; n <= MaxKeySets; n++ {
		for _, f := range []Field{kvn, otaAlg, kic, kid, kik, ctr} {
			if f.Name == FieldCounter && !counters {
				continue
			}
			f.Name = keySetField(f.Name, n)
			if n > 1 {
				f.Doc = fmt.Sprintf("key set %d: %s", n, f.Doc)
			}
			out = append(out, f)
		}
	}
	return out
}

// KeySet is one OTA key set of a record, as written (secrets wrapped).
type KeySet struct {
	KVN, OTAAlg, KIc, KID, KIK, Counter string
	names                               []string
}

// KeySets returns the key sets present in the record (a set is present
// when any of its fields has a value), in column order.
func (r *Record) KeySets() []KeySet {
	var out []KeySet
	for n := 1; n <= MaxKeySets; n++ {
		var v [6]string
		names := keySetNames[n-1]
		any := false
		for i, name := range names {
			v[i] = r.Get(name)
			any = any || v[i] != ""
		}
		if any {
			out = append(out, KeySet{KVN: v[0], OTAAlg: v[1], KIc: v[2], KID: v[3], KIK: v[4], Counter: v[5], names: names})
		}
	}
	return out
}

var (
	Inventory = register(&Schema{
		Name: "inventory", Version: 1, From: "A (after import)", To: "A",
		Doc: "the cards a donor holds, as imported from the SIM vendor's output file",
		Fields: slices.Concat([]Field{
			iccid,
			uniq(req(Field{Name: FieldIMSI, Kind: IMSI, Doc: "current IMSI"})),
			req(secret(FieldKi, "subscriber key")),
			secret(FieldOPc, "OPc (TOPc for TUAK)"),
			req(alg),
			{Name: FieldAlgParams, Kind: Text, Doc: "algorithm parameters (e.g. MILENAGE r/c constants, TUAK iterations)"},
		}, keySets(true), []Field{
			req(prof),
			{Name: FieldKeyIndex, Kind: Int, Min: 1, Max: 255, Doc: "3b: the card's current key-list index"},
			{Name: FieldKeyListLength, Kind: Int, Min: 1, Max: 255, Doc: "3b: the key list's length"},
		}),
		Check: keyChecks,
	})
	MSISDNMap = register(&Schema{
		Name: "msisdn-map", Version: 1, From: "A's BSS/HLR", To: "A",
		Fields: []Field{iccid, uniq(req(Field{Name: FieldIMSI, Kind: IMSI})), uniq(req(Field{Name: FieldMSISDN, Kind: MSISDN}))},
	})
	SwitchRequest = register(&Schema{
		Name: "switch-request", Version: 1, From: "M2M operator", To: "B",
		Fields: []Field{iccid, date, {Name: FieldDonor, Kind: ID, Doc: "the donor operator, when the M2M operator names it"}},
	})
	SwitchAuthorisation = register(&Schema{
		Name: "switch-authorisation", Version: 1, From: "M2M operator", To: "A",
		Fields: []Field{iccid, req(Field{Name: FieldRecipient, Kind: ID, Doc: "the recipient operator"}), date},
	})
	IMSIList = register(&Schema{
		Name: "imsi-list", Version: 1, From: "B", To: "A",
		Fields: []Field{iccid, uniq(req(Field{Name: FieldIMSI, Kind: IMSI, InRanges: true, Doc: "the new IMSI, from the sender's ranges"})), date},
	})
	IMSIResult = register(&Schema{
		Name: "imsi-result", Version: 1, From: "A", To: "B",
		Fields: []Field{
			answered,
			{Name: FieldIMSI, Kind: IMSI, Doc: "the new IMSI the result is about"},
			req(Field{Name: FieldStatus, Kind: Enum, Values: []string{StatusAccepted, StatusRejected, StatusCompleted, StatusFailed, StatusUnknown}}),
			reason, detail,
		},
		Check: needReason(StatusRejected, StatusFailed),
	})
	OTABatch = register(&Schema{
		Name: "ota-batch", Version: 1, From: "A", To: "SMSC",
		Header: []HeaderField{
			{Name: "max-rate", Required: true, Doc: "maximum messages per second"},
			{Name: "window", Required: true, Doc: "submission window HH:MM-HH:MM (UTC), the sender's local window converted for the night the batch is made"},
		},
		Fields: []Field{
			req(Field{Name: FieldMessageID, Kind: ID, Doc: "unique per sender"}),
			{Name: FieldICCID, Kind: ICCID, Doc: "the card (for reports; the SMSC ignores it)"},
			req(Field{Name: FieldMSISDN, Kind: MSISDN, Doc: "destination"}),
			req(Field{Name: FieldTON, Kind: Int, Min: 0, Max: 7, Doc: "destination type of number (1 international)"}),
			req(Field{Name: FieldNPI, Kind: Int, Min: 0, Max: 15, Doc: "destination numbering plan (1 E.164)"}),
			req(Field{Name: FieldOriginator, Kind: ID, Doc: "originator address: the donor's OTA short code"}),
			req(Field{Name: FieldPID, Kind: Enum, Values: []string{"7f"}, Doc: "TP-PID: 7f (SIM data download)"}),
			req(Field{Name: FieldDCS, Kind: Enum, Values: []string{"f6"}, Doc: "TP-DCS: f6 (8-bit, class 2)"}),
			req(Field{Name: FieldUDHI, Kind: Bool, Doc: "TP-UDHI: user data starts with a header"}),
			req(Field{Name: FieldRegDelivery, Kind: Bool, Doc: "status report requested"}),
			{Name: FieldValidity, Kind: Int, Min: 60, Max: 63 * 7 * 86400, Doc: "validity period in seconds"},
			{Name: FieldPriority, Kind: Int, Min: 0, Max: 3, Doc: "priority 0 (lowest) to 3"},
			{Name: FieldNotBefore, Kind: Time, Doc: "do not submit before (the card's cut-over date, or a later night beyond the per-night cap)"},
			req(Field{Name: FieldSegments, Kind: Segments, MaxLen: 140, Doc: "TP-UD of each SMS, in order, hex, separated by one space"}),
		},
	})
	OTAReport = register(&Schema{
		Name: "ota-report", Version: 1, From: "SMSC", To: "A",
		Fields: []Field{
			req(Field{Name: FieldMessageID, Kind: ID}),
			req(Field{Name: FieldMSISDN, Kind: MSISDN}),
			req(Field{Name: FieldStatus, Kind: Enum, Values: []string{StatusDelivered, StatusFailed, StatusExpired, StatusRejected, StatusUnknown}, Doc: "delivery status"}),
			req(Field{Name: FieldTime, Kind: Time, Doc: "when the status was reached"}),
			{Name: FieldPoR, Kind: Hex, MaxLen: 140, Doc: "TP-UD of the card's response packet (PoR), if any"},
			detail,
		},
	})
	Handover = register(&Schema{
		Name: "handover", Version: 1, From: "A", To: "B", KindField: FieldKind,
		Fields: slices.Concat([]Field{
			req(Field{Name: FieldKind, Kind: Enum, Values: []string{Kind3a, Kind3b, KindCancel}, Doc: "3a, 3b or cancel (a withdrawn card)"}),
			iccid,
			reqFor(uniq(Field{Name: FieldIMSI, Kind: IMSI, Doc: "the new IMSI"}), Kind3a, Kind3b),
			reqFor(Field{Name: FieldMSISDN, Kind: MSISDN}, Kind3a, Kind3b),
			reqFor(secret(FieldKi, "subscriber key"), Kind3a),
			secret(FieldOPc, "OPc (TOPc for TUAK)"),
			reqFor(alg, Kind3a),
			{Name: FieldAlgParams, Kind: Text},
		}, keySets(true), []Field{
			reqFor(prof, Kind3a, Kind3b),
			reqFor(Field{Name: FieldKeyIndex, Kind: Int, Min: 1, Max: 255, Doc: "3b: the index B now holds"}, Kind3b),
			reqFor(Field{Name: FieldKeyListLength, Kind: Int, Min: 1, Max: 255}, Kind3b),
			reqFor(Field{Name: FieldCounterRule, Kind: Enum, Values: []string{"continue", "reset"}, Doc: "3b: OTA counter after the key change"}, Kind3b),
			reason, detail,
		}),
		Check: keyChecks,
	})
	HandoverAck = register(&Schema{
		Name: "handover-ack", Version: 1, From: "B", To: "A",
		Fields: []Field{
			answered,
			req(Field{Name: FieldStatus, Kind: Enum, Values: []string{StatusProvisioned, StatusRejected}}),
			reason, detail,
		},
		Check: needReason(StatusRejected),
	})
	KeyRelease = register(&Schema{
		Name: "key-release", Version: 1, From: "holder of index n-1", To: "manufacturer",
		Fields: []Field{
			iccid,
			req(Field{Name: FieldKeyIndex, Kind: Int, Min: 2, Max: 255, Doc: "the index released (n >= 2)"}),
			req(Field{Name: FieldRecipient, Kind: ID, Doc: "the operator that may fetch index n"}),
		},
	})
	KeyRequest = register(&Schema{
		Name: "key-request", Version: 1, From: "B", To: "manufacturer",
		Fields: []Field{
			req(Field{Name: FieldRequestID, Kind: ID}),
			iccid,
			req(Field{Name: FieldKeyIndex, Kind: Int, Min: 1, Max: 255}),
		},
	})
	KeyResponse = register(&Schema{
		Name: "key-response", Version: 1, From: "manufacturer", To: "B", KindField: FieldStatus,
		Fields: slices.Concat([]Field{
			req(Field{Name: FieldRequestID, Kind: ID}),
			answered,
			req(Field{Name: FieldKeyIndex, Kind: Int, Min: 1, Max: 255}),
			req(Field{Name: FieldStatus, Kind: Enum, Values: []string{StatusReleased, StatusRefused}}),
			reason,
			reqFor(secret(FieldKi, "subscriber key of that index"), StatusReleased),
			secret(FieldOPc, "OPc of that index"),
			reqFor(alg, StatusReleased),
			{Name: FieldAlgParams, Kind: Text},
		}, keySets(false)),
		Check: func(r *Record, add func(string, error)) {
			needReason(StatusRefused)(r, add)
			keyChecks(r, add)
		},
	})
	Provisioning = register(&Schema{
		Name: "provisioning", Version: 1, From: "B", To: "B's HLR/AuC",
		Fields: []Field{
			iccid,
			uniq(req(Field{Name: FieldIMSI, Kind: IMSI})),
			req(Field{Name: FieldMSISDN, Kind: MSISDN}),
			req(secret(FieldKi, "wrapped under the AuC transport key")),
			secret(FieldOPc, "wrapped under the AuC transport key"),
			req(alg),
			{Name: FieldAlgParams, Kind: Text},
		},
	})
)
