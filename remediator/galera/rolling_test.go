package galera

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nines-project/nines"
	"github.com/nines-project/nines/galera"
	"github.com/nines-project/nines/remediator"
)

// rollNode is a fake node of a 3-node cluster for the rolling restart:
// it stops, starts Synced with a new pid and the version set in
// upgradeTo, and reports how it joined (transfer).
type rollNode struct {
	name     string
	mu       sync.Mutex
	st       NodeState
	pid      int
	version  string
	upgrade  string // version after a start; "" keeps version
	transfer string
	calls    *[]string
	// onStart runs after the node started (to degrade the cluster).
	onStart func()
}

var _ Restartable = (*rollNode)(nil)

func rolling(name string, pid int, calls *[]string) *rollNode {
	return &rollNode{name: name, pid: pid, version: "11.4.4-MariaDB", transfer: galera.TransferIST, calls: calls,
		st: NodeState{Reachable: true, Running: true, Wsrep: member(nines.LocalStateSynced, "Synced")}}
}

func member(state nines.LocalState, comment string) *nines.GaleraStatus {
	return &nines.GaleraStatus{ClusterStatus: nines.ClusterStatusPrimary, LocalState: state, LocalStateComment: comment,
		Ready: state == nines.LocalStateSynced || state == nines.LocalStateDonor, ClusterSize: 3, ClusterStateUUID: uuid, LastCommitted: 100}
}

func (n *rollNode) Name() string { return n.name }
func (n *rollNode) State(context.Context) NodeState {
	n.mu.Lock()
	defer n.mu.Unlock()
	s := n.st
	s.Name = n.name
	return s
}
func (n *rollNode) record(c string) { *n.calls = append(*n.calls, n.name+":"+c) }
func (n *rollNode) Recover(context.Context) (galera.Position, error) {
	n.record("recover")
	return galera.Position{UUID: uuid, Seqno: 100}, nil
}
func (n *rollNode) Start(_ context.Context, pos galera.Position, newCluster bool) error {
	n.mu.Lock()
	if newCluster {
		n.mu.Unlock()
		return errors.New("a rolling restart never bootstraps")
	}
	n.record("start@" + pos.String())
	n.pid += 1000
	if n.upgrade != "" {
		n.version = n.upgrade
	}
	n.st = NodeState{Reachable: true, Running: true, Wsrep: member(nines.LocalStateSynced, "Synced")}
	hook := n.onStart
	n.mu.Unlock()
	if hook != nil {
		hook()
	}
	return nil
}
func (n *rollNode) Stop(context.Context) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.record("stop")
	n.st = NodeState{Reachable: true}
	return nil
}
func (n *rollNode) Info(context.Context) (ServerInfo, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if !n.st.Running {
		return ServerInfo{}, errors.New("the server is not running")
	}
	return ServerInfo{Pid: n.pid, Version: n.version, UptimeSeconds: 3600, StateTransfer: n.transfer}, nil
}
func (n *rollNode) SetBootstrapFields(context.Context, galera.Position) error {
	return errors.New("a rolling restart never bootstraps")
}
func (n *rollNode) PCBootstrap(context.Context) error {
	return errors.New("a rolling restart never bootstraps")
}

func (n *rollNode) set(st NodeState) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.st = st
}

func threeRolling(calls *[]string) []*rollNode {
	return []*rollNode{rolling("n1", 11, calls), rolling("n2", 12, calls), rolling("n3", 13, calls)}
}

func rollCluster(ns []*rollNode) Cluster {
	nodes := make([]Node, len(ns))
	for i, n := range ns {
		nodes[i] = n
	}
	return cluster(nodes...)
}

// logLine is the text a Logf step recorded.
func logLine(t *testing.T, j *remediator.Job, name string) string {
	t.Helper()
	for _, s := range j.Steps {
		if s.Name == name {
			var out string
			if err := json.Unmarshal(s.Output, &out); err != nil {
				t.Fatalf("step %s output %s: %v", name, s.Output, err)
			}
			return out
		}
	}
	t.Fatalf("no step %s", name)
	return ""
}

// lose stops n and shrinks the others' Primary component to the
// survivors, as Galera does once it evicted n.
func lose(ns []*rollNode, n *rollNode, st NodeState) {
	for _, o := range ns {
		if o == n {
			continue
		}
		w := member(nines.LocalStateSynced, "Synced")
		w.ClusterSize = len(ns) - 1
		o.set(NodeState{Reachable: true, Running: true, Wsrep: w})
	}
	n.set(st)
}

