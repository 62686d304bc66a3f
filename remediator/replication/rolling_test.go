package replication

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nines-project/nines"
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

// TestRollingRestartResumesMidReplica: the appliance died after it
// stopped r3. The resumed job keeps its plan (no health check refuses
// the down r3), starts r3 without a second stop, then goes on.
func TestRollingRestartResumesMidReplica(t *testing.T) {
	w := threeNodes()
	r3 := w.nodes["r3"]
	r3.Running, r3.Readable = false, false
	log, err := remediator.OpenJobLog(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	step := func(name, kind, input string) remediator.Step {
		return remediator.Step{Name: name, Kind: kind, State: remediator.StepDone, Input: []byte(input), Output: []byte(`"ok"`), Attempts: 1}
	}
	if err := log.Save(&remediator.Job{ID: "j1", Cluster: "c1", Runbook: remediator.RunbookReplicationRollingRestart, State: remediator.JobRunning, CreatedAt: time.Now(),
		Steps: []remediator.Step{
			step("plan", "observe", `{"primary":"p1","replicas":["r2","r3"]}`),
			step("restarted:r2", "observe", "null"),
			step("stop:r3", "act", `{"primary":"p1","semi_sync":true,"pid":3}`),
		}}); err != nil {
		t.Fatal(err)
	}
	rb := RollingRestart{Nodes: w.restartable(), Writers: w.writers(), ReplicateTimeout: 2 * time.Second}
	rem, err := remediator.New(remediator.Options{Log: log, Runbooks: []remediator.Runbook{rb},
		Policies: map[string]remediator.Policy{"c1": {Kind: nines.KindReplication}}})
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
	got := strings.Join(w.calls, " ")
	if want := "r3:start r3:replicate:p1 r3:wait-applied p1:fence"; !strings.HasPrefix(got, want) {
		t.Errorf("actions after resume:\n got %s\nwant first %s", got, want)
	}
	if strings.Contains(got, "r2:stop") || strings.Contains(got, "r3:stop") || strings.Count(got, "p1:stop") != 1 {
		t.Errorf("actions after resume repeat a stop or miss p1's: %s", got)
	}
}
