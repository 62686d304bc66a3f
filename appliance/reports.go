package appliance

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/nines-project/nines/appliance/config"
	"github.com/nines-project/nines/appliance/report"
	"github.com/nines-project/nines/remediator"
)

// uptimeReport serves GET /api/v1/reports/uptime?cluster=&from=&to=&format=:
// the cluster's uptime report over [from, to) (default: the last 30
// days) as html, pdf, csv or json (default). A bad parameter is a 400
// naming it. JSON comes in the API's envelope ({"status", "data"}); the
// other formats are the document itself.
func (a *App) uptimeReport(c echo.Context) error {
	bad := func(format string, args ...any) error {
		return c.JSON(http.StatusBadRequest, apiError{Status: "error", ErrorType: "bad_data", Error: fmt.Sprintf(format, args...)})
	}
	name := c.QueryParam("cluster")
	if name == "" {
		return bad("cluster: required (one of %s)", strings.Join(a.clusterNames(), ", "))
	}
	var cl *config.Cluster
	for i := range a.cfg.Clusters {
		if a.cfg.Clusters[i].Name == name {
			cl = &a.cfg.Clusters[i]
		}
	}
	if cl == nil {
		return bad("cluster %q: not configured (one of %s)", name, strings.Join(a.clusterNames(), ", "))
	}
	format := c.QueryParam("format")
	if format == "" {
		format = "json"
	}
	if !report.KnownFormat(format) {
		return bad("format %q: want one of %s", format, strings.Join(report.Formats, ", "))
	}
	now := time.Now()
	from, to, err := report.ParseRange(c.QueryParam("from"), c.QueryParam("to"), now)
	if err != nil {
		return bad("%v", err)
	}

	jobs, err := a.jobs.List()
	if err != nil && len(jobs) == 0 {
		return c.JSON(http.StatusInternalServerError, apiError{Status: "error", ErrorType: "internal", Error: "uptime report: read the job log: " + err.Error()})
	}
	r, err := report.Build(c.Request().Context(), a.query, report.Request{
		Cluster: name, From: from, To: to, TargetPercent: cl.SLO.Target, Jobs: reportJobs(jobs, name), Drills: a.drills.reportDrills(name), Now: now,
	})
	if errors.Is(err, report.ErrNotCounted) {
		return c.JSON(http.StatusConflict, apiError{Status: "error", ErrorType: "not_counted", Error: err.Error()})
	}
	if err != nil {
		return c.JSON(http.StatusInternalServerError, apiError{Status: "error", ErrorType: "internal", Error: err.Error()})
	}
	if format == "json" {
		return c.JSON(http.StatusOK, map[string]any{"status": "success", "data": r})
	}
	var b bytes.Buffer
	if err := report.Render(&b, r, format); err != nil {
		return c.JSON(http.StatusInternalServerError, apiError{Status: "error", ErrorType: "internal", Error: err.Error()})
	}
	file := fmt.Sprintf("uptime-%s-%s-%s.%s", name, from.Format("20060102T150405Z"), to.Format("20060102T150405Z"), format)
	c.Response().Header().Set("Content-Disposition", `inline; filename="`+file+`"`)
	return c.Blob(http.StatusOK, report.ContentType(format), b.Bytes())
}

func (a *App) clusterNames() []string {
	names := make([]string, len(a.cfg.Clusters))
	for i, c := range a.cfg.Clusters {
		names[i] = c.Name
	}
	return names
}

// reportJobs are cluster's jobs as a report lists them.
func reportJobs(jobs []*remediator.Job, cluster string) []report.Job {
	var out []report.Job
	for _, j := range jobs {
		if j.Cluster != cluster {
			continue
		}
		start := j.StartedAt
		if start.IsZero() {
			start = j.CreatedAt
		}
		out = append(out, report.Job{
			ID: j.ID, Runbook: j.Runbook, Target: j.Target, Trigger: j.Trigger.Source, Alert: j.Trigger.Alert,
			DryRun: j.DryRun, State: string(j.State), Reason: j.Reason, Start: start, End: j.EndedAt,
		})
	}
	return out
}
