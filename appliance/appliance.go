// Package appliance wires nines together: configuration, the embedded
// store, the exporters and probes, the rule engine, Alertmanager and the
// HTTP API. It is the only package that knows all the others.
package appliance

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	driver "github.com/go-sql-driver/mysql"

	"github.com/nines-project/nines"
	"github.com/nines-project/nines/appliance/alertmanager"
	"github.com/nines-project/nines/appliance/config"
	"github.com/nines-project/nines/appliance/remotewrite"
	"github.com/nines-project/nines/appliance/store"
	"github.com/nines-project/nines/exporter"
	"github.com/nines-project/nines/ha"
	"github.com/nines-project/nines/probe"
	"github.com/nines-project/nines/remediator"
	"github.com/nines-project/nines/rules"
)

// Options are the run-time choices that are not part of the config file.
type Options struct {
	// Listen overrides the config's listen address when not empty.
	Listen string
	Logger *slog.Logger
	// Ready, if not nil, is called once with the address the API listens
	// on, after everything has started.
	Ready func(addr string)
	// Reload, when it delivers, re-reads the rule files and the embedded
	// Alertmanager's config; on any error the running set stays.
	Reload <-chan struct{}
}

// App is a running appliance.
type App struct {
	cfg     *config.Config
	opts    Options
	log     *slog.Logger
	store   *store.Store
	query   *querier            // where rules, reports and the API read
	rw      *remotewrite.Writer // nil without remote_write
	exp     *exporter.Exporter
	probes  []*probe.Prober
	lbs     []*exporter.HAProxyScraper // one per cluster with an haproxy key
	ndb     []ndbPoller                // one per kind ndb cluster
	rules   *rules.Manager
	am      *alertmanager.Embedded // nil unless embedded
	sender  *countingSender
	in      *ingester
	qan     *queryAnalytics
	rem     *remediator.Remediator
	jobs    *remediator.JobLog
	backups *backups
	drills  *drills
	// team is the etcd election of appliances in HA; nil when alone.
	team *ha.Elector
	// runCtx ends when the appliance stops; jobs started over the API
	// run under it, so a shutdown leaves them to be resumed.
	runCtx context.Context
	start  time.Time
	// The handlers routes() builds once for the table's routes.
	storeHandler, metricsHandler, amHandler http.Handler
	// instance labels the series the appliance itself produces, as
	// Prometheus labels a scrape target: the appliance's host name.
	instance string
	// drMu serializes the writes of the DR replica series (observe).
	drMu sync.Mutex
}

// observe is the exporter's sink: it stores the snapshot and, on a Galera
// cluster with DR replicas, the DR series recomputed with it, flushed
// together when the snapshot changed, so GaleraDRReplicaSourceLost sees a
// dead source in the same evaluation as its failed scrape.
func (a *App) observe(snap *nines.Snapshot, changed bool) {
	var c *config.Cluster
	for i := range a.cfg.Clusters {
		if a.cfg.Clusters[i].Name == snap.Cluster && len(a.cfg.Clusters[i].DRReplicas) > 0 {
			c = &a.cfg.Clusters[i]
		}
	}
	if c == nil {
		a.in.observe(snap, changed)
		return
	}
	a.in.observe(snap, false)
	a.drMu.Lock()
	defer a.drMu.Unlock()
	var mine []*nines.Snapshot
	for _, s := range a.exp.Latest() {
		if s.Cluster == snap.Cluster && s.Instance != snap.Instance {
			mine = append(mine, s)
		}
	}
	// The exporter may publish this snapshot as latest after the sink.
	mine = append(mine, snap)
	a.in.write("nines:dr:"+c.Name, exporter.DRMetrics(c.Domain(), mine), time.Now(), changed)
}

