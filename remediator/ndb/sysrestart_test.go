package ndb

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nines-project/nines/agent"
	"github.com/nines-project/nines/ndb"
	"github.com/nines-project/nines/remediator"
)

// deadAgent is an agent that does not answer.
type deadAgent struct{}

func (deadAgent) Status(context.Context) (agent.Status, error) {
	return agent.Status{}, errors.New("dial tcp 192.0.2.3:9105: i/o timeout")
}
func (deadAgent) Start(context.Context, agent.StartRequest) (agent.StartResult, error) {
	return agent.StartResult{}, errors.New("dial tcp 192.0.2.3:9105: i/o timeout")
}
func (deadAgent) Stop(context.Context, agent.StopRequest) (agent.StopResult, error) {
	return agent.StopResult{}, errors.New("dial tcp 192.0.2.3:9105: i/o timeout")
}

// sysRig is the simulator with a fake agent per data node, and the
// cluster down after node group 1 (nodes 3 and 4) was lost.
type sysRig struct {
	sim    *simCluster
	agents map[int]Agent
	mgm    StatusSource
}

func newSysRig(t *testing.T, phase time.Duration) *sysRig {
	t.Helper()
	sim := newSim(t, phase)
	sim.kill(t, 3)
	sim.kill(t, 4)
	for id := 1; id <= 4; id++ {
		if n, _ := sim.c.Node(id); n.Status != ndb.StatusNoContact {
			t.Fatalf("node %d is %s after its cluster lost node group 1", id, n.Status)
		}
	}
	rig := &sysRig{sim: sim, agents: map[int]Agent{}, mgm: Failover(errSource{}, sim.mgm)}
	for id := 1; id <= 4; id++ {
		rig.agents[id] = &fakeAgent{sim: sim, id: id}
	}
	return rig
}

func (g *sysRig) runbook(log *remediator.JobLog) SystemRestart {
	return SystemRestart{Access: Access{
		Mgm: func(string) (StatusSource, error) { return g.mgm, nil },
		Agent: func(_ string, id int) (Agent, error) {
			if a, ok := g.agents[id]; ok {
				return a, nil
			}
			return nil, errors.New("no agent is configured for data node")
		},
		History: func(string) ([]*remediator.Job, error) { return log.List() },
		Poll:    5 * time.Millisecond,
	}, ExitWait: 50 * time.Millisecond}
}

func (g *sysRig) run(t *testing.T, params map[string]string) *remediator.Job {
	t.Helper()
	log, rem := newRemediator(t, func(l *remediator.JobLog) remediator.Runbook { return g.runbook(l) })
	job, err := rem.Start(context.Background(), remediator.ManualRequest{Cluster: "c1", Runbook: remediator.RunbookNdbSystemRestart, Params: params})
	if err != nil {
		t.Fatal(err)
	}
	return waitJob(t, log, job.ID)
}

func (g *sysRig) starts(t *testing.T) (normal, initial int) {
	t.Helper()
	for _, a := range g.agents {
		fa, ok := a.(*fakeAgent)
		if !ok {
			continue
		}
		starts, _ := fa.calls()
		for _, s := range starts {
			if s.Initial {
				initial++
			} else {
				normal++
			}
		}
	}
	return normal, initial
}

