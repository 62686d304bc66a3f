package remediator

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"time"
)

// timeout is how long a job of runbook may run.
func (r *Remediator) timeout(runbook string) time.Duration {
	if b, ok := r.runbooks[runbook].(Bounded); ok && b.Timeout() > 0 {
		return b.Timeout()
	}
	return r.o.JobTimeout
}

func (r *Remediator) newJob(cluster, runbook, target string, tr Trigger) *Job {
	now := r.o.Clock.Now()
	id := fmt.Sprintf("%s-%s-%04d", now.UTC().Format("20060102T150405Z"), runbook, r.seq.Add(1)%10000)
	return &Job{ID: id, Cluster: cluster, Runbook: runbook, Target: target, Trigger: tr, State: JobPending, CreatedAt: now}
}

// start runs job in the background; the caller holds r.mu.
func (r *Remediator) start(ctx context.Context, job *Job) {
	r.running[job.Cluster] = job
	if err := r.saveJob(job); err != nil {
		r.o.Logger.Error("job log", "job", job.ID, "err", err)
	}
	r.launch(ctx, job)
}

// launch runs job under its own cancellable context, which a repair may
// cancel when the runbook is preemptible; the caller holds r.mu.
func (r *Remediator) launch(ctx context.Context, job *Job) {
	jctx, cancel := context.WithCancelCause(ctx)
	r.cancels[job.Cluster] = cancel
	jctx, unlead := r.lead(jctx, cancel, job.Cluster)
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		defer cancel(nil)
		defer unlead()
		r.execute(ctx, jctx, job)
	}()
}

