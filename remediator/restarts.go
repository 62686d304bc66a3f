package remediator

import (
	"strings"
	"time"
)

// NodeRestartTimes returns how long each node restart of the job took,
// from its start step's beginning to the end of the wait that saw it
// Synced (steps "start:<node>" and "wait-synced:<node>", as the Galera
// runbooks name them). Only restarts that reached Synced count: a start
// that failed says nothing about how long a good one takes.
func NodeRestartTimes(j *Job) []time.Duration {
	started := map[string]time.Time{}
	var out []time.Duration
	for _, s := range j.Steps {
		kind, node, ok := strings.Cut(s.Name, ":")
		if !ok || s.State != StepDone {
			continue
		}
		switch kind {
		case "start":
			started[node] = s.StartedAt
		case "wait-synced":
			if at, ok := started[node]; ok && !s.EndedAt.IsZero() && s.EndedAt.After(at) {
				out = append(out, s.EndedAt.Sub(at))
				delete(started, node)
			}
		}
	}
	return out
}

// noteRestarts keeps the longest node restart measured per cluster; mu
// held. It feeds nines_galera_restart_seconds, which the IST window alert
// compares the gcache against: a node down for a restart must still find
// what it missed in a donor's gcache.
func (r *Remediator) noteRestarts(j *Job) {
	if j.DryRun {
		return
	}
	for _, d := range NodeRestartTimes(j) {
		if d > r.restarts[j.Cluster] {
			r.restarts[j.Cluster] = d
		}
	}
}
