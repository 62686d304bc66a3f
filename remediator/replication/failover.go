package replication

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nines-project/nines/remediator"
	"github.com/nines-project/nines/replication"
)

// defaultApplyTimeout bounds the wait for a candidate to apply its relay
// log: seconds normally; a replica far behind is a candidate only when
// every other is further behind.
const defaultApplyTimeout = 60 * time.Second

// plan is a failover's or switchover's decision, recorded as the input of
// its first act (the fence) so that a job resumed after an appliance
// restart carries on with it instead of deciding again on a cluster it
// has half changed.
type plan struct {
	Primary   string `json:"primary"`
	Candidate string `json:"candidate"`
	SemiSync  bool   `json:"semi_sync"`
	// Stop fences the old primary by stopping it: it runs but its agent
	// cannot read it (hung, or alive and cut off).
	Stop bool `json:"stop"`
	// Unreachable is set when the old primary's agent did not answer the
	// observation: the host fence is not tried (a dead host would hold
	// the failover for a connect timeout), the load balancer's is.
	Unreachable bool   `json:"unreachable,omitempty"`
	Why         string `json:"why"`
	// Others are the replicas to repoint at the candidate.
	Others []string `json:"others,omitempty"`
}

// Failover is the replication-failover runbook: the primary is dead, as
// more than one observer agrees (replication.Assess), so the most
// advanced healthy replica (replication.Choose) becomes the primary.
//
// Order, each step in the job log: fence the old primary (read_only, or
// stop it if it runs but cannot be read; out of the load balancer's
// writer pool) before anything is promoted; wait until the candidate
// applied what it received; promote it still read-only; repoint every
// other replica at it (MASTER_USE_GTID=slave_pos); turn semi-sync back on
// where it was and open it for writes once a semi-sync replica is
// connected; admit it to the writer pool; record which GTIDs the old
// primary had that the new one lacks, when the old one could be read.
type Failover struct {
	Nodes        Cluster
	Writers      Writers // nil: no load balancer
	ApplyTimeout time.Duration
}

var _ remediator.Runbook = Failover{}

func (Failover) Name() string { return remediator.RunbookReplicationFailover }

func (rb Failover) Run(ctx context.Context, r *remediator.Run) error {
	nodes, p, views, lb, err := begin(r, rb.Nodes, rb.Writers, decideFailover)
	if err != nil {
		return err
	}
	fenced, err := fence(ctx, r, nodes, lb, p)
	if err != nil {
		return err
	}
	promoted, err := promote(ctx, r, nodes, lb, p, applyTimeout(rb.ApplyTimeout), "", nil)
	if err != nil {
		return err
	}
	return lostGTIDs(r, p, fenced, promoted, views)
}

func applyTimeout(d time.Duration) time.Duration {
	if d <= 0 {
		return defaultApplyTimeout
	}
	return d
}

// resumeOr returns the plan recorded by an earlier run of the job, or
// decides one now.
// begin is the start that failover and switchover share: the cluster's
// nodes, the plan (decided now, or read back when the job resumes after
// an appliance restart) and the cluster's load balancer, if any.
func begin(r *remediator.Run, cluster Cluster, writers Writers, decide func(*remediator.Run, []Node) (plan, []replication.Node, error)) ([]Node, plan, []replication.Node, Writer, error) {
	nodes, err := cluster(r.Cluster())
	if err != nil {
		return nil, plan{}, nil, nil, err
	}
	p, views, err := resumeOr(r, func() (plan, []replication.Node, error) { return decide(r, nodes) })
	if err != nil {
		return nil, plan{}, nil, nil, err
	}
	lb, err := writerOf(writers, r.Cluster())
	if err != nil {
		return nil, plan{}, nil, nil, err
	}
	return nodes, p, views, lb, nil
}

func resumeOr(r *remediator.Run, decide func() (plan, []replication.Node, error)) (plan, []replication.Node, error) {
	raw := r.StepInput("fence")
	if raw == nil {
		return decide()
	}
	var p plan
	if err := json.Unmarshal(raw, &p); err != nil {
		return p, nil, fmt.Errorf("read the plan recorded before the restart: %w", err)
	}
	return p, nil, r.Logf("resume", "resuming with the plan decided before the appliance restarted: %s to %s (%s)", p.Primary, p.Candidate, p.Why)
}

