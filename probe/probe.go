// Package probe is the synthetic write probe behind nines' SLI: every
// second, through each configured endpoint of a cluster (each node by
// default, or the endpoint the applications use), it upserts a heartbeat
// row in schema nines in one transaction with a log row, commits, and
// reads the row back within a latency bound.
//
// Time is cut into wall-clock seconds, and each second is counted once,
// as facts/slo.md defines it: good when at least one endpoint's probe
// started in it committed and read back within the bound, bad when probes
// ran and none succeeded, unknown when no probe result exists for it. The
// counters are nines_probe_seconds_total{cluster,result}.
//
// Every acknowledged write's seq is kept in nines.probe_log for a day, and
// the Prober knows the range of seqs it had acknowledged, so a failure
// drill can check with VerifyNoLoss that none was lost.
package probe

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// Endpoint is one address the probe writes through.
type Endpoint struct {
	// Address is host:port; it is the instance label of the endpoint's
	// series and the endpoint column of its rows.
	Address  string
	User     string
	Password string
	// TLS, when set, encrypts the connection and checks the node's
	// certificate, as the exporter's does.
	TLS *tls.Config
}

// Options tune a Prober. Zero fields take the defaults below.
type Options struct {
	// Interval between probes of an endpoint; default and maximum 1 s, as
	// a second without a probe can only count unknown. Probes start on
	// wall-clock multiples of Interval.
	Interval time.Duration
	// LatencyBound is how long a probe may take, read-back included, and
	// still count good; it is also the probe's timeout. Default 1 s.
	LatencyBound time.Duration
	// Source identifies this appliance in the probe's rows, so several
	// appliances probing one cluster never write each other's rows.
	// Default: the host name. At most 64 bytes.
	Source string
	// Engine is the storage engine of the probe's tables, default InnoDB.
	// An NDB cluster's probe needs NDBCLUSTER: an InnoDB table lives in
	// the SQL node alone, and its writes would succeed with every data
	// node down.
	Engine string
	// PruneEvery is how often log rows older than a day are pruned;
	// default one hour.
	PruneEvery time.Duration
	// Maintenance, if not nil, says whether t lies in a declared
	// maintenance window of the cluster; such seconds count as
	// maintenance, not as good, bad or unknown.
	Maintenance func(t time.Time) bool
	// Active, if not nil, says whether to probe this second: an
	// appliance of a sharded team probes only the clusters it owns. The
	// seconds not probed close as unknown.
	Active func() bool
	Now    func() time.Time
	Logger *slog.Logger
}

const (
	maxSourceLen   = 64  // nines.heartbeat.source
	maxEndpointLen = 255 // nines.heartbeat.endpoint
)

