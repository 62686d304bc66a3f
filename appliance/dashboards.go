package appliance

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/nines-project/nines/appliance/config"
	"github.com/nines-project/nines/dashboards"
)

// DashboardOptions are the dashboards' deployment choices from cfg: the
// cluster variable selects the first configured cluster.
func DashboardOptions(cfg *config.Config) dashboards.Options {
	var o dashboards.Options
	if len(cfg.Clusters) > 0 {
		o.Cluster = cfg.Clusters[0].Name
	}
	return o
}

// GrafanaTarget is the Grafana cfg names, with the API token its data
// source is to send. cfg must have been validated (config.Load does).
func GrafanaTarget(cfg *config.Config) (dashboards.Grafana, error) {
	g := cfg.Grafana
	if g == nil {
		return dashboards.Grafana{}, errors.New("the config has no grafana section")
	}
	t := dashboards.Grafana{URL: g.URL, Token: g.Token.Reveal(), Folder: g.Folder, DatasourceURL: g.DatasourceURL}
	for _, tok := range cfg.API.Tokens {
		if tok.Name == g.DatasourceToken {
			t.DatasourceToken = tok.Value.Reveal()
		}
	}
	if t.DatasourceToken == "" {
		return dashboards.Grafana{}, fmt.Errorf("grafana.datasource_token: no api.tokens entry named %q", g.DatasourceToken)
	}
	return t, nil
}

// dashboardSummary is one entry of GET /api/v1/dashboards.
type dashboardSummary struct {
	UID   string `json:"uid"`
	Title string `json:"title"`
}

// listDashboards is GET /api/v1/dashboards: the uid and title of every
// generated dashboard.
func (a *App) listDashboards(c echo.Context) error {
	out := []dashboardSummary{}
	for _, s := range dashboards.All() {
		out = append(out, dashboardSummary{UID: s.UID, Title: s.Title})
	}
	return c.JSON(http.StatusOK, map[string]any{"status": "success", "data": out})
}

// getDashboard is GET /api/v1/dashboards/:uid: the Grafana dashboard
// model itself (not wrapped), as Grafana's import takes it.
func (a *App) getDashboard(c echo.Context) error {
	uid := c.Param("uid")
	s, ok := dashboards.Get(uid)
	if !ok {
		return c.JSON(http.StatusNotFound, apiError{Status: "error", ErrorType: "not_found", Error: fmt.Sprintf("no dashboard with uid %q", uid)})
	}
	b, err := s.JSON(DashboardOptions(a.cfg))
	if err != nil {
		return c.JSON(http.StatusInternalServerError, apiError{Status: "error", ErrorType: "internal", Error: err.Error()})
	}
	return c.JSONBlob(http.StatusOK, b)
}

// Provisioning retries: Grafana may start after nines, or be down for a
// while; a refused request (wrong token, a dashboard Grafana will not
// overwrite) needs a human, who reads the log.
const (
	provisionFirstRetry = 2 * time.Second
	provisionMaxRetry   = 5 * time.Minute
)

// provisionGrafana provisions the dashboards into the configured Grafana
// once, retrying with exponential backoff until it succeeds or ctx ends.
// It runs in the background: the appliance never waits for Grafana.
func (a *App) provisionGrafana(ctx context.Context) {
	if a.cfg.Grafana == nil {
		return
	}
	g, err := GrafanaTarget(a.cfg)
	if err != nil {
		a.log.Error("grafana provisioning disabled", "err", err)
		return
	}
	wait := provisionFirstRetry
	for attempt := 1; ; attempt++ {
		start := time.Now()
		p, err := g.Provision(ctx, dashboards.All(), DashboardOptions(a.cfg))
		if err == nil {
			a.log.Info("provisioned grafana", "url", g.URL, "folder", p.FolderUID, "dashboards", len(p.Dashboards),
				"datasource", dashboards.DatasourceUID, "datasource_created", p.DatasourceCreated, "took", time.Since(start).Round(time.Millisecond))
			return
		}
		if ctx.Err() != nil {
			return
		}
		a.log.Warn("grafana provisioning failed; retrying", "url", g.URL, "attempt", attempt, "retry_in", wait, "err", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		wait = min(2*wait, provisionMaxRetry)
	}
}
