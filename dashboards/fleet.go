package dashboards

// fleet is the first dashboard an operator opens: every cluster, whether
// its nodes answer, what is left of its error budget, and whether nines
// may still repair it.
func fleet() Spec {
	return Spec{
		UID:         "nines-fleet",
		Title:       "nines / Fleet overview",
		Description: "Every monitored cluster: nodes up, availability, error budget, remediation.",
		Panels: []Panel{
			{Type: Stat, Title: "Clusters", Unit: "short", Width: 4, Steps: steps("blue"),
				Targets: []Target{{Expr: `count(nines_cluster_info{` + selC + `})`}}},
			{Type: Stat, Title: "Nodes up / configured", Unit: "percentunit", Width: 6, Min: f(0), Max: f(1),
				Description: "Nodes answering SHOW GLOBAL STATUS as a share of the nodes configured, per cluster. Below 100 % a node is down.",
				Steps:       steps("red", 0.5, "orange", 1, "green"),
				Targets: []Target{{Legend: "{{cluster}}",
					Expr: `sum by (cluster) (mysql_up{` + selC + `}) / on (cluster) max by (cluster) (nines_cluster_nodes{` + selC + `})`}}},
			{Type: Stat, Title: "Error budget remaining", Unit: "percentunit", Width: 7,
				Description: "Share of the SLO window's error budget left; red once the SLO is breached.",
				Steps:       steps("red", 0, "orange", 0.25, "green"),
				Targets:     []Target{{Legend: "{{cluster}}", Expr: `nines_slo_error_budget_remaining_ratio{` + selC + `}`}}},
			{Type: Stat, Title: "Remediation", Unit: "short", Width: 7, Mappings: haltedActive,
				Description: "Halted: automatic repair stopped after too many recoveries in its window; a human resumes it.",
				Steps:       steps("green", 1, "red"),
				Targets:     []Target{{Legend: "{{cluster}}", Expr: `nines_remediation_halted{` + selC + `}`}}},
			{Type: StateTimeline, Title: "Nodes up", Unit: "short", Width: 24, Mappings: upDown,
				Steps:   steps("red", 1, "green"),
				Targets: []Target{{Legend: "{{cluster}} {{instance}}", Expr: `mysql_up{` + selCI + `}`}}},
			{Type: TimeSeries, Title: "Availability (SLI, 5 m)", Unit: "percentunit", Width: 12, Max: f(1),
				Description: "Share of good seconds of the write probe over 5 minutes.",
				Steps:       steps("red", 0.99999, "green"),
				Targets:     []Target{{Legend: "{{cluster}}", Expr: `1 - nines_slo:error_ratio:rate5m{` + selC + `}`}}},
			{Type: TimeSeries, Title: "Probe write latency", Unit: "s", Width: 12, Min: f(0),
				Description: "Wall time of each endpoint's last write probe; a write slower than 1 s is a failed second.",
				Steps:       steps("green", 0.5, "orange", 1, "red"),
				Targets:     []Target{{Legend: "{{cluster}} {{instance}}", Expr: `nines_probe_duration_seconds{` + selCI + `}`}}},
			{Type: Table, Title: "Nodes down", Unit: "short", Width: 24, FailureOnly: true, Mappings: upDown,
				Description: "Nodes that do not answer right now; empty when all are up.",
				Steps:       steps("red"),
				Targets:     []Target{{Instant: true, Expr: `mysql_up{` + selCI + `} == 0`}}},
			{Type: Table, Title: "Alerts firing", Unit: "short", Width: 24, FailureOnly: true,
				Description: "Alerts of the selected clusters firing now, from nines' rule evaluation (ALERTS, as Prometheus writes it).",
				Steps:       steps("red"),
				Targets:     []Target{{Instant: true, Expr: `ALERTS{alertstate="firing", ` + selC + `}`}}},
		},
	}
}
