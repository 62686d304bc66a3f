package galera

import (
	"context"
	"fmt"
	"time"

	"github.com/nines-project/nines/galera"
	"github.com/nines-project/nines/remediator"
)

// Rejoin is the galera-node-rejoin runbook: a stopped node of a cluster
// that still has a Primary component is started at its recovered
// position, so it catches up by IST, and the job waits until it is Synced.
//
// Preconditions, re-checked before the start: the node is stopped (its
// agent says so), another node is Primary and Synced (else NotYet: the
// alert retries while quorum recovery runs), and the node's recovered
// position is not ahead of that Primary's nor of another history (else
// the job fails and pages: a state transfer would overwrite transactions
// only the joiner holds).
type Rejoin struct {
	Nodes Cluster
	// SyncTimeout bounds the wait for Synced; an IST takes seconds, a full
	// SST of a large dataset much longer. Default 2 m.
	SyncTimeout time.Duration
	Clock       Clock // nil: the real clock
	// History returns the cluster's jobs (the durable job log), to find
	// the latest bootstrap and whether the joiner was left out of it
	// (LastFork). nil: no such check.
	History func(cluster string) ([]*remediator.Job, error)
}

var _ remediator.Runbook = Rejoin{}

func (Rejoin) Name() string { return remediator.RunbookGaleraNodeRejoin }

func (rb Rejoin) Run(ctx context.Context, r *remediator.Run) error {
	nodes, err := rb.Nodes(r.Cluster())
	if err != nil {
		return err
	}
	target := r.Target()
	if target == "" {
		return remediator.Aborted("no node named: the alert carries no instance label")
	}
	node, err := find(nodes, target)
	if err != nil {
		return remediator.Aborted("%v", err)
	}
	if _, err := rb.check(r, "observe-cluster", nodes, target); err != nil {
		return err
	}
	pos, err := remediator.Act(ctx, r, "recover-position:"+target, map[string]string{"node": target}, func(ctx context.Context) (galera.Position, error) {
		return node.Recover(ctx)
	})
	if err != nil {
		return err
	}
	// Re-observe right before the irreversible step, and compare the
	// joiner with the Primary it is about to join.
	states, err := rb.check(r, "recheck-before-start", nodes, target)
	if err != nil {
		return err
	}
	if !r.DryRun() { // a dry run recovered nothing to compare
		if err := comparePosition(r, target, pos, states); err != nil {
			return err
		}
		if err := rb.checkFork(r, target, pos); err != nil {
			return err
		}
	}
	if _, err := remediator.Act(ctx, r, "start:"+target, map[string]string{"node": target, "position": pos.String()}, func(ctx context.Context) (string, error) {
		if st := node.State(ctx); st.Running {
			return "already running", nil // an interrupted earlier attempt got this far
		}
		return "started", node.Start(ctx, pos, false)
	}); err != nil {
		return err
	}
	limit := rb.SyncTimeout
	if limit <= 0 {
		limit = 2 * time.Minute
	}
	_, err = remediator.Wait(ctx, r, "wait-synced:"+target, map[string]string{"timeout": limit.String()}, func(ctx context.Context) (NodeState, error) {
		return waitSynced(ctx, clockOr(rb.Clock), node, nodes, limit)
	})
	return err
}

// check observes the cluster once its view settled and returns its
// states when target may rejoin: its agent answers, it is stopped, and
// another node is Primary and Synced.
func (rb Rejoin) check(r *remediator.Run, name string, nodes []Node, target string) ([]NodeState, error) {
	return remediator.Observe(r, name, nil, func(ctx context.Context) ([]NodeState, error) {
		states := observeSettled(ctx, clockOr(rb.Clock), nodes, settleLimit)
		for _, s := range states {
			if s.Name != target {
				continue
			}
			if !s.Reachable {
				if p, ok := countsUnseen(states); ok {
					// The view had its settle time: Galera evicts a dead
					// member within seconds, so one it still counts runs.
					return states, remediator.Aborted("the agent of %s does not answer (%s), but %s's Primary component still counts %d members, more than the %d running nodes nines can read: %s most likely runs and only nines is cut off from it; nothing to do",
						target, s.Error, p.Name, p.Wsrep.ClusterSize, running(states), target)
				}
				return states, fmt.Errorf("the agent of %s does not answer (%s): cannot act on it", target, s.Error)
			}
			if s.Running {
				return states, remediator.Aborted("%s is running again (%s): nothing to do", target, describe(s))
			}
		}
		if _, ok := primaryPosition(states, target); !ok {
			return states, remediator.NotYet("no other node is Primary and Synced: %s cannot join yet; quorum recovery is needed", target)
		}
		return states, nil
	})
}

