package exporter

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"strings"
	"sync/atomic"
	"time"

	driver "github.com/go-sql-driver/mysql"

	"github.com/nines-project/nines"
	"github.com/nines-project/nines/exporter/mysql"
	"github.com/nines-project/nines/galera"
)

// Scraper reads one node. The Exporter runs one per target on a schedule;
// tools and benchmarks may call Scrape directly. Scrape must not be called
// concurrently; Latest may be.
type Scraper struct {
	target Target
	opts   Options
	db     *sql.DB
	log    *slog.Logger

	latest atomic.Pointer[nines.Snapshot]

	// Set by the Exporter: kick asks for a scrape now; onChange reports a
	// state change of this node; burst says whether the cluster is in
	// burst mode.
	kick     chan struct{}
	onChange func()
	burst    func() bool
	lateness *Lateness // nil outside an Exporter

	// Carried between scrapes: variables are re-read only every
	// VariablesInterval, and the replica statement depends on the flavour.
	vars         map[string]string
	varsTime     time.Time
	replicaQuery string
	lastErr      string
	scrapes      uint64
	failed       uint64

	// collect reads the node into the snapshot: read, or a test's stand-in.
	collect func(ctx context.Context, snap *nines.Snapshot, start time.Time) []error
}

// NewScraper prepares a scraper for t; it connects on the first Scrape.
func NewScraper(t Target, o Options) (*Scraper, error) {
	o.defaults()
	cfg := driver.NewConfig()
	cfg.Net = "tcp"
	cfg.Addr = t.Address
	cfg.User = t.User
	cfg.Passwd = t.Password
	cfg.TLS = t.TLS
	cfg.Timeout = o.Timeout // dial timeout; the scrape context bounds the rest
	cfg.ReadTimeout = 2 * o.Timeout
	cfg.WriteTimeout = 2 * o.Timeout
	// The heartbeat lag compares two TIMESTAMPs in the session's time
	// zone: UTC has no DST change to shift one of them by an hour.
	cfg.Params = map[string]string{"time_zone": "'+00:00'"}
	// The heartbeat query's one parameter goes inline: one round trip,
	// not prepare, execute and close every second.
	cfg.InterpolateParams = true
	conn, err := driver.NewConnector(cfg)
	if err != nil {
		return nil, fmt.Errorf("connector for %s: %w", t.Address, err)
	}
	db := sql.OpenDB(conn)
	// One connection, kept open: reconnecting every second would cost the
	// node a handshake and an authentication per scrape.
	db.SetMaxOpenConns(1)
	db.SetMaxIdleConns(1)
	db.SetConnMaxLifetime(0)
	db.SetConnMaxIdleTime(0)
	s := &Scraper{
		target: t,
		opts:   o,
		db:     db,
		log:    o.Logger.With("cluster", t.Cluster, "instance", t.Address),
		kick:   make(chan struct{}, 1),
	}
	s.collect = s.read
	return s, nil
}

// run scrapes until ctx ends, handing each snapshot to sink. Normally it
// scrapes every Interval; while its cluster is in burst mode (a node of it
// just changed state) it scrapes every BurstInterval, so the rest of an
// incident is seen at a finer grain, and it scrapes at once when kicked.
func (s *Scraper) run(ctx context.Context, sink Sink) {
	defer s.Close()
	timer := time.NewTimer(0)
	defer timer.Stop()
	next := s.opts.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
			if s.lateness != nil {
				s.lateness.observe(s.opts.Now().Sub(next))
			}
		case <-s.kick:
		}
		if s.opts.Active != nil && !s.opts.Active(s.target.Cluster) {
			// Another appliance watches the node: forget what this one
			// last saw, so nothing here acts on a stale snapshot, and
			// look again at the next interval.
			s.latest.Store(nil)
			next = s.opts.Now().Add(s.opts.Interval)
			if !timer.Stop() {
				select {
				case <-timer.C:
				default:
				}
			}
			timer.Reset(s.opts.Interval)
			continue
		}
		prev := s.latest.Load()
		snap := s.Scrape(ctx)
		if ctx.Err() != nil {
			return
		}
		changed := stateChanged(prev, snap)
		s.deliver(sink, snap, changed)
		if changed && s.onChange != nil {
			s.onChange()
		}
		// Keep a steady cadence: the next scrape is due one interval after
		// the previous due time, not after this scrape ended.
		interval := s.opts.Interval
		if s.burst != nil && s.burst() {
			interval = s.opts.BurstInterval
		}
		now := s.opts.Now()
		next = next.Add(interval)
		if next.Before(now) || next.Sub(now) > interval {
			next = now.Add(interval)
		}
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
		timer.Reset(next.Sub(now))
	}
}