func TestSystemRestartBringsBackEveryDataNode(t *testing.T) {
	g := newSysRig(t, 5*time.Millisecond)
	j := g.run(t, nil)
	if j.State != remediator.JobSucceeded {
		t.Fatalf("job %s: %s\n%+v", j.State, j.Reason, j.Steps)
	}
	for id := 1; id <= 4; id++ {
		if n, _ := g.sim.c.Node(id); n.Status != ndb.StatusStarted {
			t.Errorf("node %d is %s after the system restart", id, n.Status)
		}
	}
	if !g.sim.c.CanServe() {
		t.Error("the cluster does not serve after the system restart")
	}
	if normal, initial := g.starts(t); normal != 4 || initial != 0 {
		t.Errorf("agents started %d nodes normally and %d initial; want 4 normal starts, none initial", normal, initial)
	}
	if got := strings.Join(steps(j, "start:"), " "); got != "start:node-1 start:node-2 start:node-3 start:node-4" {
		t.Errorf("start steps %q", got)
	}
	// The checks come before the first start, the recheck right before it.
	names := make([]string, len(j.Steps))
	for i, s := range j.Steps {
		names[i] = s.Name
	}
	all := strings.Join(names, " ")
	if i, k := strings.Index(all, "recheck-before-start "), strings.Index(all, "start:node-1"); i < 0 || k < i || !strings.Contains(all[:k], "agent-status:node-4") {
		t.Errorf("steps %s: want the agents and the recheck before the first start", all)
	}
	// Every node's phases are logged, each ending STARTED.
	for _, id := range []string{"1", "2", "3", "4"} {
		ph := steps(j, "phase:node-"+id+":")
		if len(ph) < 2 || ph[len(ph)-1] != "phase:node-"+id+":STARTED-0" {
			t.Errorf("node %s phase notes %v: want its start phases, then STARTED", id, ph)
		}
	}
}

func TestSystemRestartRefusals(t *testing.T) {
	cases := []struct {
		name  string
		setup func(t *testing.T, g *sysRig)
		state remediator.JobState
		want  []string
	}{
		{"a data node still serves", func(t *testing.T, g *sysRig) {
			// A cluster with one node down: node restart territory.
			g.sim = newSim(t, 0)
			g.sim.kill(t, 3)
			g.mgm = g.sim.mgm
			for id := 1; id <= 4; id++ {
				g.agents[id] = &fakeAgent{sim: g.sim, id: id, running: id != 3}
			}
		}, remediator.JobAborted, []string{"the cluster is not down", "node 1 is STARTED", "ndb-data-node-restart"}},
		{"a data node starting", func(t *testing.T, g *sysRig) {
			if err := g.sim.c.Boot(2, false); err != nil {
				t.Fatal(err)
			}
		}, remediator.JobAborted, []string{"node 2 is STARTING (start phase 0)"}},
		{"an agent does not answer", func(t *testing.T, g *sysRig) {
			g.agents[4] = deadAgent{}
		}, remediator.JobFailed, []string{"refused", "node 4: ", "i/o timeout", "partitioned start", "split-brain", "nothing started"}},
		{"no agent configured", func(t *testing.T, g *sysRig) {
			delete(g.agents, 2)
		}, remediator.JobFailed, []string{"refused", "node 2: no agent is configured"}},
		{"a process runs unseen", func(t *testing.T, g *sysRig) {
			a := g.agents[3].(*fakeAgent)
			a.running = true
		}, remediator.JobFailed, []string{"refused", "the processes of data nodes 3 (pid 0) run although the management server sees no data node"}},
		{"an agent of another node", func(t *testing.T, g *sysRig) {
			g.agents[1] = &fakeAgent{sim: g.sim, id: 2}
		}, remediator.JobFailed, []string{"refused", "the agent configured for data node 1 runs \"ndb_data_node\" node 2"}},
		{"no management server answers", func(t *testing.T, g *sysRig) {
			g.mgm = Failover(errSource{}, errSource{})
		}, remediator.JobFailed, []string{"refused", "no management server answers get status", "connection refused"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := newSysRig(t, 0)
			tc.setup(t, g)
			j := g.run(t, nil)
			if j.State != tc.state {
				t.Fatalf("job %s, want %s: %s", j.State, tc.state, j.Reason)
			}
			for _, w := range tc.want {
				if !strings.Contains(j.Reason, w) {
					t.Errorf("reason %q lacks %q", j.Reason, w)
				}
			}
			if normal, initial := g.starts(t); normal+initial != 0 {
				t.Errorf("%d nodes started despite the refusal", normal+initial)
			}
		})
	}
}

func TestSystemRestartTimesOutNamingNodesBehind(t *testing.T) {
	g := newSysRig(t, 0) // phases never advance
	j := g.run(t, map[string]string{"timeout": "200ms"})
	if j.State != remediator.JobFailed {
		t.Fatalf("job %s: %s", j.State, j.Reason)
	}
	for _, w := range []string{"not every data node STARTED after 200ms", "node 1 STARTING (start phase 0)", "node 4 STARTING (start phase 0)"} {
		if !strings.Contains(j.Reason, w) {
			t.Errorf("reason %q lacks %q", j.Reason, w)
		}
	}
}

