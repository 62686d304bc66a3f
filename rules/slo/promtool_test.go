package slo

import (
	"context"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/prometheus/prometheus/template"
	"go.yaml.in/yaml/v3"
)

// promtool returns the path of promtool. It is part of the toolchain the
// tests need (Debian package prometheus): a missing one fails the test,
// it does not skip it.
func promtool(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("promtool")
	if err != nil {
		t.Fatalf("promtool not found (install the Debian package prometheus): %v", err)
	}
	return p
}

// writeRules writes the rule file for specs into dir.
func writeRules(t *testing.T, dir string, specs []Spec) ([]rulefmt.RuleGroup, string) {
	t.Helper()
	groups, err := Rules(specs)
	if err != nil {
		t.Fatal(err)
	}
	b, err := Marshal(groups)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "slo.rules.yml")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return groups, path
}

func TestPromtoolCheckRules(t *testing.T) {
	bin := promtool(t)
	// Two SLO windows: two pairs of groups whose rules have the same names.
	_, path := writeRules(t, t.TempDir(), []Spec{{Cluster: "billing"}, {Cluster: "iptv", Target: 99.99}, {Cluster: "aaa", Target: 99.9, Window: 28 * day}})
	// --lint-fatal: a lint finding (duplicate rules) fails the check too.
	out, err := exec.Command(bin, "check", "rules", "--lint-fatal", path).CombinedOutput()
	if err != nil {
		t.Fatalf("promtool check rules: %v\n%s", err, out)
	}
	t.Logf("%s", out)
}

// The promtool unit-test file format (promtool test rules).
type (
	unitTestFile struct {
		RuleFiles          []string   `yaml:"rule_files"`
		EvaluationInterval string     `yaml:"evaluation_interval"`
		Tests              []unitTest `yaml:"tests"`
	}
	unitTest struct {
		Name           string        `yaml:"name"`
		Interval       string        `yaml:"interval"`
		InputSeries    []inputSeries `yaml:"input_series"`
		PromQLExprTest []exprTest    `yaml:"promql_expr_test,omitempty"`
		AlertRuleTest  []alertTest   `yaml:"alert_rule_test,omitempty"`
	}
	inputSeries struct {
		Series string `yaml:"series"`
		Values string `yaml:"values"`
	}
	exprTest struct {
		Expr       string   `yaml:"expr"`
		EvalTime   string   `yaml:"eval_time"`
		ExpSamples []sample `yaml:"exp_samples"`
	}
	sample struct {
		Labels string  `yaml:"labels"`
		Value  float64 `yaml:"value"`
	}
	alertTest struct {
		EvalTime  string     `yaml:"eval_time"`
		Alertname string     `yaml:"alertname"`
		ExpAlerts []expAlert `yaml:"exp_alerts"`
	}
	expAlert struct {
		ExpLabels      map[string]string `yaml:"exp_labels"`
		ExpAnnotations map[string]string `yaml:"exp_annotations"`
	}
)

