package rules

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"runtime/debug"
	"sync"
	"time"

	"github.com/prometheus/prometheus/model/rulefmt"

	"github.com/nines-project/nines"
)

// Sample is one series at one instant.
type Sample struct {
	Labels map[string]string // with __name__ when the series has one
	Value  float64
}

// Querier evaluates an instant query against the store.
type Querier interface {
	Query(ctx context.Context, expr string, at time.Time) ([]Sample, error)
}

// Appender stores recording rules' results. Flush makes everything
// appended visible to queries; the manager calls it before a rule that may
// read what an earlier rule of the same group recorded, as Prometheus'
// in-group ordering promises.
type Appender interface {
	// Append stores one rule's results at an evaluation. source names the
	// rule; a series it wrote last time and not now has ended (an alert
	// resolved, a recording rule's input gone), and the appender marks it
	// stale, as Prometheus does, so queries stop showing it at once
	// instead of for the five-minute lookback.
	Append(source string, samples []Sample, at time.Time) error
	Flush()
}

// Notifier delivers alerts (firing and resolved) to Alertmanager.
type Notifier interface {
	Send(ctx context.Context, alerts []nines.Alert) error
}

type health string

const (
	healthUnknown health = "unknown"
	healthOK      health = "ok"
	healthErr     health = "err"
)

// Options tune a Manager.
type Options struct {
	// Interval is the default evaluation interval of groups that set none.
	Interval time.Duration
	// ResendDelay is how often a firing alert is sent again while it lasts.
	ResendDelay time.Duration
	ExternalURL *url.URL
	Logger      *slog.Logger
	Now         func() time.Time
}

// Group is a rule group of a source: its rules run in order, every
// Interval, and are evaluated at the same timestamp.
type Group struct {
	Name     string
	Source   string
	Interval time.Duration
	Labels   map[string]string
	spec     rulefmt.RuleGroup
	rules    []any // *AlertingRule or *RecordingRule, in file order

	mu       sync.Mutex
	lastRun  time.Time
	evalDur  time.Duration
	failures int
}

// Manager owns the loaded rule groups and evaluates them.
type Manager struct {
	q      Querier
	app    Appender
	notify Notifier
	opts   Options

	mu      sync.RWMutex
	sources []ParsedSource
	groups  []*Group

	kick chan struct{}
}

// NewManager returns a Manager with no rules; call Load.
func NewManager(q Querier, app Appender, notify Notifier, o Options) *Manager {
	if o.Interval <= 0 {
		o.Interval = time.Second
	}
	if o.ResendDelay <= 0 {
		o.ResendDelay = 10 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Manager{q: q, app: app, notify: notify, opts: o, kick: make(chan struct{}, 1)}
}

// Load parses sources and swaps them in as the running rule set. It is all
// or nothing: on any error the running set stays as it was. Rules that are
// unchanged keep their pending and firing alerts.
func (m *Manager) Load(srcs []Source) error {
	parsed, err := ParseAll(srcs)
	if err != nil {
		return err
	}
	var groups []*Group
	for _, ps := range parsed {
		for _, g := range ps.Groups {
			groups = append(groups, m.newGroup(ps.Name, g))
		}
	}
	m.mu.Lock()
	old := map[string]any{}
	for _, g := range m.groups {
		for _, r := range g.rules {
			old[g.Name+"\x00"+ruleKey(r)] = r
		}
	}
	for _, g := range groups {
		for _, r := range g.rules {
			if ar, ok := r.(*AlertingRule); ok {
				if prev, ok := old[g.Name+"\x00"+ar.key()].(*AlertingRule); ok {
					ar.adopt(prev)
				}
			}
		}
	}
	m.sources, m.groups = parsed, groups
	m.mu.Unlock()
	m.Kick()
	return nil
}

func ruleKey(r any) string {
	switch r := r.(type) {
	case *AlertingRule:
		return r.key()
	case *RecordingRule:
		return r.key()
	}
	return ""
}

func (m *Manager) newGroup(source string, g rulefmt.RuleGroup) *Group {
	out := &Group{Name: g.Name, Source: source, Interval: durationOr(g.Interval, m.opts.Interval), Labels: g.Labels, spec: g}
	for _, r := range g.Rules {
		// Group labels apply to every rule, rule labels win.
		if len(g.Labels) > 0 {
			merged := map[string]string{}
			for k, v := range g.Labels {
				merged[k] = v
			}
			for k, v := range r.Labels {
				merged[k] = v
			}
			r.Labels = merged
		}
		if r.Alert != "" {
			out.rules = append(out.rules, newAlertingRule(r))
		} else {
			out.rules = append(out.rules, newRecordingRule(r))
		}
	}
	return out
}

// Sources returns the running rule set as parsed, for export.
func (m *Manager) Sources() []ParsedSource {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.sources
}

// Kick asks for an evaluation of every group now, without waiting for the
// next tick: the appliance calls it when a node's state changed, so an
// alert does not wait up to a second for its evaluation.
func (m *Manager) Kick() {
	select {
	case m.kick <- struct{}{}:
	default:
	}
}

// Run evaluates groups until ctx ends: each group when its interval has
// passed since its last run, and all of them on Kick.
func (m *Manager) Run(ctx context.Context) {
	tick := time.NewTicker(m.tickEvery())
	defer tick.Stop()
	for {
		forced := false
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		case <-m.kick:
			forced = true
		}
		m.EvalOnce(ctx, forced)
	}
}

