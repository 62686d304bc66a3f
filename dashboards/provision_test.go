package dashboards

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// fakeGrafana answers the part of Grafana's HTTP API that provisioning
// uses, as Grafana documents it (developers/http_api: folder, dashboard,
// data_source). No real Grafana can be installed on the build machine
// (no network beyond the Go proxy and Debian, and Grafana is in neither),
// so this is the closest stand-in: it keeps state, checks the bearer
// token and answers errors with Grafana's {"message": ...} body.
type fakeGrafana struct {
	t     *testing.T
	token string

	mu          sync.Mutex
	datasources map[string]map[string]any // by uid
	folders     map[string]string         // uid → title
	dashboards  map[string]savedDashboard // by uid
	requests    []string                  // "METHOD path"
	// refuse, when set, answers every dashboard save with this status.
	refuse int
}

type savedDashboard struct {
	model     map[string]any
	folderUID string
	version   int
}

func newFakeGrafana(t *testing.T, token string) (*fakeGrafana, *httptest.Server) {
	g := &fakeGrafana{t: t, token: token, datasources: map[string]map[string]any{}, folders: map[string]string{}, dashboards: map[string]savedDashboard{}}
	srv := httptest.NewServer(http.HandlerFunc(g.serve))
	t.Cleanup(srv.Close)
	return g, srv
}

func (g *fakeGrafana) serve(w http.ResponseWriter, r *http.Request) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.requests = append(g.requests, r.Method+" "+r.URL.Path)
	reply := func(status int, v any) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(v)
	}
	if r.Header.Get("Authorization") != "Bearer "+g.token {
		reply(http.StatusUnauthorized, map[string]string{"message": "invalid API key"})
		return
	}
	var body map[string]any
	if r.Body != nil && (r.Method == http.MethodPost || r.Method == http.MethodPut) {
		if r.Header.Get("Content-Type") != "application/json" {
			reply(http.StatusUnsupportedMediaType, map[string]string{"message": "want application/json"})
			return
		}
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
			reply(http.StatusBadRequest, map[string]string{"message": "bad request data"})
			return
		}
	}
	const dsPrefix = "/api/datasources/uid/"
	switch {
	case r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, dsPrefix):
		ds, ok := g.datasources[strings.TrimPrefix(r.URL.Path, dsPrefix)]
		if !ok {
			reply(http.StatusNotFound, map[string]string{"message": "Data source not found"})
			return
		}
		reply(http.StatusOK, ds)
	case r.Method == http.MethodPost && r.URL.Path == "/api/datasources":
		for _, ds := range g.datasources {
			if ds["name"] == body["name"] {
				reply(http.StatusConflict, map[string]string{"message": "data source with the same name already exists"})
				return
			}
		}
		g.datasources[body["uid"].(string)] = body
		reply(http.StatusOK, map[string]any{"message": "Datasource added", "datasource": body})
	case r.Method == http.MethodPut && strings.HasPrefix(r.URL.Path, dsPrefix):
		uid := strings.TrimPrefix(r.URL.Path, dsPrefix)
		if _, ok := g.datasources[uid]; !ok {
			reply(http.StatusNotFound, map[string]string{"message": "Data source not found"})
			return
		}
		g.datasources[uid] = body
		reply(http.StatusOK, map[string]any{"message": "Datasource updated"})
	case r.Method == http.MethodGet && r.URL.Path == "/api/folders":
		out := []map[string]string{}
		for uid, title := range g.folders {
			out = append(out, map[string]string{"uid": uid, "title": title})
		}
		reply(http.StatusOK, out)
	case r.Method == http.MethodPost && r.URL.Path == "/api/folders":
		uid, _ := body["uid"].(string)
		if _, ok := g.folders[uid]; ok {
			reply(http.StatusConflict, map[string]string{"message": "a folder with the same uid already exists"})
			return
		}
		g.folders[uid] = body["title"].(string)
		reply(http.StatusOK, map[string]any{"uid": uid, "title": body["title"]})
	case r.Method == http.MethodPost && r.URL.Path == "/api/dashboards/db":
		if g.refuse != 0 {
			reply(g.refuse, map[string]string{"status": "name-exists", "message": "A dashboard with the same name in the folder already exists"})
			return
		}
		model := body["dashboard"].(map[string]any)
		uid := model["uid"].(string)
		folder, _ := body["folderUid"].(string)
		if _, ok := g.folders[folder]; !ok {
			reply(http.StatusBadRequest, map[string]string{"message": "folder not found"})
			return
		}
		old, exists := g.dashboards[uid]
		if exists && body["overwrite"] != true {
			reply(http.StatusPreconditionFailed, map[string]string{"status": "version-mismatch", "message": "The dashboard has been changed by someone else"})
			return
		}
		g.dashboards[uid] = savedDashboard{model: model, folderUID: folder, version: old.version + 1}
		reply(http.StatusOK, map[string]any{"uid": uid, "status": "success", "version": old.version + 1})
	default:
		reply(http.StatusNotFound, map[string]string{"message": "Not found"})
	}
}

