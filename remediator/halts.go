package remediator

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// Anti-flapping must survive a restart of the appliance: a restart must
// not lift a halt, nor forget the recoveries that count towards one. The
// recoveries are rebuilt from the job log (the automatic jobs that acted
// within the window); halts and operators' resumes are kept in
// haltsFile beside the jobs, since they are decisions no job records.

// haltsFile holds every cluster's haltState. Its name does not end in
// .json, so List never takes it for a job.
const haltsFile = "halts.state"

// haltState is one cluster's durable anti-flapping state.
type haltState struct {
	// Halted is why automation stopped; empty when it runs.
	Halted   string    `json:"halted,omitempty"`
	HaltedAt time.Time `json:"halted_at,omitzero"`
	// ResumedAt is when an operator last resumed: jobs that ended before
	// it no longer count towards a halt.
	ResumedAt time.Time `json:"resumed_at,omitzero"`
}

// loadHalts reads the halts file; a missing file means no halt.
func (l *JobLog) loadHalts() (map[string]haltState, error) {
	out := map[string]haltState{}
	b, err := os.ReadFile(filepath.Join(l.dir, haltsFile))
	if errors.Is(err, os.ErrNotExist) {
		return out, nil
	}
	if err != nil {
		return out, fmt.Errorf("read halts: %w", err)
	}
	if err := json.Unmarshal(b, &out); err != nil {
		return map[string]haltState{}, fmt.Errorf("read halts: %w", err)
	}
	return out, nil
}

// saveHalts writes the halts file durably.
func (l *JobLog) saveHalts(h map[string]haltState) error {
	b, err := json.MarshalIndent(h, "", "  ")
	if err != nil {
		return fmt.Errorf("save halts: %w", err)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.write(haltsFile, b); err != nil {
		return fmt.Errorf("save halts: %w", err)
	}
	return nil
}

// restoreHalts rebuilds the anti-flapping state at start: the halts
// recorded, then the recoveries from the job log, halting a cluster that
// reached its limit. Called by New, before Run.
func (r *Remediator) restoreHalts(jobs []*Job) {
	halts, err := r.o.Log.loadHalts()
	if err != nil {
		// Unknown state: stay on the safe side and let no job act
		// automatically until an operator resumes.
		r.o.Logger.Error("anti-flapping state unreadable; automation halted", "err", err)
	}
	r.durable = halts
	now := r.o.Clock.Now()
	for c, pol := range r.o.Policies {
		h := halts[c]
		if err != nil {
			r.halted[c] = fmt.Sprintf("the anti-flapping state cannot be read (%v); resume with POST /api/v1/remediation/%s/resume", err, c)
			continue
		}
		if h.Halted != "" {
			r.halted[c] = h.Halted
		}
		r.acted[c] = actedSince(jobs, c, later(h.ResumedAt, now.Add(-pol.Window)))
		if r.halted[c] == "" && pol.Mode == ModeAuto && len(r.acted[c]) >= pol.MaxRecoveries {
			r.halt(c, fmt.Sprintf("%d automatic recoveries within %s (limit %d), found in the job log at start; resume with POST /api/v1/remediation/%s/resume once the cause is fixed", len(r.acted[c]), pol.Window, pol.MaxRecoveries, c))
		}
	}
}

// actedSince returns when the cluster's automatic jobs that acted ended,
// for those that ended after since.
func actedSince(jobs []*Job, cluster string, since time.Time) []time.Time {
	var out []time.Time
	for _, j := range jobs {
		if j.Cluster == cluster && j.State.Done() && j.Trigger.Source == "alert" && !j.DryRun && actedOn(j) && j.EndedAt.After(since) {
			out = append(out, j.EndedAt)
		}
	}
	return out
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// halt stops the cluster's automation and records it durably. Caller
// holds r.mu (or is New).
func (r *Remediator) halt(cluster, reason string) {
	r.halted[cluster] = reason
	h := r.durable[cluster]
	h.Halted, h.HaltedAt = reason, r.o.Clock.Now()
	r.durable[cluster] = h
	r.o.Logger.Error("remediation halted", "cluster", cluster, "reason", reason)
	if err := r.o.Log.saveHalts(r.durable); err != nil {
		r.o.Logger.Error("the halt is not recorded: a restart of the appliance would lift it", "cluster", cluster, "err", err)
	}
}

// unhalt lifts the cluster's halt and records the resume durably; it
// returns the save error. Caller holds r.mu.
func (r *Remediator) unhalt(cluster string) error {
	delete(r.halted, cluster)
	r.acted[cluster] = nil
	r.durable[cluster] = haltState{ResumedAt: r.o.Clock.Now()}
	return r.o.Log.saveHalts(r.durable)
}
