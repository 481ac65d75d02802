package processor

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"resub/processor/ledger"
)

// parseWindow reads a submission window "HH:MM-HH:MM" (it may wrap past
// midnight) as hours and minutes of its start and end.
func parseWindow(s string) (from, to [2]int, err error) {
	a, b, ok := strings.Cut(s, "-")
	if !ok {
		return from, to, fmt.Errorf("window %q: want HH:MM-HH:MM", s)
	}
	for i, part := range []string{a, b} {
		h, m, ok := strings.Cut(part, ":")
		hh, err1 := strconv.Atoi(h)
		mm, err2 := strconv.Atoi(m)
		if !ok || len(h) != 2 || len(m) != 2 || err1 != nil || err2 != nil || hh > 23 || mm > 59 || hh < 0 || mm < 0 {
			return from, to, fmt.Errorf("window %q: want HH:MM-HH:MM", s)
		}
		if i == 0 {
			from = [2]int{hh, mm}
		} else {
			to = [2]int{hh, mm}
		}
	}
	return from, to, nil
}

// zone is the time zone of the profile's window (UTC by default).
func (prof *Profile) zone() *time.Location {
	if prof.Zone != nil {
		return prof.Zone
	}
	return time.UTC
}

// windowOn is the profile's submission window that opens on the calendar
// date of day in the profile's zone: its first and last instant. Each end
// is placed by the zone's rules on its own date, so a window across a
// daylight-saving change has the right length. Without a window the
// whole day is open.
func (prof *Profile) windowOn(y int, m time.Month, d int) (start, end time.Time, err error) {
	loc := prof.zone()
	w := prof.Window
	if w == "" {
		w = "00:00-23:59"
	}
	from, to, err := parseWindow(w)
	if err != nil {
		return start, end, fmt.Errorf("profile %s: %w", prof.Name, err)
	}
	start = time.Date(y, m, d, from[0], from[1], 0, 0, loc)
	endDay := d
	if to[0]*60+to[1] <= from[0]*60+from[1] {
		endDay++
	}
	end = time.Date(y, m, endDay, to[0], to[1], 0, 0, loc)
	return start, end, nil
}

// utcWindow is the profile's window of the night that starts on the date
// of t (in the profile's zone), written in UTC as the ota-batch's #window
// wants it.
func (prof *Profile) utcWindow(t time.Time) (string, error) {
	y, m, d := t.In(prof.zone()).Date()
	start, end, err := prof.windowOn(y, m, d)
	if err != nil {
		return "", err
	}
	return start.UTC().Format("15:04") + "-" + end.UTC().Format("15:04"), nil
}

// cutoverStart is the first instant a card's messages may go out: the
// opening of the profile's window on the card's cut-over date (YYYY-MM-DD,
// a date in the profile's zone). ok is false when the card has none.
func (prof *Profile) cutoverStart(cutover string) (t time.Time, ok bool, err error) {
	if cutover == "" {
		return t, false, nil
	}
	d, err := time.Parse(time.DateOnly, cutover)
	if err != nil {
		return t, false, fmt.Errorf("cut-over date %q: %w", cutover, err)
	}
	start, _, err := prof.windowOn(d.Year(), d.Month(), d.Day())
	return start, err == nil, err
}

// markSent records a delivered ota-batch: its messages are sent, each
// with its PoR deadline: validity and margin from the delivery, or from
// the message's not-before when the card's cut-over opens later (one
// statement over the batch: each message is written once, its card read
// once).
func (p *Party) markSent(ctx context.Context, tx *ledger.Tx, batchID, fileID int64, delivered time.Time) error {
	rows, err := tx.Query(ctx, `SELECT DISTINCT c.profile, c.cutover FROM ota_messages m JOIN cards c ON c.iccid = m.iccid
		WHERE m.batch_id = ? AND m.state = 'reserved'`, batchID)
	if err != nil {
		return err
	}
	type group struct{ profile, cutover string }
	var groups []group
	for rows.Next() {
		var g group
		if err := rows.Scan(&g.profile, &g.cutover); err != nil {
			rows.Close()
			return err
		}
		groups = append(groups, g)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	rest := delivered.Add(p.maxValidity() + p.OTA.PoRMargin)
	var later []ledger.SentDeadline
	var first time.Time
	same := true // every message takes the same deadline, first
	for i, g := range groups {
		d := rest
		if prof := p.Profiles[g.profile]; prof != nil {
			if start, ok, err := prof.cutoverStart(g.cutover); err == nil && ok && start.After(delivered) {
				d = start.Add(prof.Validity + p.OTA.PoRMargin)
				later = append(later, ledger.SentDeadline{Profile: g.profile, Cutover: g.cutover, Deadline: d})
			}
		}
		if i == 0 {
			first = d
		} else if !d.Equal(first) {
			same = false
		}
	}
	if same && len(groups) > 0 {
		// One cut-over for the whole batch (or none in the future):
		// no card needs reading.
		return tx.MarkBatchSent(ctx, batchID, fileID, first)
	}
	// One statement tells a few hundred cut-over dates apart; a batch
	// with more takes the others first, one statement each.
	for len(later) > maxSentGroups {
		d := later[len(later)-1]
		if err := tx.MarkBatchSentWhere(ctx, batchID, fileID, d.Deadline,
			`EXISTS (SELECT 1 FROM cards c WHERE c.iccid = ota_messages.iccid AND c.profile = ? AND c.cutover = ?)`, d.Profile, d.Cutover); err != nil {
			return err
		}
		later = later[:len(later)-1]
	}
	return tx.MarkBatchSentBy(ctx, batchID, fileID, rest, later)
}

// maxSentGroups is how many cut-over dates and profiles markSent's
// statement tells apart.
const maxSentGroups = 200
