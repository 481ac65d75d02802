package processor

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"strconv"
	"time"

	"golang.org/x/sync/errgroup"

	"resub/formats/native"
	"resub/formats/ota"
	"resub/processor/ledger"
)

// IMSIList is the donor's nightly step: every record of the recipient's
// imsi-list is checked against the acceptance rules; accepted cards get
// an IMSI-update message with a freshly reserved counter, collected into
// an ota-batch for the SMSC; the recipient gets an imsi-result with every
// record's answer.
type IMSIList struct {
	// SMSC is the partner that takes the ota-batch.
	SMSC *Partner
}

// InputType implements FileStep.
func (s *IMSIList) InputType() string { return native.IMSIList.Name }

// findsDuplicates: the staging table finds repeated ICCIDs and IMSIs.
func (s *IMSIList) findsDuplicates() bool { return true }

// Apply implements FileStep. It works in two phases inside the work's
// transaction. The records stream into a staging table (line, ICCID, new
// IMSI, cut-over date and the checks that need no ledger); then a few
// set-based statements judge every line against the ledger by the
// acceptance rules, record the answers, move the accepted cards, reserve
// their counters and queue their messages. A million records cost a few
// passes over the tables instead of ten statements each.
func (s *IMSIList) Apply(ctx context.Context, w *Work) error {
	if s.SMSC == nil {
		return fmt.Errorf("imsi-list step: no SMSC partner configured")
	}
	b := w.Partner
	st, err := w.Tx.StageIMSIList(ctx, imsiListProfiles(w.P))
	if err != nil {
		return err
	}
	defer st.Close(ctx)
	st.Took = tookLogger(w, "imsi-list")
	today := day(w.P.now()).Format(time.DateOnly)
	err = w.eachRecord(ctx, nil, func(rec *native.Record) error {
		newIMSI := rec.Get(native.FieldIMSI)
		date, _ := rec.Date(native.FieldCutoverDate)
		cutover := date.Format(time.DateOnly)
		return st.Add(ctx, rec.Line, rec.Get(native.FieldICCID), newIMSI, cutover, b.Ranges.Contains(newIMSI), cutover < today)
	})
	if err != nil {
		return err
	}
	w.P.log().Info("imsi-list staged", "partner", b.Name, "file", w.File.Name, "records", w.Counts.Records)
	judged, err := st.Judge(ctx, imsiListJudge(w))
	if err != nil {
		return err
	}
	w.Counts.Rejected += judged.Rejected
	w.P.log().Info("imsi-list judged", "partner", b.Name, "file", w.File.Name, "accepted", judged.Accepted, "rejected", w.Counts.Rejected)
	acc := imsiListAccept(w)
	accepted, err := st.Accept(ctx, acc, outstandingStates)
	if err != nil {
		return err
	}
	perCard := 1
	if acc.Reset != "" {
		perCard = 2
	}
	w.Counts.Accepted += accepted
	w.Counts.Messages += accepted * perCard
	if _, err := w.Plan(ctx, "imsi-result", native.IMSIResult.Name, b, true); err != nil {
		return err
	}
	if accepted > 0 {
		o, err := w.Plan(ctx, "ota-batch", native.OTABatch.Name, s.SMSC, false)
		if err != nil {
			return err
		}
		// A file for the SMSC (not the SMPP queue): its records are
		// rendered now, from the stage, as the messages were queued.
		if w.preparing(o) {
			if err := w.prepareOTABatch(ctx, o, st); err != nil {
				return err
			}
		}
	}
	return st.Close(ctx)
}

// prepareOTABatch renders the records of the ota-batch o from the stage
// that has just queued its messages (their ids, counters, cards and the
// cards' wrapped keys as the stage holds them), a page at a time into a
// sealed spill, while the transaction is still open: the output is then
// written from the spill once the work commits, with the same bytes the
// ledger would give (renderOTABatch).
func (w *Work) prepareOTABatch(ctx context.Context, o *ledger.Output, st *ledger.IMSIListStage) error {
	var profiles []string
	pr, err := w.prepare(ctx, o, native.OTABatch, func(ctx context.Context, emit func(*native.Record) error) error {
		return w.P.otaBatchRecords(ctx, o, func(ctx context.Context, page func([]ledger.BatchMessage) error) error {
			return st.Messages(ctx, otaPageSize, []string{SecKIc, SecKID}, page)
		}, func(name string) error {
			if !slices.Contains(profiles, name) {
				profiles = append(profiles, name)
			}
			return nil
		}, emit)
	})
	if err != nil {
		return err
	}
	pr.header = func(p *Party, o *ledger.Output, h *native.Header) error {
		var oh otaHeader
		for _, name := range profiles {
			if err := oh.add(p, o, name); err != nil {
				oh.set(h)
				return err
			}
		}
		oh.set(h)
		return nil
	}
	return nil
}