// fakeWriter is an HAProxy writer backend that sends writes to node.
type fakeWriter struct {
	node  string
	calls *[]string
}

func (w fakeWriter) Current(context.Context) (string, error) { return w.node, nil }
func (w fakeWriter) Fence(_ context.Context, node string) error {
	*w.calls = append(*w.calls, node+":fence")
	return nil
}
func (w fakeWriter) Release(_ context.Context, node string) error {
	*w.calls = append(*w.calls, node+":release")
	return nil
}

func writerIs(name string, calls *[]string) func(string) Writer {
	return func(string) Writer { return fakeWriter{node: name, calls: calls} }
}

func TestRollingRestartWriterLastEachOnce(t *testing.T) {
	var calls []string
	ns := threeRolling(&calls)
	for _, n := range ns {
		n.upgrade = "11.4.5-MariaDB"
	}
	var stalls []string
	rb := RollingRestart{Nodes: rollCluster(ns), Writer: writerIs("n1", &calls), HealthyWait: 50 * time.Millisecond,
		Stall: func(_ context.Context, cluster string, from, to time.Time) (Stall, error) {
			stalls = append(stalls, cluster)
			if !from.Before(to) {
				t.Errorf("stall window %s to %s is empty", from, to)
			}
			return Stall{BadSeconds: 1, FailedWrites: 2}, nil
		}}
	j := runJob(t, rb, remediator.ManualRequest{})
	if j.State != remediator.JobSucceeded {
		t.Fatalf("job %s: %s", j.State, j.Reason)
	}
	at := "start@" + uuid + ":100"
	want := "n2:stop n2:recover n2:" + at + " n3:stop n3:recover n3:" + at + " n1:fence n1:stop n1:recover n1:" + at + " n1:release"
	if got := strings.Join(calls, " "); got != want {
		t.Errorf("actions:\n got %s\nwant %s", got, want)
	}
	if len(stalls) != 3 {
		t.Errorf("stall read %d times, want once per node", len(stalls))
	}
	for _, n := range []string{"n1", "n2", "n3"} {
		out := logLine(t, j, "restarted:"+n)
		for _, want := range []string{"version 11.4.4-MariaDB -> 11.4.5-MariaDB", "joined by IST", "1 bad probe seconds, 2 failed probe writes", "pid "} {
			if !strings.Contains(out, want) {
				t.Errorf("job log of %s: %s lacks %q", n, out, want)
			}
		}
	}
	if out := logLine(t, j, "restarted:n1"); !strings.Contains(out, "pid 11 -> 1011") {
		t.Errorf("job log of n1: %s", out)
	}
}

func TestRollingRestartRefusesDegraded(t *testing.T) {
	for _, tc := range []struct {
		name    string
		degrade func(ns []*rollNode)
		want    string
	}{
		{"a node stopped", func(ns []*rollNode) { lose(ns, ns[2], NodeState{Reachable: true}) }, "n3 is stopped"},
		{"a node joining", func(ns []*rollNode) {
			ns[1].set(NodeState{Reachable: true, Running: true, Wsrep: member(nines.LocalStateJoiner, "Joining: receiving State Transfer")})
		}, "n2 is Primary/Joining"},
		{"an agent unreachable", func(ns []*rollNode) { lose(ns, ns[0], NodeState{Error: "connection refused"}) }, "n1 is agent unreachable"},
		{"a member missing from the component", func(ns []*rollNode) {
			for _, n := range ns {
				w := member(nines.LocalStateSynced, "Synced")
				w.ClusterSize = 2
				n.set(NodeState{Reachable: true, Running: true, Wsrep: w})
			}
		}, "counts 2 members of 3 configured"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var calls []string
			ns := threeRolling(&calls)
			tc.degrade(ns)
			j := runJob(t, RollingRestart{Nodes: rollCluster(ns), HealthyWait: 50 * time.Millisecond}, remediator.ManualRequest{})
			if j.State != remediator.JobFailed || !strings.Contains(j.Reason, "degraded") || !strings.Contains(j.Reason, tc.want) {
				t.Errorf("job %s %q; want failed naming %q", j.State, j.Reason, tc.want)
			}
			if len(calls) != 0 {
				t.Errorf("acted on a degraded cluster: %v", calls)
			}
		})
	}
}

