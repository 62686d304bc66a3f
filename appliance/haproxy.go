package appliance

import (
	"context"

	"github.com/nines-project/nines/appliance/config"
	"github.com/nines-project/nines/exporter"
	"github.com/nines-project/nines/internal/metric"
)

// newHAProxyScrapers makes one stats scraper per cluster with an haproxy
// key. Nothing is read here: a socket that is missing at start is
// nines_haproxy_up 0 at the first scrape, not a refused start (HAProxy may
// start after the appliance).
func newHAProxyScrapers(cfg *config.Config, a *App) []*exporter.HAProxyScraper {
	var out []*exporter.HAProxyScraper
	for _, c := range cfg.Clusters {
		if c.HAProxy == nil {
			continue
		}
		out = append(out, exporter.NewHAProxyScraper(exporter.HAProxyTarget{
			Cluster: c.Name, Socket: c.HAProxy.StatsSocket, WriterBackend: c.HAProxy.WriterBackend, ReaderBackend: c.HAProxy.ReaderBackend,
		}, cfg.Scrape.Timeout.Duration, a.log))
	}
	return out
}

// runHAProxy scrapes one HAProxy every scrape interval into the store.
func (a *App) runHAProxy(ctx context.Context, s *exporter.HAProxyScraper) {
	s.Run(ctx, a.cfg.Scrape.Interval.Duration, func(snap *exporter.HAProxySnapshot, changed bool) {
		if !a.owns(snap.Target.Cluster) {
			return // sharded: the owner stores it
		}
		a.in.write("haproxy:"+snap.Target.Cluster, exporter.HAProxyMetrics(snap), snap.Time, changed)
	})
}

// haproxyMetrics is the latest HAProxy series, for /metrics.
func (a *App) haproxyMetrics() []metric.Metric {
	var out []metric.Metric
	for _, s := range a.lbs {
		if snap := s.Latest(); snap != nil {
			out = append(out, exporter.HAProxyMetrics(snap)...)
		}
	}
	return out
}
