package dashboards

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Grafana is a Grafana to provision into, through its HTTP API
// (https://grafana.com/docs/grafana/latest/developers/http_api/): the
// folder API, POST /api/dashboards/db and the data source API by uid.
// Requests carry the service account token as a bearer token; neither it
// nor DatasourceToken ever appears in an error.
type Grafana struct {
	URL string
	// Token is a service account token with the Editor role and data
	// source write permission.
	Token string
	// Folder is the title of the folder the dashboards go into.
	Folder string
	// DatasourceURL is how Grafana reaches nines' query API, and
	// DatasourceToken the nines API token the data source sends.
	DatasourceURL   string
	DatasourceToken string
	// Client defaults to one with a 30 s timeout.
	Client *http.Client
}

// Provisioned is what a successful Provision did.
type Provisioned struct {
	FolderUID         string
	DatasourceCreated bool     // false: it existed and was updated
	Dashboards        []string // uids, in order
}

// APIError is a request Grafana refused: the operation (what nines was
// doing, naming the dashboard, folder or data source), the HTTP status
// and Grafana's own message.
type APIError struct {
	Op      string
	Status  int
	Message string
}

func (e *APIError) Error() string {
	msg := e.Message
	if msg == "" {
		msg = http.StatusText(e.Status)
	}
	hint := ""
	switch e.Status {
	case http.StatusUnauthorized:
		hint = " (check grafana.token_file: the service account token is missing, wrong or expired)"
	case http.StatusForbidden:
		hint = " (the service account needs the Editor role and data source write permission)"
	case http.StatusPreconditionFailed:
		hint = " (Grafana holds another dashboard with this title or uid that nines may not overwrite)"
	}
	return fmt.Sprintf("grafana: %s: %d %s%s", e.Op, e.Status, msg, hint)
}

// Provision creates or updates, in this order, the Prometheus data source
// (uid DatasourceUID) pointing at nines, the folder, and every dashboard
// of specs (overwriting the previous version). Running it again changes
// nothing but the versions. It stops at the first error.
func (g Grafana) Provision(ctx context.Context, specs []Spec, o Options) (Provisioned, error) {
	var p Provisioned
	if _, err := url.Parse(g.URL); err != nil || g.URL == "" {
		return p, fmt.Errorf("grafana: bad URL %q", g.URL)
	}
	created, err := g.ensureDatasource(ctx)
	if err != nil {
		return p, err
	}
	p.DatasourceCreated = created
	if p.FolderUID, err = g.ensureFolder(ctx); err != nil {
		return p, err
	}
	for _, s := range specs {
		model, err := s.JSON(o)
		if err != nil {
			return p, err
		}
		body := map[string]any{
			"dashboard": json.RawMessage(model),
			"folderUid": p.FolderUID,
			"overwrite": true,
			"message":   "provisioned by nines",
		}
		op := fmt.Sprintf("save dashboard %s (%q)", s.UID, s.Title)
		if _, err := g.do(ctx, op, http.MethodPost, "/api/dashboards/db", body, nil); err != nil {
			return p, err
		}
		p.Dashboards = append(p.Dashboards, s.UID)
	}
	return p, nil
}

// DatasourceName is the name of the data source provisioning creates.
const DatasourceName = "nines"

// ensureDatasource creates the data source, or updates it when a data
// source with its uid exists, so a changed URL or token takes effect.
func (g Grafana) ensureDatasource(ctx context.Context) (created bool, err error) {
	ds := map[string]any{
		"uid":       DatasourceUID,
		"name":      DatasourceName,
		"type":      "prometheus",
		"access":    "proxy",
		"url":       g.DatasourceURL,
		"isDefault": false,
		"jsonData": map[string]any{
			"httpMethod":      "POST",
			"timeInterval":    "1s", // nines scrapes every second
			"httpHeaderName1": "Authorization",
		},
		"secureJsonData": map[string]any{
			"httpHeaderValue1": "Bearer " + g.DatasourceToken,
		},
	}
	path := "/api/datasources/uid/" + url.PathEscape(DatasourceUID)
	status, err := g.do(ctx, "look up data source "+DatasourceUID, http.MethodGet, path, nil, nil)
	switch {
	case status == http.StatusNotFound:
		_, err = g.do(ctx, "create data source "+DatasourceUID, http.MethodPost, "/api/datasources", ds, nil)
		return err == nil, err
	case err != nil:
		return false, err
	}
	_, err = g.do(ctx, "update data source "+DatasourceUID, http.MethodPut, path, ds, nil)
	return false, err
}

// ensureFolder returns the uid of the folder titled g.Folder, creating it
// when Grafana has none by that title, so an operator's existing folder
// is used rather than duplicated.
func (g Grafana) ensureFolder(ctx context.Context) (string, error) {
	var folders []struct {
		UID   string `json:"uid"`
		Title string `json:"title"`
	}
	op := fmt.Sprintf("list folders (looking for %q)", g.Folder)
	if _, err := g.do(ctx, op, http.MethodGet, "/api/folders?limit=1000", nil, &folders); err != nil {
		return "", err
	}
	for _, f := range folders {
		if f.Title == g.Folder {
			return f.UID, nil
		}
	}
	var created struct {
		UID string `json:"uid"`
	}
	body := map[string]any{"title": g.Folder, "uid": folderUID(g.Folder)}
	if _, err := g.do(ctx, fmt.Sprintf("create folder %q", g.Folder), http.MethodPost, "/api/folders", body, &created); err != nil {
		return "", err
	}
	if created.UID == "" {
		return "", fmt.Errorf("grafana: create folder %q: the answer names no uid", g.Folder)
	}
	return created.UID, nil
}

// folderUID derives a stable folder uid from its title: letters, digits,
// - and _, at most 40 characters, as Grafana allows.
func folderUID(title string) string {
	var b strings.Builder
	for _, c := range strings.ToLower(title) {
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '-', c == '_':
			b.WriteRune(c)
		default:
			b.WriteRune('-')
		}
	}
	s := b.String()
	if len(s) > 40 {
		s = s[:40]
	}
	if s == "" {
		s = "nines"
	}
	return s
}

// do sends one request and decodes a 2xx answer into out (when not nil).
// A non-2xx answer is an *APIError with Grafana's message; the status is
// returned either way, so callers can tell 404 from failure.
func (g Grafana) do(ctx context.Context, op, method, path string, body, out any) (int, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, fmt.Errorf("grafana: %s: encode: %w", op, err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimRight(g.URL, "/")+path, rd)
	if err != nil {
		return 0, fmt.Errorf("grafana: %s: %w", op, err)
	}
	req.Header.Set("Authorization", "Bearer "+g.Token)
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	client := g.Client
	if client == nil {
		client = &http.Client{Timeout: 30 * time.Second}
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, fmt.Errorf("grafana: %s: %w", op, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return resp.StatusCode, fmt.Errorf("grafana: %s: read answer: %w", op, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		var e struct {
			Message string `json:"message"`
		}
		if json.Unmarshal(raw, &e) != nil || e.Message == "" {
			e.Message = strings.TrimSpace(string(raw))
			if len(e.Message) > 200 {
				e.Message = e.Message[:200] + "…"
			}
		}
		return resp.StatusCode, &APIError{Op: op, Status: resp.StatusCode, Message: e.Message}
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			return resp.StatusCode, fmt.Errorf("grafana: %s: decode answer: %w", op, err)
		}
	}
	return resp.StatusCode, nil
}
