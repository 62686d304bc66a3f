//go:build cluster

package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nines-project/nines/dashboards"
	"github.com/nines-project/nines/sandbox"
)

// The variables as Grafana fills them for a dashboard showing the last
// couple of minutes: $__rate_interval is at least four scrape intervals
// (1 s here) and covers the step; $__range is the whole range.
const (
	dashRateInterval = "20s"
	dashInterval     = "2s"
	dashRange        = "2m"
	dashStep         = "2s"
)

// panelCheck is one dashboard query run against the appliance.
type panelCheck struct {
	q    dashboards.Query
	expr string // with the variables substituted
}

func (p panelCheck) String() string {
	return fmt.Sprintf("%s / %q: %s", p.q.Dashboard, p.q.Panel, p.expr)
}

// checksFor returns the queries of the dashboards about clusters of kind
// (and those about any cluster, when kind is Galera), failure-only ones
// or the others, with the sandbox's cluster and instances substituted.
func checksFor(sb *sandbox.Sandbox, kind dashboards.Kind, failureOnly bool, rng string) []panelCheck {
	v := dashboards.Variables{Cluster: sb.ClusterName(), RateInterval: dashRateInterval, Interval: dashInterval, Range: rng}
	for _, n := range sb.Nodes() {
		v.Instance = append(v.Instance, n.Address())
	}
	var out []panelCheck
	for _, q := range dashboards.Queries() {
		mine := q.Kind == kind || (q.Kind == dashboards.KindAny && kind == dashboards.KindGalera)
		if !mine || q.FailureOnly != failureOnly {
			continue
		}
		// The HAProxy row is empty for a cluster without HAProxy, the
		// drills dashboard before a drill (TestDrillGalera checks it).
		if q.HAProxy && !sb.HAProxy() || q.AfterDrill {
			continue
		}
		out = append(out, panelCheck{q: q, expr: dashboards.Substitute(q.Expr, v)})
	}
	return out
}

// rangeData runs expr through /api/v1/query_range over [from, to] and
// returns how many series and points came back; an error names the status.
func (a *appliance) rangeData(expr string, from, to time.Time, step string) (series, points int, err error) {
	var r promResponse
	code, err := a.get("/api/v1/query_range", url.Values{
		"query": {expr}, "start": {strconv.FormatInt(from.Unix(), 10)}, "end": {strconv.FormatInt(to.Unix(), 10)}, "step": {step},
	}, &r)
	if err != nil {
		return 0, 0, err
	}
	if code != http.StatusOK {
		return 0, 0, fmt.Errorf("query_range answered %d", code)
	}
	for _, s := range r.Data.Result {
		if len(s.Values) > 0 {
			series++
			points += len(s.Values)
		}
	}
	return series, points, nil
}

// requireData polls every check until each has data in the range
// (from until now) and, when instant is set, also from an instant query;
// after limit it fails naming every panel still without data. It returns
// the number of queries that had data.
func requireData(t *testing.T, a *appliance, checks []panelCheck, from time.Time, instant bool, limit time.Duration) int {
	t.Helper()
	pending := map[int]string{}
	for i := range checks {
		pending[i] = "not run yet"
	}
	deadline := time.Now().Add(limit)
	for {
		for i := range pending {
			c := checks[i]
			series, _, err := a.rangeData(c.expr, from, time.Now(), dashStep)
			switch {
			case err != nil:
				pending[i] = err.Error()
				continue
			case series == 0:
				pending[i] = "no series from query_range"
				continue
			}
			if instant && !c.q.FailureOnly && len(a.query(c.expr)) == 0 {
				pending[i] = "query_range has data, the instant query none"
				continue
			}
			delete(pending, i)
		}
		if len(pending) == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(time.Second)
	}
	var missing []string
	for i, why := range pending {
		missing = append(missing, fmt.Sprintf("  %s\n      %s", checks[i], why))
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Errorf("%d of %d panel queries have no data after %s:\n%s", len(missing), len(checks), limit, strings.Join(missing, "\n"))
	}
	return len(checks) - len(missing)
}

