package store

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nines-project/nines/internal/testbin"
)

// remotePorts is this package's block of listener ports.
var remotePorts = testbin.NewPorts(30900, 30950)

// startVictoriaMetrics runs Debian's single-node VictoriaMetrics, the
// kind of external store nines reads, on a port of its own; it fails the
// test when the package is missing (scripts/install-deps.sh installs it).
func startVictoriaMetrics(t *testing.T) string {
	t.Helper()
	const bin = "/usr/bin/victoria-metrics"
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("%v: scripts/install-deps.sh installs Debian's victoria-metrics", err)
	}
	port, err := remotePorts.Next()
	if err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	cmd := exec.Command(bin, "-storageDataPath", t.TempDir(), "-httpListenAddr", addr, "-search.latencyOffset=1s", "-search.disableCache", "-loggerLevel=ERROR")
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	base := "http://" + addr
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get(base + "/health")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return base
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("victoria-metrics on %s not healthy in 20 s: %v\n%s", addr, err, out.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestRemoteQueriesExternalVictoriaMetrics: Remote answers the rules'
// instant queries from a real external VictoriaMetrics as Store.Query
// does from the embedded one, and says which store and query failed.
func TestRemoteQueriesExternalVictoriaMetrics(t *testing.T) {
	base := startVictoriaMetrics(t)
	now := time.Now().Add(-5 * time.Second).Truncate(time.Second)
	lines := fmt.Sprintf(`{"metric":{"__name__":"mysql_up","cluster":"a","instance":"db1:3306"},"values":[1],"timestamps":[%d]}
{"metric":{"__name__":"mysql_up","cluster":"b","instance":"db2:3306"},"values":[0],"timestamps":[%d]}
`, now.UnixMilli(), now.UnixMilli())
	resp, err := http.Post(base+"/api/v1/import", "application/json", strings.NewReader(lines))
	if err != nil || resp.StatusCode/100 != 2 {
		t.Fatalf("import: %v %v", err, resp)
	}
	resp.Body.Close()
	// VictoriaMetrics makes imported rows searchable within a second or so.
	r, err := NewRemote(RemoteOptions{URL: base + "/", Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	var got []Sample
	imported := time.Now()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		// At the current instant, as the rules ask: VictoriaMetrics
		// caches answers for a fixed instant, an empty one included.
		if got, err = r.Query(t.Context(), "mysql_up", time.Now()); err == nil && len(got) == 2 {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if len(got) != 2 {
		resp, _ := http.Get(base + "/api/v1/export?match[]=mysql_up")
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("mysql_up from the external store: %v, %v; want 2 series (export: %s)", got, err, b)
	}
	t.Logf("imported series visible to queries after %s", time.Since(imported).Round(time.Millisecond))
	byCluster := map[string]float64{}
	for _, s := range got {
		if s.Labels["__name__"] != "mysql_up" {
			t.Errorf("labels %v lack __name__", s.Labels)
		}
		byCluster[s.Labels["cluster"]] = s.Value
	}
	if byCluster["a"] != 1 || byCluster["b"] != 0 {
		t.Errorf("values %v, want a=1 b=0", byCluster)
	}
	if s, err := r.Query(t.Context(), "count(mysql_up == 1)", time.Now()); err != nil || len(s) != 1 || s[0].Value != 1 {
		t.Errorf("count(mysql_up == 1) = %v, %v; want 1", s, err)
	}
	if s, err := r.Query(t.Context(), "scalar(count(mysql_up))", time.Now()); err != nil || len(s) != 1 || s[0].Value != 2 {
		t.Errorf("scalar = %v, %v; want 2", s, err)
	}
	_, err = r.Query(t.Context(), "sum(mysql_up", now)
	if err == nil || !strings.Contains(err.Error(), `external store 127.0.0.1`) || !strings.Contains(err.Error(), `query "sum(mysql_up"`) {
		t.Errorf("bad expression: %v, want an error naming the store and the query", err)
	}

	// Down: the error names it; the caller falls back (appliance).
	dead, _ := NewRemote(RemoteOptions{URL: "http://127.0.0.1:9", Timeout: time.Second})
	if _, err := dead.Query(context.Background(), "up", now); err == nil || !strings.Contains(err.Error(), "external store 127.0.0.1:9") {
		t.Errorf("store down: %v", err)
	}
}

// TestRemoteHandlerSendsItsOwnCredentials: the read endpoints are proxied
// with the external store's token; the nines token or session cookie the
// caller authenticated with never leaves the appliance.
func TestRemoteHandlerSendsItsOwnCredentials(t *testing.T) {
	var mu sync.Mutex
	var seen []http.Header
	var paths []string
	ext := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		mu.Lock()
		seen = append(seen, req.Header.Clone())
		paths = append(paths, req.URL.Path+"?"+req.URL.RawQuery)
		mu.Unlock()
		_, _ = io.WriteString(w, `{"status":"success","data":{"resultType":"vector","result":[]}}`)
	}))
	defer ext.Close()
	r, err := NewRemote(RemoteOptions{URL: ext.URL + "/select/0/prometheus", Token: "store-token-0123456789"})
	if err != nil {
		t.Fatal(err)
	}
	front := httptest.NewServer(r.Handler())
	defer front.Close()
	req, _ := http.NewRequest(http.MethodGet, front.URL+"/api/v1/query?"+url.Values{"query": {"up"}}.Encode(), nil)
	req.Header.Set("Authorization", "Bearer nines-api-token-abcdef")
	req.AddCookie(&http.Cookie{Name: "nines_session", Value: "s3ss10n"})
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("proxied query: %s", resp.Status)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(seen) != 1 {
		t.Fatalf("%d requests reached the store", len(seen))
	}
	if got := seen[0].Get("Authorization"); got != "Bearer store-token-0123456789" {
		t.Errorf("Authorization at the store = %q, want the store's token", got)
	}
	if c := seen[0].Get("Cookie"); c != "" {
		t.Errorf("the caller's cookie reached the store: %q", c)
	}
	if paths[0] != "/select/0/prometheus/api/v1/query?query=up" {
		t.Errorf("path at the store = %q", paths[0])
	}
}
