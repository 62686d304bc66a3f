package exporter

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/nines-project/nines"
	"github.com/nines-project/nines/exporter/galera"
	"github.com/nines-project/nines/exporter/mysql"
	"github.com/nines-project/nines/internal/metric"
)

// SnapshotMetrics derives every series of a snapshot. It is the only place
// metrics are made from observations: the store and /metrics both call it.
// Every series carries cluster and instance.
func SnapshotMetrics(s *nines.Snapshot) []metric.Metric {
	set := &metric.Set{Const: []metric.Label{{Name: "cluster", Value: s.Cluster}, {Name: "instance", Value: s.Instance}}}
	up, success := 0.0, 0.0
	if s.Up {
		up = 1
	}
	if s.Up && s.Err == "" {
		success = 1
	}
	set.Add("mysql_up", "Whether the node answered SHOW GLOBAL STATUS in this scrape.", metric.Gauge, up)
	set.Add("nines_scrape_success", "1 when every statement of the scrape succeeded and every value parsed.", metric.Gauge, success)
	set.Add("nines_scrape_duration_seconds", "Wall time of the scrape, connect included.", metric.Gauge, s.Duration.Seconds())
	set.Add("nines_scrape_timestamp_seconds", "When the scrape started, Unix seconds.", metric.Gauge, float64(s.Time.UnixNano())/1e9)
	// Both counters exist from the first scrape on, at 0 errors on a
	// healthy node, so rate() and panels over them show 0, not no data.
	set.Add("nines_scrapes_total", "Scrapes of the node since nines started.", metric.Counter, float64(s.Scrapes))
	set.Add("nines_scrape_errors_total", "Scrapes of the node since nines started that failed in any statement or value (nines_scrape_success 0).", metric.Counter, float64(s.Errors))
	if !s.Up {
		return set.Metrics
	}
	mysql.GlobalStatusMetrics(set, s.Status)
	if s.Variables != nil {
		mysql.GlobalVariablesMetrics(set, s.Variables)
		set.Add("nines_variables_age_seconds", "Age of the SHOW GLOBAL VARIABLES values in this scrape.", metric.Gauge, s.Time.Sub(s.VariablesTime).Seconds())
	}
	mysql.ReplicaStatusMetrics(set, s.Replicas)
	mysql.ReplicationMetrics(set, s.Replication)
	mysql.HeartbeatMetrics(set, s.HeartbeatLag)
	galera.Metrics(set, s.Galera)
	return set.Metrics
}

// Collector exposes the latest snapshot of every node on /metrics.
func (e *Exporter) Collector() prometheus.Collector {
	return metric.Collector(func() []metric.Metric {
		var out []metric.Metric
		for _, snap := range e.Latest() {
			out = append(out, SnapshotMetrics(snap)...)
		}
		return out
	})
}
