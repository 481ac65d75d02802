// Package drop moves files between resub and a partner's drop: a local
// folder or an SFTP server.
//
// A drop has four folders. The partner writes into the inbox, resub
// delivers into the outbox, and after processing each input moves to the
// archive or, when it was refused, to the quarantine. Inputs are never
// deleted.
//
// Every implementation guarantees:
//   - Put is atomic: the data goes to a temporary name in the outbox, its
//     size is verified, and only then is it renamed to its final name, so
//     the partner never sees a half-written file under the final name;
//   - names that come from the partner are data: List skips, and Open, Put
//     and Move refuse, a name with a path separator, a dot-dot, a control
//     character or invalid UTF-8 (see CheckName);
//   - Open reads regular files only: a name that is, or has become, a
//     FIFO, device, directory or symbolic link fails with ErrNotRegular
//     without blocking; a local drop opens without following links and
//     without waiting for a writer, then checks the opened file;
//   - Move moves the file Open read, or nothing: a file replaced (or
//     rewritten) under the same name since fails with ErrReplaced and
//     stays in the inbox;
//   - errors worth retrying (a lost connection, a peer that does not
//     answer) implement Temporary() bool, configuration problems (an
//     unknown host key, a refused login) implement ConfigError() bool.
//
// Behaviour shared by all drops lives in wrappers around the interface:
// Retry (reconnect and retry with backoff), Logged (a structured log line
// per pickup, delivery, move and failure) and Picker (pickup of complete
// files only).
package drop

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Folder names one of a drop's folders.
type Folder int

const (
	Inbox Folder = iota
	Outbox
	Archive
	Quarantine
)

func (f Folder) String() string {
	switch f {
	case Inbox:
		return "inbox"
	case Outbox:
		return "outbox"
	case Archive:
		return "archive"
	case Quarantine:
		return "quarantine"
	}
	return "folder(" + strconv.Itoa(int(f)) + ")"
}

// FileInfo describes a regular file in the inbox.
type FileInfo struct {
	Name    string
	Size    int64
	ModTime time.Time
}

// Drop is a partner's drop.
type Drop interface {
	// List returns the regular files of the inbox whose names pass
	// CheckName, sorted by name.
	List(ctx context.Context) ([]FileInfo, error)
	// Open streams a file of the inbox.
	Open(ctx context.Context, name string) (io.ReadCloser, error)
	// Put delivers size bytes from r to the outbox under name, atomically.
	// An existing file of that name is replaced where the server allows it.
	Put(ctx context.Context, name string, r io.Reader, size int64) error
	// Move moves a file of the inbox to the archive or the quarantine. A
	// file of the same name already there is kept: the moved file then
	// gets a time suffix. When the name was opened before, Move checks
	// that it still names the file that was read (ErrReplaced if not).
	Move(ctx context.Context, name string, to Folder) error
	// Close releases the drop's resources. An SFTP drop may be used
	// again after Close: it reconnects.
	Close() error
}

// MaxNameLen bounds a file name, in bytes.
const MaxNameLen = 255

// ErrBadName is the sentinel of names refused by CheckName.
var ErrBadName = errors.New("drop: unsafe file name")

// ErrNotRegular is the sentinel of a name that is not, or is no longer,
// a regular file (a FIFO, a device, a directory or a symbolic link put
// in its place). Open refuses such a name before reading a byte.
var ErrNotRegular = errors.New("drop: not a regular file")

// ErrReplaced is the sentinel of Move finding, under the name, a file
// other than the one Open read (replaced or rewritten in between): the
// new file stays in the inbox for the next run, and nothing is moved.
var ErrReplaced = errors.New("drop: file replaced since it was read")

// CheckName reports whether name is a plain file name that is safe to use
// as a local path component and to print: not empty, not "." or "..", at
// most MaxNameLen bytes of valid UTF-8, without '/', '\\', NUL or any other
// control character.
func CheckName(name string) error {
	bad := func(why string) error {
		return fmt.Errorf("%w %s: %s", ErrBadName, SafeName(name), why)
	}
	switch {
	case name == "":
		return bad("empty")
	case name == "." || name == "..":
		return bad("a directory reference")
	case len(name) > MaxNameLen:
		return bad("too long")
	case !utf8.ValidString(name):
		return bad("not UTF-8")
	case strings.ContainsAny(name, `/\`):
		return bad("contains a path separator")
	}
	for _, r := range name {
		if unicode.IsControl(r) || r == utf8.RuneError || unicode.Is(unicode.Bidi_Control, r) {
			return bad("contains a control character")
		}
	}
	return nil
}

// SafeName returns name quoted for logs and messages: control characters,
// invalid UTF-8 and bidirectional controls are escaped, and the result is
// cut at 2*MaxNameLen bytes.
func SafeName(name string) string {
	if len(name) > 2*MaxNameLen {
		name = name[:2*MaxNameLen]
	}
	return strconv.QuoteToGraphic(name)
}

// LogName returns name for a structured log attribute: as it is when it
// passes CheckName, otherwise escaped as SafeName does, but without the
// quotes (the log handler quotes values itself).
func LogName(name string) string {
	if CheckName(name) == nil {
		return name
	}
	q := SafeName(name)
	return q[1 : len(q)-1]
}

// TemporaryError is a failure worth retrying later: the peer was
// unreachable, the connection broke, or a lock was held.
type TemporaryError struct {
	Op  string // "dial", "list", "open", "read", "put", "move", ...
	Err error
}

func (e *TemporaryError) Error() string { return "drop: " + e.Op + ": " + e.Err.Error() }
func (e *TemporaryError) Unwrap() error { return e.Err }

// Temporary reports true: the operation may succeed if retried.
func (e *TemporaryError) Temporary() bool { return true }

// IsTemporary reports whether err, or an error it wraps, says it is
// temporary.
func IsTemporary(err error) bool {
	var t interface{ Temporary() bool }
	return errors.As(err, &t) && t.Temporary()
}

// ConfigError is a problem only a change of configuration can fix (a
// missing key file, an unknown host, a refused login).
type ConfigError struct {
	Err error
}

func (e *ConfigError) Error() string { return "drop: " + e.Err.Error() }
func (e *ConfigError) Unwrap() error { return e.Err }

// ConfigError reports true.
func (e *ConfigError) ConfigError() bool { return true }

// archiveName is the name a moved file gets when name is already taken in
// the target folder.
func archiveName(name string, now time.Time) string {
	return name + "." + now.UTC().Format("20060102T150405.000000000Z")
}

func errNoFolder(f Folder) error {
	return &ConfigError{fmt.Errorf("this drop has no %s", f)}
}
