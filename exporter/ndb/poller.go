package ndb

// poller.go reads one NDB cluster as a whole, once per interval: the
// management server's `get status` and one SQL node's ndbinfo. A
// `listen event` session in the background wakes a round at once when a
// node fails, restarts, arbitration moves or a backup starts or ends, so
// a data node failure reaches the store within a round trip of the
// event, not at the next tick.

import (
	"context"
	"crypto/tls"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	driver "github.com/go-sql-driver/mysql"

	ndbmsg "github.com/nines-project/nines/ndb"
)

// SQLNode is an SQL node (mysqld) whose ndbinfo the poller may read.
type SQLNode struct {
	Address  string // host:port
	User     string
	Password string
	TLS      *tls.Config // nil: plain connection
}

// PollerConfig configures a Poller. Zero durations take the defaults.
type PollerConfig struct {
	Cluster string
	// Mgm are the management servers' addresses, tried in order each
	// round; SQL the SQL nodes, likewise. At least one management server.
	Mgm []string
	SQL []SQLNode
	// Interval between rounds, default 1 s; Timeout bounds a round,
	// default 80 % of Interval, shared by the servers tried in order.
	Interval time.Duration
	Timeout  time.Duration
	// BurstInterval is the interval for BurstFor after a change (a node's
	// status moved or an event arrived): the rest of an incident is seen
	// at a finer grain. Defaults Interval/10 (at least 100 ms) and 15 s.
	BurstInterval time.Duration
	BurstFor      time.Duration
	// MaxBackoff caps the wait between attempts to reopen the event
	// stream; it starts at 100 ms and doubles. Default 5 s.
	MaxBackoff time.Duration
	Logger     *slog.Logger
	Now        func() time.Time
}

func (c *PollerConfig) defaults() {
	if c.Interval <= 0 {
		c.Interval = time.Second
	}
	if c.Timeout <= 0 || c.Timeout > c.Interval {
		c.Timeout = c.Interval * 8 / 10
	}
	if c.BurstInterval <= 0 || c.BurstInterval > c.Interval {
		c.BurstInterval = max(c.Interval/10, 100*time.Millisecond)
	}
	if c.BurstFor <= 0 {
		c.BurstFor = 15 * time.Second
	}
	if c.MaxBackoff <= 0 {
		c.MaxBackoff = 5 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}

// Poller reads one NDB cluster every interval and at once on its events.
type Poller struct {
	cfg  PollerConfig
	log  *slog.Logger
	mgms []*Mgm
	dbs  []*sql.DB

	kick   chan struct{}
	latest atomic.Pointer[Reading]
	stream atomic.Pointer[string] // address of the open event stream
	stops  forcedStops            // NDBStopForced events seen on the stream
	gcp    gcpTracker             // GlobalCheckpointCompleted events seen on it
	lastMu sync.Mutex
	errs   map[string]string // server → last error logged, to log changes only
}

// NewPoller prepares a poller; nothing connects until Run.
func NewPoller(cfg PollerConfig) (*Poller, error) {
	cfg.defaults()
	if len(cfg.Mgm) == 0 {
		return nil, fmt.Errorf("ndb poller for %s: no management server", cfg.Cluster)
	}
	p := &Poller{cfg: cfg, log: cfg.Logger.With("cluster", cfg.Cluster), kick: make(chan struct{}, 1), errs: map[string]string{}}
	for _, a := range cfg.Mgm {
		// A dead server must not hold up the next in the list: the dial
		// gets the round's share, not the client's default 5 s.
		p.mgms = append(p.mgms, NewMgm(MgmConfig{Addr: a, DialTimeout: cfg.Timeout, Timeout: cfg.Timeout}))
	}
	for _, n := range cfg.SQL {
		dc := driver.NewConfig()
		dc.Net, dc.Addr, dc.User, dc.Passwd, dc.TLS = "tcp", n.Address, n.User, n.Password, n.TLS
		dc.Timeout, dc.ReadTimeout, dc.WriteTimeout = cfg.Timeout, 2*cfg.Timeout, 2*cfg.Timeout
		conn, err := driver.NewConnector(dc)
		if err != nil {
			p.Close()
			return nil, fmt.Errorf("ndb poller for %s: SQL node %s: %w", cfg.Cluster, n.Address, err)
		}
		db := sql.OpenDB(conn)
		// One connection kept open per SQL node, as the scraper keeps.
		db.SetMaxOpenConns(1)
		db.SetMaxIdleConns(1)
		p.dbs = append(p.dbs, db)
	}
	return p, nil
}

// Close drops every connection.
func (p *Poller) Close() {
	for _, m := range p.mgms {
		m.Close()
	}
	for _, db := range p.dbs {
		db.Close()
	}
}

// Latest is the newest reading, nil before the first round.
func (p *Poller) Latest() *Reading { return p.latest.Load() }

// Kick asks for a round now (dropped when one is already asked for).
func (p *Poller) Kick() {
	select {
	case p.kick <- struct{}{}:
	default:
	}
}

// Run polls until ctx ends, handing each reading to sink with changed
// set when a node's status or start phase moved, a management server or
// SQL node stopped or started answering, or an event woke the round.
// sink is called from Run's goroutine and must return quickly.
func (p *Poller) Run(ctx context.Context, sink func(r *Reading, changed bool)) {
	defer p.Close()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); p.listen(ctx) }()
	defer wg.Wait()

	timer := time.NewTimer(0)
	defer timer.Stop()
	var burstUntil time.Time
	for {
		woken := false
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		case <-p.kick:
			woken = true
		}
		prev := p.latest.Load()
		r := p.poll(ctx, woken)
		if ctx.Err() != nil {
			return
		}
		changed := woken || changedReading(prev, r)
		p.deliver(sink, r, changed)
		now := p.cfg.Now()
		if changed {
			burstUntil = now.Add(p.cfg.BurstFor)
		}
		interval := p.cfg.Interval
		if now.Before(burstUntil) {
			interval = p.cfg.BurstInterval
		}
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
		timer.Reset(interval)
	}
}

