package processor

import (
	"testing"
	"time"
)

// TestWindowZone: a profile's window is local to its zone; the ota-batch's
// #window is that window in UTC for the night concerned, each end placed
// by the zone's rules on its own date, so the nights of a daylight-saving
// change come out right; a cut-over date opens at the window's start on
// that date in the zone.
func TestWindowZone(t *testing.T) {
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Skip("no zoneinfo")
	}
	prof := &Profile{Name: "p", Window: "22:00-05:00", Zone: berlin}
	for _, c := range []struct {
		night string // a moment of the evening the window opens (Berlin)
		want  string
	}{
		{"2027-01-10T12:00:00+01:00", "21:00-04:00"}, // winter: CET both ends
		{"2027-03-27T12:00:00+01:00", "21:00-03:00"}, // the spring change: opens CET, closes CEST
		{"2027-07-10T12:00:00+02:00", "20:00-03:00"}, // summer: CEST both ends
		{"2026-10-24T12:00:00+02:00", "20:00-04:00"}, // the autumn change: opens CEST, closes CET
	} {
		at, _ := time.Parse(time.RFC3339, c.night)
		got, err := prof.utcWindow(at)
		if err != nil || got != c.want {
			t.Errorf("night of %s: %q %v, want %q", c.night, got, err, c.want)
		}
	}
	utc := &Profile{Name: "u", Window: "22:00-05:00"}
	if got, _ := utc.utcWindow(time.Date(2027, 3, 27, 12, 0, 0, 0, time.UTC)); got != "22:00-05:00" {
		t.Errorf("UTC profile: %q", got)
	}
	for _, c := range []struct {
		prof    *Profile
		cutover string
		want    string
	}{
		{prof, "2027-03-28", "2027-03-28T20:00:00Z"}, // the first evening in CEST
		{prof, "2027-03-27", "2027-03-27T21:00:00Z"},
		{utc, "2027-03-28", "2027-03-28T22:00:00Z"},
		{&Profile{Name: "all-day", Zone: berlin}, "2026-12-05", "2026-12-04T23:00:00Z"},
	} {
		got, ok, err := c.prof.cutoverStart(c.cutover)
		if err != nil || !ok || got.UTC().Format(time.RFC3339) != c.want {
			t.Errorf("%s cut-over %s: %s %v %v, want %s", c.prof.Name, c.cutover, got.UTC().Format(time.RFC3339), ok, err, c.want)
		}
	}
	if _, ok, err := prof.cutoverStart(""); ok || err != nil {
		t.Errorf("no cut-over: %v %v", ok, err)
	}
}
