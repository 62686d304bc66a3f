//go:build cluster

package e2e

import (
	"bytes"
	"compress/gzip"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/nines-project/nines/exporter"
	"github.com/nines-project/nines/internal/metric"
	"github.com/nines-project/nines/sandbox"
)

const (
	// stackWindow is how long each monitoring stack is measured once it
	// scrapes every node and evaluates every rule; stackWarmup lets its
	// start-up settle first (the first scrapes, the first rule rounds).
	stackWindow = 60 * time.Second
	stackWarmup = 5 * time.Second
	// baselineWindow measures what the nodes execute with no monitoring
	// at all (the sandbox's agents), to be taken off each stack's count.
	baselineWindow = 20 * time.Second
	// isolatedScrapes is how many HTTP scrapes of one node each exporter
	// serves in part (b).
	isolatedScrapes = 300
	rssEvery        = 200 * time.Millisecond

	mysqldExporterBin = "/usr/bin/prometheus-mysqld-exporter"
	prometheusBin     = "/usr/bin/prometheus"
	alertmanagerBin   = "/usr/bin/prometheus-alertmanager"
)

// collectorFlags enable in mysqld_exporter exactly what nines reads from a
// Galera node: SHOW GLOBAL STATUS and SHOW GLOBAL VARIABLES (nines reads
// replica status only where replica_status is set, off for Galera). The
// --no- flags switch off mysqld_exporter 0.14's other default collectors.
var collectorFlags = []string{
	"--collect.global_status",
	"--collect.global_variables",
	"--no-collect.slave_status",
	"--no-collect.info_schema.innodb_cmp",
	"--no-collect.info_schema.innodb_cmpmem",
	"--no-collect.info_schema.query_response_time",
}

// wantCollectors is what mysqld_exporter must report as enabled with
// collectorFlags (the label values of its
// mysql_exporter_collector_duration_seconds, as 0.14 names them), checked
// so a changed default cannot skew the figures.
var wantCollectors = []string{"collect.global_status", "collect.global_variables", "connection"}

// alertmanagerYAML routes every alert to a receiver without integrations,
// the same for nines' embedded Alertmanager and Debian's: with a healthy
// cluster both only hold the always-firing alerts, if any.
const alertmanagerYAML = `route:
  receiver: console
  group_by: [alertname, cluster]
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 4h
receivers:
  - name: console
`

// BenchmarkStack compares what an operator runs to monitor the 3-node
// Galera sandbox at a 1 s interval: (a) nines, one `nines run` process
// (scrape, store, rules, embedded Alertmanager), against three Debian
// mysqld_exporters, Debian's Prometheus scraping them and evaluating the
// rules `nines rules export` prints, and Debian's Alertmanager, each stack
// alone on the same sandbox for the same window: CPU seconds, resident
// memory, statements and connections per minute on every node; and (b) one
// node scraped over HTTP N times: nines' scrape, conversion and exposition
// against mysqld_exporter with the collectors nines also reads.
//
// nines runs with its write probe off, as the other stack has none; a
// third run with the probe on shows what the probe adds.
//
// One run takes about five minutes: use -benchtime 1x.
func BenchmarkStack(b *testing.B) {
	for _, bin := range []string{mysqldExporterBin, prometheusBin, alertmanagerBin} {
		if _, err := os.Stat(bin); err != nil {
			b.Fatalf("%v: scripts/install-deps.sh installs Debian's prometheus, prometheus-alertmanager and prometheus-mysqld-exporter", err)
		}
	}
	bin := plainBinary(b)
	sb := sharedGalera(b)
	pw, err := os.ReadFile(sb.PasswordPath())
	if err != nil {
		b.Fatal(err)
	}
	password := strings.TrimSpace(string(pw))
	meter := newNodeMeter(b, sb)
	dir := b.TempDir()
	amFile := filepath.Join(dir, "alertmanager.yml")
	if err := os.WriteFile(amFile, []byte(alertmanagerYAML), 0o644); err != nil {
		b.Fatal(err)
	}

	b.ResetTimer()
	base := meter.measure(b, baselineWindow, nil)
	off, rulesFile := runNinesStack(b, bin, sb, meter, dir, amFile, false)
	peer := runPeerStack(b, sb, meter, dir, amFile, rulesFile, password)
	on, _ := runNinesStack(b, bin, sb, meter, dir, amFile, true)
	// Printed now, so a failure of the part below does not lose them.
	printStacks(base, off, peer, on, meter.names)
	iso := isolatedScrapesOfNode(b, sb.Nodes()[0], password, meter)
	b.StopTimer()
	printIsolated(iso, sb.Nodes()[0].Name)

	b.ReportMetric(off.cpuWindow, "nines-cpu-s")
	b.ReportMetric(peer.cpuWindow, "peer-cpu-s")
	b.ReportMetric(float64(off.peakRSS)/(1<<20), "nines-MB-peak")
	b.ReportMetric(float64(peer.peakRSS)/(1<<20), "peer-MB-peak")
	b.ReportMetric(avg(off.stmtsNet(base)), "nines-stmts/min/node")
	b.ReportMetric(avg(peer.stmtsNet(base)), "peer-stmts/min/node")
	b.ReportMetric(iso[0].msPerScrape, "nines-ms/scrape")
	b.ReportMetric(iso[2].msPerScrape, "mysqld-ms/scrape")
	b.ReportMetric(iso[0].stmts, "nines-stmts/scrape")
	b.ReportMetric(iso[2].stmts, "mysqld-stmts/scrape")
}

