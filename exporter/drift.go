package exporter

import (
	"sort"
	"strings"

	"github.com/nines-project/nines"
	"github.com/nines-project/nines/internal/metric"
)

// Drift is one global variable whose value is not the same on every node
// of a cluster: a change made on one node and not the others, or a node
// set up by hand.
type Drift struct {
	Variable string `json:"variable"`
	// Values maps each node (instance) to its value, as normalized
	// (wsrep_provider_options without the node's own keys).
	Values map[string]string `json:"values"`
}

// driftIgnored are the variables that differ by design: a node's identity
// and addresses, positions that move, per-session values SHOW GLOBAL
// VARIABLES also lists, and per-host file locations.
var driftIgnored = map[string]bool{
	"server_id": true, "server_uuid": true, "server_uid": true, "hostname": true, "port": true, "socket": true,
	// Per node by design: Galera sets each node's auto-increment offset
	// (wsrep_auto_increment_control), and a node's own gtid_domain_id
	// keeps its non-replicated writes apart (wsrep_gtid_domain_id is the
	// cluster's, and is compared).
	"auto_increment_offset": true, "gtid_domain_id": true,
	"report_host": true, "report_port": true, "bind_address": true, "extra_port": true,
	"wsrep_node_name": true, "wsrep_node_address": true, "wsrep_node_incoming_address": true,
	"wsrep_sst_receive_address": true, "wsrep_start_position": true, "wsrep_sst_donor": true,
	"gtid_binlog_pos": true, "gtid_binlog_state": true, "gtid_current_pos": true, "gtid_slave_pos": true,
	"timestamp": true, "pseudo_thread_id": true, "last_insert_id": true, "insert_id": true, "identity": true,
	"rand_seed1": true, "rand_seed2": true, "warning_count": true, "error_count": true, "in_transaction": true,
	"datadir": true, "tmpdir": true, "basedir": true, "pid_file": true, "log_error": true, "relay_log": true,
	"ssl_cert": true, "ssl_key": true, "ssl_ca": true, "ssl_capath": true, "ssl_crl": true, "ssl_crlpath": true,
	"innodb_buffer_pool_filename": true, "slave_load_tmpdir": true,
}

// driftIgnoredSuffixes mark file and directory locations, which follow
// each host's layout, not the cluster's behaviour.
var driftIgnoredSuffixes = []string{"_dir", "_file", "_path", "_basename", "_index", "_directory"}

// roleVariables differ on purpose between a replication primary and its
// replicas.
var roleVariables = map[string]bool{"read_only": true, "super_read_only": true}

// providerNodeKeys are the wsrep_provider_options each node sets for
// itself.
var providerNodeKeys = map[string]bool{
	"base_dir": true, "base_host": true, "base_port": true, "gcache.dir": true, "gcache.name": true,
	"gmcast.listen_addr": true, "ist.recv_addr": true, "ist.recv_bind": true,
	"socket.ssl_cert": true, "socket.ssl_key": true, "socket.ssl_ca": true,
}

// ignoredForDrift reports whether variable name of a cluster of kind k
// may differ across its nodes.
func ignoredForDrift(k nines.Kind, name string) bool {
	if driftIgnored[name] || (k == nines.KindReplication && roleVariables[name]) {
		return true
	}
	for _, s := range driftIgnoredSuffixes {
		if strings.HasSuffix(name, s) {
			return true
		}
	}
	return false
}

// normalizeDrift makes equal what only looks different: the provider
// options without the node's own keys and in one order, the cluster
// address's members in one order.
func normalizeDrift(name, v string) string {
	switch name {
	case "wsrep_provider_options":
		var keep []string
		for _, kv := range strings.Split(v, ";") {
			kv = strings.TrimSpace(kv)
			k, val, _ := strings.Cut(kv, "=")
			k = strings.TrimSpace(k)
			if kv == "" || providerNodeKeys[k] {
				continue
			}
			keep = append(keep, k+" = "+strings.TrimSpace(val))
		}
		sort.Strings(keep)
		return strings.Join(keep, "; ")
	case "wsrep_cluster_address":
		rest, opts, _ := strings.Cut(strings.TrimPrefix(v, "gcomm://"), "?")
		members := strings.Split(rest, ",")
		sort.Strings(members)
		return "gcomm://" + strings.Join(members, ",") + "?" + opts
	}
	return v
}

// ConfigDrift lists the variables whose values differ across the nodes of
// c, from the variables each node last reported (a node down keeps its
// last ones). Fewer than two nodes with variables: nothing to compare.
// Sorted by variable name.
func ConfigDrift(c nines.Cluster, snaps []*nines.Snapshot) []Drift {
	members := make(map[string]bool, len(c.Nodes))
	for _, n := range c.Nodes {
		members[n.Address] = true
	}
	var nodes []*nines.Snapshot
	for _, s := range snaps {
		if members[s.Instance] && s.Variables != nil {
			nodes = append(nodes, s)
		}
	}
	if len(nodes) < 2 {
		return nil
	}
	names := map[string]bool{}
	for _, s := range nodes {
		for name := range s.Variables {
			if !ignoredForDrift(c.Kind, name) {
				names[name] = true
			}
		}
	}
	value := func(s *nines.Snapshot, name string) string {
		v, ok := s.Variables[name]
		if !ok {
			v = "(not set)"
		}
		return normalizeDrift(name, v)
	}
	// This runs every second for every cluster, and nearly every variable
	// agrees: compare first, build the per-node values only on a
	// difference.
	var out []Drift
	for name := range names {
		first := value(nodes[0], name)
		same := true
		for _, s := range nodes[1:] {
			if value(s, name) != first {
				same = false
				break
			}
		}
		if same {
			continue
		}
		values := make(map[string]string, len(nodes))
		for _, s := range nodes {
			values[s.Instance] = value(s, name)
		}
		out = append(out, Drift{Variable: name, Values: values})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Variable < out[j].Variable })
	return out
}

// driftMetrics adds nines_config_drift (1 per variable that differs) and
// nines_config_drift_variables (how many), for clusters with at least two
// nodes read.
func driftMetrics(set *metric.Set, c nines.Cluster, snaps []*nines.Snapshot) {
	if c.Kind != nines.KindGalera && c.Kind != nines.KindReplication {
		return
	}
	ds := ConfigDrift(c, snaps)
	for _, d := range ds {
		set.Add("nines_config_drift", "1 for a global variable whose value is not the same on every node of the cluster.", metric.Gauge, 1, "variable", d.Variable)
	}
	set.Add("nines_config_drift_variables", "How many global variables differ across the cluster's nodes.", metric.Gauge, float64(len(ds)))
}
