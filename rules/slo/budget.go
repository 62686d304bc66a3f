package slo

import (
	"fmt"
	"strconv"

	"github.com/prometheus/prometheus/model/rulefmt"
)

// budgetRecords records the target and the error budget of the SLO
// window, for dashboards and reports:
//   - nines_slo_target: the target as a ratio (0.99999);
//   - nines_slo_error_budget_seconds: (1 − target) × window, 25.92 s for
//     99.999 % over 30 days. Both are configuration, present with no data.
//   - nines_slo_error_budget_remaining_seconds: the budget minus the bad
//     and unknown seconds counted in the window, negative when breached;
//   - nines_slo_error_budget_remaining_ratio: the same as a share of the
//     budget.
//
// The remaining budget counts seconds (facts/slo.md: "count seconds
// exactly, not rates of rates"), so ten bad seconds take exactly ten
// seconds off it. With no series in the window it has no result: a
// budget cannot be called intact when nothing was measured.
func budgetRecords(s Spec) []rulefmt.Rule {
	budget := num(s.budgetSeconds())
	spent := countOver(s.Cluster, errorSeconds, s.Window)
	return []rulefmt.Rule{
		{Record: RecordTarget, Expr: constant(num(s.Target/100), s.Cluster), Labels: recordLabels(s)},
		{Record: RecordBudget, Expr: constant(budget, s.Cluster), Labels: recordLabels(s)},
		{Record: RecordBudgetRemaining, Expr: budget + " - " + spent, Labels: recordLabels(s)},
		{Record: RecordBudgetRatio, Expr: "1 - " + spent + " / " + budget, Labels: recordLabels(s)},
	}
}

// recordLabels are the static labels of a cluster's recording rules. The
// expressions already yield the cluster label; writing it on the rule too
// tells rule linters (promtool's duplicate-rules check) that the same
// record name in every cluster's group is not a duplicate.
func recordLabels(s Spec) map[string]string { return map[string]string{"cluster": s.Cluster} }

// constant is a one-series vector with value v and label cluster.
func constant(v, cluster string) string {
	return fmt.Sprintf(`label_replace(vector(%s), "cluster", %s, "", "")`, v, strconv.Quote(cluster))
}