// ---- (a) the stacks ----

// stackResult is one stack's figures over its measured window.
type stackResult struct {
	name  string
	procs []procFigures
	// cpuWindow is CPU seconds (user+system) of every process of the
	// stack during the window; cpuTotal since each process started.
	cpuWindow, cpuTotal float64
	// peakRSS is the largest sum of the processes' VmRSS over samples
	// taken every rssEvery; hwmSum sums each process's VmHWM at the end
	// (its peak since start, start-up included).
	peakRSS, hwmSum int64
	counts          windowCounts
	rules, ruleErrs int
	missingInputs   []string // metrics the rules read that the stack's store lacks
}

type procFigures struct {
	name           string
	pid            int
	cpuWindow      float64
	peakRSS, hwm   int64
	cpuTotalAtStop float64
}

func (r stackResult) stmtsNet(base windowCounts) []float64 {
	out := make([]float64, len(r.counts.stmtsPerMin))
	for i, v := range r.counts.stmtsPerMin {
		out[i] = v - base.stmtsPerMin[i]
	}
	return out
}

// runNinesStack runs `nines run` with its own config (the sandbox's three
// nodes, no agents, the probe on or off, the embedded Alertmanager) and
// measures it. With the probe off it also exports the rules nines
// evaluates, for Prometheus to evaluate the same.
func runNinesStack(b *testing.B, bin string, sb *sandbox.Sandbox, meter *nodeMeter, dir, amFile string, probe bool) (stackResult, string) {
	b.Helper()
	name := "nines, probe off"
	sub := filepath.Join(dir, "nines-probe-off")
	if probe {
		name, sub = "nines, probe on", filepath.Join(dir, "nines-probe-on")
	}
	if err := os.MkdirAll(sub, 0o755); err != nil {
		b.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(b))
	cfg := clusterConfig(sb, addr, "bench", false)
	if !probe {
		cfg.WriteString("    probe: {disabled: true}\n")
	}
	fmt.Fprintf(cfg, "alertmanager: {embedded: %s}\n", amFile)
	cfgPath := filepath.Join(sub, "nines.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg.String()), 0o600); err != nil {
		b.Fatal(err)
	}
	rulesFile := filepath.Join(sub, "rules.yml")
	out, err := exec.Command(bin, "rules", "export", "--config", cfgPath).Output()
	if err != nil {
		b.Fatalf("nines rules export: %v", err)
	}
	if err := os.WriteFile(rulesFile, out, 0o644); err != nil {
		b.Fatal(err)
	}

	a := startApplianceOn(b, bin, addr, cfgPath, sb.TokenPath())
	waitFor(b, a.started, 60*time.Second, name+" scraping the three nodes", func() bool { return len(a.query("mysql_up == 1")) == 3 })
	ninesRules := func() rulesSummary {
		var ans rulesAnswer
		if code, err := a.get("/api/v1/rules", nil, &ans); err != nil || code != http.StatusOK {
			return rulesSummary{}
		}
		return ans.summary()
	}
	waitFor(b, a.started, 60*time.Second, name+" evaluating every rule", func() bool { s := ninesRules(); return s.total > 0 && s.evaluated == s.total })
	time.Sleep(stackWarmup)

	r := measureStack(b, meter, name, []namedPID{{"nines run", a.cmd.Process.Pid}})
	s := ninesRules()
	r.rules, r.ruleErrs = s.total, len(s.errs)
	if len(s.errs) > 0 {
		b.Errorf("%s: rules failing: %s", name, strings.Join(s.errs, "; "))
	}
	r.missingInputs = missingInputs(b, rulesFile, a.query)
	a.stop()
	return r, rulesFile
}

