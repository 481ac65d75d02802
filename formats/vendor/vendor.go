// Package vendor reads and writes the SIM vendor "output file" that comes
// with a batch of cards: the inventory import of the donor (type name
// inventory in resub check). See README.md for the layout and the variants
// it accepts.
package vendor

import (
	"errors"
	"strconv"
	"strings"
)

// Header is the header block (and the input-variables block) of a vendor
// file.
type Header struct {
	Customer      string
	Quantity      int // -1 when the file does not say
	Type          string
	Profile       string
	Batch         string
	TransportKey  string // reference of the vendor transport key the secrets are encrypted under; "" = clear
	Algorithm     string // authentication algorithm, when the header names it
	KeyListLength int    // 3b: length of the card's key list (0 = not a 3b file)
	// Fields holds every header key as read (lower case, '_' for spaces),
	// Inputs the input variables.
	Fields map[string]string
	Inputs map[string]string
	Lines  map[string]int
}

// KeySet is one OTA key set of a card (KIc, KID, KIK of one key version).
type KeySet struct {
	KVN           int
	KIc, KID, KIK []byte
}

// Card is one record. Secret fields are clear or encrypted under the
// header's TransportKey (Encrypted says which); call Zero when done.
type Card struct {
	Line          int
	ICCID         string // canonical (normalised under the partner's ICCID conventions)
	IMSI          string
	Ki, OPc       []byte
	KeySets       []KeySet
	Counter       int64 // initial OTA counter; -1 when absent
	Algorithm     string
	KeyListLength int               // 3b
	Other         map[string]string // other non-secret columns (e.g. ACC), by upper-case name
	Encrypted     bool
}

// Zero overwrites the card's secrets.
func (c *Card) Zero() {
	clear(c.Ki)
	clear(c.OPc)
	for _, k := range c.KeySets {
		clear(k.KIc)
		clear(k.KID)
		clear(k.KIK)
	}
}

// securityError refuses a file that reveals key material it must not.
type securityError struct{ msg string }

func (e *securityError) Error() string { return e.msg }

// Refused marks the file as refused (exit 1), never processed in part.
func (e *securityError) Refused() bool { return true }

// Errors of this package. Position-carrying problems are
// *native.ParseError values wrapping these or native's sentinels.
var (
	// ErrLaterPair refuses a 3b file that names a column of a key pair
	// beyond index 1: the donor must never see them.
	ErrLaterPair = &securityError{"security: the file reveals a key pair beyond index 1 of a 3b card's key list: refused"}
	ErrNoVarOut  = errors.New("no var_Out line naming the columns")
	ErrColumn    = errors.New("unknown or malformed column name")
	ErrSecret    = errors.New("secret has the wrong length or is not hex")
)

// column is a parsed var_Out column name.
type column struct {
	name   string // upper case as written
	base   string // ICCID, IMSI, KI, OPC, KIC, KID, KIK, CNTR, ALG, LIST_LEN, or OTHER
	num    int    // KICn/KIDn/KIKn key version, KIn/OPCn index (0 = none)
	pair   int    // _Pn suffix (0 = none)
	secret bool
}

// parseColumn names a column. Rules (case-insensitive):
//
//	ICCID IMSI                    identifiers
//	KI OPC                        subscriber key and OPc (pair 1)
//	KIn OPCn                      pair n's (n >= 2 is a later pair)
//	KICn KIDn KIKn                OTA key set of key version n
//	CNTR COUNTER CNTRn            initial OTA counter
//	ALG ALGORITHM                 authentication algorithm
//	LIST_LEN KEY_LIST_LENGTH      3b key-list length
//	<any>_Pn                      the column of key pair n of a 3b key list
//	PIN*, PUK*, ADM*              access codes: read, never kept
//	anything else                 kept as Other
func parseColumn(s string) (column, error) {
	c := column{name: strings.ToUpper(strings.TrimSpace(s))}
	n := c.name
	if n == "" {
		return c, ErrColumn
	}
	if i := strings.LastIndex(n, "_P"); i > 0 {
		if p, err := strconv.Atoi(n[i+2:]); err == nil && p >= 1 {
			c.pair = p
			n = n[:i]
		}
	}
	switch n {
	case "ICCID", "IMSI", "KI", "OPC":
		c.base = n
	case "CNTR", "COUNTER":
		c.base = "CNTR"
	case "ALG", "ALGORITHM":
		c.base = "ALG"
	case "LIST_LEN", "KEY_LIST_LENGTH", "LIST_LENGTH":
		c.base = "LIST_LEN"
	default:
		for _, p := range []string{"KIC", "KID", "KIK", "KI", "OPC", "CNTR"} {
			if rest, ok := strings.CutPrefix(n, p); ok {
				if v, err := strconv.Atoi(rest); err == nil && v >= 1 && v <= 15 && rest[0] != '0' {
					c.base, c.num = p, v
					break
				}
			}
		}
		if c.base == "" {
			c.base = "OTHER"
		}
	}
	switch c.base {
	case "KI", "OPC", "KIC", "KID", "KIK":
		c.secret = true
	}
	if c.base == "OTHER" && (strings.HasPrefix(n, "PIN") || strings.HasPrefix(n, "PUK") || strings.HasPrefix(n, "ADM")) {
		c.secret = true
	}
	return c, nil
}

// laterPair reports whether a column of a 3b file belongs to a pair
// beyond 1: an explicit _Pn with n >= 2, KIn/OPCn with n >= 2, or an OTA
// key of version n >= 2 without an explicit _P1 (fail closed: a 3b
// vendor writes further key sets of pair 1 as KIC2_P1).
func (c column) laterPair() bool {
	switch {
	case c.pair >= 2:
		return true
	case c.pair == 1:
		return false
	case (c.base == "KI" || c.base == "OPC") && c.num >= 2:
		return true
	case (c.base == "KIC" || c.base == "KID" || c.base == "KIK") && c.num >= 2:
		return true
	}
	return false
}
