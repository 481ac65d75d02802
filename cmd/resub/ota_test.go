package main

import (
	"strings"
	"testing"
)

// The SJA2 exchange of pySim's docs (OTA vectors in formats/ota/testdata).
const (
	sja2KIc = "F09C43EE1A0391665CC9F05AF4E0BD10" // upper case on purpose
	sja2KID = "01981f4a20999f62af99988107baf6ca"
	sja2PoR = "027100002c12b0001049fb0315f6c6401b553867f412cefaf9355b38271178edb342a3bc9cc7e670cdc1f45eea6ffcbb39"
)

func TestOTAEncode(t *testing.T) {
	code, out, errs := runCLI(t, "ota", "encode", "--spi", "1619", "--kic", "15", "--kid", "15", "--tar", "B00010",
		"--counter", "100", "--kic-key", sja2KIc, "--kid-key", sja2KID, "--apdu", "a0a40000027f20", "--apdu", "A0C0000016", "--json")
	want := `{"command_packet":"00281516191515b000103a4f599e94f2b5dcfbbda984761b7977df6514c57a580fb4844787c436d2eade","segments":["02700000281516191515b000103a4f599e94f2b5dcfbbda984761b7977df6514c57a580fb4844787c436d2eade"]}` + "\n"
	if code != 0 || out != want {
		t.Errorf("exit %d\n got %s\nwant %s\nstderr %s", code, out, want, errs)
	}
	// Counter in hex, plain output; a leading zero is still decimal.
	code, out, _ = runCLI(t, "ota", "encode", "--spi", "1619", "--kic", "15", "--kid", "15", "--tar", "b00010",
		"--counter", "0x64", "--kic-key", sja2KIc, "--kid-key", sja2KID, "--apdu", "a0a40000027f20", "--apdu", "a0c0000016")
	want = "command_packet: 00281516191515b000103a4f599e94f2b5dcfbbda984761b7977df6514c57a580fb4844787c436d2eade\n" +
		"segment 1/1: 02700000281516191515b000103a4f599e94f2b5dcfbbda984761b7977df6514c57a580fb4844787c436d2eade\n"
	if code != 0 || out != want {
		t.Errorf("exit %d\n got %s\nwant %s", code, out, want)
	}
	code, out2, _ := runCLI(t, "ota", "encode", "--spi", "1619", "--kic", "15", "--kid", "15", "--tar", "b00010",
		"--counter", "0100", "--kic-key", sja2KIc, "--kid-key", sja2KID, "--apdu", "a0a40000027f20", "--apdu", "a0c0000016")
	if code != 0 || out2 != want {
		t.Errorf("counter 0100: exit %d\n got %s", code, out2)
	}
	// asterix SPI 1201: no ciphering, so no KIc key is needed.
	code, out, errs = runCLI(t, "ota", "encode", "--spi", "1201", "--kic", "25", "--kid", "25", "--tar", "c00000",
		"--counter", "1", "--kid-key", "456789abcdef012356789abcdef01234", "--apdu", "a0a40000023f00", "--json")
	if code != 0 || !strings.Contains(out, `"command_packet":"001d1512012525c000000000000001004fbdb3740e950c28a0a40000023f00"`) {
		t.Errorf("exit %d out %s err %s", code, out, errs)
	}
}

func TestOTAEncodeConcatenated(t *testing.T) {
	// No checksum, 10 APDUs of 12 octets and 2 of 6: a 148-octet packet
	// needs two SMS.
	args := []string{"ota", "encode", "--spi", "0001", "--kic", "00", "--kid", "00", "--tar", "b00011", "--counter", "0", "--concat-ref", "0x2a", "--json"}
	for range 10 {
		args = append(args, "--apdu", "00d6000007ffffffffffffff")
	}
	args = append(args, "--apdu", "00d6000001ff", "--apdu", "00d6000001ff")
	code, out, errs := runCLI(t, args...)
	if code != 0 {
		t.Fatalf("exit %d %s", code, errs)
	}
	// packet = 16 + 10*12 + 2*6 = 148 octets: first SMS 132, second 16.
	if !strings.Contains(out, `"segments":["0700032a0201700000920d0001`) || !strings.Contains(out, `","0500032a0202`) {
		t.Errorf("out %s", out)
	}
}