// runPeerStack runs one Debian mysqld_exporter per node, Debian's
// Alertmanager and Debian's Prometheus scraping the exporters every second
// and evaluating rulesFile every second, and measures them together.
func runPeerStack(b *testing.B, sb *sandbox.Sandbox, meter *nodeMeter, dir, amFile, rulesFile, password string) stackResult {
	b.Helper()
	sub := filepath.Join(dir, "prometheus-stack")
	if err := os.MkdirAll(sub, 0o755); err != nil {
		b.Fatal(err)
	}
	if out, err := exec.Command("promtool", "check", "rules", rulesFile).CombinedOutput(); err != nil {
		b.Fatalf("promtool check rules on nines' exported rules: %v\n%s", err, out)
	}

	var procs []*proc
	stopAll := func() {
		for i := len(procs) - 1; i >= 0; i-- {
			procs[i].stop(b)
		}
	}
	defer stopAll()

	var targets strings.Builder
	for _, n := range sb.Nodes() {
		addr := fmt.Sprintf("127.0.0.1:%d", freePort(b))
		env := []string{fmt.Sprintf("DATA_SOURCE_NAME=%s:%s@tcp(%s)/", sandbox.MonitorUser, password, n.Address())}
		procs = append(procs, startProc(b, "mysqld_exporter "+n.Name, mysqldExporterBin, env,
			append([]string{"--web.listen-address=" + addr}, collectorFlags...)...))
		// cluster and instance as nines labels them, so the rules group
		// and join the same way.
		fmt.Fprintf(&targets, "      - targets: [%q]\n        labels: {cluster: %q, instance: %q}\n", addr, sb.ClusterName(), n.Address())
	}
	amAddr := fmt.Sprintf("127.0.0.1:%d", freePort(b))
	procs = append(procs, startProc(b, "alertmanager", alertmanagerBin, nil,
		"--config.file="+amFile, "--storage.path="+filepath.Join(sub, "alertmanager"),
		"--web.listen-address="+amAddr, "--cluster.listen-address=")) // no gossip: one instance, like nines'
	promCfg := fmt.Sprintf(`global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
rule_files: [%q]
alerting:
  alertmanagers:
    - static_configs:
        - targets: [%q]
scrape_configs:
  - job_name: mysql
    static_configs:
%s`, rulesFile, amAddr, targets.String())
	promFile := filepath.Join(sub, "prometheus.yml")
	if err := os.WriteFile(promFile, []byte(promCfg), 0o644); err != nil {
		b.Fatal(err)
	}
	if out, err := exec.Command("promtool", "check", "config", promFile).CombinedOutput(); err != nil {
		b.Fatalf("promtool check config: %v\n%s", err, out)
	}
	promAddr := fmt.Sprintf("127.0.0.1:%d", freePort(b))
	start := time.Now()
	prom := startProc(b, "prometheus", prometheusBin, nil, "--config.file="+promFile,
		"--storage.tsdb.path="+filepath.Join(sub, "data"), "--web.listen-address="+promAddr)
	procs = append(procs, prom)
	base := "http://" + promAddr
	query := func(expr string) []sample { return promQuery(base, expr) }
	waitFor(b, start, 60*time.Second, "Prometheus scraping the three exporters", func() bool { return len(query("mysql_up == 1")) == 3 })
	promRules := func() rulesSummary {
		var ans rulesAnswer
		if err := getJSON(base+"/api/v1/rules", &ans); err != nil {
			return rulesSummary{}
		}
		return ans.summary()
	}
	waitFor(b, start, 60*time.Second, "Prometheus evaluating every rule", func() bool { s := promRules(); return s.total > 0 && s.evaluated == s.total })
	var ams struct {
		Data struct {
			Active []struct {
				URL string `json:"url"`
			} `json:"activeAlertmanagers"`
		} `json:"data"`
	}
	waitFor(b, start, 30*time.Second, "Prometheus sending to the Alertmanager", func() bool {
		return getJSON(base+"/api/v1/alertmanagers", &ams) == nil && len(ams.Data.Active) == 1
	})
	time.Sleep(stackWarmup)

	pids := make([]namedPID, len(procs))
	for i, p := range procs {
		pids[i] = namedPID{p.name, p.cmd.Process.Pid}
	}
	r := measureStack(b, meter, "3 mysqld_exporter + Prometheus + Alertmanager", pids)
	s := promRules()
	r.rules, r.ruleErrs = s.total, len(s.errs)
	if len(s.errs) > 0 {
		b.Errorf("Prometheus: nines' rules failing: %s", strings.Join(s.errs, "; "))
	}
	r.missingInputs = missingInputs(b, rulesFile, query)
	return r
}

// namedPID is one process of a stack.
type namedPID struct {
	name string
	pid  int
}

