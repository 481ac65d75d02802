package faulttest

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"resub/formats/native"
	"resub/jobs"
	"resub/jobs/config"
	"resub/jobs/metrics"
	"resub/samples/demo"
	"resub/samples/smsc"
)

// TestPoRIgnoredMetric: MNOA's ota-report job reads a report in which a
// forged PoR (the card's own with its last octet changed) comes before
// the card's genuine one. The forged PoR changes nothing, and the run
// counts it in resub_por_ignored_total{job="ota-report"}; the genuine
// PoRs are not counted.
func TestPoRIgnoredMetric(t *testing.T) {
	ctx := context.Background()
	st := imsiListStage(t)
	cfg, err := config.Load(st.Config("MNOA"))
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	m, err := metrics.New(reg, nil)
	if err != nil {
		t.Fatal(err)
	}
	rt, err := jobs.Open(ctx, cfg, jobs.Options{Log: slog.New(newRecorder(nil)), Metrics: m})
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close()
	if _, err := rt.RunJob(ctx, "imsi-list", jobs.RunOptions{Manual: true}); err != nil {
		t.Fatalf("imsi-list: %v", err)
	}
	outbox := st.DropDir("MNOA", "smsc", "outbox")
	names, err := demo.Files(outbox)
	if err != nil || len(names) != 1 {
		t.Fatalf("ota-batch in the SMSC outbox: %v %v", names, err)
	}
	rc, err := st.Open(filepath.Join(outbox, names[0]), "MNOA", "SMSC")
	if err != nil {
		t.Fatal(err)
	}
	batch, err := io.ReadAll(rc)
	rc.Close()
	if err != nil {
		t.Fatal(err)
	}
	cards, err := st.Cards()
	if err != nil {
		t.Fatal(err)
	}
	sm := smsc.New()
	for _, c := range cards {
		sm.Register(c.MSISDN, c.SIM)
	}
	// The card that gets the first message also gets a forged PoR.
	sm.SetSpoofed(firstMSISDN(t, batch), true)
	var rep bytes.Buffer
	stats, err := sm.Process(bytes.NewReader(batch), &rep, smsc.Report{Sender: "SMSC", Receiver: "MNOA", Sequence: 1})
	if err != nil {
		t.Fatal(err)
	}
	if stats.Spoofed != 1 || stats.PoRs == 0 {
		t.Fatalf("SMSC: %+v; want one forged PoR and genuine ones", stats)
	}
	name := "SMSC_MNOA_ota-report_" + sm.Now().UTC().Format("20060102") + "_000001.txt"
	if err := os.WriteFile(filepath.Join(st.DropDir("MNOA", "smsc", "inbox"), name), rep.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	sum, err := rt.RunJob(ctx, "ota-report", jobs.RunOptions{Manual: true})
	if err != nil {
		t.Fatalf("ota-report: %v", err)
	}
	if sum.PoRsIgnored != 1 {
		t.Errorf("summary: %s; want 1 PoR ignored", sum)
	}
	got := values(t, reg, "resub_por_ignored_total")
	if got["job=ota-report"] != 1 {
		t.Errorf("resub_por_ignored_total: %v; want job=ota-report 1", got)
	}
}

// firstMSISDN is the MSISDN of an ota-batch's first message.
func firstMSISDN(t *testing.T, batch []byte) string {
	t.Helper()
	rd := native.NewReader(bytes.NewReader(batch), native.Options{Type: native.OTABatch.Name})
	if _, err := rd.Header(); err != nil {
		t.Fatal(err)
	}
	rec, err := rd.Read()
	if err != nil {
		t.Fatal(err)
	}
	return rec.Get(native.FieldMSISDN)
}

// values reads a metric's samples from reg, keyed by their labels.
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
			out[strings.Join(labels, ",")] = m.GetCounter().GetValue()
		}
	}
	return out
}
