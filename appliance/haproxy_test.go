package appliance

import (
	"context"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nines-project/nines/appliance/config"
	"github.com/nines-project/nines/appliance/store"
	"github.com/nines-project/nines/internal/metric"
)

// TestHAProxyStatsReachTheStore: a cluster's haproxy key gets its own
// scraper, and an HAProxy that is not there is nines_haproxy_up 0 in the
// store and on /metrics, with the cluster's label; the appliance goes on.
func TestHAProxyStatsReachTheStore(t *testing.T) {
	t.Setenv("NINES_TEST_TOKEN", "0123456789abcdef0123")
	t.Setenv("NINES_TEST_PASSWORD", "x")
	dir := t.TempDir()
	sock := filepath.Join(dir, "haproxy.sock") // never created
	cfg, err := config.Parse(filepath.Join(dir, "nines.yaml"), []byte(`data_dir: data
api: {tokens: [{name: t, role: admin, token_env: NINES_TEST_TOKEN}]}
clusters:
  - name: r
    kind: replication
    nodes: [{address: "127.0.0.1:1"}]
    credentials: {user: nines, password_env: NINES_TEST_PASSWORD}
    haproxy: {stats_socket: "`+sock+`", writer_backend: r-writer, reader_backend: r-reader}
  - name: g
    kind: galera
    nodes: [{address: "127.0.0.1:2"}]
    credentials: {user: nines, password_env: NINES_TEST_PASSWORD}
`))
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(store.Options{DataDir: filepath.Join(dir, "tsdb"), Retention: 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	a := &App{cfg: cfg, log: slog.New(slog.DiscardHandler), in: newIngester(st, nil)}
	a.lbs = newHAProxyScrapers(cfg, a)
	if len(a.lbs) != 1 {
		t.Fatalf("%d haproxy scrapers, want 1 (cluster r only)", len(a.lbs))
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); a.runHAProxy(ctx, a.lbs[0]) }()
	deadline := time.Now().Add(10 * time.Second)
	var got []store.Sample
	for time.Now().Before(deadline) {
		if got, err = st.Query(ctx, `nines_haproxy_up{cluster="r"}`, time.Now()); err == nil && len(got) == 1 {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	cancel()
	<-done
	if len(got) != 1 || got[0].Value != 0 || got[0].Labels["instance"] != sock {
		t.Fatalf("nines_haproxy_up in the store: %v (%v), want one sample 0 with instance %s", got, err, sock)
	}
	ms := a.haproxyMetrics()
	if len(ms) != 1 || ms[0].Name != "nines_haproxy_up" || ms[0].Value != 0 || !hasLabel(ms[0].Labels, "cluster") ||
		!strings.Contains(labelsOf(ms[0]), "cluster=r") {
		t.Errorf("/metrics' haproxy series: %+v", ms)
	}
}

func labelsOf(m metric.Metric) string {
	var b strings.Builder
	for _, l := range m.Labels {
		b.WriteString(l.Name + "=" + l.Value + " ")
	}
	return b.String()
}