// TestPromtoolRuleScenarios proves the rules' arithmetic with Prometheus'
// own evaluator, on series a reader can check by eye. Samples come every
// 15 s, so a cluster counts 15 seconds per sample; in each scenario
// something happens to the 15 seconds before 30m15s (sample 121).
//
// Three clusters share the 30-day window, and so one group of rules:
// "a" and "nodata" at 99.999 % (budget 25.92 s), "three" at 99.9 %
// (budget 2592 s). Clusters without series in a scenario had no
// appliance to measure them.
func TestPromtoolRuleScenarios(t *testing.T) {
	bin := promtool(t)
	dir := t.TempDir()
	groups, _ := writeRules(t, dir, []Spec{{Cluster: "a"}, {Cluster: "nodata"}, {Cluster: "three", Target: 99.9}})
	// What the annotations' queries find: the recorded constants.
	recorded := constants{
		RecordTarget: {"a": 0.99999, "nodata": 0.99999, "three": 0.999},
		RecordBudget: {"a": 25.92, "nodata": 25.92, "three": 2592},
	}
	// alert is the alert the rule named name with labels raises for
	// cluster when its expression's value is value.
	alert := func(name, cluster string, ruleLabels map[string]string, value float64) expAlert {
		t.Helper()
		for _, g := range groups {
			for _, r := range g.Rules {
				match := r.Alert == name
				for k, v := range ruleLabels {
					match = match && r.Labels[k] == v
				}
				if match {
					return recorded.alert(t, r, cluster, value)
				}
			}
		}
		t.Fatalf("no %s rule with %v", name, ruleLabels)
		return expAlert{}
	}
	page1h := func(cluster string, v float64) expAlert {
		return alert(AlertBurnRate, cluster, map[string]string{"long_window": "1h"}, v)
	}
	page6h := func(cluster string, v float64) expAlert {
		return alert(AlertBurnRate, cluster, map[string]string{"long_window": "6h"}, v)
	}
	ticket1d := func(cluster string, v float64) expAlert {
		return alert(AlertBurnRate, cluster, map[string]string{"long_window": "1d"}, v)
	}
	writeFailed := func(cluster string, badSeconds float64) expAlert {
		return alert(AlertWriteFails, cluster, nil, badSeconds)
	}

	// 2 h of samples: steps 0..480. Good counts 15 per step; at step 121
	// ten (or all fifteen) of the step's seconds go to bad or unknown
	// instead.
	const (
		allGood    = "0+15x480"
		goodTen    = "0+15x120 1805+15x359"
		goodNone   = "0+15x120 1800+15x359"
		zero       = "0x480"
		tenAt121   = "0x120 10x359"
		allAt121   = "0x120 15x359"
		badAt30m15 = "30m15s"
	)
	series := func(cluster, good, bad, unknown string) []inputSeries {
		return []inputSeries{
			{`nines_probe_seconds_total{cluster="` + cluster + `",result="good"}`, good},
			{`nines_probe_seconds_total{cluster="` + cluster + `",result="bad"}`, bad},
			{`nines_probe_seconds_total{cluster="` + cluster + `",result="unknown"}`, unknown},
		}
	}
	spent := "nines_slo_error_budget_seconds - nines_slo_error_budget_remaining_seconds"
	none := []sample{}

	file := unitTestFile{
		RuleFiles:          []string{"slo.rules.yml"},
		EvaluationInterval: "15s",
		Tests: []unitTest{{
			Name:        "10 bad seconds: the budget drops by exactly 10 s, the fast page fires at once, the burn rates follow",
			Interval:    "15s",
			InputSeries: series("a", goodTen, tenAt121, zero),
			PromQLExprTest: []exprTest{
				// The constants are there with no data at all.
				{Expr: "nines_slo_target", EvalTime: "30m", ExpSamples: []sample{
					{`nines_slo_target{cluster="a",slo_window="30d"}`, 0.99999},
					{`nines_slo_target{cluster="nodata",slo_window="30d"}`, 0.99999},
					{`nines_slo_target{cluster="three",slo_window="30d"}`, 0.999}}},
				{Expr: "nines_slo_error_budget_seconds", EvalTime: "30m", ExpSamples: []sample{
					{`nines_slo_error_budget_seconds{cluster="a",slo_window="30d"}`, 25.92},
					{`nines_slo_error_budget_seconds{cluster="nodata",slo_window="30d"}`, 25.92},
					{`nines_slo_error_budget_seconds{cluster="three",slo_window="30d"}`, 2592}}},
				// Before: the whole 25.92 s remain; no data has no remaining budget.
				{Expr: "nines_slo_error_budget_remaining_seconds", EvalTime: "30m", ExpSamples: []sample{
					{`nines_slo_error_budget_remaining_seconds{cluster="a",slo_window="30d"}`, 25.92}}},
				{Expr: "nines_slo_error_budget_remaining_ratio", EvalTime: "30m", ExpSamples: []sample{
					{`nines_slo_error_budget_remaining_ratio{cluster="a",slo_window="30d"}`, 1}}},
				{Expr: spent, EvalTime: "30m", ExpSamples: []sample{{`{cluster="a",slo_window="30d"}`, 0}}},
				// After: exactly 10 s spent, and still 10 s an hour and a half later.
				{Expr: spent, EvalTime: badAt30m15, ExpSamples: []sample{{`{cluster="a",slo_window="30d"}`, 10}}},
				{Expr: spent, EvalTime: "2h", ExpSamples: []sample{{`{cluster="a",slo_window="30d"}`, 10}}},
				// 10 of the 300 seconds of the 5 minutes to 30m15s.
				{Expr: `nines_slo:error_ratio:rate5m * 300`, EvalTime: badAt30m15, ExpSamples: []sample{{`{cluster="a",slo_window="30d"}`, 10}}},
				{Expr: `nines_slo:error_ratio:rate5m`, EvalTime: "40m", ExpSamples: []sample{{`nines_slo:error_ratio:rate5m{cluster="a",slo_window="30d"}`, 0}}},
				{Expr: `nines_slo:error_ratio:rate5m{cluster="nodata"}`, EvalTime: badAt30m15, ExpSamples: none},
				{Expr: `nines_slo_error_budget_remaining_ratio{cluster="nodata"}`, EvalTime: "2h", ExpSamples: none},
			},
			AlertRuleTest: []alertTest{
				{EvalTime: "30m", Alertname: AlertWriteFails, ExpAlerts: []expAlert{}},
				{EvalTime: badAt30m15, Alertname: AlertWriteFails, ExpAlerts: []expAlert{writeFailed("a", 10)}},
				{EvalTime: "31m30s", Alertname: AlertWriteFails, ExpAlerts: []expAlert{}},
				{EvalTime: "30m", Alertname: AlertBurnRate, ExpAlerts: []expAlert{}},
				// Both page rows at once (for: 0s); the tickets wait for
				// their for:. The value is the long window's error ratio:
				// 10 of the 1815 seconds counted so far.
				{EvalTime: badAt30m15, Alertname: AlertBurnRate, ExpAlerts: []expAlert{page1h("a", 10.0/1815), page6h("a", 10.0/1815)}},
				// The 5m window has forgotten; the 30m one has not.
				{EvalTime: "40m", Alertname: AlertBurnRate, ExpAlerts: []expAlert{page6h("a", 10.0/2400)}},
				// The 1d/2h ticket burns from 30m15s and fires after its
				// for: 1h, at 1h30m15s; one evaluation before, nothing
				// fires (the 6h page's 30m window has forgotten).
				{EvalTime: "1h30m", Alertname: AlertBurnRate, ExpAlerts: []expAlert{}},
				{EvalTime: "1h30m15s", Alertname: AlertBurnRate, ExpAlerts: []expAlert{ticket1d("a", 10.0/5415)}},
				{EvalTime: "1h40m", Alertname: AlertBurnRate, ExpAlerts: []expAlert{ticket1d("a", 10.0/6000)}},
			},
		}, {
			// 4 h of samples: the 3d/6h ticket burns from 30m15s and fires
			// after its for: 3h, not one evaluation before.
			Name:        "10 bad seconds, 4 hours on: the slowest ticket fires after its for: 3h",
			Interval:    "15s",
			InputSeries: series("a", "0+15x120 1805+15x839", "0x120 10x839", "0x960"),
			AlertRuleTest: []alertTest{
				{EvalTime: "3h30m", Alertname: AlertBurnRate, ExpAlerts: []expAlert{}},
				{EvalTime: "3h30m15s", Alertname: AlertBurnRate, ExpAlerts: []expAlert{
					alert(AlertBurnRate, "a", map[string]string{"long_window": "3d"}, 10.0/12615)}},
			},
		}, {
			Name:        "10 unknown seconds: they spend the budget and burn, but do not page as failed writes",
			Interval:    "15s",
			InputSeries: series("a", goodTen, zero, tenAt121),
			PromQLExprTest: []exprTest{
				{Expr: spent, EvalTime: badAt30m15, ExpSamples: []sample{{`{cluster="a",slo_window="30d"}`, 10}}},
			},
			AlertRuleTest: []alertTest{
				{EvalTime: badAt30m15, Alertname: AlertWriteFails, ExpAlerts: []expAlert{}},
				{EvalTime: badAt30m15, Alertname: AlertBurnRate, ExpAlerts: []expAlert{page1h("a", 10.0/1815), page6h("a", 10.0/1815)}},
			},
		}, {
			// As many maintenance seconds as valid ones: if they counted,
			// the error ratio would halve.
			Name:     "maintenance seconds are not valid: the burn rates count good, bad and unknown only",
			Interval: "15s",
			InputSeries: append(series("a", goodTen, tenAt121, zero),
				inputSeries{`nines_probe_seconds_total{cluster="a",result="maintenance"}`, allGood}),
			PromQLExprTest: []exprTest{
				{Expr: spent, EvalTime: badAt30m15, ExpSamples: []sample{{`{cluster="a",slo_window="30d"}`, 10}}},
				{Expr: `nines_slo:error_ratio:rate5m * 300`, EvalTime: badAt30m15, ExpSamples: []sample{{`{cluster="a",slo_window="30d"}`, 10}}},
			},
			AlertRuleTest: []alertTest{
				{EvalTime: badAt30m15, Alertname: AlertBurnRate, ExpAlerts: []expAlert{page1h("a", 10.0/1815), page6h("a", 10.0/1815)}},
			},
		}, {
			Name:        "all good: the whole budget remains, nothing fires",
			Interval:    "15s",
			InputSeries: series("a", allGood, zero, zero),
			PromQLExprTest: []exprTest{
				{Expr: "nines_slo_error_budget_remaining_seconds", EvalTime: "2h", ExpSamples: []sample{
					{`nines_slo_error_budget_remaining_seconds{cluster="a",slo_window="30d"}`, 25.92}}},
				{Expr: "nines_slo:error_ratio:rate1h", EvalTime: "2h", ExpSamples: []sample{
					{`nines_slo:error_ratio:rate1h{cluster="a",slo_window="30d"}`, 0}}},
			},
			AlertRuleTest: []alertTest{
				{EvalTime: "2h", Alertname: AlertBurnRate, ExpAlerts: []expAlert{}},
				{EvalTime: "2h", Alertname: AlertWriteFails, ExpAlerts: []expAlert{}},
			},
		}, {
			Name:        "no data at all: no ratio, no remaining budget, no burn, no page",
			Interval:    "15s",
			InputSeries: []inputSeries{{`nines_unrelated{cluster="a"}`, "1x480"}},
			PromQLExprTest: []exprTest{
				{Expr: "nines_slo_error_budget_remaining_seconds", EvalTime: "1h", ExpSamples: none},
				{Expr: "nines_slo_error_budget_remaining_ratio", EvalTime: "1h", ExpSamples: none},
				{Expr: `{__name__=~"nines_slo:error_ratio:.*"}`, EvalTime: "1h", ExpSamples: none},
			},
			AlertRuleTest: []alertTest{
				{EvalTime: "1h", Alertname: AlertBurnRate, ExpAlerts: []expAlert{}},
				{EvalTime: "1h", Alertname: AlertWriteFails, ExpAlerts: []expAlert{}},
			},
		}, {
			// One rule per row serves both clusters, each with its own
			// threshold. 15 bad seconds are 0.826 % of the 1815 counted:
			// above the 6h row's 6 × 0.1 % = 0.6 % for "three", below the
			// 1h row's 14.4 × 0.1 % = 1.44 %, and below the 1d ticket's
			// 0.3 % before its for: 1h is over. At five nines every row
			// would fire: a threshold taken from the wrong cluster shows.
			Name:        "two clusters, two targets: 15 bad seconds at 99.9 % page on the 6h row only, the five-nines cluster stays quiet",
			Interval:    "15s",
			InputSeries: append(series("a", allGood, zero, zero), series("three", goodNone, allAt121, zero)...),
			PromQLExprTest: []exprTest{
				// Each cluster's budget is its own: 2592 − 15 and 25.92 − 0.
				{Expr: "nines_slo_error_budget_remaining_seconds", EvalTime: badAt30m15, ExpSamples: []sample{
					{`nines_slo_error_budget_remaining_seconds{cluster="a",slo_window="30d"}`, 25.92},
					{`nines_slo_error_budget_remaining_seconds{cluster="three",slo_window="30d"}`, 2577}}},
				{Expr: spent, EvalTime: "2h", ExpSamples: []sample{
					{`{cluster="a",slo_window="30d"}`, 0}, {`{cluster="three",slo_window="30d"}`, 15}}},
				{Expr: "nines_slo:error_ratio:rate5m * 300", EvalTime: badAt30m15, ExpSamples: []sample{
					{`{cluster="a",slo_window="30d"}`, 0}, {`{cluster="three",slo_window="30d"}`, 15}}},
			},
			AlertRuleTest: []alertTest{
				{EvalTime: badAt30m15, Alertname: AlertWriteFails, ExpAlerts: []expAlert{writeFailed("three", 15)}},
				{EvalTime: badAt30m15, Alertname: AlertBurnRate, ExpAlerts: []expAlert{page6h("three", 15.0/1815)}},
				{EvalTime: "40m", Alertname: AlertBurnRate, ExpAlerts: []expAlert{page6h("three", 15.0/2400)}},
				// 15 of 3600 seconds: 0.42 %, below 0.6 %.
				{EvalTime: "1h", Alertname: AlertBurnRate, ExpAlerts: []expAlert{}},
				{EvalTime: "1h40m", Alertname: AlertBurnRate, ExpAlerts: []expAlert{}},
			},
		}},
	}
	b, err := yaml.Marshal(file)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "slo.test.yml")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(bin, "test", "rules", path).CombinedOutput()
	if err != nil {
		t.Fatalf("promtool test rules: %v\n%s\ntest file:\n%s", err, out, b)
	}
	t.Logf("%s", out)
}

