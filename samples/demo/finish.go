package demo

import (
	"context"
	"fmt"
	"sort"
	"strings"
)

// expected card states per party at the end of the story.
func expected(o Options) map[string]map[string]int {
	n3a, n3b := o.Cards3a, o.Cards3b
	moved := n3a - 4
	return map[string]map[string]int{
		// 3a: #0 refused (IMSI prefix), #1 unknown, #2 not authorised, #9
		// manual (EF_IMSI written, script incomplete); the rest (#8 after
		// a forged PoR too) released. 3b: all released.
		"MNOA": {"active": 2, "unknown": 1, "manual": 1, "released": moved + n3b},
		// 3a: received and handed on to C; #0 and #2 refused at A; #1 and
		// #9 still requested (outcome unknown). 3b: handed on to C, then
		// refused by C (list exhausted).
		"MNOB": {"released": moved, "rejected": 2 + n3b, "requested": 2},
		"MNOC": {"active": moved + n3b},
	}
}

func (w *world) finish(ctx context.Context) (*Result, error) {
	res := &Result{Dir: w.dir, States: map[string]map[string]int{}, Files: map[string]map[string]int{}, Want: expected(w.o), OK: true}
	w.say("\n== result ==")
	w.say("%-6s %-36s %-40s %s", "PARTY", "FILES (in/out by status)", "CARDS BY STATE", "LEDGER AND CONFIGURATION")
	for _, code := range []string{"MNOA", "MNOB", "MNOC", "MFR"} {
		p := w.parties[code]
		db := p.rt.Ledger
		states, err := db.CountByState(ctx)
		if err != nil {
			return nil, err
		}
		res.States[code] = states
		files := map[string]int{}
		rows, err := db.Query(ctx, `SELECT direction, status, COUNT(*) FROM files GROUP BY direction, status`)
		if err != nil {
			return nil, err
		}
		for rows.Next() {
			var dir, st string
			var n int
			if err := rows.Scan(&dir, &st, &n); err != nil {
				rows.Close()
				return nil, err
			}
			files[dir+" "+st] = n
		}
		rows.Close()
		res.Files[code] = files
		if code == "MFR" {
			var held int
			var holders []string
			r2, err := db.Query(ctx, `SELECT holder, holder_index, COUNT(*) FROM mf_cards GROUP BY holder, holder_index`)
			if err != nil {
				return nil, err
			}
			for r2.Next() {
				var h string
				var idx, n int
				if err := r2.Scan(&h, &idx, &n); err != nil {
					r2.Close()
					return nil, err
				}
				held += n
				holders = append(holders, fmt.Sprintf("%s@index%d=%d", h, idx, n))
			}
			r2.Close()
			states = map[string]int{}
			for _, h := range holders {
				states[h] = 0
			}
			w.say("%-6s %-36s %-40s %s", code, fmtCounts(files), "holders: "+strings.Join(holders, " "), p.cfgPath)
			if len(holders) != 1 || !strings.HasPrefix(holders[0], "MNOC@index3=") {
				res.OK = false
				res.Problems = append(res.Problems, fmt.Sprintf("MFR: holders %v, want MNOC at index 3", holders))
			}
			continue
		}
		w.say("%-6s %-36s %-40s %s", code, fmtCounts(files), fmtCounts(states), p.cfgPath)
		want := res.Want[code]
		for st, n := range want {
			if states[st] != n {
				res.OK = false
				res.Problems = append(res.Problems, fmt.Sprintf("%s: %d card(s) %s, want %d", code, states[st], st, n))
			}
		}
		for st, n := range states {
			if _, ok := want[st]; !ok && n > 0 {
				res.OK = false
				res.Problems = append(res.Problems, fmt.Sprintf("%s: %d card(s) %s, want none", code, n, st))
			}
		}
	}
	w.say("\nfiles exchanged: %s (SFTP), each party's drops/ and data/ under %s", w.exchangeDir(), w.dir)
	w.say("look closer:  go run ./cmd/resub cards --config %s", w.parties["MNOA"].cfgPath)
	w.say("              go run ./cmd/resub batches --config %s", w.parties["MNOA"].cfgPath)
	if res.OK {
		w.say("\nevery card ended where it should")
	} else {
		w.say("\nNOT every card ended where it should:")
		for _, p := range res.Problems {
			w.say("  %s", p)
		}
	}
	return res, nil
}

func fmtCounts(m map[string]int) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s=%d", k, m[k]))
	}
	return strings.Join(parts, " ")
}
