package remediator

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"
)

// Runbook repairs one kind of failure. Run is called for a new job and
// again, from the top, for a job that was interrupted by an appliance
// restart: steps already done are then skipped through the Run's step
// helpers, so a runbook is written as a straight sequence of steps.
type Runbook interface {
	Name() string
	Run(ctx context.Context, r *Run) error
}

// Abort ends a job as aborted: the condition it was started for is gone,
// or a precondition does not hold. Nothing irreversible has been done, or
// the runbook says what was.
type Abort struct {
	Reason string
	// Retry marks a precondition not met yet (NotYet): the scheduler
	// runs the job's alert again while it fires.
	Retry bool
}

func (a *Abort) Error() string {
	if a.Retry {
		return "not yet: " + a.Reason
	}
	return "aborted: " + a.Reason
}

// Aborted returns an *Abort error.
func Aborted(format string, args ...any) error {
	return &Abort{Reason: fmt.Sprintf(format, args...)}
}

// NotYet returns an *Abort for a precondition that does not hold yet but
// may soon (another node is not Primary yet while quorum recovery runs).
// The job ends aborted, having done nothing; when an alert started it,
// the scheduler runs that alert again after Options.RetryDelay, as long
// as the same occurrence fires. Such jobs do not count as recoveries.
func NotYet(format string, args ...any) error {
	return &Abort{Reason: fmt.Sprintf(format, args...), Retry: true}
}

// Refusal ends a job as failed, so that it pages, and is never retried
// automatically: the runbook found a state only a person may resolve
// (a joiner ahead of the Primary), and a later attempt could act on it
// once the cluster had moved on (the Primary past the joiner's seqno).
type Refusal struct{ Reason string }

func (f *Refusal) Error() string { return "refused: " + f.Reason }

// Refused returns a *Refusal error.
func Refused(format string, args ...any) error {
	return &Refusal{Reason: fmt.Sprintf(format, args...)}
}

// Run is a job in progress, as its runbook sees it.
type Run struct {
	// ctx is the job's context: observations end with the job.
	ctx  context.Context
	job  *Job
	save func(*Job) error
	now  func() time.Time
	log  *slog.Logger
}

// Cluster is the job's cluster; Target its node (node runbooks); Force
// the node an operator named to override a safety refusal.
func (r *Run) Cluster() string { return r.job.Cluster }
func (r *Run) Target() string  { return r.job.Target }
func (r *Run) Force() string   { return r.job.Force }

// DryRun reports whether the job only records its plan.
func (r *Run) DryRun() bool { return r.job.DryRun }

// JobID is the job's ID; CreatedAt when it was created.
func (r *Run) JobID() string        { return r.job.ID }
func (r *Run) CreatedAt() time.Time { return r.job.CreatedAt }

// Param returns one of the job's parameters ("" when absent).
func (r *Run) Param(name string) string { return r.job.Params[name] }

// SetTarget records the node a runbook chose to work on (a backup's
// source), so the job list shows it. It is saved with the next step.
func (r *Run) SetTarget(node string) { r.job.Target = node }

// DoneStep returns the name of the first done step whose name starts
// with prefix: a resumed runbook uses it to tell how far it had got.
func (r *Run) DoneStep(prefix string) (string, bool) {
	for _, s := range r.job.Steps {
		if strings.HasPrefix(s.Name, prefix) && s.State == StepDone {
			return s.Name, true
		}
	}
	return "", false
}

// StepInput returns the recorded input of the step called name (nil when
// there is none): a resumed runbook reads what an earlier act step was
// given, such as the position a bootstrap started from.
func (r *Run) StepInput(name string) json.RawMessage {
	for _, s := range r.job.Steps {
		if s.Name == name {
			return s.Input
		}
	}
	return nil
}

// Logf records a note as a done step without input, for decisions the
// operator should read in the log ("chose n1: seqno 42").
func (r *Run) Logf(name, format string, args ...any) error {
	_, err := Observe(r, name, nil, func(context.Context) (string, error) { return fmt.Sprintf(format, args...), nil })
	return err
}

// Observe runs a step that only reads the live cluster. It runs every
// time, also on resume: observations must be fresh, and the latest one
// replaces an earlier one of the same name in the log.
func Observe[T any](r *Run, name string, input any, fn func(context.Context) (T, error)) (T, error) {
	return step(r.ctx, r, name, "observe", input, fn, false)
}

