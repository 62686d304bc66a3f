//go:build cluster

package e2e

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nines-project/nines/agent"
	"github.com/nines-project/nines/internal/testbin"
	"github.com/nines-project/nines/internal/testpki"
	"github.com/nines-project/nines/sandbox"
)

// haLease is the appliances' etcd lease in the HA drills; the issue's
// bound for a takeover is 10 s.
const (
	haLease    = 5 * time.Second
	haTakeover = 10 * time.Second
)

// haTeam is two appliances ("a", "b") on one real etcd, both watching and
// able to repair the same Galera sandbox.
type haTeam struct {
	sb   *sandbox.Sandbox
	etcd *testbin.Etcd
	apps map[string]*healer
}

func startHATeam(t *testing.T, sb *sandbox.Sandbox) *haTeam {
	t.Helper()
	freePort(t) // makes listenPorts, the e2e port block etcd takes its ports from
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	e, err := testbin.StartEtcd(ctx, listenPorts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Stop)
	tm := &haTeam{sb: sb, etcd: e, apps: map[string]*healer{}}
	for _, name := range []string{"a", "b"} {
		tm.apps[name] = startHealer(t, sb, remediationOpts{mode: "auto", maxRecoveries: 10, drill: true,
			extra: fmt.Sprintf("ha: {name: %s, etcd: [%q], lease: %s}\n", name, e.URL, haLease)})
	}
	return tm
}

// leader waits until exactly one of the appliances in live says it leads
// the cluster (nines_ha_leader 1) and returns its name.
func (tm *haTeam) leader(t *testing.T, since time.Time, limit time.Duration, live ...string) (string, time.Duration) {
	t.Helper()
	var who string
	took := waitFor(t, since, limit, fmt.Sprintf("one of %v to lead %s", live, tm.sb.ClusterName()), func() bool {
		var leaders []string
		for _, n := range live {
			if len(tm.apps[n].query(fmt.Sprintf(`nines_ha_leader{cluster=%q} == 1`, tm.sb.ClusterName()))) == 1 {
				leaders = append(leaders, n)
			}
		}
		if len(leaders) > 1 {
			t.Fatalf("two appliances lead %s: %v", tm.sb.ClusterName(), leaders)
		}
		if len(leaders) == 1 {
			who = leaders[0]
		}
		return who != ""
	})
	return who, took
}

func other(name string) string {
	if name == "a" {
		return "b"
	}
	return "a"
}

// tokenOf is the latest fencing token the appliance's log says it won.
func tokenOf(t *testing.T, h *healer, cluster string) int64 {
	t.Helper()
	re := regexp.MustCompile(`msg="leads cluster".* cluster=` + regexp.QuoteMeta(cluster) + ` token=(\d+)`)
	var tok int64
	for _, line := range strings.Split(h.output.String(), "\n") {
		if m := re.FindStringSubmatch(line); m != nil {
			tok, _ = strconv.ParseInt(m[1], 10, 64)
		}
	}
	if tok == 0 {
		t.Fatalf("no \"leads cluster\" line for %s in the appliance's log", cluster)
	}
	return tok
}

// agentOf is a client of node's agent with the sandbox's agent token.
func agentOf(t *testing.T, sb *sandbox.Sandbox, node string) *agent.Client {
	t.Helper()
	n, err := sb.Node(node)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := os.ReadFile(sb.AgentTokenPath())
	if err != nil {
		t.Fatal(err)
	}
	return agent.NewClient(n.AgentURL(), strings.TrimSpace(string(tok)), nil)
}

// agentCounter reads one series of the node agent's /metrics.
func agentCounter(t *testing.T, sb *sandbox.Sandbox, node, series string) float64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	text, err := agentOf(t, sb, node).Metrics(ctx)
	if err != nil {
		t.Fatalf("metrics of %s's agent: %v", node, err)
	}
	for _, line := range strings.Split(text, "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err != nil {
				t.Fatalf("%s: %q", series, line)
			}
			return f
		}
	}
	return 0
}

const agentStartsOK = `nines_agent_actions_total{action="start",result="ok"}`

// rejoinJobs lists the appliance's galera-node-rejoin jobs on target
// created after since.
func rejoinJobs(t *testing.T, h *healer, target string, since time.Time) []jobView {
	var out []jobView
	for _, j := range h.jobs(t) {
		if j.Runbook == "galera-node-rejoin" && j.Target == target && j.CreatedAt.After(since) {
			out = append(out, j)
		}
	}
	return out
}

