package exporter

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	driver "github.com/go-sql-driver/mysql"

	"github.com/nines-project/nines"
	"github.com/nines-project/nines/exporter/galera"
	"github.com/nines-project/nines/exporter/mysql"
)

// scraper reads one node. Only its own goroutine calls scrape; other
// goroutines read the latest snapshot through latest.
type scraper struct {
	target Target
	opts   Options
	db     *sql.DB
	log    *slog.Logger

	latest atomic.Pointer[nines.Snapshot]

	// Carried between scrapes: variables are re-read only every
	// VariablesInterval, and the replica statement depends on the flavour.
	vars         map[string]string
	varsTime     time.Time
	replicaQuery string
	lastErr      string
}

func newScraper(t Target, o Options) (*scraper, error) {
	cfg := driver.NewConfig()
	cfg.Net = "tcp"
	cfg.Addr = t.Address
	cfg.User = t.User
	cfg.Passwd = t.Password
	cfg.Timeout = o.Timeout // dial timeout; the scrape context bounds the rest
	cfg.ReadTimeout = 2 * o.Timeout
	cfg.WriteTimeout = 2 * o.Timeout
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
	return &scraper{
		target: t,
		opts:   o,
		db:     db,
		log:    o.Logger.With("cluster", t.Cluster, "instance", t.Address),
	}, nil
}

// run scrapes at every tick until ctx ends, handing each snapshot to sink.
func (s *scraper) run(ctx context.Context, sink func(*nines.Snapshot)) {
	defer s.db.Close()
	t := time.NewTicker(s.opts.Interval)
	defer t.Stop()
	for {
		snap := s.scrape(ctx)
		if ctx.Err() != nil {
			return
		}
		s.latest.Store(snap)
		if sink != nil {
			sink(snap)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// scrape reads the node once. It never fails: a node that cannot be read
// gives a snapshot with Up false and the reason, which is data too.
func (s *scraper) scrape(parent context.Context) *nines.Snapshot {
	start := s.opts.Now()
	ctx, cancel := context.WithTimeout(parent, s.opts.Timeout)
	defer cancel()

	snap := &nines.Snapshot{Cluster: s.target.Cluster, Instance: s.target.Address, Time: start}
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
		snap.Variables, snap.VariablesTime = s.vars, s.varsTime
		if s.target.ReplicaStatus && s.replicaQuery != "" {
			if reps, err := mysql.ReadReplicaStatus(ctx, s.db, s.replicaQuery); err != nil {
				errs = append(errs, err)
			} else {
				snap.Replicas = reps
			}
		}
		if galera.Enabled(status, s.vars) {
			g, problems := galera.Parse(status, s.vars)
			snap.Galera = g
			errs = append(errs, problems...)
		}
	}
	snap.Duration = s.opts.Now().Sub(start)
	if len(errs) > 0 {
		snap.Err = errors.Join(errs...).Error()
	}
	// Log changes of error state only: a node that is down for an hour
	// must not write 3,600 identical lines.
	if snap.Err != s.lastErr {
		if snap.Err != "" {
			s.log.Warn("scrape failed", "up", snap.Up, "err", snap.Err)
		} else {
			s.log.Info("scrape recovered")
		}
		s.lastErr = snap.Err
	}
	return snap
}

// resetPool drops idle connections so the next query dials again.
func (s *scraper) resetPool() {
	s.db.SetMaxIdleConns(0)
	s.db.SetMaxIdleConns(1)
}