// measureStack measures the processes (and any children they have) for
// stackWindow: CPU, resident memory sampled every rssEvery, and the
// statements and connections each node served meanwhile.
func measureStack(b *testing.B, meter *nodeMeter, name string, roots []namedPID) stackResult {
	b.Helper()
	pids := withChildren(roots)
	cpu0 := make([]float64, len(pids))
	for i, p := range pids {
		c, _, _, err := readProc(p.pid)
		if err != nil {
			b.Fatalf("%s: %v", p.name, err)
		}
		cpu0[i] = c
	}
	r := stackResult{name: name, procs: make([]procFigures, len(pids))}
	stop, done := make(chan struct{}), make(chan error, 1)
	go func() {
		t := time.NewTicker(rssEvery)
		defer t.Stop()
		for {
			var sum int64
			for i, p := range pids {
				_, rss, _, err := readProc(p.pid)
				if err != nil {
					done <- fmt.Errorf("%s died during the window: %w", p.name, err)
					return
				}
				sum += rss
				r.procs[i].peakRSS = max(r.procs[i].peakRSS, rss)
			}
			r.peakRSS = max(r.peakRSS, sum)
			select {
			case <-stop:
				done <- nil
				return
			case <-t.C:
			}
		}
	}()
	r.counts = meter.measure(b, stackWindow, func() {
		close(stop)
		if err := <-done; err != nil {
			b.Fatal(err)
		}
	})
	for i, p := range pids {
		c, _, hwm, err := readProc(p.pid)
		if err != nil {
			b.Fatalf("%s: %v", p.name, err)
		}
		r.procs[i].name, r.procs[i].pid = p.name, p.pid
		r.procs[i].cpuWindow = c - cpu0[i]
		r.procs[i].cpuTotalAtStop = c
		r.procs[i].hwm = hwm
		r.cpuWindow += c - cpu0[i]
		r.cpuTotal += c
		r.hwmSum += hwm
	}
	return r
}

// withChildren adds the descendants of roots (none expected: every
// process of both stacks is one binary, but a helper process would count).
func withChildren(roots []namedPID) []namedPID {
	entries, _ := os.ReadDir("/proc")
	parent := map[int]int{}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		f := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+2:]))
		if ppid, err := strconv.Atoi(f[1]); err == nil {
			parent[pid] = ppid
		}
	}
	out := slices.Clone(roots)
	for i := 0; i < len(out); i++ {
		for pid, ppid := range parent {
			if ppid == out[i].pid {
				out = append(out, namedPID{out[i].name + " child", pid})
			}
		}
	}
	return out
}

// readProc reads a process's CPU seconds (utime+stime), VmRSS and VmHWM.
func readProc(pid int) (cpu float64, rss, hwm int64, err error) {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0, 0, err
	}
	// The command name is in parentheses and may hold spaces; after it,
	// utime and stime are fields 12 and 13 (clock ticks, 100 a second).
	f := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+2:]))
	utime, _ := strconv.ParseFloat(f[11], 64)
	stime, _ := strconv.ParseFloat(f[12], 64)
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, 0, err
	}
	kb := func(key string) int64 {
		for _, line := range strings.Split(string(status), "\n") {
			if rest, ok := strings.CutPrefix(line, key); ok {
				v, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
				return v << 10
			}
		}
		return 0
	}
	return (utime + stime) / 100, kb("VmRSS:"), kb("VmHWM:"), nil
}

// ---- counting what the nodes execute ----

// nodeMeter reads every node's Questions (statements clients sent) and
// Connections counters over one kept connection per node.
type nodeMeter struct {
	names    []string
	conns    []*sql.Conn
	overhead []int64 // statements one reading costs, taken off every count
}

func newNodeMeter(b *testing.B, sb *sandbox.Sandbox) *nodeMeter {
	b.Helper()
	m := &nodeMeter{}
	for _, n := range sb.Nodes() {
		db, err := sb.DB(n.Name)
		if err != nil {
			b.Fatal(err)
		}
		conn, err := db.Conn(context.Background())
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { conn.Close(); db.Close() })
		m.names = append(m.names, n.Name)
		m.conns = append(m.conns, conn)
	}
	// A reading's own cost, the least of a few back-to-back readings (the
	// agents may run a statement in between).
	m.overhead = make([]int64, len(m.conns))
	for i := range m.conns {
		prev, _ := m.read(b, i)
		best := int64(1 << 62)
		for range 5 {
			q, _ := m.read(b, i)
			best = min(best, q-prev)
			prev = q
		}
		m.overhead[i] = best
	}
	return m
}

func (m *nodeMeter) read(b *testing.B, i int) (questions, connections int64) {
	b.Helper()
	rows, err := m.conns[i].QueryContext(context.Background(), "SHOW GLOBAL STATUS WHERE Variable_name IN ('Questions', 'Connections')")
	if err != nil {
		b.Fatalf("%s: %v", m.names[i], err)
	}
	defer rows.Close()
	for rows.Next() {
		var name string
		var v int64
		if err := rows.Scan(&name, &v); err != nil {
			b.Fatal(err)
		}
		switch name {
		case "Questions":
			questions = v
		case "Connections":
			connections = v
		}
	}
	if err := rows.Err(); err != nil {
		b.Fatal(err)
	}
	return questions, connections
}

// windowCounts is what each node executed in a window, per minute,
// without the meter's own readings.
type windowCounts struct {
	stmtsPerMin, connsPerMin []float64
	took                     time.Duration
}

