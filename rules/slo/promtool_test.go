package slo

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/prometheus/prometheus/model/rulefmt"
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
// something happens to 10 of the 15 seconds before 30m15s (sample 121).
// Cluster "nodata" has an SLO but no series at all: the appliance was not
// there to measure it.
func TestPromtoolRuleScenarios(t *testing.T) {
	bin := promtool(t)
	dir := t.TempDir()
	groups, _ := writeRules(t, dir, []Spec{{Cluster: "a"}, {Cluster: "nodata"}})
	alert := func(name, cluster string, labels map[string]string) expAlert {
		t.Helper()
		for _, g := range groups {
			for _, r := range g.Rules {
				if r.Alert != name || r.Labels["cluster"] != cluster {
					continue
				}
				match := true
				for k, v := range labels {
					match = match && r.Labels[k] == v
				}
				if match {
					return expAlert{ExpLabels: r.Labels, ExpAnnotations: r.Annotations}
				}
			}
		}
		t.Fatalf("no %s rule for %s with %v", name, cluster, labels)
		return expAlert{}
	}
	page1h := alert(AlertBurnRate, "a", map[string]string{"long_window": "1h"})
	page6h := alert(AlertBurnRate, "a", map[string]string{"long_window": "6h"})
	ticket1d := alert(AlertBurnRate, "a", map[string]string{"long_window": "1d"})
	writeFailed := alert(AlertWriteFails, "a", nil)

	// 2 h of samples: steps 0..480. Good counts 15 per step; at step 121
	// ten of the step's 15 seconds go to bad (or unknown) instead.
	const (
		allGood  = "0+15x480"
		goodTen  = "0+15x120 1805+15x359"
		zero     = "0x480"
		tenAt121 = "0x120 10x359"
	)
	series := func(good, bad, unknown string) []inputSeries {
		return []inputSeries{
			{`nines_probe_seconds_total{cluster="a",result="good"}`, good},
			{`nines_probe_seconds_total{cluster="a",result="bad"}`, bad},
			{`nines_probe_seconds_total{cluster="a",result="unknown"}`, unknown},
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
			InputSeries: series(goodTen, tenAt121, zero),
			PromQLExprTest: []exprTest{
				{Expr: "nines_slo_target", EvalTime: "30m", ExpSamples: []sample{
					{`nines_slo_target{cluster="a"}`, 0.99999}, {`nines_slo_target{cluster="nodata"}`, 0.99999}}},
				{Expr: "nines_slo_error_budget_seconds", EvalTime: "30m", ExpSamples: []sample{
					{`nines_slo_error_budget_seconds{cluster="a"}`, 25.92}, {`nines_slo_error_budget_seconds{cluster="nodata"}`, 25.92}}},
				// Before: the whole 25.92 s remain; no data has no remaining budget.
				{Expr: "nines_slo_error_budget_remaining_seconds", EvalTime: "30m", ExpSamples: []sample{
					{`nines_slo_error_budget_remaining_seconds{cluster="a"}`, 25.92}}},
				{Expr: "nines_slo_error_budget_remaining_ratio", EvalTime: "30m", ExpSamples: []sample{
					{`nines_slo_error_budget_remaining_ratio{cluster="a"}`, 1}}},
				{Expr: spent, EvalTime: "30m", ExpSamples: []sample{{`{cluster="a"}`, 0}}},
				// After: exactly 10 s spent, and still 10 s an hour and a half later.
				{Expr: spent, EvalTime: "30m15s", ExpSamples: []sample{{`{cluster="a"}`, 10}}},
				{Expr: spent, EvalTime: "2h", ExpSamples: []sample{{`{cluster="a"}`, 10}}},
				// 10 of the 300 seconds of the 5 minutes to 30m15s.
				{Expr: `nines_slo:error_ratio:rate5m * 300`, EvalTime: "30m15s", ExpSamples: []sample{{`{cluster="a"}`, 10}}},
				{Expr: `nines_slo:error_ratio:rate5m`, EvalTime: "40m", ExpSamples: []sample{{`nines_slo:error_ratio:rate5m{cluster="a"}`, 0}}},
				{Expr: `nines_slo:error_ratio:rate5m{cluster="nodata"}`, EvalTime: "30m15s", ExpSamples: none},
				{Expr: `nines_slo_error_budget_remaining_ratio{cluster="nodata"}`, EvalTime: "2h", ExpSamples: none},
			},
			AlertRuleTest: []alertTest{
				{EvalTime: "30m", Alertname: AlertWriteFails, ExpAlerts: []expAlert{}},
				{EvalTime: "30m15s", Alertname: AlertWriteFails, ExpAlerts: []expAlert{writeFailed}},
				{EvalTime: "31m30s", Alertname: AlertWriteFails, ExpAlerts: []expAlert{}},
				{EvalTime: "30m", Alertname: AlertBurnRate, ExpAlerts: []expAlert{}},
				// Both page rows at once (for: 0s); the tickets wait for their for:.
				{EvalTime: "30m15s", Alertname: AlertBurnRate, ExpAlerts: []expAlert{page1h, page6h}},
				// The 5m window has forgotten; the 30m one has not.
				{EvalTime: "40m", Alertname: AlertBurnRate, ExpAlerts: []expAlert{page6h}},
				// The 1d/2h ticket fired at 1h30m15s, after its for: 1h.
				{EvalTime: "1h40m", Alertname: AlertBurnRate, ExpAlerts: []expAlert{ticket1d}},
			},
		}, {
			Name:        "10 unknown seconds: they spend the budget and burn, but do not page as failed writes",
			Interval:    "15s",
			InputSeries: series(goodTen, zero, tenAt121),
			PromQLExprTest: []exprTest{
				{Expr: spent, EvalTime: "30m15s", ExpSamples: []sample{{`{cluster="a"}`, 10}}},
			},
			AlertRuleTest: []alertTest{
				{EvalTime: "30m15s", Alertname: AlertWriteFails, ExpAlerts: []expAlert{}},
				{EvalTime: "30m15s", Alertname: AlertBurnRate, ExpAlerts: []expAlert{page1h, page6h}},
			},
		}, {
			Name:        "all good: the whole budget remains, nothing fires",
			Interval:    "15s",
			InputSeries: series(allGood, zero, zero),
			PromQLExprTest: []exprTest{
				{Expr: "nines_slo_error_budget_remaining_seconds", EvalTime: "2h", ExpSamples: []sample{
					{`nines_slo_error_budget_remaining_seconds{cluster="a"}`, 25.92}}},
				{Expr: "nines_slo:error_ratio:rate1h", EvalTime: "2h", ExpSamples: []sample{
					{`nines_slo:error_ratio:rate1h{cluster="a"}`, 0}}},
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
