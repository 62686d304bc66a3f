package galera

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nines-project/nines"
	"github.com/nines-project/nines/galera"
	"github.com/nines-project/nines/remediator"
)

// fakeClock moves only when a runbook waits on it: After advances the
// time by d and fires at once, so a 20 s settle takes microseconds and
// the test reads exactly how much runbook time passed.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

var epoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	c.now = c.now.Add(d)
	now := c.now
	c.mu.Unlock()
	ch := make(chan time.Time, 1)
	ch <- now
	return ch
}

func (c *fakeClock) elapsed() time.Duration { return c.Now().Sub(epoch) }

// timedNode's state is a function of the fake time; its actions are
// recorded with the time they were taken.
type timedNode struct {
	name  string
	clock *fakeClock
	mu    sync.Mutex
	state func(elapsed time.Duration) NodeState
	pos   galera.Position
	calls *[]string
	at    map[string]time.Duration
}

func (n *timedNode) Name() string { return n.name }
func (n *timedNode) State(context.Context) NodeState {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.state(n.clock.elapsed())
}
func (n *timedNode) act(what string) {
	*n.calls = append(*n.calls, n.name+":"+what)
	n.at[n.name+":"+what] = n.clock.elapsed()
}
func (n *timedNode) Recover(context.Context) (galera.Position, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.act("recover")
	return n.pos, nil
}
func (n *timedNode) Start(_ context.Context, _ galera.Position, newCluster bool) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.act("start")
	n.state = func(time.Duration) NodeState { return NodeState{Reachable: true, Running: true, Wsrep: syncedWsrep()} }
	return nil
}
func (n *timedNode) SetBootstrapFields(context.Context, galera.Position) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.act("bootstrap-fields")
	return nil
}
func (n *timedNode) PCBootstrap(context.Context) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.act("pc.bootstrap")
	n.state = func(time.Duration) NodeState { return NodeState{Reachable: true, Running: true, Wsrep: syncedWsrep()} }
	return nil
}

type timedCluster struct {
	clock *fakeClock
	calls []string
	at    map[string]time.Duration
}

func newTimedCluster() *timedCluster {
	return &timedCluster{clock: &fakeClock{now: epoch}, at: map[string]time.Duration{}}
}

func (c *timedCluster) node(name string, seqno int64, state func(time.Duration) NodeState) *timedNode {
	return &timedNode{name: name, clock: c.clock, state: state, pos: galera.Position{UUID: uuid, Seqno: seqno}, calls: &c.calls, at: c.at}
}

func down(time.Duration) NodeState { return NodeState{Reachable: true} }

// primaryUntil is a running node that Galera still shows in a Primary
// component of size 3 (the dead peers not yet evicted) until evict, and
// after it as it really is: alone and non-Primary, or Primary of the
// survivors.
func primaryUntil(evict time.Duration, after *nines.GaleraStatus) func(time.Duration) NodeState {
	return func(el time.Duration) NodeState {
		w := syncedWsrep()
		w.ClusterSize = 3
		if el >= evict {
			w = after
		}
		return NodeState{Reachable: true, Running: true, Wsrep: w}
	}
}

// A quorum recovery must not take the dying view's Primary for a live
// one, nor bootstrap while it lasts: it waits until Galera evicted the
// dead nodes, then acts.
func TestQuorumRecoveryActsOnlyAfterTheViewSettles(t *testing.T) {
	c := newTimedCluster()
	alone := &nines.GaleraStatus{ClusterStatus: nines.ClusterStatusNonPrimary, ClusterSize: 1, ClusterStateUUID: uuid, LastCommitted: 60}
	n1 := c.node("n1", 50, down)
	n2 := c.node("n2", 55, down)
	n3 := c.node("n3", 60, primaryUntil(4*time.Second, alone))
	j := runJob(t, QuorumRecovery{Nodes: cluster(n1, n2, n3), Clock: c.clock}, remediator.ManualRequest{})
	if j.State != remediator.JobSucceeded {
		t.Fatalf("job %s: %s; actions %v", j.State, j.Reason, c.calls)
	}
	at, ok := c.at["n3:pc.bootstrap"]
	if !ok {
		t.Fatalf("n3 (highest seqno, running alone) was not pc-bootstrapped: %v", c.calls)
	}
	if at < 4*time.Second {
		t.Errorf("pc.bootstrap at %v, before the dead nodes left the view at 4s", at)
	}
	if at > 5*time.Second {
		t.Errorf("pc.bootstrap at %v: the recovery waited long after the view settled at 4s", at)
	}
	for _, call := range c.calls {
		if c.at[call] < 4*time.Second {
			t.Errorf("%s at %v, before the view settled", call, c.at[call])
		}
	}
}

