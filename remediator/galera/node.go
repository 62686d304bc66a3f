// Package galera holds the Galera runbooks: rejoining one node, and
// recovering a cluster that lost its Primary component. They act only
// through Node, which the appliance implements over each host's nines
// agent, decide with the pure top-level galera package, and wait on an
// injected Clock so their safety waits are tested without real time.
package galera

import (
	"context"
	"fmt"
	"time"

	"github.com/nines-project/nines"
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
	// Wsrep is set when the server runs and answered on its local socket:
	// its status as galera.ParseStatus read it on the host.
	Wsrep *nines.GaleraStatus `json:"wsrep,omitempty"`
	// Grastate and Gvwstate are the node's saved state files as its agent
	// read them; nil when missing or unreadable.
	Grastate *galera.Grastate `json:"grastate,omitempty"`
	Gvwstate *galera.Gvwstate `json:"gvwstate,omitempty"`
}

// Primary reports whether the node is a member of a Primary component.
func (s NodeState) Primary() bool {
	return s.Running && s.Wsrep.Primary()
}

// Synced reports whether the node serves as a full member: Primary,
// local state Synced and wsrep_ready=ON (nines.GaleraStatus.Synced).
func (s NodeState) Synced() bool {
	return s.Running && s.Wsrep.Synced()
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

// Clock is the time the runbooks wait on. Nil means the real clock.
type Clock interface {
	Now() time.Time
	After(d time.Duration) <-chan time.Time
}

type realClock struct{}

func (realClock) Now() time.Time                         { return time.Now() }
func (realClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

func clockOr(c Clock) Clock {
	if c == nil {
		return realClock{}
	}
	return c
}

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

// noPrimaryLimit is how long waitSynced goes on for a joiner while no
// node of the cluster is Primary. It outlasts a view change (Galera's
// default evs.inactive_timeout is 15 s), during which a Primary component
// may briefly show non-Primary, so only a component really gone ends the
// wait early.
const noPrimaryLimit = settleLimit + 10*time.Second

// observeSettled reads every node's state once the cluster's view has
// settled: no Primary node counts more members than are running. Galera
// keeps a crashed node in its view until it evicts it, and a decision
// taken meanwhile would see a Primary component that is about to vanish
// (and, say, start a rejoin into it). After limit the states are returned
// as they are.
func observeSettled(ctx context.Context, clock Clock, nodes []Node, limit time.Duration) []NodeState {
	deadline := clock.Now().Add(limit)
	for {
		states := observeAll(ctx, nodes)
		if settled(states) || clock.Now().After(deadline) || ctx.Err() != nil {
			return states
		}
		select {
		case <-ctx.Done():
		case <-clock.After(250 * time.Millisecond):
		}
	}
}

func settled(states []NodeState) bool {
	_, unseen := countsUnseen(states)
	return !unseen
}

func find(nodes []Node, name string) (Node, error) {
	for _, n := range nodes {
		if n.Name() == name {
			return n, nil
		}
	}
	return nil, fmt.Errorf("node %q is not part of the cluster", name)
}

// waitSynced polls a joiner n until it is Synced. It gives up early when
// no node of the cluster has been Primary for noPrimaryLimit: the node
// cannot join then, and quorum recovery must run instead.
func waitSynced(ctx context.Context, clock Clock, n Node, all []Node, limit time.Duration) (NodeState, error) {
	return waitUntilSynced(ctx, clock, n, all, limit, false)
}

// waitBootstrapped polls the node just bootstrapped until it is Synced.
// Until it has been Primary once, no Primary elsewhere is expected: it is
// still starting (InnoDB recovery of a large redo log takes minutes), so
// only limit ends the wait. If it loses Primary afterwards, the joiner's
// noPrimaryLimit applies.
func waitBootstrapped(ctx context.Context, clock Clock, n Node, all []Node, limit time.Duration) (NodeState, error) {
	return waitUntilSynced(ctx, clock, n, all, limit, true)
}

func waitUntilSynced(ctx context.Context, clock Clock, n Node, all []Node, limit time.Duration, bootstrapping bool) (NodeState, error) {
	deadline := clock.Now().Add(limit)
	var last NodeState
	noPrimarySince := time.Time{}
	starting := bootstrapping
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
		if last.Primary() {
			starting = false
		}
		switch {
		case starting || anyPrimary(observeAll(ctx, all)):
			noPrimarySince = time.Time{}
		case noPrimarySince.IsZero():
			noPrimarySince = clock.Now()
		case clock.Now().Sub(noPrimarySince) > noPrimaryLimit:
			return last, fmt.Errorf("no node of the cluster has been Primary for %s: %s cannot join", noPrimaryLimit, n.Name())
		}
		if clock.Now().After(deadline) {
			return last, fmt.Errorf("%s not Synced within %s (last state: %s)", n.Name(), limit, describe(last))
		}
		select {
		case <-ctx.Done():
			return last, ctx.Err()
		case <-clock.After(200 * time.Millisecond):
		}
	}
}

// runningJoinLimit bounds the wait for a running node to become a member
// of a newly bootstrapped Primary component: it takes a second or two
// when it reaches it.
const runningJoinLimit = 30 * time.Second

// waitMember polls a running node until it is a member of a Primary
// component (Joiner, Joined, Donor or Synced) or limit passes.
func waitMember(ctx context.Context, clock Clock, n Node, limit time.Duration) bool {
	deadline := clock.Now().Add(limit)
	for {
		if n.State(ctx).Primary() {
			return true
		}
		if ctx.Err() != nil || clock.Now().After(deadline) {
			return false
		}
		select {
		case <-ctx.Done():
			return false
		case <-clock.After(200 * time.Millisecond):
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
	return fmt.Sprintf("%s/%s ready %v size %d", s.Wsrep.ClusterStatus, s.Wsrep.LocalStateComment, s.Wsrep.Ready, s.Wsrep.ClusterSize)
}