// TestDashboards is issue 6's acceptance for every panel that shows data
// on a healthy cluster: the appliance monitors the shared 3-node Galera
// sandbox, takes one verified backup (so the backup panels and the job
// annotation have something to show), and every such panel query of every
// dashboard not about replication must return data, range and instant.
// It also checks the export command and the dashboards API.
func TestDashboards(t *testing.T) {
	sb := sharedGalera(t)
	a := startBackupAppliance(t, ninesBin, sb, `      - {method: dump, schedule: "0 3 1 1 *", keep: 2, verify: true, dir: DIR}
`)
	j := a.startJob(t, map[string]any{"kind": "backup", "cluster": sb.ClusterName(), "method": "dump"})
	if j = a.waitJob(t, j.ID, 2*time.Minute); j.State != "succeeded" {
		t.Fatalf("backup job %s ended %s: %s", j.ID, j.State, j.Reason)
	}

	checks := checksFor(sb, dashboards.KindGalera, false, dashRange)
	start := time.Now()
	ok := requireData(t, a.appliance, checks, time.Now().Add(-2*time.Minute), true, 60*time.Second)
	panels := map[string]bool{}
	for _, c := range checks {
		panels[c.q.Dashboard+"/"+c.q.Panel] = true
	}
	t.Logf("measured: %d of %d queries (%d panels of the dashboards not about replication) answered with data, range and instant, within %s",
		ok, len(checks), len(panels), time.Since(start).Round(time.Second))

	t.Run("api", func(t *testing.T) { testDashboardsAPI(t, a) })
}

