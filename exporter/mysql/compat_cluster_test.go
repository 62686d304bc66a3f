//go:build cluster

package mysql_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/nines-project/nines/exporter"
	"github.com/nines-project/nines/internal/metric"
	"github.com/nines-project/nines/internal/testbin"
	"github.com/nines-project/nines/sandbox"
)

// compatBasePort keeps this package's sandbox clear of the other packages'.
const compatBasePort = 31306

// TestMysqldExporterNames checks the README's promise that nines uses
// mysqld_exporter's names where they overlap: nines and Debian's
// mysqld_exporter read the same real MariaDB Galera node, and every family
// nines emits under a mysqld_exporter name (mysql_*) must exist in the
// real exporter's output with the same type and label names, apart from
// the cluster and instance labels nines adds.
func TestMysqldExporterNames(t *testing.T) {
	bin, err := exec.LookPath("prometheus-mysqld-exporter")
	if err != nil {
		t.Fatalf("prometheus-mysqld-exporter not installed (scripts/install-deps.sh installs it): %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	// The servers run as user mysql, which must be able to enter the dir.
	// (t.TempDir's parent is 0700).
	dir, err := os.MkdirTemp("/tmp", "nines-compat-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	// The sandbox runs its nodes through nines' host agent, built with
	// the race detector; a race it reports fails the test.
	races, err := testbin.WatchRaces()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { races.Check(t); races.Close() })
	ninesBin, cleanupBin, err := testbin.Build(true)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cleanupBin)
	sb, err := sandbox.StartGalera(ctx, sandbox.Options{Dir: dir + "/sandbox", Nodes: 1, BasePort: compatBasePort, ClusterName: "compat", Log: t.Output(), AgentBinary: ninesBin})
	if err != nil {
		t.Fatalf("start a 1-node Galera sandbox: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		if err := sb.Stop(ctx); err != nil {
			t.Errorf("stop sandbox: %v", err)
		}
	})
	pw, err := os.ReadFile(sb.PasswordPath())
	if err != nil {
		t.Fatal(err)
	}
	password := strings.TrimSpace(string(pw))
	node := sb.Nodes()[0]

	// nines: one scrape, variables and all, through its Prometheus
	// collector, as /metrics serves it.
	s, err := exporter.NewScraper(exporter.Target{Cluster: "compat", Address: node.Address(), User: sandbox.MonitorUser, Password: password}, exporter.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	snap := s.Scrape(ctx)
	if !snap.Up {
		t.Fatalf("nines scrape: %s", snap.Err)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(metric.Collector(func() []metric.Metric { return exporter.SnapshotMetrics(snap) }))
	ours, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}

	// mysqld_exporter with the collectors that read what nines reads.
	port, err := testbin.ClusterPorts.Next()
	if err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	cmd := exec.Command(bin, "--web.listen-address="+addr, "--collect.global_status", "--collect.global_variables", "--collect.slave_status")
	cmd.Env = append(os.Environ(), fmt.Sprintf("DATA_SOURCE_NAME=%s:%s@tcp(%s)/", sandbox.MonitorUser, password, node.Address()))
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	var theirs map[string]*dto.MetricFamily
	deadline := time.Now().Add(30 * time.Second)
	for {
		theirs = scrapeText(t, "http://"+addr+"/metrics")
		if up := theirs["mysql_up"]; up != nil && up.Metric[0].GetGauge().GetValue() == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("mysqld_exporter does not read the node:\n%s", out.String())
		}
		time.Sleep(200 * time.Millisecond)
	}

	var missing, differ []string
	checked := 0
	for _, f := range ours {
		name := f.GetName()
		if !strings.HasPrefix(name, "mysql_") {
			continue
		}
		checked++
		them, ok := theirs[name]
		if !ok && onlyNines[name] {
			continue
		}
		if !ok {
			missing = append(missing, name)
			continue
		}
		if f.GetType() != them.GetType() {
			differ = append(differ, fmt.Sprintf("%s: type %s, mysqld_exporter's %s", name, f.GetType(), them.GetType()))
		}
		if a, b := labelNames(f, "cluster", "instance"), labelNames(them); !slices.Equal(a, b) {
			differ = append(differ, fmt.Sprintf("%s: labels %v, mysqld_exporter's %v", name, a, b))
		}
	}
	t.Logf("%d mysql_* families of nines checked against mysqld_exporter %s", checked, strings.TrimSpace(versionOf(bin)))
	if len(missing) > 0 {
		t.Errorf("%d families nines names like mysqld_exporter that the real one does not emit for the same node:\n  %s", len(missing), strings.Join(missing, "\n  "))
	}
	if len(differ) > 0 {
		t.Errorf("%d families differ from mysqld_exporter's:\n  %s", len(differ), strings.Join(differ, "\n  "))
	}
}

// onlyNines are status variables mysqld_exporter 0.14 drops because it
// cannot parse their values ("true"/"false", MariaDB 10.6+), and nines
// reads as 1/0 under the same naming scheme (README says so).
var onlyNines = map[string]bool{
	"mysql_global_status_wsrep_flow_control_active":    true,
	"mysql_global_status_wsrep_flow_control_requested": true,
}

// labelNames is the sorted union of the label names of f's samples,
// without those in skip.
func labelNames(f *dto.MetricFamily, skip ...string) []string {
	seen := map[string]bool{}
	for _, m := range f.Metric {
		for _, l := range m.Label {
			if !slices.Contains(skip, l.GetName()) {
				seen[l.GetName()] = true
			}
		}
	}
	out := make([]string, 0, len(seen))
	for n := range seen {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

func scrapeText(t *testing.T, url string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil
	}
	p := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := p.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("parse mysqld_exporter's output: %v", err)
	}
	return fams
}

func versionOf(bin string) string {
	out, _ := exec.Command(bin, "--version").CombinedOutput()
	line, _, _ := strings.Cut(string(out), "\n")
	return line
}