// constants are the values of the recorded per-cluster constants, by
// metric name and cluster.
type constants map[string]map[string]float64

// alert is the alert rule r raises for cluster with value v: the rule's
// labels and the cluster's, and its annotations expanded as Prometheus
// expands them, their queries answered from c.
func (c constants) alert(t *testing.T, r rulefmt.Rule, cluster string, v float64) expAlert {
	t.Helper()
	ls := maps.Clone(r.Labels)
	ls["cluster"] = cluster
	series := map[string]string{"cluster": cluster, LabelWindow: r.Labels[LabelWindow]}
	ann := map[string]string{}
	for k, text := range r.Annotations {
		defs := "{{$labels := .Labels}}{{$externalLabels := .ExternalLabels}}{{$externalURL := .ExternalURL}}{{$value := .Value}}"
		data := template.AlertTemplateData(series, nil, "", promql.Sample{Metric: labels.FromMap(series), F: v})
		exp := template.NewTemplateExpander(context.Background(), defs+text, "__alert_"+r.Alert, data, model.Time(0), c.query(t), nil, nil)
		out, err := exp.Expand()
		if err != nil {
			t.Fatalf("%s: annotation %s: %v", r.Alert, k, err)
		}
		if strings.Contains(out, "?") {
			t.Fatalf("%s: annotation %s has a missing figure: %s", r.Alert, k, out)
		}
		ann[k] = out
	}
	return expAlert{ExpLabels: ls, ExpAnnotations: ann}
}

