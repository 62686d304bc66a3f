package exporter

import (
	"fmt"
	"testing"

	"github.com/nines-project/nines"
)

func driftSnap(instance string, vars map[string]string) *nines.Snapshot {
	return &nines.Snapshot{Instance: instance, Up: true, Variables: vars}
}

// TestConfigDrift: what differs by design (identity, paths, the node's
// own provider options, a replica's read_only) is not drift; a setting
// changed on one node is, named with every node's value.
func TestConfigDrift(t *testing.T) {
	c := nines.Cluster{Name: "g", Kind: nines.KindGalera, Nodes: []nines.Node{{Address: "a:3306"}, {Address: "b:3306"}, {Address: "c:3306"}}}
	base := func(node, port string) map[string]string {
		return map[string]string{
			"server_id": node, "wsrep_node_name": "n" + node, "datadir": "/srv/" + node, "log_error": "/srv/" + node + "/err.log",
			"wsrep_provider_options": "base_host = 10.0.0." + node + "; base_port = " + port + "; gcache.size = 128M; gcache.dir = /srv/" + node + "; evs.suspect_timeout = PT5S",
			"wsrep_cluster_address":  "gcomm://10.0.0.1,10.0.0.2,10.0.0.3",
			"sql_mode":               "STRICT_TRANS_TABLES", "innodb_flush_log_at_trx_commit": "1", "read_only": "OFF",
		}
	}
	a, b, cc := base("1", "4567"), base("2", "4568"), base("3", "4569")
	cc["wsrep_cluster_address"] = "gcomm://10.0.0.3,10.0.0.1,10.0.0.2" // same members, another order
	snaps := []*nines.Snapshot{driftSnap("a:3306", a), driftSnap("b:3306", b), driftSnap("c:3306", cc), driftSnap("dr:3306", map[string]string{"sql_mode": "x"})}
	if d := ConfigDrift(c, snaps); len(d) != 0 {
		t.Fatalf("drift on nodes that agree: %+v", d)
	}

	b["innodb_flush_log_at_trx_commit"] = "2"
	b["wsrep_provider_options"] = "base_host = 10.0.0.2; base_port = 4568; gcache.size = 1G; gcache.dir = /srv/2; evs.suspect_timeout = PT5S"
	delete(cc, "sql_mode")
	d := ConfigDrift(c, snaps)
	if len(d) != 3 || d[0].Variable != "innodb_flush_log_at_trx_commit" || d[1].Variable != "sql_mode" || d[2].Variable != "wsrep_provider_options" {
		t.Fatalf("drift = %+v, want innodb_flush_log_at_trx_commit, sql_mode, wsrep_provider_options", d)
	}
	if d[0].Values["b:3306"] != "2" || d[0].Values["a:3306"] != "1" {
		t.Errorf("values %v", d[0].Values)
	}
	if d[1].Values["c:3306"] != "(not set)" {
		t.Errorf("a variable missing on a node: %v", d[1].Values)
	}
	if got := d[2].Values["b:3306"]; got != "evs.suspect_timeout = PT5S; gcache.size = 1G" {
		t.Errorf("normalized provider options %q", got)
	}

	// Replication: the primary is writable, its replicas read_only.
	r := nines.Cluster{Name: "r", Kind: nines.KindReplication, Nodes: c.Nodes[:2]}
	p, q := base("1", "0"), base("2", "0")
	q["read_only"] = "ON"
	if d := ConfigDrift(r, []*nines.Snapshot{driftSnap("a:3306", p), driftSnap("b:3306", q)}); len(d) != 0 {
		t.Errorf("a replica's read_only reported as drift: %+v", d)
	}
	// One node read: nothing to compare.
	if d := ConfigDrift(c, snaps[:1]); d != nil {
		t.Errorf("drift of one node: %+v", d)
	}
}

// BenchmarkConfigDrift: one cluster of three nodes with 650 variables
// that agree, as selfMetrics compares them every second.
func BenchmarkConfigDrift(b *testing.B) {
	c := nines.Cluster{Name: "g", Kind: nines.KindGalera, Nodes: []nines.Node{{Address: "a:3306"}, {Address: "b:3306"}, {Address: "c:3306"}}}
	vars := map[string]string{}
	for i := range 650 {
		vars[fmt.Sprintf("variable_%d", i)] = fmt.Sprint(i)
	}
	snaps := []*nines.Snapshot{driftSnap("a:3306", vars), driftSnap("b:3306", vars), driftSnap("c:3306", vars)}
	b.ReportAllocs()
	for b.Loop() {
		if d := ConfigDrift(c, snaps); len(d) != 0 {
			b.Fatal(d)
		}
	}
}
