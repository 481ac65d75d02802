package status

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"resub/processor/ledger"
)

// Series is the number of cards in each state over time, at the end of
// each hour in which a card changed state, from the ledger's card history.
type Series struct {
	States []string    `json:"states"`
	Hours  []time.Time `json:"hours"`
	// Counts[i][j] is the number of cards in States[j] at the end of
	// Hours[i].
	Counts [][]int `json:"counts"`
}

// chartCache keeps the hourly sums of the card history read so far, so
// that each request reads only the events that are new.
type chartCache struct {
	mu     sync.Mutex // held while the history is read
	lastID int64
	deltas map[time.Time]map[string]int

	latestMu sync.Mutex
	latest   *Series // the last series made, for pages that cannot wait
}

// current is the series the overview shows: the latest one made when the
// history is being read right now (the first read of a big ledger takes
// a while), nil when there is none yet.
func (c *chartCache) current(ctx context.Context, db *ledger.DB) (*Series, error) {
	if !c.mu.TryLock() {
		c.latestMu.Lock()
		defer c.latestMu.Unlock()
		return c.latest, nil
	}
	defer c.mu.Unlock()
	return c.readLocked(ctx, db)
}

// series reads what is new in the history and returns the whole series.
func (c *chartCache) series(ctx context.Context, db *ledger.DB) (*Series, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.readLocked(ctx, db)
}

func (c *chartCache) readLocked(ctx context.Context, db *ledger.DB) (*Series, error) {
	changes, last, err := db.StateChanges(ctx, c.lastID)
	if err != nil {
		return nil, err
	}
	if c.deltas == nil {
		c.deltas = map[time.Time]map[string]int{}
	}
	for _, ch := range changes {
		d := c.deltas[ch.Hour]
		if d == nil {
			d = map[string]int{}
			c.deltas[ch.Hour] = d
		}
		d[ch.To] += ch.N
		if ch.From != "" {
			d[ch.From] -= ch.N
		}
	}
	c.lastID = last

	hours := make([]time.Time, 0, len(c.deltas))
	seen := map[string]bool{}
	for h, d := range c.deltas {
		hours = append(hours, h)
		for st := range d {
			seen[st] = true
		}
	}
	slices.SortFunc(hours, func(a, b time.Time) int { return a.Compare(b) })
	s := &Series{Hours: hours}
	for st := range seen {
		s.States = append(s.States, st)
	}
	orderStates(s.States)
	cur := make([]int, len(s.States))
	for _, h := range hours {
		for j, st := range s.States {
			cur[j] += c.deltas[h][st]
		}
		s.Counts = append(s.Counts, slices.Clone(cur))
	}
	// A state no card is in at any point is left out.
	keep := make([]bool, len(s.States))
	for _, row := range s.Counts {
		for j, n := range row {
			if n != 0 {
				keep[j] = true
			}
		}
	}
	for j := len(s.States) - 1; j >= 0; j-- {
		if keep[j] {
			continue
		}
		s.States = slices.Delete(s.States, j, j+1)
		for i := range s.Counts {
			s.Counts[i] = slices.Delete(s.Counts[i], j, j+1)
		}
	}
	c.latestMu.Lock()
	c.latest = s
	c.latestMu.Unlock()
	return s, nil
}

// stateColours tell the states apart in the chart: greys for cards at
// rest, warm colours for those that need attention, greens for the end.
var stateColours = map[string]string{
	"active":      "#9aa5b1",
	"requested":   "#c6d4ea",
	"moving":      "#f2c14e",
	"failed":      "#e07a5f",
	"confirmed":   "#8fc9a8",
	"handed-over": "#5fa8d3",
	"incoming":    "#a7c5eb",
	"provisioned": "#3d85c6",
	"resetting":   "#8e7cc3",
	"released":    "#2e7d32",
	"erased":      "#1b5e20",
	"unknown":     "#d1495b",
	"manual":      "#a4133c",
	"rejected":    "#6d4c41",
	"cancelled":   "#616161",
}

func colour(state string) string {
	if c, ok := stateColours[state]; ok {
		return c
	}
	return "#bdbdbd"
}

// chartView is the SVG chart, laid out: one area per state stacked in
// cut-over order, axes and a legend with the latest counts.
type chartView struct {
	Width, Height int
	Empty         bool
	PlotX, PlotY  int
	PlotW, PlotH  int
	Areas         []chartArea
	XTicks        []chartTick
	YTicks        []chartTick
	Legend        []chartLegend
	Title         string
	Note          string // why the chart is empty
}

type chartArea struct {
	State, Colour, Points string
}

type chartTick struct {
	Pos   int
	Label string
}