// deliver hands snap to sink (may be nil). A panic in the sink (storing,
// rule kicks) is logged with its stack and the loop goes on: the next
// scrape is another chance, and the other nodes' loops are not affected.
func (s *Scraper) deliver(sink Sink, snap *nines.Snapshot, changed bool) {
	if sink == nil {
		return
	}
	defer func() {
		if p := recover(); p != nil {
			s.log.Error("handling a snapshot panicked", "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
		}
	}()
	sink(snap, changed)
}

// stateChanged reports a change an operator would call an event: the node
// went up or down, its Galera membership or state moved, or a replica
// thread stopped, started or changed source (a primary's death shows on
// its replicas first).
func stateChanged(prev, cur *nines.Snapshot) bool {
	if prev == nil {
		return false
	}
	if prev.Up != cur.Up || replicasChanged(prev.Replicas, cur.Replicas) {
		return true
	}
	pg, cg := prev.Galera, cur.Galera
	if (pg == nil) != (cg == nil) {
		return true
	}
	return pg != nil && (pg.ClusterSize != cg.ClusterSize || pg.ClusterStatus != cg.ClusterStatus ||
		pg.LocalState != cg.LocalState || pg.Ready != cg.Ready)
}

func replicasChanged(prev, cur []nines.ReplicaStatus) bool {
	if len(prev) != len(cur) {
		return true
	}
	for i := range prev {
		p, c := prev[i], cur[i]
		if p.IOThread != c.IOThread || p.SQLThread != c.SQLThread || p.SourceHost != c.SourceHost || p.SourcePort != c.SourcePort {
			return true
		}
	}
	return false
}

// Scrape reads the node once. It never fails: a node that cannot be read
// gives a snapshot with Up false and the reason, which is data too.
func (s *Scraper) Scrape(parent context.Context) *nines.Snapshot {
	start := s.opts.Now()
	ctx, cancel := context.WithTimeout(parent, s.opts.Timeout)
	defer cancel()

	snap := &nines.Snapshot{Cluster: s.target.Cluster, Instance: s.target.Address, Time: start}
	errs := s.collectSafely(ctx, snap, start)
	snap.Duration = s.opts.Now().Sub(start)
	if len(errs) > 0 {
		snap.Err = errors.Join(errs...).Error()
	}
	if parent.Err() == nil { // a scrape cut short by shutdown is no failure of the node
		s.scrapes++
		if snap.Err != "" {
			s.failed++
		}
	}
	snap.Scrapes, snap.Errors = s.scrapes, s.failed
	// Log changes of error state only: a node that is down for an hour
	// must not write 3,600 identical lines. A scrape cut short by shutdown
	// says nothing about the node.
	if snap.Err != s.lastErr && parent.Err() == nil {
		if snap.Err != "" {
			s.log.Warn("scrape failed", "up", snap.Up, "err", snap.Err)
		} else {
			s.log.Info("scrape recovered")
		}
		s.lastErr = snap.Err
	}
	if parent.Err() == nil {
		s.latest.Store(snap)
	}
	return snap
}

// collectSafely runs the collectors; a panic in one (a parser meeting
// output it did not expect) becomes an error of this scrape, counted in
// nines_scrape_errors_total with its stack in the log, instead of killing
// the appliance and every other node's scrapes.
func (s *Scraper) collectSafely(ctx context.Context, snap *nines.Snapshot, start time.Time) (errs []error) {
	defer func() {
		if p := recover(); p != nil {
			s.log.Error("scrape panicked", "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			errs = append(errs, fmt.Errorf("scrape panicked: %v", p))
		}
	}()
	return s.collect(ctx, snap, start)
}

// read is the collectors: global status, variables every
// VariablesInterval, replica status, replication state (MariaDB nodes of
// replication clusters) and heartbeat lag (where the target names a probe
// source), Galera status. It fills snap and returns what failed.
func (s *Scraper) read(ctx context.Context, snap *nines.Snapshot, start time.Time) []error {
	var errs []error
	status, err := mysql.ReadGlobalStatus(ctx, s.db)
	if err != nil {
		errs = append(errs, err)
		// A dead connection must not be reused: close it so the next scrape
		// dials afresh instead of waiting on a half-open socket.
		s.resetPool()
	} else {
		snap.Up = true
		snap.Status = status
		if s.vars == nil || start.Sub(s.varsTime) >= s.opts.VariablesInterval {
			if vars, err := mysql.ReadGlobalVariables(ctx, s.db); err != nil {
				errs = append(errs, err)
			} else {
				s.vars, s.varsTime = vars, start
				s.replicaQuery = mysql.ReplicaStatusQuery(vars["version"])
			}
		}
		if s.vars != nil && start.Sub(s.varsTime) > 0 {
			if fast, err := mysql.ReadFastVariables(ctx, s.db); err != nil {
				errs = append(errs, err)
			} else {
				s.vars = mergeVars(s.vars, fast)
			}
		}
		snap.Variables, snap.VariablesTime = s.vars, s.varsTime
		if s.target.ReplicaStatus && s.replicaQuery != "" {
			// Channels come back with an error about a field of theirs
			// that could not be read: the rest of each is still data.
			reps, err := mysql.ReadReplicaStatus(ctx, s.db, s.replicaQuery)
			if err != nil {
				errs = append(errs, err)
			}
			snap.Replicas = reps
		}
		if s.target.Kind == nines.KindReplication && strings.Contains(strings.ToLower(s.vars["version"]), "mariadb") {
			st, err := mysql.ReadReplicationState(ctx, s.db)
			if err != nil {
				errs = append(errs, err)
			}
			snap.Replication = st
		}
		if s.target.HeartbeatSource != "" {
			if lag, err := mysql.ReadHeartbeatLag(ctx, s.db, s.target.HeartbeatSource); err != nil {
				errs = append(errs, err)
			} else {
				snap.HeartbeatLag = &lag
			}
		}
		if galera.Enabled(status, s.vars) {
			g, err := galera.ParseStatus(status, s.vars)
			snap.Galera = g
			if err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errs
}

// resetPool drops idle connections so the next query dials again.
func (s *Scraper) resetPool() {
	s.db.SetMaxIdleConns(0)
	s.db.SetMaxIdleConns(1)
}

// Latest is the newest snapshot, or nil before the first scrape.
func (s *Scraper) Latest() *nines.Snapshot { return s.latest.Load() }

// Close closes the node's connection.
func (s *Scraper) Close() error { return s.db.Close() }

// mergeVars returns vars with fast's values: a new map, since snapshots
// already handed out share the old one.
func mergeVars(vars, fast map[string]string) map[string]string {
	out := make(map[string]string, len(vars))
	for k, v := range vars {
		out[k] = v
	}
	for k, v := range fast {
		out[k] = v
	}
	return out
}
