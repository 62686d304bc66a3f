package galera

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nines-project/nines"
	"github.com/nines-project/nines/galera"
	"github.com/nines-project/nines/remediator"
)

// Member UUIDs of n1..n3 in their saved Primary view.
var members = []string{"aaaaaaaa-0000-0000-0000-000000000001", "aaaaaaaa-0000-0000-0000-000000000002", "aaaaaaaa-0000-0000-0000-000000000003"}

// lastView is node i's gvwstate.dat: the view of all three, seq 9.
func lastView(i int) *galera.Gvwstate {
	g := &galera.Gvwstate{MyUUID: members[i], View: galera.ViewID{Type: galera.ViewPrimary, UUID: members[0], Seq: 9}}
	for _, m := range members {
		g.Members = append(g.Members, galera.Member{UUID: m})
	}
	return g
}

// crashedWithView is a stopped, readable node that saved the last view.
func crashedWithView(i int) func(time.Duration) NodeState {
	return func(time.Duration) NodeState { return NodeState{Reachable: true, Gvwstate: lastView(i)} }
}

func unreachable(time.Duration) NodeState {
	return NodeState{Error: "context deadline exceeded"}
}

// Vantage: a fake host reaches its own Galera port while its server
// runs, and no other.
func (n *timedNode) Vantage(ctx context.Context) galera.Vantage {
	if n.State(ctx).Running {
		return galera.Vantage{Reached: 1, Of: 3}
	}
	return galera.Vantage{Of: 3}
}

func (n *fakeNode) Vantage(ctx context.Context) galera.Vantage {
	if n.State(ctx).Running {
		return galera.Vantage{Reached: 1, Of: 3}
	}
	return galera.Vantage{Of: 3}
}

// seesRunning is a host that reaches a running Galera port besides its own.
type seesRunning struct{ *timedNode }

func (n seesRunning) Vantage(context.Context) galera.Vantage {
	return galera.Vantage{Reached: 1, Of: 3}
}

