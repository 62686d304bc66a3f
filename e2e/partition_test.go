//go:build cluster

package e2e

import (
	"context"
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/nines-project/nines/sandbox"
)

// The partition drills of issue 12. Each node runs in its own network
// namespace (sandbox --netns); links are cut with blackhole routes. The
// split-brain checker watches every node through its socket, which no
// cut reaches, and the writer writes over the network as applications do.

// drill is the set-up every partition drill shares: a fresh 3-node
// sandbox in network namespaces, an appliance healing it, acknowledged
// probe writes through every node, and both witnesses running with some
// acknowledged writes of their own to lose.
func drill(t *testing.T, name string, o remediationOpts) (*sandbox.Sandbox, *healer, *splitBrainChecker, *drillWriter) {
	t.Helper()
	sb := startSandbox(t, sandbox.Options{ClusterName: name, Netns: true})
	h := startHealer(t, sb, o)
	waitProbeWrites(t, h.appliance, sb.ClusterName(), 3, 3)
	chk, w := startSplitBrainChecker(t, sb), startDrillWriter(t, sb)
	w.waitAcked(t, 20, 10*time.Second)
	return sb, h, chk, w
}

func isolate(t *testing.T, sb *sandbox.Sandbox, node, from string) time.Time {
	t.Helper()
	if err := sb.Isolate(context.Background(), node, from); err != nil {
		t.Fatalf("isolate %s from %s: %v", node, from, err)
	}
	t.Logf("%s cut off from %s", node, from)
	return time.Now()
}

func cut(t *testing.T, sb *sandbox.Sandbox, a, b string) {
	t.Helper()
	if err := sb.Cut(context.Background(), a, b); err != nil {
		t.Fatalf("cut %s-%s: %v", a, b, err)
	}
	t.Logf("link %s-%s cut", a, b)
}

func mend(t *testing.T, sb *sandbox.Sandbox, a, b string) time.Time {
	t.Helper()
	if err := sb.Mend(context.Background(), a, b); err != nil {
		t.Fatalf("mend %s-%s: %v", a, b, err)
	}
	t.Logf("link %s-%s mended", a, b)
	return time.Now()
}

func heal(t *testing.T, sb *sandbox.Sandbox) time.Time {
	t.Helper()
	if err := sb.Heal(context.Background()); err != nil {
		t.Fatalf("heal: %v", err)
	}
	t.Log("every link healed")
	return time.Now()
}

// noActs fails when any job did a repair step: the drill wants nines to
// keep its hands off. Reading a stopped node's position (--wsrep-recover,
// the *-position: steps) is an act step in the log because it runs the
// server binary, but changes nothing: it is allowed.
func noActs(t *testing.T, h *healer) {
	t.Helper()
	for _, j := range h.jobs(t) {
		for _, s := range j.Steps {
			name, _, _ := strings.Cut(s.Name, ":")
			if s.Kind == "act" && s.State == "done" && !strings.HasSuffix(name, "-position") {
				t.Errorf("job %s (%s) acted: step %s done (%s: %s)", j.ID, j.Runbook, s.Name, j.State, j.Reason)
			}
		}
	}
}

// bootstraps lists the done bootstrap steps of every job, job:step.
func bootstraps(t *testing.T, h *healer) []string {
	t.Helper()
	var out []string
	for _, j := range h.jobs(t) {
		for _, s := range j.Steps {
			if strings.HasPrefix(s.Name, "bootstrap:") && s.State == "done" {
				out = append(out, j.ID+":"+s.Name)
			}
		}
	}
	return out
}

func logJobs(t *testing.T, h *healer) {
	t.Helper()
	for _, j := range h.jobs(t) {
		t.Logf("job %s %s %s: %s", j.ID, j.Runbook, j.State, j.Reason)
	}
}

type remediationView struct {
	Cluster      string
	Halted       string
	RunningJob   string `json:"running_job"`
	LastDecision string `json:"last_decision"`
	NotRepaired  string `json:"not_repaired"`
}

func (h *healer) remediation(t *testing.T) remediationView {
	t.Helper()
	var r struct{ Data []remediationView }
	if code, err := h.get("/api/v1/remediation", nil, &r); err != nil || code != 200 || len(r.Data) != 1 {
		t.Fatalf("GET /api/v1/remediation: %d %v %+v", code, err, r.Data)
	}
	return r.Data[0]
}

