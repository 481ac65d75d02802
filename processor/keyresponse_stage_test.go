package processor_test

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"resub/formats/native"
	"resub/processor"
	"resub/processor/ledger"
	"resub/samples/fleet"
)

// keyWorld is a recipient (3b) whose cards wait for the manufacturer's
// pairs at index 2, from two donors, beside cards in other states.
type keyWorld struct {
	*world
	b     *processor.Party
	cards []*fleet.Card
}

// Card states of the key world's cards, by fleet index; the source is
// MNOA unless listed in keySources.
var (
	keyStates = map[int]string{0: "incoming", 1: "incoming", 2: "incoming", 3: "incoming", 4: "incoming",
		6: ledger.CardActive, 7: "incoming", 8: "incoming", 9: "requested", 10: "incoming", 11: "incoming"}
	keySources = map[int]string{8: "MNOC"}
)

func newKeyWorld(t *testing.T, cards []*fleet.Card, source func(i int) string) *keyWorld {
	t.Helper()
	ctx := context.Background()
	w, b, prof := keyParty(t)
	err := b.Ledger.InTx(ctx, func(tx *ledger.Tx) error {
		for i := range len(cards) {
			st, ok := keyStates[i]
			if !ok {
				continue
			}
			imsi := fmt.Sprintf("9999900000001%02d", i)
			c := &ledger.Card{ICCID: cards[i].ICCID, IMSI: imsi, MSISDN: cards[i].MSISDN, State: st, Owner: "M2M", Source: source(i),
				Profile: prof.Name, KeyIndex: 2, ListLength: 3}
			if _, err := tx.InsertCard(ctx, c); err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, `INSERT INTO imsi_allocations (imsi, iccid, state, ref, created_at, updated_at) VALUES (?, ?, 'pending', 'earlier', '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z')`, imsi, c.ICCID); err != nil {
				return err
			}
		}
		// A key set of index 2 already there: the higher counter stays.
		return tx.PutKeySet(ctx, cards[10].ICCID, ledger.KeySet{KeyIndex: 2, KVN: 2, KIcAlg: "aes-128", KIDAlg: "aes-128", Counter: 5})
	})
	if err != nil {
		t.Fatal(err)
	}
	return &keyWorld{world: w, b: b, cards: cards}
}

// keyParty is the recipient B of a key world, with no cards yet: its 3b
// profile, the two donors, the HLR and the manufacturer.
func keyParty(t testing.TB) (*world, *processor.Party, *processor.Profile) {
	w := newWorld(t)
	b := w.party("MNOB", mustRanges(t, "999-99:0000000000-0000099999"), nil)
	prof := profile3b(t, "usim-3b", true)
	b.Profiles[prof.Name] = prof
	w.partner(b, "mno-a", "MNOA", "operator", "tk-ab", mustRanges(t, "001-01"), false)
	w.partner(b, "mno-c", "MNOC", "operator", "tk-bc", mustRanges(t, "999-98"), false)
	w.partner(b, "hlr", "HLRB", "hlr", "tk-aucb", nil, true)
	w.partner(b, "mfr", "MFR", "manufacturer", "tk-mb", nil, false)
	return w, b, prof
}

// keyLine is one hand-made key-response line: the card, the index, the
// status and the pair's lengths (0: absent).
type keyLine struct {
	iccid     string
	index     string
	status    string
	reason    string
	ki, kic   int
	kvn       string
	otaAlg    string
	garbledKi bool
	noOPc     bool
	authAlg   string
}

