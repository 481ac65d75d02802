package demo

import (
	"context"
	"fmt"
	"regexp"
	"strings"

	"resub/formats/native"
	"resub/processor"
	"resub/samples/fleet"
	"resub/samples/smsc"
)

func (w *world) story3b(ctx context.Context, sm *smsc.SMSC) error {
	n := w.o.Cards3b
	prof := w.parties["MNOA"].rt.Party.Profiles["usim-3b"].OTA
	f, err := fleet.New(fleet.Options{N: n, ICCIDBody: "8999902", IMSIBase: "001010000100001", MSISDNBase: "999100000501", Seed: "demo-3b",
		Profile: prof, ListLength: 3, KeyIndexAtReset: true})
	if err != nil {
		return err
	}
	w.cards = append(w.cards, f.Cards...)
	if err := f.BuildSIMs(); err != nil {
		return err
	}
	for _, c := range f.Cards {
		sm.Register(c.MSISDN, c.SIM)
	}
	w.say("\n== 3b: %d cards with a list of 3 key pairs: MNOA -> MNOB -> MNOC, then the list runs out ==", n)
	w.say("  the manufacturer loads its own data: every pair of every card; MNOA holds index 1")
	tk, err := w.transportKey("factory")
	if err != nil {
		return err
	}
	wrap := processor.NewTransport(tk)
	for i := 1; i <= 3; i++ {
		if _, err := w.send(w.dropDir("MFR", "factory", "inbox"), "FACTORY", "MFR", native.Inventory, n, true, tk, f.FactoryRecords(wrap, "usim-3b", f.Cards, i)); err != nil {
			return err
		}
	}
	if err := w.jobs(ctx, [2]string{"MFR", "card-import"}); err != nil {
		return err
	}

	w.say("  a vendor file that reveals pair 2 to MNOA is refused as a security error")
	leak := func(text string) string {
		// Add a KI2 column (pair 2's key) after KI.
		text = strings.Replace(text, "/KI/", "/KI/KI2/", 1)
		re := regexp.MustCompile(`(?m)^(8999902\d+ \d+ [0-9A-F]{32}) `)
		return re.ReplaceAllString(text, "$1 00112233445566778899AABBCCDDEEFF ")
	}
	if err := w.vendorFile(f, f.Cards, "usim-3b", "VB-3B-LEAK", leak); err != nil {
		return err
	}
	if err := w.jobs(ctx, [2]string{"MNOA", "inventory"}); err != nil {
		return err
	}
	w.say("  the proper vendor file gives MNOA pair 1 and the list length only")
	if err := w.vendorFile(f, f.Cards, "usim-3b", "VB-3B-1", nil); err != nil {
		return err
	}
	if _, err := w.send(w.dropDir("MNOA", "bss", "inbox"), "BSS", "MNOA", native.MSISDNMap, n, true, nil, fleet.MSISDNRecords(f.Cards)); err != nil {
		return err
	}
	if err := w.jobs(ctx, [2]string{"MNOA", "inventory"}, [2]string{"MNOA", "msisdn"}); err != nil {
		return err
	}

	hop := func(donor, recipient string) error {
		d, r := w.parties[donor], w.parties[recipient]
		_ = d
		_ = r
		cut := w.clock().AddDate(0, 0, 1)
		if _, err := w.send(w.dropDir(donor, "m2m", "inbox"), "M2M", donor, native.SwitchAuthorisation, n, false, nil, fleet.AuthorisationRecords(f.Cards, recipient, cut)); err != nil {
			return err
		}
		if _, err := w.send(w.dropDir(recipient, "m2m", "inbox"), "M2M", recipient, native.SwitchRequest, n, false, nil, fleet.SwitchRequestRecords(f.Cards, donor, cut)); err != nil {
			return err
		}
		resultJob := "imsi-result"
		if recipient == "MNOB" && donor == "MNOC" {
			resultJob = "imsi-result-c"
		}
		if err := w.jobs(ctx, [2]string{donor, "authorisation"}, [2]string{recipient, "switch-request"}, [2]string{donor, "imsi-list"}, [2]string{recipient, resultJob}); err != nil {
			return err
		}
		return nil
	}

	for _, step := range [][2]string{{"MNOA", "MNOB"}, {"MNOB", "MNOC"}} {
		donor, recipient := step[0], step[1]
		w.say("  %s -> %s: IMSI update with the key-index command (absolute index), key release, key request, provisioning, reset", donor, recipient)
		if err := hop(donor, recipient); err != nil {
			return err
		}
		if err := w.smscFor(ctx, donor, sm); err != nil {
			return err
		}
		mfrFrom := "key-release-" + strings.ToLower(donor[3:])
		mfrReq := "key-request-" + strings.ToLower(recipient[3:])
		if err := w.jobs(ctx, [2]string{recipient, "imsi-result"}, [2]string{donor, "handover"}, [2]string{"MFR", mfrFrom}, [2]string{recipient, "handover-in"},
			[2]string{"MFR", mfrReq}, [2]string{recipient, "key-response"}, [2]string{donor, "handover-ack"}); err != nil {
			return err
		}
		if err := w.smscFor(ctx, donor, sm); err != nil {
			return err
		}
	}
	for _, c := range f.Cards {
		if cur, _ := c.SIM.KeyIndex(); cur != 3 {
			return fmt.Errorf("card %s is at key index %d, want 3", c.ICCID, cur)
		}
	}
	w.say("  MNOC -> MNOB: the cards are at index 3 of 3: MNOC refuses with LIST_EXHAUSTED before any message")
	return hop("MNOC", "MNOB")
}