// Run starts the appliance from cfg and blocks until ctx ends, then shuts
// down in order: HTTP, scrapers and probes, rules, Alertmanager, store
// (which flushes to disk). Anything wrong with the configuration or the
// files it names is reported before anything starts.
func Run(ctx context.Context, cfg *config.Config, opts Options) error {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	log := opts.Logger
	listen := cfg.Listen
	if opts.Listen != "" {
		listen = opts.Listen
	}
	// The MySQL driver logs connection failures on its own; the scrapers
	// already report them once per state change.
	_ = driver.SetLogger(slog.NewLogLogger(log.Handler(), slog.LevelDebug))

	srcs, err := RuleSources(cfg)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(cfg.DataDir, 0o750); err != nil {
		return fmt.Errorf("create data dir: %w", err)
	}
	unlock, err := lockDir(cfg.DataDir)
	if err != nil {
		return err
	}
	defer unlock()

	app := &App{cfg: cfg, opts: opts, log: log, start: time.Now()}
	if app.drills, err = newDrills(cfg.DataDir, app.start); err != nil {
		return err
	}
	var active func(cluster string) bool // nil: every cluster
	if app.sharded() {
		active = app.owns
	}
	// An error here surfaces from newProbes when a cluster has a probe.
	source, _ := probe.DefaultSource()
	if cfg.ProbeSource != "" {
		source = cfg.ProbeSource
	} else if cfg.HA != nil && source != "" {
		// Appliances of a team may share a host: each probes as itself,
		// or their probe rows would collide.
		source += "-" + cfg.HA.Name
	}
	if app.exp, err = exporter.New(scrapeTargets(cfg, source), exporter.Options{
		Interval:          cfg.Scrape.Interval.Duration,
		Timeout:           cfg.Scrape.Timeout.Duration,
		VariablesInterval: cfg.Scrape.VariablesInterval.Duration,
		Active:            active,
		Logger:            log,
	}); err != nil {
		return err
	}
	if app.probes, err = newProbes(cfg, source, active, log); err != nil {
		return err
	}
	app.lbs = newHAProxyScrapers(cfg, app)
	if app.ndb, err = newNDBPollers(cfg, log); err != nil {
		return err
	}

	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", listen, err)
	}
	defer ln.Close()
	scheme := "http"
	if cfg.TLS != nil {
		scheme = "https"
	}
	external := cfg.ExternalURL
	if external == "" {
		external = fmt.Sprintf("%s://%s", scheme, ln.Addr())
	}
	extURL, err := url.Parse(external)
	if err != nil {
		return fmt.Errorf("external URL %q: %w", external, err)
	}
	// The host name, not the listen address: it survives a restart on
	// another port, so the appliance's counters stay one series.
	if app.instance, err = os.Hostname(); err != nil || app.instance == "" {
		app.instance = extURL.Host
	}

	sender, am, err := openAlertmanager(cfg, external, opts)
	if err != nil {
		return err
	}
	if am != nil {
		defer am.Close()
	}
	app.am, app.sender = am, &countingSender{next: sender}
	if app.sharded() {
		app.sender.keep = app.ownedOnly
	}
	if sender == nil {
		log.Warn("no alertmanager configured: alerts are evaluated and shown, never sent")
	}

	// The remote-write queues open before the store, whose every Write
	// they tee, and close after it (defers run in reverse), when nothing
	// writes any more: what is buffered then is queued on disk.
	storeOpts := store.Options{DataDir: filepath.Join(cfg.DataDir, "tsdb"), Retention: cfg.Retention.Duration}
	if len(cfg.RemoteWrite) > 0 {
		if app.rw, err = openRemoteWrite(cfg, log); err != nil {
			return err
		}
		defer app.rw.Close()
		storeOpts.Tee = app.rw.Append
	}
	if app.store, err = store.Open(storeOpts); err != nil {
		return err
	}
	defer app.store.Close()

	if app.query, err = newQuerier(app.store, cfg.Store, log.With("component", "store")); err != nil {
		return err
	}
	app.rules = rules.NewManager(storeQuerier{app.query}, storeAppender{app.store, newIngester(app.store, nil)}, app.sender, rules.Options{ExternalURL: extURL, Logger: log})
	if err := app.rules.Load(srcs); err != nil {
		return err
	}
	app.in = newIngester(app.store, app.rules.Kick)
	if app.qan, err = newQueryAnalytics(cfg, app.in, log.With("component", "qan")); err != nil {
		return err
	}
	defer app.qan.close()

	var silenced func(map[string]string) bool
	if am != nil {
		silenced = am.Silenced
	}
	if cfg.HA != nil {
		names := make([]string, 0, len(cfg.Clusters))
		for _, c := range cfg.Clusters {
			names = append(names, c.Name)
		}
		app.team, err = ha.New(ha.Config{Name: cfg.HA.Name, Endpoints: cfg.HA.Etcd, Lease: cfg.HA.Lease.Duration,
			Shard: cfg.HA.Shard, TLS: cfg.HA.TLSConfig, Logger: log.With("component", "ha")}, names)
		if err != nil {
			return err
		}
		defer app.team.Close()
	}
	if app.rem, app.jobs, err = newRemediator(cfg, silenced, app); err != nil {
		return err
	}
	// Check compared the webhook with the config's listen address; a
	// --listen elsewhere can still leave the remediator deaf. Say so where
	// an operator looks: the log, and each cluster's remediation status.
	if problem := RemediatorRouteProblem(cfg, listen); problem != "" {
		log.Error("the remediator hears no alert", "problem", problem)
		for _, c := range cfg.Clusters {
			app.rem.Note(c.Name, problem)
		}
	}

	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	app.runCtx = runCtx
	// Runs after cancel (defers run in reverse): a drill ends with runCtx.
	defer app.drills.wg.Wait()
	var wg sync.WaitGroup
	spawn := func(f func(context.Context)) {
		wg.Add(1)
		go func() { defer wg.Done(); f(runCtx) }()
	}
	spawn(func(ctx context.Context) { app.exp.Run(ctx, app.observe) })
	for _, p := range app.probes {
		spawn(func(ctx context.Context) { p.Run(ctx) })
	}
	for _, lb := range app.lbs {
		spawn(func(ctx context.Context) { app.runHAProxy(ctx, lb) })
	}
	for _, np := range app.ndb {
		spawn(func(ctx context.Context) { app.runNDB(ctx, np) })
	}
	spawn(app.writeSelfMetrics)
	spawn(app.qan.run)
	spawn(app.rules.Run)
	if app.team != nil {
		spawn(app.team.Run)
	}
	spawn(app.rem.Run)
	spawn(app.backups.run)
	spawn(app.reloadLoop)
	spawn(app.provisionGrafana) // in the background: never holds up the start

	srv := newServer(app.routes())
	serveErr := make(chan error, 1)
	go func() {
		if cfg.TLS != nil {
			serveErr <- srv.ServeTLS(ln, cfg.TLS.CertFile, cfg.TLS.KeyFile)
		} else {
			serveErr <- srv.Serve(ln)
		}
	}()
	log.Info("nines is running", "api", fmt.Sprintf("%s://%s/api/v1/", scheme, ln.Addr()), "data_dir", cfg.DataDir,
		"nodes", len(scrapeTargets(cfg, source)), "rule_sources", len(srcs))
	if opts.Ready != nil {
		opts.Ready(ln.Addr().String())
	}

	select {
	case <-ctx.Done():
	case err = <-serveErr:
		err = fmt.Errorf("http server: %w", err)
	}
	shutdownCtx, done := context.WithTimeout(context.Background(), 5*time.Second)
	defer done()
	_ = srv.Shutdown(shutdownCtx)
	cancel()
	wg.Wait()
	log.Info("nines stopped")
	return err
}

