package demo

import (
	"os"
	"path/filepath"
	"strings"
)

// Test PLMNs: A uses 001-01, B 999-99 and C 999-98 (MNC of 2 digits),
// B's IMSI ranges start with a one-IMSI range that A was never told of
// (so one record of B's list is refused for its prefix).
var (
	plmnA = map[string]any{"mcc": "001", "mnc": "01"}
	plmnB = map[string]any{"mcc": "999", "mnc": "99"}
	plmnC = map[string]any{"mcc": "999", "mnc": "98"}
)

func profiles() map[string]any {
	common := func(extra map[string]any) map[string]any {
		m := map[string]any{
			"tar": "b00011", "spi": "1639", "kic": "12", "kid": "12", "cla": "00",
			"invalidate": []string{"loci", "psloci", "epsloci"},
			"reset":      map[string]any{"tar": "b0ff01", "apdu": "80c20400"},
			"rate":       20, "window": "00:00-23:59", "validity": "24h", "algorithm": "milenage",
		}
		for k, v := range extra {
			m[k] = v
		}
		return m
	}
	return map[string]any{
		"usim-aes": common(nil),
		"usim-3b": common(map[string]any{
			"key_index":   map[string]any{"tar": "b0ff02", "apdu": "80e8000001II", "effect": "reset", "message": "same"},
			"list_length": 3,
		}),
	}
}

// local makes a local-folder drop under the party's folder.
func (w *world) local(p *party, name string) map[string]any {
	dir := filepath.Join(p.dir, "drops", name)
	for _, sub := range []string{"inbox", "outbox", "archive", "quarantine"} {
		os.MkdirAll(filepath.Join(dir, sub), 0o700)
	}
	return map[string]any{"local": map[string]any{"dir": dir}, "stable": "20ms"}
}

// sftp makes an SFTP drop on the demo server between p and the partner
// with code other.
func (w *world) sftp(p *party, other, keyPath, knownHosts, passRef string) map[string]any {
	in := other + "-to-" + p.name
	out := p.name + "-to-" + other
	arch := filepath.Join("archive", p.name, other)
	quar := filepath.Join("quarantine", p.name, other)
	for _, d := range []string{in, out, arch, quar} {
		os.MkdirAll(w.exchangeDir(d), 0o700)
	}
	return map[string]any{
		"sftp": map[string]any{"host": "127.0.0.1", "port": w.server.Port(), "user": strings.ToLower(p.name),
			"private_key": keyPath, "passphrase": passRef, "known_hosts": knownHosts, "timeout": "10s"},
		"inbox": "/" + in, "outbox": "/" + out, "archive": "/" + arch, "quarantine": "/" + quar,
		"patterns": []string{other + "_" + p.name + "_*"}, "stable": "20ms",
	}
}

func (w *world) pgpOf(code string) map[string]any {
	return map[string]any{"public_keys": []string{filepath.Join(w.dir, "keys", code+".pub.asc")}, "fingerprints": []string{w.keys[code].Fingerprint()}}
}

func (w *world) tk(id string) []map[string]any {
	return []map[string]any{{"id": id, "key": w.secret(envName("tk", id), 16)}}
}

func job(name, kind, partner string, to map[string]string) map[string]any {
	m := map[string]any{"name": name, "kind": kind, "schedule": "15 22 * * *", "zone": "UTC"}
	if partner != "" {
		m["partner"] = partner
	}
	if len(to) > 0 {
		m["to"] = to
	}
	return m
}