// keyRecords writes the lines as the manufacturer would, the pair wrapped
// under the transport key it shares with B.
func (x *keyWorld) keyRecords(lines []keyLine) func(func(*native.Record) error) error {
	tk := processor.NewTransport(x.tks["tk-mb"])
	return func(emit func(*native.Record) error) error {
		r := native.NewRecord(native.KeyResponse)
		for n, l := range lines {
			for _, f := range native.KeyResponse.Fields {
				r.Set(f.Name, "")
			}
			r.Set(native.FieldRequestID, fmt.Sprintf("MNOB-%d", n))
			r.Set(native.FieldICCID, l.iccid)
			r.Set(native.FieldKeyIndex, l.index)
			r.Set(native.FieldStatus, l.status)
			r.Set(native.FieldReason, l.reason)
			if l.status == native.StatusReleased {
				wrap := func(field string, size, seed int) {
					if size == 0 {
						return
					}
					b := make([]byte, size)
					for i := range b {
						b[i] = byte(seed*31 + i + n)
					}
					v, err := tk.Wrap(b)
					if err != nil {
						panic(err)
					}
					r.Set(field, v)
				}
				wrap(native.FieldKi, l.ki, 1)
				if !l.noOPc {
					wrap(native.FieldOPc, 16, 2)
				}
				if l.garbledKi {
					r.Set(native.FieldKi, "tk-mb:"+strings.Repeat("ab", 24))
				}
				if l.kvn != "" {
					wrap(native.FieldKIc, l.kic, 3)
					wrap(native.FieldKID, l.kic, 4)
					wrap(native.FieldKIK, l.kic, 5)
					r.Set(native.FieldKVN, l.kvn)
					r.Set(native.FieldOTAAlg, l.otaAlg)
				}
				alg := l.authAlg
				if alg == "" {
					alg = "milenage"
				}
				r.Set(native.FieldAlgorithm, alg)
			}
			if err := emit(r); err != nil {
				return err
			}
		}
		return nil
	}
}

// send writes the key-response from the manufacturer to B.
func (x *keyWorld) send(lines []keyLine) string {
	return x.world.send("MFR", "MNOB", native.KeyResponse, len(lines), false, "tk-mb", x.keyRecords(lines))
}

// dumpKeys is what a key-response leaves in B's ledger beyond dumpLedger:
// key sets, the secrets (which, not their blobs: each seal has its own
// nonce) and the outputs planned.
func dumpKeys(t *testing.T, p *processor.Party) string {
	return dumpLedger(t, p) + dumpQueries(t, p,
		`SELECT * FROM key_sets ORDER BY iccid, key_index, kvn`,
		`SELECT iccid, name, key_index, master_key, blob IS NULL FROM card_secrets ORDER BY iccid, name, key_index`,
		`SELECT type, partner, renderer, state, seq FROM outputs ORDER BY type, partner`,
	)
}

// recordTexts is each record as its fields' values, sorted; wrapped
// secrets are shown unwrapped with tk (each world has its own keys).
func recordTexts(t *testing.T, schema *native.Schema, recs []*native.Record, tk processor.Transport) []string {
	var out []string
	for _, r := range recs {
		var b strings.Builder
		for _, f := range schema.Fields {
			v := r.Get(f.Name)
			if (f.Name == native.FieldKi || f.Name == native.FieldOPc) && v != "" {
				plain, err := tk.Unwrap(v)
				if err != nil {
					t.Fatalf("%s: %v", f.Name, err)
				}
				v = fmt.Sprintf("%x", plain)
			}
			b.WriteString(v + "|")
		}
		out = append(out, b.String())
	}
	slices.Sort(out)
	return out
}

