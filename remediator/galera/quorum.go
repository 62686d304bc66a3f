package galera

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nines-project/nines/galera"
	"github.com/nines-project/nines/remediator"
)

// QuorumRecovery is the galera-quorum-recovery runbook: a cluster with no
// Primary component (lost quorum, or every node crashed) is bootstrapped
// again from its most advanced node, and the other nodes rejoin one at a
// time.
//
// Safety (DESIGN.md, rule 3): it bootstraps only while no node is Primary,
// re-checked right before the bootstrap; only from the node with the
// highest committed seqno among all nodes that can be read, running or
// not; and it refuses (the job fails, which pages) when the nodes disagree
// on the cluster state UUID or fewer than a majority can be read, unless
// an operator forces a named node.
type QuorumRecovery struct {
	Nodes       Cluster
	SyncTimeout time.Duration // per node; default 2 m
	Clock       Clock         // nil: the real clock
}

var _ remediator.Runbook = QuorumRecovery{}

func (QuorumRecovery) Name() string { return remediator.RunbookGaleraQuorumRecovery }

// position is a node's committed position and where it came from.
type position struct {
	Node     string          `json:"node"`
	Position galera.Position `json:"position"`
	From     string          `json:"from"` // running | recovered
}

func (rb QuorumRecovery) Run(ctx context.Context, r *remediator.Run) error {
	nodes, err := rb.Nodes(r.Cluster())
	if err != nil {
		return err
	}
	limit := rb.SyncTimeout
	if limit <= 0 {
		limit = 2 * time.Minute
	}
	// A job resumed after its bootstrap went through must not check for
	// "no Primary" again: the Primary is its own doing. It goes on with the
	// other nodes.
	var chosen Node
	if name, done := r.DoneStep("bootstrap:"); done {
		if chosen, err = find(nodes, strings.TrimPrefix(name, "bootstrap:")); err != nil {
			return err
		}
		if err := r.Logf("resume", "bootstrap of %s was done before the interruption; continuing with the other nodes", chosen.Name()); err != nil {
			return err
		}
	} else {
		if chosen, err = rb.bootstrap(ctx, r, nodes, limit); err != nil || chosen == nil {
			return err
		}
	}

	// The others, one at a time: running ones join the new component by
	// themselves; stopped ones start at their recovered position (IST).
	for _, n := range nodes {
		if n == chosen {
			continue
		}
		st, err := remediator.Observe(r, "observe:"+n.Name(), nil, func(ctx context.Context) (NodeState, error) { return n.State(ctx), nil })
		if err != nil {
			return err
		}
		switch {
		case !st.Reachable:
			if err := r.Logf("skip:"+n.Name(), "the agent of %s does not answer (%s): left for its own rejoin", n.Name(), st.Error); err != nil {
				return err
			}
			continue
		case !st.Running:
			pos, err := remediator.Act(ctx, r, "recover-position:"+n.Name(), map[string]string{"node": n.Name()}, func(ctx context.Context) (galera.Position, error) {
				return n.Recover(ctx)
			})
			if err != nil {
				return err
			}
			if _, err := remediator.Act(ctx, r, "start:"+n.Name(), map[string]string{"node": n.Name(), "position": pos.String()}, func(ctx context.Context) (string, error) {
				if st := n.State(ctx); st.Running {
					return "already running", nil
				}
				return "started", n.Start(ctx, pos, false)
			}); err != nil {
				return err
			}
		}
		if _, err := remediator.Wait(ctx, r, "wait-synced:"+n.Name(), nil, func(ctx context.Context) (NodeState, error) {
			return waitSynced(ctx, clockOr(rb.Clock), n, nodes, limit)
		}); err != nil {
			return err
		}
	}
	return nil
}

