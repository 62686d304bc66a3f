package report

import (
	"html/template"
	"io"
)

// The HTML report is one self-contained page: inline CSS and an inline
// SVG chart, no scripts, fonts or images to fetch, so it can be mailed or
// archived as it is.
var htmlReport = template.Must(template.New("report").Funcs(template.FuncMap{
	"x":  func(f float64) float64 { return chartLeft + f*chartWidth },
	"w":  func(f float64) float64 { return f * chartWidth },
	"y":  func(f float64) float64 { return chartTop + (1-f)*chartHeight },
	"h":  func(f float64) float64 { return f * chartHeight },
	"cx": func() float64 { return chartLeft + chartWidth },
	"by": func() float64 { return chartTop + chartHeight },
}).Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{{.Title}}</title>
<style>
body { font-family: Helvetica, Arial, sans-serif; margin: 2em; color: #222; }
h1 { font-size: 1.5em; margin-bottom: 0.2em; }
h2 { font-size: 1.15em; margin-top: 1.6em; }
table { border-collapse: collapse; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: left; vertical-align: top; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
td.time { white-space: nowrap; }
.status { font-weight: bold; font-size: 1.2em; }
.OK { color: #2e8b57; } .WARNING { color: #b8860b; } .BREACHED { color: #c82828; } .INSUFFICIENT_DATA { color: #777; }
.meta { color: #555; }
</style>
</head>
<body>
<h1>{{.Title}}</h1>
<p class="meta">Cluster: {{.Cluster}}<br>Period: {{.From}} to {{.To}}<br>Target: {{.Target}} %<br>Generated at: {{.Generated}}{{if .NotCounted}}<br><strong>{{.NotCounted}}</strong>{{end}}</p>
<p>Status: <span class="status {{.Status}}">{{.Status}}</span></p>

<h2>Summary</h2>
<table id="summary">
{{range .Figures}}<tr><th>{{.Label}}</th><td class="num" data-key="{{.Key}}">{{.Value}}</td><td>{{.Unit}}</td></tr>
{{end}}</table>

<h2>Incidents</h2>
{{if .Incidents}}<table id="incidents">
<tr><th>Start</th><th>End</th><th>Duration (s)</th><th>Bad (s)</th><th>Unknown (s)</th><th>Budget spent (s)</th><th>Budget spent (%)</th><th>Alerts fired</th><th>Automatic action and outcome</th></tr>
{{range .Incidents}}<tr><td class="time">{{.Start}}</td><td class="time">{{.End}}</td><td class="num">{{.Duration}}</td><td class="num">{{.Bad}}</td><td class="num">{{.Unknown}}</td><td class="num">{{.BudgetSeconds}}</td><td class="num">{{.BudgetPercent}}</td><td>{{.Alerts}}</td><td>{{.Actions}}{{if .Drill}} ({{.Drill}}){{end}}</td></tr>
{{end}}</table>{{else}}<p>No incidents.</p>{{end}}

<h2>Drills</h2>
{{if .Drills}}<table id="drills">
<tr><th>Drill</th><th>Scenario</th><th>Nodes killed</th><th>Start</th><th>Outcome</th><th>Detection (s)</th><th>Writes back (s)</th><th>RTO (s)</th><th>Longest write stall (s)</th><th>Acknowledged writes</th><th>RPO (acknowledged writes lost)</th></tr>
{{range .Drills}}<tr><td>{{.ID}}</td><td>{{.Scenario}}</td><td>{{.Victims}}</td><td class="time">{{.Start}}</td><td>{{.State}}</td><td class="num">{{.Detection}}</td><td class="num" data-key="failover_seconds">{{.Failover}}</td><td class="num" data-key="rto_seconds">{{.RTO}}</td><td class="num">{{.Stall}}</td><td class="num">{{.Acked}}</td><td class="num" data-key="lost_writes">{{.Lost}}</td></tr>
{{end}}</table>{{else}}<p>No drills.</p>{{end}}

<h2>Daily availability</h2>
{{with .Chart}}<svg xmlns="http://www.w3.org/2000/svg" width="800" height="260" viewBox="0 0 800 260" role="img" aria-label="Daily availability">
<rect x="{{x 0}}" y="{{y 1}}" width="{{w 1}}" height="{{h 1}}" fill="#fafafa" stroke="#999"/>
{{range .Bars}}<rect x="{{x .X}}" y="{{y .H}}" width="{{w .W}}" height="{{h .H}}" fill="{{.Color.Hex}}"><title>{{.Title}}</title></rect>
{{end}}<line x1="{{x 0}}" x2="{{cx}}" y1="{{y .TargetY}}" y2="{{y .TargetY}}" stroke="#1e50b4" stroke-dasharray="4 3"/>
<text x="{{x 0}}" y="{{y 1}}" dx="-6" dy="4" text-anchor="end" font-size="11">{{.Top}}</text>
<text x="{{x 0}}" y="{{y 0}}" dx="-6" dy="4" text-anchor="end" font-size="11">{{.Floor}}</text>
<text x="{{cx}}" y="{{y .TargetY}}" dx="4" dy="4" font-size="11" fill="#1e50b4">{{.Target}}</text>
<text x="{{x 0}}" y="{{by}}" dy="16" font-size="11">{{.FirstDay}}</text>
<text x="{{cx}}" y="{{by}}" dy="16" text-anchor="end" font-size="11">{{.LastDay}}</text>
</svg>{{end}}
<p class="meta">Green: at or above target; red: below; grey: no data.</p>

<h2>Last 12 months</h2>
<table id="months">
<tr><th>Month</th><th>Availability (%)</th><th>Downtime (s)</th><th>Budget used (%)</th><th>Status</th></tr>
{{range .Months}}<tr><td>{{.Label}}</td><td class="num">{{.Availability}}</td><td class="num">{{.Downtime}}</td><td class="num">{{.BudgetUsed}}</td><td class="{{.Status}}">{{.Status}}</td></tr>
{{end}}</table>

<p class="meta">Availability = good / (good + bad + unknown) seconds of the write probe; downtime = bad seconds; budget = (1 - target) x valid seconds.
Status: BREACHED below zero budget left; INSUFFICIENT_DATA when under 90 % of the period has data; WARNING under 25 % of the budget left; OK otherwise.</p>
</body>
</html>
`))

// Chart geometry of the SVG, in pixels.
const (
	chartLeft   = 70.0
	chartTop    = 10.0
	chartWidth  = 620.0
	chartHeight = 220.0
)

// HTML writes the report as a self-contained HTML page.
func HTML(w io.Writer, r *Report) error {
	return htmlReport.Execute(w, newView(r))
}