type chartLegend struct {
	X, Y          int
	State, Colour string
	N             int
}

// renderChart lays the series out as a stacked step chart of width×height
// pixels.
func renderChart(s *Series, width, height int) chartView {
	v := chartView{Width: width, Height: height, PlotX: 56, PlotY: 12, Title: "Cards by state over time"}
	if s == nil {
		v.Empty, v.Note = true, "The cards' history is being read; the chart appears on the next refresh."
		return v
	}
	legendRows := (len(s.States) + 4) / 5
	v.PlotW = width - v.PlotX - 16
	v.PlotH = height - v.PlotY - 40 - 20*legendRows
	if len(s.Hours) == 0 || v.PlotH < 40 {
		v.Empty, v.Note = true, "No card has changed state yet."
		return v
	}
	t0 := s.Hours[0]
	t1 := s.Hours[len(s.Hours)-1].Add(time.Hour)
	span := t1.Sub(t0).Seconds()
	x := func(t time.Time) float64 { return float64(v.PlotX) + t.Sub(t0).Seconds()/span*float64(v.PlotW) }
	maxTotal := 1
	for _, row := range s.Counts {
		sum := 0
		for _, n := range row {
			sum += max(n, 0)
		}
		maxTotal = max(maxTotal, sum)
	}
	top := niceCeil(maxTotal)
	y := func(n int) float64 { return float64(v.PlotY+v.PlotH) - float64(n)/float64(top)*float64(v.PlotH) }

	// Each point holds from its hour's start to the next point's hour.
	edge := func(i int) (float64, float64) {
		to := x(t1)
		if i+1 < len(s.Hours) {
			to = x(s.Hours[i+1])
		}
		return x(s.Hours[i]), to
	}
	lower := make([]int, len(s.Hours))
	for j, st := range s.States {
		upper := make([]int, len(s.Hours))
		for i := range s.Hours {
			upper[i] = lower[i] + max(s.Counts[i][j], 0)
		}
		var pts []string
		add := func(px, py float64) { pts = append(pts, fmt.Sprintf("%.1f,%.1f", px, py)) }
		for i := range s.Hours {
			from, to := edge(i)
			add(from, y(upper[i]))
			add(to, y(upper[i]))
		}
		for i := len(s.Hours) - 1; i >= 0; i-- {
			from, to := edge(i)
			add(to, y(lower[i]))
			add(from, y(lower[i]))
		}
		v.Areas = append(v.Areas, chartArea{State: st, Colour: colour(st), Points: strings.Join(pts, " ")})
		lower = upper
	}

	for _, n := range yTicks(top) {
		v.YTicks = append(v.YTicks, chartTick{Pos: int(math.Round(y(n))), Label: strconv.Itoa(n)})
	}
	layout := "Jan 2 15:04"
	for k := 0; k <= 4; k++ {
		t := t0.Add(time.Duration(float64(t1.Sub(t0)) * float64(k) / 4))
		v.XTicks = append(v.XTicks, chartTick{Pos: int(math.Round(x(t))), Label: t.UTC().Format(layout)})
	}
	last := s.Counts[len(s.Counts)-1]
	for j, st := range s.States {
		v.Legend = append(v.Legend, chartLegend{
			X: v.PlotX + (j%5)*(v.PlotW/5), Y: v.PlotY + v.PlotH + 40 + (j/5)*20,
			State: st, Colour: colour(st), N: last[j],
		})
	}
	return v
}

// niceCeil rounds n up to 1, 2 or 5 times a power of ten.
func niceCeil(n int) int {
	if n <= 1 {
		return 1
	}
	p := 1
	for p*10 < n {
		p *= 10
	}
	for _, m := range []int{1, 2, 5, 10} {
		if m*p >= n {
			return m * p
		}
	}
	return 10 * p
}

// yTicks are four or five round values from 0 to top.
func yTicks(top int) []int {
	step := max(niceCeil(top/4), 1)
	var out []int
	for n := 0; n <= top; n += step {
		out = append(out, n)
	}
	return out
}

func (s *Server) chartSVG(w http.ResponseWriter, r *http.Request) {
	ch, err := s.chart.series(r.Context(), s.o.Ledger)
	if err != nil {
		code, msg := s.errorStatus(r, err)
		http.Error(w, msg, code)
		return
	}
	w.Header().Set("Content-Type", "image/svg+xml")
	v := renderChart(ch, 960, 300)
	if err := s.tmpl["chart"].ExecuteTemplate(w, "chartdoc", v); err != nil {
		s.o.Log.Error("status page: chart", "error", err)
	}
}

func (s *Server) chartAPI(r *http.Request) (any, error) {
	return s.chart.series(r.Context(), s.o.Ledger)
}
