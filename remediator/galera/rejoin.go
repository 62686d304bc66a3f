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
// agent says so) and another node is Primary and Synced.
type Rejoin struct {
	Nodes Cluster
	// SyncTimeout bounds the wait for Synced; an IST takes seconds, a full
	// SST of a large dataset much longer. Default 2 m.
	SyncTimeout time.Duration
	Clock       Clock // nil: the real clock
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
	check := func(name string) error {
		_, err := remediator.Observe(r, name, nil, func(ctx context.Context) ([]NodeState, error) {
			states := observeSettled(ctx, clockOr(rb.Clock), nodes, settleLimit)
			for _, s := range states {
				if s.Name == target {
					if !s.Reachable {
						return states, fmt.Errorf("the agent of %s does not answer (%s): cannot act on it", target, s.Error)
					}
					if s.Running {
						return states, remediator.Aborted("%s is running again (%s): nothing to do", target, describe(s))
					}
				}
			}
			for _, s := range states {
				if s.Name != target && s.Synced() {
					return states, nil
				}
			}
			return states, remediator.Aborted("no other node is Primary and Synced: %s cannot join; quorum recovery is needed", target)
		})
		return err
	}
	if err := check("observe-cluster"); err != nil {
		return err
	}
	pos, err := remediator.Act(ctx, r, "recover-position:"+target, map[string]string{"node": target}, func(ctx context.Context) (galera.Position, error) {
		return node.Recover(ctx)
	})
	if err != nil {
		return err
	}
	// Re-observe right before the irreversible step.
	if err := check("recheck-before-start"); err != nil {
		return err
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
