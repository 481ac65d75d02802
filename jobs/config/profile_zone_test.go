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