func TestProvision(t *testing.T) {
	fake, srv := newFakeGrafana(t, "sa-token-123")
	g := Grafana{URL: srv.URL, Token: "sa-token-123", Folder: "nines", DatasourceURL: "http://nines:9104", DatasourceToken: "api-token-456"}
	ctx := context.Background()

	p, err := g.Provision(ctx, All(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if !p.DatasourceCreated || p.FolderUID != "nines" || len(p.Dashboards) != len(All()) {
		t.Errorf("first run: %+v", p)
	}
	ds := fake.datasources[DatasourceUID]
	if ds == nil {
		t.Fatalf("no data source with uid %s; have %v", DatasourceUID, fake.datasources)
	}
	jd, _ := ds["jsonData"].(map[string]any)
	sjd, _ := ds["secureJsonData"].(map[string]any)
	if ds["type"] != "prometheus" || ds["url"] != "http://nines:9104" || ds["access"] != "proxy" ||
		jd["httpHeaderName1"] != "Authorization" || sjd["httpHeaderValue1"] != "Bearer api-token-456" {
		t.Errorf("data source: %v", ds)
	}
	if fake.folders["nines"] != "nines" {
		t.Errorf("folders: %v", fake.folders)
	}
	for _, s := range All() {
		d, ok := fake.dashboards[s.UID]
		if !ok || d.folderUID != "nines" || d.model["title"] != s.Title || d.version != 1 {
			t.Errorf("dashboard %s: saved %v in folder %q, version %d", s.UID, ok, d.folderUID, d.version)
		}
	}

	// A second run updates in place: nothing new, every dashboard
	// overwritten (version 2), the data source updated by uid.
	fake.requests = nil
	p, err = g.Provision(ctx, All(), Options{})
	if err != nil {
		t.Fatalf("second run: %v", err)
	}
	if p.DatasourceCreated || len(fake.datasources) != 1 || len(fake.folders) != 1 || len(fake.dashboards) != len(All()) {
		t.Errorf("second run created something: %+v, %d data sources, %d folders, %d dashboards", p, len(fake.datasources), len(fake.folders), len(fake.dashboards))
	}
	for _, s := range All() {
		if v := fake.dashboards[s.UID].version; v != 2 {
			t.Errorf("dashboard %s version %d after the second run, want 2", s.UID, v)
		}
	}
	want := []string{"GET /api/datasources/uid/nines", "PUT /api/datasources/uid/nines", "GET /api/folders"}
	for i, w := range want {
		if i >= len(fake.requests) || fake.requests[i] != w {
			t.Errorf("second run request %d: %v, want %s", i, fake.requests, w)
		}
	}

	// An existing folder of that title is used, whatever its uid.
	fake2, srv2 := newFakeGrafana(t, "t")
	fake2.folders["abc123"] = "Databases"
	p, err = Grafana{URL: srv2.URL, Token: "t", Folder: "Databases"}.Provision(ctx, All()[:1], Options{})
	if err != nil || p.FolderUID != "abc123" || len(fake2.folders) != 1 {
		t.Errorf("existing folder: %+v %v %v", p, err, fake2.folders)
	}
}

func TestProvisionErrors(t *testing.T) {
	fake, srv := newFakeGrafana(t, "right")
	ctx := context.Background()

	_, err := Grafana{URL: srv.URL, Token: "wrong-secret-token", Folder: "nines", DatasourceToken: "api-secret"}.Provision(ctx, All(), Options{})
	var ae *APIError
	if !errors.As(err, &ae) || ae.Status != http.StatusUnauthorized {
		t.Fatalf("wrong token: %v", err)
	}
	for _, want := range []string{"401", "invalid API key", "token"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("401 error %q does not say %q", err, want)
		}
	}
	if strings.Contains(err.Error(), "wrong-secret-token") || strings.Contains(err.Error(), "api-secret") {
		t.Errorf("error shows a token: %v", err)
	}

	fake.refuse = http.StatusPreconditionFailed
	_, err = Grafana{URL: srv.URL, Token: "right", Folder: "nines", DatasourceToken: "api-secret"}.Provision(ctx, All(), Options{})
	if !errors.As(err, &ae) || ae.Status != http.StatusPreconditionFailed {
		t.Fatalf("412: %v", err)
	}
	first := All()[0]
	for _, want := range []string{first.UID, first.Title, "412", "same name in the folder already exists"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("412 error %q does not name %q", err, want)
		}
	}

	// Grafana down: the error says what was being done.
	srv.Close()
	_, err = Grafana{URL: srv.URL, Token: "right", Folder: "nines"}.Provision(ctx, All(), Options{})
	if err == nil || !strings.Contains(err.Error(), "look up data source nines") {
		t.Errorf("Grafana down: %v", err)
	}
}

func TestFolderUID(t *testing.T) {
	for in, want := range map[string]string{"nines": "nines", "DB Dashboards/ISP": "db-dashboards-isp", "": "nines"} {
		if got := folderUID(in); got != want {
			t.Errorf("folderUID(%q) = %q, want %q", in, got, want)
		}
	}
}
