//go:build cluster

package e2e

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nines-project/nines"
	"github.com/nines-project/nines/sandbox"
)

// healer is an appliance with remediation on, its Alertmanager routing
// alerts that name a runbook to nines' own webhook, and every alert to a
// test hook.
type healer struct {
	*appliance
	sb   *sandbox.Sandbox
	hook *hook
	cfg  string
	addr string
}

type remediationOpts struct {
	mode          string // auto | dry-run | off
	maxRecoveries int
	positionWait  string // remediation.position_wait; "" leaves the default
	extra         string // top-level sections appended to nines.yaml (ha:)
	drill         bool   // declare the cluster a drill target
	// moreClusters are further entries of clusters:, after the sandbox's.
	moreClusters string
	// noWait: return once started, without waiting to see the sandbox
	// healthy (whose queries count one cluster's nodes).
	noWait bool
	// host runs the appliance in that host namespace of a --netns
	// sandbox (sandbox.Options.Hosts), listening on the host's address.
	host string
	// amCluster is the embedded Alertmanager's cluster: block (gossip),
	// "" for none.
	amCluster string
}

func startHealer(t testing.TB, sb *sandbox.Sandbox, o remediationOpts) *healer {
	t.Helper()
	h := &healer{sb: sb, hook: newHook(t), addr: fmt.Sprintf("127.0.0.1:%d", freePort(t))}
	if o.host != "" {
		// An appliance in one of the sandbox's host namespaces listens
		// on the host's address.
		_, ip, err := sb.Host(o.host)
		if err != nil {
			t.Fatal(err)
		}
		h.addr = fmt.Sprintf("%s:%d", ip, freePort(t))
	}
	dir := t.TempDir()
	am := fmt.Sprintf(`route:
  receiver: test
  group_by: ['...']
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 1h
  routes:
    - receiver: remediator
      matchers: ['remediation!=""']
      group_wait: 0s
      repeat_interval: 10s
      continue: true
    - receiver: test
receivers:
  - name: test
    webhook_configs: [{url: %q, send_resolved: true}]
  - name: remediator
    webhook_configs:
      - url: http://%s/api/v1/alerts/webhook
        send_resolved: true
        http_config:
          authorization: {type: Bearer, credentials_file: %s}
`, h.hook.url, h.addr, sb.WebhookTokenPath())
	if err := os.WriteFile(filepath.Join(dir, "alertmanager.yml"), []byte(am), 0o600); err != nil {
		t.Fatal(err)
	}
	if o.maxRecoveries == 0 {
		o.maxRecoveries = 3
	}
	b := clusterConfig(sb, h.addr, "test", true)
	wait := ""
	if o.positionWait != "" {
		wait = ", position_wait: " + o.positionWait
	}
	fmt.Fprintf(b, "    remediation: {mode: %s, max_recoveries: %d, window: 10m%s}\n", o.mode, o.maxRecoveries, wait)
	if o.drill {
		b.WriteString("    drill: {allowed: true}\n")
	}
	b.WriteString(o.moreClusters)
	if o.amCluster != "" {
		fmt.Fprintf(b, "alertmanager: {embedded: alertmanager.yml, cluster: %s}\n", o.amCluster)
	} else {
		b.WriteString("alertmanager: {embedded: alertmanager.yml}\n")
	}
	b.WriteString(o.extra)
	h.cfg = filepath.Join(dir, "nines.yaml")
	if err := os.WriteFile(h.cfg, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	netns := ""
	if o.host != "" {
		netns, _, _ = sb.Host(o.host)
	}
	h.appliance = startApplianceIn(t, netns, ninesBin, h.addr, h.cfg, sb.TokenPath())
	if o.noWait {
		return h
	}
	switch sb.Kind() {
	case nines.KindReplication:
		h.waitReplicating(t, h.started, 20*time.Second)
	case nines.KindNDB:
		h.waitNDBServing(t, h.started, 20*time.Second)
	default:
		h.waitHealthy(t, h.started, 20*time.Second)
	}
	return h
}

// restart starts a new appliance process on the same config and data.
func (h *healer) restart(t *testing.T) {
	h.appliance = startApplianceOn(t, ninesBin, h.addr, h.cfg, h.sb.TokenPath())
}

// waitSeenBroken waits until nines has seen the drill: not all three
// nodes Synced any more. Without it a check right after a kill would read
// the last healthy samples.
func (h *healer) waitSeenBroken(t *testing.T, since time.Time) {
	t.Helper()
	waitFor(t, since, 10*time.Second, "nines to see the failure", func() bool {
		return len(h.query(`mysql_global_status_wsrep_local_state == 4 and on (cluster, instance) mysql_global_status_wsrep_cluster_size == 3`)) < 3
	})
}

// waitReplicating waits until nines reads every node and sees every
// replica's IO and SQL threads running.
func (h *healer) waitReplicating(t testing.TB, since time.Time, limit time.Duration) time.Duration {
	t.Helper()
	n := len(h.sb.Nodes())
	return waitFor(t, since, limit, "every node up and every replica replicating", func() bool {
		return len(h.query(`mysql_up == 1`)) == n &&
			len(h.query(`mysql_slave_status_slave_io_running == 1 and on (cluster, instance) mysql_slave_status_slave_sql_running == 1`)) == n-1
	})
}

// waitHealthy waits until all three nodes are Synced in a Primary
// component, as nines sees them, and returns how long it took from since.
func (h *healer) waitHealthy(t testing.TB, since time.Time, limit time.Duration) time.Duration {
	t.Helper()
	return waitFor(t, since, limit, "all three nodes Synced and Primary", func() bool {
		return len(h.query(`mysql_global_status_wsrep_local_state == 4 and on (cluster, instance) mysql_global_status_wsrep_cluster_status == 1 and on (cluster, instance) mysql_global_status_wsrep_cluster_size == 3`)) == 3
	})
}

type jobView struct {
	ID        string
	Runbook   string
	Target    string
	State     string
	Reason    string
	DryRun    bool `json:"dry_run"`
	Resumes   int
	CreatedAt time.Time `json:"created_at"`
	Steps     []struct {
		Name     string
		Kind     string
		State    string
		Attempts int
		Error    string
		Output   json.RawMessage
		EndedAt  time.Time `json:"ended_at"`
	}
}

func (h *healer) jobs(t testing.TB) []jobView {
	t.Helper()
	var r struct{ Data []jobView }
	if code, err := h.get("/api/v1/jobs", nil, &r); err != nil || code != 200 {
		return nil
	}
	return r.Data
}

// waitProbeWrites waits until nines has acknowledged at least n probe
// writes through every node since the appliance started.
func waitProbeWrites(t *testing.T, a *appliance, cluster string, nodes, n int) {
	t.Helper()
	waitFor(t, time.Now(), 30*time.Second, fmt.Sprintf("%d acknowledged probe writes through each of %d nodes", n, nodes), func() bool {
		return len(a.query(fmt.Sprintf(`nines_probe_writes_acknowledged_total{cluster=%q} >= %d`, cluster, n))) == nodes
	})
}

// probeLoss checks, on a node, that every probe write nines acknowledged
// through each endpoint is in the cluster: the probe log holds every seq
// from the first to the last acknowledged one.
func probeLoss(t *testing.T, h *healer) {
	t.Helper()
	var eps []string
	for _, n := range h.sb.Nodes() {
		eps = append(eps, n.Address())
	}
	probeLossAt(t, h, eps)
}

// probeLossAt is probeLoss for an appliance that probes endpoints (HAProxy's
// writer listener instead of every node).
func probeLossAt(t *testing.T, h *healer, endpoints []string) {
	t.Helper()
	host, _ := os.Hostname()
	var checkOn string
	for _, n := range h.sb.Nodes() {
		checkOn = n.Name
	}
	db, err := h.sb.DB(checkOn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	// An empty answer, or an endpoint that acknowledged nothing, would make
	// the check below vacuous: every node is probed, and the drills wait
	// for acknowledged writes before they start.
	acked := h.query(fmt.Sprintf(`nines_probe_last_acknowledged_seq{cluster=%q}`, h.sb.ClusterName()))
	got := map[string]bool{}
	for _, s := range acked {
		got[s.Labels["instance"]] = true
	}
	for _, ep := range endpoints {
		if !got[ep] || len(acked) != len(endpoints) {
			t.Fatalf("nines_probe_last_acknowledged_seq: %v, want one series per probed endpoint %v", acked, endpoints)
		}
	}
	for _, s := range acked {
		ep, last := s.Labels["instance"], int64(s.Value)
		if last <= 0 {
			t.Errorf("endpoint %s: no acknowledged probe write (last seq %d): nothing to check for loss", ep, last)
			continue
		}
		var count, minSeq, maxSeq int64
		scan := func(r *sql.Rows) error { return r.Scan(&count, &minSeq, &maxSeq) }
		if err := causalRead(h.sb, db, scan, "SELECT COUNT(*), COALESCE(MIN(seq),0), COALESCE(MAX(seq),0) FROM nines.probe_log WHERE source = ? AND endpoint = ? AND seq <= ?", host, ep, last); err != nil {
			t.Fatalf("probe log on %s: %v", checkOn, err)
		}
		if maxSeq != last || count != maxSeq-minSeq+1 {
			t.Errorf("endpoint %s: acknowledged up to seq %d, the cluster has %d rows from %d to %d: acknowledged writes lost", ep, last, count, minSeq, maxSeq)
		} else {
			t.Logf("measured: endpoint %s: all %d acknowledged probe writes (seq %d..%d) present on %s", ep, count, minSeq, maxSeq, checkOn)
		}
	}
}

func kill(t testing.TB, sb *sandbox.Sandbox, names ...string) time.Time {
	t.Helper()
	pids := map[string]int{}
	for _, n := range names {
		pid, err := sb.Pid(n)
		if err != nil || pid <= 0 {
			t.Fatalf("pid of %s: %d %v", n, pid, err)
		}
		pids[n] = pid
	}
	at := time.Now()
	for n, pid := range pids {
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			t.Fatalf("kill %s: %v", n, err)
		}
	}
	return at
}

func nodeNames(sb *sandbox.Sandbox) []string {
	var out []string
	for _, n := range sb.Nodes() {
		out = append(out, n.Name)
	}
	return out
}

// TestRejoinAfterKill: kill -9 of one node is seen within 3 s
// (killDetected); the remediator rejoins it by IST, automatically, within
// 20 s; no acknowledged write is lost.
func TestRejoinAfterKill(t *testing.T) {
	sb := freshGalera(t, "rejoindrill")
	h := startHealer(t, sb, remediationOpts{mode: "auto"})
	waitProbeWrites(t, h.appliance, sb.ClusterName(), len(sb.Nodes()), 3) // acknowledged writes to lose, before the drill
	victim := sb.Nodes()[1]
	logBefore, _ := os.ReadFile(victim.ErrorLog)
	chk, w := startSplitBrainChecker(t, sb), startDrillWriter(t, sb)
	w.waitAcked(t, 20, 10*time.Second)

	killed := killDetected(t, h.appliance, sb, victim)
	h.waitSeenBroken(t, killed)
	took := h.waitHealthy(t, killed, 20*time.Second)
	t.Logf("measured: %s Synced again %s after kill -9 (bound 20s, goal 8s)", victim.Name, took.Round(time.Millisecond))

	logAfter, _ := os.ReadFile(victim.ErrorLog)
	joined := string(logAfter[len(logBefore):])
	if !strings.Contains(joined, "IST") || strings.Contains(joined, "Proceeding with SST") {
		t.Errorf("%s did not rejoin by IST; its error log since the kill:\n%s", victim.Name, tail(joined, 3000))
	}
	var jobs []jobView
	waitFor(t, time.Now(), 15*time.Second, "the rejoin job to end", func() bool {
		jobs = h.jobs(t)
		return len(jobs) > 0 && jobs[0].State != "running" && jobs[0].State != "pending"
	})
	if jobs[0].Runbook != "galera-node-rejoin" || jobs[0].State != "succeeded" || jobs[0].Target != victim.Address() {
		t.Errorf("job log: %+v", jobs)
	}
	// The job log filtered as the console asks for it.
	for _, c := range []struct {
		params url.Values
		code   int
		n      int
	}{
		{url.Values{"cluster": {sb.ClusterName()}, "limit": {"1"}}, 200, 1},
		{url.Values{"cluster": {"no-such-cluster"}}, 200, 0},
		{url.Values{"limit": {"0"}}, 400, 0},
	} {
		var r struct{ Data []jobView }
		code, err := h.get("/api/v1/jobs", c.params, &r)
		if c.code != http.StatusOK && code == c.code {
			err = nil // the refusal asked for: get returns it as an error
		}
		if err != nil || code != c.code || len(r.Data) != c.n || c.n == 1 && r.Data[0].ID != jobs[0].ID {
			t.Errorf("GET /api/v1/jobs?%s: %d %v, %d jobs; want %d, %d (the newest)", c.params.Encode(), code, err, len(r.Data), c.code, c.n)
		}
	}
	time.Sleep(2 * time.Second)
	probeLoss(t, h)
	chk.check(t)
	w.check(t)
}

// TestQuorumRecoveryTwoKilled: kill -9 two of three: Primary again and all
// three Synced within 30 s.
func TestQuorumRecoveryTwoKilled(t *testing.T) {
	sb := freshGalera(t, "twodrill")
	h := startHealer(t, sb, remediationOpts{mode: "auto"})
	waitProbeWrites(t, h.appliance, sb.ClusterName(), len(sb.Nodes()), 3)
	names := nodeNames(sb)
	uuidBefore := h.query(`nines_galera_state_info`)[0].Labels["cluster_state_uuid"]
	pidsBefore := map[string]int{}
	for _, n := range names {
		pidsBefore[n], _ = sb.Pid(n)
	}
	chk, w := startSplitBrainChecker(t, sb), startDrillWriter(t, sb)
	w.waitAcked(t, 20, 10*time.Second)
	killed := kill(t, sb, names[1], names[2])
	h.waitSeenBroken(t, killed)
	took := h.waitHealthy(t, killed, 30*time.Second)
	t.Logf("measured: cluster Primary with 3 Synced nodes %s after kill -9 of 2 of 3 (bound 30s, goal 10s)", took.Round(time.Millisecond))
	waitFor(t, time.Now(), 15*time.Second, "a succeeded quorum recovery job", func() bool {
		for _, j := range h.jobs(t) {
			if j.Runbook == "galera-quorum-recovery" && j.State == "succeeded" {
				return true
			}
		}
		return false
	})
	// Waiting for Synced proved the cluster healthy; what is new: the two
	// killed nodes run as new processes, the survivor was left alone, and
	// the cluster kept its history (no new UUID).
	for i, n := range names {
		pid, _ := sb.Pid(n)
		if restarted := pid != pidsBefore[n]; pid <= 0 || restarted != (i > 0) {
			t.Errorf("%s: pid %d, was %d (killed: %v)", n, pid, pidsBefore[n], i > 0)
		}
	}
	if info := h.query(`nines_galera_state_info`); len(info) != len(names) {
		t.Errorf("nines_galera_state_info: %d series, want %d", len(info), len(names))
	} else {
		for _, s := range info {
			if s.Labels["cluster_state_uuid"] != uuidBefore {
				t.Errorf("%s has cluster UUID %s, was %s: a new history", s.Labels["instance"], s.Labels["cluster_state_uuid"], uuidBefore)
			}
		}
	}
	for _, j := range h.jobs(t) {
		t.Logf("job %s %s %s %s", j.ID, j.Runbook, j.State, j.Reason)
	}
	time.Sleep(2 * time.Second)
	probeLoss(t, h)
	chk.check(t)
	w.check(t)
}

// TestWholeClusterCrash: kill -9 all three; recovered from the most
// advanced node with the cluster UUID kept, all Synced within 60 s.
// TestQuorumRecoveryApplianceKilledAtEachStep kills the appliance in the
// middle of such a recovery.
func TestWholeClusterCrash(t *testing.T) {
	sb := freshGalera(t, "crashdrill")
	h := startHealer(t, sb, remediationOpts{mode: "auto"})
	waitProbeWrites(t, h.appliance, sb.ClusterName(), len(sb.Nodes()), 3)
	uuidBefore := h.query(`nines_galera_state_info`)[0].Labels["cluster_state_uuid"]
	chk, w := startSplitBrainChecker(t, sb), startDrillWriter(t, sb)
	w.waitAcked(t, 20, 10*time.Second)

	killed := kill(t, sb, nodeNames(sb)...)
	h.waitSeenBroken(t, killed)
	took := h.waitHealthy(t, killed, 60*time.Second)
	t.Logf("measured: whole-cluster crash recovered, 3 Synced, %s after kill -9 of all three (bound 60s, goal 15s)", took.Round(time.Millisecond))
	for _, s := range h.query(`nines_galera_state_info`) {
		if s.Labels["cluster_state_uuid"] != uuidBefore {
			t.Errorf("%s has cluster UUID %s, was %s: a new history", s.Labels["instance"], s.Labels["cluster_state_uuid"], uuidBefore)
		}
	}
	time.Sleep(2 * time.Second)
	probeLoss(t, h)
	chk.check(t)
	w.check(t)
}

// TestDryRunAndCrashLoop: in dry-run the plan is recorded and no node is
// touched; then in auto mode a node made to crash again after each rejoin
// stops being repaired after N recoveries, and an alert says so.
func TestDryRunAndCrashLoop(t *testing.T) {
	sb := freshGalera(t, "loopdrill")
	victim := sb.Nodes()[2]

	dry := startHealer(t, sb, remediationOpts{mode: "dry-run"})
	kill(t, sb, victim.Name)
	waitFor(t, time.Now(), 20*time.Second, "a planned job", func() bool {
		js := dry.jobs(t)
		return len(js) > 0 && js[0].State == "planned"
	})
	time.Sleep(3 * time.Second)
	if pid, _ := sb.Pid(victim.Name); pid > 0 {
		t.Fatalf("dry run started %s (pid %d)", victim.Name, pid)
	}
	j := dry.jobs(t)[0]
	planned := 0
	for _, s := range j.Steps {
		if s.State == "planned" {
			planned++
		}
	}
	t.Logf("dry-run job %s: %d steps planned, none run", j.ID, planned)
	if !j.DryRun || planned == 0 {
		t.Errorf("dry-run job %+v", j)
	}
	dry.stop()

	// Auto, at most 2 recoveries per window: the third crash is left alone.
	h := startHealer(t, sb, remediationOpts{mode: "auto", maxRecoveries: 2})
	for i := 1; i <= 2; i++ {
		h.waitHealthy(t, time.Now(), 30*time.Second)
		time.Sleep(2 * time.Second) // let the alert resolve before the next crash
		h.waitSeenBroken(t, kill(t, sb, victim.Name))
		t.Logf("crash %d of %s", i+1, victim.Name)
	}
	waitFor(t, time.Now(), 30*time.Second, "NinesRemediationHalted at the webhook", func() bool {
		_, ok := h.hook.first("firing", named("NinesRemediationHalted"))
		return ok
	})
	time.Sleep(3 * time.Second)
	if pid, _ := sb.Pid(victim.Name); pid > 0 {
		t.Errorf("%s was started again after automation halted", victim.Name)
	}
	var st struct {
		Data []struct {
			Cluster, Halted string
		}
	}
	if _, err := h.get("/api/v1/remediation", nil, &st); err != nil || len(st.Data) != 1 || st.Data[0].Halted == "" {
		t.Errorf("remediation status: %+v %v", st, err)
	} else {
		t.Logf("remediation status says: %s", st.Data[0].Halted)
	}
}

// TestWebhookAuthAndStaleAlert: the webhook refuses callers without the
// token; an authenticated alert whose condition is not true on the live
// cluster gives an aborted job, and no node is touched.
func TestWebhookAuthAndStaleAlert(t *testing.T) {
	sb := sharedGalera(t)
	h := startHealer(t, sb, remediationOpts{mode: "auto"})
	target := sb.Nodes()[0]
	pidBefore, _ := sb.Pid(target.Name)
	body, _ := json.Marshal(map[string]any{"version": "4", "status": "firing", "alerts": []map[string]any{{
		"status": "firing", "fingerprint": "e2e-stale", "startsAt": time.Now().Format(time.RFC3339Nano),
		"labels": map[string]string{"alertname": "GaleraNodeDown", "cluster": sb.ClusterName(), "instance": target.Address(), "remediation": "galera-node-rejoin", "severity": "warning"},
	}}})
	post := func(token string) int {
		req, _ := http.NewRequestWithContext(context.Background(), http.MethodPost, h.base+"/api/v1/alerts/webhook", bytes.NewReader(body))
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := post(""); code != 401 {
		t.Errorf("webhook without token: %d, want 401", code)
	}
	if code := post("not-the-token-not-the-token"); code != 401 {
		t.Errorf("webhook with a wrong token: %d, want 401", code)
	}
	if len(h.jobs(t)) != 0 {
		t.Fatalf("an unauthenticated call created a job: %+v", h.jobs(t))
	}
	hook, err := os.ReadFile(sb.WebhookTokenPath())
	if err != nil {
		t.Fatal(err)
	}
	if code := post(strings.TrimSpace(string(hook))); code != 200 {
		t.Fatalf("webhook with the webhook token: %d", code)
	}
	waitFor(t, time.Now(), 10*time.Second, "the job to end", func() bool {
		js := h.jobs(t)
		return len(js) == 1 && js[0].State != "running" && js[0].State != "pending"
	})
	j := h.jobs(t)[0]
	if j.State != "aborted" || !strings.Contains(j.Reason, "running") {
		t.Errorf("job %s: %s (%s), want aborted because the node runs", j.ID, j.State, j.Reason)
	}
	for _, s := range j.Steps {
		if s.Kind == "act" {
			t.Errorf("an act step was recorded: %+v", s)
		}
	}
	if pid, _ := sb.Pid(target.Name); pid != pidBefore {
		t.Errorf("%s pid changed from %d to %d", target.Name, pidBefore, pid)
	}
	t.Logf("stale alert: job %s %s: %s", j.ID, j.State, j.Reason)
	// The same notification again never starts a second job.
	post(h.token)
	time.Sleep(2 * time.Second)
	if n := len(h.jobs(t)); n != 1 {
		t.Errorf("a repeated notification started another job: %d jobs", n)
	}
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[len(s)-n:]
}
