package appliance

import (
	"bytes"
	"context"
	"crypto/subtle"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/nines-project/nines"
	"github.com/nines-project/nines/appliance/config"
	"github.com/nines-project/nines/appliance/console"
	"github.com/nines-project/nines/exporter"
	"github.com/nines-project/nines/internal/metric"
	"github.com/nines-project/nines/rules"
)

// Request bodies: nothing the API takes comes near 1 MiB (a job request,
// a query form, a silence), so more is refused with 413 before a handler
// reads it. Alertmanager's webhook batches every alert of a group in one
// message (max_alerts: 0), so it may send more: 4 MiB, some thousands
// of alerts.
const (
	maxBody        = 1 << 20
	maxWebhookBody = 4 << 20
	webhookPath    = "/api/v1/alerts/webhook"
)

// newRouter is the echo instance every route hangs on: panics become 500s
// and bodies are bounded (the webhook's own, larger, bound is its route's).
// With tls, every answer tells browsers to use HTTPS only from then on.
func newRouter(tls bool) *echo.Echo {
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.Use(middleware.Recover())
	if tls {
		e.Use(hsts)
	}
	e.Use(limitBody(maxBody, func(c echo.Context) bool { return c.Path() == webhookPath }))
	return e
}

// limitBody reads a request's whole body, up to limit bytes, before the
// handler runs, and answers 413 for more. Reading it here, rather than
// bounding the handler's reads, gives every route the same answer whether
// the client sent a Content-Length or chunks, and whether or not the
// handler reads the body at all (one that does not would otherwise answer
// 200 to a body of any size, and a proxied handler 400 with the cause
// buried in its message). Bodies are small, so buffering them costs
// little; skip exempts routes with their own limit.
func limitBody(limit int64, skip func(echo.Context) bool) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			r := c.Request()
			if (skip != nil && skip(c)) || r.Body == nil || r.Body == http.NoBody {
				return next(c)
			}
			tooLarge := func() error {
				return c.JSON(http.StatusRequestEntityTooLarge, apiError{Status: "error", ErrorType: "too_large",
					Error: fmt.Sprintf("request body larger than %d bytes", limit)})
			}
			if r.ContentLength > limit {
				return tooLarge()
			}
			b, err := io.ReadAll(io.LimitReader(r.Body, limit+1))
			if err != nil {
				return c.JSON(http.StatusBadRequest, apiError{Status: "error", ErrorType: "bad_data", Error: "read request body: " + err.Error()})
			}
			if int64(len(b)) > limit {
				return tooLarge()
			}
			r.Body = io.NopCloser(bytes.NewReader(b))
			r.ContentLength = int64(len(b))
			return next(c)
		}
	}
}

// newServer is the HTTP server for h. A client must send its request
// within ReadTimeout and take the answer within WriteTimeout, so slow or
// stalled clients cannot hold connections (and goroutines) open; no
// response streams, and queries stop at the store's own 30 s limit, so 2
// minutes leave a large report time to render.
// hsts sets Strict-Transport-Security for a year: once a browser has
// seen the appliance over HTTPS, it never sends a session cookie over
// plain HTTP to it.
func hsts(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		c.Response().Header().Set("Strict-Transport-Security", "max-age=31536000")
		return next(c)
	}
}

// secureCookie says whether browsers reach the console over HTTPS: the
// scheme of external_url when set (a TLS-terminating proxy in front),
// else whether the listener has TLS.
func secureCookie(cfg *config.Config) bool {
	if u, err := url.Parse(cfg.ExternalURL); err == nil && cfg.ExternalURL != "" {
		return u.Scheme == "https"
	}
	return cfg.TLS != nil
}

func newServer(h http.Handler) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      2 * time.Minute,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
	}
}