// runRunbook runs rb, a panic becoming the job's error (its stack goes
// to the log): one broken runbook must not take down the appliance and
// every other cluster's repairs with it.
func runRunbook(ctx context.Context, rb Runbook, run *Run, log *slog.Logger) (err error) {
	defer func() {
		if p := recover(); p != nil {
			log.Error("runbook panicked", "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			err = fmt.Errorf("runbook %s panicked: %v", rb.Name(), p)
		}
	}()
	return rb.Run(ctx, run)
}

// execute runs the job's runbook under jctx (ctx, which ends when the
// appliance stops, plus preemption) and records the outcome.
func (r *Remediator) execute(ctx, jctx context.Context, job *Job) {
	rb := r.runbooks[job.Runbook]
	log := r.o.Logger.With("job", job.ID, "cluster", job.Cluster, "runbook", job.Runbook)
	runCtx, cancel := r.o.Clock.WithTimeout(jctx, r.timeout(job.Runbook))
	defer cancel()

	if job.State == JobPending {
		_ = job.setState(JobRunning, "", r.o.Clock.Now())
		job.StartedAt = r.o.Clock.Now()
	}
	// The log must hold the job as running before any step acts: a job
	// the log does not know could not be resumed, or refused, after a
	// restart. A save that fails ends the job as failed, nothing done.
	var err error
	logErr := r.saveJob(job)
	log.Info("job started", "dry_run", job.DryRun, "resumes", job.Resumes)
	if logErr != nil {
		err = fmt.Errorf("the job log cannot be written, so nothing was done: %w", logErr)
		log.Error("job log", "err", logErr)
	} else if rb == nil {
		err = fmt.Errorf("runbook %q is not available in this version", job.Runbook)
	} else {
		// A step's save that fails stops the step before it runs (see
		// step); remember it for the status.
		save := func(j *Job) error {
			serr := r.saveJob(j)
			if serr != nil {
				logErr = errors.Join(logErr, serr)
			}
			return serr
		}
		err = runRunbook(runCtx, rb, &Run{ctx: runCtx, job: job, save: save, now: r.o.Clock.Now, log: log}, log)
	}
	lost := errors.Is(context.Cause(jctx), errLeadershipLost) || errors.Is(logErr, errTeamLog)
	if ctx.Err() != nil || lost {
		// The appliance is stopping, or it lost the cluster (or the
		// team's log): leave the job as running in the log, so the next
		// start, or whoever leads, resumes it.
		if lost {
			log.Warn("job interrupted: this appliance lost the cluster's leadership or the team's job log; the leader resumes it", "err", logErr)
		} else {
			log.Warn("job interrupted by shutdown; it resumes at the next start")
		}
		r.mu.Lock()
		if lost {
			// Still leading (etcd stalled): takeOver reads the team's log
			// again and resumes the job from there; the alert may start a
			// fresh one if the job never reached that log.
			delete(r.terms, job.Cluster)
			if fp := job.Trigger.Fingerprint; fp != "" {
				delete(r.handled, fp)
			}
		}
		delete(r.running, job.Cluster)
		delete(r.cancels, job.Cluster)
		r.mu.Unlock()
		return
	}
	now := r.o.Clock.Now()
	// The final state is saved and the cluster's slot freed under one
	// lock: whoever reads the job as ended in the log (an operator, the
	// API) can start the next job at once, never "already running".
	r.mu.Lock()
	var ab *Abort
	var pre *preempted
	switch {
	case err != nil && errors.As(context.Cause(jctx), &pre):
		_ = job.setState(JobAborted, pre.Error(), now)
	case err == nil && job.DryRun:
		_ = job.setState(JobPlanned, "dry run: the plan is recorded, nothing was done", now)
	case err == nil:
		_ = job.setState(JobSucceeded, "", now)
	case errors.As(err, &ab) && ab.Retry && job.Trigger.Source == "alert" && !job.DryRun:
		_ = job.setState(JobAborted, "not yet, tried again while the alert fires: "+ab.Reason, now)
	case errors.As(err, &ab):
		_ = job.setState(JobAborted, ab.Reason, now)
	default:
		_ = job.setState(JobFailed, err.Error(), now)
	}
	serr := r.saveJob(job)
	if serr != nil {
		logErr = errors.Join(logErr, serr)
	}
	ended := job.copy()
	if r.o.OnEnd != nil {
		r.o.OnEnd(ended)
	}
	delete(r.running, job.Cluster)
	delete(r.cancels, job.Cluster)
	r.finished[job.Cluster+"\x00"+job.Runbook+"\x00"+string(job.State)]++
	r.noteRestarts(job)
	if job.State == JobAborted || job.State == JobFailed {
		// Why nothing (more) was done belongs in the cluster status, not
		// only in the job: a refused bootstrap or a joiner ahead of the
		// Primary is what the operator paged at 3 a.m. reads first.
		r.decisions[job.Cluster] = fmt.Sprintf("job %s (%s) %s: %s", job.ID, job.Runbook, job.State, job.Reason)
		if !job.DryRun {
			r.notRepaired[job.Cluster] = r.decisions[job.Cluster]
		}
	}
	if job.State == JobSucceeded && !job.DryRun {
		delete(r.notRepaired, job.Cluster)
	}
	if logErr != nil {
		// Say it where the operator looks: the job may be missing from
		// the log the API lists.
		r.decisions[job.Cluster] = fmt.Sprintf("job %s (%s) %s: the job log cannot be written: %v", job.ID, job.Runbook, job.State, logErr)
	}
	r.noteRetry(job, err, now)
	if job.Trigger.Source == "alert" && !job.DryRun && actedOn(job) {
		r.acted[job.Cluster] = append(r.acted[job.Cluster], now)
	}
	r.mu.Unlock()

	if serr != nil {
		log.Error("job log", "err", serr)
	}
	log.Info("job ended", "state", ended.State, "reason", ended.Reason, "took", ended.EndedAt.Sub(ended.StartedAt))
	r.poke()
}

// noteRetry records whether the alert of job, which ended with err, is
// to be run again. A failed repair (not an aborted one: that found the
// condition gone) is tried again while its alert fires: during an
// incident the cluster moves under the job (a node Galera had not evicted
// yet, a joiner still starting); retryFailed bounds those attempts. A
// precondition not met yet (NotYet) is retried without bound while the
// same occurrence fires: the job did nothing, and anti-flapping counts
// only jobs that acted. A Refusal is never retried: a person decides.
// Caller holds r.mu.
func (r *Remediator) noteRetry(job *Job, err error, now time.Time) {
	fp := job.Trigger.Fingerprint
	if fp == "" || job.Trigger.Source != "alert" {
		return
	}
	var ab *Abort
	var refusal *Refusal
	notYet := errors.As(err, &ab) && ab.Retry && !job.DryRun && job.State == JobAborted
	if errors.As(err, &refusal) || (job.State != JobFailed && !notYet) {
		delete(r.failed, fp) // succeeded, found nothing to do, or refused: no retry
		return
	}
	f := r.failed[fp]
	if !f.startsAt.Equal(job.Trigger.StartsAt) {
		f = failedAlert{startsAt: job.Trigger.StartsAt}
	}
	f.notYet = notYet
	if !notYet {
		f.attempts++
	}
	f.after = now.Add(r.o.RetryDelay)
	r.failed[fp] = f
}

// actedOn reports whether any act step of the job completed.
func actedOn(j *Job) bool {
	for _, s := range j.Steps {
		if s.Kind == "act" && s.State == StepDone {
			return true
		}
	}
	return false
}

// adoptInterrupted takes over the jobs the log shows as pending or
// running: the appliance died during them. Each reserves its cluster at
// once, so no new job can start there before it resumes; Run then resumes
// them, and done steps are not repeated. A job older than the job timeout
// is aborted instead: the cluster has moved on, and its alerts, if still
// true, start a fresh job. It returns every job of the log.
func (r *Remediator) adoptInterrupted() []*Job {
	jobs, err := r.o.Log.List()
	if err != nil {
		r.o.Logger.Error("read job log", "err", err)
	}
	now := r.o.Clock.Now()
	for _, j := range jobs {
		if j.State.Done() || r.o.Team != nil {
			// In a team the shared log, not this copy, says what to
			// resume, and only the cluster's leader does (takeOver).
			continue
		}
		if r.running[j.Cluster] != nil || now.Sub(j.CreatedAt) > r.timeout(j.Runbook) {
			reason := fmt.Sprintf("interrupted by an appliance restart %s after it was created; not resumed", now.Sub(j.CreatedAt).Round(time.Second))
			if j.State == JobPending {
				reason = "interrupted by an appliance restart before it started"
			}
			_ = j.setState(JobAborted, reason, now)
			_ = r.o.Log.Save(j)
			r.o.Logger.Warn("interrupted job aborted", "job", j.ID, "reason", j.Reason)
			continue
		}
		j.Resumes++
		if j.Trigger.Fingerprint != "" {
			// The same alert re-notified after the restart is this job.
			r.handled[j.Trigger.Fingerprint] = j.Trigger.StartsAt
			r.touch(j.Trigger.Fingerprint, now)
		}
		r.running[j.Cluster] = j
		r.resume = append(r.resume, j)
	}
	return jobs
}

// resumeAdopted runs the jobs adoptInterrupted took over.
func (r *Remediator) resumeAdopted(ctx context.Context) {
	r.mu.Lock()
	defer r.mu.Unlock()
	jobs := r.resume
	r.resume = nil
	for _, j := range jobs {
		r.o.Logger.Warn("resuming interrupted job", "job", j.ID, "cluster", j.Cluster, "runbook", j.Runbook)
		r.launch(ctx, j)
	}
}
