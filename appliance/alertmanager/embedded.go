package alertmanager

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/model"
	"github.com/prometheus/common/route"

	"github.com/prometheus/alertmanager/alert"
	"github.com/prometheus/alertmanager/api"
	"github.com/prometheus/alertmanager/cluster"
	"github.com/prometheus/alertmanager/config"
	"github.com/prometheus/alertmanager/dispatch"
	"github.com/prometheus/alertmanager/eventrecorder"
	"github.com/prometheus/alertmanager/featurecontrol"
	"github.com/prometheus/alertmanager/inhibit"
	"github.com/prometheus/alertmanager/labelset"
	"github.com/prometheus/alertmanager/nflog"
	"github.com/prometheus/alertmanager/notify"
	"github.com/prometheus/alertmanager/provider/mem"
	"github.com/prometheus/alertmanager/silence"

	"github.com/nines-project/nines"
)

// PathPrefix is where the caller mounts Handler: the handler serves
// PathPrefix+"/api/v2/...", so amtool --alertmanager.url=http://host:port/alertmanager
// works against the appliance.
const PathPrefix = "/alertmanager"

// Defaults for Options left at zero, and the fixed intervals of the
// background work. Upstream's defaults, except MaintenanceInterval.
const (
	DefaultRetention = 120 * time.Hour
	// maintenanceInterval is how often silences and the notification log
	// are garbage collected and snapshotted to DataDir. Upstream takes
	// 15 m; a silence is how an operator pauses remediation, so a crash
	// of the appliance should lose at most a minute of them.
	maintenanceInterval         = time.Minute
	alertGCInterval             = 30 * time.Minute
	dispatchMaintenanceInterval = 30 * time.Second
)

// ErrClosed is returned by Send and Reload after Close.
var ErrClosed = errors.New("alertmanager: closed")

// Options configure the embedded Alertmanager.
type Options struct {
	// ConfigFile is the alertmanager.yml to load; relative paths inside it
	// (templates, *_file secrets) are relative to its directory.
	ConfigFile string
	// DataDir holds the silences and the notification log snapshots, so
	// that both survive a restart. Created if missing.
	DataDir string
	// ExternalURL is the URL under which users reach this Alertmanager,
	// e.g. https://nines.example.net:9104/alertmanager; templates use it
	// for links. Empty means http://<hostname>/alertmanager.
	ExternalURL string
	// Logger receives Alertmanager's own logs. Nil discards them.
	Logger *slog.Logger
	// Retention is how long expired silences and notification log entries
	// are kept. Zero means DefaultRetention.
	Retention time.Duration
	// Validity is how long a firing alert stays firing unless sent again;
	// zero means DefaultValidity. See DefaultValidity.
	Validity time.Duration
	// Cluster, when set, gossips silences and the notification log with
	// the other appliances' Alertmanagers (see Cluster).
	Cluster *Cluster
}

// Embedded is an Alertmanager running inside the appliance. Its methods
// are safe for concurrent use.
type Embedded struct {
	configFile  string
	logger      *slog.Logger
	validity    time.Duration
	externalURL *url.URL
	reg         *prometheus.Registry
	startTime   time.Time

	// Long-lived: built once in New, kept across reloads.
	alerts   *mem.Alerts
	silences *silence.Silences
	silencer *silence.Silencer
	nflog    *nflog.Log
	// localLog is the remediator receivers' notification log in a
	// cluster: kept here, never gossiped (see remediatorReceivers).
	localLog          *nflog.Log
	gossip            *gossip // nil unless clustered
	api               *api.API
	handler           http.Handler
	coordinator       *config.Coordinator
	pipelineBuilder   *notify.PipelineBuilder
	dispatcherMetrics *dispatch.DispatcherMetrics
	metrics           *metrics
	// recorder is left zero: event recording is off, as upstream's is
	// without its feature flag.
	recorder eventrecorder.Recorder

	// cur is the running configuration's routing tree, inhibitor and
	// dispatcher; apply swaps it. applyMu serialises apply with Close.
	cur     atomic.Pointer[generation]
	applyMu sync.Mutex

	// closeMu guards closed: Send and Reload hold it shared, so that
	// Close does not tear the pipeline down under them.
	closeMu sync.RWMutex
	closed  bool

	stopMaintenance chan struct{}
	maintenance     sync.WaitGroup // snapshot goroutines of silences and nflog
	inhibitors      sync.WaitGroup // Inhibitor.Run of every generation
}

// generation is what one configuration builds and a reload replaces.
type generation struct {
	routes     *dispatch.Route
	intervener notify.TimeMuter
	inhibitor  *inhibit.Inhibitor
	dispatcher *dispatch.Dispatcher
}

