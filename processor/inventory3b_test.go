package processor_test

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"resub/formats/native"
	"resub/processor"
	"resub/processor/ledger"
	"resub/samples/fleet"
)

// TestInventoryPairOneOnly: A's inventory of 3b cards gives pair 1 and the
// list length only. A native inventory or a vendor output file that gives
// A a later pair is refused as a whole before any card is stored; the
// proper files store pair 1 at index 1.
func TestInventoryPairOneOnly(t *testing.T) {
	ctx := context.Background()
	const n = 3
	w := newWorld(t)
	prof := profile3b(t, "usim-3b", true)
	a := w.party("MNOA", mustRanges(t, "001-01"), nil)
	a.Profiles[prof.Name] = prof
	w.partner(a, "vendor", "VENDOR", "manufacturer", "tk-va", nil, false)
	f, err := fleet.New(fleet.Options{N: n, ICCIDBody: "8999902", IMSIBase: "001010000100001", Seed: t.Name(), Profile: prof.OTA, ListLength: listLen, KeyIndexAtReset: true})
	if err != nil {
		t.Fatal(err)
	}
	wrap := processor.NewTransport(w.tks["tk-va"])
	refused := func(t *testing.T, step processor.FileStep, path string) {
		t.Helper()
		res, err := a.ProcessFile(ctx, step, processor.Input{Partner: a.Partners["vendor"], Name: filepath.Base(path), Path: path, Job: "inventory"})
		var re *processor.RefusedError
		if !errors.As(err, &re) || res.Status != ledger.FileQuarantined {
			t.Fatalf("a file with pair 2: %+v %v", res, err)
		}
		if got := count(t, a, `SELECT COUNT(*) FROM cards`); got != 0 {
			t.Errorf("%d cards stored", got)
		}
		if got := count(t, a, `SELECT COUNT(*) FROM card_secrets`); got != 0 {
			t.Errorf("%d secrets stored", got)
		}
	}

	t.Run("native inventory with pair 2", func(t *testing.T) {
		leak := func(emit func(*native.Record) error) error {
			return f.InventoryRecords(wrap, prof.Name, f.Cards)(func(r *native.Record) error {
				if r.Get(native.FieldICCID) == f.Cards[1].ICCID {
					ki, err := wrap.Wrap(f.Cards[1].Ki(2))
					if err != nil {
						return err
					}
					r.Set(native.FieldKi, ki)
					r.Set(native.FieldKeyIndex, "2")
				}
				return emit(r)
			})
		}
		refused(t, &processor.InventoryImport{}, w.send("VENDOR", "MNOA", native.Inventory, n, false, "tk-va", leak))
	})

	var vendor bytes.Buffer
	if err := f.WriteVendor(&vendor, f.Cards, "MNOA", prof.Name, "VB-3B-1"); err != nil {
		t.Fatal(err)
	}
	t.Run("vendor file with a second Ki", func(t *testing.T) {
		text := strings.Replace(vendor.String(), "/KI/", "/KI/KI2/", 1)
		re := regexp.MustCompile(`(?m)^(8999902\d+ \d+ [0-9A-F]{32}) `)
		if !re.MatchString(text) {
			t.Fatal("vendor file layout changed: the test no longer adds a column")
		}
		text = re.ReplaceAllString(text, "$1 00112233445566778899AABBCCDDEEFF ")
		refused(t, &processor.InventoryImport{Profile: prof.Name}, w.sendRaw("VENDOR", "MNOA", "VENDOR_VB-3B-LEAK.out.pgp", text))
	})

	t.Run("proper vendor file", func(t *testing.T) {
		res := w.process(a, "vendor", &processor.InventoryImport{Profile: prof.Name}, w.sendRaw("VENDOR", "MNOA", "VENDOR_VB-3B-1.out.pgp", vendor.String()))
		if res.Counts.Accepted != n {
			t.Fatalf("%+v", res.Counts)
		}
		for _, c := range f.Cards {
			card, err := a.Ledger.Card(ctx, c.ICCID)
			if err != nil || card.KeyIndex != 1 || card.ListLength != listLen || card.Profile != prof.Name {
				t.Errorf("%+v %v", card, err)
			}
		}
		if got := count(t, a, `SELECT COUNT(*) FROM card_secrets WHERE key_index <> 1`); got != 0 {
			t.Errorf("%d secrets beyond pair 1", got)
		}
		if got := count(t, a, `SELECT COUNT(*) FROM key_sets WHERE key_index = 1`); got != n {
			t.Errorf("%d key sets of pair 1", got)
		}
	})
}
