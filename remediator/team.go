package remediator

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/nines-project/nines/agent"
)

// Team is the remediator's view of the other appliances watching the
// same clusters (package ha, over etcd). With a Team, a job of a cluster
// runs only on the cluster's leader, under a context that ends with the
// leadership, and every agent request it makes carries the leadership's
// fencing token (agent.WithFence). Every save of a job goes to the
// team's log first, fenced by the leadership, so the next leader resumes
// the job from its last recorded step.
type Team interface {
	// Lead returns, while this appliance leads cluster, a context that
	// ends when it no longer does and the fencing token.
	Lead(cluster string) (ctx context.Context, token int64, ok bool)
	// PutJob records a job (deletes it when done), only while this
	// appliance leads the cluster.
	PutJob(cluster, id string, data []byte, done bool) error
	// RunningJobs returns the cluster's jobs a leader left unfinished.
	RunningJobs(ctx context.Context, cluster string) ([][]byte, error)
}

// ErrNotLeader refuses a manual job on a cluster another appliance leads.
var ErrNotLeader = errors.New("another appliance leads this cluster: start the job there")

// errLeadershipLost is the cause of a job cancelled because this
// appliance lost the cluster: the job stays running in the team's log.
var errLeadershipLost = errors.New("this appliance lost the leadership of the cluster")

// errTeamLog marks a save the team's log refused (this appliance no
// longer leads the cluster, or etcd is out of reach): the job is left to
// whoever leads, never ended as failed here.
var errTeamLog = errors.New("the team's job log in etcd refused the write")

// saveJob writes j to the team's log (fenced), then to the local log. A
// team write refused means another appliance leads: the step that asked
// for the save does not run.
func (r *Remediator) saveJob(j *Job) error {
	if r.o.Team != nil {
		b, err := json.Marshal(j)
		if err != nil {
			return fmt.Errorf("save job %s: %w", j.ID, err)
		}
		if err := r.o.Team.PutJob(j.Cluster, j.ID, b, j.State.Done()); err != nil {
			return fmt.Errorf("%w: %w", errTeamLog, err)
		}
	}
	return r.o.Log.Save(j)
}

// leads reports whether this appliance may start a job on cluster now:
// it leads it, and has taken over the jobs the team's log held for this
// leadership (a new job before that could repeat the previous leader's
// work). Caller holds r.mu.
func (r *Remediator) leads(cluster string) bool {
	if r.o.Team == nil {
		return true
	}
	_, token, ok := r.o.Team.Lead(cluster)
	return ok && r.terms[cluster] == token
}

// lead is the job context's leadership: ctx with the fencing token for
// the agents, cancelled with errLeadershipLost when the leadership ends.
// Without a Team it returns ctx as it is.
func (r *Remediator) lead(jctx context.Context, cancel context.CancelCauseFunc, cluster string) (context.Context, func()) {
	if r.o.Team == nil {
		return jctx, func() {}
	}
	lctx, token, ok := r.o.Team.Lead(cluster)
	if !ok {
		cancel(errLeadershipLost)
		return jctx, func() {}
	}
	stop := context.AfterFunc(lctx, func() { cancel(errLeadershipLost) })
	return agent.WithFence(jctx, cluster, token), func() { stop() }
}

// takeOver resumes, for each cluster this appliance has just come to
// lead, the jobs the team's log holds: a previous leader's unfinished
// work, continued from its last recorded step (done act steps are never
// repeated). Local jobs of the cluster the team's log no longer holds
// were ended by another appliance: they are closed in the local log.
func (r *Remediator) takeOver(ctx context.Context) {
	if r.o.Team == nil {
		return
	}
	for cluster := range r.o.Policies {
		_, token, ok := r.o.Team.Lead(cluster)
		r.mu.Lock()
		fresh := ok && r.terms[cluster] != token && r.running[cluster] == nil && !r.stopping
		r.mu.Unlock()
		if !ok || !fresh {
			continue
		}
		raw, err := r.o.Team.RunningJobs(ctx, cluster)
		if err != nil {
			r.o.Logger.Warn("read the team's job log", "cluster", cluster, "err", err)
			continue // tried again at the next tick
		}
		shared := map[string]bool{}
		var jobs []*Job
		for _, b := range raw {
			var j Job
			if err := json.Unmarshal(b, &j); err != nil {
				r.o.Logger.Error("a job in the team's log does not parse; not resumed", "cluster", cluster, "err", err)
				continue
			}
			shared[j.ID] = true
			if !j.State.Done() {
				jobs = append(jobs, &j)
			}
		}
		local, _ := r.o.Log.List()
		now := r.o.Clock.Now()
		r.mu.Lock()
		r.terms[cluster] = token
		for _, j := range local {
			if j.Cluster == cluster && !j.State.Done() && !shared[j.ID] {
				_ = j.setState(JobAborted, "handed over: another appliance led the cluster and ended this job (see its job log)", now)
				_ = r.o.Log.Save(j)
			}
		}
		for i, j := range jobs {
			if i > 0 || r.running[cluster] != nil {
				// One job per cluster: two in the team's log is a bug of
				// an earlier version; the extra ones are closed.
				_ = j.setState(JobAborted, "handed over with another running job of the cluster; not resumed", now)
				_ = r.saveJob(j)
				continue
			}
			j.Resumes++
			if j.Trigger.Fingerprint != "" {
				r.handled[j.Trigger.Fingerprint] = j.Trigger.StartsAt
				r.touch(j.Trigger.Fingerprint, now)
			}
			r.decisions[cluster] = fmt.Sprintf("took over job %s (%s) from the previous leader", j.ID, j.Runbook)
			r.o.Logger.Warn("resuming a job of the previous leader", "job", j.ID, "cluster", cluster, "runbook", j.Runbook, "token", token)
			r.running[cluster] = j
			r.launch(ctx, j)
		}
		r.mu.Unlock()
	}
}
