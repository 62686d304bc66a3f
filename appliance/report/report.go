// Package report computes a cluster's uptime report from the probe's SLI
// counters, nines_probe_seconds_total{cluster,result}, kept in the store,
// and renders it as HTML, PDF, CSV or JSON with the same figures.
//
// Seconds are counted exactly, as increases of the counters over spans
// that partition the period (VictoriaMetrics' increase() takes the last
// sample before a span as its base and handles the counter resets of an
// appliance restart), never as averages of rates. Seconds no counter
// covers (the appliance was not running) are "no data": they are neither
// good nor bad, and they decide INSUFFICIENT_DATA.
//
// The figures (facts/slo.md, "What a management uptime report holds"):
//   - valid seconds: good + bad + unknown; maintenance seconds are apart.
//   - availability: good / valid, as a percentage to five decimals.
//   - downtime: bad seconds. Unknown seconds (no probe result) are shown
//     apart; they count against availability and the budget, not as
//     downtime.
//   - budget: (1 − target) × valid seconds; spent: bad + unknown;
//     remaining in seconds and per cent of the budget, negative once
//     breached.
//   - status, in this order: BREACHED when the remaining budget is below
//     zero; INSUFFICIENT_DATA when the counters cover less than 90 % of
//     the span's seconds; WARNING when less than 25 % of the budget
//     remains; OK otherwise.
//   - incidents: runs of bad or unknown seconds, merged when fewer than
//     30 s apart (a flapping outage is one incident), at one-second
//     resolution; MTTR is their mean duration and MTBF the good seconds
//     of the period per incident (uptime per failure).
package report

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"time"

	"github.com/nines-project/nines/appliance/store"
	"github.com/nines-project/nines/probe"
)

// ErrNotCounted: no second of the asked period has been counted yet.
var ErrNotCounted = errors.New("uptime report: not counted yet")

// Partial says the report ends before the asked end because the later
// seconds were not counted yet.
func (r *Report) Partial() bool { return r.End.Before(r.RequestedEnd) }

// Status words.
const (
	StatusOK               = "OK"
	StatusWarning          = "WARNING"
	StatusBreached         = "BREACHED"
	StatusInsufficientData = "INSUFFICIENT_DATA"
)

const (
	// warnRemaining: WARNING below this share of the budget left.
	warnRemaining = 0.25
	// minCoverage: INSUFFICIENT_DATA when the counters cover less than
	// this share of a span's seconds.
	minCoverage = 0.9
	// mergeGap: error runs fewer than this apart are one incident.
	mergeGap = 30 * time.Second
	// followUp: alerts firing and actions running this long after an
	// incident's last bad second belong to it; detection and repair come
	// after the failure they answer.
	followUp = 30 * time.Second
	// months is the length of the monthly table.
	months = 12
)

// Querier evaluates an instant query; *store.Store is one.
type Querier interface {
	Query(ctx context.Context, expr string, at time.Time) ([]store.Sample, error)
}

var _ Querier = (*store.Store)(nil)

// Job is an entry of the remediator's job log, as far as a report needs it.
type Job struct {
	ID      string    `json:"id"`
	Runbook string    `json:"runbook"`
	Target  string    `json:"target,omitempty"`
	Trigger string    `json:"trigger"` // alert | manual | schedule
	Alert   string    `json:"alert,omitempty"`
	DryRun  bool      `json:"dry_run,omitempty"`
	State   string    `json:"state"`
	Reason  string    `json:"reason,omitempty"`
	Start   time.Time `json:"start"`
	End     time.Time `json:"end,omitzero"` // zero while running
}

// Request says what to report on.
type Request struct {
	Cluster string
	// From and To bound the period [From, To); To is clamped to Now.
	From, To time.Time
	// TargetPercent is the cluster's SLO target, e.g. 99.999.
	TargetPercent float64
	// Jobs is the cluster's job log; jobs overlapping an incident are its
	// actions (scheduled jobs, backups, are not).
	Jobs []Job
	// Drills are the cluster's failure drills; those started in the
	// period are listed, and an incident overlapping one is marked.
	Drills []Drill
	// Now is the report's generation time.
	Now time.Time
}

// Counts are seconds of a span by what the probe found.
type Counts struct {
	Good        int64 `json:"good_seconds"`
	Bad         int64 `json:"bad_seconds"`
	Unknown     int64 `json:"unknown_seconds"`
	Maintenance int64 `json:"maintenance_seconds"`
	// NoData: seconds of the span no counter covers.
	NoData int64 `json:"no_data_seconds"`
}

