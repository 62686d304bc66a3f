package dashboards

// The NDB dashboards read two sources of one cluster: the management
// server's `get status` (nines_ndb_*, every node as ndb_mgmd sees it) and
// ndbinfo read through one SQL node per round (mysql_ndbinfo_*, the names
// of the mysqld_exporter ndbinfo fork, so its dashboards work on nines
// too). Both are read once per cluster, not per scraped server, so their
// panels follow the cluster variable only; the instance variable lists the
// SQL nodes, whose own panels (queries, probe) filter by it.

// ndbNodeStatus maps nines_ndb_node_status, mgmapi's status table in
// order (ndb.NodeStatus).
var ndbNodeStatus = []Mapping{
	{"0", "UNKNOWN", "purple"}, {"1", "NO_CONTACT", "red"}, {"2", "NOT_STARTED", "red"},
	{"3", "STARTING", "blue"}, {"4", "STARTED", "green"}, {"5", "SHUTTING_DOWN", "orange"},
	{"6", "RESTARTING", "blue"}, {"7", "SINGLEUSER", "yellow"}, {"8", "RESUME", "blue"},
	{"9", "CONNECTED", "green"},
}

// ndbArbState maps ndbinfo.membership's arb_state values nines reads.
var ndbArbState = []Mapping{
	{"0", "ARBIT_NULL", "red"}, {"1", "ARBIT_INIT", "orange"}, {"2", "ARBIT_FIND", "orange"},
	{"3", "ARBIT_PREP1", "orange"}, {"4", "ARBIT_PREP2", "orange"}, {"5", "ARBIT_START", "orange"},
	{"6", "ARBIT_RUN", "green"}, {"7", "ARBIT_CHOOSE", "orange"}, {"8", "ARBIT_CRASH", "red"},
}

// ndbTransporterStatus maps mysql_ndbinfo_transporters_status.
var ndbTransporterStatus = []Mapping{
	{"0", "CONNECTED", "green"}, {"1", "CONNECTING", "orange"},
	{"2", "DISCONNECTED", "red"}, {"3", "DISCONNECTING", "orange"},
}

// usableDataMemory is the share of DataMemory rows may use: NDB keeps
// MinFreePct (5 %) for restarts, as the rule pack ndb reasons.
const usableDataMemory = `(0.95 * mysql_ndbinfo_memoryusage_total{` + selC + `, memory_type="Data memory"})`

