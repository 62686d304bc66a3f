package config

import (
	"time"

	"github.com/nines-project/nines"
)

// applyDefaults fills the fields left out with their defaults. It reads
// nothing and reports nothing: validation comes after it.
func (c *Config) applyDefaults() {
	if c.Listen == "" {
		c.Listen = DefaultListen
	}
	if c.DataDir == "" {
		c.DataDir = DefaultDataDir
	}
	if !c.Retention.set {
		c.Retention.Duration = DefaultRetention
	}
	if !c.Scrape.Interval.set {
		c.Scrape.Interval.Duration = DefaultScrapeInterval
	}
	if !c.Scrape.Timeout.set {
		c.Scrape.Timeout.Duration = min(DefaultScrapeTimeout, c.Scrape.Interval.Duration*8/10)
	}
	if !c.Scrape.VariablesInterval.set {
		c.Scrape.VariablesInterval.Duration = DefaultVariablesInterval
	}
	if g := c.Alertmanager.Cluster; g != nil {
		if g.Label == "" {
			g.Label = DefaultGossipLabel
		}
		if !g.PeerTimeout.set {
			g.PeerTimeout.Duration = DefaultGossipPeerTimeout
		}
	}
	for i := range c.RemoteWrite {
		if c.RemoteWrite[i].QueueMaxBytes == 0 {
			c.RemoteWrite[i].QueueMaxBytes = DefaultRemoteWriteQueueMaxBytes
		}
	}
	for i := range c.Clusters {
		cl := &c.Clusters[i]
		if cl.SLO.Target == 0 {
			cl.SLO.Target = DefaultSLOTarget
		}
		if !cl.SLO.Window.set {
			cl.SLO.Window.Duration = DefaultSLOWindow
		}
		if !cl.Probe.Timeout.set {
			cl.Probe.Timeout.Duration = DefaultProbeTimeout
		}
		if cl.Probe.Engine == "" {
			cl.Probe.Engine = "InnoDB"
			if cl.Kind == nines.KindNDB {
				cl.Probe.Engine = "NDBCLUSTER"
			}
		}
		if cl.Remediation.Mode == "" {
			cl.Remediation.Mode = "dry-run"
		}
		if cl.Remediation.MaxRecoveries == 0 {
			cl.Remediation.MaxRecoveries = 3
		}
		if !cl.Remediation.Window.set {
			cl.Remediation.Window.Duration = 10 * time.Minute
		}
		if !cl.Remediation.PositionWait.set {
			cl.Remediation.PositionWait.Duration = DefaultPositionWait
		}
		for j := range cl.Backups {
			if cl.Backups[j].Dir == "" && cl.Backups[j].Method != "ndb" {
				cl.Backups[j].Dir = DefaultBackupDir
			}
		}
	}
	if !c.Console.SessionTTL.set {
		c.Console.SessionTTL.Duration = DefaultSessionTTL
	}
	if g := c.Grafana; g != nil {
		if g.Folder == "" {
			g.Folder = "nines"
		}
		if g.DatasourceURL == "" {
			g.DatasourceURL = c.ExternalURL
		}
		if g.DatasourceURL == "" {
			scheme := "http"
			if c.TLS != nil {
				scheme = "https"
			}
			g.DatasourceURL = scheme + "://" + c.Listen
		}
		if g.DatasourceToken == "" {
			// Grafana only reads: it gets the first read token, never
			// one that could start jobs.
			g.DatasourceToken = c.firstTokenWithRole(RoleRead)
		}
	}
}