// A node lost after the first restart stops the rolling restart before
// the next node: it re-checks before each one.
func TestRollingRestartRechecksBeforeEachNode(t *testing.T) {
	var calls []string
	ns := threeRolling(&calls)
	ns[0].onStart = func() { lose(ns, ns[2], NodeState{Reachable: true}) }
	j := runJob(t, RollingRestart{Nodes: rollCluster(ns), HealthyWait: 50 * time.Millisecond}, remediator.ManualRequest{})
	if j.State != remediator.JobFailed || !strings.Contains(j.Reason, "n3 is stopped") {
		t.Fatalf("job %s %q; want refused naming n3", j.State, j.Reason)
	}
	if got := strings.Join(calls, " "); strings.Contains(got, "n2:") || strings.Contains(got, "n3:") {
		t.Errorf("went on after the cluster degraded: %s", got)
	}
}

func TestRollingRestartNeverStopsADonor(t *testing.T) {
	donor := NodeState{Reachable: true, Running: true, Wsrep: member(nines.LocalStateDonor, "Donor/Desynced")}
	synced := NodeState{Name: "n2", Reachable: true, Running: true, Wsrep: member(nines.LocalStateSynced, "Synced")}
	d := donor
	d.Name = "n1"
	err := restartable([]NodeState{d, synced, {Name: "n3", Reachable: true, Running: true, Wsrep: member(nines.LocalStateJoiner, "Joining")}}, "n1")
	var ref *remediator.Refusal
	if !errors.As(err, &ref) || !strings.Contains(err.Error(), "n1 is the donor") {
		t.Errorf("restartable(donor n1) = %v; want a refusal naming n1 the donor", err)
	}

	// In a job: a donor that stays one is never stopped...
	var calls []string
	ns := threeRolling(&calls)
	ns[0].set(donor)
	j := runJob(t, RollingRestart{Nodes: rollCluster(ns), HealthyWait: 50 * time.Millisecond}, remediator.ManualRequest{})
	if j.State != remediator.JobFailed || len(calls) != 0 {
		t.Errorf("donor n1: job %s %q, actions %v; want failed, none", j.State, j.Reason, calls)
	}

	// ...and one that finishes its transfer within HealthyWait is
	// waited for, then restarted.
	calls = nil
	ns = threeRolling(&calls)
	ns[0].set(donor)
	time.AfterFunc(300*time.Millisecond, func() {
		ns[0].set(NodeState{Reachable: true, Running: true, Wsrep: member(nines.LocalStateSynced, "Synced")})
	})
	j = runJob(t, RollingRestart{Nodes: rollCluster(ns), HealthyWait: 5 * time.Second}, remediator.ManualRequest{})
	if j.State != remediator.JobSucceeded || !strings.HasPrefix(strings.Join(calls, " "), "n1:stop") {
		t.Errorf("donor n1 back to Synced: job %s %q, actions %v", j.State, j.Reason, calls)
	}
}

// A node that rejoined by SST ends the job: the others are left as they
// are until gcache is raised.
func TestRollingRestartStopsAfterSST(t *testing.T) {
	var calls []string
	ns := threeRolling(&calls)
	ns[0].transfer = galera.TransferSST
	j := runJob(t, RollingRestart{Nodes: rollCluster(ns), HealthyWait: 50 * time.Millisecond}, remediator.ManualRequest{})
	if j.State != remediator.JobFailed || !strings.Contains(j.Reason, "n1 rejoined by a full SST") || !strings.Contains(j.Reason, "gcache.size") {
		t.Fatalf("job %s %q", j.State, j.Reason)
	}
	if got := strings.Join(calls, " "); strings.Contains(got, "n2:") {
		t.Errorf("restarted another node after an SST: %s", got)
	}
}

func TestRollingRestartRefusesNodeWithoutAgent(t *testing.T) {
	var calls []string
	ns := threeRolling(&calls)
	c := cluster(ns[0], ns[1], stopped("n3", 100, &calls))
	j := runJob(t, RollingRestart{Nodes: c}, remediator.ManualRequest{})
	if j.State != remediator.JobFailed || !strings.Contains(j.Reason, "n3 has no agent") || len(calls) != 0 {
		t.Errorf("job %s %q, actions %v", j.State, j.Reason, calls)
	}
}