func decideFailover(r *remediator.Run, nodes []Node) (plan, []replication.Node, error) {
	var p plan
	views, err := remediator.Observe(r, "observe-cluster", nil, func(ctx context.Context) ([]replication.Node, error) {
		return observeAll(ctx, nodes), nil
	})
	if err != nil {
		return p, nil, err
	}
	primary, why, ok := replication.Primary(views)
	if !ok {
		return p, views, remediator.Refused("cannot tell which node is the primary: %s; a person must decide", why)
	}
	if t := r.Target(); t != "" && t != primary {
		return p, views, remediator.Aborted("%s is not the primary (%s is: %s): a replica down is not a failover", t, primary, why)
	}
	verdict, err := remediator.Observe(r, "assess-primary", map[string]string{"primary": primary}, func(context.Context) (replication.Verdict, error) {
		v := replication.Assess(primary, views)
		if !v.Dead {
			return v, remediator.NotYet("no failover: %s", v.Why)
		}
		return v, nil
	})
	if err != nil {
		return p, views, err
	}
	choice, err := remediator.Observe(r, "choose-candidate", map[string]string{"primary": primary, "force_node": r.Force()}, func(context.Context) (replication.Choice, error) {
		c, err := replication.Choose(primary, views, r.Force())
		if err != nil {
			return c, remediator.Refused("%v", err)
		}
		return c, nil
	})
	if err != nil {
		return p, views, err
	}
	pv := view(views, primary)
	p = plan{Primary: primary, Candidate: choice.Node, SemiSync: semiSync(views), Stop: pv.Reachable && pv.Running, Unreachable: !pv.Reachable,
		Why: verdict.Why + "; chose " + choice.Node + ": " + choice.Reasons, Others: others(views, primary, choice.Node)}
	r.SetTarget(primary)
	return p, views, nil
}

// others are the nodes other than primary and candidate: the replicas to
// repoint, whether readable now or not (an unreadable one is tried and
// reported).
func others(views []replication.Node, primary, candidate string) []string {
	var out []string
	for _, v := range views {
		if v.Name != primary && v.Name != candidate {
			out = append(out, v.Name)
		}
	}
	return out
}

func writerOf(w Writers, cluster string) (Writer, error) {
	if w == nil {
		return nil, nil
	}
	return w(cluster)
}

// fenceOutcome is what the fence step did, on the host and in the load
// balancer.
type fenceOutcome struct {
	Host     *Fenced `json:"host,omitempty"`
	HostNote string  `json:"host_note,omitempty"`
	Balancer string  `json:"load_balancer"`
}

// fence keeps the old primary from taking writes before anything else is
// promoted. The host fence is best effort (the host may be gone); the
// load balancer's is the one applications go through.
func fence(ctx context.Context, r *remediator.Run, nodes []Node, lb Writer, p plan) (fenceOutcome, error) {
	old, err := find(nodes, p.Primary)
	if err != nil {
		return fenceOutcome{}, err
	}
	return remediator.Act(ctx, r, "fence", p, func(ctx context.Context) (fenceOutcome, error) {
		var out fenceOutcome
		fctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		switch f, err := fenceHost(fctx, old, p); {
		case p.Unreachable:
			out.HostNote = "not fenced on its host: its agent did not answer; it must not come back writable (read_only=ON in its my.cnf), and replication-rejoin fences it when it does"
		case err != nil:
			out.HostNote = fmt.Sprintf("not fenced on its host: %v", err)
		default:
			out.Host = &f
		}
		out.Balancer = "no load balancer configured"
		if lb != nil {
			if err := lb.Fence(ctx, p.Primary); err != nil {
				out.Balancer = "not taken out of the writer pool: " + err.Error()
			} else {
				out.Balancer = "out of the writer pool"
			}
		}
		return out, nil
	})
}