func (a *App) routes() http.Handler {
	e := newRouter(a.cfg.TLS != nil)

	e.GET("/healthz", func(c echo.Context) error { return c.String(http.StatusOK, "ok\n") })
	e.GET("/readyz", a.readyz)

	// The console's pages and login; the API below admits its sessions
	// as well as bearer tokens, each by its role (apiRoutes).
	con := console.New(console.Options{Users: a.cfg.Console.Users, TTL: a.cfg.Console.SessionTTL.Duration,
		Secure: secureCookie(a.cfg), TrustedProxies: a.cfg.TrustedProxies, Logger: a.log.With("component", "console")})
	con.Register(e)
	a.storeHandler = a.query.handler(a.store.Handler())
	a.metricsHandler = a.metrics()
	if a.am != nil {
		a.amHandler = a.am.Handler()
	}
	api := e.Group("", con.Guard(a.bearer, policyOf(apiRoutes)))
	registerAPI(api, apiRoutes, a.am != nil, func(r route) echo.HandlerFunc {
		return func(c echo.Context) error { return r.handle(a, c) }
	})
	return e
}

// metrics is /metrics: the exporters', the appliance's and the embedded
// Alertmanager's metrics.
func (a *App) metrics() http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		a.exp.Collector(),
		metric.Collector(a.selfMetrics),
		metric.Collector(a.haproxyMetrics),
		metric.Collector(a.ndbMetrics),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	gatherers := prometheus.Gatherers{reg}
	if a.am != nil {
		gatherers = append(gatherers, a.am.Registry())
	}
	return promhttp.HandlerFor(gatherers, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
}

// serveStore answers the Prometheus-compatible read endpoints from the
// store, so Grafana can use nines as a Prometheus data source.
func (a *App) serveStore(c echo.Context) error {
	a.storeHandler.ServeHTTP(c.Response(), c.Request())
	return nil
}

func (a *App) serveMetrics(c echo.Context) error {
	a.metricsHandler.ServeHTTP(c.Response(), c.Request())
	return nil
}

// serveAlertmanager passes amtool's, Grafana's and the console's calls to
// the embedded Alertmanager's API v2.
func (a *App) serveAlertmanager(c echo.Context) error {
	a.amHandler.ServeHTTP(c.Response(), c.Request())
	return nil
}

// apiRules serves /api/v1/rules as Prometheus does (type=alert|record).
func (a *App) apiRules(c echo.Context) error {
	kind := c.QueryParam("type")
	if kind != "" && kind != "alert" && kind != "record" {
		return c.JSON(http.StatusBadRequest, apiError{Status: "error", ErrorType: "bad_data", Error: fmt.Sprintf("type %q: want alert or record", kind)})
	}
	return c.JSON(http.StatusOK, map[string]any{"status": "success", "data": map[string]any{"groups": a.rules.APIGroups(kind)}})
}

// apiAlerts serves /api/v1/alerts as Prometheus does: pending and firing.
func (a *App) apiAlerts(c echo.Context) error {
	alerts := a.rules.Alerts()
	out := make([]rules.APIAlert, len(alerts))
	for i, al := range alerts {
		out[i] = rules.ToAPIAlert(al)
	}
	return c.JSON(http.StatusOK, map[string]any{"status": "success", "data": map[string]any{"alerts": out}})
}

// bearer reports which configured API token, if any, tok is, and its
// role. The comparison takes the same time whichever byte differs.
func (a *App) bearer(tok string) (name, role string, ok bool) {
	return tokenOf(a.cfg.API.Tokens, tok)
}

func tokenOf(tokens []config.Token, tok string) (name, role string, ok bool) {
	for _, t := range tokens {
		if subtle.ConstantTimeCompare([]byte(tok), []byte(t.Value.Reveal())) == 1 {
			return t.Name, t.Role, true // the name says who did it, for the job log
		}
	}
	return "", "", false
}

// apiError is the Prometheus API's error shape, used for every JSON error.
type apiError struct {
	Status    string `json:"status"`
	ErrorType string `json:"errorType"`
	Error     string `json:"error"`
}

// readyz answers 200 once every node has been scraped at least once and
// every NDB cluster polled once, so a load balancer or test never sees
// an appliance that knows nothing yet.
func (a *App) readyz(c echo.Context) error {
	seen, want := len(a.exp.Latest()), a.targetCount()
	polled := 0
	for _, np := range a.ndb {
		if np.p.Latest() != nil {
			polled++
		}
	}
	body := map[string]any{"ready": seen >= want && polled == len(a.ndb), "scraped_nodes": seen, "nodes": want}
	if len(a.ndb) > 0 {
		body["polled_ndb_clusters"], body["ndb_clusters"] = polled, len(a.ndb)
	}
	if seen < want || polled < len(a.ndb) {
		return c.JSON(http.StatusServiceUnavailable, body)
	}
	return c.JSON(http.StatusOK, body)
}

