package remediator

import (
	"slices"

	"github.com/nines-project/nines"
	"sort"

	"github.com/nines-project/nines/internal/metric"
)

// Metrics are the remediator's series: nines_job_* and per-cluster state.
func (r *Remediator) Metrics() []metric.Metric {
	set := &metric.Set{}
	for _, s := range r.Status() {
		halted, running := 0.0, 0.0
		if s.Halted != "" {
			halted = 1
		}
		if s.RunningJob != "" {
			running = 1
		}
		set.Add("nines_remediation_halted", "1 when automatic remediation of the cluster stopped after too many recoveries.", metric.Gauge, halted, "cluster", s.Cluster)
		set.Add("nines_remediation_mode", "The cluster's remediation mode; constant 1.", metric.Gauge, 1, "cluster", s.Cluster, "mode", string(s.Mode))
		set.Add("nines_job_running", "1 while a job runs on the cluster.", metric.Gauge, running, "cluster", s.Cluster)
		set.Add("nines_remediation_recent_recoveries", "Automatic jobs that acted within the anti-flapping window.", metric.Gauge, float64(s.Recoveries), "cluster", s.Cluster)
	}
	// Every combination is exported from the start, at 0, so that
	// increase() sees the first failure as an increase.
	r.mu.Lock()
	clusters := make([]string, 0, len(r.o.Policies))
	for c := range r.o.Policies {
		clusters = append(clusters, c)
	}
	sort.Strings(clusters)
	for _, c := range clusters {
		if d, ok := r.restarts[c]; ok {
			set.Add("nines_galera_restart_seconds", "The longest node restart (start to Synced) among the jobs in the job log.", metric.Gauge, d.Seconds(), "cluster", c)
		}
		for _, rb := range r.o.Runbooks {
			for _, st := range []JobState{JobSucceeded, JobFailed, JobAborted, JobPlanned} {
				n := r.finished[c+"\x00"+rb.Name()+"\x00"+string(st)]
				if n == 0 && !r.ofKind(rb.Name(), r.o.Policies[c].Kind) {
					continue // a runbook of another kind of cluster, never run here
				}
				set.Add("nines_job_total", "Jobs that ended since the appliance started, by final state.", metric.Counter, float64(n), "cluster", c, "runbook", rb.Name(), "state", string(st))
			}
		}
	}
	r.mu.Unlock()
	return set.Metrics
}

// ofKind reports whether runbook works on clusters of kind; a runbook
// the registry does not describe, or an unknown kind, counts as yes.
func (r *Remediator) ofKind(runbook string, kind nines.Kind) bool {
	info, ok := LookupRunbook(runbook)
	if !ok || kind == "" {
		return true
	}
	return slices.Contains(info.Kinds, kind)
}
