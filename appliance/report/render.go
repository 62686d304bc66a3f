package report

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"slices"
)

// Formats a report is rendered in.
var Formats = []string{"html", "pdf", "csv", "json"}

// ContentType is the media type of a format.
func ContentType(format string) string {
	switch format {
	case "html":
		return "text/html; charset=utf-8"
	case "pdf":
		return "application/pdf"
	case "csv":
		return "text/csv; charset=utf-8"
	}
	return "application/json"
}

// KnownFormat says whether format is one of Formats.
func KnownFormat(format string) bool { return slices.Contains(Formats, format) }

// Render writes r in format.
func Render(w io.Writer, r *Report, format string) error {
	switch format {
	case "html":
		return HTML(w, r)
	case "pdf":
		return PDF(w, r)
	case "csv":
		return CSV(w, r)
	case "json":
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(r)
	}
	return fmt.Errorf("report format %q: want one of %v", format, Formats)
}

// CSV writes the report as CSV sections, each led by its header row whose
// first field names the record type: the summary (field, value, unit),
// then one row per day, per incident, per drill and per month. Figures
// are written as in the HTML and the PDF; an incident during a drill
// names it in its drill field ("drill <ID>"), as the HTML does.
func CSV(w io.Writer, r *Report) error {
	v := newView(r)
	cw := csv.NewWriter(w)
	write := func(rec ...string) { _ = cw.Write(rec) }

	write("record", "field", "value", "unit")
	for _, kv := range [][2]string{{"cluster", v.Cluster}, {"from", v.From}, {"to", v.To}, {"requested_to", v.Requested}, {"not_counted", v.NotCounted}, {"target_percent", v.Target}, {"generated_at", v.Generated}} {
		write("summary", kv[0], kv[1], "")
	}
	for _, f := range v.Figures {
		write("summary", f.Key, f.Value, f.Unit)
	}
	periodHeader := []string{"good_seconds", "bad_seconds", "unknown_seconds", "maintenance_seconds", "no_data_seconds", "availability_percent", "downtime_seconds", "budget_used_percent", "status"}
	period := func(kind string, p periodRow) {
		write(kind, p.Label, p.Good, p.Bad, p.Unknown, p.Maintenance, p.NoData, p.Availability, p.Downtime, p.BudgetUsed, p.Status)
	}
	write(append([]string{"record", "day"}, periodHeader...)...)
	for _, d := range v.Days {
		period("day", d)
	}
	write("record", "start", "end", "duration_seconds", "bad_seconds", "unknown_seconds", "budget_spent_seconds", "budget_spent_percent", "alerts", "actions", "drill")
	for _, in := range v.Incidents {
		write("incident", in.Start, in.End, in.Duration, in.Bad, in.Unknown, in.BudgetSeconds, in.BudgetPercent, in.Alerts, in.Actions, in.Drill)
	}
	write("record", "id", "scenario", "victims", "start", "outcome", "detection_seconds", "rto_seconds", "stall_seconds", "acked_writes", "lost_writes", "failover_seconds")
	for _, d := range v.Drills {
		write("drill", d.ID, d.Scenario, d.Victims, d.Start, d.State, d.Detection, d.RTO, d.Stall, d.Acked, d.Lost, d.Failover)
	}
	write(append([]string{"record", "month"}, periodHeader...)...)
	for _, m := range v.Months {
		period("month", m)
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return fmt.Errorf("write CSV report: %w", err)
	}
	return nil
}
