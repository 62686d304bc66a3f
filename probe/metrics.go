package probe

import (
	"time"

	"github.com/nines-project/nines/internal/metric"
)

// Metric names. nines_probe_seconds_total is the SLI: rules, dashboards
// and reports all read these counters (facts/slo.md).
const (
	MetricSeconds             = "nines_probe_seconds_total"
	MetricSuccess             = "nines_probe_success"
	MetricDuration            = "nines_probe_duration_seconds"
	MetricAcknowledged        = "nines_probe_writes_acknowledged_total"
	MetricFailed              = "nines_probe_writes_failed_total"
	MetricUncertain           = "nines_probe_writes_uncertain_total"
	MetricLastAcknowledgedSeq = "nines_probe_last_acknowledged_seq"
)

// SLI returns the SLI counters, nines_probe_seconds_total{cluster,result}
// with all four results, and the instant they count up to: every second
// before it is counted, none after. Stored at that instant (a whole
// second), the counters' increase over (t-1s, t] is exactly the second
// before t, which is what lets a report place an outage to the second. ok
// is false before the prober has first started.
func (p *Prober) SLI() (ms []metric.Metric, through time.Time, ok bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ledger.next == 0 { // never started; after a stop the counts stay final
		return nil, time.Time{}, false
	}
	return p.sliMetrics(p.ledger.counts), time.Unix(p.ledger.next, 0), true
}

// SLIPoint is the SLI counters as they stood at one second boundary.
type SLIPoint struct {
	Through time.Time
	Metrics []metric.Metric
}

// SLIPoints returns the SLI counters at every second boundary after
// after, oldest first, as far back as the prober remembers (15 minutes).
// Seconds often close together (one whose probe ran to its bound holds
// the next ones back): stored one point per boundary, each second's
// result stays in its own second, where SLI's latest point alone would
// put them all in the last.
func (p *Prober) SLIPoints(after time.Time) []SLIPoint {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []SLIPoint
	for _, m := range p.ledger.marksAfter(after.Unix()) {
		out = append(out, SLIPoint{Through: time.Unix(m.at, 0), Metrics: p.sliMetrics(m.counts)})
	}
	return out
}

func (p *Prober) sliMetrics(c Seconds) []metric.Metric {
	set := &metric.Set{Const: []metric.Label{{Name: "cluster", Value: p.cluster}}}
	const help = "Wall-clock seconds by SLI result: good when a write probe through any endpoint committed and read back within the latency bound, bad when probes ran and none did, unknown when no probe result exists, maintenance when the second lies in a declared maintenance window (not valid for the SLO). Stored at the second boundary up to which seconds are counted."
	set.Add(MetricSeconds, help, metric.Counter, float64(c.Good), "result", "good")
	set.Add(MetricSeconds, help, metric.Counter, float64(c.Bad), "result", "bad")
	set.Add(MetricSeconds, help, metric.Counter, float64(c.Unknown), "result", "unknown")
	set.Add(MetricSeconds, help, metric.Counter, float64(c.Maintenance), "result", "maintenance")
	return set.Metrics
}

// Metrics returns a consistent snapshot of the prober's per-endpoint
// series, taken under one lock; they carry cluster and instance. The SLI
// counters come from SLI, stored at their own instant.
// nines_probe_success and nines_probe_duration_seconds appear once the
// endpoint's first probe has ended.
func (p *Prober) Metrics() []metric.Metric {
	p.mu.Lock()
	defer p.mu.Unlock()
	set := &metric.Set{Const: []metric.Label{{Name: "cluster", Value: p.cluster}}}
	for _, e := range p.eps {
		st := e.stats
		if !st.last.Time.IsZero() {
			ok := 0.0
			if st.last.Success {
				ok = 1
			}
			set.Add(MetricSuccess, "1 when the endpoint's last write probe committed and read back within the latency bound.", metric.Gauge, ok, "instance", e.addr)
			set.Add(MetricDuration, "Wall time of the endpoint's last write probe, read-back included.", metric.Gauge, st.last.Duration.Seconds(), "instance", e.addr)
		}
		set.Add(MetricAcknowledged, "Probe writes whose COMMIT returned OK.", metric.Counter, float64(st.acked), "instance", e.addr)
		set.Add(MetricFailed, "Probe writes not acknowledged (failed before or at COMMIT), uncertain ones included.", metric.Counter, float64(st.failed), "instance", e.addr)
		set.Add(MetricUncertain, "Probe writes whose COMMIT got no answer: they may or may not have committed.", metric.Counter, float64(st.uncertain), "instance", e.addr)
		set.Add(MetricLastAcknowledgedSeq, "Highest probe seq acknowledged through the endpoint.", metric.Gauge, float64(st.lastAcked), "instance", e.addr)
	}
	return set.Metrics
}
