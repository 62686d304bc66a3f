package slo

import (
	"log/slog"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"
)

// TestRulesRoundTrip writes the groups as a rule file and reads it back
// with Prometheus' own parser and validator.
func TestRulesRoundTrip(t *testing.T) {
	groups, err := Rules([]Spec{{Cluster: "billing"}, {Cluster: "aaa", Target: 99.99, Window: 28 * day}})
	if err != nil {
		t.Fatal(err)
	}
	b, err := Marshal(groups)
	if err != nil {
		t.Fatal(err)
	}
	parsed, errs := rulefmt.Parse(b, false, model.UTF8Validation, parser.NewParser(parser.Options{}), slog.Default())
	if len(errs) > 0 {
		t.Fatalf("rulefmt.Parse: %v\n%s", errs, b)
	}
	var names []string
	for _, g := range parsed.Groups {
		names = append(names, g.Name)
	}
	if want := []string{"nines-slo-billing", "nines-slo-billing-page", "nines-slo-aaa", "nines-slo-aaa-page"}; !slices.Equal(names, want) {
		t.Errorf("groups %v, want %v", names, want)
	}
	if got := parsed.Groups[1].Interval; got != model.Duration(time.Second) {
		t.Errorf("page group interval %v, want 1s", got)
	}

	g := parsed.Groups[0]
	var records, alerts []string
	for _, r := range g.Rules {
		if r.Record != "" {
			records = append(records, r.Record)
		} else {
			alerts = append(alerts, r.Alert+"/"+r.Labels["long_window"]+"/"+r.Labels["short_window"])
		}
	}
	wantRecords := []string{
		"nines_slo:error_ratio:rate5m", "nines_slo:error_ratio:rate30m", "nines_slo:error_ratio:rate1h",
		"nines_slo:error_ratio:rate2h", "nines_slo:error_ratio:rate6h", "nines_slo:error_ratio:rate1d",
		"nines_slo:error_ratio:rate3d",
		"nines_slo_target", "nines_slo_error_budget_seconds",
		"nines_slo_error_budget_remaining_seconds", "nines_slo_error_budget_remaining_ratio",
	}
	if !slices.Equal(records, wantRecords) {
		t.Errorf("records %v, want %v", records, wantRecords)
	}
	wantAlerts := []string{"NinesSLOBurnRate/1h/5m", "NinesSLOBurnRate/6h/30m", "NinesSLOBurnRate/1d/2h", "NinesSLOBurnRate/3d/6h"}
	if !slices.Equal(alerts, wantAlerts) {
		t.Errorf("alerts %v, want %v", alerts, wantAlerts)
	}

	for _, g := range parsed.Groups {
		cluster := strings.TrimSuffix(strings.TrimPrefix(g.Name, "nines-slo-"), "-page")
		for _, r := range g.Rules {
			name := r.Record + r.Alert
			// Every rule reads only its own cluster's SLI counters.
			for _, sel := range regexp.MustCompile(`[a-z_:]+[a-z0-9]*\{[^}]*\}`).FindAllString(r.Expr, -1) {
				if !strings.Contains(sel, `cluster="`+cluster+`"`) {
					t.Errorf("%s of %s selects %s", name, cluster, sel)
				}
			}
			// No data must never read as good: no zero fallback anywhere.
			if strings.Contains(strings.ReplaceAll(r.Expr, " ", ""), "orvector(") {
				t.Errorf("%s of %s falls back to a constant: %s", name, cluster, r.Expr)
			}
			if r.Alert == "" {
				continue
			}
			for _, l := range []string{"severity", "cluster"} {
				if r.Labels[l] == "" {
					t.Errorf("%s of %s has no label %s", name, cluster, l)
				}
			}
			for _, a := range []string{"summary", "description", "runbook"} {
				if len(r.Annotations[a]) < 20 {
					t.Errorf("%s of %s: annotation %s is %q", name, cluster, a, r.Annotations[a])
				}
			}
			if r.Labels["severity"] == "critical" && time.Duration(r.For) > time.Minute {
				t.Errorf("%s of %s pages after for: %v; a page waits a minute at most", name, cluster, r.For)
			}
		}
	}
	if g := parsed.Groups[1].Rules[0]; g.Alert != AlertWriteFails || g.For != 0 || g.Labels["severity"] != "critical" {
		t.Errorf("fast page: %+v", g)
	}
	// The 28-day, 99.99 % spec: factor 0.02 × 28 d / 1 h = 13.44 → 0.001344.
	if e := parsed.Groups[2].Rules[7].Expr; !strings.Contains(e, "> 0.001344\n") {
		t.Errorf("aaa 1h/5m burn alert: %s", e)
	}
}

func TestRulesRejects(t *testing.T) {
	for _, c := range []struct {
		name  string
		specs []Spec
		want  string
	}{
		{"no cluster", []Spec{{Target: 99.9}}, "empty cluster name"},
		{"twice", []Spec{{Cluster: "a"}, {Cluster: "a"}}, `"a" given twice`},
		{"100 %", []Spec{{Cluster: "a", Target: 100}}, "not above 0 and below 100"},
		{"negative", []Spec{{Cluster: "a", Target: -1}}, "not above 0 and below 100"},
		{"window shorter than a burn window", []Spec{{Cluster: "a", Window: day}}, "shorter than the 72h0m0s burn-rate window"},
		{"fractional window", []Spec{{Cluster: "a", Window: 30*day + time.Millisecond}}, "whole number of seconds"},
		{"target too low for the page rows", []Spec{{Cluster: "a", Target: 90}}, "too low for the 1h0m0s/5m0s"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if _, err := Rules(c.specs); err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("Rules: %v, want an error with %q", err, c.want)
			}
		})
	}
}
