package remediator

import (
	"context"
	"fmt"
	"sort"
	"time"
)

// failedAlert counts the failed jobs of one alert occurrence.
type failedAlert struct {
	startsAt time.Time
	attempts int
	after    time.Time // no retry before
	// notYet: the last job found a precondition not met yet (NotYet);
	// such retries are not bounded by retryFailed.
	notYet bool
}

// A failed job is retried at most retryFailed times per alert occurrence,
// Options.RetryDelay apart: enough to ride out a cluster still settling,
// never a loop (a repeat of the same failure then pages through
// NinesRemediationJobFailed).
const retryFailed = 3

// Run schedules jobs until ctx ends. Jobs interrupted by a previous
// appliance run (adopted by New) are resumed first.
func (r *Remediator) Run(ctx context.Context) {
	r.resumeAdopted(ctx)
	r.pruneJobs()
	pruned := r.o.Clock.Now()
	for {
		select {
		case <-ctx.Done():
			r.mu.Lock()
			r.stopping = true
			r.mu.Unlock()
			r.wg.Wait()
			return
		case <-r.o.Clock.After(250 * time.Millisecond):
		case <-r.wake:
		}
		if now := r.o.Clock.Now(); now.Sub(pruned) >= time.Hour {
			r.pruneJobs()
			pruned = now
		}
		r.takeOver(ctx)
		r.schedule(ctx)
	}
}

// schedule starts, for each idle cluster, the job its most important
// unhandled alert asks for, once the alerts have settled.
func (r *Remediator) schedule(ctx context.Context) {
	now := r.o.Clock.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	byCluster := map[string][]*activeAlert{}
	for fp, a := range r.active {
		if h, ok := r.handled[fp]; ok && h.Equal(a.startsAt) {
			f, failed := r.failed[fp]
			if !failed || !f.startsAt.Equal(a.startsAt) || (!f.notYet && f.attempts > retryFailed) || now.Before(f.after) {
				continue
			}
		}
		byCluster[a.labels["cluster"]] = append(byCluster[a.labels["cluster"]], a)
	}
	for cluster, alerts := range byCluster {
		if j := r.running[cluster]; j != nil && !r.preemptible(j) {
			continue
		}
		if !r.leads(cluster) {
			// Not handled: if this appliance comes to lead the cluster
			// while the alert fires, it acts on it.
			r.decisions[cluster] = "another appliance leads this cluster and acts on it; this one watches"
			continue
		}
		settle := r.o.Settle
		if s := r.o.Policies[cluster].Settle; s != 0 {
			settle = max(s, 0)
		}
		settled := true
		for _, a := range alerts {
			if now.Sub(a.seen) < settle {
				settled = false
			}
		}
		if !settled {
			continue
		}
		sort.Slice(alerts, func(i, j int) bool {
			ri, rj := r.rank[alerts[i].labels["remediation"]], r.rank[alerts[j].labels["remediation"]]
			if ri != rj {
				return ri < rj
			}
			return alerts[i].fingerprint < alerts[j].fingerprint
		})
		a := alerts[0]
		pol, ok := r.o.Policies[cluster]
		if !ok {
			r.decide(cluster, a, fmt.Sprintf("alert %s: cluster %q is not configured", a.labels["alertname"], cluster))
			continue
		}
		switch {
		case pol.Mode == ModeOff:
			r.decide(cluster, a, fmt.Sprintf("alert %s would run %s, but remediation is off for this cluster", a.labels["alertname"], a.labels["remediation"]))
			continue
		case r.halted[cluster] != "":
			r.decide(cluster, a, fmt.Sprintf("alert %s would run %s, but automation is halted: %s", a.labels["alertname"], a.labels["remediation"], r.halted[cluster]))
			continue
		case r.o.Silenced != nil && r.o.Silenced(a.labels):
			// Not marked handled: when the silence ends, the alert acts.
			r.decisions[cluster] = fmt.Sprintf("alert %s is silenced or in a maintenance window: remediation paused", a.labels["alertname"])
			continue
		}
		if pol.Mode == ModeAuto && r.recentActs(cluster, pol, now) >= pol.MaxRecoveries {
			r.halt(cluster, fmt.Sprintf("%d automatic recoveries within %s (limit %d); resume with POST /api/v1/remediation/%s/resume once the cause is fixed", r.recentActs(cluster, pol, now), pol.Window, pol.MaxRecoveries, cluster))
			r.decide(cluster, a, "automation halted: "+r.halted[cluster])
			continue
		}
		if j := r.running[cluster]; j != nil {
			// A preemptible job (a backup) runs: an automatic repair
			// cancels it, a dry run waits for it. The alert stays
			// unhandled, so it starts its job once the cancelled one ended.
			if pol.Mode != ModeAuto {
				r.decisions[cluster] = fmt.Sprintf("alert %s waits for job %s (%s) to end", a.labels["alertname"], j.ID, j.Runbook)
				continue
			}
			if cancel := r.cancels[cluster]; cancel != nil {
				cause := &preempted{by: fmt.Sprintf("alert %s needs %s", a.labels["alertname"], a.labels["remediation"])}
				r.o.Logger.Warn("preempting job", "job", j.ID, "runbook", j.Runbook, "for", cause.by)
				cancel(cause)
				delete(r.cancels, cluster)
				r.decisions[cluster] = fmt.Sprintf("alert %s preempts job %s (%s); it starts once that job has stopped", a.labels["alertname"], j.ID, j.Runbook)
			}
			continue
		}
		job := r.newJob(cluster, a.labels["remediation"], a.labels["instance"], Trigger{Source: "alert", Alert: a.labels["alertname"], Fingerprint: a.fingerprint, StartsAt: a.startsAt, Labels: a.labels})
		job.DryRun = pol.Mode == ModeDryRun
		r.handled[a.fingerprint] = a.startsAt
		r.decisions[cluster] = fmt.Sprintf("alert %s started job %s (%s)", a.labels["alertname"], job.ID, job.Runbook)
		r.start(ctx, job)
	}
}

