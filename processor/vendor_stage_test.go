package processor_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"resub/formats/native"
	"resub/formats/ota"
	"resub/formats/vendor"
	"resub/processor"
	"resub/processor/ledger"
	"resub/samples/fleet"
)

// vendorText is a SIM vendor's output file whose secrets are encrypted
// under the vendor's transport key; edit may change a card's secrets as
// written (after encryption).
func vendorText(t *testing.T, w *world, cards []*fleet.Card, profile string, listLength int, edit func(i int, c *vendor.Card)) string {
	t.Helper()
	enc := func(v []byte) []byte { return vendorEnc(t, w, v) }
	var buf bytes.Buffer
	vw := vendor.NewWriter(&buf)
	h := &vendor.Header{Customer: "MNOA", Quantity: len(cards), Type: "USIM", Profile: profile, Batch: "VB-1", Algorithm: "MILENAGE",
		TransportKey: "tk-va", KeyListLength: listLength}
	if err := vw.WriteHeader(h, []string{"ICCID", "IMSI", "KI", "OPC", "KIC1", "KID1", "KIK1", "CNTR1"}); err != nil {
		t.Fatal(err)
	}
	for i, c := range cards {
		ks := c.Keys(1)
		vc := &vendor.Card{ICCID: c.ICCID, IMSI: c.IMSI, Ki: enc(c.Ki(1)), OPc: enc(c.OPc), Counter: 7,
			KeySets: []vendor.KeySet{{KVN: 1, KIc: enc(ks.KIc), KID: enc(ks.KID), KIK: enc(ks.KIK)}}}
		if edit != nil {
			edit(i, vc)
		}
		if err := vw.Write(vc); err != nil {
			t.Fatal(err)
		}
	}
	if err := vw.Flush(); err != nil {
		t.Fatal(err)
	}
	return buf.String()
}

