// Package exporter reads every configured node once per interval into a
// nines.Snapshot and derives metrics from it.
//
// Each node has its own scraper goroutine and exactly one open connection,
// so a slow or dead node never delays the others, and a scrape costs the
// node one statement (SHOW GLOBAL STATUS), plus replica status where
// configured and, every variables interval, SHOW GLOBAL VARIABLES. Nodes
// of replication clusters also answer one SELECT of their GTID positions
// and semi-sync switches (MariaDB) and, with a probe, one of its heartbeat.
package exporter

import (
	"crypto/tls"
	"log/slog"
	"time"

	"github.com/nines-project/nines"
)

// Target is one node to scrape.
type Target struct {
	Cluster  string
	Kind     nines.Kind
	Address  string // host:port, also the instance label
	User     string
	Password string
	// TLS, when set, encrypts the connection and checks the node's
	// certificate (its ServerName defaults to Address's host).
	TLS *tls.Config
	// ReplicaStatus reads replica status every scrape.
	ReplicaStatus bool
	// HeartbeatSource, when set, reads the lag of the probe's heartbeat
	// rows of this source (probe.Options.Source) every scrape. A missing
	// table or row is then a scrape error.
	HeartbeatSource string
}

// Options tune all scrapers of an Exporter.
type Options struct {
	Interval time.Duration
	// BurstInterval is the interval while a cluster is in burst mode: for
	// BurstFor after any of its nodes changed state, all its nodes are
	// scraped this often. A Galera eviction takes about 2.5 s to show on
	// the survivors; at the normal 1 s cadence that news could wait another
	// second.
	BurstInterval     time.Duration
	BurstFor          time.Duration
	Timeout           time.Duration // per scrape, connect included
	VariablesInterval time.Duration
	// Active, if not nil, says whether to scrape a cluster's nodes now:
	// an appliance of a sharded team scrapes only the clusters it owns.
	// A node of an inactive cluster has no latest snapshot.
	Active func(cluster string) bool
	Now    func() time.Time
	Logger *slog.Logger
}

func (o *Options) defaults() {
	if o.Interval <= 0 {
		o.Interval = time.Second
	}
	if o.BurstInterval <= 0 || o.BurstInterval > o.Interval {
		o.BurstInterval = max(o.Interval/10, 100*time.Millisecond)
	}
	if o.BurstFor <= 0 {
		o.BurstFor = 15 * time.Second
	}
	if o.Timeout <= 0 || o.Timeout > o.Interval {
		o.Timeout = o.Interval * 8 / 10
	}
	if o.VariablesInterval <= 0 {
		o.VariablesInterval = time.Minute
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
}
