package slo

import (
	"fmt"
	"slices"
	"time"

	"github.com/prometheus/prometheus/model/rulefmt"
)

// errorRatioRecords records the error ratio, bad and unknown seconds over
// all counted seconds, of every cluster of the group, for every window the
// table uses, shortest first: one rule per window. A cluster with no
// counted second in the window has no result: no data, not zero errors.
func errorRatioRecords(g *sloGroup, windows []Window) []rulefmt.Rule {
	var ws []time.Duration
	for _, w := range windows {
		ws = append(ws, w.Long, w.Short)
	}
	slices.Sort(ws)
	ws = slices.Compact(ws)
	rs := make([]rulefmt.Rule, 0, len(ws))
	for _, w := range ws {
		rs = append(rs, rulefmt.Rule{
			Record: errorRatioName(w),
			Expr:   g.countOver(errorSeconds, w) + "\n/\n" + g.countOver("", w),
			Labels: g.labels(),
		})
	}
	return rs
}

func errorRatioName(w time.Duration) string { return RecordErrorRatioPrefix + dur(w) }

// burnRateAlerts makes one NinesSLOBurnRate rule per table row for every
// cluster of the group: both windows' error ratios above
// factor × (1 − target). The factor depends only on the row and the SLO
// window, so it is computed here; the target is each cluster's own, read
// from its nines_slo_target series.
//
// `ratio > on (cluster) group_left () threshold` compares each cluster's
// ratio with its own threshold and, as a filter, returns the left side:
// its value (the error ratio over the long window, the alert's $value)
// and all its labels. A cluster with no ratio (no data) has nothing to
// compare and no alert; one with no target cannot be given a threshold
// and has none either.
func burnRateAlerts(g *sloGroup, windows []Window) []rulefmt.Rule {
	rs := make([]rulefmt.Rule, 0, len(windows))
	for _, w := range windows {
		factor := w.Factor(g.window)
		threshold := fmt.Sprintf("(%s * (1 - %s))", num(factor), g.recorded(RecordTarget))
		burning := func(ratio time.Duration) string {
			return g.recorded(errorRatioName(ratio)) + " > on (cluster) group_left () " + threshold
		}
		rs = append(rs, rulefmt.Rule{
			Alert: AlertBurnRate,
			Expr:  burning(w.Long) + "\nand on (cluster)\n" + burning(w.Short),
			For:   modelDuration(w.For),
			Labels: g.labels(
				"severity", w.Severity.label(),
				"long_window", dur(w.Long),
				"short_window", dur(w.Short),
			),
			Annotations: map[string]string{
				"summary": fmt.Sprintf("Cluster {{ $labels.cluster }} is burning its error budget at %s× the sustainable rate (%s and %s windows).",
					num(factor), dur(w.Long), dur(w.Short)),
				"description": fmt.Sprintf("Over both the last %s and the last %s, more than %s of cluster {{ $labels.cluster }}'s seconds were bad or unknown: "+
					"{{ $value | humanizePercentage }} over the last %s (SLO %s %% over %s, burn factor %s). "+
					"At this rate %s of the %s error budget (%s s) is spent in %s. "+
					"Unknown seconds, when nines had no probe result, count against the SLO.",
					dur(w.Long), dur(w.Short), g.clusterValue(num(factor)+" * (1 - %s)", RecordTarget, "humanizePercentage"),
					dur(w.Long), g.clusterValue("100 * %s", RecordTarget, targetFormat), dur(g.window), num(factor),
					percent(w.BudgetShare), dur(g.window), g.clusterValue("%s", RecordBudget, secondsFormat), dur(w.Long)),
				"runbook": burnRateRunbook(w),
			},
		})
	}
	return rs
}

func burnRateRunbook(w Window) string {
	what := "A burn this fast will exhaust the budget well before the window ends if it goes on."
	if w.Severity == SeverityTicket {
		what = "A slow, steady burn: nothing is down now, but the month's budget will not last."
	}
	return what + " Check: the console's probe panel and nines_probe_seconds_total{cluster=\"{{ $labels.cluster }}\"} by result, " +
		"to see when the bad seconds fell; nines_probe_success and the last probe error per endpoint " +
		"(ERROR 1047: a Galera node outside the Primary component; connection refused: a server down; timeouts: writes stall, " +
		"look at flow control, disks and a dying peer). Many unknown seconds instead mean the appliance itself stalled or restarted: " +
		"check its log and host. What nines does itself: write outages page at once (" + AlertWriteFails + ") and the remediator " +
		"re-checks the cluster and runs the matching runbook (rejoin, recovery, failover); its steps are in the job log (nines jobs list)."
}

// Formats of the per-cluster figures in annotations.
const (
	targetFormat  = `printf "%.10g"` // 99.999, without 99.99900000000001's noise
	secondsFormat = `printf "%.10g"` // 25.92
)

// clusterValue is an annotation template that prints a figure of the
// alert's cluster: it runs expr, in which %s stands for the series named
// series of that cluster in this group, and pipes the first result's
// value to format. Alert expressions carry one value ($value); the
// cluster's target and budget come from the series the group records.
// It prints "?" when the series is missing (the first seconds after a
// start, before the group's first evaluation).
func (g *sloGroup) clusterValue(expr, series, format string) string {
	sel := series + `{cluster=%q,` + LabelWindow + `="` + dur(g.window) + `"}`
	return "{{ with printf `" + fmt.Sprintf(expr, sel) + "` $labels.cluster | query }}{{ . | first | value | " + format + " }}{{ else }}?{{ end }}"
}
