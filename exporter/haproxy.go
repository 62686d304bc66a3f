package exporter

import (
	"context"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/nines-project/nines/haproxy"
	"github.com/nines-project/nines/internal/metric"
)

// HAProxyTarget is the HAProxy in front of one cluster: its runtime API
// socket and the backends (or listen sections) that are the cluster's
// writer and reader pools.
type HAProxyTarget struct {
	Cluster       string
	Socket        string
	WriterBackend string
	ReaderBackend string
}

// HAProxySnapshot is one read of an HAProxy's `show stat`. Up is false
// when the socket could not be read; Err says why.
type HAProxySnapshot struct {
	Target  HAProxyTarget
	Time    time.Time
	Up      bool
	Err     string
	Servers []haproxy.ServerStat
}

// HAProxyScraper reads one HAProxy's stats. Apart from the node scrapers:
// HAProxy missing, stopped or refusing is nines_haproxy_up 0 and a logged
// reason, never an error of the nodes' scrapes. Scrape must not be called
// concurrently; Latest may be.
type HAProxyScraper struct {
	target  HAProxyTarget
	rt      haproxy.Runtime
	log     *slog.Logger
	lastErr string
	latest  atomic.Pointer[HAProxySnapshot]
}

// NewHAProxyScraper prepares a scraper; timeout bounds each read (the
// node scrape timeout is the natural choice).
func NewHAProxyScraper(t HAProxyTarget, timeout time.Duration, log *slog.Logger) *HAProxyScraper {
	if log == nil {
		log = slog.Default()
	}
	return &HAProxyScraper{target: t, rt: haproxy.Runtime{Socket: t.Socket, Timeout: timeout},
		log: log.With("cluster", t.Cluster, "haproxy", t.Socket)}
}

// Scrape reads the stats once.
func (s *HAProxyScraper) Scrape(ctx context.Context) *HAProxySnapshot {
	snap := &HAProxySnapshot{Target: s.target, Time: time.Now()}
	servers, err := s.rt.Servers(ctx)
	if err != nil {
		snap.Err = err.Error()
	} else {
		snap.Up, snap.Servers = true, servers
	}
	// Log changes only: an HAProxy down for an hour is one line.
	if snap.Err != s.lastErr {
		if snap.Err != "" {
			s.log.Warn("haproxy stats unreadable", "err", snap.Err)
		} else {
			s.log.Info("haproxy stats readable again")
		}
		s.lastErr = snap.Err
	}
	s.latest.Store(snap)
	return snap
}

// Latest is the last snapshot, nil before the first scrape.
func (s *HAProxyScraper) Latest() *HAProxySnapshot { return s.latest.Load() }

// Run scrapes every interval until ctx ends and hands each snapshot to
// sink with changed true when HAProxy's reachability or a pool's count of
// UP servers changed since the previous one (the store then makes it
// visible at once, as for a node's state change).
func (s *HAProxyScraper) Run(ctx context.Context, interval time.Duration, sink func(*HAProxySnapshot, bool)) {
	t := time.NewTicker(interval)
	defer t.Stop()
	prev := ""
	for {
		snap := s.Scrape(ctx)
		if ctx.Err() != nil {
			return
		}
		key := poolKey(snap)
		sink(snap, key != prev)
		prev = key
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// poolKey sums up what a change of which must reach the rules at once.
func poolKey(s *HAProxySnapshot) string {
	if !s.Up {
		return "down"
	}
	key := "up"
	for _, st := range s.Servers {
		if st.Up() {
			key += " " + st.Backend + "/" + st.Server
		}
	}
	return key
}

// haproxyStates are the states nines_haproxy_server_state reports, one
// series each (1 for the server's current state, 0 for the others), so a
// state change moves a value instead of creating a series.
var haproxyStates = []string{"UP", "DOWN", "MAINT", "DRAIN", "NOLB"}

// HAProxyMetrics derives the nines_haproxy_* series of a snapshot. Every
// series carries cluster and instance (the socket path); server series
// carry backend and server, and pool ("writer", "reader" or "") says what
// the backend is to the cluster.
func HAProxyMetrics(s *HAProxySnapshot) []metric.Metric {
	t := s.Target
	set := &metric.Set{Const: []metric.Label{{Name: "cluster", Value: t.Cluster}, {Name: "instance", Value: t.Socket}}}
	up := 0.0
	if s.Up {
		up = 1
	}
	set.Add("nines_haproxy_up", "Whether HAProxy's runtime API answered show stat in this scrape.", metric.Gauge, up)
	if !s.Up {
		return set.Metrics
	}
	pool := func(backend string) string {
		switch backend {
		case t.WriterBackend:
			return "writer"
		case t.ReaderBackend:
			return "reader"
		}
		return ""
	}
	// The configured pools always have a count: a writer backend missing
	// from HAProxy's configuration is an empty pool, not no data.
	active := map[string]int{t.WriterBackend: 0, t.ReaderBackend: 0}
	var order []string
	for _, st := range s.Servers {
		if _, seen := active[st.Backend]; !seen {
			order = append(order, st.Backend)
			active[st.Backend] = 0
		}
		su := 0.0
		if st.Up() {
			su = 1
			active[st.Backend]++
		}
		l := []string{"backend", st.Backend, "server", st.Server, "pool", pool(st.Backend)}
		set.Add("nines_haproxy_server_up", "1 when HAProxy sends new connections to the server (UP, backups included), 0 when it is DOWN, in MAINT, DRAIN or NOLB.", metric.Gauge, su, l...)
		for _, state := range haproxyStates {
			v := 0.0
			if st.State() == state {
				v = 1
			}
			set.Add("nines_haproxy_server_state", "1 for the server's current state in HAProxy (UP, DOWN, MAINT, DRAIN, NOLB), 0 for the others.", metric.Gauge, v, append(l, "state", state)...)
		}
		set.Add("nines_haproxy_server_sessions", "Sessions open to the server now (scur).", metric.Gauge, float64(st.CurrentSessions), l...)
		set.Add("nines_haproxy_server_sessions_total", "Sessions sent to the server since HAProxy started (stot).", metric.Counter, float64(st.TotalSessions), l...)
		set.Add("nines_haproxy_server_connection_errors_total", "Connections to the server that failed since HAProxy started (econ).", metric.Counter, float64(st.ConnectionErrors), l...)
		set.Add("nines_haproxy_server_downtime_seconds_total", "Time the server spent DOWN since HAProxy started.", metric.Counter, st.Downtime.Seconds(), l...)
	}
	for _, b := range append([]string{t.WriterBackend, t.ReaderBackend}, order...) {
		set.Add("nines_haproxy_backend_active_servers", "Servers of the backend that take new connections (UP, backups included). 0 for the writer pool means writes have nowhere to go.",
			metric.Gauge, float64(active[b]), "backend", b, "pool", pool(b))
	}
	return set.Metrics
}
