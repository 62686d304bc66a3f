package replication

import (
	"context"
	"fmt"
	"time"

	"github.com/nines-project/nines/remediator"
	"github.com/nines-project/nines/replication"
)

// Switchover is the replication-switchover runbook, started by hand: the
// primary hands over to a replica (the job's node, or the most advanced
// one) with nothing lost. The old primary is made read-only first, so
// the candidate can catch up to its final position; then the failover's
// promotion runs, and the old primary becomes a replica of the new one.
// If the candidate does not catch up in time the old primary is opened
// again: writes were blocked, nothing else changed.
type Switchover struct {
	Nodes        Cluster
	Writers      Writers
	ApplyTimeout time.Duration
}

var _ remediator.Runbook = Switchover{}

func (Switchover) Name() string { return remediator.RunbookReplicationSwitch }

func (rb Switchover) Run(ctx context.Context, r *remediator.Run) error {
	nodes, p, _, lb, err := begin(r, rb.Nodes, rb.Writers, decideSwitchover)
	if err != nil {
		return err
	}
	old, err := find(nodes, p.Primary)
	if err != nil {
		return err
	}
	fenced, err := fence(ctx, r, nodes, lb, p)
	if err != nil {
		return err
	}
	if fenced.Host == nil || !fenced.Host.ReadOnly {
		reopen(ctx, r, old, lb, p)
		return fmt.Errorf("%s could not be made read-only (%s): switchover abandoned, %s left the primary", p.Primary, fenced.HostNote, p.Primary)
	}
	limit := applyTimeout(rb.ApplyTimeout)
	// The old primary is the last of the others: it is repointed once
	// the candidate holds everything it wrote.
	p.Others = append(p.Others, p.Primary)
	// The old primary rejoins from its own binlog position: promote
	// repoints it like any other replica, with fromBinlog.
	promoted, err := promote(ctx, r, withFormer(nodes, p.Primary), lb, p, limit, fenced.Host.BinlogPos, func(err error) error {
		reopen(ctx, r, old, lb, p)
		return fmt.Errorf("%s did not catch up with %s: switchover abandoned, %s is the primary again: %w", p.Candidate, p.Primary, p.Primary, err)
	})
	if err != nil {
		return err
	}
	if lb != nil {
		if _, err := remediator.Act(ctx, r, "release:"+p.Primary, nil, func(ctx context.Context) (string, error) {
			return "back to the health checks", lb.Release(ctx, p.Primary)
		}); err != nil {
			return fmt.Errorf("%s is the primary; %s replicates from it but stays in maintenance in the load balancer: %w", p.Candidate, p.Primary, err)
		}
	}
	return lostGTIDs(r, p, fenced, promoted, nil)
}

// reopen undoes the fence of a switchover that could not go on.
func reopen(ctx context.Context, r *remediator.Run, old Node, lb Writer, p plan) {
	_, _ = remediator.Act(ctx, r, "reopen:"+p.Primary, nil, func(ctx context.Context) (Promoted, error) {
		pr, err := old.Promote(ctx, p.SemiSync, true)
		if err == nil && lb != nil {
			err = lb.Admit(ctx, p.Primary)
		}
		return pr, err
	})
}

func decideSwitchover(r *remediator.Run, nodes []Node) (plan, []replication.Node, error) {
	var p plan
	views, err := remediator.Observe(r, "observe-cluster", nil, func(ctx context.Context) ([]replication.Node, error) {
		return observeAll(ctx, nodes), nil
	})
	if err != nil {
		return p, nil, err
	}
	primary, why, ok := replication.Primary(views)
	if !ok {
		return p, views, remediator.Refused("cannot tell which node is the primary: %s", why)
	}
	if pv := view(views, primary); !pv.Writable() {
		return p, views, remediator.Aborted("the primary %s is not running and writable (%s): a switchover hands over from a live primary; this is a failover", primary, pv.Error)
	}
	to := r.Target()
	if to == primary {
		return p, views, remediator.Aborted("%s is the primary already", to)
	}
	choice, err := remediator.Observe(r, "choose-candidate", map[string]string{"primary": primary, "to": to}, func(context.Context) (replication.Choice, error) {
		if to == "" {
			c, err := replication.Choose(primary, views, "")
			if err != nil {
				return c, remediator.Aborted("%v", err)
			}
			return c, nil
		}
		v := view(views, to)
		if v.Link == nil || v.Link.Source != primary {
			return replication.Choice{}, remediator.Aborted("%s is not a replica of the primary %s", to, primary)
		}
		if why := replication.Ineligible(v, views); why != "" {
			return replication.Choice{}, remediator.Aborted("%s may not be promoted: %s", to, why)
		}
		return replication.Choice{Node: to, Holds: v.Holds().String(), Reasons: "named by the operator"}, nil
	})
	if err != nil {
		return p, views, err
	}
	p = plan{Primary: primary, Candidate: choice.Node, SemiSync: semiSync(views), Why: "switchover by hand: " + choice.Reasons,
		Others: others(views, primary, choice.Node)}
	r.SetTarget(choice.Node)
	return p, views, nil
}

// former wraps the old primary so that promote's repoint starts it from
// its own binlog position (its slave position predates its promotion).
type former struct{ Node }

func (f former) Replicate(ctx context.Context, source string, semiSync, _ bool) error {
	return f.Node.Replicate(ctx, source, semiSync, true)
}

func withFormer(nodes []Node, name string) []Node {
	out := make([]Node, len(nodes))
	for i, n := range nodes {
		if n.Name() == name {
			n = former{n}
		}
		out[i] = n
	}
	return out
}