// Valid are the seconds the SLO counts.
func (c Counts) Valid() int64 { return c.Good + c.Bad + c.Unknown }

func (c Counts) add(o Counts) Counts {
	return Counts{c.Good + o.Good, c.Bad + o.Bad, c.Unknown + o.Unknown, c.Maintenance + o.Maintenance, c.NoData + o.NoData}
}

// Summary is the figures of one span: the period, a day, a month.
type Summary struct {
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
	Counts
	// Availability is good / valid, a ratio; meaningless (0) when there
	// are no valid seconds (HasData false).
	Availability           float64 `json:"availability"`
	HasData                bool    `json:"has_data"`
	DowntimeSeconds        int64   `json:"downtime_seconds"`
	BudgetSeconds          float64 `json:"budget_seconds"`
	BudgetSpentSeconds     int64   `json:"budget_spent_seconds"`
	BudgetRemainingSeconds float64 `json:"budget_remaining_seconds"`
	// BudgetRemainingPercent is the remaining share of the budget in per
	// cent (negative when breached); 0 when the budget is 0.
	BudgetRemainingPercent float64 `json:"budget_remaining_percent"`
	Status                 string  `json:"status"`
}

// BudgetUsedPercent is the share of the budget spent, in per cent.
func (s Summary) BudgetUsedPercent() float64 {
	if s.BudgetSeconds <= 0 {
		return 0
	}
	return float64(s.BudgetSpentSeconds) / s.BudgetSeconds * 100
}

// Alert is an alert that fired during an incident.
type Alert struct {
	Name     string    `json:"alertname"`
	Severity string    `json:"severity,omitempty"`
	Firing   time.Time `json:"first_firing"` // first firing sample within the incident
}

// Incident is a run of bad or unknown seconds.
type Incident struct {
	// [Start, End) at one-second resolution.
	Start              time.Time `json:"start"`
	End                time.Time `json:"end"`
	DurationSeconds    int64     `json:"duration_seconds"`
	BadSeconds         int64     `json:"bad_seconds"`
	UnknownSeconds     int64     `json:"unknown_seconds"`
	BudgetSpentSeconds int64     `json:"budget_spent_seconds"`
	// BudgetSpentPercent is the share of the period's budget, per cent.
	BudgetSpentPercent float64 `json:"budget_spent_percent"`
	Alerts             []Alert `json:"alerts"`
	Actions            []Job   `json:"actions"`
	// Drill is the ID of the failure drill this incident happened
	// during, if any: the probe's seconds count all the same.
	Drill string `json:"drill,omitempty"`
}

// Report is an uptime report.
type Report struct {
	Cluster       string    `json:"cluster"`
	TargetPercent float64   `json:"target_percent"`
	GeneratedAt   time.Time `json:"generated_at"`
	// Summary.End is where the report counts to: RequestedEnd (the asked
	// end, clamped to the generation time), or CountedTo when the probe's
	// ledger has not counted that far yet.
	RequestedEnd time.Time `json:"requested_end"`
	// CountedTo is the end of the last second the SLI counters had
	// counted at generation time; zero when they have no recent sample.
	CountedTo time.Time `json:"counted_to,omitzero"`
	Summary
	Incidents []Incident `json:"incidents"`
	// Drills are the failure drills started in the period, with their
	// measured RTO and RPO.
	Drills []Drill `json:"drills"`
	// MTTRSeconds is the mean incident duration; MTBFSeconds the good
	// seconds of the period per incident. Both 0 without incidents.
	MTTRSeconds float64   `json:"mttr_seconds"`
	MTBFSeconds float64   `json:"mtbf_seconds"`
	Days        []Summary `json:"days"`
	Months      []Summary `json:"months"`
}