// measure counts every node's statements and connections over window;
// atEnd (may be nil) runs just before the closing reading.
func (m *nodeMeter) measure(b *testing.B, window time.Duration, atEnd func()) windowCounts {
	b.Helper()
	q0, c0 := make([]int64, len(m.conns)), make([]int64, len(m.conns))
	for i := range m.conns {
		q0[i], c0[i] = m.read(b, i)
	}
	start := time.Now()
	time.Sleep(window)
	if atEnd != nil {
		atEnd()
	}
	took := time.Since(start)
	w := windowCounts{took: took}
	for i := range m.conns {
		q, c := m.read(b, i)
		w.stmtsPerMin = append(w.stmtsPerMin, float64(q-q0[i]-m.overhead[i])/took.Minutes())
		w.connsPerMin = append(w.connsPerMin, float64(c-c0[i])/took.Minutes())
	}
	return w
}

// ---- rules ----

// rulesAnswer is /api/v1/rules as Prometheus and nines both serve it.
type rulesAnswer struct {
	Data struct {
		Groups []struct {
			Name  string `json:"name"`
			Rules []struct {
				Name           string    `json:"name"`
				Health         string    `json:"health"`
				LastError      string    `json:"lastError"`
				LastEvaluation time.Time `json:"lastEvaluation"`
			} `json:"rules"`
		} `json:"groups"`
	} `json:"data"`
}

type rulesSummary struct {
	total, evaluated int
	errs             []string
}

func (a rulesAnswer) summary() rulesSummary {
	var s rulesSummary
	for _, g := range a.Data.Groups {
		for _, r := range g.Rules {
			s.total++
			if r.LastEvaluation.Year() > 2000 {
				s.evaluated++
			}
			if r.Health == "err" || r.LastError != "" {
				s.errs = append(s.errs, fmt.Sprintf("%s/%s: %s", g.Name, r.Name, r.LastError))
			}
		}
	}
	return s
}

var metricName = regexp.MustCompile(`\b(?:mysql|nines)_[a-z0-9_]+\b`)

// missingInputs lists the metrics the rules in rulesFile read that the
// stack's store has no series of: rules over them evaluate to nothing
// there.
func missingInputs(b *testing.B, rulesFile string, query func(string) []sample) []string {
	b.Helper()
	text, err := os.ReadFile(rulesFile)
	if err != nil {
		b.Fatal(err)
	}
	have := map[string]bool{}
	for _, s := range query(`count by (__name__) ({__name__=~"(mysql|nines)_.+"})`) {
		have[s.Labels["__name__"]] = true
	}
	var missing []string
	for _, n := range metricName.FindAllString(string(text), -1) {
		if !have[n] && !slices.Contains(missing, n) {
			missing = append(missing, n)
		}
	}
	slices.Sort(missing)
	return missing
}

// ---- processes of the other stack ----

// proc is a Debian binary the benchmark runs.
type proc struct {
	name   string
	cmd    *exec.Cmd
	out    *safeBuffer
	exited chan struct{}
	once   sync.Once
}

func startProc(b *testing.B, name, bin string, env []string, args ...string) *proc {
	b.Helper()
	p := &proc{name: name, cmd: exec.Command(bin, args...), out: &safeBuffer{}, exited: make(chan struct{})}
	p.cmd.Env = append(os.Environ(), env...)
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		b.Fatalf("start %s: %v", name, err)
	}
	go func() { _ = p.cmd.Wait(); close(p.exited) }()
	b.Cleanup(func() { p.stop(b) })
	return p
}

// stop sends SIGTERM, then SIGKILL after 20 s; a process that had already
// exited is a failure (it did not run the whole window).
func (p *proc) stop(b *testing.B) {
	p.once.Do(func() {
		select {
		case <-p.exited:
			b.Errorf("%s exited early (%s):\n%s", p.name, p.cmd.ProcessState, p.out.String())
			return
		default:
		}
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.exited:
		case <-time.After(20 * time.Second):
			_ = p.cmd.Process.Kill()
			<-p.exited
			b.Errorf("%s did not stop within 20 s of SIGTERM", p.name)
		}
		if b.Failed() {
			b.Logf("%s output:\n%s", p.name, p.out.String())
		}
	})
}

func getJSON(u string, out any) error {
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(u)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s: %s", u, resp.Status, body)
	}
	return json.Unmarshal(body, out)
}

// promQuery runs an instant query on Prometheus; nil on any failure, so
// pollers retry.
func promQuery(base, expr string) []sample {
	var r promResponse
	if err := getJSON(base+"/api/v1/query?"+url.Values{"query": {expr}}.Encode(), &r); err != nil {
		return nil
	}
	out := make([]sample, 0, len(r.Data.Result))
	for _, res := range r.Data.Result {
		v, _ := strconv.ParseFloat(fmt.Sprint(res.Value[1]), 64)
		out = append(out, sample{Labels: res.Metric, Value: v})
	}
	return out
}