func (o *Options) defaults() error {
	if o.Interval <= 0 {
		o.Interval = time.Second
	}
	if o.Interval > time.Second {
		return fmt.Errorf("probe interval %v: over one second, seconds without a probe would all count unknown", o.Interval)
	}
	if o.LatencyBound <= 0 {
		o.LatencyBound = time.Second
	}
	if o.Source == "" {
		h, err := DefaultSource()
		if err != nil {
			return err
		}
		o.Source = h
	}
	if len(o.Source) > maxSourceLen {
		return fmt.Errorf("probe source %q: longer than %d bytes", o.Source, maxSourceLen)
	}
	if o.Engine == "" {
		o.Engine = "InnoDB"
	}
	for _, r := range o.Engine {
		// It goes into the DDL as written: a name, nothing else.
		if !(r == '_' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
			return fmt.Errorf("probe engine %q: want a storage engine name (letters, digits, _)", o.Engine)
		}
	}
	if o.PruneEvery <= 0 {
		o.PruneEvery = time.Hour
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return nil
}

// DefaultSource is the Source a prober takes when none is set: the host
// name. The exporter reads the heartbeat rows of this source for the lag.
func DefaultSource() (string, error) {
	h, err := os.Hostname()
	if err != nil || h == "" {
		return "", fmt.Errorf("probe source: no host name to default to (%v); set Source", err)
	}
	return h, nil
}

// Prober probes one cluster through its endpoints. Run it once; Metrics,
// Latest, Seconds and AcknowledgedSeqs may be called at any time from any
// goroutine.
type Prober struct {
	cluster string
	opts    Options
	log     *slog.Logger
	eps     []*endpoint
	running atomic.Bool

	// Test hooks: after replaces time.After, probed is called after each
	// probe has been recorded.
	after  func(time.Duration) <-chan time.Time
	probed func()

	mu     sync.Mutex // guards ledger and every endpoint's stats
	ledger *ledger
}

// endpoint is one endpoint's writer and what its probes came to.
type endpoint struct {
	addr string
	w    writer
	kick chan struct{}

	// Owned by the endpoint's worker goroutine.
	prepared  bool
	nextPrune time.Time
	lastErr   string

	// Guarded by Prober.mu.
	stats endpointStats
}

type endpointStats struct {
	last       Result
	acked      uint64 // writes acknowledged
	failed     uint64 // writes not acknowledged, uncertain ones included
	uncertain  uint64 // writes whose COMMIT got no answer
	firstAcked uint64 // first seq this prober had acknowledged; 0 before
	lastAcked  uint64 // highest seq acknowledged; the next write uses lastAcked+1
}

// Result is the latest probe through one endpoint, for the console.
type Result struct {
	Instance string
	// Time is when the probe started (zero before the first probe ended);
	// Duration how long it took, read-back included.
	Time     time.Time
	Duration time.Duration
	// Success: acknowledged, read back, within the latency bound.
	Success bool
	// Seq is the seq the probe wrote; Acknowledged whether its COMMIT
	// returned OK; Uncertain whether the COMMIT got no answer.
	Seq          uint64
	Acknowledged bool
	Uncertain    bool
	Err          string
}

// New prepares a prober for cluster through eps; nothing connects until
// Run.
func New(cluster string, eps []Endpoint, o Options) (*Prober, error) {
	if err := o.defaults(); err != nil {
		return nil, fmt.Errorf("probe of cluster %q: %w", cluster, err)
	}
	writers := make([]writer, 0, len(eps))
	ddl := make(chan struct{}, 1)
	p, err := newProber(cluster, eps, o, func(ep Endpoint) (writer, error) {
		w, err := newSQLWriter(ep, o.Source, o.Engine, o.LatencyBound, ddl, o.Logger.With("cluster", cluster, "component", "probe"))
		if w != nil {
			writers = append(writers, w)
		}
		return w, err
	})
	if err != nil {
		for _, w := range writers {
			w.close()
		}
		return nil, err
	}
	return p, nil
}

// newProber checks the endpoints and builds a prober on the writers that
// mk makes; tests pass fakes. o must have its defaults set.
func newProber(cluster string, eps []Endpoint, o Options, mk func(Endpoint) (writer, error)) (*Prober, error) {
	if cluster == "" {
		return nil, errors.New("probe: empty cluster name")
	}
	if len(eps) == 0 {
		return nil, fmt.Errorf("probe of cluster %q: no endpoints", cluster)
	}
	p := &Prober{
		cluster: cluster,
		opts:    o,
		log:     o.Logger.With("cluster", cluster, "component", "probe"),
		after:   time.After,
		ledger:  newLedger(o.LatencyBound, maintenanceSeconds(o.Maintenance)),
	}
	seen := map[string]bool{}
	for _, ep := range eps {
		switch {
		case ep.Address == "":
			return nil, fmt.Errorf("probe of cluster %q: endpoint with an empty address", cluster)
		case len(ep.Address) > maxEndpointLen:
			return nil, fmt.Errorf("probe of cluster %q: endpoint address %q longer than %d bytes", cluster, ep.Address, maxEndpointLen)
		case seen[ep.Address]:
			return nil, fmt.Errorf("probe of cluster %q: endpoint %q listed twice", cluster, ep.Address)
		}
		seen[ep.Address] = true
		w, err := mk(ep)
		if err != nil {
			return nil, fmt.Errorf("probe of cluster %q: %w", cluster, err)
		}
		e := &endpoint{addr: ep.Address, w: w, kick: make(chan struct{}, 1)}
		e.stats.last.Instance = ep.Address
		p.eps = append(p.eps, e)
	}
	return p, nil
}

// maintenanceSeconds turns a window test on times into one on Unix
// seconds for the ledger: a second is in maintenance when it starts in a
// window.
func maintenanceSeconds(in func(time.Time) bool) func(int64) bool {
	if in == nil {
		return nil
	}
	return func(sec int64) bool { return in(time.Unix(sec, 0)) }
}

// Cluster is the probed cluster's name.
func (p *Prober) Cluster() string { return p.cluster }

// Source is the source column of this prober's rows (for VerifyNoLoss).
func (p *Prober) Source() string { return p.opts.Source }

// Run probes until ctx ends, then closes the connections. It must be
// called once. When it returns, Seconds covers every wall-clock second
// from its start to the second it stopped in (that last, partial second
// excluded).
func (p *Prober) Run(ctx context.Context) {
	if !p.running.CompareAndSwap(false, true) {
		p.log.Error("probe: Run called twice; the second call does nothing")
		return
	}
	p.mu.Lock()
	p.ledger.start(p.opts.Now())
	p.mu.Unlock()

	var wg sync.WaitGroup
	for _, e := range p.eps {
		wg.Go(func() { p.work(ctx, e) })
	}
	// Probes start on wall-clock multiples of Interval, so the probes of
	// all endpoints start together at the top of each second. A tick that
	// comes late (a stalled process) just probes late; the seconds it
	// missed close as unknown. A timer may fire a little before the wall
	// clock reaches the boundary (the two clocks drift); the loop then
	// waits for the rest instead of probing twice in the old second.
	var due time.Time // zero: the first probe runs at once
	for {
		now := p.opts.Now()
		if !now.Before(due) {
			p.tick()
			due = now.Truncate(p.opts.Interval).Add(p.opts.Interval)
			now = p.opts.Now()
		}
		select {
		case <-ctx.Done():
			wg.Wait()
			for _, e := range p.eps {
				if err := e.w.close(); err != nil {
					p.log.Warn("close probe connection", "instance", e.addr, "err", err)
				}
			}
			p.mu.Lock()
			p.ledger.stop(p.opts.Now())
			p.mu.Unlock()
			return
		case <-p.after(due.Sub(now)):
		}
	}
}

// tick closes the seconds that can no longer change and asks every
// endpoint for a probe. An endpoint still busy with its previous probe
// keeps at most one request queued, so a slow endpoint never builds a
// backlog; its worker starts the queued probe as soon as it is free.
func (p *Prober) tick() {
	p.mu.Lock()
	p.ledger.close(p.opts.Now())
	p.mu.Unlock()
	if p.opts.Active != nil && !p.opts.Active() {
		return
	}
	for _, e := range p.eps {
		select {
		case e.kick <- struct{}{}:
		default:
		}
	}
}

// work is the endpoint's worker: it probes whenever kicked. One worker per
// endpoint means a hung endpoint delays nobody else.
func (p *Prober) work(ctx context.Context, e *endpoint) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-e.kick:
		}
		p.probeOnce(ctx, e)
		if ctx.Err() == nil {
			p.maybePrune(ctx, e)
		}
	}
}