func (a *App) targetCount() int {
	n := 0
	for _, c := range a.cfg.Clusters {
		n += len(c.Nodes)
	}
	return n
}

// nodeView is a node's latest state as the API shows it.
type nodeView struct {
	Instance   string              `json:"instance"`
	Up         bool                `json:"up"`
	Error      string              `json:"error,omitempty"`
	ScrapedAt  string              `json:"scraped_at"`
	DurationMs float64             `json:"scrape_duration_ms"`
	Galera     *nines.GaleraStatus `json:"galera,omitempty"`
	Replicas   []replicaView       `json:"replicas,omitempty"`
	ReadOnly   string              `json:"read_only,omitempty"`
	Version    string              `json:"version,omitempty"`
	Repl       *replicationView    `json:"replication,omitempty"`
	// From is "store" for a node another appliance of a sharded team
	// scrapes: only up and scraped_at, read from the shared store.
	From string `json:"from,omitempty"`
}

// replicationView is a replication node's GTID positions as the server
// spells them, its semi-sync switches and its heartbeat lag (absent when
// not read: the node's error says why).
type replicationView struct {
	GTIDBinlogPos         string   `json:"gtid_binlog_pos"`
	GTIDSlavePos          string   `json:"gtid_slave_pos"`
	SemiSyncMasterEnabled bool     `json:"semi_sync_master_enabled"`
	SemiSyncSlaveEnabled  bool     `json:"semi_sync_slave_enabled"`
	SemiSyncWaitPoint     string   `json:"semi_sync_wait_point"`
	HeartbeatLagSeconds   *float64 `json:"heartbeat_lag_seconds,omitempty"`
}

type replicaView struct {
	Channel string `json:"channel"`
	Source  string `json:"source"`
	// SourcePort with Source names the node replicated from as
	// configured (host:port): the console tells the primary by it.
	SourcePort    int    `json:"source_port,omitempty"`
	IORunning     bool   `json:"io_running"`
	SQLRunning    bool   `json:"sql_running"`
	SecondsBehind *int64 `json:"seconds_behind,omitempty"`
	LastError     string `json:"last_error,omitempty"`
	GTIDIOPos     string `json:"gtid_io_pos,omitempty"`
	IOState       string `json:"io_state,omitempty"` // Yes, No or Connecting
	LastIOErrno   int    `json:"last_io_errno,omitempty"`
	LastSQLErrno  int    `json:"last_sql_errno,omitempty"`
}

type clusterView struct {
	Name  string     `json:"name"`
	Kind  nines.Kind `json:"kind"`
	Nodes []nodeView `json:"nodes"`
	// DRReplicas are a Galera cluster's replicas outside it (dr_replicas).
	DRReplicas []nodeView `json:"dr_replicas,omitempty"`
	// NDB is a kind ndb cluster's topology (ndbTopology, ndb.go); nodes
	// are then its SQL nodes. Absent before the first round.
	NDB *ndbTopology `json:"ndb,omitempty"`
	// Drift lists the global variables whose values differ across the
	// nodes (Galera and replication clusters; empty when they agree).
	Drift []exporter.Drift `json:"drift"`
	// Owner is the appliance of a sharded team that watches the cluster;
	// Leader says this appliance holds its etcd election (acts on it).
	Owner  string `json:"owner,omitempty"`
	Leader bool   `json:"leader,omitempty"`
	// DrillScenarios, on a drill target only, are the scenarios a drill
	// may run and what each would kill now.
	DrillScenarios []DrillScenario `json:"drill_scenarios,omitempty"`
}