// When the view does not settle within the 20 s limit, the recovery
// decides on what it sees: a Primary node, so nothing is done.
func TestQuorumRecoveryGivesUpWaitingAfterTheSettleLimit(t *testing.T) {
	c := newTimedCluster()
	n1 := c.node("n1", 50, down)
	n2 := c.node("n2", 55, down)
	n3 := c.node("n3", 60, primaryUntil(time.Hour, nil))
	j := runJob(t, QuorumRecovery{Nodes: cluster(n1, n2, n3), Clock: c.clock}, remediator.ManualRequest{})
	if j.State == remediator.JobSucceeded || !strings.Contains(j.Reason, "n3 is Primary") {
		t.Fatalf("job %s: %s; want it to stop on n3 being Primary", j.State, j.Reason)
	}
	if len(c.calls) != 0 {
		t.Errorf("acted while a Primary component was shown: %v", c.calls)
	}
	if el := c.clock.elapsed(); el < settleLimit || el > settleLimit+time.Second {
		t.Errorf("gave up after %v of runbook time, want just over the settle limit %v", el, settleLimit)
	}
}

// A rejoin waits for the survivors' view to drop the dead node before it
// starts it again.
func TestRejoinStartsOnlyAfterTheViewSettles(t *testing.T) {
	c := newTimedCluster()
	two := syncedWsrep()
	two.ClusterSize = 2
	n1 := c.node("n1", 50, down)
	n2 := c.node("n2", 60, primaryUntil(3*time.Second, two))
	n3 := c.node("n3", 60, primaryUntil(3*time.Second, two))
	j := runJob(t, Rejoin{Nodes: cluster(n1, n2, n3), Clock: c.clock}, remediator.ManualRequest{Target: "n1"})
	if j.State != remediator.JobSucceeded {
		t.Fatalf("job %s: %s; actions %v", j.State, j.Reason, c.calls)
	}
	if got := strings.Join(c.calls, " "); got != "n1:recover n1:start" {
		t.Fatalf("actions %s", got)
	}
	if at := c.at["n1:recover"]; at < 3*time.Second || at > 4*time.Second {
		t.Errorf("recover at %v, want right after the view settled at 3s", at)
	}
}

// waitSynced gives up on a joiner once no node has been Primary for
// noPrimaryLimit of runbook time, not before.
func TestWaitSyncedGivesUpAfterPrimaryIsGone(t *testing.T) {
	c := newTimedCluster()
	joining := func(time.Duration) NodeState {
		return NodeState{Reachable: true, Running: true, Wsrep: &nines.GaleraStatus{ClusterStatus: nines.ClusterStatusNonPrimary, LocalStateComment: "Initialized"}}
	}
	n1 := c.node("n1", 0, joining)
	// n2 is Primary for the first 2 s, then loses quorum too.
	n2 := c.node("n2", 0, primaryUntil(2*time.Second, &nines.GaleraStatus{ClusterStatus: nines.ClusterStatusNonPrimary, ClusterSize: 1}))
	_, err := waitSynced(context.Background(), c.clock, n1, []Node{n1, n2}, time.Minute)
	if err == nil || !strings.Contains(err.Error(), "no node of the cluster has been Primary") {
		t.Fatalf("err %v", err)
	}
	if el := c.clock.elapsed(); el <= 2*time.Second+noPrimaryLimit || el > 2*time.Second+noPrimaryLimit+time.Second {
		t.Errorf("gave up at %v, want just after 2s + %v", el, noPrimaryLimit)
	}
}

