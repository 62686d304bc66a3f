// Package ha lets several appliances share the clusters they watch: every
// appliance monitors and alerts, and for each cluster exactly one, the
// holder of the cluster's etcd election, acts. The leader's key create
// revision is the fencing token: it only grows, so a later leader's token
// is always larger, and agents refuse tokens older than the highest they
// have seen.
//
// One etcd session (a lease of Config.Lease) per appliance carries every
// election it wins: when the lease is lost (the process paused past it,
// etcd unreachable, the session closed) every leadership ends at once and
// each Lead context is cancelled. A new session then campaigns again and,
// winning, gets new, larger tokens.
//
// The package knows only etcd and the standard library: the remediator
// consumes it through small interfaces of its own.
package ha

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
	"go.uber.org/zap"

	"github.com/nines-project/nines/internal/metric"
)

// DefaultPrefix is where the appliances keep their keys in etcd.
const DefaultPrefix = "/nines/ha"

// Config is the ha: block of nines.yaml, validated by the caller.
type Config struct {
	// Name identifies this appliance in etcd (the election's value).
	Name string
	// Endpoints are etcd's client URLs.
	Endpoints []string
	// Lease is the session's TTL: how long a dead or paused leader keeps
	// its clusters before another appliance may take them. Whole seconds,
	// at least one.
	Lease time.Duration
	// Prefix of every key; default DefaultPrefix.
	Prefix string
	// Shard spreads the clusters over the live appliances (shard.go):
	// each campaigns only for the clusters it owns. Without it every
	// appliance campaigns for every cluster.
	Shard bool
	// TLS, when set, is how the client checks etcd's https endpoints (and
	// the client certificate it shows); nil means plain http.
	TLS    *tls.Config
	Logger *slog.Logger
}

// ErrNotLeader is returned by the fenced writes of an appliance that does
// not (or no longer) lead the cluster.
var ErrNotLeader = errors.New("this appliance does not lead the cluster")

// term is one leadership of one cluster.
type term struct {
	ctx   context.Context
	token int64
	key   string
}

// Elector campaigns for every cluster and answers who leads.
type Elector struct {
	cfg      Config
	clusters []string
	cli      *clientv3.Client
	log      *slog.Logger

	mu      sync.Mutex
	leading map[string]term
	etcdUp  bool
	// members are the live appliances when sharding (shard.go).
	members []string
	// wins counts elections won per cluster since start.
	wins map[string]int
}

// New connects lazily to etcd (nothing is dialled before Run) and
// returns an Elector for clusters.
func New(cfg Config, clusters []string) (*Elector, error) {
	if cfg.Name == "" {
		return nil, errors.New("ha: name is empty")
	}
	if len(cfg.Endpoints) == 0 {
		return nil, errors.New("ha: no etcd endpoint")
	}
	if cfg.Lease < time.Second {
		return nil, fmt.Errorf("ha: lease %s is shorter than 1s", cfg.Lease)
	}
	if cfg.Prefix == "" {
		cfg.Prefix = DefaultPrefix
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	cli, err := clientv3.New(clientv3.Config{
		Endpoints:   cfg.Endpoints,
		TLS:         cfg.TLS,
		DialTimeout: 2 * time.Second,
		// The Elector logs etcd's reachability itself, once per change;
		// the client's own logger would add a JSON line per retry, every
		// second etcd is away, beside nines' log.
		Logger: zap.NewNop(),
		// gRPC keepalives notice a dead connection within the lease.
		DialKeepAliveTime:    time.Second,
		DialKeepAliveTimeout: time.Second,
	})
	if err != nil {
		return nil, fmt.Errorf("ha: etcd client for %v: %w", cfg.Endpoints, err)
	}
	return &Elector{cfg: cfg, clusters: append([]string(nil), clusters...), cli: cli,
		log: cfg.Logger.With("ha", cfg.Name), leading: map[string]term{}, wins: map[string]int{}}, nil
}

// Close releases the etcd client; call after Run returned.
func (e *Elector) Close() error { return e.cli.Close() }

// Name is this appliance's name in the team.
func (e *Elector) Name() string { return e.cfg.Name }

// Lead returns, when this appliance leads cluster, a context that is
// cancelled the moment the leadership ends, and its fencing token.
func (e *Elector) Lead(cluster string) (context.Context, int64, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	t, ok := e.leading[cluster]
	if !ok || t.ctx.Err() != nil {
		return nil, 0, false
	}
	return t.ctx, t.token, true
}

// EtcdUp reports whether the last probe of etcd succeeded.
func (e *Elector) EtcdUp() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.etcdUp
}

