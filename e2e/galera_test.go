//go:build cluster

package e2e

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nines-project/nines/sandbox"
)

// TestClusterSizeWithin5s: a sysadmin starts nines against a healthy
// 3-node cluster and sees every node's cluster size within 5 s.
func TestClusterSizeWithin5s(t *testing.T) {
	sb := sharedGalera(t)
	a := startAppliance(t, sb.ConfigPath(), sb.TokenPath())

	took := waitFor(t, a.started, 5*time.Second, "3 series of wsrep_cluster_size 3", func() bool {
		got := byInstance(a.query("mysql_global_status_wsrep_cluster_size"))
		if len(got) != 3 {
			return false
		}
		for _, n := range sb.Nodes() {
			if got[n.Address()] != 3 {
				return false
			}
		}
		return true
	})
	t.Logf("measured: cluster size 3 on all 3 nodes via /api/v1/query %s after nines run started (bound 5s)", took.Round(time.Millisecond))

	// Every series about a cluster carries cluster and instance: a node's
	// series its address, a cluster-wide one the appliance's host. (Recording
	// rules' aggregates, nines_slo*, keep only what they aggregate by.)
	labelled := a.query(`{__name__=~"mysql_.*|nines_.*", __name__!~"nines_slo.*", cluster!=""}`)
	if len(labelled) < 100 {
		t.Fatalf("only %d series with a cluster label", len(labelled))
	}
	for _, s := range labelled {
		if s.Labels["cluster"] != "shared" || s.Labels["instance"] == "" {
			t.Fatalf("series without cluster/instance: %v", s.Labels)
		}
	}
	// The Galera string states are kept.
	info := a.query(`nines_galera_state_info{local_state_comment="Synced",evs_state="OPERATIONAL",cluster_status="Primary"}`)
	if len(info) != 3 || info[0].Labels["cluster_state_uuid"] == "" {
		t.Errorf("nines_galera_state_info: %v, want 3 Synced/OPERATIONAL/Primary nodes with a cluster UUID", info)
	}
	// The other read endpoints answer too.
	var labels struct{ Data []string }
	if code, err := a.get("/api/v1/label/instance/values", url.Values{"match[]": {"mysql_up"}}, &labels); err != nil || code != 200 || len(labels.Data) != 3 {
		t.Errorf("label values: %d %v %v", code, err, labels.Data)
	}
	var series struct{ Data []map[string]string }
	if code, err := a.get("/api/v1/series", url.Values{"match[]": {"mysql_up"}}, &series); err != nil || code != 200 || len(series.Data) != 3 {
		t.Errorf("series: %d %v %v", code, err, series.Data)
	}
	var clusters struct {
		Data []struct {
			Name  string
			Nodes []struct {
				Instance string
				Up       bool
				Galera   struct {
					LocalStateComment string `json:"local_state_comment"`
					ClusterStatus     string `json:"cluster_status"`
				}
			}
		}
	}
	if code, err := a.get("/api/v1/clusters", nil, &clusters); err != nil || code != 200 || len(clusters.Data) != 1 || len(clusters.Data[0].Nodes) != 3 {
		t.Fatalf("clusters: %d %v %+v", code, err, clusters)
	}
	for _, n := range clusters.Data[0].Nodes {
		if !n.Up || n.Galera.LocalStateComment != "Synced" || n.Galera.ClusterStatus != "Primary" {
			t.Errorf("clusters API node %+v, want up, Synced, Primary", n)
		}
	}
}

