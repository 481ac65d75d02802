package processor_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"resub/formats/native"
	"resub/formats/ota"
	"resub/processor"
	"resub/processor/ledger"
	"resub/samples/fleet"
)

// The set-based ota-report intake leaves exactly the ledger, the counts
// and the files the line-at-a-time intake leaves, on a report that mixes
// every outcome: confirmed (by sets), pending (status 08), a card no
// longer moving, counter low (retried), an incomplete script (retried),
// retries exhausted (manual, B told failed), delivered without PoR,
// expired (retried), a forged PoR alone, a forged PoR then the genuine, the
// genuine twice (DUPLICATE), a late PoR for an attempt an unsecured error
// had failed (confirms), not a PoR, another TAR, an unsecured OK, an
// unknown MSISDN and an unknown message ID. The single lines with one
// outstanding message are judged by sets (the log says how many), the rest
// line by line.
func TestOTAReportSameAsPerRecord(t *testing.T) {
	const n = 24
	const inv = 5 // the counter the inventory gives
	type run struct {
		dump  string
		files string
		res   *processor.Result
		log   string
	}
	play := func(step func(a *processor.Party) processor.FileStep) run {
		ctx := context.Background()
		s := startSwitch(t, n, func(f *fleet.Fleet) {
			f.Cards[8].Pairs[0].KeySet.Counter = inv + 5    // counter low: retried
			f.Cards[9].Pairs[0].KeySet.Counter = inv + 1000 // counter low, retries exhausted
			if err := f.BuildSIMs(); err != nil {
				t.Fatal(err)
			}
			// Card 10 lacks DF GSM's copy of EF_IMSI, which the profile
			// updates too: its script fails after the EF_IMSI write.
			noCopy := f.Cards[10].SIM
			f.Opts.Profile.GSMIMSIPath = ota.Path{0x3f00, 0x7f20, 0x6f07}
			if err := f.BuildSIMs(); err != nil {
				t.Fatal(err)
			}
			f.Cards[10].SIM = noCopy
		})
		w, f, a := s.w, s.f, s.a
		var logs bytes.Buffer
		a.Log = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
		f.Cards[11].SIM.SetOff(true)
		w.smsc.SetUnreachable(f.Cards[12].MSISDN, true)
		genuine := readReport(t, w.runSMSC(s.batch, "MNOA"))
		byMSISDN := map[string]reportLine{}
		for _, l := range genuine {
			byMSISDN[l.msisdn] = l
		}
		line := func(i int) reportLine {
			l, ok := byMSISDN[f.Cards[i].MSISDN]
			if !ok {
				t.Fatalf("no report line for card %d", i)
			}
			return l
		}
		first := func(i int) *ledger.Message {
			msgs := messages(t, a, f.Cards[i].ICCID)
			return msgs[0]
		}
		with := func(l reportLine, por string) reportLine { l.por = por; return l }

		// Round 1: card 16's first attempt draws an unsecured error PoR
		// (unauthenticated): failed, retried.
		late := line(16)
		res := w.process(a, "smsc", step(a), s.writeReport(t, []reportLine{with(late, s.cardPoR(t, 16, first(16), ota.StatusChecksumFailed, nil, true))}))
		if res.Counts.Messages != 1 {
			t.Fatalf("round 1: %+v", res.Counts)
		}
		// Card 9 has made its last attempt; card 18 waits for an engineer
		// already (its message still outstanding).
		err := a.Ledger.InTx(ctx, func(tx *ledger.Tx) error {
			if _, err := tx.Exec(ctx, `UPDATE cards SET attempts = ? WHERE iccid = ?`, a.Partners["mno-b"].Policy.MaxAttempts, f.Cards[9].ICCID); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, `UPDATE cards SET state = ? WHERE iccid = ?`, ledger.CardManual, f.Cards[18].ICCID)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		unsecuredOK := func(l reportLine) string {
			b, _ := hex.DecodeString(l.por)
			tar, _ := ota.ResponseTAR(b)
			return hex.EncodeToString(ota.AppendUnsecuredResponse(nil, tar, 0, ota.StatusOK))
		}
		otherTAR := func(l reportLine) string {
			b, _ := hex.DecodeString(l.por)
			b[6] ^= 0xff
			return hex.EncodeToString(b)
		}
		unknown := line(0)
		unknown.msisdn, unknown.id = "999100009999", "MNOA-999999"
		noMessage := reportLine{id: "MNOA-999999", msisdn: f.Cards[23].MSISDN, status: native.StatusFailed, detail: "no such message"}
		lines := []reportLine{
			with(line(14), garble(t, line(14).por)), // forged, then the genuine below
			line(0), line(1), line(8), line(2),
			line(9), line(10), line(3),
			line(11), // delivered, no PoR
			line(12), // expired
			line(4),
			with(line(13), garble(t, line(13).por)), // forged alone
			line(14), line(15), line(5),
			late, // the genuine answer to the failed first attempt
			with(line(17), s.cardPoR(t, 17, first(17), ota.StatusMoreTime, nil, false)),
			line(18), line(6),
			with(line(19), "0102"),
			with(line(20), otherTAR(line(20))),
			with(line(21), unsecuredOK(line(21))),
			unknown, noMessage, line(7),
			line(15), // again
			line(22),
		}
		res = w.process(a, "smsc", step(a), s.writeReport(t, lines))
		var files []string
		for _, o := range res.Outputs {
			_, recs := w.readOutput(a, o)
			for _, r := range recs {
				var vals []string
				for _, fd := range r.Schema().Fields {
					vals = append(vals, fd.Name+"="+r.Get(fd.Name))
				}
				files = append(files, o.Type+" "+strings.Join(vals, " "))
			}
		}
		dump := dumpLedger(t, a) + dumpQueries(t, a,
			`SELECT id, iccid, batch_id, kind, key_index, kvn, counter, tar, msisdn, concat_ref, attempt, state, deadline, por_status, detail, created_at, updated_at
				FROM ota_messages ORDER BY id`,
			`SELECT iccid, key_index, kvn, counter FROM key_sets ORDER BY iccid, key_index, kvn`)
		return run{dump: dump, files: strings.Join(files, "\n"), res: res, log: logs.String()}
	}
	set := play(func(a *processor.Party) processor.FileStep { return &processor.OTAReport{SMSC: a.Partners["smsc"]} })
	ref := play(func(a *processor.Party) processor.FileStep {
		return &processor.OTAReportPerRecord{SMSC: a.Partners["smsc"]}
	})

	// By sets: cards 0–7, 22 confirmed; 17 pending; 18 judged, not
	// moving; the PoRs of 13, 19, 20, 21 ignored (16's may be late: the
	// judge looks).
	if want := "messages=15 confirmed=9 ignored=4"; !strings.Contains(set.log, "PoRs judged by sets") || !strings.Contains(set.log, want) {
		t.Errorf("the set-based intake did not judge the single verified lines (want %s):\n%s", want, set.log)
	}
	t.Logf("by sets: %+v\n%s", set.res.Counts, set.log)
	c := set.res.Counts
	if c != ref.res.Counts {
		t.Errorf("counts %+v, the line-at-a-time intake counted %+v", c, ref.res.Counts)
	}
	// Rejected: 4 ignored alone (13, 19, 20, 21), 1 forged before the
	// genuine (14), the duplicate (15), the unknown MSISDN and message.
	if c.Records != 27 || c.PoRsIgnored != 5 || c.Rejected != 8 || c.Accepted != 19 || c.Messages != 3 {
		t.Errorf("counts %+v", c)
	}
	if set.files != ref.files {
		t.Errorf("files differ:\nby sets:\n%s\nline at a time:\n%s", set.files, ref.files)
	}
	if set.dump != ref.dump {
		a, b := strings.Split(set.dump, "\n"), strings.Split(ref.dump, "\n")
		for i := range min(len(a), len(b)) {
			if a[i] != b[i] {
				t.Fatalf("the ledgers differ first at line %d:\nby sets:        %s\nline at a time: %s", i, a[i], b[i])
			}
		}
		t.Fatalf("the ledgers differ in length: %d and %d lines", len(a), len(b))
	}
	for _, want := range []string{"IMSI change confirmed", "PoR ignored", "late PoR"} {
		if !strings.Contains(ref.log, want) {
			t.Errorf("the reference run logged no %q", want)
		}
	}
}

// Across pages: more single lines than one read of the stage takes (most
// confirmed, some forgeries alone), and more lines left to the judge than
// one page of those, give the ledger, counts and files of the
// line-at-a-time intake.
func TestOTAReportManyLinesSameAsPerRecord(t *testing.T) {
	if testing.Short() {
		t.Skip("a fleet of 1,100 cards, twice")
	}
	const n = 1100
	type run struct {
		dump, files, log string
		res              *processor.Result
	}
	play := func(step processor.FileStep) run {
		s := startSwitch(t, n, nil)
		w, a := s.w, s.a
		var logs bytes.Buffer
		a.Log = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
		genuine := readReport(t, w.runSMSC(s.batch, "MNOA"))
		var lines []reportLine
		for i, l := range genuine {
			forged := reportLine{l.id, l.msisdn, l.status, garble(t, l.por), l.detail}
			switch {
			case i%3 == 0:
				lines = append(lines, forged, l)
			case i%7 == 5:
				lines = append(lines, forged) // a forgery alone
			default:
				lines = append(lines, l)
			}
		}
		res := w.process(a, "smsc", step, s.writeReport(t, lines))
		var files []string
		for _, o := range res.Outputs {
			_, recs := w.readOutput(a, o)
			for _, r := range recs {
				files = append(files, o.Type+" "+r.Get(native.FieldICCID)+" "+r.Get(native.FieldStatus)+" "+r.Get(native.FieldReason))
			}
		}
		dump := dumpLedger(t, a) + dumpQueries(t, a,
			`SELECT id, iccid, kind, counter, state, por_status, detail, updated_at FROM ota_messages ORDER BY id`)
		return run{dump: dump, files: strings.Join(files, "\n"), res: res, log: logs.String()}
	}
	set := play(&processor.OTAReport{})
	// By sets: every single line (not those of every third card, a
	// forgery then the genuine).
	var confirmed, alone int
	for i := range n {
		switch {
		case i%3 == 0:
		case i%7 == 5:
			alone++
		default:
			confirmed++
		}
	}
	if want := fmt.Sprintf("messages=%d confirmed=%d ignored=%d", confirmed+alone, confirmed, alone); !strings.Contains(set.log, want) {
		t.Errorf("the set-based intake did not judge every single line (want %s)", want)
	}
	ref := play(&processor.OTAReportPerRecord{})
	if c := set.res.Counts; c != ref.res.Counts || c.Accepted != n-alone || c.PoRsIgnored != (n+2)/3+alone {
		t.Errorf("counts %+v, the line-at-a-time intake counted %+v", c, ref.res.Counts)
	}
	if set.files != ref.files {
		t.Errorf("files differ")
	}
	if set.dump != ref.dump {
		a, b := strings.Split(set.dump, "\n"), strings.Split(ref.dump, "\n")
		for i := range min(len(a), len(b)) {
			if a[i] != b[i] {
				t.Fatalf("the ledgers differ first at line %d:\nby sets:        %s\nline at a time: %s", i, a[i], b[i])
			}
		}
		t.Fatalf("the ledgers differ in length: %d and %d lines", len(a), len(b))
	}
}
