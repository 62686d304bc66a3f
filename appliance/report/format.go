package report

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Every figure is written by one of these functions, whatever the format,
// so the HTML, the PDF and the CSV of a report show the same text.

// FormatAvailability writes a ratio as a percentage to five decimals
// ("99.99884"), or "n/a" without valid seconds.
func FormatAvailability(s Summary) string {
	if !s.HasData {
		return "n/a"
	}
	// Truncated, not rounded, and in integers: 99.999996 % is not five
	// nines, and one bad second in a year must not round up to
	// 100.00000. good × 10^7 fits int64 for centuries of seconds.
	units := s.Good * 10_000_000 / s.Valid() // per cent × 10^5
	return fmt.Sprintf("%d.%05d", units/100_000, units%100_000)
}

// FormatSeconds writes a whole number of seconds.
func FormatSeconds(n int64) string { return strconv.FormatInt(n, 10) }

// FormatBudget writes budget seconds to two decimals.
func FormatBudget(f float64) string { return fixed(f, 2) }

// FormatPercent writes a share in per cent to two decimals.
func FormatPercent(f float64) string { return fixed(f, 2) }

// FormatMean writes a mean duration in seconds to one decimal, or "n/a"
// when there is nothing to average.
func FormatMean(f float64, n int) string {
	if n == 0 {
		return "n/a"
	}
	return fixed(f, 1)
}

// FormatTime writes an instant as RFC 3339 in UTC.
func FormatTime(t time.Time) string { return t.UTC().Format(time.RFC3339) }

func fixed(f float64, prec int) string {
	s := strconv.FormatFloat(f, 'f', prec, 64)
	if strings.Trim(s, "-0.") == "" {
		s = strings.TrimPrefix(s, "-") // no "-0.00"
	}
	return s
}

// figure is one headline figure: a key for CSV and JSON readers, a label
// for people, the value and its unit.
type figure struct {
	Key, Label, Value, Unit string
}

// incidentRow is an incident as every format writes it.
type incidentRow struct {
	Start, End, Duration, Bad, Unknown, BudgetSeconds, BudgetPercent string
	Alerts, Actions                                                  string
	// Drill is "drill <ID>" when the incident happened during a drill.
	Drill string
}

// periodRow is a day or a month as every format writes it.
type periodRow struct {
	Label                                      string
	Good, Bad, Unknown, Maintenance, NoData    string
	Availability, Downtime, BudgetUsed, Status string
}

// view is a report written out: what every renderer shows.
type view struct {
	Title, Cluster, From, To, Target, Generated, Status string
	// Requested is the asked end; NotCounted, when the report ends before
	// it, says why, in the same words in every format.
	Requested, NotCounted string
	Figures               []figure
	Incidents             []incidentRow
	Drills                []drillRow
	Days, Months          []periodRow
	Chart                 chart
}

