package config

import (
	"strings"
	"testing"
)

// TestProfileZone: a profile's window has an explicit zone; a name that
// is no time zone is a problem with its path, an IANA name or none (UTC)
// is fine.
func TestProfileZone(t *testing.T) {
	dir := fixture(t)
	for zone, want := range map[string]string{"": "", "Europe/Berlin": "", "Mars/Olympus": `profiles.usim.zone: "Mars/Olympus" is not a time zone`} {
		body := validYAML
		if zone != "" {
			body = strings.Replace(body, `    kid: "35"`, "    kid: \"35\"\n    window: \"22:00-05:00\"\n    zone: "+zone, 1)
		}
		_, err := Load(writeConfig(t, dir, body))
		switch {
		case want == "" && err != nil:
			t.Errorf("zone %q: %v", zone, err)
		case want != "" && (err == nil || !strings.Contains(err.Error(), want)):
			t.Errorf("zone %q: %v, want %q", zone, err, want)
		}
	}
}

// TestProfileAddressing: the profile's addressing is one of the known
// ones; config check refuses one that cannot reach a file the profile
// writes (gsm_copy under adf-only) and aid without the AID.
func TestProfileAddressing(t *testing.T) {
	dir := fixture(t)
	for extra, want := range map[string]string{
		"":                                     "",
		"addressing: 7fff":                     "",
		"addressing: path\n    gsm_copy: true": "",
		"addressing: aid\n    usim_aid: a0000000871002": "",
		"addressing: adf-only":                          "",
		"addressing: adf-only\n    gsm_copy: true":      "profiles.usim.gsm_copy: addressing adf-only has no route to DF GSM",
		"addressing: aid":                               "profiles.usim.usim_aid:",
		"addressing: by-name":                           `profiles.usim.addressing: "by-name" is not`,
		"usim_aid: a0000000871002":                      "profiles.usim.usim_aid: only for addressing aid",
	} {
		body := validYAML
		if extra != "" {
			body = strings.Replace(body, `    kid: "35"`, "    kid: \"35\"\n    "+extra, 1)
		}
		_, err := Load(writeConfig(t, dir, body))
		switch {
		case want == "" && err != nil:
			t.Errorf("%q: %v", extra, err)
		case want != "" && (err == nil || !strings.Contains(err.Error(), want)):
			t.Errorf("%q: %v, want %q", extra, err, want)
		}
	}
}
