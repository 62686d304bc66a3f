package dashboards

// drills shows what each failure drill (`nines drill`) measured: one
// sample per finished drill, at its end, labelled by scenario (the
// appliance's drillMetrics). The Stat panels show the latest drill of
// each scenario in the last 90 days, the time series every drill in the
// range.
func drills() Spec {
	latest := func(metric string) string {
		return `last_over_time(` + metric + `{` + selC + `}[90d])`
	}
	over := func(metric string) string {
		return `max by (cluster, scenario) (last_over_time(` + metric + `{` + selC + `}[$__interval]))`
	}
	const legend = "{{cluster}} {{scenario}}"
	return Spec{
		UID:         "nines-drills",
		Title:       "nines / Drills",
		Description: "Failure drills (a real kill -9 repaired by nines): detection time, RTO, longest write stall and RPO per scenario. Empty until a drill has run.",
		Kind:        KindGalera,
		AfterDrill:  true,
		Panels: []Panel{
			{Type: Stat, Title: "Latest RTO", Unit: "s", Width: 6, Steps: steps("green", 30, "orange", 60, "red"),
				Description: "From the kill to the cluster whole again (Galera: every node Synced; primary-kill: the old primary a replica of the new one), in the latest drill of each scenario. primary-kill's writes back is in the uptime report and nines_drill_failover_seconds.",
				Targets:     []Target{{Legend: legend, Expr: latest(`nines_drill_rto_seconds`)}}},
			{Type: Stat, Title: "Latest detection", Unit: "s", Width: 6, Steps: steps("green", 5, "orange", 15, "red"),
				Description: "From the kill to nines seeing the node down.",
				Targets:     []Target{{Legend: legend, Expr: latest(`nines_drill_detection_seconds`)}}},
			{Type: Stat, Title: "Latest longest write stall", Unit: "s", Width: 6, Steps: steps("green", 5, "orange", 30, "red"),
				Description: "The drill writer's longest wait between two acknowledged writes.",
				Targets:     []Target{{Legend: legend, Expr: latest(`nines_drill_write_stall_seconds`)}}},
			{Type: Stat, Title: "Latest RPO (acknowledged writes lost)", Unit: "short", Width: 6, Steps: steps("green", 1, "red"),
				Targets: []Target{{Legend: legend, Expr: latest(`nines_drill_lost_writes`)}}},
			{Type: TimeSeries, Title: "RTO per scenario", Unit: "s", Width: 12, Min: f(0), Steps: steps("green", 30, "orange", 60, "red"),
				Targets: []Target{{Legend: legend, Expr: over(`nines_drill_rto_seconds`)}}},
			{Type: TimeSeries, Title: "Detection per scenario", Unit: "s", Width: 12, Min: f(0), Steps: steps("green", 5, "orange", 15, "red"),
				Targets: []Target{{Legend: legend, Expr: over(`nines_drill_detection_seconds`)}}},
			{Type: TimeSeries, Title: "Longest write stall per scenario", Unit: "s", Width: 12, Min: f(0), Steps: steps("green", 5, "orange", 30, "red"),
				Targets: []Target{{Legend: legend, Expr: over(`nines_drill_write_stall_seconds`)}}},
			{Type: TimeSeries, Title: "RPO per scenario (acknowledged writes lost)", Unit: "short", Width: 12, Min: f(0), Steps: steps("green", 1, "red"),
				Targets: []Target{{Legend: legend, Expr: over(`nines_drill_lost_writes`)}}},
			{Type: Table, Title: "Drills in range", Unit: "short", Width: 24, Steps: steps("blue"),
				Description: "Drills that ended within the dashboard's range, by scenario.",
				Targets: []Target{{Instant: true,
					Expr: `count_over_time(nines_drill_rto_seconds{` + selC + `}[$__range])`}}},
		},
	}
}