// Message kinds.
const (
	msgUpdate   = "update"    // the IMSI update (3b: with the key-index command where the profile says)
	msgReset    = "reset"     // the REFRESH/UICC reset
	msgKeyIndex = "key-index" // 3b key-index command as a message of its own
	msgProbe    = "probe"     // 3b: read-back under the old key after no answer
)

// queueMessage reserves the card's next counter and records a message of
// kind for the batch. The counter is durable with the transaction: a crash
// before commit leaves nothing sent; after commit it is never reused.
func (p *Party) queueMessage(ctx context.Context, tx *ledger.Tx, c *ledger.Card, prof *Profile, kind string, batchID int64, attempt int, step int64) error {
	// One outstanding message per card: a new one only once the last
	// was answered or given up (the reset that follows an update by the
	// reset-with-update policy is the one pair sent together).
	if out, err := tx.Outstanding(ctx, c.ICCID); err != nil {
		return err
	} else if out != nil && !(kind == msgReset && out.Kind == msgUpdate && out.BatchID == batchID) {
		return fmt.Errorf("card %s already has message %d (%s) outstanding", c.ICCID, out.ID, out.Kind)
	}
	kvn, err := currentKVN(ctx, tx, c)
	if err != nil {
		return err
	}
	counter, err := tx.ReserveCounter(ctx, c.ICCID, c.KeyIndex, kvn, step)
	if err != nil {
		return err
	}
	tar := prof.OTA.TAR
	switch kind {
	case msgReset:
		tar = prof.OTA.ResetTAR
	case msgKeyIndex:
		tar = prof.OTA.KeyIndex.TAR
	}
	_, err = tx.InsertMessage(ctx, &ledger.Message{
		ICCID: c.ICCID, BatchID: batchID, Kind: kind, KeyIndex: c.KeyIndex, KVN: kvn, Counter: counter,
		TAR: tar.String(), MSISDN: c.MSISDN, ConcatRef: int(counter%255) + 1, Attempt: attempt, State: ledger.MsgReserved,
	})
	return err
}

// currentKVN is the key version of the card's key set in use.
func currentKVN(ctx context.Context, tx *ledger.Tx, c *ledger.Card) (int, error) {
	sets, err := tx.KeySets(ctx, c.ICCID)
	if err != nil {
		return 0, err
	}
	for _, k := range sets {
		if k.KeyIndex == c.KeyIndex {
			return k.KVN, nil
		}
	}
	return 0, fmt.Errorf("card %s has no OTA key set for index %d", c.ICCID, c.KeyIndex)
}

// buildMessage renders one message's SMS segments from the ledger: the
// card's keys, the counter reserved for it and the script of its kind.
func (p *Party) buildMessage(ctx context.Context, m *ledger.Message, c *ledger.Card) (ota.Message, []ota.APDU, error) {
	prof := p.Profiles[c.Profile]
	if prof == nil {
		return ota.Message{}, nil, fmt.Errorf("card %s: profile %s not configured", c.ICCID, c.Profile)
	}
	apdus, _, err := p.script(m, c, prof)
	if err != nil {
		return ota.Message{}, nil, err
	}
	tar, err := ota.ParseTAR(m.TAR)
	if err != nil {
		return ota.Message{}, nil, err
	}
	keys, err := p.cardSecrets(ctx, nil, c.ICCID, m.KeyIndex)
	if err != nil {
		return ota.Message{}, nil, err
	}
	defer wipe(keys)
	msg, err := ota.BuildMessage(otaParams(prof, m.KVN, tar), ota.Keys{KIc: keys[SecKIc], KID: keys[SecKID]}, prof.OTA.Format, uint64(m.Counter), apdus, byte(m.ConcatRef))
	return msg, apdus, err
}

