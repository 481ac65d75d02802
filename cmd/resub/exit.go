package main

import (
	"context"
	"errors"
	"fmt"
)

// The exit codes of the CLI contract.
const (
	exitOK        = 0 // done (records rejected and reported back still count as done)
	exitRefused   = 1 // a file was refused (validation, signature, decryption) and quarantined
	exitUsage     = 2 // usage or configuration error
	exitTransient = 3 // transient failure (peer unreachable, lock held): safe to retry
)

// usageError marks a usage or configuration problem (exit 2).
type usageError struct{ err error }

func (u usageError) Error() string { return u.err.Error() }
func (u usageError) Unwrap() error { return u.err }

func usagef(format string, a ...any) error { return usageError{fmt.Errorf(format, a...)} }

// silentError carries an exit code for a problem that was already printed.
type silentError struct{ err error }

func (s silentError) Error() string { return s.err.Error() }
func (s silentError) Unwrap() error { return s.err }

// refusedError marks a refused input (exit 1) for errors built in cmd.
type refusedError struct{ err error }

func (r refusedError) Error() string { return r.err.Error() }
func (r refusedError) Unwrap() error { return r.err }

// Lower packages classify their errors by behaviour, so that they need not
// import cmd: an error (or one it wraps) with one of these methods says
// which class it is.
type (
	refuser   interface{ Refused() bool }
	temporary interface{ Temporary() bool }
	configErr interface{ ConfigError() bool }
)

// exitCode is the one map from errors to exit codes.
func exitCode(err error) int {
	if err == nil {
		return exitOK
	}
	var u usageError
	if errors.As(err, &u) {
		return exitUsage
	}
	var c configErr
	if errors.As(err, &c) && c.ConfigError() {
		return exitUsage
	}
	var r refusedError
	if errors.As(err, &r) {
		return exitRefused
	}
	var rf refuser
	if errors.As(err, &rf) && rf.Refused() {
		return exitRefused
	}
	var t temporary
	if errors.As(err, &t) && t.Temporary() {
		return exitTransient
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return exitTransient
	}
	// Anything unclassified is treated as transient: the run did not
	// complete, nothing was acknowledged, and a rerun is the safe answer.
	return exitTransient
}
