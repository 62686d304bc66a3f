package galera

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"github.com/nines-project/nines/galera"
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

// Fork is the latest bootstrap of a cluster on record: the position the
// Primary component's history began from there, and the nodes that have
// joined that history since. A node left out of it (it did not answer, or
// an admin forced another node) may hold transactions past Position that
// the bootstrap gave up: they are in no other node's history, although
// its seqnos continue from the same cluster UUID. Galera cannot tell (it
// compares seqnos only): an IST would skip them and a state transfer
// overwrite them.
type Fork struct {
	Job      string
	Node     string
	Position galera.Position
	Joined   map[string]bool
}

// LastFork reads the latest done bootstrap step of cluster's quorum
// recoveries in jobs and who joined after it: the bootstrapped node, the
// nodes that job or a later quorum recovery started, and the targets of
// later rejoin jobs that succeeded. A node restarted by hand outside
// nines after the bootstrap is not on record: its later rejoin may be
// refused, and an admin's rejoin job with force_node naming it overrides.
// ok is false when no bootstrap is on
// record or its position cannot be read.
func LastFork(jobs []*remediator.Job, cluster string) (f Fork, ok bool) {
	sorted := append([]*remediator.Job(nil), jobs...)
	sort.SliceStable(sorted, func(a, b int) bool { return sorted[a].CreatedAt.Before(sorted[b].CreatedAt) })
	for _, j := range sorted {
		if j.Cluster != cluster {
			continue
		}
		if node, pos, found := bootstrapStep(j); found {
			f, ok = Fork{Job: j.ID, Node: node, Position: pos, Joined: map[string]bool{node: true}}, true
		}
		if !ok {
			continue
		}
		switch j.Runbook {
		case remediator.RunbookGaleraQuorumRecovery:
			for _, s := range j.Steps {
				if s.State != remediator.StepDone {
					continue
				}
				// A started node, or a running one seen Synced after the
				// bootstrap, holds the new history.
				for _, p := range []string{"start:", "wait-synced:"} {
					if node, ok := strings.CutPrefix(s.Name, p); ok {
						f.Joined[node] = true
					}
				}
			}
		case remediator.RunbookGaleraNodeRejoin:
			if j.State == remediator.JobSucceeded {
				f.Joined[j.Target] = true
			}
		}
	}
	return f, ok
}

// bootstrapStep returns the node and position of j's done bootstrap step.
func bootstrapStep(j *remediator.Job) (string, galera.Position, bool) {
	if j.Runbook != remediator.RunbookGaleraQuorumRecovery {
		return "", galera.Position{}, false
	}
	for _, s := range j.Steps {
		if s.State != remediator.StepDone || !strings.HasPrefix(s.Name, "bootstrap:") {
			continue
		}
		var in struct{ Position string }
		if err := json.Unmarshal(s.Input, &in); err != nil {
			return "", galera.Position{}, false
		}
		pos, err := galera.ParsePosition(in.Position)
		if err != nil || !pos.Known() {
			return "", galera.Position{}, false
		}
		return strings.TrimPrefix(s.Name, "bootstrap:"), pos, true
	}
	return "", galera.Position{}, false
}

// forkedAway refuses a joiner that was left out of the latest bootstrap
// and recovered a position past it on the same history.
func forkedAway(target string, pos galera.Position, f Fork) error {
	if f.Joined[target] || pos.UUID != f.Position.UUID || pos.Seqno <= f.Position.Seqno {
		return nil
	}
	return remediator.Refused("%s recovered %s, %d transactions past %s, the position job %s bootstrapped the cluster from on %s while %s was not part of it: "+
		"those transactions were given up then and are in no other node's history; a state transfer would overwrite them; not started, a person must decide",
		target, pos, pos.Seqno-f.Position.Seqno, f.Position, f.Job, f.Node, target)
}
