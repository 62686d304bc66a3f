package replication

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nines-project/nines/remediator"
)

// restartable is a fake node that stops and starts: it comes back
// read-only with replication stopped, as skip_slave_start leaves it.
type restartable struct {
	fake
	pids map[string]int
}

func (f restartable) Stop(context.Context) error {
	f.w.mu.Lock()
	defer f.w.mu.Unlock()
	f.call("stop")
	n := f.w.nodes[f.name]
	n.Running, n.Readable = false, false
	return nil
}

func (f restartable) Start(context.Context) error {
	f.w.mu.Lock()
	defer f.w.mu.Unlock()
	f.call("start")
	n := f.w.nodes[f.name]
	n.Running, n.Readable, n.ReadOnly = true, true, true
	if n.Link != nil {
		n.Link.IO, n.Link.SQLRunning = "No", false
	}
	f.pids[f.name] += 1000
	return nil
}

func (f restartable) Info(context.Context) (ServerInfo, error) {
	f.w.mu.Lock()
	defer f.w.mu.Unlock()
	if !f.w.nodes[f.name].Running {
		return ServerInfo{}, errors.New("the server is not running")
	}
	return ServerInfo{Pid: f.pids[f.name], Version: "11.4.4-MariaDB", UptimeSeconds: 60}, nil
}

func (w *world) restartable() Cluster {
	pids := map[string]int{"p1": 1, "r2": 2, "r3": 3}
	return func(string) ([]Node, error) {
		return []Node{restartable{fake{w, "p1"}, pids}, restartable{fake{w, "r2"}, pids}, restartable{fake{w, "r3"}, pids}}, nil
	}
}

// The replicas one at a time, each pointed at p1 again and caught up;
// then the switchover; then p1, a replica of the new primary.
func TestRollingRestartReplicasSwitchoverOldPrimary(t *testing.T) {
	w := threeNodes()
	j := run(t, RollingRestart{Nodes: w.restartable(), Writers: w.writers(), ReplicateTimeout: 2 * time.Second}, remediator.ManualRequest{})
	if j.State != remediator.JobSucceeded {
		t.Fatalf("job %s: %s", j.State, j.Reason)
	}
	got := strings.Join(w.calls, " ")
	replicas := "r2:stop r2:start r2:replicate:p1 r2:wait-applied r3:stop r3:start r3:replicate:p1 r3:wait-applied p1:fence"
	if !strings.HasPrefix(got, replicas) {
		t.Errorf("actions:\n got %s\nwant first %s", got, replicas)
	}
	// The switchover picks the most advanced replica: r3.
	old := "p1:stop p1:start p1:replicate:r3 p1:wait-applied"
	if !strings.HasSuffix(got, old) {
		t.Errorf("actions:\n got %s\nwant last %s", got, old)
	}
	for _, n := range []string{"p1", "r2", "r3"} {
		if c := strings.Count(got, n+":stop"); c != 1 {
			t.Errorf("%s stopped %d times", n, c)
		}
	}
	if p1 := w.nodes["p1"]; p1.Link == nil || p1.Link.Source != "r3" || !p1.ReadOnly || w.nodes["r3"].ReadOnly {
		t.Errorf("after the rolling restart: p1 %+v, r3 read_only %v", p1, w.nodes["r3"].ReadOnly)
	}
}

func TestRollingRestartRefusesABrokenReplica(t *testing.T) {
	w := threeNodes()
	w.nodes["r3"].Link.IO = "Connecting"
	j := run(t, RollingRestart{Nodes: w.restartable(), Writers: w.writers()}, remediator.ManualRequest{})
	if j.State != remediator.JobFailed || !strings.Contains(j.Reason, "degraded") || !strings.Contains(j.Reason, "r3 does not replicate from p1") {
		t.Errorf("job %s %q", j.State, j.Reason)
	}
	if len(w.calls) != 0 {
		t.Errorf("acted on a degraded cluster: %v", w.calls)
	}
}

func TestRollingRestartRefusesNodeWithoutAgent(t *testing.T) {
	w := threeNodes()
	j := run(t, RollingRestart{Nodes: w.cluster()}, remediator.ManualRequest{})
	if j.State != remediator.JobFailed || !strings.Contains(j.Reason, "p1 has no agent") || len(w.calls) != 0 {
		t.Errorf("job %s %q, actions %v", j.State, j.Reason, w.calls)
	}
}
