package slo

import (
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"
)

// TestRulesRoundTrip writes the groups as a rule file and reads it back
// with Prometheus' own parser and validator.
func TestRulesRoundTrip(t *testing.T) {
	groups, err := Rules([]Spec{{Cluster: "billing"}, {Cluster: "aaa", Target: 99.99, Window: 28 * day}, {Cluster: "iptv", Target: 99.99}})
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
	// One pair of groups per SLO window, shortest window first; the
	// clusters of a window share them, in spec order.
	var names []string
	for _, g := range parsed.Groups {
		names = append(names, fmt.Sprintf("%s/%v", g.Name, g.Interval))
	}
	if want := []string{"nines-slo-4w/10s", "nines-slo-4w-page/1s", "nines-slo-30d/10s", "nines-slo-30d-page/1s"}; !slices.Equal(names, want) {
		t.Errorf("groups %v, want %v", names, want)
	}
	clusters := map[string]string{"4w": "aaa", "30d": "billing|iptv"}

	g := parsed.Groups[2]
	var records, alerts []string
	for _, r := range g.Rules {
		if r.Record != "" {
			records = append(records, r.Record)
		} else {
			alerts = append(alerts, r.Alert+"/"+r.Labels["long_window"]+"/"+r.Labels["short_window"])
		}
	}
	wantRecords := []string{
		"nines_slo_target", "nines_slo_error_budget_seconds",
		"nines_slo:error_ratio:rate5m", "nines_slo:error_ratio:rate30m", "nines_slo:error_ratio:rate1h",
		"nines_slo:error_ratio:rate2h", "nines_slo:error_ratio:rate6h", "nines_slo:error_ratio:rate1d",
		"nines_slo:error_ratio:rate3d",
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
		window := strings.TrimSuffix(strings.TrimPrefix(g.Name, "nines-slo-"), "-page")
		for _, r := range g.Rules {
			name := g.Name + "/" + r.Record + r.Alert
			if r.Labels[LabelWindow] != window {
				t.Errorf("%s: label %s %q, want %q", name, LabelWindow, r.Labels[LabelWindow], window)
			}
			expr, err := parser.NewParser(parser.Options{}).ParseExpr(r.Expr)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			// Every rule reads only its own group's series: the SLI
			// counters of the group's clusters, or what the group recorded.
			for _, sel := range selectors(expr) {
				m := matchers(sel)
				switch {
				case sel.Name == secondsMetric:
					if m["cluster=~"] != clusters[window] {
						t.Errorf("%s selects %s, want the clusters %s", name, sel, clusters[window])
					}
				case strings.HasPrefix(sel.Name, "nines_slo"):
					if m[LabelWindow+"="] != window {
						t.Errorf("%s selects %s, want %s=%q", name, sel, LabelWindow, window)
					}
				default:
					t.Errorf("%s selects %s", name, sel)
				}
			}
			// No data must never read as good: no zero fallback anywhere.
			// Constants appear only as the recorded target and budget.
			if r.Record == RecordTarget || r.Record == RecordBudget {
				checkConstants(t, name, expr)
			} else if strings.Contains(r.Expr, "vector(") || strings.Contains(r.Expr, " or") || strings.Contains(r.Expr, "\nor") {
				t.Errorf("%s falls back to a constant: %s", name, r.Expr)
			}
			if r.Alert == "" {
				continue
			}
			if r.Labels["severity"] == "" {
				t.Errorf("%s has no label severity", name)
			}
			for _, a := range []string{"summary", "description", "runbook"} {
				if !strings.Contains(r.Annotations[a], "{{ $labels.cluster }}") {
					t.Errorf("%s: annotation %s does not name the cluster: %q", name, a, r.Annotations[a])
				}
			}
			if r.Labels["severity"] == "critical" && time.Duration(r.For) > time.Minute {
				t.Errorf("%s pages after for: %v; a page waits a minute at most", name, r.For)
			}
		}
	}
	if g := parsed.Groups[3].Rules[0]; g.Alert != AlertWriteFails || g.For != 0 || g.Labels["severity"] != "critical" {
		t.Errorf("fast page: %+v", g)
	}
	// The 28-day window: factor 0.02 × 28 d / 1 h = 13.44, on each
	// cluster's own target.
	if e := parsed.Groups[0].Rules[9].Expr; !strings.Contains(e, `> on (cluster) group_left () (13.44 * (1 - nines_slo_target{slo_window="4w"}))`) {
		t.Errorf("4w 1h/5m burn alert: %s", e)
	}
	if e := parsed.Groups[2].Rules[9].Expr; !strings.Contains(e, `> on (cluster) group_left () (14.4 * (1 - nines_slo_target{slo_window="30d"}))`) {
		t.Errorf("30d 1h/5m burn alert: %s", e)
	}
}

// checkConstants checks that a constant record is one
// label_replace(vector(number), "cluster", name, "", "") per cluster,
// joined with or, and reads nothing.
func checkConstants(t *testing.T, name string, e parser.Expr) {
	t.Helper()
	if p, ok := e.(*parser.ParenExpr); ok {
		checkConstants(t, name, p.Expr)
		return
	}
	if b, ok := e.(*parser.BinaryExpr); ok && b.Op == parser.LOR {
		checkConstants(t, name, b.LHS)
		checkConstants(t, name, b.RHS)
		return
	}
	c, ok := e.(*parser.Call)
	if ok && c.Func.Name == "label_replace" {
		v, ok := c.Args[0].(*parser.Call)
		if ok && v.Func.Name == "vector" {
			if _, ok := v.Args[0].(*parser.NumberLiteral); ok {
				return
			}
		}
	}
	t.Errorf("%s: %s is not a constant of a cluster", name, e)
}