// Every rule of B's key-response intake, alone and on repeats: the
// set-based step leaves exactly the ledger, the counts, the
// acknowledgements and the provisioning file that the record-at-a-time
// step leaves on the same input, and the answers listed here.
func TestKeyResponseJudgesEveryLine(t *testing.T) {
	f, err := fleet.New(fleet.Options{N: 14, Seed: "key-stage"})
	if err != nil {
		t.Fatal(err)
	}
	c := f.Cards
	badICCID := []byte(c[13].ICCID)
	badICCID[len(badICCID)-1] = '0' + (badICCID[len(badICCID)-1]-'0'+1)%10
	rel := native.StatusReleased
	lines := []keyLine{
		{iccid: c[0].ICCID, index: "2", status: rel, ki: 16, kic: 16, kvn: "1", otaAlg: "aes-128"},
		// No cipher named: the card's profile implies it.
		{iccid: c[1].ICCID, index: "2", status: rel, ki: 16, kic: 16, kvn: "1"},
		{iccid: c[2].ICCID, index: "2", status: native.StatusRefused, reason: "NOT_AUTHORISED"},
		// Another index than the card's.
		{iccid: c[3].ICCID, index: "3", status: rel, ki: 16, kic: 16, kvn: "1", otaAlg: "aes-128"},
		// A Ki of a length Milenage does not take.
		{iccid: c[4].ICCID, index: "2", status: rel, ki: 8, kic: 16, kvn: "1", otaAlg: "aes-128"},
		// Unknown here; active here; answered twice; not waiting for keys.
		{iccid: c[5].ICCID, index: "2", status: rel, ki: 16},
		{iccid: c[6].ICCID, index: "2", status: rel, ki: 16},
		{iccid: c[0].ICCID, index: "2", status: rel, ki: 16, kic: 16, kvn: "1", otaAlg: "aes-128"},
		{iccid: c[2].ICCID, index: "2", status: rel, ki: 16},
		{iccid: c[9].ICCID, index: "2", status: rel, ki: 16},
		// No key set; from the other donor; a key set already there.
		{iccid: c[7].ICCID, index: "2", status: rel, ki: 16},
		{iccid: c[8].ICCID, index: "2", status: rel, ki: 16, kic: 16, kvn: "1", otaAlg: "aes-128"},
		{iccid: c[10].ICCID, index: "2", status: rel, ki: 16, kic: 16, kvn: "2", otaAlg: "aes-128"},
		// The reader's rejection; a garbled pair of a card not waiting.
		{iccid: string(badICCID), index: "2", status: rel, ki: 16},
		{iccid: c[6].ICCID, index: "2", status: rel, ki: 16, garbledKi: true},
		// A refusal of a card whose earlier line was taken.
		{iccid: c[1].ICCID, index: "2", status: native.StatusRefused, reason: "KEY_INDEX"},
		{iccid: c[11].ICCID, index: "2", status: rel, ki: 16, kic: 16, kvn: "3", otaAlg: "aes-128"},
	}
	source := func(i int) string {
		if s, ok := keySources[i]; ok {
			return s
		}
		return "MNOA"
	}
	type run struct {
		dump      string
		b         *processor.Party
		res       *processor.Result
		acks      map[string][]string
		provision []string
	}
	do := func(step func(*processor.Party) processor.FileStep) run {
		x := newKeyWorld(t, c, source)
		res := x.process(x.b, "mfr", step(x.b), x.send(lines))
		r := run{dump: dumpKeys(t, x.b), b: x.b, res: res, acks: map[string][]string{}}
		for _, o := range res.Outputs {
			_, recs := x.readOutput(x.b, o)
			switch o.Type {
			case native.HandoverAck.Name:
				r.acks[o.Partner] = recordTexts(t, native.HandoverAck, recs, nil)
			case native.Provisioning.Name:
				r.provision = recordTexts(t, native.Provisioning, recs, x.b.Partners["hlr"].Transport)
			}
		}
		return r
	}
	set := do(func(b *processor.Party) processor.FileStep {
		return &processor.KeyResponseIntake{HLR: b.Partners["hlr"]}
	})
	ref := do(func(b *processor.Party) processor.FileStep {
		return &processor.KeyResponsePerRecord{HLR: b.Partners["hlr"]}
	})
	if set.dump != ref.dump {
		t.Errorf("ledgers differ:\nset-based:\n%s\nrecord at a time:\n%s", set.dump, ref.dump)
	}
	if set.res.Counts != ref.res.Counts {
		t.Errorf("counts %+v, record at a time %+v", set.res.Counts, ref.res.Counts)
	}
	if fmt.Sprint(set.acks) != fmt.Sprint(ref.acks) {
		t.Errorf("acknowledgements differ:\n%v\n%v", set.acks, ref.acks)
	}
	if !slices.Equal(set.provision, ref.provision) {
		t.Errorf("provisioning differs:\n%v\n%v", set.provision, ref.provision)
	}
	if len(set.provision) != 6 || len(set.acks["mno-a"]) != 8 || len(set.acks["mno-c"]) != 1 {
		t.Errorf("%d provisioned, acknowledgements %v", len(set.provision), set.acks)
	}
	want := processor.Counts{Records: len(lines), Accepted: 6, Rejected: len(lines) - 6}
	if set.res.Counts.Records != want.Records || set.res.Counts.Accepted != want.Accepted || set.res.Counts.Rejected != want.Rejected {
		t.Errorf("counts %+v, want %+v", set.res.Counts, want)
	}
	// The answers, line by line ("" for none).
	answers := map[int]string{}
	rows, err := set.b.Ledger.Query(context.Background(), `SELECT line, status, reason, detail FROM batch_records WHERE batch_id = ?`, set.res.BatchID)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var line int
		var st, reason, detail string
		if err := rows.Scan(&line, &st, &reason, &detail); err != nil {
			t.Fatal(err)
		}
		answers[line] = st + " " + reason + " " + detail
	}
	rows.Close()
	prov := "provisioned  "
	wantAnswers := []string{prov, prov, "rejected KEY_INDEX manufacturer: NOT_AUTHORISED", "rejected KEY_INDEX manufacturer: ",
		"rejected INVALID_RECORD manufacturer's keys: ki: ", "", "", "", "", "", prov, prov, prov, "rejected INVALID_RECORD MFR_MNOB_key-response_20261128_000001.txt.pgp:", "", "", prov}
	first := 1 << 30
	for line := range answers {
		first = min(first, line)
	}
	for i, want := range wantAnswers {
		got := answers[first+i]
		if got != want && (want == "" || !strings.HasPrefix(got, want)) {
			t.Errorf("line %d: %q, want %q", i+1, got, want)
		}
	}
}

