package apiclient

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/nines-project/nines/appliance/report"
	"github.com/nines-project/nines/remediator"
	"github.com/nines-project/nines/remediator/backup"
)

// Jobs is GET /api/v1/jobs: the job log, newest first; cluster and limit
// filter when set.
func (c *Client) Jobs(ctx context.Context, cluster string, limit int) ([]*remediator.Job, error) {
	q := url.Values{}
	if cluster != "" {
		q.Set("cluster", cluster)
	}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	var jobs []*remediator.Job
	return jobs, c.Get(ctx, "/api/v1/jobs", q, &jobs)
}

// Job is GET /api/v1/jobs/{id}.
func (c *Client) Job(ctx context.Context, id string) (*remediator.Job, error) {
	var j remediator.Job
	if err := c.Get(ctx, "/api/v1/jobs/"+url.PathEscape(id), nil, &j); err != nil {
		return nil, err
	}
	return &j, nil
}

// StartJob is POST /api/v1/jobs: a runbook started by hand. A cluster
// with a job running answers 409, an *Error with Status 409.
func (c *Client) StartJob(ctx context.Context, req remediator.ManualRequest) (*remediator.Job, error) {
	var j remediator.Job
	if err := c.Post(ctx, "/api/v1/jobs", req, &j); err != nil {
		return nil, err
	}
	return &j, nil
}

// WaitJob polls the job every interval until it has ended or ctx is done.
func (c *Client) WaitJob(ctx context.Context, id string, interval time.Duration) (*remediator.Job, error) {
	for {
		j, err := c.Job(ctx, id)
		if err != nil {
			return nil, err
		}
		if j.State.Done() {
			return j, nil
		}
		select {
		case <-ctx.Done():
			return j, fmt.Errorf("wait for job %s: %w", id, ctx.Err())
		case <-time.After(interval):
		}
	}
}

// Sample is one series of an instant query's answer.
type Sample struct {
	Labels map[string]string
	Value  float64
	At     time.Time
}

// Query is an instant query (GET /api/v1/query) at the appliance's now.
// Only vector answers are decoded; a scalar or a matrix is an error.
func (c *Client) Query(ctx context.Context, expr string) ([]Sample, error) {
	var data struct {
		ResultType string `json:"resultType"`
		Result     []struct {
			Metric map[string]string `json:"metric"`
			Value  [2]any            `json:"value"`
		} `json:"result"`
	}
	if err := c.Get(ctx, "/api/v1/query", url.Values{"query": {expr}}, &data); err != nil {
		return nil, err
	}
	if data.ResultType != "vector" {
		return nil, fmt.Errorf("query %q: a %s, not an instant vector", expr, data.ResultType)
	}
	out := make([]Sample, 0, len(data.Result))
	for _, r := range data.Result {
		ts, ok := r.Value[0].(float64)
		vs, ok2 := r.Value[1].(string)
		if !ok || !ok2 {
			return nil, fmt.Errorf("query %q: sample %v: want [seconds, \"value\"]", expr, r.Value)
		}
		v, err := strconv.ParseFloat(vs, 64)
		if err != nil {
			return nil, fmt.Errorf("query %q: value %q: %w", expr, vs, err)
		}
		out = append(out, Sample{Labels: r.Metric, Value: v, At: time.UnixMilli(int64(ts * 1000))})
	}
	return out, nil
}

// ReportRequest asks for a cluster's uptime report. From and To take what
// the API takes (RFC 3339, a date, "month", "30d"); empty: the default.
type ReportRequest struct {
	Cluster, From, To string
	Format            string // html | pdf | csv | json; empty: json
}

func (r ReportRequest) query() url.Values {
	q := url.Values{"cluster": {r.Cluster}}
	if r.Format != "" {
		q.Set("format", r.Format)
	}
	if r.From != "" {
		q.Set("from", r.From)
	}
	if r.To != "" {
		q.Set("to", r.To)
	}
	return q
}

// ReportDocument is GET /api/v1/reports/uptime in r.Format, the document
// as it came (for json, the API's envelope around the report), with the
// report timeout and body limit.
func (c *Client) ReportDocument(ctx context.Context, r ReportRequest) (*Response, error) {
	return c.do(ctx, http.MethodGet, withQuery("/api/v1/reports/uptime", r.query()), nil, c.opt.ReportTimeout, c.opt.MaxReport)
}

// UptimeReport is the report decoded from its JSON form.
func (c *Client) UptimeReport(ctx context.Context, r ReportRequest) (*report.Report, error) {
	r.Format = "json"
	resp, err := c.ReportDocument(ctx, r)
	if err != nil {
		return nil, err
	}
	var rep report.Report
	if err := decodeData(resp.Body, &rep); err != nil {
		return nil, fmt.Errorf("uptime report: %w", err)
	}
	return &rep, nil
}

// Backup is one backup as GET /api/v1/backups lists it.
type Backup struct {
	Cluster string `json:"cluster"`
	backup.Entry
}

// Backups is GET /api/v1/backups' answer.
type Backups struct {
	Backups   []Backup                `json:"backups"`
	Schedules []backup.ScheduleStatus `json:"schedules"`
}

// Backups is GET /api/v1/backups: what the agents hold, newest first, and
// the schedules; cluster filters when set.
func (c *Client) Backups(ctx context.Context, cluster string) (*Backups, error) {
	q := url.Values{}
	if cluster != "" {
		q.Set("cluster", cluster)
	}
	var b Backups
	if err := c.Get(ctx, "/api/v1/backups", q, &b); err != nil {
		return nil, err
	}
	return &b, nil
}

// StartDrill is POST /api/v1/clusters/{name}/drills: a failure drill. A
// refusal is an *Error: 403 not a drill target, 409 not healthy,
// remediation not auto or a scenario of another kind of cluster, 400 an
// unknown scenario.
func (c *Client) StartDrill(ctx context.Context, cluster, scenario string) (*report.Drill, error) {
	var d report.Drill
	if err := c.Post(ctx, "/api/v1/clusters/"+url.PathEscape(cluster)+"/drills", map[string]string{"scenario": scenario}, &d); err != nil {
		return nil, err
	}
	return &d, nil
}

// Drill is GET /api/v1/clusters/{name}/drills/{id}.
func (c *Client) Drill(ctx context.Context, cluster, id string) (*report.Drill, error) {
	var d report.Drill
	if err := c.Get(ctx, "/api/v1/clusters/"+url.PathEscape(cluster)+"/drills/"+url.PathEscape(id), nil, &d); err != nil {
		return nil, err
	}
	return &d, nil
}

// WaitDrill polls the drill every interval until it has ended or ctx is
// done.
func (c *Client) WaitDrill(ctx context.Context, cluster, id string, interval time.Duration) (*report.Drill, error) {
	for {
		d, err := c.Drill(ctx, cluster, id)
		if err != nil {
			return nil, err
		}
		if d.State != "running" {
			return d, nil
		}
		select {
		case <-ctx.Done():
			return d, ctx.Err()
		case <-time.After(interval):
		}
	}
}