// New loads and validates o.ConfigFile, restores silences and the
// notification log from o.DataDir and starts the whole pipeline: alerts
// given to Send are routed, grouped, inhibited, silenced and notified from
// then on. The caller must Close it. Configuration errors name the file.
func New(o Options) (*Embedded, error) {
	if o.ConfigFile == "" {
		return nil, errors.New("alertmanager: no config file")
	}
	if o.DataDir == "" {
		return nil, errors.New("alertmanager: no data directory")
	}
	if o.Retention == 0 {
		o.Retention = DefaultRetention
	}
	if o.Validity == 0 {
		o.Validity = DefaultValidity
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	ext, err := externalURL(o.ExternalURL)
	if err != nil {
		return nil, err
	}
	conf, err := loadConfig(o.ConfigFile)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(o.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("alertmanager: create data directory: %w", err)
	}

	e := &Embedded{
		configFile:      o.ConfigFile,
		logger:          o.Logger,
		validity:        o.Validity,
		externalURL:     ext,
		reg:             prometheus.NewRegistry(),
		startTime:       time.Now(),
		stopMaintenance: make(chan struct{}),
	}
	if err := e.start(conf, o); err != nil {
		e.shutdown()
		return nil, err
	}
	return e, nil
}

// start builds the long-lived parts, then applies conf. On error the parts
// built so far are left for shutdown, which copes with any of them nil.
func (e *Embedded) start(conf *config.Config, o Options) error {
	reg := e.reg
	ff := featurecontrol.NoopFlags{}
	e.metrics = newMetrics(reg)

	var cl Cluster
	if o.Cluster != nil {
		cl = o.Cluster.defaults()
		g, err := newPeer(cl, e)
		if err != nil {
			return err
		}
		e.gossip = g
	}

	nflogFile := filepath.Join(o.DataDir, "nflog")
	nl, err := nflog.New(nflog.Options{
		SnapshotFile: nflogFile,
		Retention:    o.Retention,
		Logger:       e.logger.With("component", "nflog"),
		Metrics:      reg,
	})
	if err != nil {
		return fmt.Errorf("alertmanager: load notification log %s: %w", nflogFile, err)
	}
	e.nflog = nl
	e.maintenance.Go(func() {
		nl.Maintenance(maintenanceInterval, nflogFile, e.stopMaintenance, nil)
	})
	if e.gossip != nil {
		nl.SetBroadcast(e.gossip.peer.AddState("nfl", nl, reg).Broadcast)
		localFile := filepath.Join(o.DataDir, "nflog-local")
		ll, err := nflog.New(nflog.Options{
			SnapshotFile: localFile,
			Retention:    o.Retention,
			Logger:       e.logger.With("component", "nflog-local"),
			// Its metrics would clash by name with the gossiped log's in
			// reg; that one's are the ones that matter.
			Metrics: prometheus.NewRegistry(),
		})
		if err != nil {
			return fmt.Errorf("alertmanager: load notification log %s: %w", localFile, err)
		}
		e.localLog = ll
		e.maintenance.Go(func() {
			ll.Maintenance(maintenanceInterval, localFile, e.stopMaintenance, nil)
		})
	}

	silencesFile := filepath.Join(o.DataDir, "silences")
	sil, err := silence.New(silence.Options{
		SnapshotFile:  silencesFile,
		Retention:     o.Retention,
		Logger:        e.logger.With("component", "silences"),
		Metrics:       reg,
		EventRecorder: e.recorder,
	})
	if err != nil {
		return fmt.Errorf("alertmanager: load silences %s: %w", silencesFile, err)
	}
	e.silences = sil
	e.maintenance.Go(func() {
		sil.Maintenance(maintenanceInterval, silencesFile, e.stopMaintenance, nil)
	})
	e.silencer = silence.NewSilencer(sil, e.logger, e.recorder)
	if e.gossip != nil {
		sil.SetBroadcast(e.gossip.peer.AddState("sil", sil, reg).Broadcast)
		// Both states are registered: now join, and receive theirs.
		e.gossip.join(cl, e.logger)
	}

	e.alerts, err = mem.NewAlerts(context.Background(), alertGCInterval, 0, e.silencer, e.logger, e.recorder, reg, ff)
	if err != nil {
		return fmt.Errorf("alertmanager: create alert store: %w", err)
	}

	var peer cluster.ClusterPeer
	if e.gossip != nil {
		peer = e.gossip.peer
	}
	e.api, err = api.New(api.Options{
		Alerts:          e.alerts,
		Silences:        sil,
		Peer:            peer,
		Logger:          e.logger.With("component", "api"),
		Registry:        reg,
		RequestDuration: e.metrics.requestDuration,
		GroupFunc: func(ctx context.Context, rf func(*dispatch.Route) bool, af dispatch.AlertFilter) (dispatch.AlertGroups, map[model.Fingerprint][]string, error) {
			return e.cur.Load().dispatcher.Groups(ctx, rf, af)
		},
	})
	if err != nil {
		return fmt.Errorf("alertmanager: create API: %w", err)
	}
	router := route.New().WithInstrumentation(e.metrics.instrumentHandler).WithPrefix(PathPrefix)
	ok := func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("OK")) }
	router.Get("/-/healthy", ok)
	router.Head("/-/healthy", ok)
	router.Get("/-/ready", ok)
	router.Head("/-/ready", ok)
	e.handler = e.api.Register(router, PathPrefix)

	e.pipelineBuilder = notify.NewPipelineBuilder(reg, ff, e.recorder)
	e.dispatcherMetrics = dispatch.NewDispatcherMetrics(false, reg, ff)
	e.coordinator = config.NewCoordinator(e.configFile, reg, e.logger.With("component", "configuration"))
	e.coordinator.Subscribe(e.apply)
	if err := e.coordinator.ApplyConfig(conf); err != nil {
		return fmt.Errorf("alertmanager: apply %s: %w", e.configFile, err)
	}
	return nil
}

