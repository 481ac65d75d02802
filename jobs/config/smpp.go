package config

import (
	"fmt"
	"time"
)

// SMPP is an SMSC reached as an ESME over SMPP 3.4 (instead of, or
// besides, its file drop): OTA messages are submitted with submit_sm;
// receipts and proofs of receipt come back as deliver_sm.
type SMPP struct {
	Host       string    `yaml:"host"`
	Port       int       `yaml:"port"`
	SystemID   string    `yaml:"system_id"`
	Password   SecretRef `yaml:"password"`
	SystemType string    `yaml:"system_type"`
	// Bind is transceiver (one session) or transmitter-receiver (two).
	Bind string `yaml:"bind"`
	// Source is the address PoRs return to (our OTA short code); it
	// defaults to ota.originator with TON 0, NPI 1.
	Source *SMPPAddress `yaml:"source"`
	// Window is how many submit_sm may await their response at once;
	// Rate how many are sent per second at most.
	Window      int      `yaml:"window"`
	Rate        int      `yaml:"rate"`
	EnquireLink Duration `yaml:"enquire_link"`
	// Timeout bounds connect, bind and each response.
	Timeout Duration `yaml:"timeout"`
	TLS     *SMPPTLS `yaml:"tls"`
}

// SMPPAddress is an SMPP address with its type of number and numbering
// plan.
type SMPPAddress struct {
	Address string `yaml:"address"`
	TON     int    `yaml:"ton"`
	NPI     int    `yaml:"npi"`
}

// SMPPTLS turns TLS on for the SMPP session: CA is the file:PATH of the
// certificates to trust (the system's when empty).
type SMPPTLS struct {
	CA         string `yaml:"ca"`
	ServerName string `yaml:"server_name"`
}

// SMPPBinds are the bind modes.
var SMPPBinds = []string{"transceiver", "transmitter-receiver"}

func (s *SMPP) applyDefaults(originator string) {
	if s.Port == 0 {
		s.Port = 2775
	}
	if s.Bind == "" {
		s.Bind = "transceiver"
	}
	if s.Source == nil && originator != "" {
		s.Source = &SMPPAddress{Address: originator, TON: 0, NPI: 1}
	}
	if s.Window == 0 {
		s.Window = 10
	}
	if s.Rate == 0 {
		s.Rate = 50
	}
	if s.EnquireLink == 0 {
		s.EnquireLink = Duration(30 * time.Second)
	}
	if s.Timeout == 0 {
		s.Timeout = Duration(10 * time.Second)
	}
}

func (c *Config) validateSMPP(ps *problems, path string, p *Partner) {
	s := p.SMPP
	if p.Kind != "smsc" {
		ps.add(path, "only an smsc partner speaks SMPP (this one is a %s)", p.Kind)
	}
	if s.Host == "" {
		ps.add(path+".host", "required")
	}
	if s.Port < 1 || s.Port > 65535 {
		ps.add(path+".port", "%d is not a TCP port", s.Port)
	}
	if s.SystemID == "" {
		ps.add(path+".system_id", "required")
	} else if len(s.SystemID) > 15 {
		ps.add(path+".system_id", "longer than the 15 characters SMPP allows")
	}
	c.checkRef(ps, path+".password", s.Password, true)
	if len(s.SystemType) > 12 {
		ps.add(path+".system_type", "longer than the 12 characters SMPP allows")
	}
	if !oneOf(s.Bind, SMPPBinds) {
		ps.add(path+".bind", "%q is not transceiver or transmitter-receiver", s.Bind)
	}
	if s.Source == nil || s.Source.Address == "" {
		ps.add(path+".source.address", "required (or set ota.originator): where the cards' PoRs return")
	} else {
		if len(s.Source.Address) > 20 {
			ps.add(path+".source.address", "longer than the 20 characters SMPP allows")
		}
		if s.Source.TON < 0 || s.Source.TON > 6 {
			ps.add(path+".source.ton", "%d is not an SMPP type of number (0-6)", s.Source.TON)
		}
		if s.Source.NPI < 0 || s.Source.NPI > 18 {
			ps.add(path+".source.npi", "%d is not an SMPP numbering plan (0-18)", s.Source.NPI)
		}
	}
	if s.Window < 1 || s.Window > 10000 {
		ps.add(path+".window", "%d is not between 1 and 10000", s.Window)
	}
	if s.Rate < 1 {
		ps.add(path+".rate", "must be at least 1 submit_sm per second")
	}
	if s.EnquireLink < Duration(time.Second) {
		ps.add(path+".enquire_link", "must be at least 1s")
	}
	if s.Timeout < Duration(100*time.Millisecond) {
		ps.add(path+".timeout", "must be at least 100ms")
	}
	if t := s.TLS; t != nil && t.CA != "" {
		f, ok := cutFile(t.CA)
		if !ok {
			ps.add(path+".tls.ca", "write file:PATH")
		} else {
			c.fileExists(ps, path+".tls.ca", f)
		}
	}
}

func cutFile(s string) (string, bool) {
	if len(s) > len("file:") && s[:len("file:")] == "file:" {
		return s[len("file:"):], true
	}
	return "", false
}

// SMPPAddr is host:port of the partner's SMSC.
func (s *SMPP) Addr() string { return fmt.Sprintf("%s:%d", s.Host, s.Port) }