// bootstrap finds the most advanced node and forms a Primary component on
// it. It returns nil (and no error) in a dry run, after recording the plan.
func (rb QuorumRecovery) bootstrap(ctx context.Context, r *remediator.Run, nodes []Node, limit time.Duration) (Node, error) {
	noPrimary := func(name string) ([]NodeState, error) {
		return remediator.Observe(r, name, nil, func(ctx context.Context) ([]NodeState, error) {
			states := observeSettled(ctx, clockOr(rb.Clock), nodes, settleLimit)
			for _, s := range states {
				if s.Primary() {
					return states, remediator.Aborted("%s is Primary (%s): the cluster has a Primary component, nothing to recover", s.Name, describe(s))
				}
			}
			return states, nil
		})
	}
	states, err := noPrimary("observe-cluster")
	if err != nil {
		return nil, err
	}
	readable := 0
	for _, s := range states {
		if s.Reachable {
			readable++
		}
	}
	if readable*2 <= len(nodes) && r.Force() == "" {
		return nil, fmt.Errorf("only %d of %d nodes can be read: bootstrapping could leave out the most advanced one; refusing (start a manual job with force_node to override)", readable, len(nodes))
	}

	// Positions: a running node's from its status, a stopped node's by
	// --wsrep-recover.
	var cands []galera.Candidate
	positions := map[string]galera.Position{}
	for i, s := range states {
		if !s.Reachable {
			continue
		}
		n := nodes[i]
		var pos galera.Position
		if s.Running {
			if s.Wsrep == nil {
				return nil, fmt.Errorf("%s runs but its wsrep state cannot be read: cannot tell its position", s.Name)
			}
			p := position{Node: s.Name, Position: galera.CommittedPosition(s.Wsrep), From: "running"}
			if _, err := remediator.Observe(r, "position:"+s.Name, nil, func(context.Context) (position, error) { return p, nil }); err != nil {
				return nil, err
			}
			pos = p.Position
		} else {
			if pos, err = remediator.Act(ctx, r, "recover-position:"+s.Name, map[string]string{"node": s.Name}, func(ctx context.Context) (galera.Position, error) {
				return n.Recover(ctx)
			}); err != nil {
				return nil, err
			}
		}
		positions[s.Name] = pos
		cands = append(cands, galera.Candidate{Name: s.Name, Position: pos})
	}
	if r.DryRun() {
		return nil, r.Logf("plan", "would choose the bootstrap node among %d readable nodes by cluster UUID and highest seqno once their positions are recovered, bootstrap it (pc.bootstrap if running, else grastate safe_to_bootstrap + --wsrep-new-cluster), then start the others one at a time", readable)
	}

	var chosen Node
	if f := r.Force(); f != "" {
		if chosen, err = find(nodes, f); err != nil {
			return nil, err
		}
		if err := r.Logf("choose-bootstrap", "operator forced %s (position %s)", f, positions[f]); err != nil {
			return nil, err
		}
	} else {
		i, err := galera.ChooseBootstrap(cands)
		if errors.Is(err, galera.ErrUUIDMismatch) {
			return nil, fmt.Errorf("%w: a human must decide which history to keep (start a manual job with force_node)", err)
		}
		if err != nil {
			return nil, err
		}
		if chosen, err = find(nodes, cands[i].Name); err != nil {
			return nil, err
		}
		if err := r.Logf("choose-bootstrap", "bootstrap from %s: highest seqno %d of cluster %s among %v", cands[i].Name, cands[i].Position.Seqno, cands[i].Position.UUID, cands); err != nil {
			return nil, err
		}
	}
	pos := positions[chosen.Name()]

	// Re-observe right before the irreversible step.
	if _, err := noPrimary("recheck-before-bootstrap"); err != nil {
		return nil, err
	}
	if _, err := remediator.Act(ctx, r, "bootstrap:"+chosen.Name(), map[string]string{"node": chosen.Name(), "position": pos.String()}, func(ctx context.Context) (string, error) {
		st := chosen.State(ctx)
		if st.Running {
			return "pc.bootstrap on the running node", chosen.PCBootstrap(ctx)
		}
		if err := chosen.SetBootstrapFields(ctx, pos); err != nil {
			return "", err
		}
		return "grastate safe_to_bootstrap + --wsrep-new-cluster", chosen.Start(ctx, pos, true)
	}); err != nil {
		return nil, err
	}
	if _, err := remediator.Wait(ctx, r, "wait-synced:"+chosen.Name(), nil, func(ctx context.Context) (NodeState, error) {
		return waitBootstrapped(ctx, clockOr(rb.Clock), chosen, nodes, limit)
	}); err != nil {
		return nil, err
	}
	return chosen, nil
}
