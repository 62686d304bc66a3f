package dashboards

// queryAnalytics shows what the statements of each node cost, from the
// statement digests nines reads every 10 s (exporter/qan): one sample per
// counter per digest of the interval's busiest ones, each the interval's
// work. A minute's sum over 60 is the per-second rate (a digest missing
// from an interval's top N did little then); topk_avg keeps the digests
// busiest over the whole range, not at each point. The
// console's query analytics page shows each digest's text.
func queryAnalytics() Spec {
	perSecond := func(metric string) string {
		return `topk_avg(10, sum by (cluster, schema, digest) (sum_over_time(` + metric + `{` + selCI + `}[1m]))) / 60`
	}
	inRange := func(metric string) string {
		return `topk(20, sum by (cluster, schema, digest) (sum_over_time(` + metric + `{` + selCI + `}[$__range])))`
	}
	const legend = "{{schema}} {{digest}}"
	return Spec{
		UID:         "nines-query-analytics",
		Title:       "nines / Query analytics",
		Description: "Statement digests per node (performance_schema): time, calls, rows examined and sent, errors, full scans and temporary tables on disk. The console's query analytics page shows each digest's text.",
		Panels: []Panel{
			{Type: Stat, Title: "Statement digests read", Unit: "short", Width: 24, Height: 4, Mappings: onOff,
				Description: "ON when nines reads the node's statement digests (performance_schema and its digest consumer on); OFF leaves this dashboard empty for the node.",
				Steps:       steps("red", 1, "green"),
				Targets:     []Target{{Legend: "{{instance}}", Expr: `nines_query_digests_enabled{` + selCI + `}`}}},
			{Type: Table, Title: "Top digests by statement time in range", Unit: "s", Width: 12, Steps: steps("blue"),
				Targets: []Target{{Instant: true, Expr: inRange(`nines_query_digest_seconds`)}}},
			{Type: Table, Title: "Top digests by calls in range", Unit: "short", Width: 12, Steps: steps("blue"),
				Targets: []Target{{Instant: true, Expr: inRange(`nines_query_digest_calls`)}}},
			{Type: TimeSeries, Title: "Statement time by digest", Unit: "s", Width: 12, Min: f(0), Stacked: true, Steps: steps("green"),
				Description: "Seconds spent in statements of each digest per second, over a minute: 1 is one session busy all the time. The 10 busiest over the range.",
				Targets:     []Target{{Legend: legend, Expr: perSecond(`nines_query_digest_seconds`)}}},
			{Type: TimeSeries, Title: "Calls by digest", Unit: "ops", Width: 12, Min: f(0), Stacked: true, Steps: steps("green"),
				Targets: []Target{{Legend: legend, Expr: perSecond(`nines_query_digest_calls`)}}},
			{Type: TimeSeries, Title: "Rows examined vs rows sent", Unit: "short", Width: 12, Min: f(0), Steps: steps("green"),
				Description: "Rows read per second against rows returned, per node: many more examined than sent means a missing or unused index.",
				Targets: []Target{
					{Legend: "{{instance}} examined", Expr: `sum by (cluster, instance) (sum_over_time(nines_query_digest_rows_examined{` + selCI + `}[1m])) / 60`},
					{Legend: "{{instance}} sent", Expr: `sum by (cluster, instance) (sum_over_time(nines_query_digest_rows_sent{` + selCI + `}[1m])) / 60`},
				}},
			{Type: TimeSeries, Title: "Rows examined per row sent by digest", Unit: "short", Width: 12, Min: f(0), Steps: steps("green", 100, "orange", 10000, "red"),
				Description: "The 10 digests examining the most rows, each as rows examined per row sent (over the row sent, at least 1).",
				Targets: []Target{{Legend: legend,
					Expr: `topk_avg(10, sum by (cluster, schema, digest) (sum_over_time(nines_query_digest_rows_examined{` + selCI + `}[1m])) / clamp_min(sum by (cluster, schema, digest) (sum_over_time(nines_query_digest_rows_sent{` + selCI + `}[1m])), 1))`}}},
			{Type: TimeSeries, Title: "Errors by digest", Unit: "ops", Width: 8, Min: f(0), Steps: steps("green"),
				Description: "Statements of each digest that ended with an error, per second.",
				Targets:     []Target{{Legend: legend, Expr: perSecond(`nines_query_digest_errors`)}}},
			{Type: TimeSeries, Title: "Full scans by digest", Unit: "ops", Width: 8, Min: f(0), Steps: steps("green"),
				Description: "Full scans of a first table by statements of each digest, per second.",
				Targets:     []Target{{Legend: legend, Expr: perSecond(`nines_query_digest_full_scans`)}}},
			{Type: TimeSeries, Title: "Temporary tables on disk by digest", Unit: "ops", Width: 8, Min: f(0), Steps: steps("green"),
				Description: "Temporary tables written to disk by statements of each digest, per second: a sort or GROUP BY too large for tmp_table_size.",
				Targets:     []Target{{Legend: legend, Expr: perSecond(`nines_query_digest_tmp_disk_tables`)}}},
		},
	}
}
