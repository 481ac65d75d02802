package metrics_test

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"resub/jobs/metrics"
)

// values gathers one metric family as "label=value,..." -> value.
func values(t *testing.T, reg *prometheus.Registry, name string) map[string]float64 {
	t.Helper()
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, l.GetName()+"="+l.GetValue())
			}
			v := m.GetGauge().GetValue() + m.GetCounter().GetValue()
			out[strings.Join(labels, ",")] = v
		}
	}
	return out
}

func TestOverdue(t *testing.T) {
	now := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	reg := prometheus.NewRegistry()
	m, err := metrics.New(reg, func() time.Time { return now })
	if err != nil {
		t.Fatal(err)
	}
	m.Watch("pickup", time.Hour, now.Add(-30*time.Minute))
	m.Watch("report", 24*time.Hour, time.Time{}) // never succeeded: counts from start
	m.Watch("manual", 0, time.Time{})            // no deadline
	if got, want := values(t, reg, "resub_job_overdue"), map[string]float64{"job=manual": 0, "job=pickup": 0, "job=report": 0}; !reflect.DeepEqual(got, want) {
		t.Errorf("overdue = %v, want %v", got, want)
	}
	now = now.Add(2 * time.Hour)
	m.ObserveRun("report", now.Add(-time.Minute), time.Second, errors.New("down"))
	if got, want := values(t, reg, "resub_job_overdue"), map[string]float64{"job=manual": 0, "job=pickup": 1, "job=report": 0}; !reflect.DeepEqual(got, want) {
		t.Errorf("overdue two hours later = %v, want %v", got, want)
	}
	m.ObserveRun("pickup", now.Add(-time.Minute), time.Second, nil)
	if m.Overdue("pickup") {
		t.Error("pickup overdue right after a success")
	}
	if got := values(t, reg, "resub_job_last_success_timestamp_seconds")["job=pickup"]; got != float64(now.Add(-time.Minute+time.Second).Unix()) {
		t.Errorf("last success = %v", got)
	}
	if got, want := values(t, reg, "resub_job_runs_total"), map[string]float64{"job=report,result=error": 1, "job=pickup,result=ok": 1}; !reflect.DeepEqual(got, want) {
		t.Errorf("runs = %v, want %v", got, want)
	}
}

func TestDropMeter(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := metrics.New(reg, nil)
	if err != nil {
		t.Fatal(err)
	}
	d := m.Drop("mno-a", "pickup")
	d.Count("picked_up")
	d.Count("picked_up")
	d.Count("retry")
	want := map[string]float64{"event=picked_up,job=pickup,partner=mno-a": 2, "event=retry,job=pickup,partner=mno-a": 1}
	if got := values(t, reg, "resub_drop_events_total"); !reflect.DeepEqual(got, want) {
		t.Errorf("events = %v, want %v", got, want)
	}
	if _, err := metrics.New(reg, nil); err == nil {
		t.Error("registering twice on one registry succeeded")
	}
}

func TestPoRsIgnored(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := metrics.New(reg, nil)
	if err != nil {
		t.Fatal(err)
	}
	m.PoRsIgnored("ota-report", 2)
	m.PoRsIgnored("ota-report", 0)
	m.PoRsIgnored("ota-report", 1)
	want := map[string]float64{"job=ota-report": 3}
	if got := values(t, reg, "resub_por_ignored_total"); !reflect.DeepEqual(got, want) {
		t.Errorf("ignored PoRs = %v, want %v", got, want)
	}
}