// apply builds everything a configuration determines and swaps it in.
// All that can fail happens before the running generation is touched, so
// a failed apply leaves it working. Called by the coordinator, which
// serialises calls.
func (e *Embedded) apply(conf *config.Config) error {
	b, err := build(conf, e.externalURL, e.logger)
	if err != nil {
		return err
	}
	if e.gossip != nil && len(b.mixed) > 0 {
		return mixedError(b.mixed)
	}
	e.applyMu.Lock()
	defer e.applyMu.Unlock()

	old := e.cur.Load()
	if old != nil {
		// Stopped before the new ones start, as upstream does: alerts
		// arriving in between wait in the store, and the new dispatcher
		// takes them all when it starts; the notification log keeps it
		// from repeating what the old one already sent.
		old.inhibitor.Stop()
		old.dispatcher.Stop()
	}

	g := &generation{routes: b.routes, intervener: b.intervener}
	g.inhibitor = inhibit.NewInhibitor(e.alerts, conf.InhibitRules, e.logger, e.recorder)
	pipeline := e.pipeline(b, g.inhibitor)
	g.dispatcher = dispatch.NewDispatcher(e.alerts, b.routes, pipeline, b.intervener, e.notifyTimeout,
		dispatchMaintenanceInterval, nil, e.logger, e.recorder, e.dispatcherMetrics, b.tmpl)

	e.metrics.receivers.Set(float64(len(b.receivers)))
	e.metrics.integrations.Set(float64(b.integrations))
	e.metrics.inhibitionRules.Set(float64(len(conf.InhibitRules)))
	e.api.Update(conf, func(ctx context.Context, ls labelset.LabelSet) {
		e.cur.Load().inhibitor.Mutes(ctx, ls)
		e.silencer.Mutes(ctx, ls)
	})

	// The inhibitor first, and loaded, so that the dispatcher never
	// notifies an alert that a source alert already in the store inhibits.
	e.inhibitors.Go(g.inhibitor.Run)
	g.inhibitor.WaitForLoading()
	go g.dispatcher.Run(e.startTime)
	g.dispatcher.WaitForLoading()
	e.cur.Store(g)
	return nil
}

// pipeline builds the notification stages of every receiver. Alone, one
// pipeline. In a cluster, pages go through the gossiped notification log
// and wait their peer's turn, as upstream's do, while the remediator's
// receivers notify at once from a log of their own: every appliance's
// remediator hears every alert, and the one leading the cluster acts.
// apply has refused receivers that mix the two.
func (e *Embedded) pipeline(b *built, inh *inhibit.Inhibitor) notify.RoutingStage {
	if e.gossip == nil {
		return e.pipelineBuilder.New(b.receivers, func() time.Duration { return 0 }, inh, e.silencer, b.intervener, e.nflog, nil)
	}
	pages := map[string][]notify.Integration{}
	local := map[string][]notify.Integration{}
	for name, in := range b.receivers {
		if b.remediators[name] {
			local[name] = in
		} else {
			pages[name] = in
		}
	}
	rs := e.pipelineBuilder.New(pages, e.gossip.wait, inh, e.silencer, b.intervener, e.nflog, e.gossip.peer)
	for name, st := range e.pipelineBuilder.New(local, func() time.Duration { return 0 }, inh, e.silencer, b.intervener, e.localLog, nil) {
		rs[name] = st
	}
	return rs
}

// notifyTimeout bounds one notification attempt of a route with the given
// group_interval, as upstream does: in a cluster, plus this peer's wait.
func (e *Embedded) notifyTimeout(d time.Duration) time.Duration {
	return max(d, notify.MinTimeout) + e.gossip.wait()
}