// tickEvery is the scheduler's resolution: fine enough for the shortest
// interval a group can have (1 s by default).
func (m *Manager) tickEvery() time.Duration {
	return min(m.opts.Interval, time.Second) / 4
}

// EvalOnce evaluates the groups that are due (all of them when force is
// set) and sends the alerts that are due.
func (m *Manager) EvalOnce(ctx context.Context, force bool) {
	m.mu.RLock()
	groups := m.groups
	m.mu.RUnlock()
	now := m.opts.Now()
	var toSend []nines.Alert
	for _, g := range groups {
		g.mu.Lock()
		due := force || g.lastRun.IsZero() || now.Sub(g.lastRun) >= g.Interval-m.tickEvery()/2
		g.mu.Unlock()
		if !due {
			continue
		}
		toSend = append(toSend, m.evalGroup(ctx, g, now)...)
	}
	if len(toSend) > 0 && m.notify != nil {
		if err := m.notify.Send(ctx, toSend); err != nil && ctx.Err() == nil {
			m.opts.Logger.Warn("send alerts", "alerts", len(toSend), "err", err)
		}
	}
}

func (m *Manager) evalGroup(ctx context.Context, g *Group, ts time.Time) []nines.Alert {
	start := time.Now()
	ex := expander{ctx: ctx, ts: ts, q: m.q, externalURL: m.opts.ExternalURL}
	var errs []error
	var toSend []nines.Alert
	unflushed := false
	for i, r := range g.rules {
		if unflushed {
			m.app.Flush()
		}
		sent, stored, err := m.evalRule(ctx, r, fmt.Sprintf("rule:%s/%d/%s", g.Name, i, ruleName(r)), ts, ex)
		toSend = append(toSend, sent...)
		unflushed = stored
		if err != nil {
			errs = append(errs, err)
		}
	}
	g.mu.Lock()
	g.lastRun, g.evalDur = ts, time.Since(start)
	if len(errs) > 0 {
		g.failures++
	}
	g.mu.Unlock()
	if err := errors.Join(errs...); err != nil && ctx.Err() == nil {
		m.opts.Logger.Warn("rule group evaluation failed", "group", g.Name, "source", g.Source, "err", err)
	}
	return toSend
}