// ---- (b) one node over HTTP ----

// isoResult is N HTTP scrapes of one node by one exporter.
type isoResult struct {
	name string
	// msPerScrape is wall time per scrape; cpuMsPerScrape the CPU of the
	// exporter and of the benchmark's HTTP client together (the client's
	// share is the same for both exporters).
	msPerScrape, cpuMsPerScrape float64
	stmts, conns                float64 // per scrape, on the node
	bytes, wireBytes            int     // per scrape: uncompressed, gzip as Prometheus asks
	series, nodeSeries          int     // samples in a scrape; mysql_* among them
}

// isolatedScrapesOfNode scrapes node isolatedScrapes times over HTTP with
// nines' scrape path (one kept connection; status every scrape, variables
// every scrape or, as configured by default, once a minute; conversion to
// metrics; promhttp exposition), and with mysqld_exporter reading the same
// (collectorFlags).
func isolatedScrapesOfNode(b *testing.B, node sandbox.Node, password string, meter *nodeMeter) []isoResult {
	b.Helper()
	idx := slices.Index(meter.names, node.Name)
	var out []isoResult
	for _, vars := range []struct {
		name  string
		every time.Duration
	}{{"nines, variables every scrape", time.Nanosecond}, {"nines, variables every 60 s", time.Minute}} {
		s, err := exporter.NewScraper(exporter.Target{Cluster: "bench", Address: node.Address(), User: sandbox.MonitorUser, Password: password},
			exporter.Options{VariablesInterval: vars.every})
		if err != nil {
			b.Fatal(err)
		}
		// What a scrape of nines is when it scrapes on request: read the
		// node, derive the metrics, expose them.
		reg := prometheus.NewRegistry()
		reg.MustRegister(metric.Collector(func() []metric.Metric { return exporter.SnapshotMetrics(s.Scrape(context.Background())) }))
		srv := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
		out = append(out, scrapeN(b, vars.name, srv.URL, meter, idx, selfCPU))
		srv.Close()
		s.Close()
	}

	addr := fmt.Sprintf("127.0.0.1:%d", freePort(b))
	p := startProc(b, "mysqld_exporter "+node.Name, mysqldExporterBin,
		[]string{fmt.Sprintf("DATA_SOURCE_NAME=%s:%s@tcp(%s)/", sandbox.MonitorUser, password, node.Address())},
		append([]string{"--web.listen-address=" + addr}, collectorFlags...)...)
	defer p.stop(b)
	u := "http://" + addr + "/metrics"
	var body []byte
	waitFor(b, time.Now(), 20*time.Second, "mysqld_exporter scraping the node", func() bool {
		_, body, _ = scrapeOnce(u)
		return upOne.Match(body)
	})
	var enabled []string
	for _, m := range regexp.MustCompile(`mysql_exporter_collector_duration_seconds\{collector="([^"]+)"\}`).FindAllSubmatch(body, -1) {
		enabled = append(enabled, string(m[1]))
	}
	slices.Sort(enabled)
	if !slices.Equal(enabled, wantCollectors) {
		b.Fatalf("mysqld_exporter collectors %v, want %v (flags %v)", enabled, wantCollectors, collectorFlags)
	}
	out = append(out, scrapeN(b, "mysqld_exporter", u, meter, idx, func() float64 {
		c, _, _, err := readProc(p.cmd.Process.Pid)
		if err != nil {
			b.Fatal(err)
		}
		return selfCPU() + c
	}))
	return out
}

var upOne = regexp.MustCompile(`(?m)^mysql_up(\{[^}]*\})? 1$`)

// scrapeOnce fetches u as Prometheus does (asking for gzip) and returns
// the bytes on the wire and the decompressed body.
func scrapeOnce(u string) (int, []byte, error) {
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Accept-Encoding", "gzip")
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return len(raw), raw, fmt.Errorf("GET %s: %s", u, resp.Status)
	}
	if resp.Header.Get("Content-Encoding") != "gzip" {
		return len(raw), raw, nil
	}
	zr, err := gzip.NewReader(bytes.NewReader(raw))
	if err != nil {
		return len(raw), nil, err
	}
	body, err := io.ReadAll(zr)
	return len(raw), body, err
}

