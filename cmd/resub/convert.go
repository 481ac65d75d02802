package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"resub/formats/mapping"
	"resub/formats/native"
	"resub/jobs"
)

func init() {
	register(&command{name: "convert", summary: "convert a file between a partner's CSV layout and the native one", run: runConvert})
}

// convertOptions is everything the conversion needs. The flags fill it;
// with --config and --partner the configuration fills Mapping (key
// partners.<id>.columns.<type>), the header's partner IDs and transport
// key (see configureConvert).
type convertOptions struct {
	Type    string
	From    string // "partner" or "native"
	In, Out string // Out "" = standard output
	Mapping *mapping.Mapping
	// Header is the native header for partner → native; Quantity and
	// Format are filled by the conversion. Fields left empty are taken
	// from the input's name when it follows the naming rule.
	Header native.Header
	// Native checks a native input before it is converted.
	Native      native.Options
	MaxProblems int
	Now         func() time.Time
}

func convertUsage() string {
	return "convert (--config FILE --partner P | --mapping FILE) --type TYPE --from partner|native [-o OUT] IN\n\n" +
		"partner → native takes the header from IN's name (SENDER_RECEIVER_TYPE_YYYYMMDD_SEQ6.csv) unless\n" +
		"--sender, --receiver, --business-date, --sequence say otherwise.\n" +
		"types: " + strings.Join(native.TypeNames(), " ") + "\n"
}

// configureConvert fills opts from the configuration: the partner's
// column mapping of the type (partners.<id>.columns.<type>, with the
// partner's ICCID conventions), the partner's code as sender and ours as
// receiver of the native header, and its current transport key with its
// check value. Flags given explicitly win.
func configureConvert(e *env, config, partner string, opts *convertOptions) error {
	if config == "" && partner == "" {
		return nil
	}
	if config == "" || partner == "" {
		return usagef("convert: --config and --partner go together")
	}
	pc, err := loadPartner(config, partner)
	if err != nil {
		return err
	}
	m, ok, err := pc.p.Mapping(opts.Type)
	if err != nil {
		return &jobs.ConfigError{Path: pc.path() + ".columns." + opts.Type, Err: err}
	}
	if !ok {
		return usagef("convert: partner %s has no column mapping for %s (%s.columns.%s)", pc.name, opts.Type, pc.path(), opts.Type)
	}
	opts.Mapping = m
	h := &opts.Header
	if h.Sender == "" {
		h.Sender = pc.p.Code
	}
	if h.Receiver == "" {
		h.Receiver = pc.cfg.Party.Name
	}
	s, _ := native.Lookup(opts.Type)
	if s.HasSecrets() && len(pc.p.TransportKeys) > 0 {
		kcvs, first, err := pc.transportKCVs()
		if err != nil {
			return err
		}
		if h.TransportKey == "" {
			h.TransportKey = first
		}
		if h.KCV == nil {
			h.KCV = kcvs[h.TransportKey]
		}
		opts.Native.TransportKey = func(id string) ([]byte, bool) {
			k, ok := kcvs[id]
			return k, ok
		}
	}
	opts.Native.MaxLineLength = pc.cfg.Limits.MaxLineBytes
	opts.Native.Limits = native.Limits{MaxRecords: pc.cfg.Limits.MaxRecords, MaxRecordErrors: pc.cfg.Limits.MaxRecordErrors}
	e.log.Debug("converting with the configuration", "config", pc.cfg.Path(), "partner", pc.name, "type", opts.Type)
	return nil
}

