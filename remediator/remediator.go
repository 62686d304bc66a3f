package remediator

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nines-project/nines/internal/metric"
)

// Mode is a cluster's remediation setting.
type Mode string

const (
	ModeAuto   Mode = "auto"    // act
	ModeDryRun Mode = "dry-run" // record the plan, touch nothing
	ModeOff    Mode = "off"     // do nothing; say so in the status
)

// Policy is a cluster's remediation policy.
type Policy struct {
	Mode Mode
	// After MaxRecoveries automatic jobs that acted within Window, the
	// cluster's automation halts until an operator resumes it: a node that
	// keeps crashing needs a human, not a loop.
	MaxRecoveries int
	Window        time.Duration
}

// Options configure a Remediator.
type Options struct {
	Log *JobLog
	// Runbooks in priority order: when several alerts of a cluster name
	// runbooks, the first in this list wins (quorum recovery before a
	// single node's rejoin).
	Runbooks []Runbook
	Policies map[string]Policy
	// Silenced reports whether an alert's labels are silenced or in a
	// maintenance window; such alerts pause remediation. May be nil.
	Silenced func(labels map[string]string) bool
	// Settle is how long to collect a cluster's alerts before choosing a
	// runbook, so that alerts of one incident arriving together are seen
	// together. Default 1 s.
	Settle time.Duration
	// JobTimeout bounds one job. Default 5 m. A runbook that implements
	// Bounded (a backup) sets its own.
	JobTimeout time.Duration
	// OnEnd, if not nil, is called with a copy of every job that ended
	// (not of one left running by a shutdown), after it was saved and
	// before its cluster's slot is free: no other job of the cluster can
	// start before OnEnd returns, so keep it short.
	OnEnd func(Job)
	// RetryDelay separates the retries of a failed job. Default 3 s.
	RetryDelay time.Duration
	// KeepJobs is how long ended jobs stay in the log. Default 30 days:
	// long enough for a month's uptime report and post-mortems, short
	// enough that an every-minute backup schedule (1,440 jobs a day) does
	// not grow the log without bound.
	KeepJobs time.Duration
	Now      func() time.Time
	Logger   *slog.Logger
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

// Remediator receives alerts and runs jobs.
type Remediator struct {
	o        Options
	runbooks map[string]Runbook
	rank     map[string]int
	seq      atomic.Uint64

	mu        sync.Mutex
	active    map[string]*activeAlert            // by fingerprint
	handled   map[string]time.Time               // fingerprint → StartsAt of the notification acted on
	running   map[string]*Job                    // cluster → its job
	cancels   map[string]context.CancelCauseFunc // cluster → cancels its running job
	acted     map[string][]time.Time             // cluster → when its automatic jobs that acted ended
	halted    map[string]string                  // cluster → why automation stopped
	decisions map[string]string                  // cluster → the latest decision, in words
	finished  map[string]int                     // "cluster\x00runbook\x00state" → count
	resume    []*Job                             // interrupted jobs adopted at New, run by Run
	failed    map[string]failedAlert             // fingerprint → failed attempts of its current start

	wake chan struct{}
	wg   sync.WaitGroup
}

type activeAlert struct {
	fingerprint string
	labels      map[string]string
	startsAt    time.Time
	seen        time.Time
}

// failedAlert counts the failed jobs of one alert occurrence.
type failedAlert struct {
	startsAt time.Time
	attempts int
	after    time.Time // no retry before
}

// A failed job is retried at most retryFailed times per alert occurrence,
// Options.RetryDelay apart: enough to ride out a cluster still settling,
// never a loop (a repeat of the same failure then pages through
// NinesRemediationJobFailed).
const retryFailed = 3

// New returns a Remediator; call Run.
func New(o Options) (*Remediator, error) {
	if o.Log == nil {
		return nil, errors.New("remediator: no job log")
	}
	if o.Settle <= 0 {
		o.Settle = time.Second
	}
	if o.RetryDelay <= 0 {
		o.RetryDelay = 3 * time.Second
	}
	if o.JobTimeout <= 0 {
		o.JobTimeout = 5 * time.Minute
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	r := &Remediator{o: o, runbooks: map[string]Runbook{}, rank: map[string]int{},
		active: map[string]*activeAlert{}, handled: map[string]time.Time{}, running: map[string]*Job{}, cancels: map[string]context.CancelCauseFunc{},
		acted: map[string][]time.Time{}, halted: map[string]string{}, decisions: map[string]string{},
		finished: map[string]int{}, failed: map[string]failedAlert{}, wake: make(chan struct{}, 1)}
	for i, rb := range o.Runbooks {
		r.runbooks[rb.Name()] = rb
		r.rank[rb.Name()] = i
	}
	for c, p := range o.Policies {
		if p.MaxRecoveries <= 0 {
			p.MaxRecoveries = 3
		}
		if p.Window <= 0 {
			p.Window = 10 * time.Minute
		}
		if p.Mode == "" {
			p.Mode = ModeAuto
		}
		o.Policies[c] = p
	}
	r.adoptInterrupted()
	return r, nil
}

// WebhookAlert is one alert of an Alertmanager webhook notification (the
// fields nines reads; the JSON names are Alertmanager's).
type WebhookAlert struct {
	Status      string            `json:"status"`
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
	StartsAt    time.Time         `json:"startsAt"`
	EndsAt      time.Time         `json:"endsAt"`
	Fingerprint string            `json:"fingerprint"`
}

// WebhookMessage is an Alertmanager webhook notification.
type WebhookMessage struct {
	Version string         `json:"version"`
	Status  string         `json:"status"`
	Alerts  []WebhookAlert `json:"alerts"`
}

// Receive takes a notification. Alerts without a remediation label, or
// naming a runbook nines does not have, are ignored. A notification that
// repeats an alert already acted on (same fingerprint and start) never
// starts a second job.
func (r *Remediator) Receive(msg WebhookMessage) (accepted int) {
	now := r.o.Now()
	r.mu.Lock()
	for _, a := range msg.Alerts {
		rb := a.Labels["remediation"]
		if rb == "" || a.Labels["cluster"] == "" {
			continue
		}
		fp := a.Fingerprint
		if fp == "" {
			fp = labelKey(a.Labels)
		}
		if a.Status == "resolved" {
			delete(r.active, fp)
			continue
		}
		if _, ok := r.runbooks[rb]; !ok {
			r.decisions[a.Labels["cluster"]] = fmt.Sprintf("alert %s names runbook %q, which nines does not have", a.Labels["alertname"], rb)
			continue
		}
		if cur, ok := r.active[fp]; ok && cur.startsAt.Equal(a.StartsAt) {
			continue // a repeat of what is already queued
		}
		r.active[fp] = &activeAlert{fingerprint: fp, labels: a.Labels, startsAt: a.StartsAt, seen: now}
		accepted++
	}
	r.mu.Unlock()
	r.poke()
	return accepted
}

func (r *Remediator) poke() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// Run schedules jobs until ctx ends. Jobs interrupted by a previous
// appliance run (adopted by New) are resumed first.
func (r *Remediator) Run(ctx context.Context) {
	r.resumeAdopted(ctx)
	t := time.NewTicker(250 * time.Millisecond)
	defer t.Stop()
	prune := time.NewTicker(time.Hour)
	defer prune.Stop()
	r.pruneJobs()
	for {
		select {
		case <-ctx.Done():
			r.wg.Wait()
			return
		case <-t.C:
		case <-r.wake:
		case <-prune.C:
			r.pruneJobs()
			continue
		}
		r.schedule(ctx)
	}
}

// pruneJobs removes ended jobs older than KeepJobs from the log.
func (r *Remediator) pruneJobs() {
	keep := r.o.KeepJobs
	if keep <= 0 {
		keep = 30 * 24 * time.Hour
	}
	n, err := r.o.Log.Prune(r.o.Now().Add(-keep))
	if err != nil {
		r.o.Logger.Warn("prune job log", "err", err)
	}
	if n > 0 {
		r.o.Logger.Info("pruned job log", "removed", n, "older_than", keep)
	}
}

// schedule starts, for each idle cluster, the job its most important
// unhandled alert asks for, once the alerts have settled.
func (r *Remediator) schedule(ctx context.Context) {
	now := r.o.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	byCluster := map[string][]*activeAlert{}
	for fp, a := range r.active {
		if h, ok := r.handled[fp]; ok && h.Equal(a.startsAt) {
			f, failed := r.failed[fp]
			if !failed || !f.startsAt.Equal(a.startsAt) || f.attempts > retryFailed || now.Before(f.after) {
				continue
			}
		}
		byCluster[a.labels["cluster"]] = append(byCluster[a.labels["cluster"]], a)
	}
	for cluster, alerts := range byCluster {
		if j := r.running[cluster]; j != nil && !r.preemptible(j) {
			continue
		}
		settled := true
		for _, a := range alerts {
			if now.Sub(a.seen) < r.o.Settle {
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
			r.halted[cluster] = fmt.Sprintf("%d automatic recoveries within %s (limit %d); resume with POST /api/v1/remediation/%s/resume once the cause is fixed", r.recentActs(cluster, pol, now), pol.Window, pol.MaxRecoveries, cluster)
			r.o.Logger.Error("remediation halted", "cluster", cluster, "reason", r.halted[cluster])
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

// timeout is how long a job of runbook may run.
func (r *Remediator) timeout(runbook string) time.Duration {
	if b, ok := r.runbooks[runbook].(Bounded); ok && b.Timeout() > 0 {
		return b.Timeout()
	}
	return r.o.JobTimeout
}

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

func (r *Remediator) newJob(cluster, runbook, target string, tr Trigger) *Job {
	now := r.o.Now()
	id := fmt.Sprintf("%s-%s-%04d", now.UTC().Format("20060102T150405Z"), runbook, r.seq.Add(1)%10000)
	return &Job{ID: id, Cluster: cluster, Runbook: runbook, Target: target, Trigger: tr, State: JobPending, CreatedAt: now}
}

// start runs job in the background; the caller holds r.mu.
func (r *Remediator) start(ctx context.Context, job *Job) {
	r.running[job.Cluster] = job
	if err := r.o.Log.Save(job); err != nil {
		r.o.Logger.Error("job log", "job", job.ID, "err", err)
	}
	r.launch(ctx, job)
}

// launch runs job under its own cancellable context, which a repair may
// cancel when the runbook is preemptible; the caller holds r.mu.
func (r *Remediator) launch(ctx context.Context, job *Job) {
	jctx, cancel := context.WithCancelCause(ctx)
	r.cancels[job.Cluster] = cancel
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		defer cancel(nil)
		r.execute(ctx, jctx, job)
	}()
}

// execute runs the job's runbook under jctx (ctx, which ends when the
// appliance stops, plus preemption) and records the outcome.
func (r *Remediator) execute(ctx, jctx context.Context, job *Job) {
	rb := r.runbooks[job.Runbook]
	log := r.o.Logger.With("job", job.ID, "cluster", job.Cluster, "runbook", job.Runbook)
	runCtx, cancel := context.WithTimeout(jctx, r.timeout(job.Runbook))
	defer cancel()

	if job.State == JobPending {
		_ = job.setState(JobRunning, "", r.o.Now())
		job.StartedAt = r.o.Now()
	}
	_ = r.o.Log.Save(job)
	log.Info("job started", "dry_run", job.DryRun, "resumes", job.Resumes)

	var err error
	if rb == nil {
		err = fmt.Errorf("runbook %q is not available in this version", job.Runbook)
	} else {
		err = rb.Run(runCtx, &Run{job: job, save: r.o.Log.Save, now: r.o.Now, log: log})
	}
	if ctx.Err() != nil {
		// The appliance is stopping: leave the job as running in the log,
		// so the next start resumes it.
		log.Warn("job interrupted by shutdown; it resumes at the next start")
		r.mu.Lock()
		delete(r.running, job.Cluster)
		delete(r.cancels, job.Cluster)
		r.mu.Unlock()
		return
	}
	now := r.o.Now()
	var ab *Abort
	var pre *preempted
	switch {
	case err != nil && errors.As(context.Cause(jctx), &pre):
		_ = job.setState(JobAborted, pre.Error(), now)
	case err == nil && job.DryRun:
		_ = job.setState(JobPlanned, "dry run: the plan is recorded, nothing was done", now)
	case err == nil:
		_ = job.setState(JobSucceeded, "", now)
	case errors.As(err, &ab):
		_ = job.setState(JobAborted, ab.Reason, now)
	default:
		_ = job.setState(JobFailed, err.Error(), now)
	}
	if serr := r.o.Log.Save(job); serr != nil {
		log.Error("job log", "err", serr)
	}
	log.Info("job ended", "state", job.State, "reason", job.Reason, "took", job.EndedAt.Sub(job.StartedAt))
	if r.o.OnEnd != nil {
		r.o.OnEnd(job.copy())
	}

	r.mu.Lock()
	delete(r.running, job.Cluster)
	delete(r.cancels, job.Cluster)
	r.finished[job.Cluster+"\x00"+job.Runbook+"\x00"+string(job.State)]++
	if fp := job.Trigger.Fingerprint; job.State == JobFailed && job.Trigger.Source == "alert" && fp != "" {
		// A failed repair (not an aborted one: that found the condition
		// gone) is tried again while its alert fires: during an incident
		// the cluster moves under the job (a node Galera had not evicted
		// yet, a joiner still starting). retryFailed bounds the attempts;
		// anti-flapping still counts every job that acted.
		f := r.failed[fp]
		f.attempts++
		f.after = now.Add(r.o.RetryDelay)
		f.startsAt = job.Trigger.StartsAt
		r.failed[fp] = f
	} else if fp != "" {
		delete(r.failed, fp) // succeeded, or found nothing to do: no retry
	}
	if job.Trigger.Source == "alert" && !job.DryRun && actedOn(job) {
		r.acted[job.Cluster] = append(r.acted[job.Cluster], now)
	}
	r.mu.Unlock()
	r.poke()
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
// true, start a fresh job.
func (r *Remediator) adoptInterrupted() {
	jobs, err := r.o.Log.List()
	if err != nil {
		r.o.Logger.Error("read job log", "err", err)
	}
	now := r.o.Now()
	for _, j := range jobs {
		if j.State.Done() {
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
		}
		r.running[j.Cluster] = j
		r.resume = append(r.resume, j)
	}
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

// ErrBusy means the cluster already has a running job.
var ErrBusy = errors.New("the cluster already has a running job")

// ManualRequest starts a runbook by hand (or by a schedule).
type ManualRequest struct {
	Cluster string `json:"cluster"`
	// Kind names the job in the operator's words (see Kinds); Runbook
	// names the runbook itself. Give either.
	Kind    string `json:"kind,omitempty"`
	Runbook string `json:"runbook,omitempty"`
	Target  string `json:"node,omitempty"`
	// Force names the node to bootstrap from even when safety checks
	// refuse (nodes disagree, too few readable): the operator's call.
	Force  string `json:"force_node,omitempty"`
	DryRun bool   `json:"dry_run,omitempty"`
	// Method (backup: mariabackup | dump) and BackupID (verify) are the
	// common parameters, spelled out for the API; Params holds any
	// other. They are checked and completed by the runbook (Preparer)
	// and recorded in the job.
	Method   string            `json:"method,omitempty"`
	BackupID string            `json:"backup_id,omitempty"`
	Params   map[string]string `json:"params,omitempty"`
	User     string            `json:"-"`
	// Source is the trigger recorded in the job: "manual" (the default)
	// or "schedule".
	Source string `json:"-"`
}

// Kinds maps the job kinds the API and CLI accept to runbook names.
var Kinds = map[string]string{
	"backup":  "backup",
	"verify":  "backup-verify",
	"rejoin":  "galera-node-rejoin",
	"recover": "galera-quorum-recovery",
}

// runbookOf resolves a request's kind or runbook name.
func runbookOf(req ManualRequest) (string, error) {
	if req.Kind == "" {
		return req.Runbook, nil
	}
	rb, ok := Kinds[req.Kind]
	if !ok {
		kinds := make([]string, 0, len(Kinds))
		for k := range Kinds {
			kinds = append(kinds, k)
		}
		sort.Strings(kinds)
		return "", fmt.Errorf("unknown kind %q (have %s)", req.Kind, strings.Join(kinds, ", "))
	}
	if req.Runbook != "" && req.Runbook != rb {
		return "", fmt.Errorf("kind %q is runbook %s, not %s", req.Kind, rb, req.Runbook)
	}
	return rb, nil
}

// Start runs a runbook by hand. It ignores the cluster's mode and halt:
// an operator asked. It does not count towards the anti-flapping limit.
// On a busy cluster it returns an error wrapping ErrBusy and starts
// nothing.
func (r *Remediator) Start(ctx context.Context, req ManualRequest) (*Job, error) {
	name, err := runbookOf(req)
	if err != nil {
		return nil, err
	}
	rb, ok := r.runbooks[name]
	if !ok {
		names := make([]string, 0, len(r.runbooks))
		for n := range r.runbooks {
			names = append(names, n)
		}
		sort.Strings(names)
		return nil, fmt.Errorf("unknown runbook %q (have %s)", name, strings.Join(names, ", "))
	}
	if _, ok := r.o.Policies[req.Cluster]; !ok {
		return nil, fmt.Errorf("unknown cluster %q", req.Cluster)
	}
	params := map[string]string{}
	for k, v := range req.Params {
		params[k] = v
	}
	if req.Method != "" {
		params["method"] = req.Method
	}
	if req.BackupID != "" {
		params["id"] = req.BackupID
	}
	target := req.Target
	if p, ok := rb.(Preparer); ok {
		if params, target, err = p.Prepare(req.Cluster, req.Target, params); err != nil {
			return nil, fmt.Errorf("%s on %s: %w", name, req.Cluster, err)
		}
	} else if len(params) > 0 {
		return nil, fmt.Errorf("runbook %s takes no parameters (got %v)", name, params)
	}
	source := req.Source
	if source == "" {
		source = "manual"
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if j := r.running[req.Cluster]; j != nil {
		return nil, fmt.Errorf("%w: %s (%s)", ErrBusy, j.ID, j.Runbook)
	}
	job := r.newJob(req.Cluster, name, target, Trigger{Source: source, User: req.User})
	job.Force, job.DryRun = req.Force, req.DryRun
	if len(params) > 0 {
		job.Params = params
	}
	by := req.User
	if by == "" {
		by = source
	}
	r.decisions[req.Cluster] = fmt.Sprintf("%s job %s (%s) started by %s", source, job.ID, job.Runbook, by)
	cp := job.copy() // before the job's goroutine starts changing it
	r.start(ctx, job)
	return &cp, nil
}

// Note records a decision about a cluster that was taken outside the
// remediator (a scheduled backup that could not start), so that
// GET /api/v1/remediation says it.
func (r *Remediator) Note(cluster, decision string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.decisions[cluster] = decision
}

// Resume lifts an anti-flapping halt.
func (r *Remediator) Resume(cluster string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.o.Policies[cluster]; !ok {
		return fmt.Errorf("unknown cluster %q", cluster)
	}
	delete(r.halted, cluster)
	r.acted[cluster] = nil
	r.decisions[cluster] = "automation resumed by an operator"
	return nil
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
	Recoveries   int    `json:"recent_recoveries"`
}

// Status returns every configured cluster's status.
func (r *Remediator) Status() []ClusterStatus {
	now := r.o.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []ClusterStatus
	for c, p := range r.o.Policies {
		s := ClusterStatus{Cluster: c, Mode: p.Mode, Halted: r.halted[c], LastDecision: r.decisions[c], Recoveries: r.recentActs(c, p, now)}
		if j := r.running[c]; j != nil {
			s.RunningJob = j.ID
		}
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Cluster < out[j].Cluster })
	return out
}

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
		for _, rb := range r.o.Runbooks {
			for _, st := range []JobState{JobSucceeded, JobFailed, JobAborted, JobPlanned} {
				n := r.finished[c+"\x00"+rb.Name()+"\x00"+string(st)]
				set.Add("nines_job_total", "Jobs that ended since the appliance started, by final state.", metric.Counter, float64(n), "cluster", c, "runbook", rb.Name(), "state", string(st))
			}
		}
	}
	r.mu.Unlock()
	return set.Metrics
}

func labelKey(ls map[string]string) string {
	keys := make([]string, 0, len(ls))
	for k := range ls {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		b.WriteString(k + "=" + ls[k] + ",")
	}
	return b.String()
}