// Send hands alerts to the embedded Alertmanager, mapped as Prometheus
// does (see DefaultValidity). Valid alerts are stored even when others are
// invalid; the error then lists the invalid ones.
func (e *Embedded) Send(ctx context.Context, alerts []nines.Alert) error {
	e.closeMu.RLock()
	defer e.closeMu.RUnlock()
	if e.closed {
		return ErrClosed
	}
	now := time.Now()
	var (
		valid []*alert.Alert
		errs  []error
	)
	for _, m := range toModel(alerts, now, e.validity) {
		if err := alert.Validate(&m); err != nil {
			errs = append(errs, fmt.Errorf("alert %s: %w", m.Labels, err))
			continue
		}
		valid = append(valid, alert.New(m, now, false))
	}
	if len(valid) > 0 {
		if err := e.alerts.Put(ctx, valid...); err != nil {
			errs = append(errs, fmt.Errorf("store alerts: %w", err))
		}
	}
	return errors.Join(errs...)
}

// Handler serves Alertmanager's API v2 (and /-/healthy, /-/ready) under
// PathPrefix; the caller mounts it there without stripping the prefix, and
// authenticates the callers.
func (e *Embedded) Handler() http.Handler { return e.handler }

// Registry holds Alertmanager's own metrics (alertmanager_*), for the
// appliance to gather into /metrics.
func (e *Embedded) Registry() *prometheus.Registry { return e.reg }

// Reload re-reads the config file and swaps the new configuration in. On
// error the running configuration stays in force and the error names the
// file.
func (e *Embedded) Reload() error {
	e.closeMu.RLock()
	defer e.closeMu.RUnlock()
	if e.closed {
		return ErrClosed
	}
	if err := e.coordinator.Reload(); err != nil {
		return fmt.Errorf("alertmanager: reload %s: %w", e.configFile, err)
	}
	return nil
}

// Silenced reports whether Alertmanager currently withholds notifications
// for an alert with these labels by the operator's will: an active silence
// matches them, or every route they match is muted by its time intervals
// (mute_time_intervals containing now, or active_time_intervals not
// containing it) — a maintenance window. Inhibition does not count: it
// depends on other alerts, not on a decision to pause. The remediator
// pauses remediation while this is true.
func (e *Embedded) Silenced(labels map[string]string) bool {
	ls := labelSet(labels)
	sils, _, err := e.silences.Query(context.Background(),
		silence.QState(silence.SilenceStateActive), silence.QMatches(ls))
	if err != nil {
		// Unreachable with these query parameters; if it ever happens,
		// err on the side of not acting.
		e.logger.Error("query silences", "err", err)
		return true
	}
	if len(sils) > 0 {
		return true
	}
	g := e.cur.Load()
	routes := g.routes.Match(ls)
	now := time.Now()
	for _, r := range routes {
		byActive, byMute, err := notify.MutedByTimeIntervals(g.intervener,
			r.RouteOpts.ActiveTimeIntervals, r.RouteOpts.MuteTimeIntervals, now)
		if err != nil || len(byActive)+len(byMute) == 0 {
			return false
		}
	}
	return len(routes) > 0
}

// Close stops the pipeline and waits until silences and the notification
// log are snapshotted to DataDir. Alerts not yet notified are lost: they
// live in memory only, and the rules re-send them after a restart. Stop
// serving Handler first: silences created after Close are not saved.
func (e *Embedded) Close() error {
	e.closeMu.Lock()
	defer e.closeMu.Unlock()
	if e.closed {
		return nil
	}
	e.closed = true
	e.shutdown()
	return nil
}

// shutdown tears down in the reverse order of start; any part may be nil
// when start failed half-way.
func (e *Embedded) shutdown() {
	e.applyMu.Lock()
	if g := e.cur.Load(); g != nil {
		g.inhibitor.Stop()
		g.dispatcher.Stop()
	}
	e.applyMu.Unlock()
	e.inhibitors.Wait()
	if e.api != nil {
		e.api.Shutdown()
	}
	if e.alerts != nil {
		e.alerts.Close()
	}
	close(e.stopMaintenance)
	e.maintenance.Wait()
	// Last: the final snapshots above are local, and a peer that leaves
	// is at once not waited for by the others.
	e.gossip.leave()
	_ = e.recorder.Close()
}

// externalURL parses the configured external URL, or makes one up from
// the host name.
func externalURL(s string) (*url.URL, error) {
	if s == "" {
		host, err := os.Hostname()
		if err != nil || host == "" {
			host = "localhost"
		}
		s = "http://" + host + PathPrefix
	}
	u, err := url.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("alertmanager: external URL %q: %w", s, err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("alertmanager: external URL %q: want http(s)://host[:port][/path]", s)
	}
	return u, nil
}
