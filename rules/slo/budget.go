package slo

import (
	"fmt"
	"strconv"

	"github.com/prometheus/prometheus/model/rulefmt"
)

// constantRecords records each cluster's configuration, the only
// per-cluster data in the rules:
//   - nines_slo_target: the target as a ratio (0.99999);
//   - nines_slo_error_budget_seconds: (1 − target) × window, 25.92 s for
//     99.999 % over 30 days.
//
// Both are present with no data. The budget is computed here on the
// target's decimal digits (Spec.errorBudgetRatio) rather than in PromQL
// from the target series: (1 − 0.99999) × 2592000 is 25.9199999999 in
// binary floating point, and reports print the budget.
//
// Each is one rule whose expression joins one constant per cluster with
// `or` (see orTree): the rule count stays the same for any number of
// clusters, and label_replace(vector(…)) reads no storage.
func constantRecords(g *sloGroup) []rulefmt.Rule {
	return []rulefmt.Rule{
		{Record: RecordTarget, Expr: g.constants(func(s Spec) float64 { return s.Target / 100 }), Labels: g.labels()},
		{Record: RecordBudget, Expr: g.constants(Spec.budgetSeconds), Labels: g.labels()},
	}
}

// constants is a vector of one series per cluster of the group, with
// label cluster and the value v gives for its spec.
func (g *sloGroup) constants(v func(Spec) float64) string {
	terms := make([]string, len(g.specs))
	for i, s := range g.specs {
		// Cluster names are letters, digits, - and _ (Spec.withDefaults),
		// so label_replace's $-expansion cannot touch them.
		terms[i] = fmt.Sprintf(`label_replace(vector(%s), "cluster", %s, "", "")`, num(v(s)), strconv.Quote(s.Cluster))
	}
	return orTree(terms)
}

// orTree joins terms with `or` as a balanced tree, one term per line.
// Both Prometheus and MetricsQL evaluate `a or b or c …` left to right,
// each `or` copying every series so far: quadratic in the number of
// clusters (25 ms for 334 clusters in nines' store, 180 ms for 1,000),
// where the balanced tree takes 3 ms and 6 ms.
func orTree(terms []string) string {
	if len(terms) == 1 {
		return terms[0]
	}
	half := func(ts []string) string {
		if len(ts) == 1 {
			return ts[0]
		}
		return "(" + orTree(ts) + ")"
	}
	return half(terms[:len(terms)/2]) + "\nor " + half(terms[len(terms)/2:])
}

// budgetRecords records what is left of the error budget, for dashboards,
// reports and tickets:
//   - nines_slo_error_budget_remaining_seconds: the budget minus the bad
//     and unknown seconds counted in the SLO window, negative when
//     breached;
//   - nines_slo_error_budget_remaining_ratio: the same as a share of the
//     budget.
//
// The remaining budget counts seconds (facts/slo.md: "count seconds
// exactly, not rates of rates"), so ten bad seconds take exactly ten
// seconds off it. A cluster with no series in the window has no result:
// the join `on (cluster)` with its budget finds nothing to join, and a
// budget cannot be called intact when nothing was measured. The ratio
// reads the remaining seconds just recorded rather than counting the
// window's seconds a second time: the count over the whole SLO window is
// the most expensive query of the group.
func budgetRecords(g *sloGroup) []rulefmt.Rule {
	return []rulefmt.Rule{
		{
			Record: RecordBudgetRemaining,
			Expr:   g.recorded(RecordBudget) + "\n- on (cluster)\n" + g.countOver(errorSeconds, g.window),
			Labels: g.labels(),
		},
		{
			Record: RecordBudgetRatio,
			Expr:   g.recorded(RecordBudgetRemaining) + "\n/ on (cluster)\n" + g.recorded(RecordBudget),
			Labels: g.labels(),
		},
	}
}
