package config

import (
	"strings"
	"testing"
)

func TestProfileRotation(t *testing.T) {
	dir := fixture(t)
	with := func(rot string) string {
		return strings.Replace(validYAML, `reset: {tar: b00020, apdu: "80e2000000"}`,
			"reset: {tar: b00020, apdu: \"80e2000000\"}\n    rotation: "+rot, 1) +
			"  - {name: rotate, kind: b-key-rotation, partner: smsc, schedule: \"0 23 * * *\", zone: UTC}\n"
	}
	cfg, err := Load(writeConfig(t, dir, with(`{tar: "000000", kvn: 2}`)))
	if err != nil {
		t.Fatalf("valid rotation refused: %v", err)
	}
	r := cfg.Profiles["usim"].Rotation
	if r == nil || r.TAR != "000000" || r.KVN != 2 || r.Replace != nil {
		t.Errorf("rotation read as %+v", r)
	}
	if _, err := Load(writeConfig(t, dir, with(`{}`))); err != nil {
		t.Errorf("defaults refused: %v", err)
	}
	for rot, want := range map[string]string{
		`{tar: "00"}`:                "profiles.usim.rotation.tar:",
		`{kvn: 16}`:                  "profiles.usim.rotation.kvn: 16 is not an SCP80 key version",
		`{replace: false}`:           "profiles.usim.rotation.kvn: required when replace is false",
		`{tar: "000000", colour: 1}`: "profiles.usim.rotation.colour: unknown key",
	} {
		_, err := Load(writeConfig(t, dir, with(rot)))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("rotation %s: want %q, got %v", rot, want, err)
		}
	}
	body := strings.Replace(with(`{kvn: 2}`), "    rotation:", "    key_index: {tar: b0ff02, apdu: \"80aa0000II\", effect: immediate, message: same}\n    list_length: 3\n    rotation:", 1)
	if _, err := Load(writeConfig(t, dir, body)); err == nil || !strings.Contains(err.Error(), "rotation is for 3a profiles") {
		t.Errorf("3b profile with rotation: %v", err)
	}
}