func runConvert(e *env, args []string) error {
	fs := e.newFlags("convert", convertUsage())
	var o convertOptions
	var config, partner, mappingFile, date, kcv string
	fs.StringVar(&config, "config", "", "configuration `FILE`")
	fs.StringVar(&partner, "partner", "", "partner ID whose column mapping to use")
	fs.StringVar(&mappingFile, "mapping", "", "a YAML `FILE` holding one column mapping (instead of --config)")
	fs.StringVar(&o.Type, "type", "", "file type")
	fs.StringVar(&o.From, "from", "", "the layout of IN: partner or native")
	fs.StringVar(&o.Out, "o", "", "output `FILE` (default standard output)")
	fs.StringVar(&o.Header.Sender, "sender", "", "partner → native: sender ID")
	fs.StringVar(&o.Header.Receiver, "receiver", "", "partner → native: receiver ID")
	fs.StringVar(&date, "business-date", "", "partner → native: business date YYYY-MM-DD")
	fs.IntVar(&o.Header.Sequence, "sequence", 0, "partner → native: sequence number")
	fs.StringVar(&o.Header.Batch, "batch", "", "partner → native: batch reference")
	fs.StringVar(&o.Header.TransportKey, "transport-key", "", "partner → native: transport key ID of the secret fields")
	fs.StringVar(&kcv, "kcv", "", "partner → native: the transport key's check value (6 hex digits)")
	fs.IntVar(&o.MaxProblems, "max", 100, "print at most `N` problems")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usagef("convert: one input file expected")
	}
	o.In = fs.Arg(0)
	if _, ok := native.Lookup(o.Type); !ok {
		return usagef("convert: unknown type %q (one of %s)", o.Type, strings.Join(native.TypeNames(), " "))
	}
	if o.From != "partner" && o.From != "native" {
		return usagef("convert: --from must be partner or native")
	}
	if date != "" {
		d, err := time.Parse(time.DateOnly, date)
		if err != nil {
			return usagef("convert: --business-date %q is not YYYY-MM-DD", date)
		}
		o.Header.BusinessDate = d
	}
	if kcv != "" {
		b, err := hexBytes(kcv)
		if err != nil || len(b) != 3 {
			return usagef("convert: --kcv must be 6 hex digits")
		}
		o.Header.KCV = b
	}
	if config != "" && mappingFile != "" {
		return usagef("convert: --mapping and --config are exclusive")
	}
	if err := configureConvert(e, config, partner, &o); err != nil {
		return err
	}
	if mappingFile != "" {
		f, err := os.Open(mappingFile)
		if err != nil {
			return usagef("convert: %v", err)
		}
		o.Mapping, err = mapping.Decode(f)
		f.Close()
		if err != nil {
			return usagef("convert: %s: %v", mappingFile, err)
		}
	}
	if o.Mapping == nil {
		return usagef("convert: a column mapping is needed (--config and --partner, or --mapping)")
	}
	s, _ := native.Lookup(o.Type)
	if err := o.Mapping.Check(s); err != nil {
		return usagef("convert: %v", err)
	}
	o.Now = time.Now
	return convert(e, &o)
}

func hexBytes(s string) ([]byte, error) {
	var b []byte
	_, err := fmt.Sscanf(s, "%x", &b)
	return b, err
}

