package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"resub/formats/mapping"
	"resub/formats/native"
	"resub/formats/vendor"
)

func init() {
	register(&command{name: "check", summary: "validate one file: every problem as FILE:LINE: field: message", run: runCheck})
}

// checkOptions is everything `resub check` needs. The flags fill Type,
// Path and MaxProblems; with --config and --partner the configuration
// fills the partner's expectations and hooks (Native, Vendor) and, with
// --key and --signer, Open (decrypt and verify before the check).
type checkOptions struct {
	Type        string
	Path        string
	MaxProblems int
	Native      native.Options
	Vendor      vendor.Options
	// Mapping, when set, says the file is in the partner's CSV layout:
	// it is read through the mapping and its records checked by the
	// native rules, problems named by the partner's column names.
	// PartnerTransportKey is then the key ID its wrapped fields must name.
	Mapping             *mapping.Mapping
	PartnerTransportKey string
	// Open opens the file to check; nil opens it as is.
	Open func(path string) (io.ReadCloser, error)
}

// checkConfig holds the flags that select a configuration.
type checkConfig struct {
	Config, Partner, Key, Signer string
}

// configureCheck fills opts from the configuration and keys named by the
// flags. The configuration is wired by the integration of jobs/config;
// until then these flags are a usage error.
func configureCheck(e *env, cc checkConfig, opts *checkOptions) error {
	if cc.Config == "" && cc.Partner == "" && cc.Key == "" && cc.Signer == "" {
		return nil
	}
	if (cc.Config == "") != (cc.Partner == "") {
		return usagef("--config and --partner go together")
	}
	return usagef("--config/--partner and --key/--signer are not wired to the configuration yet")
}

func checkUsage() string {
	return "check --type TYPE [--config FILE --partner P] [--key SEC --signer PUB] [--max N] FILE\n\n" +
		"types: " + strings.Join(native.TypeNames(), " ") + "\n" +
		"(inventory reads our native inventory or the SIM vendor's output file)\n" +
		"exit 0 valid, 1 invalid, 2 unknown type or usage\n"
}

func runCheck(e *env, args []string) error {
	fs := e.newFlags("check", checkUsage())
	var opts checkOptions
	var cc checkConfig
	fs.StringVar(&opts.Type, "type", "", "file type (see the list above)")
	fs.StringVar(&cc.Config, "config", "", "configuration `FILE` (with --partner: check against that partner's settings)")
	fs.StringVar(&cc.Partner, "partner", "", "partner ID of the configuration")
	fs.StringVar(&cc.Key, "key", "", "our secret key, to decrypt the file")
	fs.StringVar(&cc.Signer, "signer", "", "the sender's public key, to verify its signature")
	fs.IntVar(&opts.MaxProblems, "max", 100, "print at most `N` problems (the rest are counted)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usagef("check: one FILE expected")
	}
	opts.Path = fs.Arg(0)
	if opts.Type == "" {
		return usagef("check: --type is required (one of %s)", strings.Join(native.TypeNames(), " "))
	}
	if _, ok := native.Lookup(opts.Type); !ok {
		return usagef("check: unknown type %q (one of %s)", opts.Type, strings.Join(native.TypeNames(), " "))
	}
	if err := configureCheck(e, cc, &opts); err != nil {
		return err
	}
	return check(e, &opts)
}

// invalidFile is the result of a check that found problems (exit 1).
type invalidFile struct{ problems int }

func (f invalidFile) Error() string { return fmt.Sprintf("%d problems", f.problems) }
func (f invalidFile) Refused() bool { return true }

