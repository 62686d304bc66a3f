package galera

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nines-project/nines"
	"github.com/nines-project/nines/galera"
	"github.com/nines-project/nines/remediator"
)

// fakeNode is an in-memory Galera node for the runbooks' decision logic;
// the e2e tests drive real nodes through real agents.
type fakeNode struct {
	name string
	mu   sync.Mutex
	st   NodeState
	pos  galera.Position
	// calls records every action, in order.
	calls *[]string
	// joins makes a started node Synced at once.
	joins bool
}

const uuid = "9130690e-e921-11f1-b504-f6cb6679f2e6"

func (n *fakeNode) Name() string { return n.name }
func (n *fakeNode) State(context.Context) NodeState {
	n.mu.Lock()
	defer n.mu.Unlock()
	s := n.st
	s.Name = n.name
	return s
}
func (n *fakeNode) record(c string) { *n.calls = append(*n.calls, n.name+":"+c) }
func (n *fakeNode) Recover(context.Context) (galera.Position, error) {
	n.record("recover")
	return n.pos, nil
}
func (n *fakeNode) Start(_ context.Context, pos galera.Position, newCluster bool) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if newCluster {
		n.record("start-new-cluster@" + pos.String())
	} else {
		n.record("start@" + pos.String())
	}
	n.st = NodeState{Reachable: true, Running: true, Wsrep: syncedWsrep()}
	return nil
}
func (n *fakeNode) SetBootstrapFields(_ context.Context, pos galera.Position) error {
	n.record("bootstrap-fields@" + pos.String())
	return nil
}
func (n *fakeNode) PCBootstrap(context.Context) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.record("pc.bootstrap")
	n.st.Wsrep = syncedWsrep()
	return nil
}

// syncedWsrep is a Synced member's status: Primary, local state 4,
// wsrep_ready=ON.
func syncedWsrep() *nines.GaleraStatus {
	return &nines.GaleraStatus{ClusterStatus: nines.ClusterStatusPrimary, LocalState: nines.LocalStateSynced,
		LocalStateComment: "Synced", Ready: true, ClusterStateUUID: uuid, LastCommitted: 100}
}

func stopped(name string, seqno int64, calls *[]string) *fakeNode {
	return &fakeNode{name: name, st: NodeState{Reachable: true}, pos: galera.Position{UUID: uuid, Seqno: seqno}, calls: calls}
}

func nonPrimary(name string, seqno int64, calls *[]string) *fakeNode {
	return &fakeNode{name: name, calls: calls, st: NodeState{Reachable: true, Running: true,
		Wsrep: &nines.GaleraStatus{ClusterStatus: nines.ClusterStatusNonPrimary, LocalStateComment: "Initialized", ClusterStateUUID: uuid, LastCommitted: seqno}}}
}

func synced(name string, calls *[]string) *fakeNode {
	return &fakeNode{name: name, calls: calls, st: NodeState{Reachable: true, Running: true,
		Wsrep: syncedWsrep()}}
}