// scrapeTargets lists every node and DR replica. On replication clusters with a probe,
// the exporter reads the lag of the heartbeat rows the probe writes as
// probeSource.
func scrapeTargets(cfg *config.Config, probeSource string) []exporter.Target {
	var targets []exporter.Target
	for _, c := range cfg.Clusters {
		heartbeat := ""
		if c.Kind == nines.KindReplication && len(c.ProbeEndpoints()) > 0 {
			heartbeat = probeSource
		}
		for _, n := range c.Nodes {
			targets = append(targets, exporter.Target{
				Cluster: c.Name, Kind: c.Kind, Address: n.Address,
				User: c.Credentials.User, Password: c.Credentials.Password.Reveal(), TLS: c.Credentials.TLSConfig,
				ReplicaStatus: c.CollectReplicaStatus(), HeartbeatSource: heartbeat,
			})
		}
		// A DR replica is read as a replica (status and GTID positions)
		// under its Galera cluster's name; it has no probe heartbeat.
		for _, d := range c.DRReplicas {
			targets = append(targets, exporter.Target{
				Cluster: c.Name, Kind: nines.KindReplication, Address: d.Address,
				User: c.Credentials.User, Password: c.Credentials.Password.Reveal(), TLS: c.Credentials.TLSConfig,
				ReplicaStatus: true,
			})
		}
	}
	return targets
}

// reloadLoop re-reads rule files and the Alertmanager config on request.
func (a *App) reloadLoop(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-a.opts.Reload:
		}
		if err := a.reload(); err != nil {
			a.log.Error("reload failed; the running rules and Alertmanager config stay", "err", err)
			continue
		}
		a.log.Info("reloaded rules and alertmanager config")
	}
}

func (a *App) reload() error {
	srcs, err := RuleSources(a.cfg)
	if err != nil {
		return err
	}
	if err := a.rules.Load(srcs); err != nil {
		return err
	}
	if a.am != nil {
		return a.am.Reload()
	}
	return nil
}

// lockDir takes an exclusive lock on dir so that two appliances never
// share a data directory.
func lockDir(dir string) (func(), error) {
	f, err := os.OpenFile(filepath.Join(dir, "nines.lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock data dir: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("data dir %s is in use by another nines process", dir)
		}
		return nil, fmt.Errorf("lock data dir %s: %w", dir, err)
	}
	return func() { f.Close() }, nil
}