// query answers an annotation's query from c: arithmetic over numbers and
// selectors of one cluster's constant, which must name the cluster and
// the SLO window. Anything else fails the test.
func (c constants) query(t *testing.T) template.QueryFunc {
	return func(_ context.Context, q string, _ time.Time) (promql.Vector, error) {
		expr, err := parser.NewParser(parser.Options{}).ParseExpr(q)
		if err != nil {
			t.Fatalf("annotation query %q: %v", q, err)
		}
		var cluster string
		var eval func(parser.Expr) float64
		eval = func(e parser.Expr) float64 {
			switch e := e.(type) {
			case *parser.NumberLiteral:
				return e.Val
			case *parser.ParenExpr:
				return eval(e.Expr)
			case *parser.BinaryExpr:
				l, r := eval(e.LHS), eval(e.RHS)
				switch e.Op {
				case parser.ADD:
					return l + r
				case parser.SUB:
					return l - r
				case parser.MUL:
					return l * r
				case parser.DIV:
					return l / r
				}
			case *parser.VectorSelector:
				m := map[string]string{}
				for _, lm := range e.LabelMatchers {
					if lm.Type != labels.MatchEqual {
						t.Fatalf("annotation query %q: matcher %s", q, lm)
					}
					m[lm.Name] = lm.Value
				}
				v, ok := c[e.Name][m["cluster"]]
				if !ok || m[LabelWindow] == "" || len(m) != 3 {
					t.Fatalf("annotation query %q: selects %v", q, m)
				}
				cluster = m["cluster"]
				return v
			}
			t.Fatalf("annotation query %q: cannot evaluate %s", q, e)
			return 0
		}
		v := eval(expr)
		return promql.Vector{{Metric: labels.FromStrings("cluster", cluster), F: v}}, nil
	}
}
