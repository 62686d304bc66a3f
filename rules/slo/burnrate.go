package slo

import (
	"fmt"
	"slices"
	"time"

	"github.com/prometheus/prometheus/model/rulefmt"
)

// errorRatioRecords records the error ratio, bad and unknown seconds over
// all counted seconds, for every window the table uses, shortest first.
// With no counted second in the window the division has no result: no
// data, not zero errors.
func errorRatioRecords(s Spec, windows []Window) []rulefmt.Rule {
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
			Expr:   countOver(s.Cluster, errorSeconds, w) + "\n/\n" + countOver(s.Cluster, "", w),
			Labels: recordLabels(s),
		})
	}
	return rs
}

func errorRatioName(w time.Duration) string { return RecordErrorRatioPrefix + dur(w) }

// burnRateAlerts makes one NinesSLOBurnRate rule per table row: both
// windows' error ratios above factor × (1 − target).
func burnRateAlerts(s Spec, windows []Window) []rulefmt.Rule {
	rs := make([]rulefmt.Rule, 0, len(windows))
	for _, w := range windows {
		factor := w.Factor(s.Window)
		threshold := num(factor * s.errorBudgetRatio())
		sel := fmt.Sprintf("{cluster=%q}", s.Cluster)
		rs = append(rs, rulefmt.Rule{
			Alert: AlertBurnRate,
			Expr: errorRatioName(w.Long) + sel + " > " + threshold +
				"\nand on (cluster)\n" +
				errorRatioName(w.Short) + sel + " > " + threshold,
			For: modelDuration(w.For),
			Labels: map[string]string{
				"severity":     w.Severity.label(),
				"cluster":      s.Cluster,
				"long_window":  dur(w.Long),
				"short_window": dur(w.Short),
			},
			Annotations: map[string]string{
				"summary": fmt.Sprintf("Cluster %s is burning its error budget at %s× the sustainable rate (%s and %s windows).",
					s.Cluster, num(factor), dur(w.Long), dur(w.Short)),
				"description": fmt.Sprintf("Over both the last %s and the last %s, more than %s of cluster %s's seconds were bad or unknown "+
					"(SLO %s%% over %s, burn factor %s). At this rate %s of the %s error budget (%s s) is spent in %s. "+
					"Unknown seconds, when nines had no probe result, count against the SLO.",
					dur(w.Long), dur(w.Short), percent(factor*s.errorBudgetRatio()), s.Cluster,
					num(s.Target), dur(s.Window), num(factor), percent(w.BudgetShare), dur(s.Window), num(s.budgetSeconds()), dur(w.Long)),
				"runbook": burnRateRunbook(s, w),
			},
		})
	}
	return rs
}

func burnRateRunbook(s Spec, w Window) string {
	what := "A burn this fast will exhaust the budget well before the window ends if it goes on."
	if w.Severity == SeverityTicket {
		what = "A slow, steady burn: nothing is down now, but the month's budget will not last."
	}
	return what + " Check: the console's probe panel and nines_probe_seconds_total{cluster=\"" + s.Cluster +
		"\"} by result, to see when the bad seconds fell; nines_probe_success and the last probe error per endpoint " +
		"(ERROR 1047: a Galera node outside the Primary component; connection refused: a server down; timeouts: writes stall, " +
		"look at flow control, disks and a dying peer). Many unknown seconds instead mean the appliance itself stalled or restarted: " +
		"check its log and host. What nines does itself: write outages page at once (" + AlertWriteFails + ") and the remediator " +
		"re-checks the cluster and runs the matching runbook (rejoin, recovery, failover); its steps are in the job log (nines jobs list)."
}