func TestOTAEncodeUsage(t *testing.T) {
	base := []string{"ota", "encode", "--spi", "1639", "--kic", "15", "--kid", "15", "--tar", "b00011", "--counter", "1"}
	for name, extra := range map[string][]string{
		"no apdu":         {"--kic-key", sja2KIc, "--kid-key", sja2KID},
		"missing KID key": {"--kic-key", sja2KIc, "--apdu", "00b0000009"},
		"short key":       {"--kic-key", "0011", "--kid-key", sja2KID, "--apdu", "00b0000009"},
		"bad hex":         {"--kic-key", sja2KIc, "--kid-key", sja2KID, "--apdu", "00b00zz009"},
		"bad ref":         {"--kic-key", sja2KIc, "--kid-key", sja2KID, "--apdu", "00b0000009", "--concat-ref", "256"},
		"octal-looking":   {"--kic-key", sja2KIc, "--kid-key", sja2KID, "--apdu", "00b0000009", "--concat-ref", "x1"},
	} {
		if code, _, _ := runCLI(t, append(base, extra...)...); code != exitUsage {
			t.Errorf("%s: exit %d", name, code)
		}
	}
	if code, _, _ := runCLI(t, "ota", "encode", "--spi", "1639"); code != exitUsage {
		t.Errorf("missing flags: exit %d", code)
	}
	if code, _, _ := runCLI(t, "ota"); code != exitUsage {
		t.Errorf("no subcommand: exit %d", code)
	}
	for _, sub := range []string{"encode", "decode-por", "imsi"} {
		code, _, errs := runCLI(t, "ota", sub, "--help")
		if code != 0 || !strings.Contains(errs, "usage: resub ota "+sub) {
			t.Errorf("%s --help: exit %d %q", sub, code, errs)
		}
	}
}

func TestOTADecodePoR(t *testing.T) {
	code, out, errs := runCLI(t, "ota", "decode-por", "--spi", "1619", "--kic", "15", "--kid", "15",
		"--kic-key", sja2KIc, "--kid-key", sja2KID, strings.ToUpper(sja2PoR), "--json")
	want := `{"tar":"b00010","counter":100,"status":"00","status_meaning":"PoR OK","checksum":"verified","commands_executed":2,"last_sw":"9000","response_data":"0000ffff7f2002000000000009b106350400838a838a"}` + "\n"
	if code != 0 || out != want {
		t.Errorf("exit %d\n got %s\nwant %s\n%s", code, out, want, errs)
	}
	code, out, _ = runCLI(t, "ota", "decode-por", "--spi", "1619", "--kic", "15", "--kid", "15",
		"--kic-key", sja2KIc, "--kid-key", sja2KID, sja2PoR)
	want = "tar: b00010\ncounter: 100\nstatus: 00 (PoR OK)\nchecksum: verified\ncommands_executed: 2\nlast_sw: 9000\nresponse_data: 0000ffff7f2002000000000009b106350400838a838a\n"
	if code != 0 || out != want {
		t.Errorf("exit %d\n got %s\nwant %s", code, out, want)
	}
	// The unsecured replay answer needs no key at all.
	code, out, _ = runCLI(t, "ota", "decode-por", "--json", "--spi", "1619", "--kic", "15", "--kid", "15",
		"--kic-key", sja2KIc, "--kid-key", sja2KID, "027100000b0ab0001000000000000006")
	want = `{"tar":"b00010","counter":0,"status":"06","status_meaning":"Unidentified security error","checksum":"none","commands_executed":0,"last_sw":"","response_data":""}` + "\n"
	if code != 0 || out != want {
		t.Errorf("exit %d\n got %s\nwant %s", code, out, want)
	}
	// pySim: a PoR with a CC whose RFM result was altered: exit 1.
	code, out, _ = runCLI(t, "ota", "decode-por", "--spi", "0009", "--kic", "35", "--kid", "35",
		"--kid-key", "12110c78e678c25408233076aa033615", "--json", "027100001612b000110000000000000055f47118381175fb02612f")
	if code != exitRefused || !strings.Contains(out, `"checksum":"failed"`) {
		t.Errorf("bad CC: exit %d out %s", code, out)
	}
	// Plain PoR, no keys.
	code, out, _ = runCLI(t, "ota", "decode-por", "--spi", "0001", "--kic", "35", "--kid", "35", "--json", "027100000e0ab000110000000000000001612f")
	if code != 0 || !strings.Contains(out, `"checksum":"none","commands_executed":1,"last_sw":"612f"`) {
		t.Errorf("plain: exit %d out %s", code, out)
	}
	if code, _, _ := runCLI(t, "ota", "decode-por", "--spi", "0001", "--kic", "35", "--kid", "35", "0271"); code != exitRefused {
		t.Errorf("truncated PoR: exit %d", code)
	}
	if code, _, _ := runCLI(t, "ota", "decode-por", "--spi", "0001", "--kic", "35", "--kid", "35"); code != exitUsage {
		t.Errorf("no PoR: exit %d", code)
	}
}

func TestOTAIMSI(t *testing.T) {
	for imsi, want := range map[string]string{
		"262420123456789": "082926241032547698\n",
		"26242012345678":  "0821262410325476f8\n",
		"310260123456789": "083901621032547698\n",
	} {
		if code, out, _ := runCLI(t, "ota", "imsi", imsi); code != 0 || out != want {
			t.Errorf("%s: exit %d %q", imsi, code, out)
		}
	}
	if code, _, _ := runCLI(t, "ota", "imsi", "12ab"); code != exitUsage {
		t.Errorf("bad IMSI: exit %d", code)
	}
}