// ndbOverview is an NDB cluster at a glance: can it serve, which node
// groups are down to one node, the management server and arbitration.
func ndbOverview() Spec {
	return Spec{
		UID:         "nines-ndb-overview",
		Title:       "nines / NDB overview",
		Description: "An NDB cluster: node groups, data node states, management server, arbitration, SQL nodes.",
		Kind:        KindNDB,
		Panels: []Panel{
			{Type: Stat, Title: "Node groups serving", Unit: "percentunit", Width: 6, Min: f(0), Max: f(1),
				Description: "Node groups with at least one STARTED data node, of all node groups. NDB needs every node group: one lost stops the cluster.",
				Steps:       steps("red", 1, "green"),
				Targets: []Target{{Legend: "{{cluster}}",
					Expr: `count by (cluster) (nines_ndb_node_group_nodes_started{` + selC + `} > 0) / count by (cluster) (nines_ndb_node_group_nodes{` + selC + `})`}}},
			{Type: Stat, Title: "Data nodes started", Unit: "short", Width: 6,
				Description: "Data nodes that serve (STARTED or single user mode) of the data nodes configured.",
				Steps:       steps("red", 1, "green"),
				Targets: []Target{{Legend: "{{cluster}}",
					Expr: `sum by (cluster) (nines_ndb_node_up{` + selC + `, type="NDB"})`}}},
			{Type: Stat, Title: "Management server", Unit: "short", Width: 6, Mappings: upDown,
				Description: "1 when a management server answered get status. Data nodes run on without it, but nobody can restart, stop or back them up.",
				Steps:       steps("red", 1, "green"),
				Targets:     []Target{{Legend: "{{instance}}", Expr: `nines_ndb_mgm_up{` + selC + `}`}}},
			{Type: Stat, Title: "Arbitration", Unit: "short", Width: 6, Mappings: ndbArbState,
				Description: "arb_state as the data nodes report it (ndbinfo.membership): ARBIT_RUN means an arbitrator is chosen and a network split cannot leave two halves running.",
				Steps:       steps("red", 6, "green", 7, "orange"),
				Targets:     []Target{{Legend: "node {{node_id}}", Expr: `mysql_ndbinfo_membership_arb_state{` + selC + `}`}}},
			{Type: StateTimeline, Title: "Data node status", Unit: "short", Width: 24, Mappings: ndbNodeStatus,
				Description: "Each data node as the management server sees it: STARTED serves; STARTING walks the start phases after a restart.",
				Steps:       steps("red", 3, "blue", 4, "green", 5, "orange"),
				Targets:     []Target{{Legend: "node {{node_id}} group {{node_group}}", Expr: `nines_ndb_node_status{` + selC + `, type="NDB"}`}}},
			{Type: TimeSeries, Title: "Started nodes per node group", Unit: "short", Width: 12, Min: f(0),
				Description: "One left means one more failure stops the cluster; none means it has stopped.",
				Steps:       steps("red", 1, "orange", 2, "green"),
				Targets:     []Target{{Legend: "group {{node_group}}", Expr: `nines_ndb_node_group_nodes_started{` + selC + `}`}}},
			{Type: StateTimeline, Title: "SQL and management nodes", Unit: "short", Width: 12, Mappings: upDown,
				Description: "API (SQL) and management nodes connected to the cluster, as the management server sees them.",
				Steps:       steps("red", 1, "green"),
				Targets:     []Target{{Legend: "{{type}} {{node_id}}", Expr: `nines_ndb_node_up{` + selC + `, type=~"API|MGM"}`}}},
			{Type: Table, Title: "Node groups with one node left", Unit: "short", Width: 12, FailureOnly: true,
				Description: "Node groups down to their last data node: one more failure stops the cluster.",
				Steps:       steps("orange"),
				Targets:     []Target{{Instant: true, Expr: `nines_ndb_node_group_nodes_started{` + selC + `} == 1 and on (cluster, instance, node_group) nines_ndb_node_group_nodes > 1`}}},
			{Type: Table, Title: "Data nodes down", Unit: "short", Width: 12, FailureOnly: true, Mappings: ndbNodeStatus,
				Description: "Data nodes not serving right now; the remediator restarts them in mode auto.",
				Steps:       steps("red"),
				Targets:     []Target{{Instant: true, Expr: `nines_ndb_node_status{` + selC + `, type="NDB"} <= 2`}}},
			{Type: TimeSeries, Title: "Probe writes through the SQL nodes", Unit: "ops", Width: 24, Min: f(0),
				Description: "The synthetic write probe through each SQL node: the SLI. Failed writes are what an application saw.",
				Targets: []Target{
					{Legend: "acknowledged {{instance}}", Expr: `rate(nines_probe_writes_acknowledged_total{` + selCI + `}[$__rate_interval])`},
					{Legend: "failed {{instance}}", Expr: `rate(nines_probe_writes_failed_total{` + selCI + `}[$__rate_interval])`},
				}},
		},
	}
}

