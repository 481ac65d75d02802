package processor_test

import (
	"context"
	"flag"
	"fmt"
	"path/filepath"
	"testing"

	"resub/formats/native"
	"resub/processor"
	"resub/processor/ledger"
	"resub/samples/fleet"
)

var keyRecords = flag.Int("keys.records", 100000, "cards in BenchmarkKeyResponseIntake's key-response")

// BenchmarkKeyResponseIntake: B takes the manufacturer's key-response for
// -keys.records cards waiting for their pairs (each released with Ki, OPc
// and a key set), set-based and, beside it, record at a time (the
// reference the set-based step replaced). Every card is taken: sealed,
// provisioned (the provisioning file rendered) and acknowledged.
func BenchmarkKeyResponseIntake(b *testing.B) {
	n := *keyRecords
	f, err := fleet.Plan(fleet.Options{N: n, ICCIDBody: "8999902", IMSIBase: "001010000100001", MSISDNBase: "999100000501", Seed: "key-bench"})
	if err != nil {
		b.Fatal(err)
	}
	for _, step := range []struct {
		name string
		mk   func(*processor.Party) processor.FileStep
	}{
		{"set", func(p *processor.Party) processor.FileStep {
			return &processor.KeyResponseIntake{HLR: p.Partners["hlr"]}
		}},
		{"record", func(p *processor.Party) processor.FileStep {
			return &processor.KeyResponsePerRecord{HLR: p.Partners["hlr"]}
		}},
	} {
		b.Run(step.name, func(b *testing.B) {
			for b.Loop() {
				b.StopTimer()
				x, path := keyBenchWorld(b, f, n)
				b.StartTimer()
				res, err := x.b.ProcessFile(context.Background(), step.mk(x.b), processor.Input{Partner: x.b.Partners["mfr"], Name: filepath.Base(path), Path: path, Job: "key-response"})
				if err != nil {
					b.Fatal(err)
				}
				if res.Counts.Accepted != n {
					b.Fatalf("counts %+v", res.Counts)
				}
			}
			b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "records/s")
		})
	}
}

// keyBenchWorld is B with n cards waiting for their pairs at index 2 (one
// statement a few dozen cards) and the manufacturer's answer for each.
func keyBenchWorld(b *testing.B, f *fleet.Fleet, n int) (*keyWorld, string) {
	ctx := context.Background()
	w := newWorld(b)
	p := w.party("MNOB", mustRanges(b, "999-99:0000000000-0000099999"), nil)
	prof := profile3b(b, "usim-3b", true)
	p.Profiles[prof.Name] = prof
	w.partner(p, "mno-a", "MNOA", "operator", "tk-ab", mustRanges(b, "001-01"), false)
	w.partner(p, "hlr", "HLRB", "hlr", "tk-aucb", nil, true)
	w.partner(p, "mfr", "MFR", "manufacturer", "tk-mb", nil, false)
	err := p.Ledger.InTx(ctx, func(tx *ledger.Tx) error {
		in := tx.Inserter("cards", []string{"iccid", "imsi", "msisdn", "state", "profile", "owner", "source", "key_index", "list_length", "created_at", "updated_at"}, 64)
		for i := range n {
			c := f.Card(i)
			if err := in.Add(ctx, c.ICCID, fmt.Sprintf("99999%010d", i), c.MSISDN, "incoming", prof.Name, "M2M", "MNOA", 2, 3, "2026-01-01T00:00:00Z", "2026-01-01T00:00:00Z"); err != nil {
				return err
			}
		}
		if err := in.Flush(ctx); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `INSERT INTO imsi_allocations (imsi, iccid, state, ref, created_at, updated_at)
			SELECT imsi, iccid, 'pending', 'bench', created_at, updated_at FROM cards`)
		return err
	})
	if err != nil {
		b.Fatal(err)
	}
	tk := processor.NewTransport(w.tks["tk-mb"])
	recs := func(emit func(*native.Record) error) error {
		r := native.NewRecord(native.KeyResponse)
		secret := make([]byte, 16)
		for i := range n {
			c := f.Card(i)
			r.Set(native.FieldRequestID, fmt.Sprintf("MNOB-%d", i))
			r.Set(native.FieldICCID, c.ICCID)
			r.Set(native.FieldKeyIndex, "2")
			r.Set(native.FieldStatus, native.StatusReleased)
			r.Set(native.FieldAlgorithm, "milenage")
			for j, field := range []string{native.FieldKi, native.FieldOPc, native.FieldKIc, native.FieldKID, native.FieldKIK} {
				for k := range secret {
					secret[k] = byte(i + j*7 + k)
				}
				v, err := tk.Wrap(secret)
				if err != nil {
					return err
				}
				r.Set(field, v)
			}
			r.Set(native.FieldKVN, "1")
			r.Set(native.FieldOTAAlg, "aes-128")
			if err := emit(r); err != nil {
				return err
			}
		}
		return nil
	}
	path := w.send("MFR", "MNOB", native.KeyResponse, n, false, "tk-mb", recs)
	return &keyWorld{world: w, b: p}, path
}