// countsUnseen returns a readable Primary node whose component has more
// members than there are running nodes nines can read.
func countsUnseen(states []NodeState) (NodeState, bool) {
	n := running(states)
	for _, s := range states {
		if s.Primary() && s.Wsrep.ClusterSize > n {
			return s, true
		}
	}
	return NodeState{}, false
}

func running(states []NodeState) int {
	n := 0
	for _, s := range states {
		if s.Running {
			n++
		}
	}
	return n
}

// primaryPosition is the highest committed position among the Synced
// nodes other than target: what the Primary component holds.
func primaryPosition(states []NodeState, target string) (primary, bool) {
	var best primary
	found := false
	for _, s := range states {
		if s.Name == target || !s.Synced() {
			continue
		}
		p := galera.CommittedPosition(s.Wsrep)
		if !found || p.Seqno > best.Position.Seqno {
			best, found = primary{Node: s.Name, Position: p}, true
		}
	}
	return best, found
}

// primary is a Synced node's committed position.
type primary struct {
	Node     string          `json:"node"`
	Position galera.Position `json:"position"`
}

// checkFork compares the joiner with the latest bootstrap on record, in
// the job log as the "fork" step.
func (rb Rejoin) checkFork(r *remediator.Run, target string, pos galera.Position) error {
	if rb.History == nil {
		return nil
	}
	jobs, err := rb.History(r.Cluster())
	if err != nil {
		return fmt.Errorf("read the job log for the latest bootstrap: %w", err)
	}
	f, ok := LastFork(jobs, r.Cluster())
	if !ok {
		return nil
	}
	if r.Force() == target {
		return r.Logf("fork:"+target, "an admin forced the rejoin of %s: not compared with the bootstrap of job %s at %s", target, f.Job, f.Position)
	}
	_, err = remediator.Observe(r, "fork:"+target, map[string]string{"node": target, "recovered": pos.String()}, func(context.Context) (Fork, error) {
		return f, forkedAway(target, pos, f)
	})
	return err
}

// comparePosition records the joiner's recovered position beside the
// Primary's and refuses a joiner that must not join.
func comparePosition(r *remediator.Run, target string, pos galera.Position, states []NodeState) error {
	in := map[string]string{"node": target, "recovered": pos.String()}
	_, err := remediator.Observe(r, "compare-position:"+target, in, func(context.Context) (primary, error) {
		p, ok := primaryPosition(states, target)
		if !ok {
			return p, remediator.NotYet("no other node is Primary and Synced: %s cannot join yet", target)
		}
		return p, joinable(target, pos, p)
	})
	return err
}

// joinable says whether a node at pos may join the Primary component at
// p. A state transfer makes the joiner a copy of the donor: a joiner of
// another history, or ahead of the Primary, would lose the transactions
// only it holds, so it is refused and a person decides. A fresh datadir
// (undefined position) has nothing to lose; a known history without a
// seqno cannot be shown not to be ahead.
func joinable(target string, pos galera.Position, p primary) error {
	switch {
	case pos.Undefined():
		return nil
	case pos.UUID != p.Position.UUID:
		return remediator.Refused("%s recovered %s, of another cluster history than the Primary's %s (on %s): a state transfer would overwrite its data; not started, a person must decide",
			target, pos, p.Position, p.Node)
	case pos.Seqno < 0:
		return remediator.Refused("%s recovered %s, with no committed seqno: it cannot be shown not to be ahead of the Primary's %s (on %s); not started, a person must decide",
			target, pos, p.Position, p.Node)
	case pos.Seqno > p.Position.Seqno:
		return remediator.Refused("%s recovered %s, ahead of the Primary's %s (on %s) by %d transactions: a state transfer would overwrite them; not started, a person must decide",
			target, pos, p.Position, p.Node, pos.Seqno-p.Position.Seqno)
	}
	return nil
}