func fenceHost(ctx context.Context, old Node, p plan) (Fenced, error) {
	if p.Unreachable {
		return Fenced{}, nil
	}
	return old.Fence(ctx, p.Stop)
}

// promote makes p.Candidate the primary: applied, promoted read-only,
// the others repointed, opened, admitted to the writer pool. until, for a
// switchover, is the old primary's final position; stuck, when set, is
// called if the candidate does not apply in time, before promote returns.
func promote(ctx context.Context, r *remediator.Run, nodes []Node, lb Writer, p plan, limit time.Duration, until string, stuck func(error) error) (Promoted, error) {
	cand, err := find(nodes, p.Candidate)
	if err != nil {
		return Promoted{}, err
	}
	if _, err := remediator.Wait(ctx, r, "wait-applied:"+p.Candidate, map[string]string{"until": until, "timeout": limit.String()}, func(ctx context.Context) (string, error) {
		return cand.WaitApplied(ctx, until, limit)
	}); err != nil {
		if stuck != nil {
			err = stuck(err)
		}
		return Promoted{}, err
	}
	if _, err := remediator.Act(ctx, r, "promote:"+p.Candidate, map[string]bool{"semi_sync": p.SemiSync, "open": false}, func(ctx context.Context) (Promoted, error) {
		return cand.Promote(ctx, p.SemiSync, false)
	}); err != nil {
		return Promoted{}, err
	}
	var failed []string
	for _, name := range p.Others {
		n, err := find(nodes, name)
		if err != nil {
			return Promoted{}, err
		}
		if _, err := remediator.Act(ctx, r, "repoint:"+name, map[string]any{"source": p.Candidate, "semi_sync": p.SemiSync}, func(ctx context.Context) (string, error) {
			return "replicating from " + p.Candidate, n.Replicate(ctx, p.Candidate, p.SemiSync, false)
		}); err != nil {
			failed = append(failed, fmt.Sprintf("%s (%v)", name, err))
		}
	}
	promoted, err := remediator.Act(ctx, r, "open:"+p.Candidate, map[string]bool{"semi_sync": p.SemiSync, "open": true}, func(ctx context.Context) (Promoted, error) {
		return cand.Promote(ctx, p.SemiSync, true)
	})
	if err != nil {
		return promoted, err
	}
	if lb != nil {
		if _, err := remediator.Act(ctx, r, "admit:"+p.Candidate, nil, func(ctx context.Context) (string, error) {
			return "in the writer pool", lb.Admit(ctx, p.Candidate)
		}); err != nil {
			// The health checks admit it within a second or two anyway.
			failed = append(failed, fmt.Sprintf("the load balancer (%v)", err))
		}
	}
	if len(failed) > 0 {
		return promoted, fmt.Errorf("%s is the primary and takes writes, but these were left as they were: %s", p.Candidate, strings.Join(failed, "; "))
	}
	return promoted, nil
}

// lostGTIDs records what the old primary held that the new one lacks,
// when the fence could read the old primary; else when it will be known.
func lostGTIDs(r *remediator.Run, p plan, fenced fenceOutcome, promoted Promoted, _ []replication.Node) error {
	if r.DryRun() {
		return nil
	}
	if fenced.Host == nil || fenced.Host.Binlog == "" {
		return r.Logf("lost-gtids", "not known yet: %s could not be read at the fence; when it runs again, replication-rejoin compares its history with %s's and lists any transaction only it holds", p.Primary, p.Candidate)
	}
	old, err1 := replication.ParseState(fenced.Host.Binlog)
	cur, err2 := replication.ParseState(promoted.Binlog)
	if err := errors.Join(err1, err2); err != nil {
		return r.Logf("lost-gtids", "cannot compare: %v", err)
	}
	lost := old.Lacking(cur)
	if len(lost) == 0 {
		return r.Logf("lost-gtids", "none: %s holds every transaction %s had (%s)", p.Candidate, p.Primary, fenced.Host.Binlog)
	}
	return r.Logf("lost-gtids", "%d transaction(s) of %s are not on %s: %s", old.Count(cur), p.Primary, p.Candidate, strings.Join(lost, ", "))
}
