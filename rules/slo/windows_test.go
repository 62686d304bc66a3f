package slo

import (
	"math"
	"strings"
	"testing"
	"time"
)

const day = 24 * time.Hour

// TestWindowFactors checks the factors computed from the table against
// facts/slo.md and the SRE Workbook: 14.4, 6, 3, 1 for a 30-day SLO, and
// the thresholds they give at five nines.
func TestWindowFactors(t *testing.T) {
	ws, err := Windows()
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		sev         Severity
		long, short time.Duration
		factor      float64
		threshold   string // factor × (1 − 0.99999), what a five-nines cluster's ratios are compared with
	}{
		{SeverityPage, time.Hour, 5 * time.Minute, 14.4, "0.000144"},
		{SeverityPage, 6 * time.Hour, 30 * time.Minute, 6, "6e-05"},
		{SeverityTicket, day, 2 * time.Hour, 3, "3e-05"},
		{SeverityTicket, 3 * day, 6 * time.Hour, 1, "1e-05"},
	}
	if len(ws) != len(want) {
		t.Fatalf("table has %d rows, want %d", len(ws), len(want))
	}
	five := Spec{Cluster: "c", Target: 99.999, Window: 30 * day}
	for i, w := range want {
		got := ws[i]
		if got.Severity != w.sev || got.Long != w.long || got.Short != w.short {
			t.Errorf("row %d: %+v, want %s %v/%v", i+1, got, w.sev, w.long, w.short)
		}
		if f := got.Factor(30 * day); math.Abs(f-w.factor) > 1e-9 {
			t.Errorf("row %d: factor %v, want %v", i+1, f, w.factor)
		}
		if th := num(got.Factor(five.Window) * five.errorBudgetRatio()); th != w.threshold {
			t.Errorf("row %d: threshold %s, want %s", i+1, th, w.threshold)
		}
	}
	// The factors follow the SLO window: 28 days make the 1 h row 13.44.
	if f := ws[0].Factor(28 * day); math.Abs(f-13.44) > 1e-9 {
		t.Errorf("1h row over 28 days: factor %v, want 13.44", f)
	}
	if !strings.Contains(string(windowsYAML), "Site Reliability Workbook") {
		t.Error("the windows table does not cite the SRE Workbook")
	}
}

func TestBudget(t *testing.T) {
	for _, c := range []struct {
		target float64
		window time.Duration
		ratio  string
		budget string
	}{
		{99.999, 30 * day, "1e-05", "25.92"},
		{99.99, 30 * day, "0.0001", "259.2"},
		{99.9, 30 * day, "0.001", "2592"},
		{99.999, 365 * day, "1e-05", "315.36"},
	} {
		s := Spec{Cluster: "c", Target: c.target, Window: c.window}
		if got := num(s.errorBudgetRatio()); got != c.ratio {
			t.Errorf("%v%%: error budget ratio %s, want %s", c.target, got, c.ratio)
		}
		if got := num(s.budgetSeconds()); got != c.budget {
			t.Errorf("%v%% over %v: budget %s s, want %s", c.target, c.window, got, c.budget)
		}
	}
}

func TestParseWindowsRejects(t *testing.T) {
	for _, c := range []struct{ table, want string }{
		{"windows: []", "no rows"},
		{"windows:\n  - {severity: urgent, long: 1h, short: 5m, budget_share: 0.02, for: 0s}", "row 1, severity"},
		{"windows:\n  - {severity: page, long: 1h, short: 2h, budget_share: 0.02, for: 0s}", "row 1, short"},
		{"windows:\n  - {severity: page, long: 1x, short: 5m, budget_share: 0.02, for: 0s}", "row 1, long"},
		{"windows:\n  - {severity: page, long: 1h, short: 5m, budget_share: 2, for: 0s}", "row 1, budget_share"},
		{"windows:\n  - {severity: page, long: 1h, short: 5m, budget_share: 0.02, for: 0s, factor: 14}", "field factor not found"},
	} {
		if _, err := parseWindows([]byte(c.table)); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: %v, want an error with %q", c.table, err, c.want)
		}
	}
}