// script is the command script of a message and, for an update, the
// EF_IMSI the card must read back.
func (p *Party) script(m *ledger.Message, c *ledger.Card, prof *Profile) ([]ota.APDU, [ota.EFIMSILen]byte, error) {
	var ef [ota.EFIMSILen]byte
	switch m.Kind {
	case msgUpdate:
		return prof.OTA.UpdateScript(p.change(c, prof))
	case msgProbe:
		// Select and read EF_IMSI: the PoR shows which IMSI the card
		// holds now (an RFM session starts with no EF selected).
		_, ef, err := prof.OTA.UpdateScript(ota.Change{NewIMSI: c.NewIMSI, NewMNCLen: p.newMNCLen(c), OldMNCLen: mncLen(c.IMSI, p.Ranges)})
		return prof.OTA.ReadIMSIScript(), ef, err
	case msgReset:
		a, err := prof.OTA.ResetScript()
		return a, ef, err
	case msgKeyIndex:
		a, err := prof.OTA.KeyIndex.Command(c.KeyIndex + 1)
		return []ota.APDU{a}, ef, err
	case msgRotate:
		a, err := p.rotationScript(context.TODO(), m, c, prof)
		return a, ef, err
	}
	return nil, ef, fmt.Errorf("unknown message kind %q", m.Kind)
}

// change is the IMSI change an update message makes on the card.
func (p *Party) change(c *ledger.Card, prof *Profile) ota.Change {
	change := ota.Change{NewIMSI: c.NewIMSI, NewMNCLen: p.newMNCLen(c), OldMNCLen: mncLen(c.IMSI, p.Ranges)}
	if prof.OTA.KeyIndex != nil && prof.OTA.KeyIndex.WithUpdate {
		change.KeyIndex = c.KeyIndex + 1
	}
	return change
}

// newMNCLen is the MNC length of the card's new IMSI: from the
// recipient's PLMNs.
func (p *Party) newMNCLen(c *ledger.Card) int {
	if r := p.PartnerByCode(c.Recipient); r != nil {
		if n := mncLen(c.NewIMSI, r.Ranges); n != 0 {
			return n
		}
	}
	if n := mncLen(c.NewIMSI, p.Ranges); n != 0 {
		return n
	}
	return 2
}

// renderOTABatch writes the messages of a batch for the SMSC. Messages
// come from the ledger a page at a time with their cards and secrets
// (BatchMessagePages); the secured packets of a page are built on every
// core and written in message order. The step that queued the messages
// renders them as it queues them instead (prepareOTABatch); this is the
// way of every other batch, and of that one when its prepared records are
// gone (a rerun after a crash).
var renderOTABatch = &renderer{
	schema: native.OTABatch,
	count: func(ctx context.Context, p *Party, o *ledger.Output) (int, error) {
		var n int
		err := p.Ledger.QueryRow(ctx, `SELECT COUNT(*) FROM ota_messages WHERE batch_id = ?`, o.BatchID).Scan(&n)
		return n, err
	},
	header: func(ctx context.Context, p *Party, o *ledger.Output, h *native.Header) error {
		var oh otaHeader
		err := p.Ledger.BatchProfiles(ctx, o.BatchID, func(name string) error { return oh.add(p, o, name) })
		oh.set(h)
		return err
	},
	records: func(ctx context.Context, p *Party, o *ledger.Output, emit func(*native.Record) error) error {
		return p.otaBatchRecords(ctx, o, func(ctx context.Context, page func([]ledger.BatchMessage) error) error {
			return p.Ledger.BatchMessagePages(ctx, o.BatchID, otaPageSize, []string{SecKIc, SecKID}, page)
		}, nil, emit)
	},
}

// otaHeader is what an ota-batch's header says of its messages' profiles:
// the lowest rate, and the first profile's window. add takes the profiles
// in the order of their first message.
type otaHeader struct {
	rate   int
	window string
}

func (oh *otaHeader) add(p *Party, o *ledger.Output, name string) error {
	prof := p.Profiles[name]
	if prof == nil {
		return nil
	}
	if oh.rate == 0 || prof.Rate < oh.rate {
		oh.rate = prof.Rate
	}
	if oh.window == "" {
		// The header's window is in UTC: the profile's, converted for
		// the night the batch is made.
		w, err := prof.utcWindow(o.Created)
		if err != nil {
			return err
		}
		oh.window = w
	}
	return nil
}

func (oh *otaHeader) set(h *native.Header) {
	h.MaxRate, h.Window = oh.rate, oh.window
	if h.MaxRate == 0 {
		h.MaxRate = 10
	}
	if h.Window == "" {
		h.Window = "00:00-23:59"
	}
}

