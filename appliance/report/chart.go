package report

import (
	"strconv"
	"time"
)

// chart is the daily availability chart in the plot's own coordinates
// (fractions of its width and height, y upwards), so the HTML's SVG and
// the PDF's rectangles draw the same bars from the same numbers.
type chart struct {
	// Floor is the availability (per cent) at the bottom of the plot; the
	// top is 100 %.
	Floor, Top        string
	TargetY           float64 // height of the target line
	Target            string
	FirstDay, LastDay string
	Bars              []bar
}

type bar struct {
	X, W, H float64
	Color   rgb
	Title   string // day and availability, for tooltips
}

type rgb struct{ R, G, B int }

// Hex is the colour as CSS writes it.
func (c rgb) Hex() string {
	const digits = "0123456789abcdef"
	b := []byte{'#', 0, 0, 0, 0, 0, 0}
	for i, v := range []int{c.R, c.G, c.B} {
		b[1+2*i], b[2+2*i] = digits[v>>4], digits[v&15]
	}
	return string(b)
}

var (
	colorMet    = rgb{46, 139, 87}   // at or above target
	colorMissed = rgb{200, 40, 40}   // below target
	colorNoData = rgb{200, 200, 200} // no valid seconds: a full grey bar
)

// floors are the candidate bottoms of the plot, highest first: the
// highest one below every day's availability and the target is used, so a
// five-nines month is not a row of full bars with its failures invisible.
var floors = []float64{99.99, 99.9, 99, 90, 0}

func newChart(r *Report) chart {
	lowest := r.TargetPercent
	for _, d := range r.Days {
		if d.HasData {
			lowest = min(lowest, d.Availability*100)
		}
	}
	floor := 0.0
	for _, f := range floors {
		if f < lowest {
			floor = f
			break
		}
	}
	c := chart{
		Floor:   strconv.FormatFloat(floor, 'f', -1, 64) + " %",
		Top:     "100 %",
		TargetY: (r.TargetPercent - floor) / (100 - floor),
		Target:  "target " + strconv.FormatFloat(r.TargetPercent, 'f', -1, 64) + " %",
	}
	n := len(r.Days)
	if n == 0 {
		return c
	}
	c.FirstDay, c.LastDay = r.Days[0].Start.Format(time.DateOnly), r.Days[n-1].Start.Format(time.DateOnly)
	w := 1 / float64(n)
	for i, d := range r.Days {
		b := bar{X: float64(i) * w, W: w * 0.8, H: 1, Color: colorNoData, Title: d.Start.Format(time.DateOnly) + ": no data"}
		if d.HasData {
			// A day at the floor still shows a sliver of its colour.
			b.H = max(0.01, (d.Availability*100-floor)/(100-floor))
			b.Color = colorMet
			if d.Availability*100 < r.TargetPercent {
				b.Color = colorMissed
			}
			b.Title = d.Start.Format(time.DateOnly) + ": " + FormatAvailability(d) + " %"
		}
		c.Bars = append(c.Bars, b)
	}
	return c
}