// evalRule evaluates one rule and stores its results. It returns the
// alerts due to be sent and whether samples were stored (flushed before
// the next rule reads them). A panic in it (a query, a template) marks
// the rule's health err with the panic as its lastError, and the stack
// goes to the log, instead of killing the appliance.
func (m *Manager) evalRule(ctx context.Context, r any, source string, ts time.Time, ex expander) (toSend []nines.Alert, stored bool, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("evaluation panicked: %v", p)
			m.opts.Logger.Error("rule evaluation panicked", "rule", ruleName(r), "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			markFailed(r, err.Error())
		}
	}()
	switch r := r.(type) {
	case *AlertingRule:
		var errs []error
		if err := r.eval(ctx, ts, m.q, ex); err != nil {
			errs = append(errs, err)
		}
		toSend = r.due(ts, m.opts.ResendDelay)
		if m.app != nil {
			if err := m.app.Append(source, alertSeries(r.active()), ts); err != nil {
				errs = append(errs, fmt.Errorf("store ALERTS of %s: %w", r.Name(), err))
			}
		}
		return toSend, false, errors.Join(errs...)
	case *RecordingRule:
		samples, err := r.eval(ctx, ts, m.q)
		if err != nil || m.app == nil {
			// A failed evaluation ends no series: the last values stand
			// for the lookback, as after a failed scrape.
			return nil, false, err
		}
		// Also with no samples: what the rule wrote before has ended.
		if err := m.app.Append(source, samples, ts); err != nil {
			return nil, true, fmt.Errorf("store %s: %w", r.Name(), err)
		}
		return nil, true, nil
	}
	return nil, false, nil
}

func ruleName(r any) string {
	switch r := r.(type) {
	case *AlertingRule:
		return r.Name()
	case *RecordingRule:
		return r.Name()
	}
	return ""
}

// markFailed sets a rule's health to err with msg as its lastError.
func markFailed(r any, msg string) {
	switch r := r.(type) {
	case *AlertingRule:
		r.mu.Lock()
		r.health, r.lastErr = healthErr, msg
		r.mu.Unlock()
	case *RecordingRule:
		r.mu.Lock()
		r.health, r.lastErr = healthErr, msg
		r.mu.Unlock()
	}
}

// Alerts returns every pending and firing alert.
func (m *Manager) Alerts() []nines.Alert {
	m.mu.RLock()
	groups := m.groups
	m.mu.RUnlock()
	var out []nines.Alert
	for _, g := range groups {
		for _, r := range g.rules {
			if ar, ok := r.(*AlertingRule); ok {
				out = append(out, ar.active()...)
			}
		}
	}
	return out
}

// Failures returns, per group, how many evaluations failed since load.
func (m *Manager) Failures() map[string]int {
	m.mu.RLock()
	groups := m.groups
	m.mu.RUnlock()
	out := map[string]int{}
	for _, g := range groups {
		g.mu.Lock()
		out[g.Name] = g.failures
		g.mu.Unlock()
	}
	return out
}

// LastDurations returns, per group, how long its last evaluation took.
func (m *Manager) LastDurations() map[string]time.Duration {
	m.mu.RLock()
	groups := m.groups
	m.mu.RUnlock()
	out := map[string]time.Duration{}
	for _, g := range groups {
		g.mu.Lock()
		if !g.lastRun.IsZero() {
			out[g.Name] = g.evalDur
		}
		g.mu.Unlock()
	}
	return out
}

// MetricAlerts is the series every pending and firing alert writes at each
// evaluation, as Prometheus does: the alert's labels, alertstate
// ("pending" or "firing"), value 1. It is the durable record of which
// alerts fired when; uptime reports read it. Nothing in a rule group reads
// it, so it waits for the store's next periodic flush.
const MetricAlerts = "ALERTS"

func alertSeries(active []nines.Alert) []Sample {
	out := make([]Sample, 0, len(active))
	for _, a := range active {
		ls := make(map[string]string, len(a.Labels)+2)
		for k, v := range a.Labels {
			ls[k] = v
		}
		ls["__name__"] = MetricAlerts
		ls["alertstate"] = a.State.String()
		out = append(out, Sample{Labels: ls, Value: 1})
	}
	return out
}
