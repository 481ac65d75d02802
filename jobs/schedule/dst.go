package schedule

import (
	"fmt"
	"strings"
	"time"
)

// DSTError lists the runs of a schedule that a daylight-saving change of
// its zone skips (wall time in a gap) or doubles (wall time in an
// overlap). Schedule such jobs outside 01:00–03:00 local time or in UTC.
type DSTError struct {
	Expr, Zone string
	Skipped    []time.Time // wall times (as UTC-located clocks) that do not exist
	Doubled    []time.Time // wall times that occur twice
}

func (e *DSTError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "schedule %q in %s crosses a daylight-saving change:", e.Expr, e.Zone)
	wall := func(t time.Time) string { return t.Format("2006-01-02 15:04") }
	if len(e.Skipped) > 0 {
		fmt.Fprintf(&b, " skipped at %s", wall(e.Skipped[0]))
		if len(e.Skipped) > 1 {
			fmt.Fprintf(&b, " (and %d more)", len(e.Skipped)-1)
		}
	}
	if len(e.Doubled) > 0 {
		fmt.Fprintf(&b, " run twice at %s", wall(e.Doubled[0]))
		if len(e.Doubled) > 1 {
			fmt.Fprintf(&b, " (and %d more)", len(e.Doubled)-1)
		}
	}
	b.WriteString("; schedule it outside the change hours or in UTC")
	return b.String()
}

func (e *DSTError) ConfigError() bool { return true }

// CheckDST reports, as a *DSTError, the runs of the schedule in the year
// after from that fall into a daylight-saving gap or overlap of zone.
func CheckDST(expr, zone string, from time.Time) error {
	if _, err := Parse(expr, zone); err != nil {
		return err
	}
	if strings.HasPrefix(strings.TrimSpace(expr), "@every") {
		return nil // an interval, not a wall-clock time
	}
	loc, err := location(zone)
	if err != nil {
		return err
	}
	// The same expression in UTC gives the intended wall-clock times,
	// free of any daylight-saving change.
	wallSched, err := Parse(expr, "")
	if err != nil {
		return err
	}
	de := &DSTError{Expr: expr, Zone: loc.String()}
	end := from.AddDate(1, 0, 0)
	for t := from; t.Before(end); {
		tr, ok := nextTransition(t, end, loc)
		if !ok {
			break
		}
		_, before := tr.Add(-time.Second).In(loc).Zone()
		_, after := tr.In(loc).Zone()
		shift := time.Duration(after-before) * time.Second
		// The wall clock just before the change, as a naive UTC clock.
		w := tr.Add(time.Duration(before) * time.Second).UTC()
		var lo, hi time.Time // the affected wall-clock interval [lo, hi)
		if shift > 0 {
			lo, hi = w, w.Add(shift) // these wall times never happen
		} else {
			lo, hi = w.Add(shift), w // these wall times happen twice
		}
		for run := wallSched.Next(lo.Add(-time.Nanosecond)); !run.IsZero() && run.Before(hi); run = wallSched.Next(run) {
			if shift > 0 {
				de.Skipped = append(de.Skipped, run)
			} else {
				de.Doubled = append(de.Doubled, run)
			}
		}
		t = tr.Add(time.Second)
	}
	if len(de.Skipped) == 0 && len(de.Doubled) == 0 {
		return nil
	}
	return de
}

// nextTransition finds the first instant in (from, end) where loc's UTC
// offset changes.
func nextTransition(from, end time.Time, loc *time.Location) (time.Time, bool) {
	_, off := from.In(loc).Zone()
	// Offsets change at most a few times a year: step a day at a time,
	// then bisect.
	lo := from
	for lo.Before(end) {
		hi := lo.Add(24 * time.Hour)
		if _, o := hi.In(loc).Zone(); o != off {
			for hi.Sub(lo) > time.Second {
				mid := lo.Add(hi.Sub(lo) / 2)
				if _, o := mid.In(loc).Zone(); o == off {
					lo = mid
				} else {
					hi = mid
				}
			}
			return hi.Truncate(time.Second), true
		}
		lo = hi
	}
	return time.Time{}, false
}