// A line whose pair does not unwrap refuses the file when its card is
// waiting for keys, as the record-at-a-time step did at that line; the
// first failing line decides between a refusal and an error (a donor or
// profile not configured here), and the message is the same.
func TestKeyResponseFailsAtTheSameLine(t *testing.T) {
	f, err := fleet.New(fleet.Options{N: 14, Seed: "key-stage-fail"})
	if err != nil {
		t.Fatal(err)
	}
	c := f.Cards
	rel := native.StatusReleased
	good := keyLine{iccid: c[0].ICCID, index: "2", status: rel, ki: 16, kic: 16, kvn: "1", otaAlg: "aes-128"}
	cases := []struct {
		name   string
		lines  []keyLine
		source func(i int) string
		prof   string
		passes bool // no line that counts fails
	}{
		{"garbled pair", []keyLine{good, {iccid: c[1].ICCID, index: "2", status: rel, ki: 16, garbledKi: true}}, nil, "", false},
		{"garbled pair of a refused index", []keyLine{good, {iccid: c[1].ICCID, index: "3", status: rel, ki: 16, garbledKi: true}}, nil, "", true},
		{"donor not configured", []keyLine{good, {iccid: c[3].ICCID, index: "2", status: rel, ki: 16}, {iccid: c[1].ICCID, index: "2", status: rel, ki: 16, garbledKi: true}},
			func(i int) string {
				if i == 3 {
					return "MNOX"
				}
				return "MNOA"
			}, "", false},
		{"garbled before the unknown donor", []keyLine{good, {iccid: c[1].ICCID, index: "2", status: rel, ki: 16, garbledKi: true}, {iccid: c[3].ICCID, index: "2", status: rel, ki: 16}},
			func(i int) string {
				if i == 3 {
					return "MNOX"
				}
				return "MNOA"
			}, "", false},
		{"profile not configured", []keyLine{good, {iccid: c[1].ICCID, index: "2", status: rel, ki: 16}}, nil, "usim-gone", false},
		{"no cipher for the key set", []keyLine{good, {iccid: c[1].ICCID, index: "2", status: rel, ki: 16, kic: 8, kvn: "1"}}, nil, "", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			src := tc.source
			if src == nil {
				src = func(int) string { return "MNOA" }
			}
			do := func(step func(*processor.Party) processor.FileStep) (string, string, string) {
				x := newKeyWorld(t, c, src)
				if tc.prof != "" {
					err := x.b.Ledger.InTx(context.Background(), func(tx *ledger.Tx) error {
						_, err := tx.Exec(context.Background(), `UPDATE cards SET profile = ? WHERE iccid = ?`, tc.prof, c[1].ICCID)
						return err
					})
					if err != nil {
						t.Fatal(err)
					}
				}
				path := x.send(tc.lines)
				res, err := x.b.ProcessFile(context.Background(), step(x.b), processor.Input{Partner: x.b.Partners["mfr"], Name: filepath.Base(path), Path: path, Job: "key-response"})
				status := ""
				if res != nil {
					status = res.Status + " " + res.Reason
				}
				return fmt.Sprint(err), status, dumpKeys(t, x.b)
			}
			setErr, setStatus, setDump := do(func(b *processor.Party) processor.FileStep {
				return &processor.KeyResponseIntake{HLR: b.Partners["hlr"]}
			})
			refErr, refStatus, refDump := do(func(b *processor.Party) processor.FileStep {
				return &processor.KeyResponsePerRecord{HLR: b.Partners["hlr"]}
			})
			if setErr != refErr || setStatus != refStatus {
				t.Errorf("set-based: %s (%s), record at a time: %s (%s)", setErr, setStatus, refErr, refStatus)
			}
			if (setErr == "<nil>") != tc.passes {
				t.Errorf("failure: %s", setErr)
			}
			if setDump != refDump {
				t.Errorf("ledgers differ:\n%s\n%s", setDump, refDump)
			}
		})
	}
}
