package remediator

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"
)

// activeAlert is a firing alert that names a runbook, by fingerprint.
type activeAlert struct {
	fingerprint string
	labels      map[string]string
	startsAt    time.Time
	seen        time.Time
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
	now := r.o.Clock.Now()
	r.mu.Lock()
	for _, a := range msg.Alerts {
		rb := a.Labels["remediation"]
		if rb == "" || a.Labels["cluster"] == "" {
			continue
		}
		if _, ok := r.o.Policies[a.Labels["cluster"]]; !ok {
			// Not a cluster of this appliance: nothing to remember (a
			// decision per unknown name would grow without bound).
			r.o.Logger.Warn("alert for a cluster nines does not manage ignored", "cluster", a.Labels["cluster"], "alert", a.Labels["alertname"])
			continue
		}
		fp := a.Fingerprint
		if fp == "" {
			fp = labelKey(a.Labels)
		}
		if a.Status == "resolved" {
			r.forget(fp) // a new firing has a new start, hence a new job
			continue
		}
		if _, ok := r.runbooks[rb]; !ok {
			r.decisions[a.Labels["cluster"]] = fmt.Sprintf("alert %s names runbook %q, which nines does not have", a.Labels["alertname"], rb)
			continue
		}
		if kind := r.o.Policies[a.Labels["cluster"]].Kind; !r.ofKind(rb, kind) {
			// A rule that matched a cluster of another kind: a Galera
			// repair must never run on a replication cluster.
			r.decisions[a.Labels["cluster"]] = fmt.Sprintf("alert %s names runbook %s, which does not work on %s clusters: not run", a.Labels["alertname"], rb, kind)
			r.o.Logger.Warn("alert names a runbook of another kind of cluster; not run", "cluster", a.Labels["cluster"], "alert", a.Labels["alertname"], "runbook", rb, "kind", kind)
			continue
		}
		r.touch(fp, now)
		if cur, ok := r.active[fp]; ok && cur.startsAt.Equal(a.StartsAt) {
			continue // a repeat of what is already queued
		}
		r.active[fp] = &activeAlert{fingerprint: fp, labels: a.Labels, startsAt: a.StartsAt, seen: now}
		accepted++
	}
	r.prune(now)
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

// ErrBusy means the cluster already has a running job.
var ErrBusy = errors.New("the cluster already has a running job")

// ErrStopping refuses a job asked for while the appliance shuts down.
var ErrStopping = errors.New("nines is shutting down: no new job starts")

// ManualRequest starts a runbook by hand (or by a schedule).
type ManualRequest struct {
	Cluster string `json:"cluster"`
	// Kind names the job in the operator's words (see Kinds); Runbook
	// names the runbook itself. Give either.
	Kind    string `json:"kind,omitempty"`
	Runbook string `json:"runbook,omitempty"`
	Target  string `json:"node,omitempty"`
	// Force names the node to bootstrap from even when safety checks
	// refuse (nodes disagree, too few readable): the operator's call. On
	// a rejoin naming its target, it overrides the check against the
	// latest bootstrap (galera.LastFork), never the one against the
	// Primary's position.
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
	pol, ok := r.o.Policies[req.Cluster]
	if !ok {
		return nil, fmt.Errorf("unknown cluster %q", req.Cluster)
	}
	if !r.ofKind(name, pol.Kind) {
		return nil, fmt.Errorf("runbook %s does not work on %s clusters (cluster %s)", name, pol.Kind, req.Cluster)
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
	if r.stopping {
		return nil, ErrStopping
	}
	if j := r.running[req.Cluster]; j != nil {
		return nil, fmt.Errorf("%w: %s (%s)", ErrBusy, j.ID, j.Runbook)
	}
	if !r.leads(req.Cluster) {
		return nil, fmt.Errorf("cluster %s: %w", req.Cluster, ErrNotLeader)
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