// otaBatchRecords emits the records of an ota-batch from the pages of its
// messages in message order (read on their own goroutine while the
// previous page's packets are built on every core). profile, when set,
// hears each message's card profile.
func (p *Party) otaBatchRecords(ctx context.Context, o *ledger.Output, pages func(ctx context.Context, page func([]ledger.BatchMessage) error) error,
	profile func(string) error, emit func(*native.Record) error) error {
	rec := native.NewRecord(native.OTABatch)
	partner := p.Partners[o.Partner]
	capN := 0
	if partner != nil {
		capN = partner.Policy.PerNightCap
	}
	segs := make([]string, otaPageSize)
	workers := newOTAWorkers()
	i := 0
	return readAhead(ctx, pages, func(ctx context.Context, page []ledger.BatchMessage) error {
		if len(page) > len(segs) {
			segs = make([]string, len(page))
		}
		if err := p.buildPage(ctx, workers, page, segs[:len(page)]); err != nil {
			return err
		}
		for j, bm := range page {
			m, c := bm.Msg, bm.Card
			prof := p.Profiles[c.Profile]
			if prof == nil {
				return fmt.Errorf("card %s: profile %s not configured", c.ICCID, c.Profile)
			}
			if profile != nil {
				if err := profile(c.Profile); err != nil {
					return err
				}
			}
			rec.Set(native.FieldMessageID, messageID(p, m.ID))
			rec.Set(native.FieldICCID, m.ICCID)
			rec.Set(native.FieldMSISDN, m.MSISDN)
			rec.Set(native.FieldTON, "1")
			rec.Set(native.FieldNPI, "1")
			rec.Set(native.FieldOriginator, p.OTA.Originator)
			rec.Set(native.FieldPID, "7f")
			rec.Set(native.FieldDCS, "f6")
			rec.Set(native.FieldUDHI, "1")
			rec.Set(native.FieldRegDelivery, "1")
			rec.Set(native.FieldValidity, strconv.Itoa(int(prof.Validity/time.Second)))
			rec.Set(native.FieldPriority, "1")
			var nb time.Time
			if capN > 0 && i >= capN {
				// Beyond the per-night cap: a later night's window.
				nb = day(o.Created).AddDate(0, 0, i/capN)
			}
			// Never before the card's cut-over date opens in the
			// profile's window: the device must not attach with the
			// new IMSI before the recipient is ready.
			if start, ok, err := prof.cutoverStart(c.Cutover); err != nil {
				return fmt.Errorf("card %s: %w", c.ICCID, err)
			} else if ok && start.After(o.Created) && start.After(nb) {
				nb = start
			}
			if nb.IsZero() {
				rec.Set(native.FieldNotBefore, "")
			} else {
				rec.Set(native.FieldNotBefore, nb.UTC().Format(time.RFC3339))
			}
			rec.Set(native.FieldSegments, segs[j])
			segs[j] = ""
			i++
			if err := emit(rec); err != nil {
				return err
			}
		}
		return nil
	})
}

// otaPageSize is how many messages an OTA batch renders at a time.
const otaPageSize = 1024

// otaWorker is what one core keeps from page to page while it builds
// packets: an encoder rekeyed for every card, the secured data and the
// hex text of the segments of the page's messages it built, one after the
// other.
type otaWorker struct {
	enc    ota.Encoder
	script ota.ScriptBuffer
	aad    []byte
	data   []byte
	text   []byte
	ends   []int // end of each message's text in text, in the worker's order
}

func newOTAWorkers() []*otaWorker {
	ws := make([]*otaWorker, runtime.GOMAXPROCS(0))
	for i := range ws {
		ws[i] = new(otaWorker)
	}
	return ws
}

// buildPage builds the secured packets of a page of messages into segs
// (as the ota-batch writes them), on every core: worker k takes messages
// k, k+W, k+2W …, so each result has its own slot and order is kept. A
// worker writes its messages' text into its own buffer, made one string
// once the page is done; each message's text is a piece of it, so the
// page costs a string a worker, not a string a message.
func (p *Party) buildPage(ctx context.Context, ws []*otaWorker, page []ledger.BatchMessage, segs []string) error {
	workers := min(len(ws), max(1, len(page)/16))
	g, ctx := errgroup.WithContext(ctx)
	for k := range workers {
		w := ws[k]
		g.Go(func() error {
			w.text, w.ends = w.text[:0], w.ends[:0]
			for j := k; j < len(page); j += workers {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				m, c := page[j].Msg, page[j].Card
				msg, err := p.buildMessageWith(w, m, c, page[j].Secrets)
				if err != nil {
					return fmt.Errorf("message %d to %s: %w", m.ID, m.ICCID, err)
				}
				w.text = appendSegmentsText(w.text, msg.Segments)
				w.ends = append(w.ends, len(w.text))
			}
			all := string(w.text)
			start := 0
			for i, end := range w.ends {
				segs[k+i*workers] = all[start:end]
				start = end
			}
			return nil
		})
	}
	return g.Wait()
}

