//go:build cluster

package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// receiverProc is a remote-write receiver the test runs: Debian's
// victoria-metrics or prometheus.
type receiverProc struct {
	tb     testing.TB
	name   string
	args   []string
	base   string
	ready  string
	cmd    *exec.Cmd
	output *safeBuffer
	exited chan struct{}
}

func startReceiver(tb testing.TB, name, base, ready string, args ...string) *receiverProc {
	tb.Helper()
	r := &receiverProc{tb: tb, name: name, args: args, base: base, ready: ready, output: &safeBuffer{}}
	r.start()
	tb.Cleanup(func() {
		r.stop()
		if tb.Failed() {
			tb.Logf("%s output:\n%s", name, r.output.String())
		}
	})
	return r
}

func (r *receiverProc) start() {
	r.tb.Helper()
	r.cmd = exec.Command(r.name, r.args...)
	r.cmd.Stdout, r.cmd.Stderr = r.output, r.output
	r.exited = make(chan struct{})
	if err := r.cmd.Start(); err != nil {
		r.tb.Fatalf("start %s (Debian package %s; scripts/install-deps.sh installs it): %v", r.name, filepath.Base(r.name), err)
	}
	go func() { _ = r.cmd.Wait(); close(r.exited) }()
	waitFor(r.tb, time.Now(), 30*time.Second, r.name+" ready", func() bool {
		resp, err := http.Get(r.base + r.ready)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
}

// stop ends the receiver by its PID with SIGTERM and waits for it.
func (r *receiverProc) stop() {
	select {
	case <-r.exited:
		return
	default:
	}
	_ = r.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-r.exited:
	case <-time.After(30 * time.Second):
		_ = r.cmd.Process.Kill()
		<-r.exited
	}
}

// queryAt runs an instant query at `at` against a Prometheus-compatible
// API (with the appliance's token when token is set). For an instant
// vector it returns each series' value by its label set; for a range
// selector, each series' number of samples (staleness markers, NaN, are
// not samples).
func queryAt(tb testing.TB, base, token, expr string, at time.Time) map[string]float64 {
	tb.Helper()
	q := url.Values{"query": {expr}, "time": {strconv.FormatFloat(float64(at.UnixMilli())/1000, 'f', 3, 64)}}
	req, err := http.NewRequest(http.MethodGet, base+"/api/v1/query?"+q.Encode(), nil)
	if err != nil {
		tb.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatalf("query %s at %s: %v", expr, base, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var pr promResponse
	if err := json.Unmarshal(body, &pr); err != nil || pr.Status != "success" {
		tb.Fatalf("query %s at %s: %v: %s", expr, base, err, body)
	}
	out := map[string]float64{}
	for _, r := range pr.Data.Result {
		lbls, _ := json.Marshal(r.Metric) // map keys marshal sorted
		if r.Value != nil {
			v, _ := strconv.ParseFloat(fmt.Sprint(r.Value[1]), 64)
			out[string(lbls)] = v
			continue
		}
		for _, v := range r.Values {
			if fmt.Sprint(v[1]) != "NaN" {
				out[string(lbls)]++
			}
		}
	}
	return out
}

func sumValues(m map[string]float64) float64 {
	t := 0.0
	for _, v := range m {
		t += v
	}
	return t
}

// rwStatus is GET /api/v1/remote_write.
type rwStatus struct {
	Data []struct {
		Remote         string `json:"remote"`
		QueueBytes     uint64 `json:"queueBytes"`
		PendingSamples int64  `json:"pendingSamples"`
		SentSamples    uint64 `json:"sentSamples"`
		FailedSends    uint64 `json:"failedSends"`
		DroppedFull    uint64 `json:"droppedQueueFull"`
		DroppedRejects uint64 `json:"droppedRejected"`
		LastError      string `json:"lastError"`
	} `json:"data"`
}

// TestRemoteWriteSurvivesReceiverOutage is issue 15's acceptance for
// remote_write: the appliance writes to Debian's victoria-metrics and to
// Debian's prometheus (remote-write receiver on); victoria-metrics is
// stopped for 2 minutes and started again on the same data dir. Within the
// outage the appliance itself is stopped (SIGTERM) and started again on
// its data dir, so the queue must survive the restart too. Once the queue
// drained, every sample of one node's series over the whole window is in
// victoria-metrics, counted against the appliance's own store over the
// same window. Prometheus, never stopped, has them too. (One run for both
// outages: each costs minutes of CI.)
func TestRemoteWriteSurvivesReceiverOutage(t *testing.T) {
	waitsSideBySide(t)
	sb := sharedGalera(t)
	dir := sandboxDir(t, false)

	vmBase := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	// latencyOffset: by default VictoriaMetrics hides the newest 30 s from
	// queries. dedup at 1 ms: delivery is at least once (a batch the
	// receiver took as it stopped, but never acknowledged, is sent
	// again), and a remote-write receiver counts a repeated sample once.
	vmArgs := []string{"-storageDataPath", filepath.Join(dir, "vm"), "-httpListenAddr", vmBase,
		"-search.latencyOffset=1s", "-dedup.minScrapeInterval=1ms", "-retentionPeriod=1"}
	vm := startReceiver(t, "/usr/bin/victoria-metrics", "http://"+vmBase, "/health", vmArgs...)

	promBase := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	promCfg := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(promCfg, []byte("global: {scrape_interval: 1m}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	startReceiver(t, "/usr/bin/prometheus", "http://"+promBase, "/-/ready",
		"--config.file="+promCfg, "--storage.tsdb.path="+filepath.Join(dir, "prom"), "--web.listen-address="+promBase, "--web.enable-remote-write-receiver")

	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	b := clusterConfig(sb, addr, "test", false)
	b.WriteString("    remediation: {mode: \"off\"}\n")
	fmt.Fprintf(b, "remote_write:\n  - {name: vm, url: \"http://%s/api/v1/write\", bearer_token_file: %s}\n  - {name: prom, url: \"http://%s/api/v1/write\"}\n",
		vmBase, sb.AgentTokenPath(), promBase)
	cfg := filepath.Join(t.TempDir(), "nines.yaml")
	if err := os.WriteFile(cfg, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	a := startApplianceOn(t, ninesBin, addr, cfg, sb.TokenPath())
	node := sb.Nodes()[0].Address()
	sel := fmt.Sprintf(`{instance=%q}`, node)
	waitFor(t, a.started, 30*time.Second, "the node's samples in victoria-metrics", func() bool {
		return sumValues(queryAt(t, "http://"+vmBase, "", fmt.Sprintf("count(%s)", sel), time.Now())) > 0
	})
	time.Sleep(3 * time.Second)

	// The outage: victoria-metrics stopped by its PID for 2 minutes.
	from := time.Now().Truncate(time.Second)
	time.Sleep(2 * time.Second)
	vm.stop()
	down := time.Now()
	t.Logf("victoria-metrics stopped at %s", down.Format(time.TimeOnly))
	time.Sleep(90 * time.Second)
	var st rwStatus
	if _, err := a.get("/api/v1/remote_write", nil, &st); err != nil || len(st.Data) != 2 {
		t.Fatalf("GET /api/v1/remote_write: %v %+v", err, st)
	}
	queued := st.Data[0]
	if queued.Remote != "vm" || queued.QueueBytes == 0 || queued.PendingSamples == 0 || queued.FailedSends == 0 || queued.LastError == "" {
		t.Fatalf("after %s down, vm's status %+v: want bytes and samples queued, failed sends and the last error", time.Since(down).Round(time.Second), queued)
	}
	if p := st.Data[1]; p.Remote != "prom" || p.SentSamples == 0 || p.PendingSamples > 20000 {
		t.Errorf("prom's status %+v: want samples sent and little pending while only victoria-metrics is down", p)
	}
	t.Logf("after %s down: %d samples (%d bytes) queued for vm, %d failed sends; last error: %s",
		time.Since(down).Round(time.Second), queued.PendingSamples, queued.QueueBytes, queued.FailedSends, queued.LastError)

	// The appliance restarted mid-outage: the queue is on disk.
	a.stop()
	a = startApplianceOn(t, ninesBin, addr, cfg, sb.TokenPath())
	waitFor(t, a.started, 60*time.Second, "the restarted appliance's API", func() bool {
		_, err := a.get("/api/v1/remote_write", nil, &st)
		return err == nil && len(st.Data) == 2
	})
	if q := st.Data[0]; q.PendingSamples < queued.PendingSamples || q.QueueBytes == 0 {
		t.Fatalf("after the appliance's restart vm's status %+v: want at least the %d samples queued before it", q, queued.PendingSamples)
	}
	t.Logf("appliance restarted %s into the outage; %d samples still queued for vm", time.Since(down).Round(time.Second), st.Data[0].PendingSamples)
	if rest := 2*time.Minute - time.Since(down); rest > 0 {
		time.Sleep(rest)
	}

	if _, err := a.get("/api/v1/remote_write", nil, &st); err != nil || len(st.Data) != 2 {
		t.Fatalf("GET /api/v1/remote_write: %v %+v", err, st)
	}
	pending := st.Data[0].PendingSamples
	vm.start()
	up := time.Now()
	catchUp := waitFor(t, up, 60*time.Second, "vm's queue drained", func() bool {
		var now rwStatus
		if _, err := a.get("/api/v1/remote_write", nil, &now); err != nil || len(now.Data) != 2 {
			return false
		}
		// Drained: what was queued at the restart is sent and little waits.
		return now.Data[0].PendingSamples < pending/100 && now.Data[0].SentSamples >= uint64(pending)
	})
	if _, err := a.get("/api/v1/remote_write", nil, &st); err != nil {
		t.Fatal(err)
	}
	if d := st.Data[0]; d.DroppedFull != 0 || d.DroppedRejects != 0 {
		t.Errorf("vm's status %+v: samples were dropped", d)
	}
	to := time.Now().Add(-2 * time.Second).Truncate(time.Second)
	time.Sleep(3 * time.Second) // victoria-metrics' 1 s latency offset, and the store's flush

	// Every series of the node, sample by sample over [from, to]: the
	// appliance's store against each receiver, on the same window.
	window := fmt.Sprintf("%s[%ds]", sel, int(to.Sub(from)/time.Second))
	local := queryAt(t, a.base, a.token, window, to)
	remote := queryAt(t, "http://"+vmBase, "", window, to)
	prom := queryAt(t, "http://"+promBase, "", window, to)
	if len(local) == 0 || sumValues(local) == 0 {
		t.Fatalf("the appliance's store has no samples of %s over the window", sel)
	}
	for series, n := range local {
		if remote[series] != n {
			t.Errorf("series %s: %v samples in the store, %v in victoria-metrics", series, n, remote[series])
		}
		if prom[series] != n {
			t.Errorf("series %s: %v samples in the store, %v in prometheus", series, n, prom[series])
		}
	}
	if len(remote) != len(local) || len(prom) != len(local) {
		t.Errorf("series of %s: %d in the store, %d in victoria-metrics, %d in prometheus", node, len(local), len(remote), len(prom))
	}
	t.Logf("window %s..%s (victoria-metrics down %s of it, the appliance restarted within): %d series of %s, %v samples in the store, %v in victoria-metrics, %v in prometheus; catch-up of %d queued samples took %s after restart (bound 60 s)",
		from.Format(time.TimeOnly), to.Format(time.TimeOnly), up.Sub(down).Round(time.Second), len(local), node, sumValues(local), sumValues(remote), sumValues(prom), pending, catchUp.Round(time.Millisecond))
}
