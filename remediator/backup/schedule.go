package backup

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/nines-project/nines/internal/metric"
	"github.com/nines-project/nines/remediator"
)

// ParseSchedule parses a cron expression as the config takes it: five
// fields (minute hour day-of-month month day-of-week) or a descriptor
// (@daily, @hourly, @every 6h), optionally prefixed by CRON_TZ=Zone.
func ParseSchedule(spec string) (cron.Schedule, error) {
	return cron.ParseStandard(spec)
}

// Period returns the scheduled times around now: the latest one at or
// before now (zero when none within a year) and the next one after it.
// Their distance is the interval a backup is expected within.
func Period(s cron.Schedule, now time.Time) (prev, next time.Time) {
	next = s.Next(now)
	// Look back ever further until a scheduled time falls in the window,
	// then walk forward to the last one before now: a few steps for any
	// regular schedule, whatever its period.
	for _, back := range []time.Duration{time.Minute, time.Hour, 24 * time.Hour, 8 * 24 * time.Hour, 32 * 24 * time.Hour, 367 * 24 * time.Hour} {
		t := s.Next(now.Add(-back))
		if t.After(now) || t.IsZero() {
			continue
		}
		for i := 0; i < 100000; i++ {
			n := s.Next(t)
			if n.After(now) || n.IsZero() {
				return t, next
			}
			t = n
		}
		return t, next
	}
	return time.Time{}, next
}

// ExpectedInterval is the time between the scheduled run at or before now
// and the next one: how long a backup may be absent without a run being
// missed. For a schedule with uneven gaps (weekdays only), it is the gap
// now falls in. Zero when the schedule has no run within a year.
func ExpectedInterval(s cron.Schedule, now time.Time) time.Duration {
	prev, next := Period(s, now)
	if prev.IsZero() {
		// No run in the past year: the gap from the next run to the one
		// after is the best estimate.
		after := s.Next(next)
		if after.IsZero() || next.IsZero() {
			return 0
		}
		return after.Sub(next)
	}
	return next.Sub(prev)
}

// StartFunc starts a job, as remediator.Remediator.Start does.
type StartFunc func(ctx context.Context, req remediator.ManualRequest) (*remediator.Job, error)

// SchedulerOptions configure a Scheduler.
type SchedulerOptions struct {
	// Note records a decision for the cluster's remediation status (a
	// skipped run); may be nil.
	Note func(cluster, decision string)
	// Retry is how long to wait before trying again when the cluster is
	// busy with another job. Default 5 s.
	Retry  time.Duration
	Now    func() time.Time
	Logger *slog.Logger
}

// Scheduler starts each plan's backup job at its cron times. When the
// cluster is busy (a repair or another backup runs), it tries again every
// Retry until the job starts, or until the plan's next scheduled time
// comes: that run is then recorded as skipped, and the new one is due.
// A run missed because the appliance was down is not caught up; the
// NinesBackupStale alert reports the gap.
type Scheduler struct {
	start StartFunc
	o     SchedulerOptions
	since time.Time

	mu      sync.Mutex
	entries []*entry
}

type entry struct {
	plan  Plan
	sched cron.Schedule
	// next is the next scheduled time not yet due; due, when set, is a
	// scheduled time whose job has not started yet, retried at retryAt.
	next, due, retryAt time.Time
	skipped, started   int
	failedToStart      int
	lastJob, lastError string
}

// NewScheduler parses every plan's schedule; the first runs are the plans'
// next scheduled times after now.
func NewScheduler(plans []Plan, start StartFunc, o SchedulerOptions) (*Scheduler, error) {
	if o.Retry <= 0 {
		o.Retry = 5 * time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	now := o.Now()
	s := &Scheduler{start: start, o: o, since: now}
	var errs []error
	for _, p := range plans {
		sc, err := ParseSchedule(p.Schedule)
		if err != nil {
			errs = append(errs, fmt.Errorf("cluster %s, %s backup: schedule %q: %w", p.Cluster, p.Method, p.Schedule, err))
			continue
		}
		s.entries = append(s.entries, &entry{plan: p, sched: sc, next: sc.Next(now)})
	}
	return s, errors.Join(errs...)
}

// Run calls Tick every second until ctx ends.
func (s *Scheduler) Run(ctx context.Context) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			s.Tick(ctx, s.o.Now())
		}
	}
}

