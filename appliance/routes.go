package appliance

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/nines-project/nines/appliance/config"
)

// route is one authenticated API route and the least role that may call
// it. Roles are hierarchical: admin ⊇ operate ⊇ read, and admin ⊇
// webhook (config.Allows). noConsole routes refuse console sessions
// whatever the user's role: a browser never needs them.
type route struct {
	Method    string
	Path      string
	Role      string
	noConsole bool
	// alertmanager routes exist only with the embedded Alertmanager.
	alertmanager bool
	// bodyLimit replaces the router's maxBody (skipped for the route).
	bodyLimit int64
	handle    func(*App, echo.Context) error
}

// apiRoutes is the one table of the API's routes and roles: routes()
// registers exactly these, the guard authorizes by them, and README's
// table must match (TestREADMERouteTable).
var apiRoutes = []route{
	{Method: http.MethodGet, Path: "/api/v1/query", Role: config.RoleRead, handle: (*App).serveStore},
	{Method: http.MethodPost, Path: "/api/v1/query", Role: config.RoleRead, handle: (*App).serveStore},
	{Method: http.MethodGet, Path: "/api/v1/query_range", Role: config.RoleRead, handle: (*App).serveStore},
	{Method: http.MethodPost, Path: "/api/v1/query_range", Role: config.RoleRead, handle: (*App).serveStore},
	{Method: http.MethodGet, Path: "/api/v1/series", Role: config.RoleRead, handle: (*App).serveStore},
	{Method: http.MethodPost, Path: "/api/v1/series", Role: config.RoleRead, handle: (*App).serveStore},
	{Method: http.MethodGet, Path: "/api/v1/labels", Role: config.RoleRead, handle: (*App).serveStore},
	{Method: http.MethodPost, Path: "/api/v1/labels", Role: config.RoleRead, handle: (*App).serveStore},
	{Method: http.MethodGet, Path: "/api/v1/label/:name/values", Role: config.RoleRead, handle: (*App).serveStore},
	{Method: http.MethodPost, Path: "/api/v1/label/:name/values", Role: config.RoleRead, handle: (*App).serveStore},
	{Method: http.MethodGet, Path: "/api/v1/status/buildinfo", Role: config.RoleRead, handle: (*App).serveStore},
	{Method: http.MethodPost, Path: "/api/v1/status/buildinfo", Role: config.RoleRead, handle: (*App).serveStore},
	{Method: http.MethodGet, Path: "/api/v1/metadata", Role: config.RoleRead, handle: (*App).serveStore},
	{Method: http.MethodPost, Path: "/api/v1/metadata", Role: config.RoleRead, handle: (*App).serveStore},
	{Method: http.MethodGet, Path: "/metrics", Role: config.RoleRead, handle: (*App).serveMetrics},
	{Method: http.MethodGet, Path: "/api/v1/clusters", Role: config.RoleRead, handle: (*App).clusters},
	{Method: http.MethodGet, Path: "/api/v1/clusters/:name", Role: config.RoleRead, handle: (*App).cluster},
	{Method: http.MethodGet, Path: "/api/v1/clusters/:name/queries", Role: config.RoleRead, handle: (*App).queries},
	{Method: http.MethodGet, Path: "/api/v1/clusters/:name/blocking", Role: config.RoleRead, handle: (*App).blocking},
	{Method: http.MethodGet, Path: "/api/v1/clusters/:name/advice", Role: config.RoleRead, handle: (*App).advice},
	{Method: http.MethodGet, Path: "/api/v1/clusters/:name/drills", Role: config.RoleRead, handle: (*App).listDrills},
	{Method: http.MethodGet, Path: "/api/v1/clusters/:name/drills/:id", Role: config.RoleRead, handle: (*App).getDrill},
	// A drill kills servers for real: admin only.
	{Method: http.MethodPost, Path: "/api/v1/clusters/:name/drills", Role: config.RoleAdmin, handle: (*App).startDrill},
	{Method: http.MethodGet, Path: "/api/v1/rules", Role: config.RoleRead, handle: (*App).apiRules},
	{Method: http.MethodGet, Path: "/api/v1/alerts", Role: config.RoleRead, handle: (*App).apiAlerts},
	{Method: http.MethodGet, Path: "/api/v1/jobs", Role: config.RoleRead, handle: (*App).listJobs},
	{Method: http.MethodGet, Path: "/api/v1/jobs/:id", Role: config.RoleRead, handle: (*App).getJob},
	{Method: http.MethodGet, Path: "/api/v1/backups", Role: config.RoleRead, handle: (*App).listBackups},
	{Method: http.MethodGet, Path: "/api/v1/dashboards", Role: config.RoleRead, handle: (*App).listDashboards},
	{Method: http.MethodGet, Path: "/api/v1/dashboards/:uid", Role: config.RoleRead, handle: (*App).getDashboard},
	{Method: http.MethodGet, Path: "/api/v1/remediation", Role: config.RoleRead, handle: (*App).remediationStatus},
	{Method: http.MethodGet, Path: "/api/v1/remote_write", Role: config.RoleRead, handle: (*App).remoteWriteStatus},
	{Method: http.MethodGet, Path: "/api/v1/ha", Role: config.RoleRead, handle: (*App).haStatus},
	{Method: http.MethodGet, Path: "/api/v1/reports/uptime", Role: config.RoleRead, handle: (*App).uptimeReport},
	// force_node in the body needs admin besides (startJob checks).
	{Method: http.MethodPost, Path: "/api/v1/jobs", Role: config.RoleOperate, handle: (*App).startJob},
	{Method: http.MethodPost, Path: "/api/v1/remediation/:cluster/resume", Role: config.RoleAdmin, handle: (*App).resumeRemediation},
	{Method: http.MethodPost, Path: webhookPath, Role: config.RoleWebhook, noConsole: true, bodyLimit: maxWebhookBody, handle: (*App).webhook},
	// The embedded Alertmanager's API v2 for amtool, Grafana and the
	// console: reading, and silences. Posting alerts into it is for
	// admin tokens only; its other write endpoints are not routed.
	{Method: http.MethodGet, Path: "/alertmanager/*", Role: config.RoleRead, alertmanager: true, handle: (*App).serveAlertmanager},
	{Method: http.MethodPost, Path: "/alertmanager/api/v2/silences", Role: config.RoleOperate, alertmanager: true, handle: (*App).serveAlertmanager},
	{Method: http.MethodDelete, Path: "/alertmanager/api/v2/silence/:id", Role: config.RoleOperate, alertmanager: true, handle: (*App).serveAlertmanager},
	{Method: http.MethodPost, Path: "/alertmanager/api/v2/alerts", Role: config.RoleAdmin, noConsole: true, alertmanager: true, handle: (*App).serveAlertmanager},
}