func newView(r *Report) view {
	v := view{
		Title:     "Uptime report: " + r.Cluster,
		Cluster:   r.Cluster,
		From:      FormatTime(r.Start),
		To:        FormatTime(r.End),
		Target:    strconv.FormatFloat(r.TargetPercent, 'f', -1, 64),
		Generated: FormatTime(r.GeneratedAt),
		Status:    r.Status,
		Requested: FormatTime(r.RequestedEnd),
	}
	if r.Partial() {
		v.NotCounted = "Counted up to " + v.To + "; the seconds from then to " + v.Requested + " were not counted yet when the report was generated."
	}
	n := len(r.Incidents)
	v.Figures = []figure{
		{"availability_percent", "Availability", FormatAvailability(r.Summary), "%"},
		{"downtime_seconds", "Downtime (bad seconds)", FormatSeconds(r.DowntimeSeconds), "s"},
		{"unknown_seconds", "Unknown seconds (no probe result, count against the SLO)", FormatSeconds(r.Unknown), "s"},
		{"maintenance_seconds", "Maintenance seconds (not counted)", FormatSeconds(r.Maintenance), "s"},
		{"no_data_seconds", "Seconds without data (appliance not running)", FormatSeconds(r.NoData), "s"},
		{"valid_seconds", "Valid seconds (good + bad + unknown)", FormatSeconds(r.Valid()), "s"},
		{"budget_seconds", "Error budget", FormatBudget(r.BudgetSeconds), "s"},
		{"budget_spent_seconds", "Budget spent (bad + unknown)", FormatSeconds(r.BudgetSpentSeconds), "s"},
		{"budget_remaining_seconds", "Budget remaining", FormatBudget(r.BudgetRemainingSeconds), "s"},
		{"budget_remaining_percent", "Budget remaining", FormatPercent(r.BudgetRemainingPercent), "%"},
		{"status", "Status", r.Status, ""},
		{"incidents", "Incidents", strconv.Itoa(n), ""},
		{"mttr_seconds", "MTTR (mean incident duration)", FormatMean(r.MTTRSeconds, n), "s"},
		{"mtbf_seconds", "MTBF (good seconds per incident)", FormatMean(r.MTBFSeconds, n), "s"},
	}
	for _, in := range r.Incidents {
		row := incidentRow{
			Start: FormatTime(in.Start), End: FormatTime(in.End), Duration: FormatSeconds(in.DurationSeconds),
			Bad: FormatSeconds(in.BadSeconds), Unknown: FormatSeconds(in.UnknownSeconds),
			BudgetSeconds: FormatSeconds(in.BudgetSpentSeconds), BudgetPercent: FormatPercent(in.BudgetSpentPercent),
			Alerts: "none", Actions: "none",
		}
		var as []string
		for _, a := range in.Alerts {
			s := a.Name
			if a.Severity != "" {
				s += " (" + a.Severity + ")"
			}
			as = append(as, s+" firing at "+FormatTime(a.Firing))
		}
		if len(as) > 0 {
			row.Alerts = strings.Join(as, "; ")
		}
		var js []string
		for _, j := range in.Actions {
			js = append(js, jobText(j))
		}
		if len(js) > 0 {
			row.Actions = strings.Join(js, "; ")
		}
		if in.Drill != "" {
			row.Drill = "drill " + in.Drill
		}
		v.Incidents = append(v.Incidents, row)
	}
	for _, d := range r.Drills {
		v.Drills = append(v.Drills, newDrillRow(d))
	}
	for _, d := range r.Days {
		v.Days = append(v.Days, newPeriodRow(d.Start.Format(time.DateOnly), d))
	}
	for _, m := range r.Months {
		v.Months = append(v.Months, newPeriodRow(m.Start.Format("2006-01"), m))
	}
	v.Chart = newChart(r)
	return v
}

func newPeriodRow(label string, s Summary) periodRow {
	return periodRow{
		Label: label,
		Good:  FormatSeconds(s.Good), Bad: FormatSeconds(s.Bad), Unknown: FormatSeconds(s.Unknown),
		Maintenance: FormatSeconds(s.Maintenance), NoData: FormatSeconds(s.NoData),
		Availability: FormatAvailability(s), Downtime: FormatSeconds(s.DowntimeSeconds),
		BudgetUsed: FormatPercent(s.BudgetUsedPercent()), Status: s.Status,
	}
}

// jobText is an action and its outcome in words.
func jobText(j Job) string {
	s := j.Runbook
	if j.Target != "" {
		s += " on " + j.Target
	}
	trigger := j.Trigger
	if j.Alert != "" {
		trigger += " " + j.Alert
	}
	if j.DryRun {
		trigger += ", dry-run"
	}
	s += fmt.Sprintf(" (%s, started %s): %s", trigger, FormatTime(j.Start), j.State)
	if j.Reason != "" {
		s += ", " + j.Reason
	}
	return s
}