// preemptible reports whether j gives way to a repair.
func (r *Remediator) preemptible(j *Job) bool {
	p, ok := r.runbooks[j.Runbook].(Preemptible)
	return ok && p.Preemptible()
}

// preempted is the cause of a job cancelled for a repair.
type preempted struct{ by string }

func (p *preempted) Error() string { return "preempted: " + p.by }

// decide records why nothing ran for an alert and marks it handled, so the
// same notification does not produce the same decision every tick.
func (r *Remediator) decide(cluster string, a *activeAlert, why string) {
	if r.decisions[cluster] != why {
		r.o.Logger.Warn("no automatic action", "cluster", cluster, "alert", a.labels["alertname"], "why", why)
	}
	r.decisions[cluster] = why
	r.handled[a.fingerprint] = a.startsAt
}

// recentActs counts the cluster's automatic jobs that acted within the
// policy window. Caller holds r.mu.
func (r *Remediator) recentActs(cluster string, pol Policy, now time.Time) int {
	var keep []time.Time
	for _, t := range r.acted[cluster] {
		if now.Sub(t) < pol.Window {
			keep = append(keep, t)
		}
	}
	r.acted[cluster] = keep
	return len(keep)
}

// Resume lifts an anti-flapping halt, durably: recoveries before it no
// longer count, after a restart too. A resume that cannot be written
// still holds until the next restart, and the status says so.
func (r *Remediator) Resume(cluster string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.o.Policies[cluster]; !ok {
		return fmt.Errorf("unknown cluster %q", cluster)
	}
	r.decisions[cluster] = "automation resumed by an operator"
	if err := r.unhalt(cluster); err != nil {
		r.o.Logger.Error("resume not recorded", "cluster", cluster, "err", err)
		r.decisions[cluster] = fmt.Sprintf("automation resumed by an operator, but the resume cannot be written (%v): a restart of the appliance would halt it again", err)
	}
	return nil
}
