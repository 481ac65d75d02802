// Package metrics holds resub's Prometheus metrics, registered on a
// registry the caller injects:
//
//	resub_drop_events_total{partner,job,event}         picked_up, delivered, archived, quarantined, retry, failure
//	resub_job_runs_total{job,result}                   result: ok, error
//	resub_job_run_duration_seconds{job}                histogram
//	resub_job_last_success_timestamp_seconds{job}      Unix time of the last successful run
//	resub_job_overdue{job}                             1 when the job has not succeeded within its deadline
//	resub_por_ignored_total{job}                       proofs of receipt that did not verify and changed nothing
//	resub_smpp_…{partner}                              the SMPP session's (see smpp.go)
package metrics

import (
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics records drop events and job runs.
type Metrics struct {
	now         func() time.Time
	started     time.Time
	events      *prometheus.CounterVec
	runs        *prometheus.CounterVec
	duration    *prometheus.HistogramVec
	lastSuccess *prometheus.GaugeVec
	porIgnored  *prometheus.CounterVec
	overdueDesc *prometheus.Desc
	smpp        *smppMetrics

	mu        sync.Mutex
	deadlines map[string]time.Duration
	successes map[string]time.Time
}

// New registers the metrics on reg. now is the clock (default time.Now).
func New(reg prometheus.Registerer, now func() time.Time) (*Metrics, error) {
	if now == nil {
		now = time.Now
	}
	m := &Metrics{
		now:     now,
		started: now(),
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "resub_drop_events_total", Help: "Files picked up, delivered, archived or quarantined, retries and failures, per partner and job.",
		}, []string{"partner", "job", "event"}),
		runs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "resub_job_runs_total", Help: "Job runs by result (ok, error).",
		}, []string{"job", "result"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "resub_job_run_duration_seconds", Help: "Duration of job runs.",
			Buckets: prometheus.ExponentialBuckets(0.01, 4, 10),
		}, []string{"job"}),
		lastSuccess: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "resub_job_last_success_timestamp_seconds", Help: "Unix time of the last successful run of the job.",
		}, []string{"job"}),
		porIgnored: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "resub_por_ignored_total", Help: "Proofs of receipt that did not verify (checksum, deciphering, counter, TAR, missing security) and changed nothing.",
		}, []string{"job"}),
		overdueDesc: prometheus.NewDesc("resub_job_overdue", "1 when the job has not succeeded within its deadline.", []string{"job"}, nil),
		deadlines:   map[string]time.Duration{},
		successes:   map[string]time.Time{},
		smpp:        newSMPPMetrics(),
	}
	for _, c := range append([]prometheus.Collector{m.events, m.runs, m.duration, m.lastSuccess, m.porIgnored, overdue{m}}, m.smpp.collectors()...) {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// Drop returns the counter of one partner's drop events for one job; it
// satisfies drop.Meter.
func (m *Metrics) Drop(partner, job string) *DropMeter {
	return &DropMeter{m: m, partner: partner, job: job}
}

// DropMeter counts one drop's events.
type DropMeter struct {
	m            *Metrics
	partner, job string
}

// Count counts one event.
func (d *DropMeter) Count(event string) {
	d.m.events.WithLabelValues(d.partner, d.job, event).Inc()
}

// Watch declares a job's deadline: it is overdue when it has not
// succeeded within deadline (since lastSuccess, or since start when it
// never has). A zero deadline means never overdue.
func (m *Metrics) Watch(job string, deadline time.Duration, lastSuccess time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.deadlines[job] = deadline
	if !lastSuccess.IsZero() {
		m.successes[job] = lastSuccess
		m.lastSuccess.WithLabelValues(job).Set(float64(lastSuccess.Unix()))
	}
}

// PoRsIgnored counts n proofs of receipt of a job's run that did not
// verify and changed nothing.
func (m *Metrics) PoRsIgnored(job string, n int) {
	if n > 0 {
		m.porIgnored.WithLabelValues(job).Add(float64(n))
	}
}

// ObserveRun records a finished run.
func (m *Metrics) ObserveRun(job string, started time.Time, d time.Duration, err error) {
	m.duration.WithLabelValues(job).Observe(d.Seconds())
	if err != nil {
		m.runs.WithLabelValues(job, "error").Inc()
		return
	}
	m.runs.WithLabelValues(job, "ok").Inc()
	end := started.Add(d)
	m.lastSuccess.WithLabelValues(job).Set(float64(end.Unix()))
	m.mu.Lock()
	m.successes[job] = end
	m.mu.Unlock()
}

// Overdue reports whether a watched job is past its deadline now.
func (m *Metrics) Overdue(job string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.overdueLocked(job, m.now())
}

func (m *Metrics) overdueLocked(job string, now time.Time) bool {
	dl := m.deadlines[job]
	if dl <= 0 {
		return false
	}
	since, ok := m.successes[job]
	if !ok {
		since = m.started
	}
	return now.Sub(since) > dl
}

// overdue computes resub_job_overdue at scrape time.
type overdue struct{ m *Metrics }

func (o overdue) Describe(ch chan<- *prometheus.Desc) { ch <- o.m.overdueDesc }

func (o overdue) Collect(ch chan<- prometheus.Metric) {
	o.m.mu.Lock()
	defer o.m.mu.Unlock()
	now := o.m.now()
	for job := range o.m.deadlines {
		v := 0.0
		if o.m.overdueLocked(job, now) {
			v = 1
		}
		ch <- prometheus.MustNewConstMetric(o.m.overdueDesc, prometheus.GaugeValue, v, job)
	}
}

// Handler serves the metrics of g in the Prometheus text format.
func Handler(g prometheus.Gatherer) http.Handler {
	return promhttp.HandlerFor(g, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
}
