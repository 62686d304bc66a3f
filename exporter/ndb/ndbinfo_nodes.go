package ndb

import (
	"context"
	"strconv"

	"github.com/nines-project/nines/internal/metric"
)

const nodesQuery = `SELECT node_id, uptime, status, start_phase, config_generation FROM ndbinfo.nodes`

// NodeState is ndbinfo.nodes' status: the view's CASE codes 0..8 in its
// order [A.1.1], or NodeStateUnknown for a text nines does not know.
type NodeState int

// NodeStateUnknown is a status string outside the view's CASE (including
// the view's own "<unknown>"): never taken for a state.
const NodeStateUnknown NodeState = -1

const (
	NodeNothing NodeState = iota
	NodeCMVMI
	NodeStarting
	NodeStarted
	NodeSingleUser
	NodeStopping1
	NodeStopping2
	NodeStopping3
	NodeStopping4
)

var nodeStateNames = []string{"NOTHING", "CMVMI", "STARTING", "STARTED", "SINGLEUSER", "STOPPING_1", "STOPPING_2", "STOPPING_3", "STOPPING_4"}

func (s NodeState) String() string {
	if s >= 0 && int(s) < len(nodeStateNames) {
		return nodeStateNames[s]
	}
	return "UNKNOWN"
}

// Serving: the node holds its data and takes part in the cluster.
func (s NodeState) Serving() bool { return s == NodeStarted || s == NodeSingleUser }

// NodeRow is a running data node (ndbinfo.nodes): stopped data nodes
// have no row [A.1.0].
type NodeRow struct {
	NodeID           int
	Uptime           uint64 // seconds since the process started
	State            NodeState
	StartPhase       int // 0 when not starting
	ConfigGeneration uint64
}

func readNodes(ctx context.Context, q Querier, n *Ndbinfo) error {
	return scan(ctx, q, nodesQuery, func(c *cells) {
		id, ok := c.id("node_id")
		if !ok {
			return
		}
		n.Nodes = append(n.Nodes, NodeRow{NodeID: id, Uptime: c.uint("uptime"),
			State:      NodeState(c.enum("status", nodeStateNames)),
			StartPhase: int(c.uint("start_phase")), ConfigGeneration: c.uint("config_generation")})
	})
}

// statusValue is the fork's encoding of mysql_ndbinfo_nodes_status
// [A.5]: the state's code, STARTING as 2.<phase>, -1 unknown.
func statusValue(r NodeRow) float64 {
	if r.State == NodeStarting {
		v, _ := strconv.ParseFloat("2."+strconv.Itoa(r.StartPhase), 64)
		return v
	}
	return float64(r.State)
}

func nodesMetrics(set *metric.Set, rows []NodeRow) {
	for _, r := range rows {
		id := itoa(r.NodeID)
		set.Add("mysql_ndbinfo_nodes_uptime", "Seconds since the data node's process started (ndbinfo.nodes).", metric.Counter, float64(r.Uptime), "node_id", id)
		set.Add("mysql_ndbinfo_nodes_status", "Data node status: 0 NOTHING, 1 CMVMI, 2.<start phase> STARTING, 3 STARTED, 4 SINGLEUSER, 5-8 STOPPING_1-4, -1 unknown.", metric.Gauge, statusValue(r), "node_id", id)
		set.Add("mysql_ndbinfo_nodes_config_generation", "Configuration generation the data node runs; differing values mean an unfinished rolling restart.", metric.Gauge, float64(r.ConfigGeneration), "node_id", id)
	}
}

// ReadNodes reads ndbinfo.nodes alone, for callers that need the running
// data nodes' states and config generations now rather than at the next
// scrape (the rolling restart runbook).
func ReadNodes(ctx context.Context, q Querier) ([]NodeRow, error) {
	var n Ndbinfo
	if err := readNodes(ctx, q, &n); err != nil {
		return nil, err
	}
	return n.Nodes, nil
}
