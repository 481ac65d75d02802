package jobs

import (
	"bytes"
	"testing"
	"time"

	"resub/formats/ota"
	"resub/jobs/config"
)

// TestBuildProfileAddressingZone: the profile's addressing, USIM AID and
// zone reach the card profile; the defaults stay ADF addressing and UTC.
func TestBuildProfileAddressingZone(t *testing.T) {
	base := config.Profile{TAR: "b00011", SPI: "1639", KIc: "12", KID: "12", CLA: "00", Format: "compact",
		Reset: config.ResetStep{TAR: "b0ff01", APDU: "80c20400"}, Rate: 10, Window: "22:00-05:00"}
	prof, err := buildProfile("usim", &base)
	if err != nil {
		t.Fatal(err)
	}
	if prof.OTA.Addressing != ota.AddressADF || prof.Zone != nil {
		t.Errorf("defaults: addressing %s, zone %v", prof.OTA.Addressing, prof.Zone)
	}
	p := base
	p.Addressing, p.USIMAID, p.Zone = "aid", "a0000000871002", "Europe/Berlin"
	if _, err := time.LoadLocation("Europe/Berlin"); err != nil {
		p.Zone = "UTC"
	}
	prof, err = buildProfile("usim", &p)
	if err != nil {
		t.Fatal(err)
	}
	if prof.OTA.Addressing != ota.AddressAID || !bytes.Equal(prof.OTA.USIMAID, []byte{0xa0, 0, 0, 0, 0x87, 0x10, 0x02}) || prof.Zone == nil || prof.Zone.String() != p.Zone {
		t.Errorf("addressing %s, AID %x, zone %v", prof.OTA.Addressing, prof.OTA.USIMAID, prof.Zone)
	}
	p = base
	p.Addressing, p.GSMCopy = "adf-only", true
	if _, err := buildProfile("usim", &p); err == nil {
		t.Error("adf-only with gsm_copy built")
	}
}
