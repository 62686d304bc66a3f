//go:build cluster

package appliance

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nines-project/nines/appliance/config"
	"github.com/nines-project/nines/internal/testbin"
	"github.com/nines-project/nines/sandbox/ndbsim"
)

const ndbTestToken = "ndb-appliance-test-token-0123"

// TestNDBClusterInTheAppliance runs the whole appliance (store, rules,
// pollers, scrapers, probe, API) on a kind ndb cluster: the simulated
// ndb_mgmd and a real MariaDB carrying the simulator's ndbinfo as the SQL
// node. The healthy cluster fires nothing; a data node stopped in the
// model makes NdbDataNodeDown fire within 2 s, through the event stream,
// and the clusters API shows its node group degraded. The probe writes
// through the SQL node and the SQL node is scraped as a MySQL server.
func TestNDBClusterInTheAppliance(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	db, err := testbin.StartMariaDB(ctx, "appliance-ndb-sql")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Stop()
	c, err := ndbsim.NewCluster(ndbsim.Config{DataNodes: 4, Replicas: 2})
	if err != nil {
		t.Fatal(err)
	}
	mgm, err := ndbsim.Serve(c, "127.0.0.1:0", ndbsim.ServerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer mgm.Close()
	if err := ndbsim.InstallNdbinfo(ctx, db.DB); err != nil {
		t.Fatal(err)
	}
	syncCtx, stopSync := context.WithCancel(ctx)
	var syncWG sync.WaitGroup
	syncWG.Add(1)
	go func() {
		defer syncWG.Done()
		ndbsim.NewSyncer(db.DB, c).Run(syncCtx, 200*time.Millisecond, func(err error) { t.Logf("ndbinfo sync: %v", err) })
	}()
	defer func() { stopSync(); syncWG.Wait() }()
	for _, q := range []string{
		"CREATE USER nines@localhost IDENTIFIED BY 'ndb-appliance-test'",
		"GRANT SELECT, PROCESS ON *.* TO nines@localhost",
		"GRANT ALL ON nines.* TO nines@localhost", // the probe's schema
	} {
		if _, err := db.DB.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	sqlAddr := forwardSocket(t, db.Server.Socket)

	dir := t.TempDir()
	t.Setenv("NINES_NDB_TEST_TOKEN", ndbTestToken)
	t.Setenv("NINES_NDB_TEST_PASSWORD", "ndb-appliance-test")
	cfg, err := config.Parse(filepath.Join(dir, "nines.yaml"), []byte(fmt.Sprintf(`data_dir: data
api: {tokens: [{name: t, role: admin, token_env: NINES_NDB_TEST_TOKEN}]}
clusters:
  - name: tel
    kind: ndb
    nodes: [{address: %q}]
    credentials: {user: nines, password_env: NINES_NDB_TEST_PASSWORD}
    probe: {engine: InnoDB}  # the stand-in SQL node, a MariaDB, has no NDB engine
    ndb:
      management: [{address: %q}]
`, sqlAddr, mgm.Addr())))
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	done := make(chan error, 1)
	logw := &lockedWriter{w: os.Stderr}
	go func() {
		done <- Run(runCtx, cfg, Options{Listen: "127.0.0.1:0", Logger: slog.New(slog.NewTextHandler(logw, &slog.HandlerOptions{Level: slog.LevelWarn})),
			Ready: func(a string) { ready <- a }})
	}()
	defer func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("appliance: %v", err)
		}
	}()
	var base string
	select {
	case a := <-ready:
		base = "http://" + a
	case err := <-done:
		t.Fatalf("appliance did not start: %v", err)
	case <-time.After(time.Minute):
		t.Fatal("appliance did not start within a minute")
	}

	// Ready once the SQL node was scraped and the cluster polled.
	var rz struct {
		Ready       bool `json:"ready"`
		NDBClusters int  `json:"ndb_clusters"`
		PolledNDB   int  `json:"polled_ndb_clusters"`
	}
	waitFor(t, 10*time.Second, "/readyz", func() bool { return tryJSON(base+"/readyz", &rz) })
	if !rz.Ready || rz.NDBClusters != 1 || rz.PolledNDB != 1 {
		t.Errorf("/readyz: %+v", rz)
	}

	// Healthy: the poller's, scraper's and probe's series are in the
	// store, and no alert fires for the cluster.
	waitFor(t, 20*time.Second, "the first rounds and probes", func() bool {
		return query(t, base, `nines_ndb_node_up{cluster="tel",node_id="2"}`) == "1" &&
			query(t, base, fmt.Sprintf(`mysql_up{cluster="tel",instance=%q}`, sqlAddr)) == "1" &&
			query(t, base, `max(mysql_ndbinfo_nodes_status{cluster="tel"})`) == "3" &&
			query(t, base, `sum(nines_probe_success{cluster="tel"})`) == "1"
	})
	if f := firing(t, base); len(f) != 0 {
		t.Errorf("alerts firing on the healthy cluster: %v", f)
	}
	// The uptime report counts the probe's seconds through the SQL node.
	waitFor(t, 10*time.Second, "an uptime report with good seconds", func() bool {
		var rep struct {
			Data struct {
				Availability float64 `json:"availability"`
				HasData      bool    `json:"has_data"`
			} `json:"data"`
		}
		return tryJSON(base+"/api/v1/reports/uptime?cluster=tel&from="+time.Now().Add(-time.Hour).UTC().Format(time.RFC3339), &rep) &&
			rep.Data.HasData && rep.Data.Availability == 1
	})

	// Data node 2 fails.
	t0 := time.Now()
	if _, err := c.Stop([]int{2}, ndbsim.StopOptions{}); err != nil {
		t.Fatal(err)
	}
	var took time.Duration
	waitFor(t, 10*time.Second, "NdbDataNodeDown fires", func() bool {
		for _, a := range firing(t, base) {
			if a == "NdbDataNodeDown node 2" {
				took = time.Since(t0)
				return true
			}
		}
		return false
	})
	t.Logf("data node 2 stopped in the model -> NdbDataNodeDown firing in the API: %s", took)
	if took > 2*time.Second {
		t.Errorf("NdbDataNodeDown fired %s after the failure, want within 2 s", took)
	}

	// The clusters API: node group 0 degraded, node 2 down.
	var resp struct {
		Data clusterView `json:"data"`
	}
	getJSON(t, base+"/api/v1/clusters/tel", &resp)
	topo := resp.Data.NDB
	if topo == nil || len(topo.Groups) != 2 {
		t.Fatalf("ndb topology: %+v", topo)
	}
	g0 := topo.Groups[0]
	if g0.Health != "degraded" || g0.Up != 1 || g0.DataNodes[1].NodeID != 2 || g0.DataNodes[1].Up || g0.DataNodes[1].MgmStatus != "NO_CONTACT" {
		t.Errorf("node group 0: %+v", g0)
	}
	if topo.Groups[1].Health != "ok" || topo.Mgm != mgm.Addr() || topo.NdbinfoFrom != sqlAddr || topo.EventStream != mgm.Addr() ||
		len(topo.Management) != 1 || len(topo.SQLNodes) != 1 || topo.Arbitrator != 50 {
		t.Errorf("topology: %+v", topo)
	}
	if len(resp.Data.Nodes) != 1 || !resp.Data.Nodes[0].Up || resp.Data.Nodes[0].Galera != nil || resp.Data.Nodes[0].Repl != nil {
		t.Errorf("SQL node view: %+v (want up, nothing Galera- or replication-specific)", resp.Data.Nodes)
	}
}