func TestRollingRestartDryRunTouchesNothing(t *testing.T) {
	var calls []string
	ns := threeRolling(&calls)
	j := runJob(t, RollingRestart{Nodes: rollCluster(ns), Writer: writerIs("n2", &calls), HealthyWait: 50 * time.Millisecond}, remediator.ManualRequest{DryRun: true})
	if j.State != remediator.JobPlanned || len(calls) != 0 {
		t.Fatalf("dry run: job %s %q, actions %v", j.State, j.Reason, calls)
	}
	for _, s := range j.Steps {
		if s.Name != "order" {
			continue
		}
		var p plan
		if err := json.Unmarshal(s.Output, &p); err != nil {
			t.Fatal(err)
		}
		if got := strings.Join(p.Order, " "); got != "n1 n3 n2" || p.Writer != "n2" {
			t.Errorf("dry run plan: order %s, writer %s; want n1 n3 n2, writer n2", got, p.Writer)
		}
	}
}

func TestRestartOrder(t *testing.T) {
	for _, tc := range []struct {
		writer, want string
	}{
		{"n1", "n2 n3 n1"},
		{"n2", "n1 n3 n2"},
		{"n3", "n1 n2 n3"},
		{"", "n1 n2 n3"},         // no HAProxy: configured order
		{"db9:3306", "n1 n2 n3"}, // a writer not in the cluster changes nothing
	} {
		if got := strings.Join(restartOrder([]string{"n1", "n2", "n3"}, tc.writer), " "); got != tc.want {
			t.Errorf("writer %q: order %s, want %s", tc.writer, got, tc.want)
		}
	}
}

// TestRollingRestartResumesWithTheRecordedOrder: the appliance died
// after it fenced and stopped n1, the writer, the last node. HAProxy now
// names n2 the writer; the resumed job keeps the order it recorded,
// starts n1 without stopping anything again, and releases n1.
func TestRollingRestartResumesWithTheRecordedOrder(t *testing.T) {
	var calls []string
	ns := threeRolling(&calls)
	lose(ns, ns[0], NodeState{Reachable: true})
	ns[0].onStart = func() {
		for _, n := range ns[1:] {
			n.set(NodeState{Reachable: true, Running: true, Wsrep: member(nines.LocalStateSynced, "Synced")})
		}
	}
	log, err := remediator.OpenJobLog(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	done := func(name, kind, input string) remediator.Step {
		s := remediator.Step{Name: name, Kind: kind, State: remediator.StepDone, Output: []byte(`"ok"`), Attempts: 1}
		if input != "" {
			s.Input = []byte(input)
		}
		return s
	}
	if err := log.Save(&remediator.Job{ID: "j1", Cluster: "c1", Runbook: remediator.RunbookGaleraRollingRestart, State: remediator.JobRunning, CreatedAt: time.Now(),
		Steps: []remediator.Step{
			done("plan", "observe", `{"order":["n2","n3","n1"],"writer":"n1"}`),
			done("restarted:n2", "observe", ""),
			done("restarted:n3", "observe", ""),
			done("fence-writer:n1", "act", `{"node":"n1"}`),
			done("stop:n1", "act", `{"node":"n1","pid":11}`),
		}}); err != nil {
		t.Fatal(err)
	}
	rb := RollingRestart{Nodes: rollCluster(ns), Writer: writerIs("n2", &calls), HealthyWait: 50 * time.Millisecond}
	rem, err := remediator.New(remediator.Options{Log: log, Runbooks: []remediator.Runbook{rb}, Policies: map[string]remediator.Policy{"c1": {}}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go rem.Run(ctx)
	deadline := time.Now().Add(10 * time.Second)
	var j *remediator.Job
	for {
		j, _ = log.Get("j1")
		if j != nil && j.State.Done() {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("resumed job did not end")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if j.State != remediator.JobSucceeded {
		t.Fatalf("resumed job %s: %s", j.State, j.Reason)
	}
	if got, want := strings.Join(calls, " "), "n1:recover n1:start@"+uuid+":100 n1:release"; got != want {
		t.Errorf("actions after resume:\n got %s\nwant %s", got, want)
	}
	if out := logLine(t, j, "restarted:n1"); !strings.Contains(out, "pid 11 -> 1011") {
		t.Errorf("job log of n1 after resume: %s", out)
	}
}