// probeOnce runs one probe through e and records it.
func (p *Prober) probeOnce(ctx context.Context, e *endpoint) {
	// The clock is read under the lock that close also takes, so a probe
	// can never begin in a second that close has just counted.
	p.mu.Lock()
	start := p.opts.Now()
	sec, counted := p.ledger.begin(start)
	seq := e.stats.lastAcked + 1
	p.mu.Unlock()

	pctx, cancel := context.WithTimeout(ctx, p.opts.LatencyBound)
	a := p.attempt(pctx, e, &seq)
	cancel()
	end := p.opts.Now()
	dur := end.Sub(start)
	if a.err == nil && dur > p.opts.LatencyBound {
		a.err = fmt.Errorf("probe write %d on %s took %v, over the latency bound %v", seq, e.addr, dur, p.opts.LatencyBound)
	}
	good := a.err == nil

	p.mu.Lock()
	switch {
	case !counted:
	case ctx.Err() != nil && !good:
		// Cut short by our own shutdown: no result, not a failure.
		p.ledger.abandon(sec)
	default:
		p.ledger.end(sec, good)
	}
	p.ledger.close(end)
	st := &e.stats
	st.last = Result{Instance: e.addr, Time: start, Duration: dur, Success: good, Seq: seq, Acknowledged: a.acked, Uncertain: a.uncertain}
	if a.err != nil {
		st.last.Err = a.err.Error()
	}
	if a.acked {
		st.acked++
		if seq > st.lastAcked {
			st.lastAcked = seq
		}
		if st.firstAcked == 0 {
			st.firstAcked = seq
		}
	} else {
		st.failed++
		if a.uncertain {
			st.uncertain++
		}
	}
	msg := st.last.Err
	p.mu.Unlock()

	// Log changes of error state only: an endpoint down for an hour must
	// not write 3,600 identical lines.
	if msg != e.lastErr && ctx.Err() == nil {
		if msg != "" {
			p.log.Warn("probe failed", "instance", e.addr, "seq", seq, "acknowledged", a.acked, "uncertain", a.uncertain, "err", msg)
		} else {
			p.log.Info("probe recovered", "instance", e.addr, "seq", seq, "duration", dur)
		}
		e.lastErr = msg
	}
	if p.probed != nil {
		p.probed()
	}
}