// ndbDataNodes is each data node in detail: start phases, restarts,
// uptime, configuration generation and kernel activity.
func ndbDataNodes() Spec {
	return Spec{
		UID:         "nines-ndb-data-nodes",
		Title:       "nines / NDB data nodes",
		Description: "NDB data nodes: start phases, reconnects, uptime, config generation, operations per block.",
		Kind:        KindNDB,
		Panels: []Panel{
			{Type: TimeSeries, Title: "Start phase", Unit: "short", Width: 12, Min: f(0),
				Description: "The start phase of each data node while it starts (0 to 101 in NDB 8); a node stuck in one phase for long needs a look at its log.",
				Targets:     []Target{{Legend: "node {{node_id}}", Expr: `nines_ndb_node_start_phase{` + selC + `}`}}},
			{Type: TimeSeries, Title: "Reconnects", Unit: "short", Width: 12, Min: f(0),
				Description: "Times each node (re)connected to the management server in the interval: a node that keeps reconnecting flaps.",
				Targets:     []Target{{Legend: "{{type}} {{node_id}}", Expr: `increase(nines_ndb_node_connect_count{` + selC + `}[$__rate_interval])`}}},
			{Type: TimeSeries, Title: "Uptime", Unit: "s", Width: 12, Min: f(0),
				Description: "Seconds since each data node's process started (ndbinfo.nodes); a drop is a restart.",
				Targets:     []Target{{Legend: "node {{node_id}}", Expr: `mysql_ndbinfo_nodes_uptime{` + selC + `}`}}},
			{Type: Stat, Title: "Config generation", Unit: "short", Width: 12,
				Description: "Configuration generation each data node runs; different values mean a rolling restart has not reached every node.",
				Steps:       steps("blue"),
				Targets:     []Target{{Legend: "node {{node_id}}", Expr: `mysql_ndbinfo_nodes_config_generation{` + selC + `}`}}},
			{Type: TimeSeries, Title: "Operations per block", Unit: "ops", Width: 24, Min: f(0),
				Description: "Kernel counters per data node and block (ndbinfo.counters): reads, writes, scans, transactions.",
				Targets: []Target{{Legend: "node {{node_id}} {{block_name}} {{counter_name}}",
					Expr: `rate(mysql_ndbinfo_counters{` + selC + `}[$__rate_interval])`}}},
			{Type: Table, Title: "Nodes restarting", Unit: "short", Width: 24, FailureOnly: true,
				Description: "Data nodes in a start phase right now.",
				Steps:       steps("blue"),
				Targets:     []Target{{Instant: true, Expr: `nines_ndb_node_start_phase{` + selC + `} > 0 and on (cluster, node_id) nines_ndb_node_up{type="NDB"} == 0`}}},
		},
	}
}

// ndbMemoryRedo is where NDB runs out first: DataMemory (error 827 when
// full) and the redo log (error 410) and its buffer (error 1221).
func ndbMemoryRedo() Spec {
	return Spec{
		UID:         "nines-ndb-memory-redo",
		Title:       "nines / NDB memory and redo",
		Description: "NDB DataMemory against the usable 95 %, redo log parts and redo buffers, resources.",
		Kind:        KindNDB,
		Panels: []Panel{
			{Type: TimeSeries, Title: "DataMemory used of usable", Unit: "percentunit", Width: 12, Min: f(0), Max: f(1),
				Description: "Data memory in use over the 95 % rows may use (5 % is kept for restarts). Warning at 80 %, critical at 90 %; at 100 % writes fail with error 827.",
				Steps:       steps("green", 0.8, "orange", 0.9, "red"),
				Targets: []Target{{Legend: "node {{node_id}}",
					Expr: `mysql_ndbinfo_memoryusage_used{` + selC + `, memory_type="Data memory"} / ` + usableDataMemory}}},
			{Type: TimeSeries, Title: "Memory pools", Unit: "bytes", Width: 12, Min: f(0),
				Description: "Bytes in use of each memory pool (ndbinfo.memoryusage).",
				Targets: []Target{{Legend: "node {{node_id}} {{memory_type}}",
					Expr: `mysql_ndbinfo_memoryusage_used{` + selC + `}`}}},
			{Type: TimeSeries, Title: "Redo log parts", Unit: "percentunit", Width: 12, Min: f(0), Max: f(1),
				Description: "Each redo log part's fill; over 80 % means local checkpoints do not keep up, and a full part fails writes with error 410.",
				Steps:       steps("green", 0.8, "red"),
				Targets: []Target{{Legend: "node {{node_id}} part {{log_part}}",
					Expr: `mysql_ndbinfo_logspaces_bytes_used{` + selC + `, log_type="REDO"} / mysql_ndbinfo_logspaces_bytes_total{` + selC + `, log_type="REDO"}`}}},
			{Type: TimeSeries, Title: "Redo buffers", Unit: "percentunit", Width: 12, Min: f(0), Max: f(1),
				Description: "Redo log buffer fill; a full buffer fails transactions with error 1221 (the disk does not keep up).",
				Steps:       steps("green", 0.9, "red"),
				Targets: []Target{{Legend: "node {{node_id}} part {{log_part}}",
					Expr: `mysql_ndbinfo_logbuffers_bytes_used{` + selC + `, log_type="REDO"} / mysql_ndbinfo_logbuffers_bytes_total{` + selC + `, log_type="REDO"}`}}},
			{Type: TimeSeries, Title: "Resources", Unit: "short", Width: 24, Min: f(0),
				Description: "32 KB pages of each kernel resource in use (ndbinfo.resources).",
				Targets: []Target{{Legend: "node {{node_id}} {{resource_name}}",
					Expr: `mysql_ndbinfo_resources_used{` + selC + `}`}}},
			{Type: Table, Title: "DataMemory over 80 % of usable", Unit: "percentunit", Width: 24, FailureOnly: true,
				Description: "Data nodes whose data memory is over the warning threshold right now.",
				Steps:       steps("orange", 0.9, "red"),
				Targets: []Target{{Instant: true,
					Expr: `mysql_ndbinfo_memoryusage_used{` + selC + `, memory_type="Data memory"} / ` + usableDataMemory + ` > 0.8`}}},
		},
	}
}