func TestSystemRestartPrepareRefusesInitial(t *testing.T) {
	rb := SystemRestart{}
	if _, _, err := rb.Prepare("c1", "", map[string]string{"initial": "true"}); err == nil || !strings.Contains(err.Error(), "never starts a node --initial") {
		t.Errorf("initial=true: %v", err)
	}
	if _, _, err := rb.Prepare("c1", "3", map[string]string{}); err == nil {
		t.Error("a node named: accepted")
	}
	if _, _, err := rb.Prepare("c1", "", map[string]string{"timeout": "forever"}); err == nil || !strings.Contains(err.Error(), "timeout") {
		t.Errorf("timeout=forever: %v", err)
	}
	if _, _, err := rb.Prepare("c1", "", map[string]string{"timeout": "2m"}); err != nil {
		t.Errorf("timeout=2m: %v", err)
	}
}

func TestPriorSystemRestart(t *testing.T) {
	now := time.Date(2026, 12, 7, 4, 0, 0, 0, time.UTC)
	started := []remediator.Step{{Name: "start:node-1", Kind: "act", State: remediator.StepDone}}
	job := func(id, source string, state remediator.JobState, ended time.Duration, acted bool) *remediator.Job {
		j := &remediator.Job{ID: id, Cluster: "c1", Runbook: remediator.RunbookNdbSystemRestart, State: state,
			Trigger: remediator.Trigger{Source: source}, CreatedAt: now.Add(-ended - time.Minute), EndedAt: now.Add(-ended), Reason: "boom"}
		if acted {
			j.Steps = started
		}
		return j
	}
	self := &remediator.Job{ID: "self", Cluster: "c1", Runbook: remediator.RunbookNdbSystemRestart, State: remediator.JobRunning, Trigger: remediator.Trigger{Source: "alert"}, CreatedAt: now}
	cases := []struct {
		name  string
		jobs  []*remediator.Job
		self  *remediator.Job
		block string
	}{
		{"none before", nil, self, ""},
		{"a good one 2 minutes ago", []*remediator.Job{job("a", "alert", remediator.JobSucceeded, 2*time.Minute, true)}, self, "job a brought the cluster back by a system restart 2m0s ago"},
		{"a good one 20 minutes ago", []*remediator.Job{job("a", "alert", remediator.JobSucceeded, 20*time.Minute, true)}, self, ""},
		{"a failed one", []*remediator.Job{job("a", "alert", remediator.JobFailed, time.Hour, true)}, self, "job a started the data nodes in a system restart that did not succeed (boom)"},
		{"a refused one started nothing", []*remediator.Job{job("a", "alert", remediator.JobFailed, time.Minute, false)}, self, ""},
		{"a person's after a failed one", []*remediator.Job{job("a", "alert", remediator.JobFailed, time.Hour, true), job("b", "manual", remediator.JobSucceeded, 30*time.Minute, true)}, self, ""},
		{"a person's own job", []*remediator.Job{job("a", "alert", remediator.JobFailed, time.Hour, true)},
			&remediator.Job{ID: "self", Cluster: "c1", Runbook: remediator.RunbookNdbSystemRestart, Trigger: remediator.Trigger{Source: "manual"}, CreatedAt: now}, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := PriorSystemRestart(append(tc.jobs, tc.self), "c1", "self", now, DefaultSystemRestartBackoff)
			if tc.block == "" && got != "" || tc.block != "" && !strings.Contains(got, tc.block) {
				t.Errorf("got %q, want %q", got, tc.block)
			}
		})
	}
}

