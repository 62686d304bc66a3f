package appliance

import (
	"context"
	"syscall"
	"time"

	"github.com/nines-project/nines"
	"github.com/nines-project/nines/exporter"
	"github.com/nines-project/nines/internal/metric"
)

// selfMetrics are the series that come from the appliance rather than from
// one node: each cluster's identity and cross-node findings, the probes'
// SLI, and nines' own health.
func (a *App) selfMetrics() []metric.Metric {
	snaps := a.exp.Latest()
	var out []metric.Metric
	for _, c := range a.cfg.Clusters {
		if !a.owns(c.Name) {
			continue // its owner writes them to the shared store
		}
		var mine []*nines.Snapshot
		for _, s := range snaps {
			if s.Cluster == c.Name {
				mine = append(mine, s)
			}
		}
		out = append(out, exporter.ClusterMetrics(c.Domain(), mine)...)
	}
	for _, p := range a.probes {
		if a.owns(p.Cluster()) {
			out = append(out, p.Metrics()...)
		}
	}
	// The SLI counters are not here: writeSLI stores them at their own
	// instant.
	out = append(out, a.rem.Metrics()...)
	out = append(out, a.backups.metrics()...)
	if a.rw != nil {
		out = append(out, a.rw.Metrics()...)
	}
	if a.team != nil {
		out = append(out, a.team.Metrics()...)
	}
	// Cluster-wide series come from the appliance: its host is their instance.
	for i := range out {
		if !hasLabel(out[i].Labels, "instance") {
			out[i].Labels = append(out[i].Labels, metric.Label{Name: "instance", Value: a.instance})
		}
	}
	set := &metric.Set{}
	var st syscall.Statfs_t
	if err := syscall.Statfs(a.cfg.DataDir, &st); err == nil {
		set.Add("nines_store_free_disk_bytes", "Free bytes on the filesystem of data_dir.", metric.Gauge, float64(st.Bavail)*float64(st.Bsize))
	}
	set.Add("nines_store_samples_written_total", "Samples written to the embedded store since start.", metric.Counter, float64(a.store.Written()))
	for group, n := range a.rules.Failures() {
		set.Add("nines_rule_group_failures_total", "Evaluations of the rule group that failed since it was loaded.", metric.Counter, float64(n), "group", group)
	}
	set.Add("nines_notifications_failed_total", "Deliveries of alerts to Alertmanager that failed.", metric.Counter, float64(a.sender.failed.Load()))
	set.Add("nines_notifications_sent_total", "Alerts delivered to Alertmanager.", metric.Counter, float64(a.sender.sent.Load()))
	set.Add("nines_start_time_seconds", "When this appliance process started.", metric.Gauge, float64(a.start.Unix()))
	set.Metrics = append(set.Metrics, a.exp.Lateness().Metrics()...)
	set.Metrics = append(set.Metrics, a.query.metrics()...)
	for group, d := range a.rules.LastDurations() {
		set.Add("nines_rule_group_last_duration_seconds", "How long the rule group's last evaluation took.", metric.Gauge, d.Seconds(), "group", group)
	}
	for i := range set.Metrics {
		set.Metrics[i].Labels = append(set.Metrics[i].Labels, metric.Label{Name: "instance", Value: a.instance})
	}
	return append(out, set.Metrics...)
}

// writeSelfMetrics stores selfMetrics every second, aligned with the
// scrapes, and the probes' SLI counters, until ctx ends.
func (a *App) writeSelfMetrics(ctx context.Context) {
	t := time.NewTicker(a.cfg.Scrape.Interval.Duration)
	defer t.Stop()
	written := map[string]time.Time{}
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			a.in.write("nines:self", a.selfMetrics(), now, false)
			a.writeSLI(written)
		}
	}
}

// writeSLI stores each probe's SLI counters at every second boundary
// they counted up to since the last write (written remembers it). A
// sample stamped with the scrape's time instead, or only the latest
// boundary when several seconds closed at once, would put a second's
// result in another second, and reports could place an outage off.
func (a *App) writeSLI(written map[string]time.Time) {
	for _, p := range a.probes {
		pts := p.SLIPoints(written[p.Cluster()])
		if !a.owns(p.Cluster()) {
			// Seconds another appliance probed: its counters, not ours.
			if len(pts) > 0 {
				written[p.Cluster()] = pts[len(pts)-1].Through
			}
			continue
		}
		for _, pt := range pts {
			written[p.Cluster()] = pt.Through
			for i := range pt.Metrics {
				pt.Metrics[i].Labels = append(pt.Metrics[i].Labels, metric.Label{Name: "instance", Value: a.instance})
			}
			a.in.write("nines:sli:"+p.Cluster(), pt.Metrics, pt.Through, false)
		}
	}
}

func hasLabel(ls []metric.Label, name string) bool {
	for _, l := range ls {
		if l.Name == name {
			return true
		}
	}
	return false
}