// runIn runs one job on log to its end; rb may read log as its history.
func runIn(t *testing.T, log *remediator.JobLog, rb remediator.Runbook, req remediator.ManualRequest) *remediator.Job {
	t.Helper()
	rem, err := remediator.New(remediator.Options{Log: log, Runbooks: []remediator.Runbook{rb},
		Policies: map[string]remediator.Policy{"c1": {Mode: remediator.ModeAuto, MaxRecoveries: 100}}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go rem.Run(ctx)
	req.Cluster, req.Runbook = "c1", rb.Name()
	job, err := rem.Start(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		j, err := log.Get(job.ID)
		if err == nil && j.State.Done() {
			return j
		}
		if time.Now().After(deadline) {
			t.Fatalf("job %s did not end: %+v", job.ID, j)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func history(log *remediator.JobLog) func(string) ([]*remediator.Job, error) {
	return func(string) ([]*remediator.Job, error) { return log.List() }
}

func stepOutput(j *remediator.Job, prefix string) string {
	var out []string
	for _, s := range j.Steps {
		if strings.HasPrefix(s.Name, prefix) {
			out = append(out, string(s.Output))
		}
	}
	return strings.Join(out, "\n")
}

// A whole-cluster crash where n3 does not come back: nothing is done
// before position_wait; then the most advanced of n1 and n2 (a majority
// of the configured nodes and of the last view) is bootstrapped, and the
// job log warns that n3 may hold later transactions.
func TestQuorumRecoveryWaitsForPositionWaitThenBootstraps(t *testing.T) {
	c := newTimedCluster()
	n1 := c.node("n1", 40, crashedWithView(0))
	n2 := c.node("n2", 42, crashedWithView(1))
	n3 := c.node("n3", 99, unreachable)
	wait := 2 * time.Minute
	rb := QuorumRecovery{Nodes: cluster(n1, n2, n3), Clock: c.clock, PositionWait: func(string) time.Duration { return wait }}
	j := runJob(t, rb, remediator.ManualRequest{})
	if j.State != remediator.JobSucceeded {
		t.Fatalf("job %s: %s; actions %v", j.State, j.Reason, c.calls)
	}
	at, ok := c.at["n2:start"]
	if !ok || c.at["n2:bootstrap-fields"] < wait {
		t.Fatalf("n2 (highest of those that answered) not bootstrapped after %v: %v %v", wait, c.calls, c.at)
	}
	if at > wait+decidePoll+time.Second {
		t.Errorf("bootstrap at %v, long after position_wait %v", at, wait)
	}
	if w := stepOutput(j, "warning"); !strings.Contains(w, "n3 did not answer within position_wait 2m0s: they may hold later transactions") {
		t.Errorf("job log warnings: %s", w)
	}
	if d := stepOutput(j, "decide"); !strings.Contains(d, `"action": "bootstrap"`) {
		t.Errorf("decide step: %s", d)
	}
}

// The missing node answers during the wait and is the most advanced: it
// is the one bootstrapped, as soon as it answers.
func TestQuorumRecoveryBootstrapsTheLateNodeWhenItAnswers(t *testing.T) {
	c := newTimedCluster()
	n1 := c.node("n1", 40, crashedWithView(0))
	n2 := c.node("n2", 42, crashedWithView(1))
	n3 := c.node("n3", 60, func(el time.Duration) NodeState {
		if el < 30*time.Second {
			return unreachable(el)
		}
		return NodeState{Reachable: true, Gvwstate: lastView(2)}
	})
	j := runJob(t, QuorumRecovery{Nodes: cluster(n1, n2, n3), Clock: c.clock}, remediator.ManualRequest{})
	if j.State != remediator.JobSucceeded {
		t.Fatalf("job %s: %s; actions %v", j.State, j.Reason, c.calls)
	}
	at, ok := c.at["n3:bootstrap-fields"]
	if !ok || at < 30*time.Second || at > 30*time.Second+decidePoll+time.Second {
		t.Fatalf("n3 bootstrapped at %v (%v), want right after it answered at 30s: %v", at, ok, c.calls)
	}
	if w := stepOutput(j, "warning"); strings.Contains(w, "may hold later transactions") {
		t.Errorf("warned of missing nodes though all answered: %s", w)
	}
}

// The sequence of finding 1: X, Y, Z partitioned from each other; an
// automatic job bootstrapped X and failed (Y and Z could not join). Y
// and Z alert again while X's agent does not answer: the new automatic
// job refuses at once instead of making a second Primary. A job a person
// starts is the resume: it decides as usual.
func TestQuorumRecoveryNoSecondBootstrapInAnIncident(t *testing.T) {
	log, err := remediator.OpenJobLog(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	earlier := time.Now().Add(-time.Minute)
	if err := log.Save(&remediator.Job{ID: "j0", Cluster: "c1", Runbook: remediator.RunbookGaleraQuorumRecovery, State: remediator.JobFailed,
		Trigger: remediator.Trigger{Source: "alert"}, CreatedAt: earlier, EndedAt: earlier.Add(30 * time.Second),
		Steps: []remediator.Step{{Name: "bootstrap:X", Kind: "act", State: remediator.StepDone, Attempts: 1}}}); err != nil {
		t.Fatal(err)
	}
	c := newTimedCluster()
	alone := func(i int) func(time.Duration) NodeState {
		return func(time.Duration) NodeState {
			return NodeState{Reachable: true, Running: true, Gvwstate: lastView(i),
				Wsrep: &nines.GaleraStatus{ClusterStatus: nines.ClusterStatusNonPrimary, ClusterSize: 1, ClusterStateUUID: uuid, LastCommitted: 50}}
		}
	}
	x, y, z := c.node("X", 52, unreachable), c.node("Y", 50, alone(1)), c.node("Z", 50, alone(2))
	rb := QuorumRecovery{Nodes: cluster(x, y, z), Clock: c.clock, History: history(log)}

	j := runIn(t, log, rb, remediator.ManualRequest{Source: "alert"})
	if j.State != remediator.JobFailed || !strings.Contains(j.Reason, "X was bootstrapped automatically earlier in this incident") {
		t.Fatalf("automatic job: %s %q", j.State, j.Reason)
	}
	if len(c.calls) != 0 {
		t.Fatalf("acted: %v", c.calls)
	}
	if el := c.clock.elapsed(); el > time.Second {
		t.Errorf("refused after %v, want at once", el)
	}

	// A person starts one: the earlier bootstrap no longer blocks; the
	// usual rules apply (wait, then Y and Z are 2 of 3 and of the view).
	// Y is bootstrapped; Z, running but never joining (cut off from Y),
	// is skipped after runningJoinLimit instead of holding the job for
	// the whole sync limit.
	j = runIn(t, log, rb, remediator.ManualRequest{})
	if j.State != remediator.JobSucceeded || !strings.Contains(strings.Join(c.calls, " "), "Y:pc.bootstrap") {
		t.Fatalf("manual job: %s %q, actions %v", j.State, j.Reason, c.calls)
	}
	if out := stepOutput(j, "skip:Z"); !strings.Contains(out, "did not join the Primary component of Y within 30s") {
		t.Errorf("skip:Z = %q", out)
	}
}

func TestPriorBootstrap(t *testing.T) {
	at := func(m int) time.Time { return epoch.Add(time.Duration(m) * time.Minute) }
	job := func(id string, m int, source string, state remediator.JobState, steps ...string) *remediator.Job {
		j := &remediator.Job{ID: id, Cluster: "c1", Runbook: remediator.RunbookGaleraQuorumRecovery, CreatedAt: at(m), State: state, Trigger: remediator.Trigger{Source: source}}
		for _, s := range steps {
			j.Steps = append(j.Steps, remediator.Step{Name: s, State: remediator.StepDone})
		}
		return j
	}
	boot := job("b", 1, "alert", remediator.JobFailed, "bootstrap:n1")
	cases := []struct {
		name string
		jobs []*remediator.Job
		want string
	}{
		{"no earlier job", []*remediator.Job{job("self", 2, "alert", remediator.JobRunning)}, ""},
		{"earlier bootstrap, job failed", []*remediator.Job{boot, job("self", 2, "alert", remediator.JobRunning)}, "n1"},
		{"earlier bootstrap, job succeeded with every node", []*remediator.Job{job("b", 1, "alert", remediator.JobSucceeded, "bootstrap:n1"), job("self", 2, "alert", remediator.JobRunning)}, ""},
		{"earlier bootstrap, job succeeded but skipped a node", []*remediator.Job{job("b", 1, "alert", remediator.JobSucceeded, "bootstrap:n1", "skip:n3"), job("self", 2, "alert", remediator.JobRunning)}, "n1"},
		{"a person started a job since", []*remediator.Job{boot, job("m", 2, "manual", remediator.JobFailed), job("self", 3, "alert", remediator.JobRunning)}, ""},
		{"this job is a person's", []*remediator.Job{boot, job("self", 2, "manual", remediator.JobRunning)}, ""},
		{"another cluster's bootstrap", []*remediator.Job{func() *remediator.Job {
			j := job("o", 1, "alert", remediator.JobFailed, "bootstrap:n1")
			j.Cluster = "c2"
			return j
		}(), job("self", 2, "alert", remediator.JobRunning)}, ""},
		{"listed newest first", []*remediator.Job{job("self", 2, "alert", remediator.JobRunning), boot}, "n1"},
	}
	for _, c := range cases {
		if got := PriorBootstrap(c.jobs, "c1", "self"); got != c.want {
			t.Errorf("%s: %q, want %q", c.name, got, c.want)
		}
	}
}

// failingStart is a node whose bootstrap start fails; it records the
// clearing of safe_to_bootstrap.
type failingStart struct{ *fakeNode }

func (n failingStart) Start(context.Context, galera.Position, bool) error {
	n.record("start-failed")
	return errors.New("mariadbd exited: WSREP: It may not be safe to bootstrap")
}

func (n failingStart) ClearBootstrapFields(context.Context) error {
	n.record("clear-safe-to-bootstrap")
	return nil
}

func TestQuorumRecoveryClearsSafeToBootstrapAfterAFailedStart(t *testing.T) {
	var calls []string
	c := cluster(stopped("n1", 40, &calls), failingStart{stopped("n2", 42, &calls)}, stopped("n3", 41, &calls))
	j := runJob(t, QuorumRecovery{Nodes: c}, remediator.ManualRequest{})
	if j.State != remediator.JobFailed {
		t.Fatalf("job %s: %s", j.State, j.Reason)
	}
	want := "n1:recover n2:recover n3:recover n2:bootstrap-fields@" + uuid + ":42 n2:start-failed n2:clear-safe-to-bootstrap"
	if got := strings.Join(calls, " "); got != want {
		t.Errorf("actions:\n got %s\nwant %s", got, want)
	}
}

// n3 comes back between the decision (bootstrap n2 without it, after
// position_wait) and the re-check before the bootstrap, and it is ahead:
// the runbook decides again and bootstraps n3, not n2.
func TestQuorumRecoveryDecidesAgainWhenAMissingNodeReturns(t *testing.T) {
	c := newTimedCluster()
	wait := 2 * time.Minute
	seenAtWait := false
	n1 := c.node("n1", 40, crashedWithView(0))
	n2 := c.node("n2", 42, crashedWithView(1))
	n3 := c.node("n3", 60, func(el time.Duration) NodeState {
		if el < wait || !seenAtWait {
			seenAtWait = el >= wait // the decision's own look at position_wait
			return unreachable(el)
		}
		return NodeState{Reachable: true, Gvwstate: lastView(2)}
	})
	rb := QuorumRecovery{Nodes: cluster(n1, n2, n3), Clock: c.clock, PositionWait: func(string) time.Duration { return wait }}
	j := runJob(t, rb, remediator.ManualRequest{})
	if j.State != remediator.JobSucceeded {
		t.Fatalf("job %s: %s; actions %v", j.State, j.Reason, c.calls)
	}
	if _, ok := c.at["n3:bootstrap-fields"]; !ok {
		t.Fatalf("n3, back and ahead, was not the one bootstrapped: %v", c.calls)
	}
	if _, ok := c.at["n2:bootstrap-fields"]; ok {
		t.Fatalf("n2 bootstrapped though n3 came back ahead: %v", c.calls)
	}
	if !strings.Contains(stepOutput(j, "decide-again"), "n3 answers again") {
		t.Errorf("no decide-again step: %+v", j.Steps)
	}
}

// Dry run: the plan is recorded, no position is recovered, nothing acts.
func TestQuorumRecoveryDryRun(t *testing.T) {
	var calls []string
	c := cluster(stopped("n1", 40, &calls), stopped("n2", 42, &calls), stopped("n3", 41, &calls))
	j := runJob(t, QuorumRecovery{Nodes: c}, remediator.ManualRequest{DryRun: true})
	if j.State != remediator.JobPlanned || len(calls) != 0 {
		t.Fatalf("dry run: %s %q, calls %v", j.State, j.Reason, calls)
	}
	if p := stepOutput(j, "plan"); !strings.Contains(p, "every node answered, none is Primary") {
		t.Errorf("plan: %s", p)
	}
}

// n3's agent does not answer but n1's host reaches a Galera port though
// n1 and n2 are stopped: n3 runs. After position_wait the recovery
// refuses instead of bootstrapping beside what may be a Primary.
func TestQuorumRecoveryRefusesWhenAVantagePointReachesAMissingNode(t *testing.T) {
	c := newTimedCluster()
	n1 := seesRunning{c.node("n1", 40, crashedWithView(0))}
	n2 := c.node("n2", 42, crashedWithView(1))
	n3 := c.node("n3", 41, unreachable)
	j := runJob(t, QuorumRecovery{Nodes: cluster(n1, n2, n3), Clock: c.clock}, remediator.ManualRequest{})
	if j.State != remediator.JobFailed || !strings.Contains(j.Reason, "vantage point n1 reaches 1 Galera ports") {
		t.Fatalf("job %s: %s", j.State, j.Reason)
	}
	for _, call := range c.calls {
		if !strings.HasSuffix(call, ":recover") {
			t.Errorf("acted: %v", c.calls)
		}
	}
	if el := c.clock.elapsed(); el < DefaultPositionWait {
		t.Errorf("refused after %v, before position_wait", el)
	}
}

// Drill 2's decision: nines cannot reach a node's agent, but the Primary
// component still counts it after the settle time (Galera evicts a dead
// member within seconds): the node runs, nines is cut off; the job
// aborts with that reason instead of failing. Once the Primary no longer
// counts it, the same unreachable agent is a failure (pages).
func TestRejoinCutOffFromNinesOnly(t *testing.T) {
	for _, tc := range []struct {
		name  string
		size  int
		state remediator.JobState
		want  string
	}{
		{"still a member", 3, remediator.JobAborted, "most likely runs and only nines is cut off from it"},
		{"evicted", 2, remediator.JobFailed, "the agent of n2 does not answer"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newTimedCluster()
			member := func(time.Duration) NodeState {
				w := syncedWsrep()
				w.ClusterSize = tc.size
				return NodeState{Reachable: true, Running: true, Wsrep: w}
			}
			rb := Rejoin{Nodes: cluster(c.node("n1", 100, member), c.node("n2", 100, unreachable), c.node("n3", 100, member)), Clock: c.clock}
			log, err := remediator.OpenJobLog(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			j := runIn(t, log, rb, remediator.ManualRequest{Target: "n2"})
			if j.State != tc.state || !strings.Contains(j.Reason, tc.want) || len(c.calls) != 0 {
				t.Errorf("job %s %q, actions %v; want %s with %q", j.State, j.Reason, c.calls, tc.state, tc.want)
			}
		})
	}
}