// Act runs a step that changes something. Once done it is never run
// again: on resume its recorded output is returned instead. In a dry run
// it is recorded as planned and not run; the zero T is returned.
func Act[T any](ctx context.Context, r *Run, name string, input any, fn func(context.Context) (T, error)) (T, error) {
	return step(ctx, r, name, "act", input, fn, true)
}

// Wait runs a step that waits for the cluster to reach a state after an
// act. In a dry run it is recorded as planned and skipped, since nothing
// was acted on.
func Wait[T any](ctx context.Context, r *Run, name string, input any, fn func(context.Context) (T, error)) (T, error) {
	var zero T
	if r.job.DryRun {
		return zero, r.record(name, "wait", input, StepPlanned, nil, "")
	}
	return step(ctx, r, name, "wait", input, fn, false)
}

func step[T any](ctx context.Context, r *Run, name, kind string, input any, fn func(context.Context) (T, error), once bool) (T, error) {
	var zero T
	if once {
		if s := r.job.step(name); s != nil && s.State == StepDone {
			var out T
			if len(s.Output) > 0 {
				if err := json.Unmarshal(s.Output, &out); err != nil {
					return zero, fmt.Errorf("step %s: read recorded output: %w", name, err)
				}
			}
			r.log.Info("step already done, not repeated", "step", name)
			return out, nil
		}
		if r.job.DryRun {
			return zero, r.record(name, kind, input, StepPlanned, nil, "")
		}
	}
	if err := r.record(name, kind, input, StepRunning, nil, ""); err != nil {
		return zero, err
	}
	if ctx == nil {
		ctx = context.Background()
	}
	out, err := fn(ctx)
	if err != nil {
		state := stepEnd(kind, err)
		if rerr := r.record(name, kind, input, state, nil, err.Error()); rerr != nil {
			return zero, errors.Join(err, rerr)
		}
		return zero, err
	}
	b, _ := json.Marshal(out)
	return out, r.record(name, kind, input, StepDone, b, "")
}

// stepEnd is the state of a step that returned err. An observation that
// aborts succeeded (it found the condition gone); an act or a wait that
// aborts did not do its work, so it must not count as done: a resumed job
// would skip it, and anti-flapping would count it as acting.
func stepEnd(kind string, err error) StepState {
	var ab *Abort
	switch {
	case !errors.As(err, &ab):
		return StepFailed
	case kind == "observe":
		return StepDone
	}
	return StepAborted
}

// record writes a step's state to the durable log before returning, so
// that what is in the log is what happened.
func (r *Run) record(name, kind string, input any, state StepState, output json.RawMessage, errText string) error {
	now := r.now()
	s := r.job.step(name)
	if s == nil {
		r.job.Steps = append(r.job.Steps, Step{Name: name, Kind: kind})
		s = &r.job.Steps[len(r.job.Steps)-1]
	}
	if input != nil {
		b, err := json.Marshal(input)
		if err != nil {
			return fmt.Errorf("step %s: encode input: %w", name, err)
		}
		s.Input = b
	}
	s.State = state
	switch state {
	case StepRunning:
		s.StartedAt, s.EndedAt, s.Error, s.Output = now, time.Time{}, "", nil
		s.Attempts++
	default:
		if s.StartedAt.IsZero() {
			s.StartedAt = now
		}
		s.EndedAt, s.Output, s.Error = now, output, errText
	}
	r.log.Info("job step", "step", name, "kind", kind, "state", state, "err", errText)
	return r.save(r.job)
}

// Preparer is implemented by runbooks that take parameters. Prepare
// checks a manual or scheduled request's parameters and completes them
// (defaults from the configuration) before the job is created, so a bad
// request is refused at once instead of being recorded as a failed job.
// It returns the parameters to record and the job's target.
type Preparer interface {
	Prepare(cluster, target string, params map[string]string) (map[string]string, string, error)
}

// Preemptible is implemented by runbooks whose jobs give way to a repair:
// when an alert asks an automatic remediation of a cluster whose running
// job is preemptible, that job is cancelled (it ends aborted, saying why)
// and the repair starts as soon as it has stopped. A backup is one: a
// cluster losing a node must not wait an hour for a dump to finish.
type Preemptible interface {
	Preemptible() bool
}

// Bounded is implemented by runbooks whose jobs need another limit than
// Options.JobTimeout: a backup of a large database runs for hours, a
// repair never should.
type Bounded interface {
	Timeout() time.Duration
}