// routeKey names a route in the policy's index.
func routeKey(method, path string) string { return method + " " + path }

// policyOf is the guard's decision over table: a route not in it is
// refused to everybody (it is not registered either, so echo answers 404
// or 405 before the guard would be asked).
func policyOf(table []route) func(method, path, role string, session bool) (string, bool) {
	index := make(map[string]route, len(table))
	for _, r := range table {
		index[routeKey(r.Method, r.Path)] = r
	}
	return func(method, path, role string, session bool) (string, bool) {
		r, ok := index[routeKey(method, path)]
		if !ok {
			return "a route that exists", false
		}
		if session && r.noConsole {
			return "a token (console sessions may not call it)", false
		}
		return r.Role, config.Allows(role, r.Role)
	}
}

// registerAPI mounts table on g; handler turns a route into its handler
// (tests substitute stubs). Alertmanager routes are skipped without an
// embedded Alertmanager.
func registerAPI(g *echo.Group, table []route, withAM bool, handler func(route) echo.HandlerFunc) {
	for _, r := range table {
		if r.alertmanager && !withAM {
			continue
		}
		var mw []echo.MiddlewareFunc
		if r.bodyLimit != 0 {
			mw = append(mw, limitBody(r.bodyLimit, nil))
		}
		g.Add(r.Method, r.Path, handler(r), mw...)
	}
}

// RouteRole is one API route and the least role that may call it, as an
// outside test or a document reads the table.
type RouteRole struct {
	Method, Path, Role string
	// Alertmanager routes exist only with the embedded Alertmanager.
	Alertmanager bool
}

// Routes returns the API's route table (a copy).
func Routes() []RouteRole {
	out := make([]RouteRole, len(apiRoutes))
	for i, r := range apiRoutes {
		out[i] = RouteRole{Method: r.Method, Path: r.Path, Role: r.Role, Alertmanager: r.alertmanager}
	}
	return out
}
