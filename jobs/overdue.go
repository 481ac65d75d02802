package jobs

import (
	"context"
	"time"

	"resub/jobs/config"
	"resub/processor/ledger"
)

// OverdueItem is something a partner owes us past its deadline.
type OverdueItem struct {
	Partner  string
	What     string // imsi-result, ota-report, handover-ack, key-response, job
	Count    int
	Oldest   time.Time
	Deadline time.Duration
}

// Overdue lists what partners owe past their deadlines: PoRs the SMSC has
// not reported, acknowledgements of handed-over cards, results of IMSI
// lists, key responses, and jobs that have not succeeded in time.
func Overdue(ctx context.Context, cfg *config.Config, db *ledger.DB, now time.Time) ([]OverdueItem, error) {
	var out []OverdueItem
	add := func(partner, what string, deadline time.Duration, query string, args ...any) error {
		var n int
		var oldest string
		err := db.QueryRow(ctx, query, args...).Scan(&n, &oldest)
		if err != nil || n == 0 {
			return err
		}
		t, _ := ledger.ParseTime(oldest)
		out = append(out, OverdueItem{Partner: partner, What: what, Count: n, Oldest: t, Deadline: deadline})
		return nil
	}
	// Counted, not listed: a fleet can have a million messages out.
	n, oldest, err := db.OverdueMessageCount(ctx, now)
	if err != nil {
		return nil, err
	}
	if n > 0 {
		out = append(out, OverdueItem{Partner: "smsc", What: "ota-report", Count: n, Oldest: oldest})
	}
	for name, p := range cfg.Partners {
		for what, d := range p.Deadlines {
			cut := now.Add(-d.D()).UTC().Format(time.RFC3339Nano)
			var state string
			switch what {
			case "handover-ack":
				state = ledger.CardHandedOver
			case "imsi-result":
				state = "requested"
			case "key-response":
				state = "incoming"
			default:
				continue
			}
			err := add(name, what, d.D(), `SELECT COUNT(*), COALESCE(MIN(updated_at), '') FROM cards WHERE state = ? AND updated_at < ? AND (recipient = ? OR source = ?)`,
				state, cut, p.Code, p.Code)
			if err != nil {
				return nil, err
			}
		}
	}
	for _, j := range cfg.Jobs {
		if j.Deadline == 0 {
			continue
		}
		_, ok, err := db.LastRun(ctx, j.Name)
		if err != nil {
			return nil, err
		}
		if ok == nil || now.Sub(ok.Started) > j.Deadline.D() {
			it := OverdueItem{Partner: j.Partner, What: "job " + j.Name, Count: 1, Deadline: j.Deadline.D()}
			if ok != nil {
				it.Oldest = ok.Started
			}
			out = append(out, it)
		}
	}
	return out, nil
}