// TestNodeRestartPointsAtSystemRestart: with the whole cluster down, a
// node's restart is refused and names the system restart.
func TestNodeRestartPointsAtSystemRestart(t *testing.T) {
	g := newSysRig(t, 0)
	ag := g.agents[3].(*fakeAgent)
	j := runJob(t, func(l *remediator.JobLog) remediator.Runbook { return g.sim.runbook(ag, l) }, map[string]string{"node_id": "3"})
	if j.State != remediator.JobFailed || !strings.Contains(j.Reason, "no data node of the cluster runs") || !strings.Contains(j.Reason, "ndb-system-restart") {
		t.Errorf("job %s: %s", j.State, j.Reason)
	}
	if starts, _ := ag.calls(); len(starts) != 0 {
		t.Errorf("started despite the refusal: %+v", starts)
	}
}

func TestSystemRestartDryRunOnlyPlans(t *testing.T) {
	g := newSysRig(t, 5*time.Millisecond)
	log, rem := newRemediator(t, func(l *remediator.JobLog) remediator.Runbook { return g.runbook(l) })
	job, err := rem.Start(context.Background(), remediator.ManualRequest{Cluster: "c1", Runbook: remediator.RunbookNdbSystemRestart, DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	j := waitJob(t, log, job.ID)
	if j.State != remediator.JobPlanned {
		t.Fatalf("dry run ended %s: %s", j.State, j.Reason)
	}
	if got := strings.Join(steps(j, "start:"), " "); got != "start:node-1 start:node-2 start:node-3 start:node-4" {
		t.Errorf("planned starts %q", got)
	}
	if normal, initial := g.starts(t); normal+initial != 0 {
		t.Errorf("a dry run started %d nodes", normal+initial)
	}
}

// TestSystemRestartNotRepeatedWhenClusterFallsAgain: NdbNodeGroupLost
// starts a system restart; when the cluster falls again minutes later,
// the next occurrence of the alert is refused instead of looping.
func TestSystemRestartNotRepeatedWhenClusterFallsAgain(t *testing.T) {
	g := newSysRig(t, 5*time.Millisecond)
	log, rem := newRemediator(t, func(l *remediator.JobLog) remediator.Runbook { return g.runbook(l) })
	fire := func(startsAt time.Time) *remediator.Job {
		t.Helper()
		labels := map[string]string{"alertname": "NdbNodeGroupLost", "cluster": "c1", "instance": g.sim.srv.Addr(), "node_group": "1",
			"severity": "critical", "remediation": remediator.RunbookNdbSystemRestart}
		before, _ := log.List()
		if n := rem.Receive(remediator.WebhookMessage{Status: "firing", Alerts: []remediator.WebhookAlert{{Status: "firing", Labels: labels, StartsAt: startsAt}}}); n != 1 {
			t.Fatalf("accepted %d alerts", n)
		}
		deadline := time.Now().Add(10 * time.Second)
		for {
			jobs, _ := log.List()
			if len(jobs) > len(before) {
				for _, j := range jobs {
					if !slicesContainsID(before, j.ID) {
						return waitJob(t, log, j.ID)
					}
				}
			}
			if time.Now().After(deadline) {
				t.Fatal("no job started for the alert")
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	first := fire(time.Now())
	if first.State != remediator.JobSucceeded || first.Trigger.Source != "alert" {
		t.Fatalf("first system restart: %s (%s): %s", first.State, first.Trigger.Source, first.Reason)
	}
	// The cluster loses node group 1 again.
	for _, id := range []int{3, 4} {
		g.sim.kill(t, id)
	}
	for id := 1; id <= 4; id++ {
		a := g.agents[id].(*fakeAgent)
		a.mu.Lock()
		a.running = false // the processes ended with the cluster
		a.mu.Unlock()
	}
	second := fire(time.Now().Add(time.Second))
	if second.State != remediator.JobFailed || !strings.Contains(second.Reason, "no automatic system restart: job "+first.ID) || !strings.Contains(second.Reason, "10m0s backoff") {
		t.Fatalf("second system restart: %s: %s", second.State, second.Reason)
	}
	if normal, _ := g.starts(t); normal != 4 {
		t.Errorf("%d starts in all, want the first job's 4 only", normal)
	}
}

func slicesContainsID(jobs []*remediator.Job, id string) bool {
	for _, j := range jobs {
		if j.ID == id {
			return true
		}
	}
	return false
}
