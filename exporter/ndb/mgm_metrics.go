package ndb

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/nines-project/nines/internal/metric"
	ndbmsg "github.com/nines-project/nines/ndb"
)

// MgmReading is one `get status` reading: the management server's view of
// every node. Err is the reading's failure (connect, protocol or parse);
// Nodes is then ignored.
type MgmReading struct {
	Nodes []ndbmsg.Node
	Err   error
	// NodeGroups maps a data node id to its node group from the cluster
	// config, when the caller has it. `get status` is not reliable about
	// the node group of a data node that is not connected [OPER], so an
	// entry here wins; without one the reply's node_group is used.
	NodeGroups map[int]int
}

// nodeStatusHelp carries the code table of nines_ndb_node_status: the
// code is ndb.NodeStatus, in the order of mgmapi's status table.
var nodeStatusHelp = func() string {
	var b strings.Builder
	b.WriteString("Node status as the management server's get status reports it: ")
	for s := ndbmsg.StatusUnknown; s <= ndbmsg.StatusConnected; s++ {
		if s > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%d %s", int(s), s)
	}
	b.WriteString(". Data nodes serve when STARTED (or SINGLE USER MODE), management and API nodes when CONNECTED.")
	return b.String()
}()

// noGroup is the node_group label of a data node in no node group
// (NDB_NO_NODEGROUP, e.g. added but not yet in a group).
const noGroup = "none"

// MgmMetrics adds the management server's view of the cluster:
//
//   - nines_ndb_mgm_up: 1 when get status answered and parsed, else 0 and
//     nothing more (partial failure is data: the ndbinfo view goes on);
//   - nines_ndb_node_status{node_id,type,node_group}: the status code
//     (table in the help text); node_group only on data nodes;
//   - nines_ndb_node_up{node_id,type,node_group}: 1 when the node serves
//     (ndb.NodeStatus.Up), so rules need not repeat the code table;
//   - nines_ndb_node_start_phase{node_id,node_group}: data nodes only;
//   - nines_ndb_node_connect_count{node_id,type}: counter of the times the
//     node (re)connected, as ndb_mgmd counts them;
//   - nines_ndb_node_group_nodes{node_group} and
//     nines_ndb_node_group_nodes_started{node_group}: data nodes per node
//     group and how many of them serve, so "one node left" and "group
//     lost" are one comparison.
//
// The type label is the wire name (NDB, MGM, API). An odd value never
// disappears silently: a status or type outside mgmapi's table already
// fails the parse (mgm_up 0, with the reason in err), and a data node
// in no node group is labelled node_group="none". The returned error is
// the reading's, for the scraper's error metric and log.
func MgmMetrics(set *metric.Set, r MgmReading) error {
	if r.Err != nil {
		set.Add("nines_ndb_mgm_up", "1 when the management server answered get status and the reply parsed.", metric.Gauge, 0)
		return r.Err
	}
	set.Add("nines_ndb_mgm_up", "1 when the management server answered get status and the reply parsed.", metric.Gauge, 1)
	type group struct{ nodes, started int }
	groups := map[string]*group{}
	for _, n := range r.Nodes {
		id := strconv.Itoa(n.ID)
		typ := n.Type.String()
		up := 0.0
		if n.Status.Up(n.Type) {
			up = 1
		}
		if n.Type != ndbmsg.TypeNDB {
			set.Add("nines_ndb_node_status", nodeStatusHelp, metric.Gauge, float64(n.Status), "node_id", id, "type", typ)
			set.Add("nines_ndb_node_up", "1 when the node serves: a data node STARTED or in single user mode, a management or API node CONNECTED.", metric.Gauge, up, "node_id", id, "type", typ)
			set.Add("nines_ndb_node_connect_count", "Times the node connected to the cluster, as the management server counts them.", metric.Counter, float64(n.ConnectCount), "node_id", id, "type", typ)
			continue
		}
		ng := n.NodeGroup
		if cfg, ok := r.NodeGroups[n.ID]; ok {
			ng = cfg
		}
		gl := noGroup
		if ng != ndbmsg.NoNodeGroup {
			gl = strconv.Itoa(ng)
			g := groups[gl]
			if g == nil {
				g = &group{}
				groups[gl] = g
			}
			g.nodes++
			g.started += int(up)
		}
		set.Add("nines_ndb_node_status", nodeStatusHelp, metric.Gauge, float64(n.Status), "node_id", id, "type", typ, "node_group", gl)
		set.Add("nines_ndb_node_up", "1 when the node serves: a data node STARTED or in single user mode, a management or API node CONNECTED.", metric.Gauge, up, "node_id", id, "type", typ, "node_group", gl)
		set.Add("nines_ndb_node_start_phase", "Last start phase the data node completed while STARTING (-1 setup, 0..9, 101 SUMA handover); 0 when not starting.", metric.Gauge, float64(n.StartPhase), "node_id", id, "node_group", gl)
		set.Add("nines_ndb_node_connect_count", "Times the node connected to the cluster, as the management server counts them.", metric.Counter, float64(n.ConnectCount), "node_id", id, "type", typ)
	}
	names := make([]string, 0, len(groups))
	for k := range groups {
		names = append(names, k)
	}
	sort.Slice(names, func(i, j int) bool {
		a, _ := strconv.Atoi(names[i])
		b, _ := strconv.Atoi(names[j])
		return a < b
	})
	for _, k := range names {
		g := groups[k]
		set.Add("nines_ndb_node_group_nodes", "Data nodes of the node group (NoOfReplicas of them).", metric.Gauge, float64(g.nodes), "node_group", k)
		set.Add("nines_ndb_node_group_nodes_started", "Data nodes of the node group that serve (STARTED or single user mode); 0 means the group is lost and the cluster cannot serve.", metric.Gauge, float64(g.started), "node_group", k)
	}
	return nil
}