func selectors(e parser.Expr) []*parser.VectorSelector {
	var out []*parser.VectorSelector
	parser.Inspect(e, func(n parser.Node, _ []parser.Node) error {
		if vs, ok := n.(*parser.VectorSelector); ok {
			out = append(out, vs)
		}
		return nil
	})
	return out
}

// matchers maps "name=" or "name=~" to the value, without __name__.
func matchers(vs *parser.VectorSelector) map[string]string {
	m := map[string]string{}
	for _, lm := range vs.LabelMatchers {
		if lm.Name != labels.MetricName {
			m[lm.Name+lm.Type.String()] = lm.Value
		}
	}
	return m
}

// TestRulesCostIndependentOfClusters: 300 clusters get the same groups and
// the same rules as one, reading the same number of selectors; only the
// two constant records have one term per cluster.
func TestRulesCostIndependentOfClusters(t *testing.T) {
	shape := func(n int) (groups, rules, selectorCount, constantTerms int) {
		var specs []Spec
		for i := range n {
			specs = append(specs, Spec{Cluster: fmt.Sprintf("c%04d", i), Target: []float64{99.999, 99.99, 99.9}[i%3]})
		}
		gs, err := Rules(specs)
		if err != nil {
			t.Fatal(err)
		}
		for _, g := range gs {
			groups++
			for _, r := range g.Rules {
				rules++
				e, err := parser.NewParser(parser.Options{}).ParseExpr(r.Expr)
				if err != nil {
					t.Fatal(err)
				}
				selectorCount += len(selectors(e))
				if r.Record == RecordTarget || r.Record == RecordBudget {
					constantTerms += strings.Count(r.Expr, "label_replace(")
				}
			}
		}
		return
	}
	g1, r1, s1, c1 := shape(1)
	g300, r300, s300, c300 := shape(300)
	if g1 != 2 || g300 != g1 || r300 != r1 || s300 != s1 {
		t.Errorf("1 cluster: %d groups, %d rules, %d selectors; 300 clusters: %d groups, %d rules, %d selectors", g1, r1, s1, g300, r300, s300)
	}
	if c1 != 2 || c300 != 600 {
		t.Errorf("constant terms: %d for 1 cluster, %d for 300; want 2 and 600", c1, c300)
	}
	t.Logf("%d groups, %d rules, %d selectors for 1 and for 300 clusters", g1, r1, s1)
}

// TestAnnotations shows what an operator reads, for a five-nines cluster:
// the figures of its own SLO, filled in when the alert fires.
func TestAnnotations(t *testing.T) {
	groups, err := Rules([]Spec{{Cluster: "billing"}, {Cluster: "iptv", Target: 99.9}})
	if err != nil {
		t.Fatal(err)
	}
	recorded := constants{
		RecordTarget: {"billing": 0.99999, "iptv": 0.999},
		RecordBudget: {"billing": 25.92, "iptv": 2592},
	}
	burn := recorded.alert(t, groups[0].Rules[9], "billing", 10.0/1815)
	for k, want := range map[string]string{
		"summary": "Cluster billing is burning its error budget at 14.4× the sustainable rate (1h and 5m windows).",
		"description": "Over both the last 1h and the last 5m, more than 0.0144% of cluster billing's seconds were bad or unknown: " +
			"0.551% over the last 1h (SLO 99.999 % over 30d, burn factor 14.4). At this rate 2 % of the 30d error budget (25.92 s) is spent in 1h. " +
			"Unknown seconds, when nines had no probe result, count against the SLO.",
	} {
		if got := burn.ExpAnnotations[k]; got != want {
			t.Errorf("burn %s:\n got %s\nwant %s", k, got, want)
		}
	}
	if got := burn.ExpAnnotations["runbook"]; !strings.Contains(got, `nines_probe_seconds_total{cluster="billing"}`) {
		t.Errorf("burn runbook: %s", got)
	}
	page := recorded.alert(t, groups[1].Rules[0], "iptv", 3)
	for k, want := range map[string]string{
		"summary": "Writes to cluster iptv are failing: no endpoint committed a probe write.",
		"description": "In the last 1m, 3 second(s) had the write probe fail through every endpoint of cluster iptv: " +
			"none committed and read back its heartbeat within the latency bound. Applications writing to iptv are failing. " +
			"Each such second spends 0.0386 % of the 30d error budget (2592 s).",
	} {
		if got := page.ExpAnnotations[k]; got != want {
			t.Errorf("page %s:\n got %s\nwant %s", k, got, want)
		}
	}
}

func TestRulesRejects(t *testing.T) {
	for _, c := range []struct {
		name  string
		specs []Spec
		want  string
	}{
		{"no cluster", []Spec{{Target: 99.9}}, "empty cluster name"},
		{"name outside the config's alphabet", []Spec{{Cluster: `a"|.*`}}, "characters other than"},
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
