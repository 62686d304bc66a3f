package exporter

import (
	"net"
	"strconv"
	"strings"

	"github.com/nines-project/nines"
	"github.com/nines-project/nines/internal/metric"
	"github.com/nines-project/nines/replication"
)

// ClusterMetrics derives the series that need more than one node's
// snapshot: the cluster's identity (nines_cluster_info, nines_cluster_nodes,
// which rules join on) and, for replication, errant GTIDs found by
// comparing each replica with the primary.
func ClusterMetrics(c nines.Cluster, snaps []*nines.Snapshot) []metric.Metric {
	set := &metric.Set{Const: []metric.Label{{Name: "cluster", Value: c.Name}}}
	set.Add("nines_cluster_info", "The cluster's kind as configured; constant 1.", metric.Gauge, 1, "kind", string(c.Kind))
	set.Add("nines_cluster_nodes", "Number of nodes configured for the cluster.", metric.Gauge, float64(len(c.Nodes)))
	if c.Kind == nines.KindReplication {
		errantGTIDs(set, snaps)
	}
	driftMetrics(set, c, snaps)
	return set.Metrics
}

// DRMetrics are a Galera cluster's DR replica series (nil without DR
// replicas), from the latest snapshots of its nodes and replicas. The
// appliance writes them with every snapshot of the cluster, so a dead
// source shows in the same flush as its failed scrape.
func DRMetrics(c nines.Cluster, snaps []*nines.Snapshot) []metric.Metric {
	if len(c.DRReplicas) == 0 {
		return nil
	}
	set := &metric.Set{Const: []metric.Label{{Name: "cluster", Value: c.Name}}}
	drReplicas(set, c, snaps)
	return set.Metrics
}

// drReplicas marks each DR replica of a Galera cluster
// (nines_galera_dr_replica_info, which the Galera rules leave out: it is
// no member) and says whether its source is a node of the cluster that is
// up and Synced in a Primary component (nines_galera_dr_replica_source_synced).
// The latter has no series while the replica cannot be read or has no
// replica connection (nothing to follow then), nor while its source, a
// node, has not been scraped yet.
func drReplicas(set *metric.Set, c nines.Cluster, snaps []*nines.Snapshot) {
	byInstance := make(map[string]*nines.Snapshot, len(snaps))
	for _, s := range snaps {
		byInstance[s.Instance] = s
	}
	members := make(map[string]bool, len(c.Nodes))
	for _, n := range c.Nodes {
		members[n.Address] = true
	}
	for _, d := range c.DRReplicas {
		set.Add("nines_galera_dr_replica_info", "A disaster-recovery replica of the Galera cluster, outside it; constant 1.", metric.Gauge, 1, "instance", d.Address)
		s := byInstance[d.Address]
		if s == nil || !s.Up || len(s.Replicas) == 0 {
			continue
		}
		src := net.JoinHostPort(s.Replicas[0].SourceHost, strconv.Itoa(s.Replicas[0].SourcePort))
		n := byInstance[src]
		if members[src] && n == nil {
			// Not scraped yet (the appliance just started): unknown is
			// not "lost", which would start a repair.
			continue
		}
		ok := 0.0
		if members[src] && n.Up && n.Galera.Synced() {
			ok = 1
		}
		set.Add("nines_galera_dr_replica_source_synced", "1 when the DR replica's source is a node of the cluster that is up, Synced, wsrep_ready and in a Primary component; 0 when not.", metric.Gauge, ok, "instance", d.Address, "source", src)
	}
}

// errantGTIDs compares every replica's gtid_binlog_pos with the primary's
// (both as fresh as the scrapes allow, see binlogPos):
// the node that is up, writable and replicates from nobody. With no single
// such node nothing is reported (the rules about writable nodes cover it).
func errantGTIDs(set *metric.Set, snaps []*nines.Snapshot) {
	var primary *nines.Snapshot
	for _, s := range snaps {
		if s.Up && len(s.Replicas) == 0 && strings.EqualFold(s.Variables["read_only"], "OFF") {
			if primary != nil {
				return
			}
			primary = s
		}
	}
	if primary == nil {
		return
	}
	ppos, err := replication.ParseState(binlogPos(primary))
	if err != nil {
		return
	}
	pid, err := strconv.ParseUint(primary.Variables["server_id"], 10, 32)
	if err != nil {
		return
	}
	for _, s := range snaps {
		if s == primary || !s.Up || len(s.Replicas) == 0 {
			continue
		}
		rpos, err := replication.ParseState(binlogPos(s))
		if err != nil {
			continue
		}
		n := len(rpos.Errant(ppos, uint32(pid)))
		set.Add("nines_replication_errant_gtid", "Number of (domain, server) GTID streams on this replica that are ahead of its primary: transactions written on the replica.", metric.Gauge, float64(n), "instance", s.Instance)
	}
}

// binlogPos is the node's gtid_binlog_pos as read this scrape, or failing
// that from the variables (read once a minute).
func binlogPos(s *nines.Snapshot) string {
	if s.Replication != nil {
		return s.Replication.GTIDBinlogPos
	}
	return s.Variables["gtid_binlog_pos"]
}