// convert runs the conversion: the input is checked in full first, the
// output is written to a temporary file beside OUT and checked, then
// renamed (or copied to standard output). Nothing is left behind on
// failure.
func convert(e *env, o *convertOptions) error {
	s, _ := native.Lookup(o.Type)
	p := &problemPrinter{w: e.io.out, max: o.MaxProblems}
	in, err := os.Open(o.In)
	if err != nil {
		return usagef("convert: %v", err)
	}
	defer in.Close()

	// Pass 1: check the input (and count the records).
	var count int
	if o.From == "partner" {
		rd := mapping.NewReader(bufio.NewReader(in), o.Mapping, s, o.In)
		rd.SetLimits(o.Native.Limits)
		for {
			rec, err := rd.Read()
			if err == io.EOF {
				break
			}
			p.add(err)
			if err != nil && !native.Recoverable(err) {
				break
			}
			if rec != nil {
				count++
			}
		}
	} else {
		no := o.Native
		no.File, no.Type = o.In, o.Type
		if count, err = checkNative(bufio.NewReader(in), no, p); err != nil {
			return err
		}
	}
	if p.n > 0 {
		return invalidSummary(e, o.In, o.Type, p)
	}
	if _, err := in.Seek(0, io.SeekStart); err != nil {
		return err
	}

	dir := "."
	if o.Out != "" {
		dir = filepath.Dir(o.Out)
	}
	tmp, err := os.CreateTemp(dir, ".resub-convert-*")
	if err != nil {
		return usagef("convert: %v", err)
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()

	// Pass 2: convert.
	if o.From == "partner" {
		h := o.Header
		if err := fillHeader(&h, o, s, count); err != nil {
			return err
		}
		w := native.NewWriter(tmp, s)
		if err := w.WriteHeader(&h, mappedColumns(o.Mapping)); err != nil {
			return usagef("convert: header: %v", err)
		}
		if _, err := mapping.ToNative(w, mapping.NewReader(bufio.NewReader(in), o.Mapping, s, o.In)); err != nil {
			p.add(err)
			return invalidSummary(e, o.In, o.Type, p)
		}
		// The result must be a valid native file.
		if _, err := tmp.Seek(0, io.SeekStart); err != nil {
			return err
		}
		name := o.Out
		if name == "" {
			name = "(output)"
		}
		if _, err := checkNative(bufio.NewReader(tmp), native.Options{File: name, Type: o.Type}, p); err != nil {
			return err
		}
		if p.n > 0 {
			return invalidSummary(e, name, o.Type, p)
		}
	} else {
		w := mapping.NewWriter(tmp, o.Mapping, s)
		if _, err := mapping.FromNative(w, native.NewReader(bufio.NewReader(in), native.Options{File: o.In, Type: o.Type})); err != nil {
			p.add(err)
			return invalidSummary(e, o.In, o.Type, p)
		}
	}
	if err := tmp.Sync(); err != nil {
		return err
	}
	if o.Out == "" {
		if _, err := tmp.Seek(0, io.SeekStart); err != nil {
			return err
		}
		_, err := io.Copy(e.io.out, tmp)
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), o.Out); err != nil {
		return err
	}
	fmt.Fprintf(e.io.err, "%s: %s: %d records converted to %s\n", o.In, o.Type, count, o.Out)
	return nil
}

func invalidSummary(e *env, file, typ string, p *problemPrinter) error {
	if p.more > 0 {
		fmt.Fprintf(e.io.out, "%s: ... and %d more %s\n", file, p.more, noun(p.more, "problem"))
	}
	fmt.Fprintf(e.io.out, "%s: %s: %s: not converted\n", file, typ, plural(p.n, "problem"))
	return silentError{invalidFile{p.n}}
}

// mappedColumns lists the native fields the mapping carries, in schema order.
func mappedColumns(m *mapping.Mapping) []string {
	var out []string
	for _, c := range m.Columns {
		if c.Field != "" {
			out = append(out, c.Field)
		}
	}
	return out
}

// fillHeader completes the native header from the input's name and the clock.
func fillHeader(h *native.Header, o *convertOptions, s *native.Schema, count int) error {
	base := filepath.Base(o.In)
	if n, err := native.ParseName(base); err == nil {
		if h.Sender == "" {
			h.Sender = n.Sender
		}
		if h.Receiver == "" {
			h.Receiver = n.Receiver
		}
		if h.BusinessDate.IsZero() {
			h.BusinessDate = n.Date
		}
		if h.Sequence == 0 {
			h.Sequence = n.Sequence
		}
		if n.Format != s.Name {
			return usagef("convert: %s names type %s, not %s", base, n.Format, s.Name)
		}
	}
	if h.Batch == "" {
		h.Batch = strings.SplitN(base, ".", 2)[0]
	}
	switch {
	case h.Sender == "" || h.Receiver == "":
		return usagef("convert: --sender and --receiver are needed (IN's name does not follow the naming rule)")
	case h.BusinessDate.IsZero() || h.Sequence == 0:
		return usagef("convert: --business-date and --sequence are needed (IN's name does not follow the naming rule)")
	case s.HasSecrets() && h.TransportKey != "" && h.KCV == nil:
		return usagef("convert: --transport-key needs --kcv")
	}
	h.Format = s.Name
	h.Version = s.Version
	h.Created = o.Now().UTC().Truncate(time.Second)
	h.Quantity = count
	return nil
}
