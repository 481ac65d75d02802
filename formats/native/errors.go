package native

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// ParseError is a problem at a position of a file: its name, its 1-based
// line (0 when the problem is the file as a whole) and the field, header
// key or column concerned ("" when the line as a whole is wrong).
type ParseError struct {
	File  string
	Line  int
	Field string
	Err   error
}

// Error formats the problem as FILE:LINE: field: message; the field is
// "line" for a problem of the whole line, "file" for one of the file.
func (e *ParseError) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	b.WriteByte(':')
	b.WriteString(strconv.Itoa(e.Line))
	b.WriteString(": ")
	switch {
	case e.Field != "":
		b.WriteString(e.Field)
	case e.Line == 0:
		b.WriteString("file")
	default:
		b.WriteString("line")
	}
	b.WriteString(": ")
	b.WriteString(e.Err.Error())
	return b.String()
}

// Unwrap returns the cause, one of the sentinels below or of package ident.
func (e *ParseError) Unwrap() error { return e.Err }

// ErrorList is several problems of one record or of the header, in order.
type ErrorList []*ParseError

// Error joins the problems, one a line.
func (l ErrorList) Error() string {
	s := make([]string, len(l))
	for i, e := range l {
		s[i] = e.Error()
	}
	return strings.Join(s, "\n")
}

// Unwrap lets errors.Is and errors.As see every problem.
func (l ErrorList) Unwrap() []error {
	out := make([]error, len(l))
	for i, e := range l {
		out[i] = e
	}
	return out
}

// Problems flattens err (a *ParseError, an ErrorList, or a join of them)
// into its position-carrying problems; anything else is returned as a
// problem without position.
func Problems(err error) []*ParseError {
	if err == nil {
		return nil
	}
	var out []*ParseError
	var walk func(error)
	walk = func(e error) {
		switch v := e.(type) {
		case *ParseError:
			out = append(out, v)
		case ErrorList:
			out = append(out, v...)
		case interface{ Unwrap() []error }:
			for _, x := range v.Unwrap() {
				walk(x)
			}
		case interface{ Unwrap() error }:
			var pe *ParseError
			if errors.As(e, &pe) {
				walk(v.Unwrap())
				return
			}
			out = append(out, &ParseError{Err: e})
		default:
			out = append(out, &ParseError{Err: e})
		}
	}
	walk(err)
	return out
}

// Recoverable reports whether a Reader error concerns one record or the
// header only (a *ParseError or ErrorList): the caller may keep reading.
// Anything else (io.EOF, an I/O error, a refused file, problems that end
// the file) ends the file.
func Recoverable(err error) bool {
	switch err.(type) {
	case *ParseError, ErrorList:
		return !isRefusal(err)
	}
	return false
}

// Fatal marks problems after which a file cannot be read further: the
// result is not Recoverable, and Problems still lists them.
func Fatal(problems ...*ParseError) error { return &fatalError{problems} }

type fatalError struct{ list ErrorList }

func (f *fatalError) Error() string   { return f.list.Error() }
func (f *fatalError) Unwrap() []error { return f.list.Unwrap() }

// refusal is a sentinel that refuses the whole file.
type refusal struct{ msg string }

func (r *refusal) Error() string { return r.msg }

// Refused marks the error as a refused file (exit code 1 of the CLI).
func (r *refusal) Refused() bool { return true }

func isRefusal(err error) bool {
	var r *refusal
	return errors.As(err, &r)
}

// Sentinel errors. Those documented as refusing the file implement
// Refused() bool; the reader stops at them.
var (
	// Line level.
	ErrBOM         = errors.New("byte order mark: files are UTF-8 without BOM")
	ErrCRLF        = errors.New("CRLF line ending: lines end with LF only (reported once per file)")
	ErrNotUTF8     = errors.New("not valid UTF-8")
	ErrBinary      = errors.New("control character or binary data")
	ErrLineTooLong = errors.New("line too long")
	ErrTruncated   = errors.New("last line has no final newline: file truncated?")
	ErrEmptyLine   = errors.New("empty line")
	ErrFieldCount  = errors.New("wrong number of fields")

	// Header and columns.
	ErrHeaderSyntax    = errors.New(`header line must be "#key: value"`)
	ErrUnknownHeader   = errors.New("unknown header key")
	ErrDuplicateHeader = errors.New("header key given twice")
	ErrMissingHeader   = errors.New("required header key missing")
	ErrNoColumns       = errors.New("no column line")
	ErrMissingColumn   = errors.New("required column missing")
	ErrUnknownColumn   = errors.New("unknown column")
	ErrDuplicateColumn = errors.New("column given twice")
	ErrUnknownFormat   = &refusal{"unknown format"}
	ErrWrongFormat     = &refusal{"format is not the expected type"}
	ErrVersion         = &refusal{"unsupported format version"}
	ErrSender          = errors.New("sender is not the expected partner")
	ErrReceiver        = errors.New("receiver is not us")
	ErrQuantity        = errors.New("quantity does not match the number of records")
	ErrSequenceGap     = errors.New("sequence number gap: files are missing")
	ErrSequenceRepeat  = errors.New("sequence number repeated: file already received")
	ErrInReplyTo       = errors.New("in-reply-to does not name a file we sent")
	ErrName            = errors.New("file name does not match the header")
	ErrNoTransportKey  = errors.New("secret fields need a transport-key header")
	ErrUnknownKey      = &refusal{"transport key ID unknown"}
	ErrKCVMismatch     = &refusal{"transport key check value (KCV) wrong: file refused before any record was read"}

	// Fields.
	ErrRequired  = errors.New("value required")
	ErrInvalid   = errors.New("invalid value")
	ErrDuplicate = errors.New("duplicate within the file")
	ErrWrapped   = errors.New(`secret must be transport-wrapped as "keyID:hex"`)
	ErrKeyID     = errors.New("secret wrapped under another key than the header's transport-key")
)

func invalidf(format string, a ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrInvalid}, a...)...)
}