// Build computes the report. It reads the store only: one query per day of
// the period and of the monthly table, and, for days with bad or unknown
// seconds only, hours, minutes and seconds in turn (never a whole period
// at one-second steps).
func Build(ctx context.Context, q Querier, req Request) (*Report, error) {
	if req.Now.IsZero() {
		return nil, errors.New("uptime report: no generation time")
	}
	from, to := req.From.Truncate(time.Second), req.To.Truncate(time.Second)
	now := req.Now.Truncate(time.Second)
	if to.After(now) {
		to = now
	}
	if !from.Before(to) {
		return nil, fmt.Errorf("uptime report: from %s is not before to %s", from.Format(time.RFC3339), to.Format(time.RFC3339))
	}
	if req.TargetPercent <= 0 || req.TargetPercent >= 100 {
		return nil, fmt.Errorf("uptime report: target %v %% is not between 0 and 100", req.TargetPercent)
	}
	c := counter{q: q, cluster: req.Cluster}
	requested := to
	// The probe's ledger closes a second up to a few seconds after it
	// ends, so the newest seconds are not counted yet. A period reaching
	// past the last counted second ends there: otherwise those seconds
	// would read as "no data" now and as good a moment later, and two
	// requests for the same period would disagree.
	counted, err := c.countedTo(ctx, now)
	if err != nil {
		return nil, err
	}
	if !counted.IsZero() && counted.Before(to) {
		if !from.Before(counted) {
			return nil, fmt.Errorf("%w: the period from %s is counted only up to %s; ask again in a few seconds",
				ErrNotCounted, from.Format(time.RFC3339), counted.Format(time.RFC3339))
		}
		to = counted
	}
	target := req.TargetPercent / 100

	// Daily spans from the first month of the table (or from, if earlier)
	// to `to`, split at from as well, so the period, its days and the
	// months are all sums of the same spans.
	monthsFrom := monthStart(to.Add(-time.Second)).AddDate(0, 1-months, 0)
	lo := from
	if monthsFrom.Before(lo) {
		lo = monthsFrom
	}
	bounds := []time.Time{lo, from, to}
	for d := dayStart(lo).AddDate(0, 0, 1); d.Before(to); d = d.AddDate(0, 0, 1) {
		bounds = append(bounds, d)
	}
	sort.Slice(bounds, func(i, j int) bool { return bounds[i].Before(bounds[j]) })
	bounds = slices.CompactFunc(bounds, time.Time.Equal)
	spans := make([]span, len(bounds)-1)
	for i := range spans {
		spans[i] = span{bounds[i], bounds[i+1]}
	}
	counts, err := c.counts(ctx, spans, "")
	if err != nil {
		return nil, err
	}

	r := &Report{Cluster: req.Cluster, TargetPercent: req.TargetPercent, GeneratedAt: req.Now.UTC(), RequestedEnd: requested.UTC(), Incidents: []Incident{}}
	if !counted.IsZero() {
		r.CountedTo = counted.UTC()
	}
	var period Counts
	var errorDays []span
	days := map[time.Time]*Summary{}
	monthly := map[time.Time]*Summary{}
	for i, sp := range spans {
		ct := counts[i]
		if !sp.start.Before(from) {
			period = period.add(ct)
			d := dayStart(sp.start)
			if days[d] == nil {
				days[d] = &Summary{Start: sp.start}
				r.Days = append(r.Days, Summary{Start: d})
			}
			days[d].End = sp.end
			days[d].Counts = days[d].Counts.add(ct)
			if ct.Bad+ct.Unknown > 0 {
				errorDays = append(errorDays, sp)
			}
		}
		if !sp.start.Before(monthsFrom) {
			m := monthStart(sp.start)
			if monthly[m] == nil {
				monthly[m] = &Summary{Start: m}
			}
			monthly[m].End = sp.end
			monthly[m].Counts = monthly[m].Counts.add(ct)
		}
	}
	r.Summary = summarize(from, to, period, target)
	for i, d := range r.Days {
		s := days[d.Start]
		r.Days[i] = summarize(s.Start, s.End, s.Counts, target)
	}
	for m := monthsFrom; m.Before(to); m = m.AddDate(0, 1, 0) {
		s := monthly[m]
		if s == nil { // a month before the first span: nothing covered
			s = &Summary{Start: m, End: m.AddDate(0, 1, 0)}
		}
		r.Months = append(r.Months, summarize(m, s.End, s.Counts, target))
	}

	secs, err := c.errorSeconds(ctx, errorDays)
	if err != nil {
		return nil, err
	}
	r.Incidents = incidents(secs, r.BudgetSeconds)
	for i := range r.Incidents {
		in := &r.Incidents[i]
		if in.Alerts, err = c.alerts(ctx, in.Start, in.End.Add(followUp)); err != nil {
			return nil, err
		}
		in.Actions = actions(req.Jobs, in.Start, in.End.Add(followUp))
		in.Drill = drillOf(req.Drills, in.Start, in.End)
	}
	r.Drills = drillsIn(req.Drills, from, to)
	if n := len(r.Incidents); n > 0 {
		var total int64
		for _, in := range r.Incidents {
			total += in.DurationSeconds
		}
		r.MTTRSeconds = float64(total) / float64(n)
		r.MTBFSeconds = float64(period.Good) / float64(n)
	}
	return r, nil
}