// buildMessageWith builds one message with a worker's encoder, the card's
// wrapped secrets already read: only KIc and KID are opened, and wiped
// once the packet is built. The message shares the worker's buffers until
// its next message.
func (p *Party) buildMessageWith(w *otaWorker, m *ledger.Message, c *ledger.Card, secrets []ledger.Secret) (ota.Message, error) {
	prof := p.Profiles[c.Profile]
	if prof == nil {
		return ota.Message{}, fmt.Errorf("card %s: profile %s not configured", c.ICCID, c.Profile)
	}
	var apdus []ota.APDU
	var err error
	if m.Kind == msgUpdate {
		apdus, _, err = prof.OTA.UpdateScriptInto(&w.script, p.change(c, prof))
	} else {
		apdus, _, err = p.script(m, c, prof)
	}
	if err != nil {
		return ota.Message{}, err
	}
	tar, err := ota.ParseTAR(m.TAR)
	if err != nil {
		return ota.Message{}, err
	}
	var keys ota.Keys
	defer func() { clear(keys.KIc); clear(keys.KID) }()
	for _, s := range secrets {
		var dst *[]byte
		switch s.Name {
		case SecKIc:
			dst = &keys.KIc
		case SecKID:
			dst = &keys.KID
		default:
			continue
		}
		w.aad = appendSecretAAD(w.aad[:0], c.ICCID, s.Name, s.KeyIndex)
		b, err := p.Vault.Open(w.aad, s.Blob)
		if err != nil {
			return ota.Message{}, fmt.Errorf("open %s of %s: %w", s.Name, c.ICCID, err)
		}
		*dst = b
	}
	w.data = ota.SecuredData(w.data[:0], prof.OTA.Format, apdus)
	return w.enc.Message(otaParams(prof, m.KVN, tar), keys, uint64(m.Counter), w.data, byte(m.ConcatRef))
}

// buildMessageFrom is buildMessageWith on a worker of its own: the
// message shares no buffer with any other (the SMSC's submitter keeps
// several messages at once).
func (p *Party) buildMessageFrom(m *ledger.Message, c *ledger.Card, secrets []ledger.Secret) (ota.Message, error) {
	return p.buildMessageWith(new(otaWorker), m, c, secrets)
}

func messageID(p *Party, id int64) string { return p.Name + "-" + strconv.FormatInt(id, 10) }

// appendSegmentsText appends the segments as the ota-batch writes them:
// lower-case hex, separated by single spaces.
func appendSegmentsText(b []byte, segs [][]byte) []byte {
	const hexd = "0123456789abcdef"
	for i, s := range segs {
		if i > 0 {
			b = append(b, ' ')
		}
		for _, c := range s {
			b = append(b, hexd[c>>4], hexd[c&0x0f])
		}
	}
	return b
}

// renderIMSIResult writes the answers of a batch's records for one
// partner.
var renderIMSIResult = &renderer{
	schema: native.IMSIResult,
	count: func(ctx context.Context, p *Party, o *ledger.Output) (int, error) {
		return p.Ledger.CountBatchRecords(ctx, o.BatchID, o.Partner, "")
	},
	records: func(ctx context.Context, p *Party, o *ledger.Output, emit func(*native.Record) error) error {
		rec := native.NewRecord(native.IMSIResult)
		return p.Ledger.BatchRecords(ctx, o.BatchID, o.Partner, "", func(r ledger.BatchRecord) error {
			rec.Set(native.FieldICCID, r.ICCID)
			rec.Set(native.FieldIMSI, r.IMSI)
			rec.Set(native.FieldStatus, r.Status)
			rec.Set(native.FieldReason, r.Reason)
			rec.Set(native.FieldDetail, sanitizeDetail(r.Detail))
			return emit(rec)
		})
	},
}

// sanitizeDetail keeps free text inside one field of a native line.
func sanitizeDetail(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c == '|' || c == '\n' || c == '\r' || c < 0x20 {
			b[i] = ' '
		}
	}
	if len(b) > 200 {
		b = b[:200]
	}
	return string(b)
}
