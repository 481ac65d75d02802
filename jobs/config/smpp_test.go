package config

import (
	"errors"
	"strings"
	"testing"
	"time"
)

const smppPartner = `
  smsc-smpp:
    kind: smsc
    code: SMSC-S
    smpp:
      host: smsc.example.invalid
      system_id: resub-ota
      password: env:RESUB_SMPP_PASSWORD
    pgp: {disabled: true}
`

func TestSMPPPartnerDefaults(t *testing.T) {
	dir := fixture(t)
	body := strings.Replace(validYAML, "profiles:", strings.TrimPrefix(smppPartner, "\n")+"profiles:", 1)
	body = strings.Replace(body, "master_key:", "ota: {originator: \"7700\"}\nmaster_key:", 1)
	body += `  - {name: ota-submit, kind: a-ota-submit, partner: smsc-smpp, schedule: "*/5 * * * *"}
`
	cfg, err := Load(writeConfig(t, dir, body))
	if err != nil {
		t.Fatalf("valid SMPP partner refused: %v", err)
	}
	s := cfg.Partners["smsc-smpp"].SMPP
	if s.Port != 2775 || s.Bind != "transceiver" || s.Window != 10 || s.Rate != 50 || s.EnquireLink.D() != 30*time.Second || s.Timeout.D() != 10*time.Second {
		t.Errorf("defaults: %+v", s)
	}
	if s.Source == nil || s.Source.Address != "7700" || s.Source.TON != 0 || s.Source.NPI != 1 {
		t.Errorf("source defaults from ota.originator: %+v", s.Source)
	}
}

func TestSMPPProblemsListed(t *testing.T) {
	dir := fixture(t)
	bad := `
  smsc-smpp:
    kind: hlr
    code: SMSC-S
    smpp:
      host: ""
      port: 70000
      system_id: a-system-id-that-is-too-long
      password: secret-inline
      bind: receiver
      window: 0
      rate: -1
      enquire_link: 10ms
      tls: {ca: file:missing-ca.pem}
    pgp: {disabled: true}
`
	body := strings.Replace(validYAML, "profiles:", strings.TrimPrefix(bad, "\n")+"profiles:", 1)
	body += `  - {name: ota-submit, kind: a-ota-submit, partner: smsc, schedule: "*/5 * * * *"}
`
	_, err := Load(writeConfig(t, dir, body))
	var ce *Error
	if !errors.As(err, &ce) {
		t.Fatalf("want *Error, got %v", err)
	}
	msg := err.Error()
	for _, w := range []string{
		"partners.smsc-smpp.smpp: only an smsc partner speaks SMPP",
		"partners.smsc-smpp.smpp.host: required",
		"partners.smsc-smpp.smpp.port: 70000 is not a TCP port",
		"partners.smsc-smpp.smpp.system_id: longer than",
		"partners.smsc-smpp.smpp.password: secret given inline",
		"partners.smsc-smpp.smpp.bind:",
		"partners.smsc-smpp.smpp.source.address: required",
		"partners.smsc-smpp.smpp.rate:",
		"partners.smsc-smpp.smpp.enquire_link:",
		"partners.smsc-smpp.smpp.tls.ca: file not found",
		"jobs[1].partner: job kind a-ota-submit needs a partner with smpp settings",
	} {
		if !strings.Contains(msg, w) {
			t.Errorf("missing problem %q in:\n%s", w, msg)
		}
	}
	if strings.Contains(msg, "secret-inline") {
		t.Errorf("the inline password is printed:\n%s", msg)
	}
}
