// Package galera holds the Galera runbooks: rejoining one node, and
// recovering a cluster that lost its Primary component. They act only
// through Node, which the appliance implements over each host's nines
// agent, and decide with the pure recovery package.
package galera

import (
	"context"
	"fmt"
	"time"

	"github.com/nines-project/nines/galera"
)

// NodeState is what a node's agent reports, read fresh for each decision.
type NodeState struct {
	Name string `json:"name"`
	// Reachable is false when the agent did not answer: nothing is known
	// about the node, and it cannot be acted on.
	Reachable bool   `json:"reachable"`
	Running   bool   `json:"running"`
	Error     string `json:"error,omitempty"`
	// Wsrep is set when the server runs and answered on its local socket.
	Wsrep *Wsrep `json:"wsrep,omitempty"`
}

// Wsrep is a running node's Galera state.
type Wsrep struct {
	ClusterStatus     string `json:"cluster_status"` // Primary, non-Primary, Disconnected
	LocalStateComment string `json:"local_state_comment"`
	ClusterSize       int    `json:"cluster_size"`
	StateUUID         string `json:"state_uuid"`
	LastCommitted     int64  `json:"last_committed"`
}

// Primary reports whether the node is a member of a Primary component.
func (s NodeState) Primary() bool {
	return s.Running && s.Wsrep != nil && s.Wsrep.ClusterStatus == "Primary"
}

// Synced reports whether the node serves as a full member.
func (s NodeState) Synced() bool {
	return s.Primary() && s.Wsrep.LocalStateComment == "Synced"
}

// Node is one Galera node as the runbooks drive it. Implementations talk
// to the node's host agent; every method reads or acts on the live node.
type Node interface {
	Name() string
	State(ctx context.Context) NodeState
	// Recover runs --wsrep-recover on a stopped node.
	Recover(ctx context.Context) (galera.Position, error)
	// Start starts a stopped node at pos (through --wsrep-start-position),
	// bootstrapping a new Primary component when newCluster is set. It
	// returns once the process runs; waiting is the runbook's business.
	Start(ctx context.Context, pos galera.Position, newCluster bool) error
	// SetBootstrapFields marks a stopped node's grastate.dat safe to
	// bootstrap at pos.
	SetBootstrapFields(ctx context.Context, pos galera.Position) error
	// PCBootstrap makes a running non-Primary node form a Primary component.
	PCBootstrap(ctx context.Context) error
}

// Cluster gives a runbook the nodes of a cluster.
type Cluster func(name string) ([]Node, error)

// observeAll reads every node's state.
func observeAll(ctx context.Context, nodes []Node) []NodeState {
	out := make([]NodeState, len(nodes))
	for i, n := range nodes {
		out[i] = n.State(ctx)
		out[i].Name = n.Name()
	}
	return out
}

// settleLimit bounds the wait for Galera to finish a view change. Its
// default evs.inactive_timeout is 15 s; the sandbox's is 3 s.
const settleLimit = 20 * time.Second

// observeSettled reads every node's state once the cluster's view has
// settled: no Primary node counts more members than are running. Galera
// keeps a crashed node in its view until it evicts it, and a decision
// taken meanwhile would see a Primary component that is about to vanish
// (and, say, start a rejoin into it). After limit the states are returned
// as they are.
func observeSettled(ctx context.Context, nodes []Node, limit time.Duration) []NodeState {
	deadline := time.Now().Add(limit)
	for {
		states := observeAll(ctx, nodes)
		if settled(states) || time.Now().After(deadline) || ctx.Err() != nil {
			return states
		}
		select {
		case <-ctx.Done():
		case <-time.After(250 * time.Millisecond):
		}
	}
}

func settled(states []NodeState) bool {
	running := 0
	for _, s := range states {
		if s.Running {
			running++
		}
	}
	for _, s := range states {
		if s.Primary() && s.Wsrep.ClusterSize > running {
			return false
		}
	}
	return true
}

func find(nodes []Node, name string) (Node, error) {
	for _, n := range nodes {
		if n.Name() == name {
			return n, nil
		}
	}
	return nil, fmt.Errorf("node %q is not part of the cluster", name)
}

// waitSynced polls n until it is Synced. It gives up early when no node of
// the cluster is Primary any more: the node cannot join then, and quorum
// recovery must run instead.
func waitSynced(ctx context.Context, n Node, all []Node, limit time.Duration) (NodeState, error) {
	deadline := time.Now().Add(limit)
	var last NodeState
	noPrimarySince := time.Time{}
	for {
		last = n.State(ctx)
		if last.Synced() {
			return last, nil
		}
		if ctx.Err() != nil {
			return last, ctx.Err()
		}
		if !last.Running && last.Reachable {
			return last, fmt.Errorf("%s stopped while joining: %s", n.Name(), last.Error)
		}
		if anyPrimary(observeAll(ctx, all)) {
			noPrimarySince = time.Time{}
		} else if noPrimarySince.IsZero() {
			noPrimarySince = time.Now()
		} else if time.Since(noPrimarySince) > 5*time.Second {
			return last, fmt.Errorf("no node of the cluster is Primary any more: %s cannot join", n.Name())
		}
		if time.Now().After(deadline) {
			return last, fmt.Errorf("%s not Synced within %s (last state: %s)", n.Name(), limit, describe(last))
		}
		select {
		case <-ctx.Done():
			return last, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func anyPrimary(states []NodeState) bool {
	for _, s := range states {
		if s.Primary() {
			return true
		}
	}
	return false
}

func describe(s NodeState) string {
	switch {
	case !s.Reachable:
		return "agent unreachable: " + s.Error
	case !s.Running:
		return "stopped"
	case s.Wsrep == nil:
		return "running, wsrep state unknown"
	}
	return fmt.Sprintf("%s/%s size %d", s.Wsrep.ClusterStatus, s.Wsrep.LocalStateComment, s.Wsrep.ClusterSize)
}
