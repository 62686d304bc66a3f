// Package slo turns SLO specs into Prometheus rule groups: recording rules
// for the error ratio over each burn-rate window, multi-window
// multi-burn-rate alerts from the windows table (windows.yaml, the Google
// SRE Workbook's), error-budget recording rules, and the fast page that
// five nines needs.
//
// Every rule reads one family, the probe's SLI counters
// nines_probe_seconds_total{cluster,result="good|bad|unknown"}. Unknown
// seconds count against the SLO, as facts/slo.md says. "No data" (no
// series at all over a window: the appliance was down) is neither good nor
// bad: every ratio and budget expression then has no result, so it is
// never counted as good and never pages as a burn. No expression falls
// back to a zero (`or vector(0)`) for that reason.
//
// The cost of the rules does not grow with the number of clusters: specs
// are grouped by SLO window, and each window gets one rule group whose
// rules cover all its clusters at once (`sum by (cluster)` over a selector
// of the group's clusters, thresholds joined `on (cluster)` from the
// recorded targets). The only per-cluster data are the constants: each
// cluster's target and budget, written into two rules as one
// label_replace(vector(…)) term per cluster, which read no storage.
package slo

import (
	"bytes"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/rulefmt"
	"go.yaml.in/yaml/v3"
)

// Names of the rules this package generates. Dashboards, reports and the
// remediator read them.
const (
	// RecordErrorRatioPrefix + window (5m, 1h, 1d ...) is the share of bad
	// and unknown seconds over that window, per cluster.
	RecordErrorRatioPrefix = "nines_slo:error_ratio:rate"
	RecordTarget           = "nines_slo_target"
	RecordBudget           = "nines_slo_error_budget_seconds"
	RecordBudgetRemaining  = "nines_slo_error_budget_remaining_seconds"
	RecordBudgetRatio      = "nines_slo_error_budget_remaining_ratio"

	AlertBurnRate   = "NinesSLOBurnRate"
	AlertWriteFails = "NinesProbeWriteFailed"

	// LabelWindow is set on every series and alert the rules make: the SLO
	// window of the cluster's spec, as Prometheus writes durations (30d,
	// 4w). The rules of one window group select the series they recorded
	// by it, and it keeps two window groups' rules apart for rule linters
	// (promtool's duplicate-rules check compares names and static labels).
	LabelWindow = "slo_window"

	// secondsMetric is the probe's SLI counter (probe).
	secondsMetric = "nines_probe_seconds_total"
)

// GroupName is the name of the group holding the SLO records and
// burn-rate alerts of every cluster whose SLO window is window
// ("nines-slo-30d"); PageGroupName that of their fast page
// ("nines-slo-30d-page").
func GroupName(window time.Duration) string     { return "nines-slo-" + dur(window) }
func PageGroupName(window time.Duration) string { return GroupName(window) + "-page" }

// Interval is the evaluation interval of the records and burn-rate alerts.
// Their shortest window is 5 minutes and the budget covers the whole SLO
// window, so a new evaluation every 10 s moves them by at most 1/30 of
// their shortest window; evaluating them every second would re-read days
// of samples for every cluster to learn next to nothing. Pages that must
// go out within seconds are in the page group.
const Interval = 10 * time.Second

// PageInterval is the evaluation interval of the fast-page group. The
// page must go out within seconds (DESIGN, remediation safety 7); it reads
// one minute of one counter per cluster, cheap enough to do every second.
const PageInterval = time.Second

// Rules returns two groups per distinct SLO window, shortest window first:
// GroupName(window) with the target and budget constants, the
// error-ratio records, the burn-rate alerts and the remaining-budget
// records of every cluster with that window, and PageGroupName(window)
// with their fast page. The number of rules does not depend on the number
// of clusters. Specs are checked first; nothing is returned if any is
// wrong.
func Rules(specs []Spec) ([]rulefmt.RuleGroup, error) {
	windows, err := Windows()
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	byWindow := map[time.Duration]*sloGroup{}
	for _, s := range specs {
		s, err := s.withDefaults(windows)
		if err != nil {
			return nil, err
		}
		if seen[s.Cluster] {
			return nil, fmt.Errorf("SLO of cluster %q given twice", s.Cluster)
		}
		seen[s.Cluster] = true
		g := byWindow[s.Window]
		if g == nil {
			g = &sloGroup{window: s.Window}
			byWindow[s.Window] = g
		}
		g.specs = append(g.specs, s)
	}
	groups := make([]rulefmt.RuleGroup, 0, 2*len(byWindow))
	for _, w := range slices.Sorted(maps.Keys(byWindow)) {
		g := byWindow[w]
		// Order matters: a rule reads what the rules before it recorded in
		// the same evaluation (the alerts read the targets and ratios, the
		// remaining budget reads the budget).
		var rs []rulefmt.Rule
		rs = append(rs, constantRecords(g)...)
		rs = append(rs, errorRatioRecords(g, windows)...)
		rs = append(rs, burnRateAlerts(g, windows)...)
		rs = append(rs, budgetRecords(g)...)
		groups = append(groups,
			rulefmt.RuleGroup{Name: GroupName(w), Interval: model.Duration(Interval), Rules: rs},
			rulefmt.RuleGroup{Name: PageGroupName(w), Interval: model.Duration(PageInterval), Rules: []rulefmt.Rule{writeFailedPage(g)}},
		)
	}
	return groups, nil
}

