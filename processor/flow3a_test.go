package processor_test

import (
	"bytes"
	"context"
	"testing"
	"time"

	"resub/formats/native"
	"resub/processor"
	"resub/processor/ledger"
	"resub/samples/fleet"
)

// setup3a builds A (donor), B (recipient), a fleet of n cards at A and
// the files that precede the change.
func setup3a(t *testing.T, n int) (*world, *fleet.Fleet, *processor.Party, *processor.Party) {
	return setup3aFrom(t, n, false)
}

// setup3aFrom is setup3a with A's inventory from the SIM vendor's output
// file (viaVendor) or a native inventory.
func setup3aFrom(t *testing.T, n int, viaVendor bool) (*world, *fleet.Fleet, *processor.Party, *processor.Party) {
	w := newWorld(t)
	ours := mustRanges(t, "001-01")
	bRanges := mustRanges(t, "999-99:0000000000-0000099999")
	a := w.party("MNOA", ours, nil)
	b := w.party("MNOB", bRanges, []processor.Range{{Name: "b-main", From: "999990000000001", To: "999990000099999"}})
	w.partner(a, "vendor", "VENDOR", "manufacturer", "tk-va", nil, false)
	w.partner(a, "bss", "BSS", "hlr", "", nil, true)
	w.partner(a, "m2m", "M2M", "m2m-operator", "", nil, false)
	w.partner(a, "mno-b", "MNOB", "operator", "tk-ab", bRanges, false)
	w.partner(a, "smsc", "SMSC", "smsc", "", nil, true)
	w.partner(b, "m2m", "M2M", "m2m-operator", "", nil, false)
	w.partner(b, "mno-a", "MNOA", "operator", "tk-ab", ours, false)
	w.partner(b, "hlr", "HLRB", "hlr", "tk-aucb", nil, true)

	f, err := fleet.New(fleet.Options{N: n, Seed: t.Name(), Profile: w.prof.OTA, Counter: 5})
	if err != nil {
		t.Fatal(err)
	}
	if err := f.BuildSIMs(); err != nil {
		t.Fatal(err)
	}
	for _, c := range f.Cards {
		w.smsc.Register(c.MSISDN, c.SIM)
	}
	if viaVendor {
		var vendor bytes.Buffer
		if err := f.WriteVendor(&vendor, f.Cards, "MNOA", "usim-aes", "VB-3A-1"); err != nil {
			t.Fatal(err)
		}
		w.process(a, "vendor", &processor.InventoryImport{Profile: "usim-aes"}, w.sendRaw("VENDOR", "MNOA", "VENDOR_VB-3A-1.out.pgp", vendor.String()))
	} else {
		vendorWrap := processor.NewTransport(w.tks["tk-va"])
		inv := w.send("VENDOR", "MNOA", native.Inventory, n, false, "tk-va", f.InventoryRecords(vendorWrap, "usim-aes", f.Cards))
		w.process(a, "vendor", &processor.InventoryImport{}, inv)
	}
	w.process(a, "bss", processor.MSISDNImport{}, w.send("BSS", "MNOA", native.MSISDNMap, n, true, "", fleet.MSISDNRecords(f.Cards)))
	return w, f, a, b
}