// deliver hands r to sink; a panic there is logged and polling goes on.
func (p *Poller) deliver(sink func(*Reading, bool), r *Reading, changed bool) {
	if sink == nil {
		return
	}
	defer func() {
		if v := recover(); v != nil {
			p.log.Error("handling an ndb reading panicked", "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
		}
	}()
	sink(r, changed)
}

// changedReading: a node's status or start phase, or which servers
// answered, differs from the previous round.
func changedReading(prev, cur *Reading) bool {
	if prev == nil {
		return false
	}
	if prev.Mgm() != cur.Mgm() || prev.SQL() != cur.SQL() || len(prev.Status) != len(cur.Status) {
		return true
	}
	old := map[int]ndbmsg.Node{}
	for _, n := range prev.Status {
		old[n.ID] = n
	}
	for _, n := range cur.Status {
		o, ok := old[n.ID]
		if !ok || o.Status != n.Status || o.StartPhase != n.StartPhase {
			return true
		}
	}
	return false
}

// Poll runs one round: `get status` on the first management server that
// answers and ndbinfo on the first SQL node that does, the two at once.
// It never fails: what could not be read is in the attempts' errors.
func (p *Poller) Poll(parent context.Context) *Reading { return p.poll(parent, false) }

func (p *Poller) poll(parent context.Context, woken bool) *Reading {
	start := p.cfg.Now()
	ctx, cancel := context.WithTimeout(parent, p.cfg.Timeout)
	defer cancel()
	r := &Reading{Cluster: p.cfg.Cluster, Time: start, Woken: woken}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		p.readSQL(ctx, r)
	}()
	p.readMgm(ctx, r)
	wg.Wait()
	if s := p.stream.Load(); s != nil {
		r.Stream = *s
	}
	r.ForcedStops = p.stops.snapshot()
	r.GCP = p.gcp.snapshot()
	r.Duration = p.cfg.Now().Sub(start)
	if parent.Err() == nil { // a round cut by shutdown is no failure of a server
		for _, a := range append(append([]Attempt{}, r.MgmTried...), r.SQLTried...) {
			p.logChange(a.Address, a.Err)
		}
		p.latest.Store(r)
	}
	return r
}

// share bounds one attempt among n tried in order: a server that hangs
// takes at most its share of what is left, so the next is still asked.
func share(ctx context.Context, n int) (context.Context, context.CancelFunc) {
	d, ok := ctx.Deadline()
	if !ok || n <= 1 {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, time.Until(d)/time.Duration(n))
}

func (p *Poller) readMgm(ctx context.Context, r *Reading) {
	for i, m := range p.mgms {
		actx, cancel := share(ctx, len(p.mgms)-i)
		nodes, err := m.GetStatus(actx)
		cancel()
		r.MgmTried = append(r.MgmTried, Attempt{Address: m.cfg.Addr, Err: err})
		if err == nil {
			r.Status = nodes
			return
		}
		if ctx.Err() != nil {
			return
		}
	}
}

func (p *Poller) readSQL(ctx context.Context, r *Reading) {
	for i, db := range p.dbs {
		addr := p.cfg.SQL[i].Address
		actx, cancel := share(ctx, len(p.dbs)-i)
		info, err := readOne(actx, db)
		cancel()
		r.SQLTried = append(r.SQLTried, Attempt{Address: addr, Err: err})
		if err == nil {
			r.Info = info
			return
		}
		// A dead connection must not be reused: the next round dials.
		db.SetMaxIdleConns(0)
		db.SetMaxIdleConns(1)
		if ctx.Err() != nil {
			return
		}
	}
}

// errNoView: the SQL node answered but no ndbinfo view could be read
// (not connected to the cluster, or ndbinfo missing): ask the next.
var errNoView = errors.New("no ndbinfo view could be read")

// readOne reads one SQL node's ndbinfo. The node answered when it took
// a ping and at least one view could be read; a view that failed on a
// node that answered is data (nines_ndbinfo_view_success 0).
func readOne(ctx context.Context, db *sql.DB) (*Ndbinfo, error) {
	if err := db.PingContext(ctx); err != nil {
		return nil, err
	}
	info := ReadNdbinfo(ctx, db)
	for _, v := range Views {
		if !info.Failed(v) {
			return info, nil
		}
	}
	return nil, fmt.Errorf("%w: %w", errNoView, errors.Join(info.Errors...))
}

// logChange logs a server's error state when it changes, so a server
// down for an hour does not write a line a second.
func (p *Poller) logChange(addr string, err error) {
	msg := ""
	if err != nil {
		msg = err.Error()
	}
	p.lastMu.Lock()
	last := p.errs[addr]
	p.errs[addr] = msg
	p.lastMu.Unlock()
	switch {
	case msg == last:
	case msg != "":
		p.log.Warn("ndb read failed", "server", addr, "err", msg)
	default:
		p.log.Info("ndb read recovered", "server", addr)
	}
}
