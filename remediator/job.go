// Package remediator turns alerts into repairs. It receives Alertmanager's
// webhook, maps each alert that names a runbook (the remediation label) to
// a job, and runs at most one job per cluster at a time under the safety
// policy of DESIGN.md: every runbook re-observes the live cluster before
// each irreversible step, every step is written to a durable job log
// before and after it runs, repeated recoveries halt automation and page a
// human, and dry-run shows the plan without acting.
package remediator

import (
	"encoding/json"
	"fmt"
	"time"
)

// JobState is where a job stands. Allowed transitions:
//
//	pending → running → succeeded | failed | aborted
//	pending → aborted                  (the condition was gone, mode off, halted)
//	running → running                  (resumed after an appliance restart)
type JobState string

const (
	JobPending   JobState = "pending"
	JobRunning   JobState = "running"
	JobSucceeded JobState = "succeeded"
	JobFailed    JobState = "failed"
	JobAborted   JobState = "aborted"
	// JobPlanned is the end state of a dry-run job: the plan was recorded,
	// nothing was done.
	JobPlanned JobState = "planned"
)

// Done reports whether the state is final.
func (s JobState) Done() bool {
	switch s {
	case JobSucceeded, JobFailed, JobAborted, JobPlanned:
		return true
	}
	return false
}

var jobTransitions = map[JobState][]JobState{
	JobPending: {JobRunning, JobAborted, JobPlanned},
	JobRunning: {JobRunning, JobSucceeded, JobFailed, JobAborted, JobPlanned},
}

func canTransition(from, to JobState) bool {
	for _, s := range jobTransitions[from] {
		if s == to {
			return true
		}
	}
	return false
}

// StepState is where one step stands. A step that was running when the
// appliance died stays "running" in the log; on resume it is run again
// (steps check the live state first, so running one twice is safe), while
// a "done" step is never run again.
type StepState string

const (
	StepRunning StepState = "running"
	StepDone    StepState = "done"
	StepFailed  StepState = "failed"
	StepPlanned StepState = "planned" // dry-run: would have run
	StepAborted StepState = "aborted" // an act or wait that refused: nothing done
)

// Step is one recorded step of a job: what it did, to what, and what came
// of it.
type Step struct {
	Name      string          `json:"name"`
	Kind      string          `json:"kind"` // observe | act
	State     StepState       `json:"state"`
	Input     json.RawMessage `json:"input,omitempty"`
	Output    json.RawMessage `json:"output,omitempty"`
	Error     string          `json:"error,omitempty"`
	StartedAt time.Time       `json:"started_at"`
	EndedAt   time.Time       `json:"ended_at,omitzero"`
	// Attempts counts how many times the step started (more than one only
	// when an interrupted step was resumed).
	Attempts int `json:"attempts"`
}

// Trigger is what started a job.
type Trigger struct {
	Source      string            `json:"source"` // alert | manual | schedule
	Alert       string            `json:"alert,omitempty"`
	Fingerprint string            `json:"fingerprint,omitempty"`
	StartsAt    time.Time         `json:"starts_at,omitzero"`
	Labels      map[string]string `json:"labels,omitempty"`
	User        string            `json:"user,omitempty"`
}

// Job is one run of a runbook against one cluster.
type Job struct {
	ID      string `json:"id"`
	Cluster string `json:"cluster"`
	Runbook string `json:"runbook"`
	Target  string `json:"target,omitempty"` // the node, for node runbooks
	DryRun  bool   `json:"dry_run"`
	Force   string `json:"force_node,omitempty"`
	// Params are the runbook's parameters (a backup's method, directory,
	// retention), completed with their defaults when the job was created,
	// so the log says exactly what the job was asked to do.
	Params  map[string]string `json:"params,omitempty"`
	Trigger Trigger           `json:"trigger"`
	State   JobState          `json:"state"`
	// Reason says why the job ended as it did, in words for the operator.
	Reason    string    `json:"reason,omitempty"`
	Steps     []Step    `json:"steps"`
	CreatedAt time.Time `json:"created_at"`
	StartedAt time.Time `json:"started_at,omitzero"`
	EndedAt   time.Time `json:"ended_at,omitzero"`
	// Resumes counts restarts of the appliance during the job.
	Resumes int `json:"resumes,omitempty"`
}

func (j *Job) setState(to JobState, reason string, now time.Time) error {
	if !canTransition(j.State, to) {
		return fmt.Errorf("job %s: %s → %s is not allowed", j.ID, j.State, to)
	}
	j.State = to
	if reason != "" {
		j.Reason = reason
	}
	if to.Done() {
		j.EndedAt = now
	}
	return nil
}

// copy returns a deep copy of j, safe to read while j goes on.
func (j *Job) copy() Job {
	cp := *j
	cp.Steps = append([]Step(nil), j.Steps...)
	if j.Params != nil {
		cp.Params = make(map[string]string, len(j.Params))
		for k, v := range j.Params {
			cp.Params[k] = v
		}
	}
	return cp
}

// step returns the recorded step with that name, if any.
func (j *Job) step(name string) *Step {
	for i := range j.Steps {
		if j.Steps[i].Name == name {
			return &j.Steps[i]
		}
	}
	return nil
}
