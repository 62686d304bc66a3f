package dashboards

// slo shows each cluster's availability objective and what is left of
// its error budget, from the SLO recording rules (rules/slo) and the
// write probe's SLI counters.
func slo() Spec {
	return Spec{
		UID:         "nines-slo",
		Title:       "nines / SLO and error budget",
		Description: "Availability target, error budget and burn rates, from the write probe's good, bad and unknown seconds.",
		Panels: []Panel{
			{Type: Stat, Title: "Target", Unit: "percentunit", Width: 4, Steps: steps("blue"),
				Targets: []Target{{Legend: "{{cluster}}", Expr: `nines_slo_target{` + selC + `}`}}},
			{Type: Stat, Title: "Error budget", Unit: "s", Width: 5, Steps: steps("blue"),
				Description: "Bad or unknown seconds the SLO window allows: 25.9 s in 30 days at 99.999 %.",
				Targets:     []Target{{Legend: "{{cluster}}", Expr: `nines_slo_error_budget_seconds{` + selC + `}`}}},
			{Type: Stat, Title: "Budget remaining", Unit: "s", Width: 5,
				Steps:   steps("red", 0, "green"),
				Targets: []Target{{Legend: "{{cluster}}", Expr: `nines_slo_error_budget_remaining_seconds{` + selC + `}`}}},
			{Type: Stat, Title: "Budget remaining (share)", Unit: "percentunit", Width: 5,
				Steps:   steps("red", 0, "orange", 0.25, "green"),
				Targets: []Target{{Legend: "{{cluster}}", Expr: `nines_slo_error_budget_remaining_ratio{` + selC + `}`}}},
			{Type: Stat, Title: "Bad and unknown seconds in range", Unit: "s", Width: 5,
				Steps: steps("green", 1, "red"),
				Targets: []Target{{Legend: "{{cluster}}",
					Expr: `sum by (cluster) (increase(nines_probe_seconds_total{` + selC + `, result=~"bad|unknown"}[$__range]))`}}},
			{Type: TimeSeries, Title: "Error ratio by window", Unit: "percentunit", Width: 12, Min: f(0),
				Description: "Share of bad and unknown seconds over each burn-rate window.",
				Targets: []Target{{Legend: "{{cluster}} {{__name__}}",
					Expr: `{__name__=~"nines_slo:error_ratio:rate.+", ` + selC + `}`}}},
			{Type: TimeSeries, Title: "Burn rate (1 h)", Unit: "short", Width: 12, Min: f(0),
				Description: "How fast the budget is spent: 1 spends it exactly over the SLO window; 14.4 pages (the SRE Workbook's fast window).",
				Steps:       steps("green", 1, "orange", 14.4, "red"),
				Targets: []Target{{Legend: "{{cluster}}",
					Expr: `nines_slo:error_ratio:rate1h{` + selC + `} / on (cluster, slo_window) (1 - nines_slo_target{` + selC + `})`}}},
			{Type: TimeSeries, Title: "SLI seconds by result", Unit: "s", Width: 12, Min: f(0), Stacked: true,
				Description: "Wall-clock seconds counted good, bad or unknown per interval; every second is counted once.",
				Targets: []Target{{Legend: "{{cluster}} {{result}}",
					Expr: `sum by (cluster, result) (increase(nines_probe_seconds_total{` + selC + `}[$__rate_interval]))`}}},
			{Type: TimeSeries, Title: "Endpoint probe success", Unit: "short", Width: 12, Min: f(0), Max: f(1), Mappings: okFailed,
				Steps:   steps("red", 1, "green"),
				Targets: []Target{{Legend: "{{instance}}", Expr: `nines_probe_success{` + selCI + `}`}}},
			{Type: TimeSeries, Title: "Failed probe writes by endpoint", Unit: "short", Width: 24, FailureOnly: true, Min: f(0),
				Description: "Writes through an endpoint that were not acknowledged, per interval; empty while every write succeeds.",
				Steps:       steps("green", 1, "red"),
				Targets: []Target{{Legend: "{{instance}}",
					Expr: `increase(nines_probe_writes_failed_total{` + selCI + `}[$__rate_interval]) > 0`}}},
		},
	}
}