// ndbTransporters are the links between nodes: who reaches whom, traffic,
// overload.
func ndbTransporters() Spec {
	return Spec{
		UID:         "nines-ndb-transporters",
		Title:       "nines / NDB transporters",
		Description: "NDB transporters: link status between nodes, bytes sent and received, overload and slowdown.",
		Kind:        KindNDB,
		Panels: []Panel{
			{Type: StateTimeline, Title: "Link status", Unit: "short", Width: 24, Mappings: ndbTransporterStatus,
				Description: "Each data node's link to each other node (ndbinfo.transporters): CONNECTING means the peer is gone or unreachable.",
				Steps:       steps("green", 1, "orange", 2, "red"),
				Targets:     []Target{{Legend: "{{node_id}} → {{remote_node_id}}", Expr: `mysql_ndbinfo_transporters_status{` + selC + `}`}}},
			{Type: TimeSeries, Title: "Bytes sent", Unit: "Bps", Width: 12, Min: f(0),
				Targets: []Target{{Legend: "{{node_id}} → {{remote_node_id}}", Expr: `rate(mysql_ndbinfo_transporters_bytes_sent{` + selC + `}[$__rate_interval])`}}},
			{Type: TimeSeries, Title: "Bytes received", Unit: "Bps", Width: 12, Min: f(0),
				Targets: []Target{{Legend: "{{node_id}} ← {{remote_node_id}}", Expr: `rate(mysql_ndbinfo_transporters_bytes_received{` + selC + `}[$__rate_interval])`}}},
			{Type: TimeSeries, Title: "Overloaded and slowed links", Unit: "short", Width: 24, Min: f(0),
				Description: "Links whose send buffer is over OverloadLimit (new transactions fail with error 1218) or over 60 % of it (slowdown).",
				Steps:       steps("green", 1, "red"),
				Targets: []Target{
					{Legend: "overloaded {{node_id}} → {{remote_node_id}}", Expr: `mysql_ndbinfo_transporters_overloaded{` + selC + `}`},
					{Legend: "slowdown {{node_id}} → {{remote_node_id}}", Expr: `mysql_ndbinfo_transporters_slowdown{` + selC + `}`},
				}},
			{Type: Table, Title: "Links not connected", Unit: "short", Width: 24, FailureOnly: true, Mappings: ndbTransporterStatus,
				Description: "Links between nodes that are not CONNECTED right now.",
				Steps:       steps("red"),
				Targets:     []Target{{Instant: true, Expr: `mysql_ndbinfo_transporters_status{` + selC + `} > 0`}}},
		},
	}
}
