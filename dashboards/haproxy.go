package dashboards

// HAProxy panels: the load balancer in front of a Galera or replication
// cluster, from the stats nines reads over HAProxy's runtime API
// (exporter/haproxy.go). Their series carry the stats socket as instance,
// not a node's address, so they filter by cluster only.

// haproxyRow is the row of HAProxy panels that the Galera cluster and
// replication dashboards end with.
func haproxyRow() []Panel {
	const sel = `{` + selC + `}`
	ps := []Panel{
		{Type: Stat, Title: "HAProxy writer pool", Unit: "short", Width: 6,
			Description: "Servers of the writer backend that take new connections (backups included: a Galera writer listener counts every healthy node, though one takes the writes). 0: writes have nowhere to go (HAProxyWriterPoolEmpty pages).",
			Steps:       steps("red", 1, "green"),
			Targets:     []Target{{Legend: "{{cluster}} {{backend}}", Expr: `nines_haproxy_backend_active_servers{` + selC + `, pool="writer"}`}}},
		{Type: Stat, Title: "HAProxy runtime API", Unit: "short", Width: 6, Mappings: upDown,
			Description: "Whether nines read HAProxy's stats in the last scrape; Down means HAProxy is not running or its stats socket is gone.",
			Steps:       steps("red", 1, "green"),
			Targets:     []Target{{Legend: "{{cluster}}", Expr: `nines_haproxy_up` + sel}}},
		{Type: TimeSeries, Title: "Servers up per backend", Unit: "short", Width: 12, Min: f(0),
			Description: "Servers each backend sends new connections to, against the servers it has.",
			Targets: []Target{
				{Legend: "{{backend}} up", Expr: `nines_haproxy_backend_active_servers` + sel},
				{Legend: "{{backend}} configured", Expr: `count by (cluster, backend) (nines_haproxy_server_up` + sel + `)`},
			}},
		{Type: StateTimeline, Title: "Server state in HAProxy", Unit: "short", Width: 24, Mappings: upDown,
			Description: "Up: HAProxy sends new connections to the server; Down: its agent's health check failed twice, or it is in maintenance or drained.",
			Steps:       steps("red", 1, "green"),
			Targets:     []Target{{Legend: "{{backend}}/{{server}}", Expr: `nines_haproxy_server_up` + sel}}},
		{Type: TimeSeries, Title: "Current sessions per server", Unit: "short", Width: 12, Min: f(0),
			Description: "Client sessions HAProxy holds open to each server (scur); on a Galera writer backend they should all be on one node.",
			Targets:     []Target{{Legend: "{{backend}}/{{server}}", Expr: `nines_haproxy_server_sessions` + sel}}},
		{Type: TimeSeries, Title: "Connection errors", Unit: "ops", Width: 12, Min: f(0),
			Description: "Connections HAProxy failed to open to each server per second (econ): a node that died before its checks took it out.",
			Steps:       steps("green", 0.1, "red"),
			Targets:     []Target{{Legend: "{{backend}}/{{server}}", Expr: `rate(nines_haproxy_server_connection_errors_total` + sel + `[$__rate_interval])`}}},
	}
	for i := range ps {
		ps[i].HAProxy = true
		ps[i].Row = "HAProxy (empty for a cluster without an haproxy key)"
	}
	return ps
}