func (a *App) clusterViews(ctx context.Context) []clusterView {
	latest := map[string]*nines.Snapshot{}
	for _, s := range a.exp.Latest() {
		latest[s.Cluster+"\x00"+s.Instance] = s
	}
	var fleet map[string]storeNode // read once, when a cluster needs it
	var out []clusterView
	for _, c := range a.cfg.Clusters {
		cv := clusterView{Name: c.Name, Kind: c.Kind, Nodes: []nodeView{}}
		cv.Owner, cv.Leader = a.clusterOwner(c.Name)
		cv.DrillScenarios = drillScenarios(&c, a.exp.Latest(), a.haproxyWriter(&c))
		mine := a.owns(c.Name)
		for _, n := range c.Nodes {
			nv := newNodeView(n.Address, latest[c.Name+"\x00"+n.Address])
			if !mine {
				if fleet == nil {
					fleet = a.storeNodes(ctx)
				}
				sn, ok := fleet[c.Name+"\x00"+n.Address]
				fromStore(&nv, sn, ok)
			}
			cv.Nodes = append(cv.Nodes, nv)
		}
		for _, d := range c.DRReplicas {
			cv.DRReplicas = append(cv.DRReplicas, newNodeView(d.Address, latest[c.Name+"\x00"+d.Address]))
		}
		if c.Kind == nines.KindNDB {
			cv.NDB = a.ndbTopologyOf(c.Name)
		}
		var snaps []*nines.Snapshot
		for _, n := range c.Nodes {
			if s := latest[c.Name+"\x00"+n.Address]; s != nil {
				snaps = append(snaps, s)
			}
		}
		cv.Drift = exporter.ConfigDrift(c.Domain(), snaps)
		if cv.Drift == nil {
			cv.Drift = []exporter.Drift{}
		}
		out = append(out, cv)
	}
	return out
}

// newNodeView is a server as the API shows it: its address and, once
// scraped (s not nil), its latest snapshot.
func newNodeView(address string, s *nines.Snapshot) nodeView {
	nv := nodeView{Instance: address}
	if s != nil {
		nv.Up, nv.Error, nv.Galera = s.Up, s.Err, s.Galera
		nv.ScrapedAt = s.Time.UTC().Format("2006-01-02T15:04:05.000Z")
		nv.DurationMs = float64(s.Duration.Microseconds()) / 1000
		nv.ReadOnly, nv.Version = s.Variables["read_only"], s.Variables["version"]
		for _, r := range s.Replicas {
			last := r.LastIOError
			if last == "" {
				last = r.LastSQLError
			}
			nv.Replicas = append(nv.Replicas, replicaView{
				Channel: r.Channel, Source: r.SourceHost, SourcePort: r.SourcePort, IORunning: r.IORunning, SQLRunning: r.SQLRunning,
				SecondsBehind: r.SecondsBehind, LastError: last, GTIDIOPos: r.GTIDIOPos,
				IOState: r.IOState, LastIOErrno: r.LastIOErrno, LastSQLErrno: r.LastSQLErrno,
			})
		}
		nv.Repl = replView(s)
	}
	return nv
}

func (a *App) clusters(c echo.Context) error {
	return c.JSON(http.StatusOK, map[string]any{"status": "success", "data": a.clusterViews(c.Request().Context())})
}

func (a *App) cluster(c echo.Context) error {
	for _, cv := range a.clusterViews(c.Request().Context()) {
		if cv.Name == c.Param("name") {
			return c.JSON(http.StatusOK, map[string]any{"status": "success", "data": cv})
		}
	}
	return c.JSON(http.StatusNotFound, apiError{Status: "error", ErrorType: "not_found", Error: "no cluster named " + c.Param("name")})
}

// replView is the snapshot's replication state for the API; nil when
// neither the state nor the heartbeat was read.
func replView(s *nines.Snapshot) *replicationView {
	if s.Replication == nil && s.HeartbeatLag == nil {
		return nil
	}
	v := &replicationView{}
	if r := s.Replication; r != nil {
		v.GTIDBinlogPos, v.GTIDSlavePos = r.GTIDBinlogPos, r.GTIDSlavePos
		v.SemiSyncMasterEnabled, v.SemiSyncSlaveEnabled, v.SemiSyncWaitPoint = r.SemiSyncMasterEnabled, r.SemiSyncSlaveEnabled, r.SemiSyncWaitPoint
	}
	if s.HeartbeatLag != nil {
		lag := s.HeartbeatLag.Seconds()
		v.HeartbeatLagSeconds = &lag
	}
	return v
}