// runJob runs one manual job to its end, in a fresh job log, and returns it.
func runJob(t *testing.T, rb remediator.Runbook, req remediator.ManualRequest) *remediator.Job {
	t.Helper()
	log, err := remediator.OpenJobLog(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return runIn(t, log, rb, req)
}

func cluster(nodes ...Node) Cluster {
	return func(string) ([]Node, error) { return nodes, nil }
}

func TestQuorumRecoveryAllCrashedBootstrapsMostAdvanced(t *testing.T) {
	var calls []string
	c := cluster(stopped("n1", 40, &calls), stopped("n2", 42, &calls), stopped("n3", 41, &calls))
	j := runJob(t, QuorumRecovery{Nodes: c}, remediator.ManualRequest{})
	if j.State != remediator.JobSucceeded {
		t.Fatalf("job %s: %s", j.State, j.Reason)
	}
	want := "n1:recover n2:recover n3:recover n2:bootstrap-fields@" + uuid + ":42 n2:start-new-cluster@" + uuid + ":42 n1:recover n1:start@" + uuid + ":40 n3:recover n3:start@" + uuid + ":41"
	if got := strings.Join(calls, " "); got != want {
		t.Errorf("actions:\n got %s\nwant %s", got, want)
	}
}

func TestQuorumRecoveryPCBootstrapsRunningSurvivor(t *testing.T) {
	var calls []string
	c := cluster(nonPrimary("n1", 50, &calls), stopped("n2", 49, &calls), stopped("n3", 50, &calls))
	j := runJob(t, QuorumRecovery{Nodes: c}, remediator.ManualRequest{})
	if j.State != remediator.JobSucceeded {
		t.Fatalf("job %s: %s", j.State, j.Reason)
	}
	want := "n2:recover n3:recover n1:pc.bootstrap n2:recover n2:start@" + uuid + ":49 n3:recover n3:start@" + uuid + ":50"
	if got := strings.Join(calls, " "); got != want {
		t.Errorf("actions:\n got %s\nwant %s", got, want)
	}
}

func TestQuorumRecoveryRefusals(t *testing.T) {
	var calls []string
	other := stopped("n3", 60, &calls)
	other.pos.UUID = "11111111-e921-11f1-b504-f6cb6679f2e6"
	j := runJob(t, QuorumRecovery{Nodes: cluster(stopped("n1", 50, &calls), stopped("n2", 51, &calls), other)}, remediator.ManualRequest{})
	if j.State != remediator.JobFailed || !strings.Contains(j.Reason, "disagree on the cluster state UUID") {
		t.Errorf("UUID mismatch: %s %q", j.State, j.Reason)
	}
	for _, c := range calls {
		if strings.Contains(c, "start") || strings.Contains(c, "bootstrap") {
			t.Errorf("acted despite the mismatch: %v", calls)
		}
	}

	calls = nil
	gone := func(name string) *fakeNode {
		return &fakeNode{name: name, calls: &calls, st: NodeState{Reachable: false, Error: "connection refused"}}
	}
	// Two of three do not answer: after position_wait (fake time), refused.
	j = runJob(t, QuorumRecovery{Nodes: cluster(stopped("n1", 50, &calls), gone("n2"), gone("n3")), Clock: &fakeClock{now: epoch}}, remediator.ManualRequest{})
	if j.State != remediator.JobFailed || !strings.Contains(j.Reason, "only 1 of 3 configured nodes answered") || strings.Join(calls, " ") != "n1:recover" {
		t.Errorf("minority: %s %q, calls %v", j.State, j.Reason, calls)
	}
	// The operator forces n1.
	j = runJob(t, QuorumRecovery{Nodes: cluster(stopped("n1", 50, &calls), gone("n2"), gone("n3"))}, remediator.ManualRequest{Force: "n1"})
	if j.State != remediator.JobSucceeded {
		t.Errorf("forced: %s %q, calls %v", j.State, j.Reason, calls)
	}

	calls = nil
	j = runJob(t, QuorumRecovery{Nodes: cluster(synced("n1", &calls), stopped("n2", 3, &calls), synced("n3", &calls))}, remediator.ManualRequest{})
	if j.State != remediator.JobAborted || len(calls) != 0 {
		t.Errorf("with a Primary component: %s %q, calls %v", j.State, j.Reason, calls)
	}
}

func TestRejoin(t *testing.T) {
	var calls []string
	c := cluster(synced("n1", &calls), stopped("n2", 7, &calls), synced("n3", &calls))
	j := runJob(t, Rejoin{Nodes: c}, remediator.ManualRequest{Target: "n2"})
	if j.State != remediator.JobSucceeded {
		t.Fatalf("job %s: %s", j.State, j.Reason)
	}
	if got, want := strings.Join(calls, " "), "n2:recover n2:start@"+uuid+":7"; got != want {
		t.Errorf("actions %s, want %s", got, want)
	}

	// No Primary left: the rejoin refuses, quorum recovery's turn.
	calls = nil
	c = cluster(nonPrimary("n1", 8, &calls), stopped("n2", 7, &calls), stopped("n3", 7, &calls))
	j = runJob(t, Rejoin{Nodes: c}, remediator.ManualRequest{Target: "n2"})
	if j.State != remediator.JobAborted || !strings.Contains(j.Reason, "quorum recovery is needed") || len(calls) != 0 {
		t.Errorf("without Primary: %s %q %v", j.State, j.Reason, calls)
	}
	// ... as a precondition not met yet: its alert retries it.
	if len(j.Steps) == 0 || !strings.HasPrefix(j.Steps[0].Error, "not yet:") {
		t.Errorf("without Primary: steps %+v, want a not-yet observation", j.Steps)
	}

	// Dry run: the plan is recorded, nothing is touched.
	calls = nil
	c = cluster(synced("n1", &calls), stopped("n2", 7, &calls), synced("n3", &calls))
	j = runJob(t, Rejoin{Nodes: c}, remediator.ManualRequest{Target: "n2", DryRun: true})
	if j.State != remediator.JobPlanned || len(calls) != 0 {
		t.Errorf("dry run: %s, calls %v", j.State, calls)
	}
	planned := 0
	for _, s := range j.Steps {
		if s.State == remediator.StepPlanned {
			planned++
		}
	}
	if planned != 3 {
		t.Errorf("dry run planned %d steps, want recover, start, wait: %+v", planned, j.Steps)
	}
}

// TestQuorumRecoveryResumesAfterBootstrap: the appliance died after the
// bootstrap; the resumed job does not refuse because of the Primary it
// made itself, does not bootstrap again, and starts the others.
func TestQuorumRecoveryResumesAfterBootstrap(t *testing.T) {
	var calls []string
	c := cluster(stopped("n1", 40, &calls), synced("n2", &calls), stopped("n3", 41, &calls))
	log, err := remediator.OpenJobLog(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	if err := log.Save(&remediator.Job{ID: "j1", Cluster: "c1", Runbook: "galera-quorum-recovery", State: remediator.JobRunning, CreatedAt: now,
		Steps: []remediator.Step{
			{Name: "rejoin-position:n1", Kind: "act", State: remediator.StepDone, Output: []byte(`{"UUID":"` + uuid + `","Seqno":39}`), Attempts: 1},
			{Name: "bootstrap:n2", Kind: "act", State: remediator.StepDone, Input: []byte(`{"node":"n2","position":"` + uuid + `:42"}`), Output: []byte(`"grastate"`), Attempts: 1},
		}}); err != nil {
		t.Fatal(err)
	}
	rem, err := remediator.New(remediator.Options{Log: log, Runbooks: []remediator.Runbook{QuorumRecovery{Nodes: c}},
		Policies: map[string]remediator.Policy{"c1": {}}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go rem.Run(ctx)
	deadline := time.Now().Add(5 * time.Second)
	for {
		j, _ := log.Get("j1")
		if j != nil && j.State.Done() {
			if j.State != remediator.JobSucceeded {
				t.Fatalf("resumed job %s: %s", j.State, j.Reason)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("resumed job did not end")
		}
		time.Sleep(10 * time.Millisecond)
	}
	// n1's position comes from the log (seqno 39), not a second recover.
	if got, want := strings.Join(calls, " "), "n1:start@"+uuid+":39 n3:recover n3:start@"+uuid+":41"; got != want {
		t.Errorf("actions after resume:\n got %s\nwant %s", got, want)
	}
}

func TestSettled(t *testing.T) {
	primary := func(size int) NodeState {
		return NodeState{Reachable: true, Running: true, Wsrep: &nines.GaleraStatus{ClusterStatus: nines.ClusterStatusPrimary, LocalState: nines.LocalStateSynced, LocalStateComment: "Synced", Ready: true, ClusterSize: size}}
	}
	down := NodeState{Reachable: true}
	// Two nodes just crashed: the survivor still counts them in its view.
	if settled([]NodeState{primary(3), down, down}) {
		t.Error("a Primary whose view still holds crashed nodes counted as settled")
	}
	if !settled([]NodeState{primary(2), primary(2), down}) {
		t.Error("an evicted node kept the view unsettled")
	}
	if !settled([]NodeState{{Reachable: true, Running: true, Wsrep: &nines.GaleraStatus{ClusterStatus: nines.ClusterStatusNonPrimary, ClusterSize: 1}}, down, down}) {
		t.Error("no Primary is a settled view")
	}
}

// A joiner is compared with the Primary's committed position (100 in
// syncedWsrep) after recover-position: behind or equal joins; ahead, or
// of another history, is refused (the job fails, so it pages) and never
// started, and the reason names both positions.
func TestRejoinComparesWithThePrimary(t *testing.T) {
	const other = "11111111-2222-3333-4444-555555555555"
	for _, tc := range []struct {
		name   string
		pos    galera.Position
		start  bool
		reason []string
	}{
		{"behind", galera.Position{UUID: uuid, Seqno: 7}, true, nil},
		{"equal", galera.Position{UUID: uuid, Seqno: 100}, true, nil},
		{"fresh datadir", galera.Position{UUID: galera.UndefinedUUID, Seqno: -1}, true, nil},
		{"gtid kept", galera.Position{UUID: uuid, Seqno: 99, GTID: "0-1-99"}, true, nil},
		{"ahead", galera.Position{UUID: uuid, Seqno: 101}, false, []string{"ahead", uuid + ":101", uuid + ":100", "by 1 transactions"}},
		{"other history", galera.Position{UUID: other, Seqno: 5}, false, []string{"another cluster history", other + ":5", uuid + ":100"}},
		{"no seqno", galera.Position{UUID: uuid, Seqno: -1}, false, []string{"no committed seqno", uuid + ":-1", uuid + ":100"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var calls []string
			joiner := stopped("n2", 0, &calls)
			joiner.pos = tc.pos
			j := runJob(t, Rejoin{Nodes: cluster(synced("n1", &calls), joiner, synced("n3", &calls))}, remediator.ManualRequest{Target: "n2"})
			got := strings.Join(calls, " ")
			if tc.start {
				if want := "n2:recover n2:start@" + tc.pos.String(); j.State != remediator.JobSucceeded || got != want {
					t.Errorf("job %s %q, actions %s; want succeeded, %s", j.State, j.Reason, got, want)
				}
				return
			}
			if j.State != remediator.JobFailed || got != "n2:recover" {
				t.Errorf("job %s, actions %s; want failed after recover only", j.State, got)
			}
			for _, w := range tc.reason {
				if !strings.Contains(j.Reason, w) {
					t.Errorf("reason %q lacks %q", j.Reason, w)
				}
			}
		})
	}
}

// A node left out of the latest bootstrap (it did not answer) that comes
// back past the bootstrap's position holds transactions the bootstrap gave
// up, though its seqno is behind the Primary's now: refused. Nodes that
// joined the new history since, a node at or behind the fork, and an
// admin's forced rejoin start as usual.
func TestRejoinRefusesANodeLeftOutOfABootstrap(t *testing.T) {
	at := time.Now().Add(-time.Hour)
	boot := &remediator.Job{ID: "boot", Cluster: "c1", Runbook: remediator.RunbookGaleraQuorumRecovery, State: remediator.JobSucceeded, CreatedAt: at,
		Steps: []remediator.Step{
			{Name: "bootstrap:n1", Kind: "act", State: remediator.StepDone, Input: json.RawMessage(`{"node":"n1","position":"` + uuid + `:90"}`)},
			{Name: "start:n3", Kind: "act", State: remediator.StepDone},
			{Name: "skip:n2", Kind: "observe", State: remediator.StepDone},
		}}
	rejoined := &remediator.Job{ID: "later", Cluster: "c1", Runbook: remediator.RunbookGaleraNodeRejoin, Target: "n2", State: remediator.JobSucceeded, CreatedAt: at.Add(time.Minute)}
	for _, tc := range []struct {
		name   string
		target string
		seqno  int64
		jobs   []*remediator.Job
		force  string
		start  bool
	}{
		{"left out and past the fork: refused", "n2", 95, []*remediator.Job{boot}, "", false},
		{"left out, at the fork: joins", "n2", 90, []*remediator.Job{boot}, "", true},
		{"started by the bootstrap job: joins", "n3", 95, []*remediator.Job{boot}, "", true},
		{"rejoined since: joins", "n2", 95, []*remediator.Job{boot, rejoined}, "", true},
		{"admin forced: joins", "n2", 95, []*remediator.Job{boot}, "n2", true},
		{"no bootstrap on record: joins", "n2", 95, nil, "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var calls []string
			nodes := map[string]*fakeNode{"n1": synced("n1", &calls), "n2": synced("n2", &calls), "n3": synced("n3", &calls)}
			joiner := stopped(tc.target, 0, &calls)
			joiner.pos = galera.Position{UUID: uuid, Seqno: tc.seqno}
			nodes[tc.target] = joiner
			rb := Rejoin{Nodes: cluster(nodes["n1"], nodes["n2"], nodes["n3"]),
				History: func(string) ([]*remediator.Job, error) { return tc.jobs, nil }}
			j := runJob(t, rb, remediator.ManualRequest{Target: tc.target, Force: tc.force})
			started := strings.Contains(strings.Join(calls, " "), tc.target+":start@")
			if started != tc.start || (tc.start && j.State != remediator.JobSucceeded) {
				t.Fatalf("job %s %q, actions %v; want started %v", j.State, j.Reason, calls, tc.start)
			}
			if !tc.start {
				for _, w := range []string{"5 transactions past " + uuid + ":90", "job boot", "on n1", "given up"} {
					if j.State != remediator.JobFailed || !strings.Contains(j.Reason, w) {
						t.Errorf("job %s, reason %q lacks %q", j.State, j.Reason, w)
					}
				}
			}
		})
	}
}

func TestLastFork(t *testing.T) {
	at := time.Now()
	step := func(name, input string) remediator.Step {
		return remediator.Step{Name: name, State: remediator.StepDone, Input: json.RawMessage(input)}
	}
	qr := func(id string, min int, steps ...remediator.Step) *remediator.Job {
		return &remediator.Job{ID: id, Cluster: "c1", Runbook: remediator.RunbookGaleraQuorumRecovery, CreatedAt: at.Add(time.Duration(min) * time.Minute), Steps: steps}
	}
	jobs := []*remediator.Job{
		qr("second", 2, step("bootstrap:n2", `{"position":"`+uuid+`:50"}`), step("wait-synced:n3", ``)),
		qr("first", 1, step("bootstrap:n1", `{"position":"`+uuid+`:40"}`), step("start:n2", ``), step("start:n3", ``)),
		qr("other cluster", 3, step("bootstrap:n1", `{"position":"`+uuid+`:60"}`)),
	}
	jobs[2].Cluster = "c2"
	f, ok := LastFork(jobs, "c1")
	if !ok || f.Job != "second" || f.Node != "n2" || f.Position.Seqno != 50 || !f.Joined["n2"] || !f.Joined["n3"] || f.Joined["n1"] {
		t.Errorf("LastFork = %+v, %v; want job second, n2 at 50, joined n2 n3", f, ok)
	}
	if _, ok := LastFork([]*remediator.Job{qr("bad", 1, step("bootstrap:n1", `{"position":"garbage"}`))}, "c1"); ok {
		t.Error("a bootstrap step whose position cannot be read gave a fork")
	}
}

// The ahead drill's forced recovery: an admin forces n1 (seqno 23) while
// n2, stopped, recovers 27. n1 is bootstrapped; n2 holds 4 transactions
// the override gave up and is not started (Galera would abort it with
// "Reversing history" at best); n3, behind, joins; the job fails (pages)
// naming n2.
func TestQuorumRecoveryForcedDoesNotStartANodeAhead(t *testing.T) {
	var calls []string
	n1, n2, n3 := stopped("n1", 23, &calls), stopped("n2", 27, &calls), stopped("n3", 20, &calls)
	for _, n := range []*fakeNode{n1, n2, n3} {
		n.joins = true
	}
	j := runJob(t, QuorumRecovery{Nodes: cluster(n1, n2, n3)}, remediator.ManualRequest{Force: "n1"})
	got := strings.Join(calls, " ")
	if strings.Contains(got, "n2:start") || !strings.Contains(got, "n1:start-new-cluster@"+uuid+":23") || !strings.Contains(got, "n3:start@"+uuid+":20") {
		t.Errorf("actions %s: want n1 bootstrapped, n3 started, n2 not", got)
	}
	for _, w := range []string{"n2 at " + uuid + ":27", "n1 bootstrapped at " + uuid + ":23"} {
		if j.State != remediator.JobFailed || !strings.Contains(j.Reason, w) {
			t.Errorf("job %s %q lacks %q", j.State, j.Reason, w)
		}
	}
	if out := stepOutput(j, "refuse:n2"); !strings.Contains(out, "4 transactions past") {
		t.Errorf("refuse:n2 = %q", out)
	}
}