// lockedWriter serializes log lines written from many goroutines.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func waitFor(t *testing.T, limit time.Duration, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, limit)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// tryJSON is getJSON that reports failure instead of failing the test.
func tryJSON(url string, v any) bool {
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	req.Header.Set("Authorization", "Bearer "+ndbTestToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	return resp.StatusCode == http.StatusOK && json.NewDecoder(resp.Body).Decode(v) == nil
}

func getJSON(t *testing.T, url string, v any) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	req.Header.Set("Authorization", "Bearer "+ndbTestToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %s", url, resp.StatusCode, b)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("GET %s: %v in %s", url, err, b)
	}
}

// query returns the single value of an instant query, "" when none.
func query(t *testing.T, base, q string) string {
	t.Helper()
	var r struct {
		Data struct {
			Result []struct {
				Value [2]any `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	getJSON(t, base+"/api/v1/query?query="+urlEscape(q), &r)
	if len(r.Data.Result) != 1 {
		return ""
	}
	s, _ := r.Data.Result[0].Value[1].(string)
	return s
}

// firing lists the firing alerts of cluster tel as "name node N".
func firing(t *testing.T, base string) []string {
	t.Helper()
	var r struct {
		Data struct {
			Alerts []struct {
				Labels map[string]string `json:"labels"`
				State  string            `json:"state"`
			} `json:"alerts"`
		} `json:"data"`
	}
	getJSON(t, base+"/api/v1/alerts", &r)
	var out []string
	for _, a := range r.Data.Alerts {
		if a.State == "firing" && a.Labels["cluster"] == "tel" {
			out = append(out, strings.TrimSpace(a.Labels["alertname"]+" node "+a.Labels["node_id"]))
		}
	}
	return out
}

func urlEscape(s string) string {
	r := strings.NewReplacer("%", "%25", " ", "%20", "{", "%7B", "}", "%7D", `"`, "%22", "=", "%3D", "(", "%28", ")", "%29", ",", "%2C", ":", "%3A", "+", "%2B", "&", "%26", "#", "%23")
	return r.Replace(s)
}

// forwardSocket gives the test's mariadbd (unix socket only) a TCP
// address, as an SQL node has; it closes with the test.
func forwardSocket(t *testing.T, sock string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0") // kept open: the port stays ours
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial("unix", sock)
			if err != nil {
				c.Close()
				continue
			}
			mu.Lock()
			conns = append(conns, c, s)
			mu.Unlock()
			for _, p := range [][2]net.Conn{{c, s}, {s, c}} {
				wg.Add(1)
				go func() { defer wg.Done(); io.Copy(p[0], p[1]); p[0].Close(); p[1].Close() }()
			}
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return ln.Addr().String()
}