// Acceptance (issue 15): two appliances and a 3-node Galera sandbox:
// kill -9 the leader, then a Galera node: the other appliance takes the
// lease within 10 s and rejoins the node; the rejoin runs once.
func TestHALeaderKilledThenNodeKilled(t *testing.T) {
	sb := freshGalera(t, "hakill")
	tm := startHATeam(t, sb)
	leader, took := tm.leader(t, time.Now(), 20*time.Second, "a", "b")
	t.Logf("measured: %s leads %s, %s after both ran", leader, sb.ClusterName(), took.Round(time.Millisecond))
	follower := other(leader)
	// A drill is the leader's to run: the follower refuses it.
	f := tm.apps[follower]
	out, err := exec.Command(ninesBin, "drill", "--config", f.cfg, "--api", f.base, "--cluster", sb.ClusterName(), "--scenario", "node-crash").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "does not lead cluster "+sb.ClusterName()) {
		t.Errorf("nines drill on the follower %s: %v\n%s\nwant refused: it does not lead", follower, err, out)
	}
	w := startDrillWriter(t, sb)
	w.waitAcked(t, 20, 10*time.Second)

	victim := sb.Nodes()[2]
	startsBefore := agentCounter(t, sb, victim.Name, agentStartsOK)
	before := time.Now()
	tm.apps[leader].kill()
	killed := time.Now()
	kill(t, sb, victim.Name)

	got, took := tm.leader(t, killed, haTakeover, follower)
	if got != follower {
		t.Fatalf("leader after the kill: %s, want %s", got, follower)
	}
	t.Logf("measured: %s killed with -9; %s took the lease after %s (bound %s, lease %s)", leader, follower, took.Round(time.Millisecond), haTakeover, haLease)

	h := tm.apps[follower]
	h.waitSeenBroken(t, killed)
	healed := h.waitHealthy(t, killed, 90*time.Second)
	t.Logf("measured: node %s killed; all three Synced again %s after", victim.Name, healed.Round(time.Millisecond))
	var jobs []jobView
	waitFor(t, killed, 30*time.Second, "the rejoin job to end", func() bool {
		jobs = rejoinJobs(t, h, victim.Address(), before)
		return len(jobs) > 0 && jobs[0].State != "running" && jobs[0].State != "pending"
	})
	if len(jobs) != 1 || jobs[0].State != "succeeded" {
		t.Errorf("rejoin jobs on %s: %+v, want one that succeeded", follower, jobs)
	}
	if n := agentCounter(t, sb, victim.Name, agentStartsOK) - startsBefore; n != 1 {
		t.Errorf("the agent of %s started its server %v times, want once", victim.Name, n)
	}
	w.check(t)

	// The new leader runs a drill. node-crash kills the last node, the
	// victim above, whose agent saw the leader's token when it was
	// rejoined and so refuses a kill without one: the drill ending done
	// says its kill carried the token.
	refused := func() float64 {
		var n float64
		for _, node := range sb.Nodes() {
			n += agentCounter(t, sb, node.Name, fmt.Sprintf(`nines_agent_fencing_refused_total{cluster=%q}`, sb.ClusterName()))
		}
		return n
	}
	refusedBefore := refused()
	if _, out := runDrill(t, h, "node-crash", 20*time.Second); !strings.Contains(out, "killing "+victim.Address()+"\n") {
		t.Errorf("the drill did not kill %s:\n%s", victim.Address(), out)
	}
	if n := refused() - refusedBefore; n != 0 {
		t.Errorf("the agents refused %v fenced requests during the drill on the leader, want 0", n)
	}
}

