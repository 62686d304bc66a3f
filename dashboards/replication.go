package dashboards

// replication shows GTID replication: each replica's threads, lag and
// errant transactions, and which nodes take writes.
func replication() Spec {
	return Spec{
		UID:         "nines-replication",
		Title:       "nines / Replication",
		Description: "MySQL/MariaDB replication: replica threads, lag, errant GTIDs, writable nodes.",
		Kind:        KindReplication,
		Panels: []Panel{
			{Type: Stat, Title: "IO thread", Unit: "short", Width: 6, Mappings: runningStop,
				Steps:   steps("red", 1, "green"),
				Targets: []Target{{Legend: "{{instance}}", Expr: `mysql_slave_status_slave_io_running{` + selCI + `}`}}},
			{Type: Stat, Title: "SQL thread", Unit: "short", Width: 6, Mappings: runningStop,
				Steps:   steps("red", 1, "green"),
				Targets: []Target{{Legend: "{{instance}}", Expr: `mysql_slave_status_slave_sql_running{` + selCI + `}`}}},
			{Type: Stat, Title: "Errant GTIDs", Unit: "short", Width: 6,
				Description: "GTID streams on a replica that its primary does not have: writes made on the replica, which a failover would lose or replay.",
				Steps:       steps("green", 1, "red"),
				Targets:     []Target{{Legend: "{{instance}}", Expr: `nines_replication_errant_gtid{` + selCI + `}`}}},
			{Type: Stat, Title: "Writable nodes", Unit: "short", Width: 6,
				Description: "Nodes with read_only OFF; more than one means two primaries.",
				Steps:       steps("red", 1, "green", 2, "red"),
				Targets: []Target{{Legend: "{{cluster}}",
					Expr: `count by (cluster) (mysql_global_variables_read_only{` + selCI + `} == 0 and on (cluster, instance) mysql_up == 1)`}}},
			{Type: TimeSeries, Title: "Replication lag", Unit: "s", Width: 12, Min: f(0),
				Description: "Seconds_Behind_Master; no value while the SQL thread is stopped.",
				Steps:       steps("green", 10, "orange", 30, "red"),
				Targets:     []Target{{Legend: "{{instance}}", Expr: `mysql_slave_status_seconds_behind_master{` + selCI + `}`}}},
			{Type: TimeSeries, Title: "Relay log space", Unit: "bytes", Width: 12, Min: f(0),
				Targets: []Target{{Legend: "{{instance}}", Expr: `mysql_slave_status_relay_log_space{` + selCI + `}`}}},
			{Type: TimeSeries, Title: "Writes", Unit: "ops", Width: 12, Min: f(0),
				Targets: []Target{{Legend: "{{instance}}",
					Expr: `sum by (instance) (rate(mysql_global_status_commands_total{` + selCI + `, command=~"insert|update|delete|replace"}[$__rate_interval]))`}}},
			{Type: StateTimeline, Title: "Read-only", Unit: "short", Width: 12, Mappings: onOff,
				Steps:   steps("green"),
				Targets: []Target{{Legend: "{{instance}}", Expr: `mysql_global_variables_read_only{` + selCI + `}`}}},
			{Type: Table, Title: "Replication threads stopped", Unit: "short", Width: 24, FailureOnly: true, Mappings: runningStop,
				Description: "Replica threads that are not running right now; empty when replication runs.",
				Steps:       steps("red"),
				Targets: []Target{{Instant: true,
					Expr: `mysql_slave_status_slave_io_running{` + selCI + `} == 0 or mysql_slave_status_slave_sql_running{` + selCI + `} == 0`}}},
		},
	}
}