// TestAuth: the API refuses callers without the token; health checks do not
// need one; /metrics serves the exporters' series to a token holder.
func TestAuth(t *testing.T) {
	sb := sharedGalera(t)
	a := startAppliance(t, sb.ConfigPath(), sb.TokenPath())
	waitFor(t, a.started, 10*time.Second, "ready", func() bool {
		resp, err := http.Get(a.base + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
	for path, want := range map[string]int{"/healthz": 200, "/readyz": 200, "/api/v1/query?query=up": 401, "/metrics": 401, "/api/v1/clusters": 401, "/api/v1/labels": 401,
		"/api/v1/rules": 401, "/api/v1/alerts": 401, "/alertmanager/api/v2/status": 401, "/alertmanager/api/v2/silences": 401} {
		for _, auth := range []string{"", "Bearer wrong-token-wrong-token", "Basic " + a.token} {
			req, _ := http.NewRequest(http.MethodGet, a.base+path, nil)
			if auth != "" {
				req.Header.Set("Authorization", auth)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != want {
				t.Errorf("GET %s with %q: %d, want %d", path, strings.SplitN(auth, " ", 2)[0], resp.StatusCode, want)
			}
		}
	}
	checkWebhookTokenRole(t, sb, a)
	req, _ := http.NewRequest(http.MethodGet, a.base+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+a.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	body := string(b)
	for _, want := range []string{`mysql_up{cluster="shared",instance="` + sb.Nodes()[0].Address() + `"} 1`, "mysql_global_status_wsrep_cluster_size", "nines_scrape_duration_seconds", "process_resident_memory_bytes"} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	if pw, _ := os.ReadFile(filepath.Join(sb.Dir(), "nines.pass")); len(pw) > 0 && strings.Contains(body+a.output.String(), strings.TrimSpace(string(pw))) {
		t.Error("the database password appears in /metrics or the log")
	}

	// This appliance listens elsewhere than the sandbox's nines.yaml says,
	// so the sandbox's alertmanager.yml posts to a remediator that is not
	// this one: nines must say so, in the log and the cluster's status.
	var rs struct {
		Data []struct {
			Cluster      string
			LastDecision string `json:"last_decision"`
		}
	}
	if code, err := a.get("/api/v1/remediation", nil, &rs); err != nil || code != http.StatusOK {
		t.Fatalf("GET /api/v1/remediation: %d %v", code, err)
	}
	if len(rs.Data) != 1 || !strings.Contains(rs.Data[0].LastDecision, "would hear no alert") || !strings.Contains(rs.Data[0].LastDecision, strings.TrimPrefix(a.base, "http://")) {
		t.Errorf("remediation status with the webhook routed elsewhere: %+v, want it to say the remediator hears no alert at %s", rs.Data, a.base)
	}
	if !strings.Contains(a.output.String(), "the remediator hears no alert") {
		t.Errorf("the log does not say the remediator hears no alert:\n%s", a.output.String())
	}
}

// checkWebhookTokenRole: the sandbox's webhook token (role webhook, what
// its Alertmanager sends) reaches the webhook and nothing else.
func checkWebhookTokenRole(t *testing.T, sb *sandbox.Sandbox, a *appliance) {
	t.Helper()
	hook, err := os.ReadFile(sb.WebhookTokenPath())
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		method, path, body string
		want               int
	}{
		{http.MethodPost, "/api/v1/alerts/webhook", `{"version":"4","status":"firing","alerts":[]}`, 200},
		{http.MethodGet, "/api/v1/clusters", "", 403},
		{http.MethodGet, "/metrics", "", 403},
		{http.MethodPost, "/api/v1/jobs", `{"kind":"backup","cluster":"x"}`, 403},
	} {
		req, _ := http.NewRequest(tt.method, a.base+tt.path, strings.NewReader(tt.body))
		req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(hook)))
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tt.want {
			t.Errorf("%s %s with the webhook token: %d, want %d", tt.method, tt.path, resp.StatusCode, tt.want)
		}
	}
}

// TestRestartKeepsData: samples written before an appliance restart are
// still answered by query_range after it.
func TestRestartKeepsData(t *testing.T) {
	sb := sharedGalera(t)
	first := startAppliance(t, sb.ConfigPath(), sb.TokenPath())
	waitFor(t, first.started, 10*time.Second, "data before restart", func() bool {
		return len(first.query("mysql_up == 1")) == 3
	})
	time.Sleep(3 * time.Second) // a few seconds of history
	from, to := first.started.Add(-time.Second), time.Now()
	first.stop()

	second := startAppliance(t, sb.ConfigPath(), sb.TokenPath())
	var r promResponse
	waitFor(t, second.started, 10*time.Second, "query_range over the time before the restart", func() bool {
		code, err := second.get("/api/v1/query_range", url.Values{
			"query": {"mysql_up"},
			"start": {strconv.FormatFloat(float64(from.UnixMilli())/1000, 'f', 3, 64)},
			"end":   {strconv.FormatFloat(float64(to.UnixMilli())/1000, 'f', 3, 64)},
			"step":  {"1s"},
		}, &r)
		return err == nil && code == 200 && len(r.Data.Result) == 3
	})
	for _, res := range r.Data.Result {
		if len(res.Values) < 3 {
			t.Errorf("%s: %d points from before the restart, want at least 3", res.Metric["instance"], len(res.Values))
		}
		for _, v := range res.Values {
			if v[1] != "1" {
				t.Errorf("%s: mysql_up %v at %v, want 1", res.Metric["instance"], v[1], v[0])
			}
		}
	}
	t.Logf("query_range after restart returned %d points per node from before it", len(r.Data.Result[0].Values))
}

// killDetected kills victim with -9 and asserts that nines sees it within
// 3 s: its mysql_up goes to 0 and both survivors report cluster size 2,
// and the dead node's last cluster size is not reported as current. It
// runs inside TestRejoinAfterKill (a drill of its own cost a sandbox):
// the rejoin cannot begin before nines has seen the death, so the window
// where the survivors report 2 is always there to be seen. Returns when
// the kill was sent.
func killDetected(t *testing.T, a *appliance, sb *sandbox.Sandbox, victim sandbox.Node) time.Time {
	t.Helper()
	var survivors []string
	for _, n := range sb.Nodes() {
		if n.Name != victim.Name {
			survivors = append(survivors, n.Address())
		}
	}
	// Let the scrapers settle into their steady cadence before the drill.
	time.Sleep(2 * time.Second)

	pid, err := sb.Pid(victim.Name)
	if err != nil || pid <= 0 {
		t.Fatalf("pid of %s: %d %v", victim.Name, pid, err)
	}
	// Watch a survivor directly, to tell Galera's own eviction time from
	// nines' detection time in the log.
	direct, err := sb.DB(sb.Nodes()[0].Name)
	if err != nil {
		t.Fatal(err)
	}
	defer direct.Close()
	galeraAt := make(chan time.Duration, 1)
	killed := time.Now()
	go func() {
		for time.Since(killed) < 10*time.Second {
			var name string
			var size int
			if direct.QueryRow("SHOW GLOBAL STATUS LIKE 'wsrep_cluster_size'").Scan(&name, &size) == nil && size == 2 {
				galeraAt <- time.Since(killed)
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
		galeraAt <- 0
	}()
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}

	var downAt, sizeAt time.Duration
	var sizesThen map[string]float64
	waitFor(t, killed, 3*time.Second, "mysql_up 0 for the killed node and cluster size 2 on both survivors", func() bool {
		if downAt == 0 {
			if up := byInstance(a.query("mysql_up")); len(up) == 3 && up[victim.Address()] == 0 {
				downAt = time.Since(killed)
			}
		}
		if sizeAt == 0 {
			size := byInstance(a.query("mysql_global_status_wsrep_cluster_size"))
			if size[survivors[0]] == 2 && size[survivors[1]] == 2 {
				sizeAt, sizesThen = time.Since(killed), size
			}
		}
		if time.Since(killed) > 2900*time.Millisecond {
			t.Logf("at %s: mysql_up=0 seen after %s, size 2 seen after %s", time.Since(killed).Round(time.Millisecond), downAt, sizeAt)
		}
		return downAt > 0 && sizeAt > 0
	})
	t.Logf("measured: killed node mysql_up=0 after %s; survivors cluster size 2 after %s (bound 3s, goal 1.5s); Galera itself reported size 2 on %s after %s",
		downAt.Round(time.Millisecond), sizeAt.Round(time.Millisecond), sb.Nodes()[0].Name, (<-galeraAt).Round(time.Millisecond))
	// The dead node's old cluster size is not reported as current.
	if len(sizesThen) != 2 {
		t.Errorf("cluster size series when the survivors reported 2: %v, want only the 2 survivors", sizesThen)
	}

	// For the log: the raw samples of one survivor around the drill, to see
	// the burst cadence and when the new size was scraped.
	var raw promResponse
	if code, err := a.get("/api/v1/query", url.Values{"query": {fmt.Sprintf(`mysql_global_status_wsrep_cluster_size{instance=%q}[6s]`, survivors[0])}}, &raw); err == nil && code == 200 && len(raw.Data.Result) == 1 {
		var line []string
		for _, v := range raw.Data.Result[0].Values {
			ts, _ := strconv.ParseFloat(fmt.Sprint(v[0]), 64)
			line = append(line, fmt.Sprintf("%+.2fs=%v", ts-float64(killed.UnixMilli())/1000, v[1]))
		}
		t.Logf("%s cluster size samples relative to the kill: %s", survivors[0], strings.Join(line, " "))
	}
	return killed
}