// A node Synced by its state but with wsrep_ready=OFF does not end the
// wait: it refuses queries.
func TestWaitSyncedNeedsWsrepReady(t *testing.T) {
	c := newTimedCluster()
	notReady := func(el time.Duration) NodeState {
		w := syncedWsrep()
		w.Ready = el >= 7*time.Second
		return NodeState{Reachable: true, Running: true, Wsrep: w}
	}
	n1 := c.node("n1", 0, notReady)
	st, err := waitSynced(context.Background(), c.clock, n1, []Node{n1}, time.Minute)
	if err != nil || !st.Synced() {
		t.Fatalf("waitSynced: %+v, %v", st, err)
	}
	if el := c.clock.elapsed(); el < 7*time.Second {
		t.Errorf("Synced at %v, before wsrep_ready turned ON at 7s", el)
	}
	if (NodeState{Running: true, Wsrep: &nines.GaleraStatus{ClusterStatus: nines.ClusterStatusPrimary, LocalState: nines.LocalStateSynced, LocalStateComment: "Synced"}}).Synced() {
		t.Error("Synced with wsrep_ready=OFF")
	}
}

// The node being bootstrapped may take minutes to start (InnoDB recovery
// of a large redo log) while no node is Primary: only the overall limit
// ends that wait, not noPrimaryLimit.
func TestWaitBootstrappedWaitsOutALongStart(t *testing.T) {
	c := newTimedCluster()
	starting := func(el time.Duration) NodeState {
		switch {
		case el < 30*time.Second: // the agent is busy: no answer yet
			return NodeState{Error: "context deadline exceeded"}
		case el < 3*time.Minute: // running, InnoDB recovery: no wsrep status
			return NodeState{Reachable: true, Running: true}
		}
		return NodeState{Reachable: true, Running: true, Wsrep: syncedWsrep()}
	}
	n1 := c.node("n1", 0, starting)
	n2 := c.node("n2", 0, down)
	st, err := waitBootstrapped(context.Background(), c.clock, n1, []Node{n1, n2}, 10*time.Minute)
	if err != nil || !st.Synced() {
		t.Fatalf("waitBootstrapped: %+v, %v", st, err)
	}
	if el := c.clock.elapsed(); el < 3*time.Minute {
		t.Errorf("Synced at %v, before the node was", el)
	}

	// The overall limit still applies.
	c = newTimedCluster()
	n1 = c.node("n1", 0, func(time.Duration) NodeState { return NodeState{Reachable: true, Running: true} })
	_, err = waitBootstrapped(context.Background(), c.clock, n1, []Node{n1}, 5*time.Minute)
	if err == nil || !strings.Contains(err.Error(), "not Synced within 5m") {
		t.Errorf("a node that never became Primary: %v", err)
	}

	// Once it was Primary, losing it again ends the wait like a joiner's.
	c = newTimedCluster()
	alone := &nines.GaleraStatus{ClusterStatus: nines.ClusterStatusNonPrimary, ClusterSize: 1}
	primaryThenLost := func(el time.Duration) NodeState {
		w := alone
		if el >= time.Minute && el < 70*time.Second {
			w = &nines.GaleraStatus{ClusterStatus: nines.ClusterStatusPrimary, LocalStateComment: "Joined", ClusterSize: 1}
		}
		return NodeState{Reachable: true, Running: true, Wsrep: w}
	}
	n1 = c.node("n1", 0, primaryThenLost)
	_, err = waitBootstrapped(context.Background(), c.clock, n1, []Node{n1}, time.Hour)
	if err == nil || !strings.Contains(err.Error(), "no node of the cluster has been Primary") {
		t.Fatalf("a bootstrapped node that lost Primary: %v", err)
	}
	if el := c.clock.elapsed(); el < 70*time.Second+noPrimaryLimit || el > 70*time.Second+noPrimaryLimit+time.Second {
		t.Errorf("gave up at %v, want just after 70s + %v", el, noPrimaryLimit)
	}
}