// testDashboardsAPI: the list, each dashboard by uid (the same bytes
// `nines dashboards export` writes for the same config), 404 naming an
// unknown uid, 401 without a token.
func testDashboardsAPI(t *testing.T, a *backupAppliance) {
	var list struct {
		Data []struct{ UID, Title string }
	}
	if code, err := a.get("/api/v1/dashboards", nil, &list); err != nil || code != http.StatusOK {
		t.Fatalf("GET /api/v1/dashboards: %d %v", code, err)
	}
	if len(list.Data) != len(dashboards.All()) {
		t.Errorf("GET /api/v1/dashboards lists %d, want %d: %+v", len(list.Data), len(dashboards.All()), list.Data)
	}

	dir := t.TempDir()
	out, err := exec.Command(ninesBin, "dashboards", "export", "--dir", dir, "--config", a.cfg).CombinedOutput()
	if err != nil {
		t.Fatalf("nines dashboards export: %v\n%s", err, out)
	}
	panels := 0
	for _, d := range list.Data {
		code, body := rawGet(t, a.appliance, "/api/v1/dashboards/"+d.UID, true)
		if code != http.StatusOK {
			t.Errorf("GET /api/v1/dashboards/%s: %d %s", d.UID, code, body)
			continue
		}
		var model struct {
			UID    string
			Title  string
			Panels []json.RawMessage
		}
		if err := json.Unmarshal(body, &model); err != nil || model.UID != d.UID || model.Title != d.Title {
			t.Errorf("GET /api/v1/dashboards/%s: uid %q title %q, %v", d.UID, model.UID, model.Title, err)
		}
		panels += len(model.Panels)
		file, err := os.ReadFile(filepath.Join(dir, d.UID+".json"))
		if err != nil {
			t.Errorf("export wrote no %s.json: %v (output: %s)", d.UID, err, out)
			continue
		}
		if !bytes.Equal(bytes.TrimSpace(file), bytes.TrimSpace(body)) {
			t.Errorf("%s.json from export differs from GET /api/v1/dashboards/%s", d.UID, d.UID)
		}
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*.json"))
	if len(files) != len(list.Data) {
		t.Errorf("export wrote %d files, want %d", len(files), len(list.Data))
	}
	t.Logf("measured: %d dashboards with %d panels served by the API and written by export", len(list.Data), panels)

	code, body := rawGet(t, a.appliance, "/api/v1/dashboards/nines-nope", true)
	var envelope struct {
		Status    string `json:"status"`
		ErrorType string `json:"errorType"`
		Error     string `json:"error"`
	}
	if err := json.Unmarshal(body, &envelope); err != nil || code != http.StatusNotFound || envelope.Status != "error" ||
		envelope.ErrorType != "not_found" || !strings.Contains(envelope.Error, `"nines-nope"`) {
		t.Errorf("unknown uid: %d %s (%v), want 404 with an error envelope naming it", code, body, err)
	}
	if code, body := rawGet(t, a.appliance, "/api/v1/dashboards/nines-fleet", false); code != http.StatusUnauthorized {
		t.Errorf("without a token: %d %s, want 401", code, body)
	}
}

func rawGet(t *testing.T, a *appliance, path string, withToken bool) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, a.base+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if withToken {
		req.Header.Set("Authorization", "Bearer "+a.token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	_, _ = b.ReadFrom(resp.Body)
	return resp.StatusCode, b.Bytes()
}

// TestDashboardsAfterDrill checks the panels that show only failures and
// the job annotation: kill -9 of one node of a fresh sandbox, which the
// remediator (mode auto) rejoins; afterwards each such panel of the
// dashboards not about replication must have data over the drill.
func TestDashboardsAfterDrill(t *testing.T) {
	sb := freshGalera(t, "dashdrill")
	h := startHealer(t, sb, remediationOpts{mode: "auto"})
	waitProbeWrites(t, h.appliance, sb.ClusterName(), len(sb.Nodes()), 3) // acknowledged probe writes before the drill
	victim := sb.Nodes()[1]
	killed := kill(t, sb, victim.Name)
	h.waitSeenBroken(t, killed)
	took := h.waitHealthy(t, killed, 30*time.Second)
	t.Logf("measured: %s Synced again %s after kill -9", victim.Name, took.Round(time.Millisecond))
	waitFor(t, time.Now(), 20*time.Second, "the rejoin job to end", func() bool {
		jobs := h.jobs(t)
		return len(jobs) > 0 && jobs[0].State == "succeeded"
	})

	from := killed.Add(-5 * time.Second)
	rng := strconv.Itoa(int(time.Since(from).Seconds())+30) + "s"
	checks := checksFor(sb, dashboards.KindGalera, true, rng)
	ok := requireData(t, h.appliance, checks, from, false, 30*time.Second)
	t.Logf("measured: %d of %d failure-only queries (panels and job annotations) have data over the drill", ok, len(checks))
}

// TestDashboardsReplication checks the replication dashboard against a
// GTID replication sandbox: every panel with data while replication
// runs, then, after STOP SLAVE on a replica and a backup job, the panel
// of stopped threads and the job annotation.
func TestDashboardsReplication(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	sb, err := sandbox.StartReplication(ctx, sandbox.Options{Dir: sandboxDir(t, false), Nodes: 3, BasePort: basePort(), ClusterName: "dashrepl", AgentBinary: ninesBin})
	if err != nil {
		t.Fatalf("start replication sandbox: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		if err := sb.Stop(ctx); err != nil {
			t.Errorf("stop sandbox: %v", err)
		}
	})
	a := startReplicationAppliance(t, sb)
	waitFor(t, a.started, 30*time.Second, "both replicas' threads running as nines sees them", func() bool {
		return len(a.query(fmt.Sprintf(`mysql_slave_status_slave_sql_running{cluster=%q} == 1`, sb.ClusterName()))) == 2
	})

	checks := checksFor(sb, dashboards.KindReplication, false, dashRange)
	ok := requireData(t, a.appliance, checks, time.Now().Add(-2*time.Minute), true, 60*time.Second)
	t.Logf("measured: %d of %d replication dashboard queries answered with data, range and instant", ok, len(checks))

	// A job on the cluster for the job annotation: a dump backup. It runs
	// before the drill, as a dump of a replica restarts its SQL thread.
	jobStart := time.Now()
	j := a.startJob(t, map[string]any{"kind": "backup", "cluster": sb.ClusterName(), "method": "dump"})
	if j = a.waitJob(t, j.ID, 2*time.Minute); j.State != "succeeded" {
		t.Fatalf("backup job %s ended %s: %s", j.ID, j.State, j.Reason)
	}

	var replica sandbox.Node
	for _, n := range sb.Nodes() {
		if n.Role == sandbox.RoleReplica {
			replica = n
		}
	}
	db, err := sb.DB(replica.Name)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec("STOP SLAVE"); err != nil {
		t.Fatalf("STOP SLAVE on %s: %v", replica.Name, err)
	}
	failing := checksFor(sb, dashboards.KindReplication, true, dashRange)
	ok = requireData(t, a.appliance, failing, jobStart, false, 20*time.Second)
	t.Logf("measured: %d of %d failure-only replication queries (stopped threads, job annotation) have data after STOP SLAVE on %s and a backup job", ok, len(failing), replica.Name)
	if _, err := db.Exec("START SLAVE"); err != nil {
		t.Errorf("START SLAVE on %s: %v", replica.Name, err)
	}
}

// grafanaStandIn records what the appliance provisions. No Grafana can be
// installed on the build machine, so this stands in for one, answering
// the requests provisioning makes as Grafana's HTTP API documents them;
// the first request is refused with 503, as a Grafana still starting
// would, so the appliance has to retry.
type grafanaStandIn struct {
	mu         sync.Mutex
	token      string
	requests   int
	datasource map[string]any
	folders    map[string]string
	dashboards map[string]map[string]any
	authFailed int
}

func (g *grafanaStandIn) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.requests++
	reply := func(code int, v any) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		_ = json.NewEncoder(w).Encode(v)
	}
	if g.requests == 1 {
		reply(http.StatusServiceUnavailable, map[string]string{"message": "Grafana is starting"})
		return
	}
	if r.Header.Get("Authorization") != "Bearer "+g.token {
		g.authFailed++
		reply(http.StatusUnauthorized, map[string]string{"message": "invalid API key"})
		return
	}
	var body map[string]any
	if r.Method == http.MethodPost || r.Method == http.MethodPut {
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
			reply(http.StatusBadRequest, map[string]string{"message": "bad request data"})
			return
		}
	}
	switch {
	case r.Method == http.MethodGet && r.URL.Path == "/api/datasources/uid/"+dashboards.DatasourceUID:
		if g.datasource == nil {
			reply(http.StatusNotFound, map[string]string{"message": "Data source not found"})
			return
		}
		reply(http.StatusOK, g.datasource)
	case (r.Method == http.MethodPost && r.URL.Path == "/api/datasources") ||
		(r.Method == http.MethodPut && r.URL.Path == "/api/datasources/uid/"+dashboards.DatasourceUID):
		g.datasource = body
		reply(http.StatusOK, map[string]string{"message": "Datasource added"})
	case r.Method == http.MethodGet && r.URL.Path == "/api/folders":
		var out []map[string]string
		for uid, title := range g.folders {
			out = append(out, map[string]string{"uid": uid, "title": title})
		}
		reply(http.StatusOK, out)
	case r.Method == http.MethodPost && r.URL.Path == "/api/folders":
		uid, _ := body["uid"].(string)
		g.folders[uid], _ = body["title"].(string)
		reply(http.StatusOK, map[string]string{"uid": uid})
	case r.Method == http.MethodPost && r.URL.Path == "/api/dashboards/db":
		d, _ := body["dashboard"].(map[string]any)
		uid, _ := d["uid"].(string)
		if _, ok := g.folders[fmt.Sprint(body["folderUid"])]; !ok || body["overwrite"] != true || uid == "" {
			reply(http.StatusBadRequest, map[string]string{"message": "want a known folderUid, overwrite and a uid"})
			return
		}
		g.dashboards[uid] = d
		reply(http.StatusOK, map[string]any{"uid": uid, "status": "success", "version": 1})
	default:
		reply(http.StatusNotFound, map[string]string{"message": "Not found"})
	}
}

