package report

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"html"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// scenarioReport builds the scenario's two-day report with its jobs.
func scenarioReport(t *testing.T) *Report {
	t.Helper()
	s := newScenario(t, "arith")
	r, err := Build(context.Background(), testStore, Request{
		Cluster: "arith", From: s.day, To: s.day.AddDate(0, 0, 2), TargetPercent: 99.9, Now: time.Now(),
		Jobs: []Job{{ID: "j1", Runbook: "galera-quorum-recovery", Trigger: "alert", Alert: "GaleraNoPrimary", State: "succeeded",
			Start: s.day.Add(10*time.Hour + 5*time.Second), End: s.day.Add(10*time.Hour + 9*time.Second)}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// PDFText extracts a PDF's text with pdftotext (poppler-utils), as a
// reader of the report would copy it.
func PDFText(t testing.TB, pdf []byte) string {
	t.Helper()
	dir := t.TempDir()
	in := filepath.Join(dir, "report.pdf")
	if err := os.WriteFile(in, pdf, 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("pdftotext", "-layout", in, "-").CombinedOutput()
	if err != nil {
		t.Fatalf("pdftotext: %v: %s", err, out)
	}
	return string(out)
}

// htmlText is the page's text without tags, as a browser shows it.
func htmlText(page string) string {
	return html.UnescapeString(regexp.MustCompile(`<[^>]*>`).ReplaceAllString(page, " "))
}

// TestRenderersAgree renders the scenario in every format and checks that
// each shows the same figures: the headline, every incident, every month.
func TestRenderersAgree(t *testing.T) {
	r := scenarioReport(t)
	out := map[string][]byte{}
	for _, f := range Formats {
		var b bytes.Buffer
		if err := Render(&b, r, f); err != nil {
			t.Fatalf("render %s: %v", f, err)
		}
		out[f] = b.Bytes()
	}
	if !bytes.HasPrefix(out["pdf"], []byte("%PDF-")) {
		t.Fatalf("pdf output starts %q", out["pdf"][:min(20, len(out["pdf"]))])
	}
	texts := map[string]string{"html": htmlText(string(out["html"])), "pdf": PDFText(t, out["pdf"]), "csv": string(out["csv"])}

	v := newView(r)
	want := []string{v.Cluster, v.From, v.To, v.Generated, "99.98873", "17", "19"}
	for _, f := range v.Figures {
		want = append(want, f.Value)
	}
	for _, in := range v.Incidents {
		want = append(want, in.Start, in.End, in.Duration, in.BudgetPercent, "NinesProbeWriteFailed", "galera-quorum-recovery")
	}
	for _, m := range v.Months {
		want = append(want, m.Label, m.Availability, m.BudgetUsed)
	}
	for format, text := range texts {
		flat := strings.Join(strings.Fields(text), " ")
		for _, w := range want {
			if !strings.Contains(flat, w) {
				t.Errorf("%s report lacks %q", format, w)
			}
		}
	}
	for _, format := range []string{"html", "pdf"} {
		flat := strings.Join(strings.Fields(texts[format]), " ")
		for _, section := range []string{"Summary", "Incidents", "Daily availability", "Last 12 months", "Status: OK"} {
			if !strings.Contains(flat, section) {
				t.Errorf("%s report lacks section %q", format, section)
			}
		}
	}

	// The HTML is self-contained: its chart is inline SVG with one bar per
	// day, and it loads nothing.
	page := string(out["html"])
	if n := strings.Count(page, "<title>"+r.Days[0].Start.Format(time.DateOnly)); n != 1 || !strings.Contains(page, "<svg") {
		t.Errorf("chart: %d bars for the first day, svg %v", n, strings.Contains(page, "<svg"))
	}
	for _, external := range []string{"src=", "href=", "@import", "url("} {
		if strings.Contains(page, external) {
			t.Errorf("HTML report refers to an external asset (%s)", external)
		}
	}

	// CSV: summary, day, incident and month rows, with the headline's
	// figures under their keys.
	cr := csv.NewReader(bytes.NewReader(out["csv"]))
	cr.FieldsPerRecord = -1 // sections differ in width
	recs, err := cr.ReadAll()
	if err != nil {
		t.Fatalf("parse CSV: %v", err)
	}
	kinds := map[string]int{}
	summary := map[string]string{}
	for _, rec := range recs {
		kinds[rec[0]]++
		if rec[0] == "summary" {
			summary[rec[1]] = rec[2]
		}
	}
	if kinds["day"] != 2 || kinds["incident"] != 3 || kinds["month"] != 12 || kinds["record"] != 5 || kinds["drill"] != 0 {
		t.Errorf("CSV rows by kind: %v", kinds)
	}
	if summary["availability_percent"] != "99.98873" || summary["downtime_seconds"] != "17" || summary["status"] != "OK" || summary["incidents"] != "3" {
		t.Errorf("CSV summary %v", summary)
	}

	// JSON carries the raw numbers.
	var j struct {
		Downtime  int64 `json:"downtime_seconds"`
		Incidents []struct {
			Start time.Time `json:"start"`
		} `json:"incidents"`
		Months []json.RawMessage `json:"months"`
	}
	if err := json.Unmarshal(out["json"], &j); err != nil || j.Downtime != 17 || len(j.Incidents) != 3 || len(j.Months) != 12 ||
		!j.Incidents[0].Start.Equal(r.Incidents[0].Start) {
		t.Errorf("JSON: %+v, %v", j, err)
	}
}

func TestFormats(t *testing.T) {
	tests := []struct{ got, want string }{
		{FormatAvailability(Summary{HasData: true, Counts: Counts{Good: 999_999, Bad: 1}}), "99.99990"},
		{FormatAvailability(Summary{HasData: true, Counts: Counts{Good: 31_535_999, Bad: 1}}), "99.99999"},
		{FormatAvailability(Summary{HasData: true, Counts: Counts{Good: 1}}), "100.00000"},
		{FormatAvailability(Summary{HasData: true, Counts: Counts{Bad: 3}}), "0.00000"},
		{FormatAvailability(Summary{}), "n/a"},
		{FormatBudget(25.92), "25.92"},
		{FormatBudget(-0.001), "0.00"},
		{FormatPercent(-1234.5678), "-1234.57"},
		{FormatMean(0, 0), "n/a"},
		{FormatTime(time.Date(2026, 11, 26, 3, 4, 5, 600, time.FixedZone("x", 3600))), "2026-11-26T02:04:05Z"},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("got %q, want %q", tt.got, tt.want)
		}
	}
}
