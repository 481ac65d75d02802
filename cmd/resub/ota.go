package main

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"strconv"
	"strings"

	"resub/formats/ota"
)

func init() {
	register(&command{name: "ota", summary: "OTA secured packets for engineers (ota encode|decode-por|imsi)", run: runOTA})
}

const otaUsage = `ota SUBCOMMAND [FLAGS]

subcommands:
  encode --spi HEX --kic HEX --kid HEX --tar HEX --counter N [--kic-key HEX] [--kid-key HEX]
         --apdu HEX [--apdu HEX ...] [--concat-ref N] [--json]
         prints the command packet (CPL to the end) and the TP-UD of each SMS
  decode-por --spi HEX --kic HEX --kid HEX [--kic-key HEX] [--kid-key HEX] [--json] TPUD_HEX
         decodes a proof of receipt (TP-UD from 027100); exit 1 if its checksum fails
  imsi IMSI
         prints the 9 octets of EF_IMSI
hex in either case, numbers decimal unless 0x...; keys are needed only where the SPI uses them
run 'resub ota SUBCOMMAND --help' for its flags`

func runOTA(e *env, args []string) error {
	if len(args) == 0 {
		fmt.Fprintf(e.io.err, "usage: resub %s\n", otaUsage)
		return usagef("ota: missing subcommand (encode, decode-por, imsi)")
	}
	switch args[0] {
	case "--help", "-h", "help":
		fmt.Fprintf(e.io.err, "usage: resub %s\n", otaUsage)
		return nil
	case "encode":
		return otaEncode(e, args[1:])
	case "decode-por":
		return otaDecodePoR(e, args[1:])
	case "imsi":
		return otaIMSI(e, args[1:])
	}
	return usagef("ota: unknown subcommand %q (encode, decode-por, imsi)", args[0])
}

// parseInterspersed parses flags that may follow positional arguments.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := parseFlags(fs, args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		if rest[0] == "--" {
			return append(pos, rest[1:]...), nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// hexArg decodes a hex flag of n octets (any length for n < 0).
func hexArg(name, v string, n int) ([]byte, error) {
	if v == "" {
		return nil, usagef("--%s is required", name)
	}
	b, err := hex.DecodeString(v)
	if err != nil || (n >= 0 && len(b) != n) {
		if n >= 0 {
			return nil, usagef("--%s: %q is not %d octets of hex", name, v, n)
		}
		return nil, usagef("--%s: %q is not hex", name, v)
	}
	return b, nil
}

// numArg reads a decimal number, or hex after 0x.
func numArg(name, v string, max uint64) (uint64, error) {
	if v == "" {
		return 0, usagef("--%s is required", name)
	}
	base, digits := 10, v
	if strings.HasPrefix(v, "0x") || strings.HasPrefix(v, "0X") {
		base, digits = 16, v[2:]
	}
	n, err := strconv.ParseUint(digits, base, 64)
	if err != nil || n > max {
		return 0, usagef("--%s: %q is not a number from 0 to %d", name, v, max)
	}
	return n, nil
}

// otaSecurity are the flags that name the security parameters and keys.
type otaSecurity struct {
	spi, kic, kid, kicKey, kidKey string
}

func (s *otaSecurity) register(fs *flag.FlagSet) {
	fs.StringVar(&s.spi, "spi", "", "SPI, 4 hex digits (e.g. 1639)")
	fs.StringVar(&s.kic, "kic", "", "KIc octet, 2 hex digits (algorithm and key version)")
	fs.StringVar(&s.kid, "kid", "", "KID octet, 2 hex digits (algorithm and key version)")
	fs.StringVar(&s.kicKey, "kic-key", "", "ciphering key, hex (only if the SPI ciphers)")
	fs.StringVar(&s.kidKey, "kid-key", "", "checksum key, hex (only if the SPI asks for a CC)")
}

func (s *otaSecurity) params() (ota.Params, ota.Keys, error) {
	var p ota.Params
	var k ota.Keys
	spi, err := hexArg("spi", s.spi, 2)
	if err != nil {
		return p, k, err
	}
	kic, err := hexArg("kic", s.kic, 1)
	if err != nil {
		return p, k, err
	}
	kid, err := hexArg("kid", s.kid, 1)
	if err != nil {
		return p, k, err
	}
	p.SPI, p.KIc, p.KID = ota.SPI(uint16(spi[0])<<8|uint16(spi[1])), ota.KIc(kic[0]), ota.KID(kid[0])
	if s.kicKey != "" {
		if k.KIc, err = hexArg("kic-key", s.kicKey, -1); err != nil {
			return p, k, err
		}
	}
	if s.kidKey != "" {
		if k.KID, err = hexArg("kid-key", s.kidKey, -1); err != nil {
			return p, k, err
		}
	}
	return p, k, nil
}

func zeroKeys(k ota.Keys) {
	clear(k.KIc)
	clear(k.KID)
}

