package report

import (
	"fmt"
	"io"

	"github.com/go-pdf/fpdf"
)

// PDF writes the report as a PDF with the HTML's sections and figures; the
// chart is drawn with rectangles from the same chart model.
func PDF(w io.Writer, r *Report) error {
	v := newView(r)
	p := fpdf.New("L", "mm", "A4", "")
	p.SetTitle(v.Title, true)
	p.SetCreator("nines", true)
	p.SetCreationDate(r.GeneratedAt)
	p.SetModificationDate(r.GeneratedAt)
	p.SetMargins(12, 12, 12)
	p.SetAutoPageBreak(true, 12)
	tr := p.UnicodeTranslatorFromDescriptor("") // UTF-8 to the core fonts' cp1252
	p.AddPage()
	pageW, _ := p.GetPageSize()
	width := pageW - 24

	p.SetFont("Helvetica", "B", 16)
	p.CellFormat(width, 9, tr(v.Title), "", 1, "L", false, 0, "")
	p.SetFont("Helvetica", "", 10)
	for _, line := range []string{
		"Cluster: " + v.Cluster,
		"Period: " + v.From + " to " + v.To,
		"Target: " + v.Target + " %",
		"Generated at: " + v.Generated,
	} {
		p.CellFormat(width, 5, tr(line), "", 1, "L", false, 0, "")
	}
	if v.NotCounted != "" {
		p.MultiCell(width, 5, tr(v.NotCounted), "", "L", false)
	}
	p.SetFont("Helvetica", "B", 12)
	p.CellFormat(width, 8, "Status: "+v.Status, "", 1, "L", false, 0, "")

	heading := func(s string) {
		p.Ln(3)
		p.SetFont("Helvetica", "B", 12)
		p.CellFormat(width, 7, tr(s), "", 1, "L", false, 0, "")
		p.SetFont("Helvetica", "", 9)
	}
	row := func(widths []float64, cells []string, bold bool) {
		style := ""
		if bold {
			style = "B"
		}
		p.SetFont("Helvetica", style, 9)
		for i, c := range cells {
			p.CellFormat(widths[i], 5.5, tr(c), "1", 0, "L", false, 0, "")
		}
		p.Ln(-1)
	}

	heading("Summary")
	for _, f := range v.Figures {
		row([]float64{110, 40, 12}, []string{f.Label, f.Value, f.Unit}, false)
	}

	heading("Incidents")
	if len(v.Incidents) == 0 {
		p.CellFormat(width, 6, "No incidents.", "", 1, "L", false, 0, "")
	}
	iw := []float64{42, 42, 26, 20, 24, 34, 34}
	var tableW float64
	for _, w := range iw {
		tableW += w
	}
	for i, in := range v.Incidents {
		if i == 0 {
			row(iw, []string{"Start", "End", "Duration (s)", "Bad (s)", "Unknown (s)", "Budget spent (s)", "Budget spent (%)"}, true)
		}
		row(iw, []string{in.Start, in.End, in.Duration, in.Bad, in.Unknown, in.BudgetSeconds, in.BudgetPercent}, false)
		p.SetFont("Helvetica", "", 9)
		p.MultiCell(tableW, 4.5, tr("Alerts fired: "+in.Alerts), "LR", "L", false)
		actions := "Automatic action and outcome: " + in.Actions
		if in.Drill != "" {
			actions += " (" + in.Drill + ")"
		}
		p.MultiCell(tableW, 4.5, tr(actions), "LRB", "L", false)
	}

	heading("Drills")
	if len(v.Drills) == 0 {
		p.CellFormat(width, 6, "No drills.", "", 1, "L", false, 0, "")
	}
	// The nodes killed and the outcome (a failed drill's reason) may be
	// long: they go on a line of their own, as an incident's alerts do.
	dw := []float64{54, 26, 42, 26, 20, 30, 30, 36}
	var drillW float64
	for _, w := range dw {
		drillW += w
	}
	for i, d := range v.Drills {
		if i == 0 {
			row(dw, []string{"Drill", "Scenario", "Start", "Detection (s)", "RTO (s)", "Write stall (s)", "Acked writes", "RPO (lost writes)"}, true)
		}
		row(dw, []string{d.ID, d.Scenario, d.Start, d.Detection, d.RTO, d.Stall, d.Acked, d.Lost}, false)
		p.SetFont("Helvetica", "", 9)
		back := ""
		if d.Failover != "-" {
			back = "; writes acknowledged again after " + d.Failover + " s"
		}
		p.MultiCell(drillW, 4.5, tr("Nodes killed: "+d.Victims+back+"; outcome: "+d.State), "LRB", "L", false)
	}

	heading("Daily availability")
	drawChart(p, v.Chart, width)

	heading("Last 12 months")
	mw := []float64{30, 40, 32, 34, 42}
	row(mw, []string{"Month", "Availability (%)", "Downtime (s)", "Budget used (%)", "Status"}, true)
	for _, m := range v.Months {
		row(mw, []string{m.Label, m.Availability, m.Downtime, m.BudgetUsed, m.Status}, false)
	}
	p.Ln(3)
	p.SetFont("Helvetica", "", 8)
	p.MultiCell(width, 4, "Availability = good / (good + bad + unknown) seconds of the write probe; downtime = bad seconds; budget = (1 - target) x valid seconds. "+
		"Status: BREACHED below zero budget left; INSUFFICIENT_DATA when under 90 % of the period has data; WARNING under 25 % of the budget left; OK otherwise.", "", "L", false)

	if err := p.Output(w); err != nil {
		return fmt.Errorf("write PDF report: %w", err)
	}
	return nil
}

// drawChart draws the chart at the current position: a plot 60 mm high.
func drawChart(p *fpdf.Fpdf, c chart, width float64) {
	const plotH, labelW = 60.0, 20.0
	plotW := width - 2*labelW
	if _, y := p.GetXY(); y+plotH+12 > 198 {
		p.AddPage()
	}
	left, top := p.GetX()+labelW, p.GetY()+2
	p.SetDrawColor(150, 150, 150)
	p.SetFillColor(250, 250, 250)
	p.Rect(left, top, plotW, plotH, "FD")
	for _, b := range c.Bars {
		p.SetFillColor(b.Color.R, b.Color.G, b.Color.B)
		p.Rect(left+b.X*plotW, top+(1-b.H)*plotH, b.W*plotW, b.H*plotH, "F")
	}
	ty := top + (1-c.TargetY)*plotH
	p.SetDrawColor(30, 80, 180)
	p.SetDashPattern([]float64{1.2, 0.8}, 0)
	p.Line(left, ty, left+plotW, ty)
	p.SetDashPattern(nil, 0)
	p.SetDrawColor(0, 0, 0)
	p.SetFont("Helvetica", "", 8)
	p.Text(left-labelW+1, top+2.5, c.Top)
	p.Text(left-labelW+1, top+plotH, c.Floor)
	p.SetTextColor(30, 80, 180)
	p.Text(left+plotW+1, ty+1, c.Target)
	p.SetTextColor(0, 0, 0)
	p.Text(left, top+plotH+4, c.FirstDay)
	p.Text(left+plotW-p.GetStringWidth(c.LastDay), top+plotH+4, c.LastDay)
	p.SetY(top + plotH + 6)
	p.CellFormat(width, 4, "Green: at or above target; red: below; grey: no data.", "", 1, "L", false, 0, "")
}