func TestFlow3a(t *testing.T) {
	ctx := context.Background()
	const n = 6
	w, f, a, b := setup3a(t, n)
	cut := w.now.AddDate(0, 0, 1)
	// The M2M operator authorises all but the last card.
	w.process(a, "m2m", processor.Authorisation{}, w.send("M2M", "MNOA", native.SwitchAuthorisation, n-1, false, "", fleet.AuthorisationRecords(f.Cards[:n-1], "MNOB", cut)))
	// One card is switched off: its PoR never comes.
	f.Cards[1].SIM.SetOff(true)

	// B: switch request -> imsi-list.
	res := w.process(b, "m2m", &processor.SwitchRequest{Donor: b.Partners["mno-a"]}, w.send("M2M", "MNOB", native.SwitchRequest, n, false, "", fleet.SwitchRequestRecords(f.Cards, "MNOA", cut)))
	if res.Counts.Accepted != n {
		t.Fatalf("switch request: %+v", res.Counts)
	}
	imsiList := output(t, res.Outputs, "imsi-list")

	// A: imsi-list -> imsi-result + ota-batch.
	res = w.process(a, "mno-b", &processor.IMSIList{SMSC: a.Partners["smsc"]}, imsiList.Path)
	if res.Counts.Accepted != n-1 || res.Counts.Rejected != 1 || res.Counts.Messages != n-1 {
		t.Fatalf("imsi-list at A: %+v", res.Counts)
	}
	result1 := output(t, res.Outputs, "imsi-result")
	batch := output(t, res.Outputs, "ota-batch")
	w.process(b, "mno-a", processor.IMSIResultIntake{}, result1.Path)

	// SMSC + cards, then A reads the report.
	res = w.process(a, "smsc", &processor.OTAReport{}, w.runSMSC(batch, "MNOA"))
	if res.Counts.Accepted != n-1 {
		t.Fatalf("report: %+v", res.Counts)
	}
	for i, c := range f.Cards[:n-1] {
		card, _ := a.Ledger.Card(ctx, c.ICCID)
		want := ledger.CardConfirmed
		if i == 1 {
			want = ledger.CardMoving
		}
		if card.State != want {
			t.Errorf("card %d at A: %s, want %s", i, card.State, want)
		}
		if i != 1 && c.SIM.IMSI() != card.IMSI {
			t.Errorf("card %d: SIM holds %s, ledger %s", i, c.SIM.IMSI(), card.IMSI)
		}
	}
	w.process(b, "mno-a", processor.IMSIResultIntake{}, output(t, res.Outputs, "imsi-result").Path)

	// A hands over the confirmed cards; B provisions and acknowledges.
	hres, err := a.RunSweep(ctx, "handover", &processor.Handover{Recipient: a.Partners["mno-b"]}, false)
	if err != nil {
		t.Fatal(err)
	}
	w.deliverAll(a, hres.Outputs)
	if hres.Counts.Records != n-2 {
		t.Fatalf("handover: %+v", hres.Counts)
	}
	res = w.process(b, "mno-a", &processor.HandoverIntake{HLR: b.Partners["hlr"]}, output(t, hres.Outputs, "handover").Path)
	if res.Counts.Accepted != n-2 {
		t.Fatalf("handover at B: %+v", res.Counts)
	}
	ack := output(t, res.Outputs, "handover-ack")
	output(t, res.Outputs, "provisioning")

	// A resets the provisioned cards and releases them.
	res = w.process(a, "mno-b", &processor.HandoverAck{SMSC: a.Partners["smsc"]}, ack.Path)
	if res.Counts.Messages != n-2 {
		t.Fatalf("ack at A: %+v", res.Counts)
	}
	w.process(a, "smsc", &processor.OTAReport{}, w.runSMSC(output(t, res.Outputs, "ota-batch"), "MNOA"))

	counts, _ := a.Ledger.CountByState(ctx)
	if counts[ledger.CardReleased] != n-2 || counts[ledger.CardMoving] != 1 || counts[ledger.CardActive] != 1 {
		t.Errorf("A's cards by state: %v", counts)
	}
	bc, _ := b.Ledger.CountByState(ctx)
	if bc[ledger.CardActive] != n-2 {
		t.Errorf("B's cards by state: %v", bc)
	}
	for i, c := range f.Cards[:n-1] {
		if i == 1 {
			continue
		}
		if c.SIM.Resets() != 1 {
			t.Errorf("card %d reset %d times", i, c.SIM.Resets())
		}
		bcard, err := b.Ledger.Card(ctx, c.ICCID)
		if err != nil || bcard.IMSI != c.SIM.IMSI() || bcard.MSISDN != c.MSISDN {
			t.Errorf("card %d at B: %+v %v", i, bcard, err)
		}
	}

	// A's released cards keep their secrets until the retention ends,
	// then the erase sweep crypto-erases them.
	a.Retention = 24 * time.Hour
	if er, err := a.RunSweep(ctx, "erase", processor.Erase{}, false); err != nil || er.Counts.Accepted != 0 {
		t.Fatalf("erase within the retention: %+v %v", er, err)
	}
	w.now = w.now.Add(25 * time.Hour)
	er, err := a.RunSweep(ctx, "erase", processor.Erase{}, false)
	if err != nil || er.Counts.Accepted != n-2 {
		t.Fatalf("erase after the retention: %+v %v", er, err)
	}
	counts, _ = a.Ledger.CountByState(ctx)
	if counts[ledger.CardErased] != n-2 || counts[ledger.CardReleased] != 0 {
		t.Errorf("A's cards after the erase: %v", counts)
	}
	var left int
	if err := a.Ledger.QueryRow(ctx, `SELECT COUNT(*) FROM card_secrets WHERE iccid = ?`, f.Cards[0].ICCID).Scan(&left); err != nil || left != 0 {
		t.Errorf("an erased card keeps %d secrets (%v)", left, err)
	}
}