// summarize computes a span's figures from its counts. Seconds the
// counters do not cover are the span's elapsed seconds less those counted.
func summarize(start, end time.Time, c Counts, target float64) Summary {
	elapsed := int64(end.Sub(start) / time.Second)
	covered := c.Valid() + c.Maintenance
	c.NoData = max(0, elapsed-covered)
	s := Summary{Start: start.UTC(), End: end.UTC(), Counts: c, DowntimeSeconds: c.Bad, BudgetSpentSeconds: c.Bad + c.Unknown}
	valid := c.Valid()
	s.HasData = valid > 0
	if s.HasData {
		s.Availability = float64(c.Good) / float64(valid)
	}
	s.BudgetSeconds = (1 - target) * float64(valid)
	s.BudgetRemainingSeconds = s.BudgetSeconds - float64(s.BudgetSpentSeconds)
	if s.BudgetSeconds > 0 {
		s.BudgetRemainingPercent = s.BudgetRemainingSeconds / s.BudgetSeconds * 100
	}
	switch {
	case s.BudgetRemainingSeconds < 0:
		s.Status = StatusBreached
	case elapsed == 0 || float64(covered) < minCoverage*float64(elapsed):
		s.Status = StatusInsufficientData
	case s.BudgetRemainingSeconds < warnRemaining*s.BudgetSeconds:
		s.Status = StatusWarning
	default:
		s.Status = StatusOK
	}
	return s
}

// errorSecond is one second with bad or unknown results.
type errorSecond struct {
	at           time.Time // the second's start
	bad, unknown int64
}

// incidents merges error seconds (sorted) into incidents.
func incidents(secs []errorSecond, budget float64) []Incident {
	out := []Incident{}
	for _, s := range secs {
		n := len(out)
		if n == 0 || s.at.Sub(out[n-1].End) >= mergeGap {
			out = append(out, Incident{Start: s.at, Alerts: []Alert{}, Actions: []Job{}})
			n++
		}
		in := &out[n-1]
		in.End = s.at.Add(time.Second)
		in.BadSeconds += s.bad
		in.UnknownSeconds += s.unknown
	}
	for i := range out {
		in := &out[i]
		in.DurationSeconds = int64(in.End.Sub(in.Start) / time.Second)
		in.BudgetSpentSeconds = in.BadSeconds + in.UnknownSeconds
		if budget > 0 {
			in.BudgetSpentPercent = float64(in.BudgetSpentSeconds) / budget * 100
		}
	}
	return out
}

// actions are the jobs that ran during [from, to), scheduled ones
// (backups) excepted: they do not answer an incident.
func actions(jobs []Job, from, to time.Time) []Job {
	out := []Job{}
	for _, j := range jobs {
		if j.Trigger == "schedule" || !j.Start.Before(to) || (!j.End.IsZero() && j.End.Before(from)) {
			continue
		}
		out = append(out, j)
	}
	sort.Slice(out, func(i, k int) bool { return out[i].Start.Before(out[k].Start) })
	return out
}

// results maps the SLI counter's result label to the field it adds to.
var results = map[string]func(*Counts) *int64{
	"good":        func(c *Counts) *int64 { return &c.Good },
	"bad":         func(c *Counts) *int64 { return &c.Bad },
	"unknown":     func(c *Counts) *int64 { return &c.Unknown },
	"maintenance": func(c *Counts) *int64 { return &c.Maintenance },
}

// selector is the cluster's SLI counters, optionally of some results.
func selector(cluster, resultRE string) string {
	sel := probe.MetricSeconds + "{cluster=" + strconv.Quote(cluster)
	if resultRE != "" {
		sel += ",result=~" + strconv.Quote(resultRE)
	}
	return sel + "}"
}

func dayStart(t time.Time) time.Time {
	t = t.UTC()
	return time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
}

func monthStart(t time.Time) time.Time {
	t = t.UTC()
	return time.Date(t.Year(), t.Month(), 1, 0, 0, 0, 0, time.UTC)
}
