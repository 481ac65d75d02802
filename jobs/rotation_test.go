package jobs

import (
	"testing"

	"resub/formats/ota"
	"resub/jobs/config"
)

func TestBuildProfileRotation(t *testing.T) {
	base := config.Profile{TAR: "b00011", SPI: "1639", KIc: "12", KID: "12", CLA: "00", Format: "compact",
		Reset: config.ResetStep{TAR: "b0ff01", APDU: "80c20400"}, Rate: 10}
	off := false
	for _, c := range []struct {
		rot  *config.Rotation
		want *ota.TAR
		kvn  int
		repl bool
	}{
		{nil, nil, 0, false},
		{&config.Rotation{}, &ota.TAR{0, 0, 0}, 0, true},
		{&config.Rotation{TAR: "b00000", KVN: 3, Replace: &off}, &ota.TAR{0xb0, 0, 0}, 3, false},
	} {
		p := base
		p.Rotation = c.rot
		prof, err := buildProfile("usim", &p)
		if err != nil {
			t.Fatal(err)
		}
		if c.rot == nil {
			if prof.Rotation != nil {
				t.Errorf("rotation without configuration: %+v", prof.Rotation)
			}
			continue
		}
		if r := prof.Rotation; r == nil || r.TAR != *c.want || r.KVN != c.kvn || r.Replace != c.repl {
			t.Errorf("%+v mapped to %+v", c.rot, r)
		}
	}
}