// TestDashboardsProvisioning: an appliance whose config names a Grafana
// provisions it in the background (retrying after Grafana's first 503):
// the data source, the folder and every dashboard. The data source then
// works as Grafana would use it: its URL and header, sent to nines, answer
// a panel's query. Neither token appears in nines' log.
func TestDashboardsProvisioning(t *testing.T) {
	sb := sharedGalera(t)
	const grafanaToken = "glsa_e2e_service_account_token_0123"
	stand := &grafanaStandIn{token: grafanaToken, folders: map[string]string{}, dashboards: map[string]map[string]any{}}
	srv := httptest.NewServer(stand)
	defer srv.Close()

	dir := t.TempDir()
	tokFile := filepath.Join(dir, "grafana-token")
	if err := os.WriteFile(tokFile, []byte(grafanaToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	b := clusterConfig(sb, addr, "grafana", false)
	fmt.Fprintf(b, "    remediation: {mode: \"off\"}\n")
	fmt.Fprintf(b, "grafana:\n  url: %s\n  token_file: %s\n  folder: Databases\n  datasource_url: http://%s\n  datasource_token: grafana\n", srv.URL, tokFile, addr)
	// Grafana's data source gets a read token: here the sandbox's.
	body := strings.Replace(b.String(), "{name: grafana, role: admin,", "{name: grafana, role: read,", 1)
	cfg := filepath.Join(dir, "nines.yaml")
	if err := os.WriteFile(cfg, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	a := startApplianceOn(t, ninesBin, addr, cfg, sb.TokenPath())
	took := waitFor(t, a.started, 30*time.Second, "every dashboard provisioned", func() bool {
		stand.mu.Lock()
		defer stand.mu.Unlock()
		return len(stand.dashboards) == len(dashboards.All())
	})
	t.Logf("measured: %d dashboards provisioned %s after the appliance started (one 503 retried)", len(dashboards.All()), took.Round(time.Millisecond))

	stand.mu.Lock()
	ds, folders, authFailed := stand.datasource, stand.folders, stand.authFailed
	stand.mu.Unlock()
	if len(folders) != 1 || folders["databases"] != "Databases" || authFailed != 0 {
		t.Errorf("folders %v, %d requests without the service account token", folders, authFailed)
	}
	jd, _ := ds["jsonData"].(map[string]any)
	sjd, _ := ds["secureJsonData"].(map[string]any)
	if ds["uid"] != dashboards.DatasourceUID || ds["type"] != "prometheus" || ds["url"] != "http://"+addr || jd["httpHeaderName1"] != "Authorization" {
		t.Fatalf("data source: %v", ds)
	}
	// Grafana's proxy sends the query with the configured header.
	req, _ := http.NewRequest(http.MethodGet, fmt.Sprint(ds["url"])+"/api/v1/query?query="+url.QueryEscape(`mysql_up{cluster="`+sb.ClusterName()+`"}`), nil)
	req.Header.Set(fmt.Sprint(jd["httpHeaderName1"]), fmt.Sprint(sjd["httpHeaderValue1"]))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var r promResponse
	_ = json.NewDecoder(resp.Body).Decode(&r)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || len(r.Data.Result) != 3 {
		t.Errorf("query through the provisioned data source: %d, %d series, want 200 and 3", resp.StatusCode, len(r.Data.Result))
	}

	log := a.output.String()
	if !strings.Contains(log, "grafana provisioning failed; retrying") || !strings.Contains(log, "provisioned grafana") {
		t.Errorf("log does not show the retry and the success:\n%s", log)
	}
	apiToken, _ := os.ReadFile(sb.TokenPath())
	for _, secret := range []string{grafanaToken, strings.TrimSpace(string(apiToken))} {
		if strings.Contains(log, secret) {
			t.Errorf("nines' log shows a token")
		}
	}
}

// startReplicationAppliance runs nines on the replication sandbox with a
// dump backup plan (never scheduled in the test's time), so a job can be
// started by hand.
func startReplicationAppliance(t *testing.T, sb *sandbox.Sandbox) *backupAppliance {
	t.Helper()
	if err := os.MkdirAll(sb.BackupDir(), 0o755); err != nil {
		t.Fatal(err)
	}
	bdir, err := os.MkdirTemp(sb.BackupDir(), "backups-")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(bdir, 0o755); err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	b := clusterConfig(sb, addr, "test", true)
	fmt.Fprintf(b, "    remediation: {mode: \"off\"}\n    backups:\n      - {method: dump, schedule: \"0 3 1 1 *\", keep: 2, dir: %s}\n", bdir)
	cfg := filepath.Join(t.TempDir(), "nines.yaml")
	if err := os.WriteFile(cfg, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return &backupAppliance{appliance: startApplianceOn(t, ninesBin, addr, cfg, sb.TokenPath()), sb: sb, cfg: cfg, dir: bdir}
}