// check runs the check and prints the problems and a summary line.
func check(e *env, opts *checkOptions) error {
	open := opts.Open
	if open == nil {
		open = func(p string) (io.ReadCloser, error) { return os.Open(p) }
	}
	f, err := open(opts.Path)
	if err != nil {
		return usagef("check: %v", err)
	}
	defer f.Close()
	br := bufio.NewReader(f)

	p := &problemPrinter{w: e.io.out, max: opts.MaxProblems}
	var records int
	if opts.Mapping != nil {
		records, err = checkPartner(br, opts, p)
	} else if opts.Type == "inventory" && !isNative(br) {
		vo := opts.Vendor
		vo.File = opts.Path
		records, err = checkVendor(br, vo, p)
	} else {
		no := opts.Native
		no.File = opts.Path
		no.Type = opts.Type
		if no.Name == "" {
			if _, perr := native.ParseName(filepath.Base(opts.Path)); perr == nil {
				no.Name = filepath.Base(opts.Path)
			}
		}
		records, err = checkNative(br, no, p)
	}
	if err != nil {
		return err
	}
	if p.more > 0 {
		fmt.Fprintf(e.io.out, "%s: ... and %d more %s\n", opts.Path, p.more, noun(p.more, "problem"))
	}
	if p.n == 0 {
		fmt.Fprintf(e.io.out, "%s: %s: %d records, valid\n", opts.Path, opts.Type, records)
		return nil
	}
	fmt.Fprintf(e.io.out, "%s: %s: %d records, %s: invalid\n", opts.Path, opts.Type, records, plural(p.n, "problem"))
	return silentError{invalidFile{p.n}}
}

// isNative reports whether the file starts like a native file.
func isNative(br *bufio.Reader) bool {
	b, _ := br.Peek(16)
	b = []byte(strings.TrimPrefix(string(b), "\ufeff"))
	return strings.HasPrefix(string(b), "#")
}

type problemPrinter struct {
	w       io.Writer
	max     int
	n, more int
}

func (p *problemPrinter) add(err error) {
	for _, pe := range native.Problems(err) {
		p.n++
		if p.n > p.max {
			p.more++
			continue
		}
		fmt.Fprintln(p.w, pe.Error())
	}
}

// checkNative reads a native file to the end; err is only for I/O.
func checkNative(r io.Reader, o native.Options, p *problemPrinter) (int, error) {
	rd := native.NewReader(r, o)
	rd.ReuseRecord = true
	h, err := rd.Header()
	p.add(err)
	if h == nil {
		return 0, ioOnly(err)
	}
	for {
		_, err := rd.Read()
		if err == io.EOF {
			return rd.Count(), nil
		}
		if err != nil && !native.Recoverable(err) {
			p.add(err)
			return rd.Count(), ioOnly(err)
		}
		p.add(err)
	}
}

func checkVendor(r io.Reader, o vendor.Options, p *problemPrinter) (int, error) {
	rd := vendor.NewReader(r, o)
	h, err := rd.Header()
	p.add(err)
	if h == nil {
		return 0, ioOnly(err)
	}
	n := 0
	for {
		c, err := rd.Read()
		if err == io.EOF {
			return n, nil
		}
		if err != nil && !native.Recoverable(err) {
			p.add(err)
			return n, ioOnly(err)
		}
		p.add(err)
		if c != nil {
			n++
			c.Zero()
		}
	}
}

// ioOnly keeps an error that is not a reported problem (an I/O error).
func ioOnly(err error) error {
	var pe *native.ParseError
	var el native.ErrorList
	if err == nil || errors.As(err, &pe) || errors.As(err, &el) {
		return nil
	}
	return err
}

// checkPartner checks a partner's CSV file under opts.Mapping.
func checkPartner(r io.Reader, opts *checkOptions, p *problemPrinter) (int, error) {
	s, _ := native.Lookup(opts.Type)
	if err := opts.Mapping.Check(s); err != nil {
		return 0, usagef("check: %v", err)
	}
	partnerName := map[string]string{}
	for _, c := range opts.Mapping.Columns {
		if c.Field != "" {
			partnerName[c.Field] = c.Name
		}
	}
	no := opts.Native
	no.File = opts.Path
	rd := mapping.NewReader(r, opts.Mapping, s, opts.Path)
	ck := native.NewRecordChecker(s, opts.PartnerTransportKey, mappedColumns(opts.Mapping), no)
	n := 0
	for {
		rec, err := rd.Read()
		if err == io.EOF {
			return n, nil
		}
		p.add(err)
		if err != nil && !native.Recoverable(err) {
			return n, ioOnly(err)
		}
		if rec == nil {
			continue
		}
		n++
		if err == nil { // fields that did not convert are already reported
			for _, pe := range ck.Check(rec) {
				if name, ok := partnerName[pe.Field]; ok {
					pe.Field = name
				}
				p.add(pe)
			}
		}
	}
}

// plural returns "1 problem", "2 problems".
func plural(n int, what string) string { return fmt.Sprintf("%d %s", n, noun(n, what)) }

func noun(n int, what string) string {
	if n == 1 {
		return what
	}
	return what + "s"
}
