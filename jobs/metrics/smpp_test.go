package metrics_test

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"resub/jobs/metrics"
)

func TestSMPPMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := metrics.New(reg, nil)
	if err != nil {
		t.Fatal(err)
	}
	s := m.SMPP("smsc")
	s.Up(true)
	s.Submitted(3)
	s.Throttled()
	s.Receipt("DELIVRD")
	s.Receipt("DELIVRD")
	s.Receipt("UNDELIV")
	s.MO()
	s.Bad()
	s.PoRs("confirmed", 2)
	s.InFlight(7)
	for name, want := range map[string]map[string]float64{
		"resub_smpp_session_up":        {"partner=smsc": 1},
		"resub_smpp_submitted_total":   {"partner=smsc": 3},
		"resub_smpp_throttled_total":   {"partner=smsc": 1},
		"resub_smpp_receipts_total":    {"partner=smsc,state=DELIVRD": 2, "partner=smsc,state=UNDELIV": 1},
		"resub_smpp_mo_total":          {"partner=smsc": 1},
		"resub_smpp_unparseable_total": {"partner=smsc": 1},
		"resub_smpp_pors_total":        {"partner=smsc,verdict=confirmed": 2},
		"resub_smpp_in_flight":         {"partner=smsc": 7},
	} {
		got := values(t, reg, name)
		for k, v := range want {
			if got[k] != v {
				t.Errorf("%s{%s} = %v, want %v", name, k, got[k], v)
			}
		}
	}
	s.Up(false)
	if got := values(t, reg, "resub_smpp_session_up")["partner=smsc"]; got != 0 {
		t.Errorf("session down: %v", got)
	}
}