// attempt prepares the endpoint on first use, then writes. seq is updated
// when preparing finds the log already further on (a restarted appliance
// continues its sequence).
func (p *Prober) attempt(ctx context.Context, e *endpoint, seq *uint64) attempt {
	if !e.prepared {
		last, err := e.w.prepare(ctx)
		if err != nil {
			return attempt{err: err}
		}
		e.prepared = true
		if last >= *seq {
			*seq = last + 1
			p.mu.Lock()
			e.stats.lastAcked = max(e.stats.lastAcked, last)
			p.mu.Unlock()
		}
	}
	a := e.w.write(ctx, *seq)
	if missingTable(a.err) {
		e.prepared = false
	}
	return a
}

// maybePrune deletes a batch of day-old log rows when one is due: every
// PruneEvery, or at the next probe while a batch came back full. It runs
// between probes on the endpoint's connection, after a successful probe
// only, with half the latency bound, so it never delays a probe by much.
func (p *Prober) maybePrune(ctx context.Context, e *endpoint) {
	now := p.opts.Now()
	p.mu.Lock()
	ok := e.stats.last.Success
	p.mu.Unlock()
	if !ok || now.Before(e.nextPrune) {
		return
	}
	pctx, cancel := context.WithTimeout(ctx, p.opts.LatencyBound/2)
	n, err := e.w.prune(pctx)
	cancel()
	switch {
	case err != nil:
		p.log.Warn("probe log prune failed", "instance", e.addr, "err", err)
		e.nextPrune = now.Add(p.opts.PruneEvery / 60)
	case n >= pruneBatch:
		e.nextPrune = now // more to delete: next time round
	default:
		e.nextPrune = now.Add(p.opts.PruneEvery)
	}
}

// Seconds returns the SLI counters so far.
func (p *Prober) Seconds() Seconds {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.ledger.counts
}

// Latest returns the latest probe result of every endpoint, in the order
// the endpoints were given. An endpoint not probed yet has a zero Time.
func (p *Prober) Latest() []Result {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]Result, len(p.eps))
	for i, e := range p.eps {
		out[i] = e.stats.last
	}
	return out
}

// AcknowledgedSeqs returns the seqs this prober had acknowledged through
// endpoint: every seq from from to to, both included, was acknowledged
// (the seq advances only on an acknowledged write, so the range has no
// gaps). from is 0 when nothing was acknowledged yet, or the endpoint is
// unknown.
func (p *Prober) AcknowledgedSeqs(endpoint string) (from, to uint64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, e := range p.eps {
		if e.addr == endpoint && e.stats.firstAcked != 0 {
			return e.stats.firstAcked, e.stats.lastAcked
		}
	}
	return 0, 0
}