// Metrics are nines_ha_leader{cluster} (1 while this appliance leads it)
// and nines_ha_etcd_up.
func (e *Elector) Metrics() []metric.Metric {
	set := &metric.Set{}
	up := 0.0
	if e.EtcdUp() {
		up = 1
	}
	set.Add("nines_ha_etcd_up", "1 when this appliance reaches etcd (a linearizable read within 1 s); 0 means it cannot lead, so its remediation is paused.", metric.Gauge, up)
	for _, c := range e.clusters {
		v := 0.0
		if _, _, ok := e.Lead(c); ok {
			v = 1
		}
		set.Add("nines_ha_leader", "1 while this appliance holds the cluster's etcd lease and so is the one that acts on it.", metric.Gauge, v, "cluster", c)
	}
	if e.cfg.Shard {
		// Labelled with the appliance: every member writes it to the
		// shared store, possibly from one host.
		owned := 0
		for _, c := range e.clusters {
			if e.Owns(c) {
				owned++
			}
		}
		set.Add("nines_ha_owned_clusters", "Clusters this appliance owns (watches and campaigns for) among the live appliances.", metric.Gauge, float64(owned), "appliance", e.cfg.Name)
		set.Add("nines_ha_members", "Live appliances of the team as this appliance sees them in etcd.", metric.Gauge, float64(len(e.Members())), "appliance", e.cfg.Name)
	}
	return set.Metrics
}

// Run probes etcd and campaigns until ctx ends, renewing the session
// whenever it is lost.
func (e *Elector) Run(ctx context.Context) {
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		e.probe(ctx)
	}()
	defer wg.Wait()
	for ctx.Err() == nil {
		if err := e.session(ctx); err != nil && ctx.Err() == nil {
			e.log.Warn("etcd session", "err", err)
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
		}
	}
}

// probe reads a key every second with a linearizable read, which needs
// a quorum: a member cut off from its peers does not count as up.
func (e *Elector) probe(ctx context.Context) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		pctx, cancel := context.WithTimeout(ctx, time.Second)
		_, err := e.cli.Get(pctx, e.cfg.Prefix+"/probe")
		cancel()
		e.mu.Lock()
		if was := e.etcdUp; was != (err == nil) {
			if err != nil {
				e.log.Warn("etcd unreachable: remediation pauses once the lease ends", "err", err)
			} else {
				e.log.Info("etcd reachable")
			}
		}
		e.etcdUp = err == nil
		e.mu.Unlock()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// session runs one etcd session: it campaigns for every cluster and
// returns once the session ended, every leadership it carried ended too.
func (e *Elector) session(ctx context.Context) error {
	ttl := int64(e.cfg.Lease / time.Second)
	gctx, cancel := context.WithTimeout(ctx, e.cfg.Lease)
	lease, err := e.cli.Grant(gctx, ttl)
	cancel()
	if err != nil {
		return fmt.Errorf("grant a lease of %ds: %w", ttl, err)
	}
	s, err := concurrency.NewSession(e.cli, concurrency.WithLease(lease.ID), concurrency.WithContext(ctx))
	if err != nil {
		return fmt.Errorf("session on lease %x: %w", lease.ID, err)
	}
	e.log.Info("etcd session started", "lease", fmt.Sprintf("%x", lease.ID), "ttl_s", ttl)
	sctx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	if e.cfg.Shard {
		wg.Add(1)
		go func() {
			defer wg.Done()
			e.shard(sctx, s)
		}()
	} else {
		for _, c := range e.clusters {
			wg.Add(1)
			go func() {
				defer wg.Done()
				e.campaign(sctx, s, c)
			}()
		}
	}
	select {
	case <-s.Done():
		e.log.Warn("etcd session lost: every leadership of this appliance ended", "lease", fmt.Sprintf("%x", lease.ID))
	case <-ctx.Done():
	}
	stop()
	wg.Wait()
	if ctx.Err() != nil {
		// Stopping: give the clusters up at once rather than after the
		// lease, so the next leader need not wait.
		rctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, _ = e.cli.Revoke(rctx, lease.ID)
		cancel()
	}
	return nil
}