// Tick does what is due at now: a plan whose scheduled time came gets its
// job started, or retried when the cluster was busy at the last try.
// Callers call it from one goroutine, with a clock that does not go back.
func (s *Scheduler) Tick(ctx context.Context, now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, e := range s.entries {
		if !now.Before(e.next) {
			if !e.due.IsZero() {
				e.skipped++
				msg := fmt.Sprintf("scheduled %s backup of %s skipped: the cluster was busy from %s until the next scheduled time %s (last: %s)",
					e.plan.Method, e.plan.Cluster, e.due.Format(time.RFC3339), e.next.Format(time.RFC3339), e.lastError)
				s.o.Logger.Warn("scheduled backup skipped", "cluster", e.plan.Cluster, "method", e.plan.Method, "due", e.due, "reason", e.lastError)
				s.note(e.plan.Cluster, msg)
			}
			e.due, e.retryAt = e.next, time.Time{}
			e.next = e.sched.Next(now)
		}
		if e.due.IsZero() || now.Before(e.retryAt) {
			continue
		}
		job, err := s.start(ctx, remediator.ManualRequest{Cluster: e.plan.Cluster, Kind: "backup", Method: e.plan.Method, Source: "schedule", User: "schedule " + e.plan.Schedule})
		switch {
		case err == nil:
			e.started++
			e.lastJob, e.lastError = job.ID, ""
			e.due = time.Time{}
		case errors.Is(err, remediator.ErrNotLeader):
			// Appliances in HA: every one keeps the schedule, the
			// cluster's leader runs it. Not a failure here.
			e.due = time.Time{}
		case errors.Is(err, remediator.ErrBusy):
			if e.lastError == "" {
				s.note(e.plan.Cluster, fmt.Sprintf("scheduled %s backup due at %s waits: %v", e.plan.Method, e.due.Format(time.RFC3339), err))
			}
			e.lastError = err.Error()
			e.retryAt = now.Add(s.o.Retry)
		default:
			// Not a matter of waiting (the plan no longer fits the
			// cluster): this run is lost, the next one tries again.
			e.failedToStart++
			e.lastError = err.Error()
			e.due = time.Time{}
			s.o.Logger.Error("scheduled backup could not start", "cluster", e.plan.Cluster, "method", e.plan.Method, "err", err)
			s.note(e.plan.Cluster, fmt.Sprintf("scheduled %s backup could not start: %v", e.plan.Method, err))
		}
	}
}

func (s *Scheduler) note(cluster, msg string) {
	if s.o.Note != nil {
		s.o.Note(cluster, msg)
	}
}

// ScheduleStatus is where one plan's schedule stands.
type ScheduleStatus struct {
	Cluster  string    `json:"cluster"`
	Method   string    `json:"method"`
	Schedule string    `json:"schedule"`
	Next     time.Time `json:"next"`
	// Due is set while a scheduled run waits for the cluster.
	Due           time.Time `json:"due,omitzero"`
	Started       int       `json:"started"`
	Skipped       int       `json:"skipped"`
	FailedToStart int       `json:"failed_to_start"`
	LastJob       string    `json:"last_job,omitempty"`
	LastError     string    `json:"last_error,omitempty"`
}

// Status returns every plan's schedule state.
func (s *Scheduler) Status() []ScheduleStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]ScheduleStatus, len(s.entries))
	for i, e := range s.entries {
		out[i] = ScheduleStatus{Cluster: e.plan.Cluster, Method: e.plan.Method, Schedule: e.plan.Schedule, Next: e.next, Due: e.due,
			Started: e.started, Skipped: e.skipped, FailedToStart: e.failedToStart, LastJob: e.lastJob, LastError: e.lastError}
	}
	return out
}

// Metrics are the schedules' series.
func (s *Scheduler) Metrics() []metric.Metric {
	now := s.o.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	set := &metric.Set{}
	for _, e := range s.entries {
		c, m := e.plan.Cluster, e.plan.Method
		set.Add("nines_backup_expected_interval_seconds", "Seconds between the scheduled backup runs around now (from the cron schedule).", metric.Gauge, ExpectedInterval(e.sched, now).Seconds(), "cluster", c, "method", m)
		set.Add("nines_backup_schedule_start_timestamp_seconds", "When this appliance started scheduling the backup: the staleness reference while no backup is known.", metric.Gauge, float64(s.since.Unix()), "cluster", c, "method", m)
		set.Add("nines_backup_next_run_timestamp_seconds", "The next scheduled backup run.", metric.Gauge, float64(e.next.Unix()), "cluster", c, "method", m)
		set.Add("nines_backup_skipped_runs_total", "Scheduled backup runs skipped because the cluster stayed busy until the next scheduled time.", metric.Counter, float64(e.skipped), "cluster", c, "method", m)
	}
	return set.Metrics
}
