package galera

import (
	"fmt"
	"sort"
	"strings"

	"github.com/nines-project/nines/remediator"
)

// priorBootstrap is the node an earlier quorum recovery of the cluster
// bootstrapped in the same incident, read from the durable job log so an
// appliance restart does not forget it ("" when none).
//
// The rule: a bootstrap step that is done opens an incident. It closes
// when a later quorum recovery ends succeeded without skipping a node
// (every configured node then joined that Primary, so none can be Primary
// apart), or when a person starts a quorum recovery by hand: that job, and
// every later one, no longer counts the earlier bootstrap. While it is
// open, the bootstrapped node counts as possibly Primary whenever it
// cannot be read (galera.DecideInput.PriorBootstrap).
func (rb QuorumRecovery) priorBootstrap(r *remediator.Run) (string, error) {
	if rb.History == nil {
		return "", nil
	}
	jobs, err := rb.History(r.Cluster())
	if err != nil {
		return "", fmt.Errorf("read the job log for earlier bootstraps: %w", err)
	}
	return PriorBootstrap(jobs, r.Cluster(), r.JobID()), nil
}

// PriorBootstrap applies priorBootstrap's rule to jobs, for the job self.
func PriorBootstrap(jobs []*remediator.Job, cluster, self string) string {
	var mine []*remediator.Job
	for _, j := range jobs {
		if j.Cluster == cluster && j.Runbook == remediator.RunbookGaleraQuorumRecovery {
			mine = append(mine, j)
		}
	}
	sort.SliceStable(mine, func(a, b int) bool { return mine[a].CreatedAt.Before(mine[b].CreatedAt) })
	open := ""
	for _, j := range mine {
		if j.Trigger.Source == "manual" {
			open = "" // a person took over
		}
		if j.ID == self {
			return open
		}
		if node, ok := bootstrapped(j); ok {
			open = node
		}
		if j.State == remediator.JobSucceeded && !skipped(j) {
			open = ""
		}
	}
	return open
}

func bootstrapped(j *remediator.Job) (string, bool) {
	for _, s := range j.Steps {
		if s.State == remediator.StepDone && strings.HasPrefix(s.Name, "bootstrap:") {
			return strings.TrimPrefix(s.Name, "bootstrap:"), true
		}
	}
	return "", false
}

func skipped(j *remediator.Job) bool {
	for _, s := range j.Steps {
		if strings.HasPrefix(s.Name, "skip:") {
			return true
		}
	}
	return false
}
