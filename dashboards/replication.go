package dashboards

// replication shows GTID replication: each replica's threads, lag,
// positions and errant transactions, semi-sync, and which nodes take
// writes.
func replication() Spec {
	return Spec{
		UID:         "nines-replication",
		Title:       "nines / Replication",
		Description: "MySQL/MariaDB replication: replica threads, heartbeat lag, GTID positions, errant GTIDs, semi-sync, writable nodes.",
		Kind:        KindReplication,
		Panels: append([]Panel{
			{Type: Stat, Title: "IO thread", Unit: "short", Width: 6, Mappings: ioThread,
				Description: "Slave_IO_Running: Connecting means the replica retries a source it cannot reach.",
				Steps:       steps("red", 1, "green", 2, "orange"),
				Targets:     []Target{{Legend: "{{instance}}", Expr: `nines_replication_io_thread_state{` + selCI + `}`}}},
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
				Description: "Heartbeat lag: how old the newest probe write each node holds is, on the node's clock; about 1 s (the probe's interval) when caught up, the probe's write age on the primary. Seconds_Behind_Master for comparison: blind to what the IO thread has not received, no value while the SQL thread is stopped.",
				Steps:       steps("green", 10, "orange", 30, "red"),
				Targets: []Target{
					{Legend: "{{instance}}", Expr: `nines_replication_heartbeat_lag_seconds{` + selCI + `}`},
					{Legend: "{{instance}} Seconds_Behind_Master", Expr: `mysql_slave_status_seconds_behind_master{` + selCI + `}`},
				}},
			{Type: TimeSeries, Title: "GTID positions", Unit: "short", Width: 12,
				Description: "Last sequence number per domain and server: each node's binlog (gtid_binlog_pos) and what replicas applied (gtid_slave_pos). A replica's applied line below the primary's binlog line is transactions not applied yet.",
				Targets: []Target{
					{Legend: "{{instance}} binlog {{domain}}-{{server_id}}", Expr: `nines_replication_gtid_binlog_seq{` + selCI + `}`},
					{Legend: "{{instance}} applied {{domain}}-{{server_id}}", Expr: `nines_replication_gtid_slave_seq{` + selCI + `}`},
				}},
			{Type: StateTimeline, Title: "Semi-sync", Unit: "short", Width: 12, Mappings: onOff,
				Description: "Per node: semi-sync enabled (read every scrape) and Rpl_semi_sync_master_status; enabled ON with status OFF is a primary fallen back to async.",
				Steps:       steps("green"),
				Targets: []Target{
					{Legend: "{{instance}} enabled", Expr: `nines_replication_semi_sync_master_enabled{` + selCI + `}`},
					{Legend: "{{instance}} status", Expr: `mysql_global_status_rpl_semi_sync_master_status{` + selCI + `}`},
				}},
			{Type: TimeSeries, Title: "Semi-sync commits", Unit: "ops", Width: 12, Min: f(0),
				Description: "Commits a replica acknowledged (yes) and commits that went asynchronous (no), and the semi-sync replicas connected.",
				Targets: []Target{
					{Legend: "{{instance}} acknowledged", Expr: `rate(mysql_global_status_rpl_semi_sync_master_yes_tx{` + selCI + `}[$__rate_interval])`},
					{Legend: "{{instance}} async", Expr: `rate(mysql_global_status_rpl_semi_sync_master_no_tx{` + selCI + `}[$__rate_interval])`},
					{Legend: "{{instance}} clients", Expr: `mysql_global_status_rpl_semi_sync_master_clients{` + selCI + `}`},
				}},
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
		}, haproxyRow()...),
	}
}

// ioThread maps nines_replication_io_thread_state's documented values.
var ioThread = []Mapping{{"1", "Running", "green"}, {"0", "Stopped", "red"}, {"2", "Connecting", "orange"}}
