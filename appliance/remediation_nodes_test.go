package appliance

import (
	"testing"

	"github.com/nines-project/nines/appliance/config"
)

// TestClusterNodesCountsNodesWithoutAgent: a node without an agent is
// still one of the cluster's nodes for the runbooks (unreadable), so it
// stays in the quorum decision's denominator; it is never a backup host.
func TestClusterNodesCountsNodesWithoutAgent(t *testing.T) {
	c := config.Cluster{Name: "billing", Nodes: []config.Node{
		{Address: "127.0.0.1:3307", Agent: "http://127.0.0.1:9105"},
		{Address: "127.0.0.1:3308"},
		{Address: "127.0.0.1:3309", Agent: "http://127.0.0.1:9107"},
	}}
	nodes, _, hosts := clusterNodes(c)
	if len(nodes) != 3 || len(hosts) != 2 {
		t.Fatalf("%d nodes, %d backup hosts; want 3 and 2", len(nodes), len(hosts))
	}
	st := nodes[1].State(t.Context())
	if nodes[1].Name() != "127.0.0.1:3308" || st.Reachable || st.Error == "" {
		t.Errorf("the node without an agent: %s %+v", nodes[1].Name(), st)
	}
	if _, err := nodes[1].Recover(t.Context()); err == nil {
		t.Error("recovered a node without an agent")
	}
}