func otaEncode(e *env, args []string) error {
	fs := e.newFlags("ota encode", "ota encode --spi HEX --kic HEX --kid HEX --tar HEX --counter N [--kic-key HEX] [--kid-key HEX] --apdu HEX [--apdu HEX ...] [--concat-ref N] [--json]")
	var sec otaSecurity
	sec.register(fs)
	tarHex := fs.String("tar", "", "TAR, 6 hex digits")
	counter := fs.String("counter", "", "counter (decimal, or hex after 0x), up to 5 octets")
	var apdus multiFlag
	fs.Var(&apdus, "apdu", "command APDU in hex (repeat in script order)")
	ref := fs.String("concat-ref", "1", "concatenation reference 0..255 when the packet needs several SMS")
	asJSON := fs.Bool("json", false, "print JSON")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usagef("ota encode: unexpected argument %q", pos[0])
	}
	p, keys, err := sec.params()
	defer zeroKeys(keys)
	if err != nil {
		return err
	}
	tar, err := hexArg("tar", *tarHex, 3)
	if err != nil {
		return err
	}
	copy(p.TAR[:], tar)
	cntr, err := numArg("counter", *counter, ota.MaxCounter)
	if err != nil {
		return err
	}
	r, err := numArg("concat-ref", *ref, 255)
	if err != nil {
		return err
	}
	if len(apdus) == 0 {
		return usagef("--apdu is required")
	}
	script := make([]ota.APDU, len(apdus))
	for i, a := range apdus {
		if script[i], err = hexArg("apdu", a, -1); err != nil {
			return err
		}
		if len(script[i]) < 4 {
			return usagef("--apdu: %q is shorter than a command header", a)
		}
	}
	codec, err := ota.NewCodec(p, keys)
	if err != nil {
		return usagef("ota encode: %v", err)
	}
	msg, err := codec.BuildMessage(ota.FormatCompact, cntr, script, byte(r))
	if err != nil {
		return usagef("ota encode: %v", err)
	}
	if *asJSON {
		out := struct {
			CommandPacket string   `json:"command_packet"`
			Segments      []string `json:"segments"`
		}{CommandPacket: hex.EncodeToString(msg.Packet)}
		for _, s := range msg.Segments {
			out.Segments = append(out.Segments, hex.EncodeToString(s))
		}
		return writeJSON(e, out)
	}
	fmt.Fprintf(e.io.out, "command_packet: %x\n", msg.Packet)
	for i, s := range msg.Segments {
		fmt.Fprintf(e.io.out, "segment %d/%d: %x\n", i+1, len(msg.Segments), s)
	}
	return nil
}

func writeJSON(e *env, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(e.io.out, "%s\n", b)
	return err
}

// porReport is the JSON of decode-por; scripts rely on its keys.
type porReport struct {
	TAR              string `json:"tar"`
	Counter          uint64 `json:"counter"`
	Status           string `json:"status"`
	StatusMeaning    string `json:"status_meaning"`
	Checksum         string `json:"checksum"`
	CommandsExecuted int    `json:"commands_executed"`
	LastSW           string `json:"last_sw"`
	ResponseData     string `json:"response_data"`
}

func otaDecodePoR(e *env, args []string) error {
	fs := e.newFlags("ota decode-por", "ota decode-por --spi HEX --kic HEX --kid HEX [--kic-key HEX] [--kid-key HEX] [--json] TPUD_HEX")
	var sec otaSecurity
	sec.register(fs)
	asJSON := fs.Bool("json", false, "print JSON")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef("ota decode-por: want one TP-UD in hex, got %d arguments", len(pos))
	}
	p, keys, err := sec.params()
	defer zeroKeys(keys)
	if err != nil {
		return err
	}
	tpud, err := hex.DecodeString(pos[0])
	if err != nil {
		return usagef("ota decode-por: TP-UD %q is not hex", pos[0])
	}
	// Only the PoR half of the SPI matters here: the keys the command
	// half would need are not asked for.
	p.SPI &= 0x00ff
	codec, err := ota.NewCodec(p, keys)
	if err != nil {
		return usagef("ota decode-por: %v", err)
	}
	r, derr := codec.DecodeResponse(tpud)
	if derr != nil && !errors.Is(derr, ota.ErrChecksum) {
		return fmt.Errorf("ota decode-por: %w", derr)
	}
	rep := porReport{
		TAR:           r.TAR.String(),
		Counter:       r.Counter,
		Status:        fmt.Sprintf("%02x", byte(r.Status)),
		StatusMeaning: r.Status.Meaning(),
		Checksum:      r.Checksum.String(),
		ResponseData:  hex.EncodeToString(r.Data),
	}
	if res, err := ota.ParseCompactResponse(r.Data); err == nil {
		rep.CommandsExecuted = res.Executed
		rep.LastSW = fmt.Sprintf("%04x", res.LastSW)
		rep.ResponseData = hex.EncodeToString(res.Data)
	}
	if *asJSON {
		if err := writeJSON(e, rep); err != nil {
			return err
		}
	} else {
		w := e.io.out
		fmt.Fprintf(w, "tar: %s\ncounter: %d\nstatus: %s (%s)\nchecksum: %s\n", rep.TAR, rep.Counter, rep.Status, rep.StatusMeaning, rep.Checksum)
		if r.Unsecured {
			fmt.Fprintln(w, "unsecured: the PoR lacks the security the SPI asks for")
		}
		fmt.Fprintf(w, "commands_executed: %d\nlast_sw: %s\nresponse_data: %s\n", rep.CommandsExecuted, rep.LastSW, rep.ResponseData)
	}
	if derr != nil {
		return fmt.Errorf("ota decode-por: %w", derr)
	}
	return nil
}

func otaIMSI(e *env, args []string) error {
	fs := e.newFlags("ota imsi", "ota imsi IMSI")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef("ota imsi: want one IMSI, got %d arguments", len(pos))
	}
	ef, err := ota.EncodeIMSI(pos[0])
	if err != nil {
		return usagef("ota imsi: %v", err)
	}
	fmt.Fprintf(e.io.out, "%x\n", ef)
	return nil
}
