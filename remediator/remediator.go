package remediator

import (
	"github.com/nines-project/nines"

	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
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
	// Kind is the cluster's kind: its job series start at 0 for the
	// runbooks of this kind only. Empty means every runbook.
	Kind nines.Kind
	// After MaxRecoveries automatic jobs that acted within Window, the
	// cluster's automation halts until an operator resumes it: a node that
	// keeps crashing needs a human, not a loop.
	MaxRecoveries int
	Window        time.Duration
	// Settle overrides Options.Settle for this cluster; 0 keeps it and a
	// negative value starts a job at the first alert. A replication
	// runbook reads the whole cluster before it decides, so alerts that
	// arrive later change nothing it would do, and every millisecond of
	// waiting is a millisecond without a writable primary.
	Settle time.Duration
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
	// start before OnEnd returns. It runs under the remediator's lock, so
	// keep it short and do not call the Remediator from it.
	OnEnd func(Job)
	// RetryDelay separates the retries of a failed job. Default 3 s.
	RetryDelay time.Duration
	// KeepJobs is how long ended jobs stay in the log. Default 30 days:
	// long enough for a month's uptime report and post-mortems, short
	// enough that an every-minute backup schedule (1,440 jobs a day) does
	// not grow the log without bound.
	KeepJobs time.Duration
	// Team, when set (appliances in HA over etcd), makes jobs run only on
	// each cluster's leader, fenced, with the job log shared (team.go).
	Team Team
	// Clock is the engine's time; nil means RealClock.
	Clock  Clock
	Logger *slog.Logger
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
	durable   map[string]haltState               // cluster → halts and resumes as saved (halts.go)
	decisions map[string]string                  // cluster → the latest decision, in words
	// notRepaired holds, per cluster, why the latest job that ended
	// without repairing (aborted or failed) did not; a succeeded job
	// clears it. A job started later does not hide it.
	notRepaired map[string]string
	finished    map[string]int           // "cluster\x00runbook\x00state" → count
	restarts    map[string]time.Duration // cluster → the longest node restart measured (restarts.go)
	resume      []*Job                   // interrupted jobs adopted at New, run by Run
	failed      map[string]failedAlert   // fingerprint → failed attempts of its current start
	lastSeen    map[string]time.Time     // fingerprint → when last notified or acted on (dedupe.go)
	swept       time.Time                // when lastSeen was last scanned for expired alerts
	terms       map[string]int64         // cluster → the leadership token whose jobs were taken over (team.go)

	wake chan struct{}
	wg   sync.WaitGroup
	// stopping is set, under mu, when Run's context ends: no job starts
	// after it, so none is added to wg while Run waits on it.
	stopping bool
}

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
	if o.Clock == nil {
		o.Clock = RealClock{}
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	r := &Remediator{o: o, runbooks: map[string]Runbook{}, rank: map[string]int{},
		active: map[string]*activeAlert{}, handled: map[string]time.Time{}, running: map[string]*Job{}, cancels: map[string]context.CancelCauseFunc{},
		acted: map[string][]time.Time{}, halted: map[string]string{}, decisions: map[string]string{}, notRepaired: map[string]string{},
		finished: map[string]int{}, restarts: map[string]time.Duration{}, failed: map[string]failedAlert{}, lastSeen: map[string]time.Time{}, terms: map[string]int64{}, wake: make(chan struct{}, 1)}
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
	jobs := r.adoptInterrupted()
	r.restoreHalts(jobs)
	for _, j := range jobs {
		r.noteRestarts(j)
	}
	return r, nil
}
