package dashboards

// self shows nines itself: whether its scrapes succeed and keep their
// second, its store, rule evaluation and notifications.
func self() Spec {
	return Spec{
		UID:         "nines-self",
		Title:       "nines / nines itself",
		Description: "The appliance: scrapes, store, rule evaluation, notifications.",
		Panels: []Panel{
			{Type: Stat, Title: "Uptime", Unit: "s", Width: 6, Steps: steps("orange", 300, "green"),
				Targets: []Target{{Legend: "{{instance}}", Expr: `time() - max by (instance) (nines_start_time_seconds)`}}},
			{Type: Stat, Title: "Store free disk", Unit: "bytes", Width: 6,
				Description: "Free space under data_dir; NinesStoreDiskLow fires below 1 GiB.",
				Steps:       steps("red", 1073741824, "orange", 5368709120, "green"),
				Targets:     []Target{{Legend: "{{instance}}", Expr: `nines_store_free_disk_bytes`}}},
			{Type: Stat, Title: "Scrapes failing", Unit: "short", Width: 6,
				Description: "Nodes that answer but whose scrape did not fully succeed (a statement failed or a value did not parse).",
				Steps:       steps("green", 1, "red"),
				Targets: []Target{{Legend: "{{cluster}}",
					Expr: `sum by (cluster) ((1 - nines_scrape_success{` + selCI + `}) * on (cluster, instance) mysql_up{` + selCI + `})`}}},
			{Type: Stat, Title: "Samples written", Unit: "ops", Width: 6, Steps: steps("blue"),
				Targets: []Target{{Legend: "{{instance}}", Expr: `rate(nines_store_samples_written_total[$__rate_interval])`}}},
			{Type: TimeSeries, Title: "Scrape duration", Unit: "s", Width: 12, Min: f(0),
				Description: "Per node and scrape, connect included; the timeout is 0.8 s by default.",
				Steps:       steps("green", 0.5, "orange", 0.8, "red"),
				Targets:     []Target{{Legend: "{{cluster}} {{instance}}", Expr: `nines_scrape_duration_seconds{` + selCI + `}`}}},
			{Type: TimeSeries, Title: "Scrape age", Unit: "s", Width: 12, Min: f(0),
				Description: "Seconds since each node's latest scrape started; above a few intervals the scraper is stuck.",
				Steps:       steps("green", 3, "orange", 10, "red"),
				Targets:     []Target{{Legend: "{{cluster}} {{instance}}", Expr: `time() - nines_scrape_timestamp_seconds{` + selCI + `}`}}},
			{Type: StateTimeline, Title: "Scrape success", Unit: "short", Width: 24, Mappings: okFailed,
				Steps:   steps("red", 1, "green"),
				Targets: []Target{{Legend: "{{cluster}} {{instance}}", Expr: `nines_scrape_success{` + selCI + `}`}}},
			{Type: TimeSeries, Title: "Rule group failures", Unit: "short", Width: 8, Min: f(0),
				Description: "Failed evaluations per interval and group.",
				Steps:       steps("green", 1, "red"),
				Targets:     []Target{{Legend: "{{group}}", Expr: `increase(nines_rule_group_failures_total[$__rate_interval])`}}},
			{Type: TimeSeries, Title: "Notifications", Unit: "ops", Width: 8, Min: f(0),
				Targets: []Target{
					{Legend: "sent", Expr: `sum(rate(nines_notifications_sent_total[$__rate_interval]))`},
					{Legend: "failed", Expr: `sum(rate(nines_notifications_failed_total[$__rate_interval]))`},
				}},
			{Type: TimeSeries, Title: "Variables age", Unit: "s", Width: 8, Min: f(0),
				Description: "Age of the SHOW GLOBAL VARIABLES values used in each scrape (re-read every minute by default).",
				Targets:     []Target{{Legend: "{{instance}}", Expr: `nines_variables_age_seconds{` + selCI + `}`}}},
		},
	}
}