// addParty makes an operator or the manufacturer with its configuration.
func (w *world) addParty(code string) (*party, error) {
	p := &party{name: code, dir: filepath.Join(w.dir, strings.ToLower(code))}
	p.cfgPath = filepath.Join(p.dir, "resub.yaml")
	if err := os.MkdirAll(filepath.Join(p.dir, "keys"), 0o700); err != nil {
		return nil, err
	}
	secKey, err := w.writeSecretKey(p)
	if err != nil {
		return nil, err
	}
	keyPath, known, sshPass, err := w.sshLogin(p)
	if err != nil {
		return nil, err
	}
	role := "operator"
	if code == "MFR" {
		role = "manufacturer"
	}
	cfg := map[string]any{
		"party":      map[string]any{"name": code, "role": role},
		"data_dir":   filepath.Join(p.dir, "data"),
		"pgp":        map[string]any{"secret_key": secKey, "passphrase": "env:" + envName(code, "pgp", "pass")},
		"master_key": map[string]any{"id": strings.ToLower(code) + "-mk-1", "key": w.secret(envName(code, "master"), 32)},
		"ota":        map[string]any{"originator": "7700", "counter_jump": 16, "por_margin": "1h"},
	}
	partners := map[string]any{}
	var jobsList []map[string]any
	sftp := func(other string) map[string]any { return w.sftp(p, other, keyPath, known, sshPass) }
	switch code {
	case "MNOA":
		cfg["plmns"] = []any{plmnA}
		partners["vendor"] = map[string]any{"kind": "manufacturer", "code": "VENDOR", "drop": w.local(p, "vendor"), "pgp": w.pgpOf("VENDOR")}
		partners["bss"] = map[string]any{"kind": "internal", "code": "BSS", "drop": w.local(p, "bss"), "pgp": map[string]any{"disabled": true}}
		partners["m2m"] = map[string]any{"kind": "m2m-operator", "code": "M2M", "drop": w.local(p, "m2m"), "pgp": w.pgpOf("M2M")}
		partners["smsc"] = map[string]any{"kind": "smsc", "code": "SMSC", "drop": w.local(p, "smsc"), "pgp": map[string]any{"disabled": true}}
		if w.smppA != nil {
			// MNOA's SMSC over SMPP: no files to or from it.
			partners["smsc"] = map[string]any{"kind": "smsc", "code": "SMSC", "pgp": map[string]any{"disabled": true},
				"smpp": map[string]any{"host": "127.0.0.1", "port": w.smppA.Port(), "system_id": "resub-ota", "password": w.secret(envName("MNOA", "smpp"), 12),
					"window": 10, "rate": 200, "enquire_link": "30s", "timeout": "5s"}}
		}
		partners["mno-b"] = map[string]any{"kind": "operator", "code": "MNOB", "drop": sftp("MNOB"), "pgp": w.pgpOf("MNOB"),
			"transport_keys": w.tk("ab"), "plmns": []any{plmnB},
			"imsi_ranges": []any{map[string]any{"from": "999990000000000", "to": "999990000999999"}},
			"deadlines":   map[string]any{"handover-ack": "48h"}}
		partners["mfr"] = map[string]any{"kind": "manufacturer", "code": "MFR", "drop": sftp("MFR"), "pgp": w.pgpOf("MFR"), "transport_keys": w.tk("ma")}
		jobsList = []map[string]any{
			job("inventory", "a-inventory", "vendor", nil),
			job("msisdn", "a-msisdn-map", "bss", nil),
			job("authorisation", "a-authorisation", "m2m", nil),
			job("imsi-list", "a-imsi-list", "mno-b", map[string]string{"smsc": "smsc"}),
			job("ota-report", "a-ota-report", "smsc", nil),
			job("ota-deadline", "a-ota-deadline", "smsc", nil),
			job("handover", "a-handover", "mno-b", map[string]string{"manufacturer": "mfr"}),
			job("handover-ack", "a-handover-ack", "mno-b", map[string]string{"smsc": "smsc"}),
		}
		if w.smppA != nil {
			jobsList[4] = job("ota-submit", "a-ota-submit", "smsc", nil)
		}
		jobsList[0]["profile"] = "usim-aes"
	case "MNOB", "MNOC":
		own, other, otherCode, otherPLMN, otherFrom, otherTo, tkPair, auc := plmnB, "mno-c", "MNOC", plmnC, "999980000000000", "999980000999999", "bc", "aucb"
		ranges := []any{
			map[string]any{"name": "b-legacy", "from": "999999900000000", "to": "999999900000000"},
			map[string]any{"name": "b-main", "from": "999990000000001", "to": "999990000999999"},
		}
		if code == "MNOC" {
			own, other, otherCode, otherPLMN, otherFrom, otherTo, auc = plmnC, "mno-b", "MNOB", plmnB, "999990000000000", "999999999999999", "aucc"
			ranges = []any{map[string]any{"name": "c-main", "from": "999980000000001", "to": "999980000999999"}}
		}
		cfg["plmns"] = []any{own}
		cfg["imsi_ranges"] = ranges
		partners["m2m"] = map[string]any{"kind": "m2m-operator", "code": "M2M", "drop": w.local(p, "m2m"), "pgp": w.pgpOf("M2M")}
		partners["smsc"] = map[string]any{"kind": "smsc", "code": "SMSC", "drop": w.local(p, "smsc"), "pgp": map[string]any{"disabled": true}}
		partners["hlr"] = map[string]any{"kind": "hlr", "code": "HLR" + code[3:], "drop": w.local(p, "hlr"), "pgp": map[string]any{"disabled": true}, "transport_keys": w.tk(auc)}
		partners["mfr"] = map[string]any{"kind": "manufacturer", "code": "MFR", "drop": sftp("MFR"), "pgp": w.pgpOf("MFR"), "transport_keys": w.tk("m" + strings.ToLower(code[3:]))}
		partners[other] = map[string]any{"kind": "operator", "code": otherCode, "drop": sftp(otherCode), "pgp": w.pgpOf(otherCode),
			"transport_keys": w.tk(tkPair), "plmns": []any{otherPLMN},
			"imsi_ranges": []any{map[string]any{"from": otherFrom, "to": otherTo}}}
		cfg["partners"] = partners
		if code == "MNOB" {
			partners["mno-a"] = map[string]any{"kind": "operator", "code": "MNOA", "drop": sftp("MNOA"), "pgp": w.pgpOf("MNOA"),
				"transport_keys": w.tk("ab"), "plmns": []any{plmnA}, "deadlines": map[string]any{"imsi-result": "48h"}}
		}
		donorIn := "mno-a"
		if code == "MNOC" {
			donorIn = "mno-b"
		}
		jobsList = []map[string]any{
			job("switch-request", "b-switch-request", "m2m", nil),
			job("imsi-result", "b-imsi-result", donorIn, nil),
			job("handover-in", "b-handover", donorIn, map[string]string{"hlr": "hlr", "manufacturer": "mfr"}),
			job("key-response", "b-key-response", "mfr", map[string]string{"hlr": "hlr"}),
			job("authorisation", "a-authorisation", "m2m", nil),
			job("imsi-list", "a-imsi-list", other, map[string]string{"smsc": "smsc"}),
			job("ota-report", "a-ota-report", "smsc", nil),
			job("ota-deadline", "a-ota-deadline", "smsc", nil),
			job("handover", "a-handover", other, map[string]string{"manufacturer": "mfr"}),
			job("handover-ack", "a-handover-ack", other, map[string]string{"smsc": "smsc"}),
		}
		if code == "MNOB" {
			jobsList = append(jobsList, job("imsi-result-c", "b-imsi-result", "mno-c", nil))
		}
	case "MFR":
		partners["factory"] = map[string]any{"kind": "internal", "code": "FACTORY", "drop": w.local(p, "factory"), "pgp": map[string]any{"disabled": true}, "transport_keys": w.tk("factory")}
		for _, op := range []string{"MNOA", "MNOB", "MNOC"} {
			partners["mno-"+strings.ToLower(op[3:])] = map[string]any{"kind": "operator", "code": op, "drop": sftp(op), "pgp": w.pgpOf(op),
				"transport_keys": w.tk("m" + strings.ToLower(op[3:]))}
		}
		jobsList = []map[string]any{job("card-import", "m-card-import", "factory", map[string]string{"holder": "mno-a"})}
		for _, op := range []string{"a", "b", "c"} {
			jobsList = append(jobsList, job("key-release-"+op, "m-key-release", "mno-"+op, nil), job("key-request-"+op, "m-key-request", "mno-"+op, nil))
		}
	}
	cfg["partners"] = partners
	cfg["jobs"] = jobsList
	if code != "MFR" {
		cfg["profiles"] = profiles()
	}
	p.cfg = cfg
	w.parties[code] = p
	return p, nil
}