// Marshal writes groups as a Prometheus rule file.
func Marshal(groups []rulefmt.RuleGroup) ([]byte, error) {
	var b bytes.Buffer
	b.WriteString("# Generated by nines from the clusters' SLO specs (rules/slo). Do not edit.\n")
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(rulefmt.RuleGroups{Groups: groups}); err != nil {
		return nil, fmt.Errorf("write SLO rule file: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("write SLO rule file: %w", err)
	}
	return b.Bytes(), nil
}

// sloGroup is the checked specs that share one SLO window, in spec order:
// they share one rule group and one page group.
type sloGroup struct {
	window time.Duration
	specs  []Spec
}

// labels are the static labels of the group's rules: LabelWindow, and
// extra pairs (name, value, ...).
func (g *sloGroup) labels(extra ...string) map[string]string {
	ls := map[string]string{LabelWindow: dur(g.window)}
	for i := 0; i+1 < len(extra); i += 2 {
		ls[extra[i]] = extra[i+1]
	}
	return ls
}

// counters selects the SLI counters of the group's clusters, and of no
// other; result is one result, a regular expression of several
// (bad|unknown), or "" for every valid second. Seconds in a declared
// maintenance window (result="maintenance") are not valid: they never
// count, neither as good nor as bad (facts/slo.md).
func (g *sloGroup) counters(result string) string {
	names := make([]string, len(g.specs))
	for i, s := range g.specs {
		names[i] = regexp.QuoteMeta(s.Cluster)
	}
	sel := "cluster=~" + strconv.Quote(strings.Join(names, "|"))
	if result == "" {
		result = validSeconds
	}
	switch {
	case strings.Contains(result, "|"):
		sel += ",result=~" + strconv.Quote(result)
	case result != "":
		sel += ",result=" + strconv.Quote(result)
	}
	return secondsMetric + "{" + sel + "}"
}

// recorded selects the series named name that this group records. It
// selects by LabelWindow, not by the list of clusters, so that the alert
// expressions stay the same when a cluster is added to or removed from
// the group: the rule engine keeps a rule's pending and firing alerts
// across a reload only when its expression is unchanged, and a ticket
// waiting out its `for: 1h` must not start over because another cluster
// was configured.
func (g *sloGroup) recorded(name string) string {
	return name + "{" + LabelWindow + "=" + strconv.Quote(dur(g.window)) + "}"
}

// countOver is the number of seconds with the given results over window
// w, per cluster of the group. Prometheus' increase() may extrapolate by
// up to one sample interval at the window's edges; over a counter that
// starts at zero within the window it is exact.
func (g *sloGroup) countOver(result string, w time.Duration) string {
	return fmt.Sprintf("sum by (cluster) (increase(%s[%s]))", g.counters(result), dur(w))
}

// errorSeconds is the regular expression of the results that spend the
// budget.
const errorSeconds = "bad|unknown"

// validSeconds is the regular expression of the results an SLO counts.
const validSeconds = "good|bad|unknown"

// dur writes d as Prometheus does: 5m, 1h, 1d, 30d, 4w.
func dur(d time.Duration) string { return model.Duration(d).String() }

func modelDuration(d time.Duration) model.Duration { return model.Duration(d) }

// num writes a float without the noise of binary arithmetic: 12
// significant digits, so 14.4 × (1 − 0.99999) reads 0.000144.
func num(f float64) string { return strconv.FormatFloat(f, 'g', 12, 64) }

// percent writes a ratio as a percentage for people: three significant
// digits (a failed second is 3.86 % of a five-nines month).
func percent(ratio float64) string { return strconv.FormatFloat(ratio*100, 'g', 3, 64) + " %" }
