// Package smpp is resub's SMSC transport over SMPP 3.4: it binds to the
// SMSC as an ESME, submits OTA segments with submit_sm (at most Window
// awaiting their response, at most Rate per second), answers
// enquire_link, and takes delivery receipts and the cards' proofs of
// receipt (mobile-originated deliver_sm) back on the same session.
//
// What to submit and what comes back means nothing here: a Store (the
// processor, through the runtime) hands out segments already recorded as
// being submitted, and records each response and each deliver_sm
// durably before the session answers or forgets it.
//
// The PDUs are encoded and decoded by github.com/linxGnu/gosmpp/pdu. Its
// session layer is not used: it answers deliver_sm by itself (before the
// ledger could record what came), keeps no per-request outcome across a
// lost connection, and tracks requests in caches resub does not need; the
// session logic here is small and owns those rules.
package smpp

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/linxGnu/gosmpp/data"
)

// Address is an SMPP address.
type Address struct {
	TON, NPI byte
	Addr     string
}

// Key names one segment: the message (its ledger ID) and the segment's
// position in it (1-based).
type Key struct {
	Message int64
	Seq     int
}

// Segment is one submit_sm to send.
type Segment struct {
	Key
	Dest Address
	// UD is the TP-UD: the UDH and the (part of the) command packet.
	UD       []byte
	Validity time.Duration
	Priority byte
	// Last is set on a message's last segment.
	Last bool
}

// Result is what became of one submitted segment.
type Result struct {
	Key
	// Status is the submit_sm_resp command_status (0: accepted).
	Status uint32
	// SMSCID is the message_id the SMSC gave the segment.
	SMSCID string
	// Unknown: the submit_sm went out but no response came (the
	// connection was lost or timed out): the SMSC may have taken it.
	Unknown bool
	// NotSent: the segment was handed out but never written (the
	// session ended first).
	NotSent bool
}

// Receipt is a delivery receipt (esm_class 0x04).
type Receipt struct {
	SMSCID string
	// State is the message state: DELIVRD, EXPIRED, DELETED, UNDELIV,
	// ACCEPTD, UNKNOWN, REJECTD or ENROUTE.
	State string
	Err   string
	// Dest is where the receipted message went (the receipt's source).
	Dest Address
}

// Inbound is one deliver_sm as received.
type Inbound struct {
	From, To Address
	ESMClass byte
	PID, DCS byte
	// UD is the short message (with its UDH when UDHI is set), or the
	// message_payload TLV.
	UD      []byte
	Receipt *Receipt
	// Bad says why the PDU could not be parsed (it is still answered).
	Bad string
}

// Store is the ledger side of a session.
type Store interface {
	// Next hands out up to n segments that are due, already recorded as
	// being submitted, a message's segments together and in order.
	Next(ctx context.Context, n int) ([]Segment, error)
	// Submitted records what became of submitted segments; it returns
	// once that is durable.
	Submitted(ctx context.Context, rs []Result) error
	// Received records what deliver_sm carried; it returns once that is
	// durable. Only then is each answered.
	Received(ctx context.Context, in []Inbound) error
	// Pending counts the messages still awaited (submitted, no PoR yet,
	// deadline not passed).
	Pending(ctx context.Context) (int, error)
}

// Metrics hears what a session does (all may be nil).
type Metrics struct {
	Submitted func(n int)
	Throttled func()
	Receipt   func(state string)
	MO        func()
	Bad       func()
	InFlight  func(n int)
	Up        func(up bool)
}

// Config is how to reach and bind to the SMSC.
type Config struct {
	Addr       string
	SystemID   string
	Password   []byte
	SystemType string
	// Split binds a transmitter and a receiver instead of one
	// transceiver.
	Split       bool
	Source      Address
	Window      int
	Rate        int
	EnquireLink time.Duration
	Timeout     time.Duration
	// TLS, when set, dials TLS with this configuration.
	TLS TLSConfig
}

// BindError is a bind the SMSC refused (bad credentials, not allowed):
// retrying does not help.
type BindError struct {
	Status uint32
}

func (e *BindError) Error() string {
	return fmt.Sprintf("SMSC refused the bind: %s (0x%08x)", StatusName(e.Status), e.Status)
}

// ConfigError marks the error as a configuration problem (exit 2).
func (e *BindError) ConfigError() bool { return true }

// UnreachableError is an SMSC that could not be reached or bound in
// time: try again later.
type UnreachableError struct{ Err error }

func (e *UnreachableError) Error() string { return "SMSC unreachable: " + e.Err.Error() }
func (e *UnreachableError) Unwrap() error { return e.Err }

// Temporary marks the error as worth retrying (exit 3).
func (e *UnreachableError) Temporary() bool { return true }

// StatusName names an SMPP command_status.
func StatusName(s uint32) string {
	return data.CommandStatusType(s).String()
}

// Command statuses the session acts on.
const (
	StatusOK        = uint32(data.ESME_ROK)
	StatusThrottled = uint32(data.ESME_RTHROTTLED)
	StatusQueueFull = uint32(data.ESME_RMSGQFUL)
)

// errLost is a session that ended under its feet.
var errLost = errors.New("SMPP session lost")
