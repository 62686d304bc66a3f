package exporter

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/nines-project/nines/haproxy"
	"github.com/nines-project/nines/internal/metric"
)

func series(ms []metric.Metric) []string {
	var out []string
	for _, m := range ms {
		var ls []string
		for _, l := range m.Labels {
			ls = append(ls, l.Name+"="+l.Value)
		}
		out = append(out, fmt.Sprintf("%s{%s} %g", m.Name, strings.Join(ls, ","), m.Value))
	}
	sort.Strings(out)
	return out
}

func has(t *testing.T, got []string, want ...string) {
	t.Helper()
	all := strings.Join(got, "\n")
	for _, w := range want {
		if !strings.Contains("\n"+all+"\n", "\n"+w+"\n") {
			t.Errorf("no series %s in\n%s", w, all)
		}
	}
}

// TestHAProxyMetricsFromStat: the metrics of Debian haproxy's recorded
// show stat (haproxy/testdata), demo-writer as the writer pool.
func TestHAProxyMetricsFromStat(t *testing.T) {
	b, err := os.ReadFile("../haproxy/testdata/show-stat-2.6.csv")
	if err != nil {
		t.Fatal(err)
	}
	servers, err := haproxy.ParseStat(string(b))
	if err != nil {
		t.Fatal(err)
	}
	tg := HAProxyTarget{Cluster: "c", Socket: "/run/h.sock", WriterBackend: "demo-writer", ReaderBackend: "demo-reader"}
	got := series(HAProxyMetrics(&HAProxySnapshot{Target: tg, Up: true, Servers: servers}))
	const c = "cluster=c,instance=/run/h.sock"
	has(t, got,
		"nines_haproxy_up{"+c+"} 1",
		"nines_haproxy_server_up{"+c+",backend=demo-writer,server=n1,pool=writer} 1",
		"nines_haproxy_server_up{"+c+",backend=demo-writer,server=n3,pool=writer} 0",
		"nines_haproxy_server_state{"+c+",backend=demo-writer,server=n3,pool=writer,state=MAINT} 1",
		"nines_haproxy_server_state{"+c+",backend=demo-writer,server=n3,pool=writer,state=UP} 0",
		"nines_haproxy_server_state{"+c+",backend=demo-reader,server=n1,pool=reader,state=DRAIN} 1",
		"nines_haproxy_server_sessions{"+c+",backend=demo-writer,server=n1,pool=writer} 2",
		"nines_haproxy_server_sessions_total{"+c+",backend=demo-writer,server=n1,pool=writer} 2",
		"nines_haproxy_server_connection_errors_total{"+c+",backend=demo-writer,server=n2,pool=writer} 0",
		"nines_haproxy_server_downtime_seconds_total{"+c+",backend=demo-writer,server=n2,pool=writer} 2",
		"nines_haproxy_backend_active_servers{"+c+",backend=demo-writer,pool=writer} 1",
		"nines_haproxy_backend_active_servers{"+c+",backend=demo-reader,pool=reader} 0",
	)
	if n := len(got); n != 1+5*10+2 {
		t.Errorf("%d series, want %d (10 per server)", n, 1+5*10+2)
	}
}

// TestHAProxyScraperMissingSocket: no HAProxy is nines_haproxy_up 0 with
// the reason, and nothing else.
func TestHAProxyScraperMissingSocket(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "none.sock")
	s := NewHAProxyScraper(HAProxyTarget{Cluster: "c", Socket: sock, WriterBackend: "w", ReaderBackend: "r"}, 0, slog.New(slog.DiscardHandler))
	snap := s.Scrape(context.Background())
	if snap.Up || !strings.Contains(snap.Err, sock) || s.Latest() != snap {
		t.Fatalf("snapshot %+v", snap)
	}
	got := series(HAProxyMetrics(snap))
	if strings.Join(got, "\n") != "nines_haproxy_up{cluster=c,instance="+sock+"} 0" {
		t.Errorf("series of a missing HAProxy:\n%s", strings.Join(got, "\n"))
	}
}

// A misnamed writer backend is an empty pool, so the alert fires instead
// of the series going missing.
func TestHAProxyMetricsMissingPool(t *testing.T) {
	tg := HAProxyTarget{Cluster: "c", Socket: "/s", WriterBackend: "c-writer", ReaderBackend: "c-reader"}
	got := series(HAProxyMetrics(&HAProxySnapshot{Target: tg, Up: true}))
	has(t, got, "nines_haproxy_backend_active_servers{cluster=c,instance=/s,backend=c-writer,pool=writer} 0")
}