func scrapeN(b *testing.B, name, u string, meter *nodeMeter, node int, cpu func() float64) isoResult {
	b.Helper()
	_, body, err := scrapeOnce(u) // warm-up: the first connection, the first variables
	if err != nil || !upOne.Match(body) {
		b.Fatalf("%s: warm-up scrape: %v\n%.2000s", name, err, body)
	}
	q0, c0 := meter.read(b, node)
	cpu0, start := cpu(), time.Now()
	var wire, size int
	for range isolatedScrapes {
		var w int
		w, body, err = scrapeOnce(u)
		if err != nil || !upOne.Match(body) {
			b.Fatalf("%s: scrape: %v\n%.2000s", name, err, body)
		}
		wire += w
		size += len(body)
	}
	took, cpuUsed := time.Since(start), cpu()-cpu0
	q1, c1 := meter.read(b, node)
	r := isoResult{name: name, msPerScrape: float64(took.Microseconds()) / 1e3 / isolatedScrapes,
		cpuMsPerScrape: cpuUsed * 1e3 / isolatedScrapes,
		stmts:          float64(q1-q0-meter.overhead[node]) / isolatedScrapes,
		conns:          float64(c1-c0) / isolatedScrapes,
		bytes:          size / isolatedScrapes, wireBytes: wire / isolatedScrapes}
	for _, line := range strings.Split(string(body), "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		r.series++
		if strings.HasPrefix(line, "mysql_") && !strings.HasPrefix(line, "mysql_exporter_") {
			r.nodeSeries++
		}
	}
	return r
}

// selfCPU is the CPU seconds this test process used so far.
func selfCPU() float64 {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
}

// ---- the tables ----

func avg(v []float64) float64 {
	var s float64
	for _, x := range v {
		s += x
	}
	return s / float64(len(v))
}

func ratio(a, b float64) string {
	if b == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2fx", a/b)
}

func printStacks(base windowCounts, off, peer, on stackResult, nodes []string) {
	mb := func(v int64) string { return fmt.Sprintf("%.1f MB", float64(v)/(1<<20)) }
	row := func(label, n, p, r, o string) { fmt.Printf("  %-46s %16s %16s %8s %16s\n", label, n, p, r, o) }
	fmt.Printf("\n(a) monitoring the 3-node Galera sandbox at a 1 s scrape and rule interval, each stack alone, %s window\n", stackWindow)
	fmt.Printf("    nines: one `nines run` (scrape, store, %d rules, embedded Alertmanager, dry-run remediator, console, API)\n", off.rules)
	fmt.Printf("    other: 3 x Debian mysqld_exporter 0.14 (global status + variables) + Prometheus 2.42 (same %d rules) + Alertmanager\n\n", peer.rules)
	row("", "nines probe off", "Prometheus stack", "ratio", "nines probe on")
	row("CPU seconds in the window", fmt.Sprintf("%.2f s", off.cpuWindow), fmt.Sprintf("%.2f s", peer.cpuWindow), ratio(off.cpuWindow, peer.cpuWindow), fmt.Sprintf("%.2f s", on.cpuWindow))
	pct := func(r stackResult) string { return fmt.Sprintf("%.1f %%", r.cpuWindow/r.counts.took.Seconds()*100) }
	row("  as a share of one core", pct(off), pct(peer), "", pct(on))
	row("CPU seconds since start (start-up included)", fmt.Sprintf("%.2f s", off.cpuTotal), fmt.Sprintf("%.2f s", peer.cpuTotal), ratio(off.cpuTotal, peer.cpuTotal), fmt.Sprintf("%.2f s", on.cpuTotal))
	row("peak RSS, sum of the processes (window)", mb(off.peakRSS), mb(peer.peakRSS), ratio(float64(off.peakRSS), float64(peer.peakRSS)), mb(on.peakRSS))
	row("VmHWM summed (start-up included)", mb(off.hwmSum), mb(peer.hwmSum), ratio(float64(off.hwmSum), float64(peer.hwmSum)), mb(on.hwmSum))
	offS, peerS, onS := off.stmtsNet(base), peer.stmtsNet(base), on.stmtsNet(base)
	for i, n := range nodes {
		row(fmt.Sprintf("statements/min on %s", n), fmt.Sprintf("%.0f", offS[i]), fmt.Sprintf("%.0f", peerS[i]), ratio(offS[i], peerS[i]), fmt.Sprintf("%.0f", onS[i]))
	}
	for i, n := range nodes {
		row(fmt.Sprintf("connections/min on %s", n), fmt.Sprintf("%.0f", off.counts.connsPerMin[i]), fmt.Sprintf("%.0f", peer.counts.connsPerMin[i]),
			ratio(off.counts.connsPerMin[i], peer.counts.connsPerMin[i]), fmt.Sprintf("%.0f", on.counts.connsPerMin[i]))
	}
	row("rules evaluated / failing", fmt.Sprintf("%d / %d", off.rules, off.ruleErrs), fmt.Sprintf("%d / %d", peer.rules, peer.ruleErrs), "", fmt.Sprintf("%d / %d", on.rules, on.ruleErrs))
	fmt.Printf("  statements are the nodes' Questions delta less the meter's own readings and less what the nodes ran with no\n")
	fmt.Printf("  monitoring at all (the sandbox's agents: %s/min)\n", strings.Join(func() []string {
		var out []string
		for _, v := range base.stmtsPerMin {
			out = append(out, fmt.Sprintf("%.1f", v))
		}
		return out
	}(), ", "))
	fmt.Printf("\n  processes                                      CPU in window   peak RSS     VmHWM\n")
	for _, r := range []stackResult{off, peer, on} {
		for _, p := range r.procs {
			fmt.Printf("  %-46s %10.2f s %10s %10s\n", r.name+": "+p.name, p.cpuWindow, mb(p.peakRSS), mb(p.hwm))
		}
	}
	for _, r := range []stackResult{off, peer} {
		fmt.Printf("\n  rule inputs with no series in the store of %s (%d): %s\n", r.name, len(r.missingInputs), strings.Join(r.missingInputs, " "))
	}
	fmt.Println()
}

