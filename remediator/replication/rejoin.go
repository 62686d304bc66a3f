package replication

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/nines-project/nines/remediator"
	"github.com/nines-project/nines/replication"
)

// Rejoin is the replication-rejoin runbook: a running node that
// replicates from nobody while another node is the primary (the old
// primary after a failover, restarted) becomes a replica of the primary,
// if its history is a prefix of the primary's. If it holds transactions
// the primary lacks, it is left out (read-only) and the job fails with
// the diverged GTIDs, so that a person decides: save them, then rebuild
// the node (replication-reseed).
type Rejoin struct {
	Nodes   Cluster
	Writers Writers // nil: no load balancer
	// ReplicatingTimeout bounds the wait for both replica threads to run.
	ReplicatingTimeout time.Duration
}

var _ remediator.Runbook = Rejoin{}

func (Rejoin) Name() string { return remediator.RunbookReplicationRejoin }

// rejoinPlan is the decision, recorded as the repoint's input.
type rejoinPlan struct {
	Primary  string `json:"primary"`
	SemiSync bool   `json:"semi_sync"`
	Binlog   string `json:"gtid_binlog_state"`
	// Reopen: the target is still the replicas' source, restarted
	// read-only; it is opened again instead of repointed.
	Reopen bool `json:"reopen,omitempty"`
}

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
	views, err := remediator.Observe(r, "observe-cluster", nil, func(ctx context.Context) ([]replication.Node, error) {
		return observeAll(ctx, nodes), nil
	})
	if err != nil {
		return err
	}
	p, err := rb.decide(r, target, views)
	if err != nil {
		return err
	}
	if p.Reopen {
		_, err := remediator.Act(ctx, r, "reopen:"+target, p, func(ctx context.Context) (Promoted, error) {
			pr, err := node.Promote(ctx, p.SemiSync, true)
			if lb, lerr := writerOf(rb.Writers, r.Cluster()); err == nil && lerr == nil && lb != nil {
				err = lb.Admit(ctx, target)
			}
			return pr, err
		})
		return err
	}
	if _, err := remediator.Act(ctx, r, "repoint:"+target, p, func(ctx context.Context) (string, error) {
		return "replicating from " + p.Primary, node.Replicate(ctx, p.Primary, p.SemiSync, true)
	}); err != nil {
		return err
	}
	limit := rb.ReplicatingTimeout
	if limit <= 0 {
		limit = 30 * time.Second
	}
	if _, err = remediator.Wait(ctx, r, "wait-replicating:"+target, map[string]string{"timeout": limit.String()}, func(ctx context.Context) (string, error) {
		return waitReplicating(ctx, node, p.Primary, limit)
	}); err != nil {
		return err
	}
	// A failover left it in maintenance in the writer pool: the health
	// checks decide from now on (a replica fails the writer check).
	lb, err := writerOf(rb.Writers, r.Cluster())
	if err != nil || lb == nil {
		return err
	}
	_, err = remediator.Act(ctx, r, "release:"+target, nil, func(ctx context.Context) (string, error) {
		return "back to the health checks", lb.Release(ctx, target)
	})
	return err
}

func (rb Rejoin) decide(r *remediator.Run, target string, views []replication.Node) (rejoinPlan, error) {
	return remediator.Observe(r, "compare-history:"+target, nil, func(context.Context) (rejoinPlan, error) {
		var p rejoinPlan
		t := view(views, target)
		switch {
		case !t.Reachable:
			return p, fmt.Errorf("the agent of %s does not answer (%s): cannot act on it", target, t.Error)
		case !t.Readable:
			return p, remediator.Aborted("%s is not running or cannot be read (%s): nothing to rejoin yet", target, t.Error)
		}
		p.SemiSync = semiSync(views)
		if primary, _, ok := replication.Primary(views); ok && primary == target {
			// The replicas still replicate from it: no failover happened,
			// and it restarted read-only (read_only=ON in its my.cnf). It
			// is the primary, and the most advanced node: open it again,
			// unless another node took writes meanwhile.
			if t.Writable() {
				return p, remediator.Aborted("%s is the primary and takes writes: nothing to do", target)
			}
			for _, v := range views {
				if v.Name != target && v.Writable() {
					return p, remediator.Refused("%s is the replicas' source but read-only, and %s is writable: two candidates for primary; a person must decide", target, v.Name)
				}
			}
			p.Primary, p.Reopen = target, true
			return p, nil
		}
		primary, why, ok := replication.Primary(exclude(views, target))
		if !ok {
			return p, remediator.NotYet("cannot tell the primary among the other nodes: %s", why)
		}
		pv := view(views, primary)
		if !pv.Writable() {
			return p, remediator.NotYet("the primary %s is not running and writable (%s): %s waits for it", primary, pv.Error, target)
		}
		if t.Link != nil && t.Link.Source == primary && t.Link.IO == "Yes" && t.Link.SQLRunning {
			return p, remediator.Aborted("%s replicates from the primary %s already: nothing to do", target, primary)
		}
		p.Primary, p.Binlog = primary, t.Binlog.String()
		if diverged := replication.Rejoin(t, pv); len(diverged) > 0 {
			return p, remediator.Refused("%s holds %d transaction(s) the primary %s lacks: %s. Not repointed (it stays as it is; a state only a person may resolve): save what those transactions wrote if they matter, then rebuild %s from a backup of a replica (replication-reseed: nines reseed --cluster %s --node %s)",
				target, t.Binlog.Count(pv.Holds()), primary, strings.Join(diverged, ", "), target, r.Cluster(), target)
		}
		return p, nil
	})
}

// exclude is views without target: the primary is found among the rest,
// so a writable target does not count itself.
func exclude(views []replication.Node, target string) []replication.Node {
	out := make([]replication.Node, 0, len(views))
	for _, v := range views {
		if v.Name != target {
			out = append(out, v)
		}
	}
	return out
}

// waitReplicating polls node until both replica threads run against
// source.
func waitReplicating(ctx context.Context, node Node, source string, limit time.Duration) (string, error) {
	deadline := time.Now().Add(limit)
	var last replication.Node
	for {
		last = node.Observe(ctx)
		if l := last.Link; l != nil && l.Source == source && l.IO == "Yes" && l.SQLRunning {
			return "replicating from " + source + " at " + last.Holds().String(), nil
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("%s does not replicate from %s after %s: %s", node.Name(), source, limit, describeLink(last))
		}
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func describeLink(n replication.Node) string {
	switch {
	case !n.Readable:
		return "cannot be read: " + n.Error
	case n.Link == nil:
		return "no replica connection"
	}
	l := n.Link
	return fmt.Sprintf("source %s, IO %s (%s), SQL running %v (%s)", l.Source, l.IO, l.LastIOError, l.SQLRunning, l.LastSQLError)
}
