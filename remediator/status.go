package remediator

import (
	"sort"
)

// Note records a decision about a cluster that was taken outside the
// remediator (a scheduled backup that could not start), so that
// GET /api/v1/remediation says it.
func (r *Remediator) Note(cluster, decision string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.decisions[cluster] = decision
}

// ClusterStatus says where a cluster's remediation stands and why.
type ClusterStatus struct {
	Cluster    string `json:"cluster"`
	Mode       Mode   `json:"mode"`
	Halted     string `json:"halted,omitempty"`
	RunningJob string `json:"running_job,omitempty"`
	// LastDecision explains the latest choice, including why no automatic
	// action was taken when an alert asked for one.
	LastDecision string `json:"last_decision,omitempty"`
	// NotRepaired says why the latest job that ended without repairing
	// (aborted: nothing to do or nothing it may do; failed: refused or
	// could not) did not, until a job succeeds: a job started since does
	// not hide it.
	NotRepaired string `json:"not_repaired,omitempty"`
	Recoveries  int    `json:"recent_recoveries"`
}

// Status returns every configured cluster's status.
func (r *Remediator) Status() []ClusterStatus {
	now := r.o.Clock.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []ClusterStatus
	for c, p := range r.o.Policies {
		s := ClusterStatus{Cluster: c, Mode: p.Mode, Halted: r.halted[c], LastDecision: r.decisions[c], NotRepaired: r.notRepaired[c], Recoveries: r.recentActs(c, p, now)}
		if j := r.running[c]; j != nil {
			s.RunningJob = j.ID
		}
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Cluster < out[j].Cluster })
	return out
}