func printIsolated(iso []isoResult, node string) {
	n, v, m := iso[0], iso[1], iso[2]
	row := func(label, a, c, d, r string) { fmt.Printf("  %-40s %16s %16s %16s %8s\n", label, a, c, d, r) }
	fmt.Printf("(b) %s alone, %d HTTP scrapes by each exporter, one after the other (gzip asked, as Prometheus does)\n\n", node, isolatedScrapes)
	row("", "nines, vars", "nines, vars", "mysqld_exporter", "ratio")
	row("", "every scrape", "every 60 s", "", "(1st/3rd)")
	f := func(label, unit string, get func(isoResult) float64) {
		row(label, fmt.Sprintf("%.2f%s", get(n), unit), fmt.Sprintf("%.2f%s", get(v), unit), fmt.Sprintf("%.2f%s", get(m), unit), ratio(get(n), get(m)))
	}
	f("wall time per scrape", " ms", func(r isoResult) float64 { return r.msPerScrape })
	f("CPU per scrape, exporter + client", " ms", func(r isoResult) float64 { return r.cpuMsPerScrape })
	f("statements per scrape", "", func(r isoResult) float64 { return r.stmts })
	f("connections opened per scrape", "", func(r isoResult) float64 { return r.conns })
	i := func(label string, get func(isoResult) int) {
		row(label, strconv.Itoa(get(n)), strconv.Itoa(get(v)), strconv.Itoa(get(m)), ratio(float64(get(n)), float64(get(m))))
	}
	i("bytes per scrape, uncompressed", func(r isoResult) int { return r.bytes })
	i("bytes per scrape, gzip", func(r isoResult) int { return r.wireBytes })
	i("samples per scrape", func(r isoResult) int { return r.series })
	i("  of which mysql_* from the node", func(r isoResult) int { return r.nodeSeries })
	fmt.Println()
}

// BenchmarkApplianceRSS runs the appliance (built without the race
// detector) against the 3-node sandbox for 30 s and reports its resident
// memory. Target: at most 120 MB.
func BenchmarkApplianceRSS(b *testing.B) {
	sb := sharedGalera(b)
	a := startApplianceBin(b, plainBinary(b), sb.ConfigPath(), sb.TokenPath())
	waitFor(b, a.started, 10*time.Second, "appliance scraping", func() bool { return len(a.query("mysql_up == 1")) == 3 })

	var peak, last int64
	cpu0, t0 := cpuSeconds(b, a.cmd.Process.Pid), time.Now()
	end := time.Now().Add(30 * time.Second)
	for time.Now().Before(end) {
		last = rssBytes(b, a.cmd.Process.Pid)
		peak = max(peak, last)
		time.Sleep(time.Second)
	}
	cpu := (cpuSeconds(b, a.cmd.Process.Pid) - cpu0) / time.Since(t0).Seconds()
	b.ReportMetric(float64(peak)/(1<<20), "MB-rss-peak")
	b.ReportMetric(float64(last)/(1<<20), "MB-rss-30s")
	b.ReportMetric(cpu*100, "%cpu")
	fmt.Printf("\nappliance monitoring a 3-node Galera sandbox for 30 s: RSS %.1f MB at 30 s, peak %.1f MB (target <= 120 MB), CPU %.1f %% of one core\n\n", float64(last)/(1<<20), float64(peak)/(1<<20), cpu*100)
}

// cpuSeconds is the user+system CPU time a process used so far.
func cpuSeconds(b *testing.B, pid int) float64 {
	b.Helper()
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		b.Fatal(err)
	}
	// Fields after the command name, which is in parentheses and may hold
	// spaces: state is field 3, utime 14, stime 15 (clock ticks, 100/s).
	rest := string(stat[strings.LastIndexByte(string(stat), ')')+2:])
	f := strings.Fields(rest)
	utime, _ := strconv.ParseFloat(f[11], 64)
	stime, _ := strconv.ParseFloat(f[12], 64)
	return (utime + stime) / 100
}

func rssBytes(b *testing.B, pid int) int64 {
	b.Helper()
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(string(status), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			if err != nil {
				b.Fatal(err)
			}
			return kb << 10
		}
	}
	b.Fatalf("no VmRSS for pid %d", pid)
	return 0
}