// neverPrimary fails t if node shows Primary at any poll of the checker
// during d.
func neverPrimary(t *testing.T, chk *splitBrainChecker, node string, d time.Duration) {
	t.Helper()
	end := time.Now().Add(d)
	for time.Now().Before(end) {
		for _, p := range chk.primaries() {
			if p == node {
				t.Fatalf("%s became Primary while cut off from the other nodes", node)
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Drill 1: one node isolated from the others for 30 s stays non-Primary,
// nothing bootstraps it; after the heal it rejoins by IST; nothing lost.
func TestPartitionOneNodeIsolated(t *testing.T) {
	waitsSideBySide(t) // 30 s of it is watching a cut node stay non-Primary
	sb, h, chk, w := drill(t, "isodrill", remediationOpts{mode: "auto"})
	victim := sb.Nodes()[1]
	logBefore, _ := os.ReadFile(victim.ErrorLog)

	at := isolate(t, sb, victim.Name, sandbox.PartitionNodes)
	waitFor(t, at, 15*time.Second, victim.Name+" non-Primary", func() bool {
		for _, p := range chk.primaries() {
			if p == victim.Name {
				return false
			}
		}
		return len(chk.primaries()) == 2
	})
	neverPrimary(t, chk, victim.Name, 30*time.Second)
	noActs(t, h)
	t.Logf("cluster status while %s is cut off: %s", victim.Name, h.remediation(t).LastDecision)

	chk.markHeal(heal(t, sb))
	took := chk.waitHealed(t, 30*time.Second)
	t.Logf("measured: after heal, %s back and all three Primary and Synced in %s", victim.Name, took.Round(time.Millisecond))
	logAfter, _ := os.ReadFile(victim.ErrorLog)
	since := string(logAfter[len(logBefore):])
	if strings.Contains(since, "Proceeding with SST") || strings.Contains(since, "SST request") {
		t.Errorf("%s needed a full state transfer after the heal; its error log since the cut:\n%s", victim.Name, tail(since, 3000))
	}
	noActs(t, h)
	logJobs(t, h)
	w.waitAcked(t, 20, 10*time.Second)
	chk.check(t)
	w.check(t)
	probeLoss(t, h)
}

// Drill 2: the appliance cut off from two nodes that still see each
// other (and the third): no action at all; the cluster status says why.
func TestPartitionApplianceCutOff(t *testing.T) {
	waitsSideBySide(t) // it waits for the agents' deadlines; bound 120 s
	sb, h, chk, w := drill(t, "blinddrill", remediationOpts{mode: "auto"})
	n := sb.Nodes()

	at := isolate(t, sb, n[0].Name, sandbox.PartitionAppliance)
	isolate(t, sb, n[1].Name, sandbox.PartitionAppliance)
	h.waitSeenBroken(t, at)
	// The rejoin jobs give the view its settle time (20 s), then say why
	// they do nothing.
	var st remediationView
	took := waitFor(t, at, 120*time.Second, "the cluster status to say that only nines is cut off", func() bool {
		st = h.remediation(t)
		return strings.Contains(st.NotRepaired, "only nines is cut off")
	})
	t.Logf("measured: %s after the cut, the cluster status says: %q", took.Round(time.Millisecond), st.NotRepaired)
	time.Sleep(5 * time.Second)
	noActs(t, h)
	if ps := chk.primaries(); len(ps) != 3 {
		t.Errorf("the nodes see each other and should stay one Primary component of 3; Primary: %v", ps)
	}

	chk.markHeal(heal(t, sb))
	took = h.waitHealthy(t, time.Now(), 30*time.Second)
	t.Logf("measured: after heal, nines sees all three Synced again in %s", took.Round(time.Millisecond))
	chk.waitHealed(t, 10*time.Second)
	noActs(t, h)
	logJobs(t, h)
	chk.check(t)
	w.check(t)
	probeLoss(t, h)
}

// Drill 3, the sequence of review finding 1: all three nodes cut from each
// other (each alone, non-Primary, all readable by the appliance). Galera
// does not form a Primary component again from non-Primary nodes by
// itself, so nines bootstraps the most advanced one, X. Then X is cut
// from the appliance too (its agent misses every deadline) while Y and Z
// keep alerting: no second bootstrap. The links come back in stages (Y-Z
// first: they stay non-Primary, as Galera does), and the cluster ends
// Primary with three Synced nodes. Never two Primaries at any poll.
func TestPartitionAllApart(t *testing.T) {
	waitsSideBySide(t) // bounds of 60-150 s; its point is one bootstrap, never two Primaries
	sb, h, chk, w := drill(t, "apartdrill", remediationOpts{mode: "auto", positionWait: "20s"})
	n := sb.Nodes()

	at := time.Now()
	for _, x := range n {
		isolate(t, sb, x.Name, sandbox.PartitionNodes)
	}
	waitFor(t, at, 15*time.Second, "no node Primary", func() bool { return len(chk.primaries()) == 0 })
	var boot string
	took := waitFor(t, at, 60*time.Second, "nines to bootstrap one node", func() bool {
		if b := bootstraps(t, h); len(b) > 0 {
			boot = b[0]
		}
		return boot != "" && len(chk.primaries()) == 1
	})
	var x sandbox.Node
	for _, c := range n {
		if strings.HasSuffix(boot, ":bootstrap:"+c.Address()) {
			x = c
		}
	}
	if x.Name == "" || chk.primaries()[0] != x.Name {
		t.Fatalf("bootstrap %q, Primary %v: not one node of the sandbox", boot, chk.primaries())
	}
	t.Logf("measured: %s bootstrapped and Primary alone %s after the nodes were cut apart", x.Name, took.Round(time.Millisecond))

	// Finding 1: X's agent stops answering; the others alert on.
	cut(t, sb, x.Name, sandbox.PartitionAppliance)
	// The bootstrap job first waits up to 30 s for each of the other
	// two to join by itself (they cannot), then the alerts run again.
	waitFor(t, time.Now(), 150*time.Second, "a quorum recovery refused because "+x.Name+" may be Primary", func() bool {
		return jobMentions(t, h, "was bootstrapped automatically earlier in this incident")
	})
	if b := bootstraps(t, h); len(b) != 1 {
		t.Errorf("bootstraps while %s could not be read: %v", x.Name, b)
	}

	// Heal in stages: the other two first, then X to the appliance, then
	// X to the others.
	var others []string
	for _, c := range n {
		if c.Name != x.Name {
			others = append(others, c.Name)
		}
	}
	healed := mend(t, sb, others[0], others[1])
	chk.markHeal(healed)
	time.Sleep(10 * time.Second)
	if ps := chk.primaries(); len(ps) != 1 || ps[0] != x.Name {
		t.Errorf("after %s-%s was mended, Primary: %v (want %s alone: they are not a Primary component by themselves)", others[0], others[1], ps, x.Name)
	}
	mend(t, sb, x.Name, sandbox.PartitionAppliance)
	mend(t, sb, x.Name, others[0])
	mend(t, sb, x.Name, others[1])
	took = chk.waitHealed(t, 60*time.Second)
	t.Logf("measured: all three Primary and Synced %s after the first link was mended", took.Round(time.Millisecond))
	if b := bootstraps(t, h); len(b) != 1 {
		t.Errorf("bootstraps: %v, want exactly one", b)
	}
	logJobs(t, h)
	w.waitAcked(t, 20, 10*time.Second)
	chk.check(t)
	w.check(t)
}

// jobMentions reports whether any job's reason or step output mentions s.
func jobMentions(t *testing.T, h *healer, s string) bool {
	t.Helper()
	var r struct{ Data []json.RawMessage }
	if code, err := h.get("/api/v1/jobs", nil, &r); err != nil || code != 200 {
		return false
	}
	for _, j := range r.Data {
		if strings.Contains(string(j), s) {
			return true
		}
	}
	return false
}

// jobText returns the job's JSON as the API serves it.
func jobText(t *testing.T, h *healer, id string) string {
	t.Helper()
	var r struct{ Data json.RawMessage }
	if code, err := h.get("/api/v1/jobs/"+id, nil, &r); err != nil || code != 200 {
		t.Fatalf("GET /api/v1/jobs/%s: %d %v", id, code, err)
	}
	return string(r.Data)
}

// firstPrimary waits for the checker to see any node Primary and returns
// when it did.
func firstPrimary(t *testing.T, chk *splitBrainChecker, since time.Time, limit time.Duration) time.Time {
	t.Helper()
	waitFor(t, since, limit, "a Primary component", func() bool { return len(chk.primaries()) > 0 })
	return time.Now()
}

// Drill 4: the whole cluster crashes and one node does not come back (its
// namespace cut off from everything). No bootstrap before position_wait;
// then the more advanced of the other two, with the warning in the job
// log; after the heal the third node rejoins.
func TestCrashOneNodeMissing(t *testing.T) {
	waitsSideBySide(t) // position_wait and refusals; bounds of a minute and more
	const positionWait = 20 * time.Second
	sb, h, chk, w := drill(t, "missingdrill", remediationOpts{mode: "auto", positionWait: positionWait.String()})
	n := sb.Nodes()

	killed := kill(t, sb, nodeNames(sb)...)
	isolate(t, sb, n[2].Name, sandbox.PartitionAll)
	h.waitSeenBroken(t, killed)
	prim := firstPrimary(t, chk, killed, positionWait+60*time.Second)
	t.Logf("measured: first Primary %s after the crash (position_wait %s)", prim.Sub(killed).Round(time.Millisecond), positionWait)
	if prim.Sub(killed) < positionWait {
		t.Errorf("bootstrapped %s after the crash, before position_wait %s", prim.Sub(killed).Round(time.Millisecond), positionWait)
	}
	var boot string
	waitFor(t, time.Now(), 30*time.Second, "the quorum recovery to bootstrap", func() bool {
		b := bootstraps(t, h)
		if len(b) > 0 {
			boot = b[0]
		}
		return len(b) > 0
	})
	if strings.Contains(boot, n[2].Name) {
		t.Errorf("bootstrapped the missing node: %s", boot)
	}
	id := strings.SplitN(boot, ":", 2)[0]
	if txt := jobText(t, h, id); !strings.Contains(txt, n[2].Address()+" did not answer within position_wait") || !strings.Contains(txt, "may hold later transactions") {
		t.Errorf("job %s does not warn that %s may hold later transactions:\n%s", id, n[2].Name, tail(txt, 3000))
	}

	healed := heal(t, sb)
	chk.markHeal(healed)
	refusal := rejoinedOrRefused(t, h, chk, sb, healed, n[2])
	if refusal == "" {
		t.Logf("measured: after heal, %s rejoined and all three Primary and Synced in %s", n[2].Name, chk.waitHealed(t, 3*time.Minute).Round(time.Millisecond))
	}
	if b := bootstraps(t, h); len(b) != 1 {
		t.Errorf("bootstraps: %v, want exactly one", b)
	}
	logJobs(t, h)
	w.waitAcked(t, 20, 10*time.Second)
	chk.check(t)
	if refusal == "" {
		w.check(t)
	} else {
		// Past position_wait the bootstrap gave up what only the missing
		// node held, as its job log warned.
		w.report(t)
	}
}

// Drill 5: the whole cluster crashes and two nodes do not come back: one
// of three cannot decide; refused and paged. An admin's force_node
// recovers it, and the job log says what may have been given up.
func TestCrashTwoNodesMissing(t *testing.T) {
	waitsSideBySide(t) // position_wait and refusals; bounds of a minute and more
	const positionWait = 15 * time.Second
	sb, h, chk, w := drill(t, "minoritydrill", remediationOpts{mode: "auto", positionWait: positionWait.String()})
	n := sb.Nodes()

	killed := kill(t, sb, nodeNames(sb)...)
	isolate(t, sb, n[1].Name, sandbox.PartitionAll)
	isolate(t, sb, n[2].Name, sandbox.PartitionAll)
	var refused string
	waitFor(t, killed, positionWait+60*time.Second, "a refused quorum recovery", func() bool {
		for _, j := range h.jobs(t) {
			if j.Runbook == "galera-quorum-recovery" && j.State == "failed" && strings.Contains(j.Reason, "not a majority") {
				refused = j.ID + ": " + j.Reason
				return true
			}
		}
		return false
	})
	t.Logf("refused: %s", refused)
	if st := h.remediation(t); !strings.Contains(st.NotRepaired, "not a majority") {
		t.Errorf("cluster status does not say why: %q", st.NotRepaired)
	}
	waitFor(t, killed, 60*time.Second, "NinesRemediationJobFailed paged", func() bool {
		_, ok := h.hook.first("firing", func(l map[string]string) bool { return l["alertname"] == "NinesRemediationJobFailed" })
		return ok
	})
	if ps := chk.primaries(); len(ps) > 0 {
		t.Errorf("Primary after a refusal: %v", ps)
	}
	noActs(t, h)

	// An admin decides: force n1.
	body := forceRecover(t, h, sb, n[0])
	var started struct{ Data struct{ ID string } }
	if err := json.Unmarshal(body, &started); err != nil || started.Data.ID == "" {
		t.Fatalf("POST /api/v1/jobs answered %s (%v)", body, err)
	}
	prim := firstPrimary(t, chk, time.Now(), 60*time.Second)
	t.Logf("measured: %s Primary %s after the crash, by force_node", n[0].Name, prim.Sub(killed).Round(time.Millisecond))
	var txt string
	waitFor(t, time.Now(), 60*time.Second, "the forced job to record its bootstrap", func() bool {
		txt = jobText(t, h, started.Data.ID)
		return strings.Contains(txt, `"bootstrap:`+n[0].Address()+`"`)
	})
	for _, want := range []string{"an admin forced " + n[0].Address(), "did not answer: they may hold later transactions"} {
		if !strings.Contains(txt, want) {
			t.Errorf("forced job %s lacks %q:\n%s", started.Data.ID, want, tail(txt, 3000))
		}
	}

	healed := heal(t, sb)
	chk.markHeal(healed)
	nRefused := 0
	for _, x := range n[1:] {
		if rejoinedOrRefused(t, h, chk, sb, healed, x) != "" {
			nRefused++
		}
	}
	if nRefused == 0 {
		t.Logf("measured: after heal, all three Primary and Synced in %s", chk.waitHealed(t, 3*time.Minute).Round(time.Millisecond))
	}
	logJobs(t, h)
	w.waitAcked(t, 20, 10*time.Second)
	chk.check(t)
	if nRefused == 0 {
		w.check(t)
	} else {
		// The admin gave up what only the refused nodes hold: the writer's
		// loss is the override's, counted and printed, not a failure.
		w.report(t)
	}
}

// rejoinedOrRefused waits, after a heal, until node x is Synced again in
// the Primary component, or until its rejoin was refused because it holds
// transactions the Primary lacks (ahead of it, or given up by a
// bootstrap it missed); then x must still be stopped: never overwritten.
// It returns the refusal, "" when x rejoined.
func rejoinedOrRefused(t *testing.T, h *healer, chk *splitBrainChecker, sb *sandbox.Sandbox, since time.Time, x sandbox.Node) string {
	t.Helper()
	var refusal string
	waitFor(t, since, 120*time.Second, x.Name+" Synced again or its rejoin refused", func() bool {
		if j, ok := refusedStart(t, h, x); ok {
			refusal = j.ID + ": " + j.Reason
			return true
		}
		return chk.synced(x.Name)
	})
	if refusal == "" {
		t.Logf("measured: %s Synced again %s after the heal", x.Name, time.Since(since).Round(time.Millisecond))
		return ""
	}
	t.Logf("measured: the rejoin of %s was refused %s after the heal: %s", x.Name, time.Since(since).Round(time.Millisecond), refusal)
	time.Sleep(3 * time.Second)
	if pid, _ := sb.Pid(x.Name); pid != 0 {
		t.Errorf("%s was started after its rejoin was refused (pid %d)", x.Name, pid)
	}
	return refusal
}

// Drill 4b, the joiner ahead: n1 and n2 leave gracefully, n3 goes on
// alone (Primary) and takes writes, then crashes and stays cut off. n1
// and n2 saved no Primary view (a graceful leave removes it): nines
// refuses. An admin forces n1, giving up n3's writes knowingly; when n3
// comes back, it is ahead of the Primary: refused and paged, never
// overwritten by a state transfer.
func TestCrashAheadNodeRefused(t *testing.T) {
	waitsSideBySide(t) // position_wait and refusals; bounds of a minute and more
	const positionWait = 10 * time.Second
	sb := startSandbox(t, sandbox.Options{ClusterName: "aheaddrill", Netns: true})
	h := startHealer(t, sb, remediationOpts{mode: "off", positionWait: positionWait.String()})
	chk := startSplitBrainChecker(t, sb)
	n := sb.Nodes()
	ctx := context.Background()
	// n2 first, then n1: n1 is then at least as far as n2, so that the
	// admin's choice below gives up only what n3 alone holds.
	for _, x := range []sandbox.Node{n[1], n[0]} {
		if err := sb.StopNode(ctx, x.Name); err != nil {
			t.Fatal(err)
		}
	}
	db, err := sb.DB(n[2].Name)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec("CREATE TABLE IF NOT EXISTS nines.ahead (id INT PRIMARY KEY)"); err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 20; i++ {
		if _, err := db.Exec("INSERT INTO nines.ahead VALUES (?)", i); err != nil {
			t.Fatalf("write on %s alone: %v", n[2].Name, err)
		}
	}
	db.Close()
	kill(t, sb, n[2].Name)
	isolate(t, sb, n[2].Name, sandbox.PartitionAll)

	// Remediation on: rewrite the config and restart the appliance.
	cfg, err := os.ReadFile(h.cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(h.cfg, []byte(strings.Replace(string(cfg), "mode: off", "mode: auto", 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	h.stop()
	h.restart(t)
	var refused string
	waitFor(t, time.Now(), positionWait+60*time.Second, "a refused quorum recovery", func() bool {
		for _, j := range h.jobs(t) {
			if j.Runbook == "galera-quorum-recovery" && j.State == "failed" {
				refused = j.Reason
				return true
			}
		}
		return false
	})
	t.Logf("refused: %s", refused)
	if !strings.Contains(refused, "Primary view") {
		t.Errorf("refusal does not name the missing Primary view: %s", refused)
	}
	noActs(t, h)

	forceRecover(t, h, sb, n[0])
	waitFor(t, time.Now(), 90*time.Second, n[0].Name+" and "+n[1].Name+" Primary", func() bool { return len(chk.primaries()) == 2 })

	healed := heal(t, sb)
	var ahead jobView
	waitFor(t, healed, 60*time.Second, "the start of "+n[2].Name+" refused", func() bool {
		j, ok := refusedStart(t, h, n[2])
		ahead = j
		return ok
	})
	t.Logf("measured: the start of the node ahead refused %s after the heal, by job %s (%s): %s", time.Since(healed).Round(time.Millisecond), ahead.ID, ahead.Runbook, ahead.Reason)
	waitFor(t, healed, 60*time.Second, "NinesRemediationJobFailed paged", func() bool {
		_, ok := h.hook.first("firing", func(l map[string]string) bool { return l["alertname"] == "NinesRemediationJobFailed" })
		return ok
	})
	time.Sleep(5 * time.Second)
	if pid, _ := sb.Pid(n[2].Name); pid != 0 {
		t.Errorf("%s, ahead of the Primary, was started (pid %d): a state transfer overwrites its writes", n[2].Name, pid)
	}
	for _, j := range h.jobs(t) {
		for _, s := range j.Steps {
			if s.Kind == "act" && s.State == "done" && strings.HasPrefix(s.Name, "start:") && strings.Contains(s.Name, n[2].Address()) {
				t.Errorf("job %s started %s", j.ID, n[2].Name)
			}
		}
	}
	logJobs(t, h)
	chk.check(t)
}

// forceRecover is the admin's decision: a quorum recovery by hand with
// force_node. While a job runs (a rejoin of a node nines cannot reach,
// failing and retried) the API answers 409 naming it; the admin tries
// again, as the test does.
func forceRecover(t *testing.T, h *healer, sb *sandbox.Sandbox, x sandbox.Node) []byte {
	t.Helper()
	var body []byte
	waitFor(t, time.Now(), 60*time.Second, "POST /api/v1/jobs with force_node accepted", func() bool {
		code, b, err := h.post("/api/v1/jobs", map[string]any{"cluster": sb.ClusterName(), "kind": "recover", "force_node": x.Address()})
		body = b
		if code == 409 {
			return false
		}
		if err != nil || code != 202 {
			t.Fatalf("POST /api/v1/jobs force_node: %d %v %s", code, err, b)
		}
		return true
	})
	return body
}

// refusedStart finds a failed Galera job that refused to start x because
// x holds transactions the Primary's history lacks: a rejoin (ahead of
// the Primary, or past the bootstrap it missed) or the quorum recovery
// itself, when x answered after its bootstrap.
func refusedStart(t *testing.T, h *healer, x sandbox.Node) (jobView, bool) {
	t.Helper()
	for _, j := range h.jobs(t) {
		if j.State != "failed" || !strings.Contains(j.Reason, x.Address()) {
			continue
		}
		for _, why := range []string{"ahead of the Primary", "given up", "holding transactions past it"} {
			if strings.Contains(j.Reason, why) {
				return j, true
			}
		}
	}
	return jobView{}, false
}