// The vendor file import by sets, each rule alone and together: a secret
// that does not open, a card already here with the same secrets (a no-op)
// or with others (rejected), a 3b card without its key list length, a
// secret of a wrong length, the reader's own rejections; every key set
// stored takes the profile's OTA cipher. It gives the answers listed here and leaves
// exactly the ledger (cards, events, secrets, key sets, answers) the
// card-at-a-time import leaves.
func TestVendorImportJudgesEveryLine(t *testing.T) {
	f, err := fleet.New(fleet.Options{N: 12, Seed: "vendor-stage", KVN: 1})
	if err != nil {
		t.Fatal(err)
	}
	other, err := fleet.New(fleet.Options{N: 12, Seed: "vendor-stage-other", KVN: 1})
	if err != nil {
		t.Fatal(err)
	}
	c := f.Cards
	type want struct {
		status, reason, detail string
	}
	run := func(step func(string) processor.FileStep) (string, []processor.Counts, [][]ledger.BatchRecord) {
		ctx := context.Background()
		w := newWorld(t)
		a := w.party("MNOA", mustRanges(t, "001-01"), nil)
		w.partner(a, "vendor", "VENDOR", "manufacturer", "tk-va", nil, false)
		p3b := *w.prof
		o := *w.prof.OTA
		o.Name = "usim-3b"
		o.KeyIndex = &ota.KeyIndexCommand{TAR: ota.TAR{0xb0, 0, 0x20}, Template: ota.APDU{0x80, 0xe2, 0, 0, 1, 0}, IndexOffset: 5}
		p3b.Name, p3b.OTA = "usim-3b", &o
		a.Profiles["usim-3b"] = &p3b
		// Earlier: cards 2 and 3 imported one by one.
		w.process(a, "vendor", &processor.InventoryImportPerRecord{}, w.sendRaw("VENDOR", "MNOA", "VENDOR_VB-0.out.pgp", vendorText(t, w, c[2:4], w.prof.Name, 0, nil)))
		var counts []processor.Counts
		var answers [][]ledger.BatchRecord
		for k, text := range []string{
			vendorText(t, w, []*fleet.Card{c[0], c[1], c[2], c[3], c[4], c[5], c[6]}, w.prof.Name, 0, func(i int, vc *vendor.Card) {
				switch i {
				case 1: // a Ki that does not open
					vc.Ki[len(vc.Ki)-1] ^= 1
				case 3: // card 3 again, with another card's secrets
					oc := other.Cards[3]
					vc.OPc = vendorEnc(t, w, oc.OPc)
				case 5: // a KIK that does not open
					vc.KeySets[0].KIK[0] ^= 1
				case 6: // an ICCID that is not one
					vc.ICCID = vc.ICCID[:len(vc.ICCID)-1] + string('0'+(vc.ICCID[len(vc.ICCID)-1]-'0'+1)%10)
				}
			}),
			// 3b without a key list length; with a Ki that does not open
			// too, the Ki answers.
			vendorText(t, w, []*fleet.Card{c[7], c[8]}, "usim-3b", 0, func(i int, vc *vendor.Card) {
				if i == 1 {
					vc.Ki[0] ^= 1
				}
			}),
			// A KIc of a wrong length (the file names no OTA cipher: the
			// length answers, not the cipher it leaves undetermined).
			vendorText(t, w, []*fleet.Card{c[9], c[10], c[11]}, "usim-3b", 4, func(i int, vc *vendor.Card) {
				if i == 2 {
					vc.KeySets[0].KIc = vendorEnc(t, w, c[11].Keys(1).KIc[:5])
				}
			}),
		} {
			res := w.process(a, "vendor", step(""), w.sendRaw("VENDOR", "MNOA", "VENDOR_VB-"+string(rune('1'+k))+".out.pgp", text))
			counts = append(counts, res.Counts)
			rows, err := a.Ledger.Query(ctx, `SELECT iccid, status, reason, detail FROM batch_records WHERE batch_id = ? ORDER BY line`, res.BatchID)
			if err != nil {
				t.Fatal(err)
			}
			var rs []ledger.BatchRecord
			for rows.Next() {
				var r ledger.BatchRecord
				if err := rows.Scan(&r.ICCID, &r.Status, &r.Reason, &r.Detail); err != nil {
					t.Fatal(err)
				}
				rs = append(rs, r)
			}
			rows.Close()
			answers = append(answers, rs)
		}
		if n := count(t, a, `SELECT COUNT(*) FROM key_sets WHERE kic_alg <> 'aes-128' OR kid_alg <> 'aes-128'`); n != 0 {
			t.Errorf("%d key sets without the profile's algorithm (aes-128)", n)
		}
		dump := dumpLedger(t, a) + dumpQueries(t, a,
			`SELECT iccid, name, key_index, master_key, length(blob) > 0 FROM card_secrets ORDER BY iccid, name, key_index`,
			`SELECT * FROM key_sets ORDER BY iccid, key_index, kvn`)
		return dump, counts, answers
	}
	setDump, counts, answers := run(func(string) processor.FileStep { return &processor.InventoryImport{} })
	refDump, refCounts, _ := run(func(string) processor.FileStep { return &processor.InventoryImportPerRecord{} })

	wants := [][]want{
		{{"accepted", "", ""}, {"rejected", processor.ReasonInvalid, "ki: "}, {"accepted", "", ""},
			{"rejected", processor.ReasonDuplicate, "card already imported with different secrets"},
			{"accepted", "", ""}, {"rejected", processor.ReasonInvalid, "kik: "}, {"rejected", processor.ReasonInvalid, ""}},
		{{"rejected", processor.ReasonInvalid, "3b card without a key list length"}, {"rejected", processor.ReasonInvalid, "ki: "}},
		{{"accepted", "", ""}, {"accepted", "", ""}, {"rejected", processor.ReasonInvalid, "kic: "}},
	}
	for k, ws := range wants {
		if len(answers[k]) != len(ws) {
			t.Fatalf("file %d: %d answers, want %d: %+v", k+1, len(answers[k]), len(ws), answers[k])
		}
		for i, wnt := range ws {
			r := answers[k][i]
			if r.Status != wnt.status || r.Reason != wnt.reason || !strings.HasPrefix(r.Detail, wnt.detail) {
				t.Errorf("file %d line %d: %s %s %q, want %s %s %q…", k+1, i+1, r.Status, r.Reason, r.Detail, wnt.status, wnt.reason, wnt.detail)
			}
		}
		if counts[k] != refCounts[k] {
			t.Errorf("file %d: counts %+v; the card-at-a-time import's %+v", k+1, counts[k], refCounts[k])
		}
	}
	if setDump != refDump {
		a, b := strings.Split(setDump, "\n"), strings.Split(refDump, "\n")
		for i := range min(len(a), len(b)) {
			if a[i] != b[i] {
				t.Fatalf("the ledgers differ first at line %d:\nby sets:        %s\ncard at a time: %s", i, a[i], b[i])
			}
		}
		t.Fatalf("the ledgers differ in length: %d and %d lines", len(a), len(b))
	}
}