// campaign wins cluster's election on session s and holds it until sctx
// ends (the session ended, the appliance stops, or, sharding, it no
// longer owns the cluster).
func (e *Elector) campaign(sctx context.Context, s *concurrency.Session, cluster string) {
	el := concurrency.NewElection(s, e.cfg.Prefix+"/leader/"+cluster)
	for {
		err := el.Campaign(sctx, e.cfg.Name)
		if err == nil {
			break
		}
		if sctx.Err() != nil {
			return
		}
		e.log.Warn("campaign", "cluster", cluster, "err", err)
		select {
		case <-sctx.Done():
			return
		case <-time.After(500 * time.Millisecond):
		}
	}
	// A lease lost ends the leadership at once, before session() has
	// noticed and cancelled sctx.
	lctx, cancel := context.WithCancel(sctx)
	defer cancel()
	go func() {
		select {
		case <-s.Done():
			cancel()
		case <-lctx.Done():
		}
	}()
	t := term{ctx: lctx, token: el.Rev(), key: el.Key()}
	e.mu.Lock()
	e.leading[cluster] = t
	e.wins[cluster]++
	e.mu.Unlock()
	e.log.Info("leads cluster", "cluster", cluster, "token", t.token)
	<-lctx.Done()
	e.mu.Lock()
	if e.leading[cluster].key == t.key {
		delete(e.leading, cluster)
	}
	e.mu.Unlock()
	if e.cfg.Shard && s.Ctx().Err() == nil && !sessionDone(s) {
		// Still in session, so the cluster moved to another appliance
		// (or this one stops): hand it over now rather than when the
		// lease ends. The term above has ended first, and a job's act
		// still in flight carries the older token, which the agents
		// refuse once the successor's has reached them.
		rctx, cancel := context.WithTimeout(context.Background(), time.Second)
		if err := el.Resign(rctx); err != nil {
			e.log.Warn("resign", "cluster", cluster, "err", err)
		}
		cancel()
	}
	e.log.Warn("no longer leads cluster", "cluster", cluster, "token", t.token)
}

func sessionDone(s *concurrency.Session) bool {
	select {
	case <-s.Done():
		return true
	default:
		return false
	}
}

// jobKey is where cluster's job id is kept.
func (e *Elector) jobKey(cluster, id string) string {
	return e.cfg.Prefix + "/jobs/" + cluster + "/" + id
}

// PutJob records a job of cluster in etcd, or deletes it when done (the
// shared log holds only the jobs a next leader must resume). The write
// is fenced: it happens only while this appliance's leader key for the
// cluster still exists with the create revision it won with, so a
// deposed leader's write is refused by etcd itself.
func (e *Elector) PutJob(cluster, id string, data []byte, done bool) error {
	e.mu.Lock()
	t, ok := e.leading[cluster]
	e.mu.Unlock()
	if !ok || t.ctx.Err() != nil {
		return fmt.Errorf("record job %s in etcd: %w %q", id, ErrNotLeader, cluster)
	}
	ctx, cancel := context.WithTimeout(t.ctx, e.cfg.Lease)
	defer cancel()
	op := clientv3.OpPut(e.jobKey(cluster, id), string(data))
	if done {
		op = clientv3.OpDelete(e.jobKey(cluster, id))
	}
	resp, err := e.cli.Txn(ctx).If(clientv3.Compare(clientv3.CreateRevision(t.key), "=", t.token)).Then(op).Commit()
	if err != nil {
		return fmt.Errorf("record job %s in etcd: %w", id, err)
	}
	if !resp.Succeeded {
		return fmt.Errorf("record job %s in etcd: leadership of %q (token %d) lost: %w", id, cluster, t.token, ErrNotLeader)
	}
	return nil
}

// RunningJobs returns the jobs of cluster the shared log holds: those a
// previous leader left unfinished.
func (e *Elector) RunningJobs(ctx context.Context, cluster string) ([][]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, e.cfg.Lease)
	defer cancel()
	resp, err := e.cli.Get(ctx, e.jobKey(cluster, ""), clientv3.WithPrefix())
	if err != nil {
		return nil, fmt.Errorf("read the jobs of %q in etcd: %w", cluster, err)
	}
	var out [][]byte
	for _, kv := range resp.Kvs {
		out = append(out, kv.Value)
	}
	return out, nil
}