// Acceptance (issue 15): the leader frozen with SIGSTOP past its lease, a
// node killed, the leader continued: the new leader repairs; the old
// one's late act steps are refused by the agents (fencing), nothing is
// done twice; 0 acknowledged writes lost.
func TestHALeaderFrozenPastItsLease(t *testing.T) {
	sb := freshGalera(t, "hastop")
	tm := startHATeam(t, sb)
	leader, _ := tm.leader(t, time.Now(), 20*time.Second, "a", "b")
	follower := other(leader)
	oldToken := tokenOf(t, tm.apps[leader], sb.ClusterName())
	w := startDrillWriter(t, sb)
	w.waitAcked(t, 20, 10*time.Second)

	victim := sb.Nodes()[1]
	startsBefore := agentCounter(t, sb, victim.Name, agentStartsOK)
	before := time.Now()
	old := tm.apps[leader]
	if err := old.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	frozen := time.Now()
	continued := false
	cont := func() {
		if !continued {
			continued = true
			_ = old.cmd.Process.Signal(syscall.SIGCONT)
		}
	}
	defer cont()

	_, took := tm.leader(t, frozen, haTakeover, follower)
	t.Logf("measured: %s frozen; %s took the lease after %s (bound %s, lease %s)", leader, follower, took.Round(time.Millisecond), haTakeover, haLease)
	killed := kill(t, sb, victim.Name)
	h := tm.apps[follower]
	h.waitSeenBroken(t, killed)
	healed := h.waitHealthy(t, killed, 90*time.Second)
	t.Logf("measured: node %s killed while %s was frozen; all three Synced again %s after", victim.Name, leader, healed.Round(time.Millisecond))
	newToken := tokenOf(t, h, sb.ClusterName())
	if newToken <= oldToken {
		t.Fatalf("new leader's token %d not above the frozen one's %d", newToken, oldToken)
	}

	// The frozen leader continues: it lost its lease, so it must not act;
	// whatever it still sends with its old token the agents refuse.
	cont()
	time.Sleep(haLease)
	if len(old.query(fmt.Sprintf(`nines_ha_leader{cluster=%q} == 1`, sb.ClusterName()))) != 0 {
		t.Errorf("%s still says it leads after it was continued", leader)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := agentOf(t, sb, victim.Name).Stop(agent.WithFence(ctx, sb.ClusterName(), oldToken), agent.StopRequest{})
	if !agent.IsFenced(err) {
		t.Fatalf("a stop with the deposed leader's token %d: %v, want refused by fencing", oldToken, err)
	}
	t.Logf("measured: the agent of %s refuses the deposed leader's token %d (highest %d): %v", victim.Name, oldToken, newToken, err)
	refused := agentCounter(t, sb, victim.Name, fmt.Sprintf(`nines_agent_fencing_refused_total{cluster=%q}`, sb.ClusterName()))
	t.Logf("measured: fencing refusals on %s's agent: %v (the deposed leader's late requests and the check above)", victim.Name, refused)

	var all []jobView
	for _, a := range tm.apps {
		for _, j := range rejoinJobs(t, a, victim.Address(), before) {
			if j.State == "succeeded" {
				all = append(all, j)
			}
		}
	}
	if len(all) != 1 {
		t.Errorf("succeeded rejoin jobs of %s across both appliances: %d, want 1: %+v", victim.Name, len(all), all)
	}
	if n := agentCounter(t, sb, victim.Name, agentStartsOK) - startsBefore; n != 1 {
		t.Errorf("the agent of %s started its server %v times, want once", victim.Name, n)
	}
	w.check(t)
}

// Acceptance (issue 15): both appliances cut off from etcd: neither acts,
// and both page that remediation is paused. etcd is frozen (SIGSTOP): to
// the appliances it is unreachable.
func TestHAEtcdUnreachableNobodyActs(t *testing.T) {
	sb := freshGalera(t, "hanoetcd")
	tm := startHATeam(t, sb)
	tm.leader(t, time.Now(), 20*time.Second, "a", "b")
	w := startDrillWriter(t, sb)
	w.waitAcked(t, 20, 10*time.Second)

	if err := tm.etcd.Pause(); err != nil {
		t.Fatal(err)
	}
	resumed := false
	defer func() {
		if !resumed {
			_ = tm.etcd.Resume()
		}
	}()
	cut := time.Now()
	for _, n := range []string{"a", "b"} {
		h := tm.apps[n]
		took := waitFor(t, cut, 2*haLease, n+" to lead nothing", func() bool {
			return len(h.query(`nines_ha_leader == 1`)) == 0 && len(h.query(`nines_ha_etcd_up == 0`)) == 1
		})
		t.Logf("measured: %s gave up leading %s after etcd was cut off (lease %s)", n, took.Round(time.Millisecond), haLease)
	}
	victim := sb.Nodes()[2]
	startsBefore := agentCounter(t, sb, victim.Name, agentStartsOK)
	killed := kill(t, sb, victim.Name)
	for _, n := range []string{"a", "b"} {
		h := tm.apps[n]
		took := waitFor(t, cut, 60*time.Second, n+" to page NinesRemediationPausedNoEtcd", func() bool {
			return firing(h, "NinesRemediationPausedNoEtcd")
		})
		t.Logf("measured: %s pages NinesRemediationPausedNoEtcd %s after etcd was cut off", n, took.Round(time.Millisecond))
	}
	// The node stays down: nobody may act. 15 s is three leases and
	// several alert notifications to both remediators.
	time.Sleep(15*time.Second - time.Since(killed))
	if n := agentCounter(t, sb, victim.Name, agentStartsOK) - startsBefore; n != 0 {
		t.Fatalf("the agent of %s started its server %v times while no appliance reached etcd, want 0", victim.Name, n)
	}
	for n, h := range tm.apps {
		if js := rejoinJobs(t, h, victim.Address(), cut); len(js) != 0 {
			t.Errorf("%s started rejoin jobs without etcd: %+v", n, js)
		}
	}

	// etcd back: one of them leads again and repairs.
	if err := tm.etcd.Resume(); err != nil {
		t.Fatal(err)
	}
	resumed = true
	back := time.Now()
	leader, took := tm.leader(t, back, haTakeover, "a", "b")
	t.Logf("measured: etcd back; %s leads after %s", leader, took.Round(time.Millisecond))
	// Still down when etcd came back: nobody repaired it meanwhile.
	tm.apps[leader].waitSeenBroken(t, time.Now())
	healed := tm.apps[leader].waitHealthy(t, back, 90*time.Second)
	t.Logf("measured: node %s rejoined %s after etcd came back", victim.Name, healed.Round(time.Millisecond))
	w.check(t)
}

// firing reports whether the appliance's rules fire alertname.
func firing(h *healer, alertname string) bool {
	var r struct {
		Data struct {
			Alerts []struct {
				Labels map[string]string
				State  string
			}
		}
	}
	if code, err := h.get("/api/v1/alerts", nil, &r); err != nil || code != http.StatusOK {
		return false
	}
	for _, a := range r.Data.Alerts {
		if a.Labels["alertname"] == alertname && a.State == "firing" {
			return true
		}
	}
	return false
}

// The leader frozen in the middle of its rejoin job, right after its
// first act step: the other appliance takes the lease, resumes the job
// from the step the team's log holds, and finishes it; continued, the old
// leader does nothing more. Each act step ran once in all.
func TestHALeaderFrozenMidJob(t *testing.T) {
	sb := freshGalera(t, "hamidjob")
	tm := startHATeam(t, sb)
	leader, _ := tm.leader(t, time.Now(), 20*time.Second, "a", "b")
	follower := other(leader)
	w := startDrillWriter(t, sb)
	w.waitAcked(t, 20, 10*time.Second)

	victim := sb.Nodes()[2]
	const recoversOK = `nines_agent_actions_total{action="recover",result="ok"}`
	startsBefore := agentCounter(t, sb, victim.Name, agentStartsOK)
	recoversBefore := agentCounter(t, sb, victim.Name, recoversOK)
	old := tm.apps[leader]
	before := time.Now()
	killed := kill(t, sb, victim.Name)
	var jobID string
	waitFor(t, killed, 30*time.Second, leader+"'s rejoin job to finish its first act step", func() bool {
		for _, j := range rejoinJobs(t, old, victim.Address(), before) {
			for _, s := range j.Steps {
				if s.Kind == "act" && s.State == "done" {
					jobID = j.ID
					return true
				}
			}
		}
		return false
	})
	if err := old.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	frozen := time.Now()
	continued := false
	cont := func() {
		if !continued {
			continued = true
			_ = old.cmd.Process.Signal(syscall.SIGCONT)
		}
	}
	defer cont()
	t.Logf("measured: %s frozen %s after the kill, its job %s past its first act step", leader, frozen.Sub(killed).Round(time.Millisecond), jobID)

	_, took := tm.leader(t, frozen, haTakeover, follower)
	t.Logf("measured: %s took the lease %s after %s froze (bound %s, lease %s)", follower, took.Round(time.Millisecond), leader, haTakeover, haLease)
	h := tm.apps[follower]
	var resumed jobView
	waitFor(t, frozen, 60*time.Second, follower+" to finish job "+jobID, func() bool {
		for _, j := range h.jobs(t) {
			if j.ID == jobID && j.State != "running" && j.State != "pending" {
				resumed = j
				return true
			}
		}
		return false
	})
	if resumed.State != "succeeded" || resumed.Resumes != 1 {
		t.Errorf("job %s on %s: state %s, resumes %d; want succeeded after one resume", jobID, follower, resumed.State, resumed.Resumes)
	}
	healed := h.waitHealthy(t, killed, 90*time.Second)
	t.Logf("measured: node %s Synced again %s after the kill", victim.Name, healed.Round(time.Millisecond))

	cont()
	time.Sleep(2 * haLease)
	if n := agentCounter(t, sb, victim.Name, agentStartsOK) - startsBefore; n != 1 {
		t.Errorf("the agent of %s started its server %v times, want once", victim.Name, n)
	}
	if n := agentCounter(t, sb, victim.Name, recoversOK) - recoversBefore; n != 1 {
		t.Errorf("the agent of %s recovered its position %v times, want once", victim.Name, n)
	}
	for _, j := range rejoinJobs(t, old, victim.Address(), before) {
		if j.ID != jobID {
			t.Errorf("%s started another rejoin job after it was continued: %+v", leader, j)
		}
	}
	w.check(t)
}

// Acceptance (issue 15): the two appliances cut off from each other but
// both reaching etcd: one acts. Each appliance runs in a network namespace
// of its own on the sandbox's bridge (sandbox hosts a and b), etcd listens
// on the bridge's address over https with client certificates, and their
// Alertmanagers gossip over mutual TLS. With the link between the two cut, the gossip sees each alone, but
// etcd still grants the cluster to one of them: a node killed then is
// rejoined once, by that one; both go on monitoring; no acknowledged write
// is lost. A watcher polls both appliances' nines_ha_leader through the
// drill: never two leaders at one instant.
func TestHAAppliancesCutOffFromEachOther(t *testing.T) {
	sb := startSandbox(t, sandbox.Options{ClusterName: "hasplit", Netns: true, Hosts: []string{"a", "b"}})
	freePort(t) // makes listenPorts, the e2e port block etcd takes its ports from
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// One CA for the gossip and etcd: each appliance's certificate serves
	// its gossip and is its client certificate to etcd, which sits across
	// the bridge and so is reached over https only.
	ca := testpki.NewCA(t, "hasplit CA")
	dir := t.TempDir()
	caFile := testpki.Write(t, filepath.Join(dir, "ca.crt"), ca.PEM())
	ep := ca.PeerAt(t, "etcd", sb.BridgeIP())
	e, err := testbin.StartEtcdTLS(ctx, listenPorts, sb.BridgeIP(), testbin.EtcdTLS{
		CertFile: testpki.Write(t, filepath.Join(dir, "etcd.crt"), ep.CertPEM),
		KeyFile:  testpki.Write(t, filepath.Join(dir, "etcd.key"), ep.KeyPEM),
		CAFile:   caFile, Client: ep.TLS})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Stop)
	ips := map[string]string{}
	for _, n := range []string{"a", "b"} {
		if _, ips[n], err = sb.Host(n); err != nil {
			t.Fatal(err)
		}
	}
	gossip := freePort(t) // the same port on both hosts' own addresses
	tm := &haTeam{sb: sb, etcd: e, apps: map[string]*healer{}}
	for _, n := range []string{"a", "b"} {
		pair := ca.PeerAt(t, n, ips[n])
		cert := testpki.Write(t, filepath.Join(dir, n+".crt"), pair.CertPEM)
		key := testpki.Write(t, filepath.Join(dir, n+".key"), pair.KeyPEM)
		am := fmt.Sprintf(`{listen: "%s:%d", peers: ["%s:%d"], name: %s, peer_timeout: 2s, tls: {cert_file: %s, key_file: %s, ca_file: %s}}`,
			ips[n], gossip, ips[other(n)], gossip, n, cert, key, caFile)
		tm.apps[n] = startHealer(t, sb, remediationOpts{mode: "auto", maxRecoveries: 10, host: n, amCluster: am,
			extra: fmt.Sprintf("ha: {name: %s, etcd: [%q], lease: %s, tls: {ca_file: %s, cert_file: %s, key_file: %s}}\n", n, e.URL, haLease, caFile, cert, key)})
	}
	peers := func(h *healer) int {
		var st struct {
			Cluster struct {
				Status string `json:"status"`
				Peers  []struct {
					Name string `json:"name"`
				} `json:"peers"`
			} `json:"cluster"`
		}
		if code, err := h.get("/alertmanager/api/v2/status", nil, &st); err != nil || code != http.StatusOK {
			return -1
		}
		return len(st.Cluster.Peers)
	}
	waitFor(t, time.Now(), 30*time.Second, "the two Alertmanagers meshed across the bridge", func() bool {
		return peers(tm.apps["a"]) == 2 && peers(tm.apps["b"]) == 2
	})
	leader, _ := tm.leader(t, time.Now(), 20*time.Second, "a", "b")
	follower := other(leader)

	// The invariant, checked while the drill runs.
	var mu sync.Mutex
	var polls, both int
	stop := make(chan struct{})
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		for {
			select {
			case <-stop:
				return
			case <-time.After(200 * time.Millisecond):
			}
			q := fmt.Sprintf(`nines_ha_leader{cluster=%q} == 1`, sb.ClusterName())
			la, lb := len(tm.apps["a"].query(q)), len(tm.apps["b"].query(q))
			mu.Lock()
			polls++
			if la == 1 && lb == 1 {
				both++
			}
			mu.Unlock()
		}
	}()
	w := startDrillWriter(t, sb)
	w.waitAcked(t, 20, 10*time.Second)

	cutAt := time.Now()
	cut(t, sb, "a", "b")
	took := waitFor(t, cutAt, 60*time.Second, "each Alertmanager to see itself alone", func() bool {
		return peers(tm.apps["a"]) == 1 && peers(tm.apps["b"]) == 1
	})
	t.Logf("measured: the gossip saw the cut after %s", took.Round(time.Millisecond))
	for _, n := range []string{"a", "b"} {
		if up := tm.apps[n].query(`nines_ha_etcd_up == 1`); len(up) != 1 {
			t.Errorf("%s does not reach etcd across the cut: %v", n, up)
		}
	}
	if got, _ := tm.leader(t, time.Now(), 10*time.Second, "a", "b"); got != leader {
		t.Errorf("leader after the cut: %s, want %s still (etcd decides, and both reach it)", got, leader)
	}

	victim := sb.Nodes()[2]
	startsBefore := agentCounter(t, sb, victim.Name, agentStartsOK)
	before := time.Now()
	killed := kill(t, sb, victim.Name)
	for _, n := range []string{"a", "b"} {
		took := waitFor(t, killed, 10*time.Second, n+" to see "+victim.Name+" down", func() bool {
			return len(tm.apps[n].query(fmt.Sprintf(`mysql_up{instance=%q} == 0`, victim.Address()))) == 1
		})
		t.Logf("measured: %s saw %s down %s after the kill", n, victim.Name, took.Round(time.Millisecond))
	}
	healed := tm.apps[leader].waitHealthy(t, killed, 60*time.Second)
	t.Logf("measured: %s Synced again %s after the kill, repaired with the appliances cut off from each other", victim.Name, healed.Round(time.Millisecond))
	time.Sleep(5 * time.Second) // room for a second actor, which must not come
	if n := agentCounter(t, sb, victim.Name, agentStartsOK) - startsBefore; n != 1 {
		t.Errorf("the agent of %s started its server %v times, want once", victim.Name, n)
	}
	if jobs := rejoinJobs(t, tm.apps[leader], victim.Address(), before); len(jobs) == 0 || jobs[0].State != "succeeded" {
		t.Errorf("rejoin jobs on the leader %s: %+v, want one that succeeded", leader, jobs)
	}
	for _, j := range rejoinJobs(t, tm.apps[follower], victim.Address(), before) {
		for _, s := range j.Steps {
			if s.Kind == "act" && s.State == "done" && strings.HasPrefix(s.Name, "start:") {
				t.Errorf("the follower %s started %s too: job %s step %s", follower, victim.Name, j.ID, s.Name)
			}
		}
	}
	w.check(t)
	mended := mend(t, sb, "a", "b")
	// The gossip meshes again (the cluster package's refresh joins a
	// configured peer that is not a live member every 15 s).
	took = waitFor(t, mended, 40*time.Second, "the two Alertmanagers meshed again after the mend", func() bool {
		return peers(tm.apps["a"]) == 2 && peers(tm.apps["b"]) == 2
	})
	t.Logf("measured: the gossip meshed again %s after the mend", took.Round(time.Millisecond))
	close(stop)
	<-watched
	mu.Lock()
	defer mu.Unlock()
	t.Logf("measured: leadership watcher: %d polls of both appliances, %d instants with two leaders", polls, both)
	if both > 0 {
		t.Errorf("two appliances led %s at %d polls", sb.ClusterName(), both)
	}
}