func vendorEnc(t *testing.T, w *world, v []byte) []byte {
	t.Helper()
	s, err := processor.NewTransport(w.tks["tk-va"]).Wrap(v)
	if err != nil {
		t.Fatal(err)
	}
	b, err := hex.DecodeString(s[strings.IndexByte(s, ':')+1:])
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Thousands of cards in clear (many batches of the sealing workers in
// flight, staged in line order): the set-based import leaves exactly the
// ledger the card-at-a-time import leaves.
func TestVendorImportManyCardsSameAsPerRecord(t *testing.T) {
	const n = 3000
	f, err := fleet.New(fleet.Options{N: n, Seed: "vendor-many", KVN: 1})
	if err != nil {
		t.Fatal(err)
	}
	run := func(step processor.FileStep) (string, processor.Counts) {
		w := newWorld(t)
		a := w.party("MNOA", mustRanges(t, "001-01"), nil)
		w.partner(a, "vendor", "VENDOR", "manufacturer", "tk-va", nil, false)
		var buf bytes.Buffer
		if err := f.WriteVendor(&buf, f.Cards, "MNOA", w.prof.Name, "VB-MANY"); err != nil {
			t.Fatal(err)
		}
		res := w.process(a, "vendor", step, w.sendRaw("VENDOR", "MNOA", "VENDOR_VB-MANY.out.pgp", buf.String()))
		return dumpLedger(t, a) + dumpQueries(t, a,
			`SELECT iccid, name, key_index, master_key, length(blob) > 0 FROM card_secrets ORDER BY iccid, name, key_index`,
			`SELECT * FROM key_sets ORDER BY iccid, key_index, kvn`), res.Counts
	}
	setDump, counts := run(&processor.InventoryImport{})
	refDump, refCounts := run(&processor.InventoryImportPerRecord{})
	if counts.Accepted != n || counts != refCounts {
		t.Errorf("counts %+v; the card-at-a-time import's %+v", counts, refCounts)
	}
	if setDump != refDump {
		t.Fatal("the ledgers differ")
	}
}

// The native inventory by sets, each rule alone and together: an unknown
// card profile, a 3b card without its key index, a wrapped secret that does
// not open, a card already here with the same secrets (a no-op) or with
// others (rejected), the reader's own rejections, secrets of a wrong
// length (named as such, also when no OTA cipher is named), a key set
// without ota-alg taking the profile's. The ledger is the one the
// card-at-a-time import leaves.
func TestNativeInventorySameAsPerRecord(t *testing.T) {
	f, err := fleet.New(fleet.Options{N: 13, Seed: "native-stage", KVN: 1})
	if err != nil {
		t.Fatal(err)
	}
	other, err := fleet.New(fleet.Options{N: 10, Seed: "native-stage-other", KVN: 1})
	if err != nil {
		t.Fatal(err)
	}
	c := f.Cards
	run := func(step processor.FileStep) (string, processor.Counts, []ledger.BatchRecord, string) {
		ctx := context.Background()
		w := newWorld(t)
		a := w.party("MNOA", mustRanges(t, "001-01"), nil)
		w.partner(a, "vendor", "VENDOR", "manufacturer", "tk-va", nil, false)
		p3b := *w.prof
		o := *w.prof.OTA
		o.Name = "usim-3b"
		o.KeyIndex = &ota.KeyIndexCommand{TAR: ota.TAR{0xb0, 0, 0x20}, Template: ota.APDU{0x80, 0xe2, 0, 0, 1, 0}, IndexOffset: 5}
		p3b.Name, p3b.OTA = "usim-3b", &o
		a.Profiles["usim-3b"] = &p3b
		wrap := processor.NewTransport(w.tks["tk-va"])
		send := func(cards []*fleet.Card, edit func(i int, r *native.Record)) string {
			recs := func(emit func(*native.Record) error) error {
				i := 0
				return f.InventoryRecords(wrap, w.prof.Name, cards)(func(r *native.Record) error {
					if edit != nil {
						edit(i, r)
					}
					i++
					return emit(r)
				})
			}
			return w.send("VENDOR", "MNOA", native.Inventory, len(cards), false, "tk-va", recs)
		}
		// Earlier: cards 2 and 3 imported one by one.
		w.process(a, "vendor", &processor.InventoryImportPerRecord{}, send(c[2:4], nil))
		otherKi, err := wrap.Wrap(other.Cards[3].Ki(1))
		if err != nil {
			t.Fatal(err)
		}
		shortKi, err := wrap.Wrap(other.Cards[4].Ki(1)[:15])
		if err != nil {
			t.Fatal(err)
		}
		shortKIc, err := wrap.Wrap(other.Cards[5].Keys(1).KIc[:5])
		if err != nil {
			t.Fatal(err)
		}
		res := w.process(a, "vendor", step, send(c[:13], func(i int, r *native.Record) {
			switch i {
			case 1:
				r.Set(native.FieldProfile, "nope")
			case 3:
				r.Set(native.FieldKi, otherKi) // other secrets than those here
			case 4:
				r.Set(native.FieldKIc, otherHexDigit(r.Get(native.FieldKIc)))
			case 5:
				r.Set(native.FieldProfile, "usim-3b")
				r.Set(native.FieldKeyIndex, "")
			case 6: // unknown profile and a secret that does not open: the profile answers
				r.Set(native.FieldProfile, "nope")
				r.Set(native.FieldKi, otherHexDigit(r.Get(native.FieldKi)))
			case 7:
				r.Set(native.FieldProfile, "usim-3b")
				r.Set(native.FieldKeyIndex, "1")
				r.Set(native.FieldKeyListLength, "4")
			case 8:
				r.Set(native.FieldAlgorithm, "nonsense")
			case 9: // a Ki of a wrong length
				r.Set(native.FieldKi, shortKi)
			case 10: // no OTA cipher named: the profile's
				r.Set(native.FieldOTAAlg, "")
			case 11: // none named and a KIc of a wrong length: the length answers
				r.Set(native.FieldOTAAlg, "")
				r.Set(native.FieldKIc, shortKIc)
			case 12: // a KIc of a wrong length for the cipher named
				r.Set(native.FieldKIc, shortKIc)
			}
		}))
		rows, err := a.Ledger.Query(ctx, `SELECT iccid, status, reason, detail FROM batch_records WHERE batch_id = ? ORDER BY line`, res.BatchID)
		if err != nil {
			t.Fatal(err)
		}
		var rs []ledger.BatchRecord
		for rows.Next() {
			var r ledger.BatchRecord
			if err := rows.Scan(&r.ICCID, &r.Status, &r.Reason, &r.Detail); err != nil {
				t.Fatal(err)
			}
			rs = append(rs, r)
		}
		rows.Close()
		var alg string
		if err := a.Ledger.QueryRow(ctx, `SELECT kic_alg || '/' || kid_alg FROM key_sets WHERE iccid = ?`, c[10].ICCID).Scan(&alg); err != nil {
			t.Fatal(err)
		}
		return dumpLedger(t, a) + dumpQueries(t, a,
			`SELECT iccid, name, key_index, master_key, length(blob) > 0 FROM card_secrets ORDER BY iccid, name, key_index`,
			`SELECT * FROM key_sets ORDER BY iccid, key_index, kvn`), res.Counts, rs, alg
	}
	setDump, counts, answers, alg := run(&processor.InventoryImport{})
	refDump, refCounts, _, _ := run(&processor.InventoryImportPerRecord{})
	want := []struct{ status, reason, detail string }{
		{"accepted", "", ""}, {"rejected", processor.ReasonInvalid, `unknown card profile "nope"`}, {"accepted", "", ""},
		{"rejected", processor.ReasonDuplicate, "card already imported with different secrets"},
		{"rejected", processor.ReasonInvalid, "kic: "}, {"rejected", processor.ReasonInvalid, "a 3b profile needs key-index and key-list-length"},
		{"rejected", processor.ReasonInvalid, `unknown card profile "nope"`}, {"accepted", "", ""}, {"rejected", processor.ReasonInvalid, ""},
		{"rejected", processor.ReasonInvalid, "ki: "}, {"accepted", "", ""},
		{"rejected", processor.ReasonInvalid, "kic: "}, {"rejected", processor.ReasonInvalid, "kic: "},
	}
	if len(answers) != len(want) {
		t.Fatalf("%d answers, want %d: %+v", len(answers), len(want), answers)
	}
	for i, wnt := range want {
		r := answers[i]
		if r.Status != wnt.status || r.Reason != wnt.reason || !strings.HasPrefix(r.Detail, wnt.detail) {
			t.Errorf("line %d: %s %s %q, want %s %s %q…", i+1, r.Status, r.Reason, r.Detail, wnt.status, wnt.reason, wnt.detail)
		}
	}
	for _, i := range []int{9, 11, 12} {
		if strings.Contains(answers[i].Detail, "ota-alg") {
			t.Errorf("line %d: %q: the length, not the cipher, should answer", i+1, answers[i].Detail)
		}
	}
	if alg != "aes-128/aes-128" {
		t.Errorf("card %s: key set recorded with %q, want the profile's aes-128 (usim-aes, 16-octet keys)", c[10].ICCID, alg)
	}
	if counts != refCounts {
		t.Errorf("counts %+v; the card-at-a-time import's %+v", counts, refCounts)
	}
	if setDump != refDump {
		a, b := strings.Split(setDump, "\n"), strings.Split(refDump, "\n")
		for i := range min(len(a), len(b)) {
			if a[i] != b[i] {
				t.Fatalf("the ledgers differ first at line %d:\nby sets:        %s\ncard at a time: %s", i, a[i], b[i])
			}
		}
		t.Fatalf("the ledgers differ in length: %d and %d lines", len(a), len(b))
	}
}

// otherHexDigit changes the last hex digit of a wrapped field.
func otherHexDigit(s string) string {
	if s[len(s)-1] == 'a' {
		return s[:len(s)-1] + "b"
	}
	return s[:len(s)-1] + "a"
}

// Repeats in a vendor file, found by the stage (the reader keeps nothing
// per card), alone and with the other rules: a line repeating an earlier
// line's ICCID, its IMSI, both; repeating a line the reader rejected (its
// ICCID and IMSI still count), a line whose Ki did not open, a card already
// in the ledger; a rejected line that also repeats (the reader's words, the
// repeat in its column's place). Every line gets the answer and the ledger
// is the one the card-at-a-time import leaves with a reader that finds
// repeats itself. With limits.max_record_errors below the lines with
// problems (repeats included) both refuse the file.
func TestVendorImportRepeatsSameAsPerRecord(t *testing.T) {
	f, err := fleet.New(fleet.Options{N: 12, Seed: "vendor-repeats", KVN: 1})
	if err != nil {
		t.Fatal(err)
	}
	c := f.Cards
	cards := []*fleet.Card{c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7], c[8], c[9], c[10], c[11], c[0]}
	edit := func(i int, vc *vendor.Card) {
		switch i {
		case 1: // a Ki of 7 octets: the reader rejects the line
			vc.Ki = vc.Ki[:7]
		case 2: // line 1's ICCID
			vc.ICCID = c[0].ICCID
		case 3: // line 2's IMSI (a line the reader rejected)
			vc.IMSI = c[1].IMSI
		case 4: // a Ki that does not open
			vc.Ki[len(vc.Ki)-1] ^= 1
		case 5: // line 5's ICCID and line 1's IMSI
			vc.ICCID, vc.IMSI = c[4].ICCID, c[0].IMSI
		case 6: // line 1's ICCID, and a Ki the reader rejects
			vc.ICCID = c[0].ICCID
			vc.Ki = vc.Ki[:7]
		case 7: // line 2's ICCID
			vc.ICCID = c[1].ICCID
		case 8: // card 8, here already: a no-op
		case 9: // line 10's IMSI and a KIK the reader rejects: the IMSI first
			vc.IMSI = c[8].IMSI
			vc.KeySets[0].KIK = vc.KeySets[0].KIK[:9]
		}
		// line 13: card 0 again, the same secrets: a repeat of line 1
	}
	type answer struct {
		line                   int
		status, reason, detail string
	}
	run := func(step processor.FileStep, maxErrors int64) (string, processor.Counts, []answer, *processor.Result) {
		ctx := context.Background()
		w := newWorld(t)
		a := w.party("MNOA", mustRanges(t, "001-01"), nil)
		w.partner(a, "vendor", "VENDOR", "manufacturer", "tk-va", nil, false)
		w.process(a, "vendor", &processor.InventoryImportPerRecord{}, w.sendRaw("VENDOR", "MNOA", "VENDOR_VB-0.out.pgp", vendorText(t, w, c[8:9], w.prof.Name, 0, nil)))
		a.Limits.MaxRecordErrors = maxErrors
		res, err := a.ProcessFile(ctx, step, processor.Input{Partner: a.Partners["vendor"], Name: "VENDOR_VB-1.out.pgp",
			Path: w.sendRaw("VENDOR", "MNOA", "VENDOR_VB-1.out.pgp", vendorText(t, w, cards, w.prof.Name, 0, edit)), Job: "vendor-inventory"})
		if err != nil && maxErrors == 0 {
			t.Fatal(err)
		}
		var as []answer
		if res != nil && res.BatchID != 0 {
			rows, err := a.Ledger.Query(ctx, `SELECT line, status, reason, detail FROM batch_records WHERE batch_id = ? ORDER BY line`, res.BatchID)
			if err != nil {
				t.Fatal(err)
			}
			for rows.Next() {
				var r answer
				if err := rows.Scan(&r.line, &r.status, &r.reason, &r.detail); err != nil {
					t.Fatal(err)
				}
				as = append(as, r)
			}
			rows.Close()
		}
		var counts processor.Counts
		if res != nil {
			counts = res.Counts
		}
		return dumpLedger(t, a) + dumpQueries(t, a,
			`SELECT iccid, name, key_index, master_key, length(blob) > 0 FROM card_secrets ORDER BY iccid, name, key_index`,
			`SELECT * FROM key_sets ORDER BY iccid, key_index, kvn`,
			`SELECT name, status, reason FROM files ORDER BY id`), counts, as, res
	}
	setDump, counts, answers, _ := run(&processor.InventoryImport{}, 0)
	refDump, refCounts, refAnswers, _ := run(&processor.InventoryImportPerRecord{}, 0)
	if len(answers) == 0 {
		t.Fatal("no answers")
	}
	file, at := "VENDOR_VB-1.out.pgp", answers[0].line-1 // the file's line of card i is at+i
	dup := func(i int, field, v string) string {
		return fmt.Sprintf("%s:%d: %s: %s: %s", file, at+i, field, native.ErrDuplicate, v)
	}
	bad := func(i int, field string) string { return fmt.Sprintf("%s:%d: %s: ", file, at+i, field) }
	want := []answer{
		{0, "accepted", "", ""},
		{0, "rejected", processor.ReasonInvalid, bad(2, "KI")},
		{0, "rejected", processor.ReasonDuplicate, dup(3, "ICCID", c[0].ICCID)},
		{0, "rejected", processor.ReasonDuplicate, dup(4, "IMSI", c[1].IMSI)},
		{0, "rejected", processor.ReasonInvalid, "ki: "},
		{0, "rejected", processor.ReasonDuplicate, dup(6, "ICCID", c[4].ICCID) + "; " + dup(6, "IMSI", c[0].IMSI)},
		{0, "rejected", processor.ReasonDuplicate, dup(7, "ICCID", c[0].ICCID) + "; " + bad(7, "KI")},
		{0, "rejected", processor.ReasonDuplicate, dup(8, "ICCID", c[1].ICCID)},
		{0, "accepted", "", ""},
		{0, "rejected", processor.ReasonDuplicate, dup(10, "IMSI", c[8].IMSI) + "; " + bad(10, "KIK1")},
		{0, "accepted", "", ""},
		{0, "accepted", "", ""},
		{0, "rejected", processor.ReasonDuplicate, dup(13, "ICCID", c[0].ICCID) + "; " + dup(13, "IMSI", c[0].IMSI)},
	}
	if len(answers) != len(want) {
		t.Fatalf("%d answers, want %d: %+v", len(answers), len(want), answers)
	}
	for i, wnt := range want {
		r := answers[i]
		if r.status != wnt.status || r.reason != wnt.reason || !strings.HasPrefix(r.detail, wnt.detail) {
			t.Errorf("line %d: %s %s %q, want %s %s %q…", i+1, r.status, r.reason, r.detail, wnt.status, wnt.reason, wnt.detail)
		}
		if ref := refAnswers[i]; r != ref {
			t.Errorf("line %d: %+v; the card-at-a-time import's %+v", i+1, r, ref)
		}
	}
	if counts != refCounts || counts.Accepted != 4 || counts.Rejected != 9 {
		t.Errorf("counts %+v; the card-at-a-time import's %+v", counts, refCounts)
	}
	if setDump != refDump {
		a, b := strings.Split(setDump, "\n"), strings.Split(refDump, "\n")
		for i := range min(len(a), len(b)) {
			if a[i] != b[i] {
				t.Fatalf("the ledgers differ first at line %d:\nby sets:        %s\ncard at a time: %s", i, a[i], b[i])
			}
		}
		t.Fatalf("the ledgers differ in length: %d and %d lines", len(a), len(b))
	}
	// 8 lines with problems the reader counts (repeats and its own
	// rejections; not the Ki that did not open): at most 7 refuses the
	// file, at line 13, as the reader finding repeats itself does; 8 do not.
	for _, max := range []int64{7, 8} {
		setDump, _, _, res := run(&processor.InventoryImport{}, max)
		refDump, _, _, refRes := run(&processor.InventoryImportPerRecord{}, max)
		if res.Status != refRes.Status || res.Reason != refRes.Reason {
			t.Errorf("max %d: %s %q; the card-at-a-time import: %s %q", max, res.Status, res.Reason, refRes.Status, refRes.Reason)
		}
		if refused := strings.Contains(res.Reason, fmt.Sprintf("line %d", at+13)); refused != (max == 7) {
			t.Errorf("max %d: %s %q", max, res.Status, res.Reason)
		}
		if setDump != refDump {
			t.Errorf("max %d: the ledgers differ", max)
		}
	}
}

// Repeats in a native inventory, found by the stage (the reader keeps
// nothing per record), alone and with the other rules: a record repeating
// an earlier record's ICCID, its IMSI, both; repeating a record the reader
// rejected, a record whose Ki did not open; a rejected record that also
// repeats (a field's problem before or after the repeat, a cross-field
// rule's, which the repeat replaces). Every record gets the answer and the
// ledger is the one the card-at-a-time import leaves with a reader that
// finds repeats itself; limits.max_record_errors refuses the file as that
// reader does.
func TestNativeInventoryRepeatsSameAsPerRecord(t *testing.T) {
	f, err := fleet.New(fleet.Options{N: 11, Seed: "native-repeats", KVN: 1})
	if err != nil {
		t.Fatal(err)
	}
	c := f.Cards
	cards := []*fleet.Card{c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7], c[8], c[9], c[0], c[10]}
	type answer struct {
		line                   int
		status, reason, detail string
	}
	run := func(step processor.FileStep, maxErrors int64) (string, []answer, *processor.Result) {
		ctx := context.Background()
		w := newWorld(t)
		a := w.party("MNOA", mustRanges(t, "001-01"), nil)
		w.partner(a, "vendor", "VENDOR", "manufacturer", "tk-va", nil, false)
		wrap := processor.NewTransport(w.tks["tk-va"])
		send := func(cards []*fleet.Card, edit func(i int, r *native.Record)) string {
			return w.send("VENDOR", "MNOA", native.Inventory, len(cards), false, "tk-va", func(emit func(*native.Record) error) error {
				i := 0
				return f.InventoryRecords(wrap, w.prof.Name, cards)(func(r *native.Record) error {
					if edit != nil {
						edit(i, r)
					}
					i++
					return emit(r)
				})
			})
		}
		w.process(a, "vendor", &processor.InventoryImportPerRecord{}, send(c[9:10], nil))
		a.Limits.MaxRecordErrors = maxErrors
		path := send(cards, func(i int, r *native.Record) {
			switch i {
			case 1: // a field's problem: its ICCID and IMSI still count
				r.Set(native.FieldAlgorithm, "nonsense")
			case 2: // line 1's ICCID
				r.Set(native.FieldICCID, c[0].ICCID)
			case 3: // line 2's IMSI
				r.Set(native.FieldIMSI, c[1].IMSI)
			case 4: // line 1's ICCID and a field's problem after it
				r.Set(native.FieldICCID, c[0].ICCID)
				r.Set(native.FieldAlgorithm, "nonsense")
			case 5: // a cross-field problem
				r.Set(native.FieldKVN, "")
			case 6: // line 6's ICCID and a cross-field problem
				r.Set(native.FieldICCID, c[5].ICCID)
				r.Set(native.FieldKVN, "")
			case 7: // a Ki that does not open
				r.Set(native.FieldKi, otherHexDigit(r.Get(native.FieldKi)))
			case 8: // line 8's ICCID
				r.Set(native.FieldICCID, c[7].ICCID)
			}
			// line 10: card 9, here already; line 11: card 0 again
		})
		res, err := a.ProcessFile(ctx, step, processor.Input{Partner: a.Partners["vendor"], Name: filepath.Base(path), Path: path, Job: "vendor-inventory"})
		if err != nil && maxErrors == 0 {
			t.Fatal(err)
		}
		var as []answer
		rows, err := a.Ledger.Query(ctx, `SELECT line, status, reason, detail FROM batch_records WHERE batch_id = ? ORDER BY line`, res.BatchID)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var r answer
			if err := rows.Scan(&r.line, &r.status, &r.reason, &r.detail); err != nil {
				t.Fatal(err)
			}
			as = append(as, r)
		}
		rows.Close()
		// The file's name differs between runs (a sequence); answers are
		// compared with it cut.
		for i := range as {
			as[i].detail = strings.ReplaceAll(as[i].detail, filepath.Base(path), "FILE")
		}
		dump := dumpLedger(t, a) + dumpQueries(t, a,
			`SELECT iccid, name, key_index, master_key, length(blob) > 0 FROM card_secrets ORDER BY iccid, name, key_index`,
			`SELECT * FROM key_sets ORDER BY iccid, key_index, kvn`,
			`SELECT status, reason FROM files ORDER BY id`)
		return strings.ReplaceAll(dump, filepath.Base(path), "FILE"), as, res
	}
	setDump, answers, res := run(&processor.InventoryImport{}, 0)
	refDump, refAnswers, refRes := run(&processor.InventoryImportPerRecord{}, 0)
	if len(answers) == 0 {
		t.Fatal("no answers")
	}
	at := answers[0].line - 1
	dup := func(i int, field, v string) string {
		return fmt.Sprintf("FILE:%d: %s: %s: %s", at+i, field, native.ErrDuplicate, v)
	}
	bad := func(i int, field string) string { return fmt.Sprintf("FILE:%d: %s: ", at+i, field) }
	want := []answer{
		{0, "accepted", "", ""},
		{0, "rejected", processor.ReasonInvalid, bad(2, native.FieldAlgorithm)},
		{0, "rejected", processor.ReasonDuplicate, dup(3, native.FieldICCID, c[0].ICCID)},
		{0, "rejected", processor.ReasonDuplicate, dup(4, native.FieldIMSI, c[1].IMSI)},
		{0, "rejected", processor.ReasonDuplicate, dup(5, native.FieldICCID, c[0].ICCID) + "; " + bad(5, native.FieldAlgorithm)},
		{0, "rejected", processor.ReasonInvalid, bad(6, native.FieldKVN)},
		{0, "rejected", processor.ReasonDuplicate, dup(7, native.FieldICCID, c[5].ICCID)},
		{0, "rejected", processor.ReasonInvalid, "ki: "},
		{0, "rejected", processor.ReasonDuplicate, dup(9, native.FieldICCID, c[7].ICCID)},
		{0, "accepted", "", ""},
		{0, "rejected", processor.ReasonDuplicate, dup(11, native.FieldICCID, c[0].ICCID) + "; " + dup(11, native.FieldIMSI, c[0].IMSI)},
		{0, "accepted", "", ""},
	}
	if len(answers) != len(want) {
		t.Fatalf("%d answers, want %d: %+v", len(answers), len(want), answers)
	}
	for i, wnt := range want {
		r := answers[i]
		if r.status != wnt.status || r.reason != wnt.reason || !strings.HasPrefix(r.detail, wnt.detail) {
			t.Errorf("line %d: %s %s %q, want %s %s %q…", i+1, r.status, r.reason, r.detail, wnt.status, wnt.reason, wnt.detail)
		}
		if ref := refAnswers[i]; r != ref {
			t.Errorf("line %d: %+v; the card-at-a-time import's %+v", i+1, r, ref)
		}
	}
	if res.Counts != refRes.Counts || res.Counts.Accepted != 3 || res.Counts.Rejected != 9 {
		t.Errorf("counts %+v; the card-at-a-time import's %+v", res.Counts, refRes.Counts)
	}
	if setDump != refDump {
		a, b := strings.Split(setDump, "\n"), strings.Split(refDump, "\n")
		for i := range min(len(a), len(b)) {
			if a[i] != b[i] {
				t.Fatalf("the ledgers differ first at line %d:\nby sets:        %s\ncard at a time: %s", i, a[i], b[i])
			}
		}
		t.Fatalf("the ledgers differ in length: %d and %d lines", len(a), len(b))
	}
	// 8 records with problems the reader counts (not the Ki that did not
	// open): at most 7 refuses the file at line 11, 8 do not.
	for _, max := range []int64{7, 8} {
		setDump, _, res := run(&processor.InventoryImport{}, max)
		refDump, _, refRes := run(&processor.InventoryImportPerRecord{}, max)
		reason := strings.ReplaceAll(res.Reason, res.Reason[:strings.IndexByte(res.Reason+":", ':')], "")
		refReason := strings.ReplaceAll(refRes.Reason, refRes.Reason[:strings.IndexByte(refRes.Reason+":", ':')], "")
		if res.Status != refRes.Status || reason != refReason {
			t.Errorf("max %d: %s %q; the card-at-a-time import: %s %q", max, res.Status, res.Reason, refRes.Status, refRes.Reason)
		}
		if refused := strings.Contains(res.Reason, fmt.Sprintf("line %d", at+11)); refused != (max == 7) {
			t.Errorf("max %d: %s %q", max, res.Status, res.Reason)
		}
		if setDump != refDump {
			t.Errorf("max %d: the ledgers differ", max)
		}
	}
}
