package metrics

import "github.com/prometheus/client_golang/prometheus"

// smppMetrics are the SMPP session's:
//
//	resub_smpp_submitted_total{partner}           segments the SMSC accepted
//	resub_smpp_throttled_total{partner}           submit_sm answered "throttled" or "queue full" (sent again)
//	resub_smpp_receipts_total{partner,state}      delivery receipts by state (DELIVRD, UNDELIV, …)
//	resub_smpp_mo_total{partner}                  mobile-originated deliver_sm (PoRs)
//	resub_smpp_unparseable_total{partner}         deliver_sm that could not be parsed (answered, recorded)
//	resub_smpp_pors_total{partner,verdict}        PoRs judged, by verdict
//	resub_smpp_in_flight{partner}                 submit_sm awaiting their response
//	resub_smpp_session_up{partner}                1 while a session is bound
type smppMetrics struct {
	submitted, throttled, mo, bad *prometheus.CounterVec
	receipts, pors                *prometheus.CounterVec
	inFlight, up                  *prometheus.GaugeVec
}

func newSMPPMetrics() *smppMetrics {
	c := func(name, help string, labels ...string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, append([]string{"partner"}, labels...))
	}
	g := func(name, help string) *prometheus.GaugeVec {
		return prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: name, Help: help}, []string{"partner"})
	}
	return &smppMetrics{
		submitted: c("resub_smpp_submitted_total", "OTA segments the SMSC accepted (submit_sm_resp OK)."),
		throttled: c("resub_smpp_throttled_total", "submit_sm answered throttled or queue full, sent again after a pause."),
		mo:        c("resub_smpp_mo_total", "Mobile-originated deliver_sm received (PoRs)."),
		bad:       c("resub_smpp_unparseable_total", "deliver_sm that could not be parsed (answered and recorded)."),
		receipts:  c("resub_smpp_receipts_total", "Delivery receipts by message state.", "state"),
		pors:      c("resub_smpp_pors_total", "PoRs received over SMPP, by verdict.", "verdict"),
		inFlight:  g("resub_smpp_in_flight", "submit_sm awaiting their response."),
		up:        g("resub_smpp_session_up", "1 while an SMPP session to the SMSC is bound."),
	}
}

func (s *smppMetrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{s.submitted, s.throttled, s.mo, s.bad, s.receipts, s.pors, s.inFlight, s.up}
}

// SMPPMeter records one SMSC's SMPP session.
type SMPPMeter struct {
	s       *smppMetrics
	partner string
}

// SMPP returns the meter of one SMSC partner's session.
func (m *Metrics) SMPP(partner string) *SMPPMeter { return &SMPPMeter{s: m.smpp, partner: partner} }

// Submitted counts accepted segments.
func (s *SMPPMeter) Submitted(n int) { s.s.submitted.WithLabelValues(s.partner).Add(float64(n)) }

// Throttled counts a throttled submit_sm.
func (s *SMPPMeter) Throttled() { s.s.throttled.WithLabelValues(s.partner).Inc() }

// Receipt counts a receipt by state.
func (s *SMPPMeter) Receipt(state string) { s.s.receipts.WithLabelValues(s.partner, state).Inc() }

// MO counts a mobile-originated message.
func (s *SMPPMeter) MO() { s.s.mo.WithLabelValues(s.partner).Inc() }

// Bad counts an unparseable deliver_sm.
func (s *SMPPMeter) Bad() { s.s.bad.WithLabelValues(s.partner).Inc() }

// PoRs counts judged PoRs by verdict.
func (s *SMPPMeter) PoRs(verdict string, n int) {
	s.s.pors.WithLabelValues(s.partner, verdict).Add(float64(n))
}

// InFlight sets the number of submit_sm awaiting their response.
func (s *SMPPMeter) InFlight(n int) { s.s.inFlight.WithLabelValues(s.partner).Set(float64(n)) }

// Up says whether a session is bound.
func (s *SMPPMeter) Up(up bool) {
	v := 0.0
	if up {
		v = 1
	}
	s.s.up.WithLabelValues(s.partner).Set(v)
}
