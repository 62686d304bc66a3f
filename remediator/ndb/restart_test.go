package ndb

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nines-project/nines/agent"
	exporterndb "github.com/nines-project/nines/exporter/ndb"
	"github.com/nines-project/nines/ndb"
	"github.com/nines-project/nines/remediator"
	"github.com/nines-project/nines/sandbox/ndbsim"
)

// simCluster is the simulator's model behind its real mgm server, 4 data
// nodes in node groups 0 (1, 2) and 1 (3, 4).
type simCluster struct {
	c   *ndbsim.Cluster
	srv *ndbsim.Server
	mgm *exporterndb.Mgm
}

func newSim(t *testing.T, phase time.Duration) *simCluster {
	t.Helper()
	c, err := ndbsim.NewCluster(ndbsim.Config{DataNodes: 4, Replicas: 2})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := ndbsim.Serve(c, "127.0.0.1:0", ndbsim.ServerConfig{PhaseInterval: phase})
	if err != nil {
		t.Fatal(err)
	}
	mgm := exporterndb.NewMgm(exporterndb.MgmConfig{Addr: srv.Addr(), Timeout: 2 * time.Second})
	t.Cleanup(func() { mgm.Close(); srv.Close() })
	return &simCluster{c: c, srv: srv, mgm: mgm}
}

func (s *simCluster) kill(t *testing.T, id int) {
	t.Helper()
	if err := s.c.SetStatus(id, ndb.StatusNoContact, 0); err != nil {
		t.Fatal(err)
	}
}

// fakeAgent is a data node's agent whose process is the model's node:
// Start boots it (normally, or initial when asked), as a real agent
// starting ndbmtd would make it connect and walk its start phases.
type fakeAgent struct {
	sim *simCluster
	id  int

	mu      sync.Mutex
	running bool // a process runs (hung when the model has no contact)
	starts  []agent.StartRequest
	stops   int
	// afterStart runs once the model booted the node.
	afterStart func()
}

func (a *fakeAgent) Status(context.Context) (agent.Status, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return agent.Status{Kind: agent.KindNdbDataNode, NdbNodeID: a.id, Running: a.running}, nil
}

func (a *fakeAgent) Start(_ context.Context, req agent.StartRequest) (agent.StartResult, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.starts = append(a.starts, req)
	if a.running {
		return agent.StartResult{AlreadyRunning: true, State: "already running"}, nil
	}
	if err := a.sim.c.Boot(a.id, req.Initial); err != nil {
		return agent.StartResult{}, err
	}
	a.running = true
	if a.afterStart != nil {
		go a.afterStart()
	}
	return agent.StartResult{Pid: 4242, State: "running", Initial: req.Initial}, nil
}

func (a *fakeAgent) Stop(context.Context, agent.StopRequest) (agent.StopResult, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.stops++
	was := a.running
	a.running = false
	return agent.StopResult{WasRunning: was}, nil
}

func (a *fakeAgent) calls() ([]agent.StartRequest, int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]agent.StartRequest(nil), a.starts...), a.stops
}

// errSource is a management server that does not answer.
type errSource struct{}

func (errSource) GetStatus(context.Context, ...ndb.NodeType) ([]ndb.Node, error) {
	return nil, errors.New("connect to ndb_mgmd 192.0.2.1:1186: connection refused")
}

func (s *simCluster) runbook(ag *fakeAgent, log *remediator.JobLog) DataNodeRestart {
	return DataNodeRestart{Access{
		// The first configured management server is down: the runbook
		// fails over to the next.
		Mgm: func(string) (StatusSource, error) { return Failover(errSource{}, s.mgm), nil },
		Agent: func(_ string, id int) (Agent, error) {
			if id != ag.id {
				return nil, errors.New("no agent configured")
			}
			return ag, nil
		},
		History: func(string) ([]*remediator.Job, error) { return log.List() },
		Poll:    5 * time.Millisecond,
	}}
}

// runJob runs one manual job to its end and returns it.
func runJob(t *testing.T, rb func(*remediator.JobLog) remediator.Runbook, params map[string]string) *remediator.Job {
	t.Helper()
	log, rem := newRemediator(t, rb)
	job, err := rem.Start(context.Background(), remediator.ManualRequest{Cluster: "c1", Runbook: remediator.RunbookNdbDataNodeRestart, Params: params})
	if err != nil {
		t.Fatal(err)
	}
	return waitJob(t, log, job.ID)
}

func newRemediator(t *testing.T, rb func(*remediator.JobLog) remediator.Runbook) (*remediator.JobLog, *remediator.Remediator) {
	t.Helper()
	log, err := remediator.OpenJobLog(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	rem, err := remediator.New(remediator.Options{Log: log, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Runbooks: []remediator.Runbook{rb(log)}, Settle: 10 * time.Millisecond,
		Policies: map[string]remediator.Policy{"c1": {Mode: remediator.ModeAuto, Kind: "ndb", MaxRecoveries: 100}}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	go rem.Run(ctx)
	return log, rem
}

func waitJob(t *testing.T, log *remediator.JobLog, id string) *remediator.Job {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		j, err := log.Get(id)
		if err == nil && j.State.Done() {
			return j
		}
		if time.Now().After(deadline) {
			t.Fatalf("job %s did not end: %+v", id, j)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func steps(j *remediator.Job, prefix string) []string {
	var out []string
	for _, s := range j.Steps {
		if strings.HasPrefix(s.Name, prefix) {
			out = append(out, s.Name)
		}
	}
	return out
}

func TestRestartStartsDownNodeAndFollowsPhases(t *testing.T) {
	sim := newSim(t, 20*time.Millisecond)
	sim.kill(t, 3)
	ag := &fakeAgent{sim: sim, id: 3}
	j := runJob(t, func(l *remediator.JobLog) remediator.Runbook { return sim.runbook(ag, l) }, map[string]string{"node_id": "3"})
	if j.State != remediator.JobSucceeded {
		t.Fatalf("job %s: %s\n%+v", j.State, j.Reason, j.Steps)
	}
	if n, _ := sim.c.Node(3); n.Status != ndb.StatusStarted {
		t.Errorf("node 3 is %s", n.Status)
	}
	starts, stops := ag.calls()
	if len(starts) != 1 || starts[0].Initial || stops != 0 {
		t.Errorf("agent calls: starts %+v, stops %d; want one normal start", starts, stops)
	}
	if sim.c.LastStartInitial(3) {
		t.Error("node 3 was started initial by default")
	}
	// Phase changes are logged in the order the node walks them (a poll
	// may miss a phase that lasted less than a poll), ending STARTED.
	phases := steps(j, "phase:node-3:")
	if len(phases) < 5 || phases[len(phases)-1] != "phase:node-3:STARTED-0" {
		t.Fatalf("phase notes %v: want several STARTING phases, then STARTED", phases)
	}
	prev := -2
	for _, p := range phases[:len(phases)-1] {
		var ph int
		if _, err := fmt.Sscanf(p, "phase:node-3:STARTING-%d", &ph); err != nil || ph <= prev {
			t.Errorf("phase notes %v: %q out of order", phases, p)
		}
		prev = ph
	}
	if j.Target != "3" {
		t.Errorf("job target %q, want the node id 3", j.Target)
	}
}

func TestRestartFromAlertUsesNodeLabel(t *testing.T) {
	sim := newSim(t, 5*time.Millisecond)
	sim.kill(t, 4)
	ag := &fakeAgent{sim: sim, id: 4}
	log, rem := newRemediator(t, func(l *remediator.JobLog) remediator.Runbook { return sim.runbook(ag, l) })
	// NdbDataNodeDown's labels: instance is the ndb_mgmd address.
	labels := map[string]string{"alertname": "NdbDataNodeDown", "cluster": "c1", "instance": sim.srv.Addr(), "node_id": "4",
		"node_group": "1", "type": "NDB", "severity": "warning", "remediation": remediator.RunbookNdbDataNodeRestart}
	if n := rem.Receive(remediator.WebhookMessage{Status: "firing", Alerts: []remediator.WebhookAlert{{Status: "firing", Labels: labels, StartsAt: time.Now()}}}); n != 1 {
		t.Fatalf("accepted %d alerts", n)
	}
	var j *remediator.Job
	deadline := time.Now().Add(10 * time.Second)
	for j == nil {
		jobs, _ := log.List()
		if len(jobs) > 0 {
			j = waitJob(t, log, jobs[0].ID)
		} else if time.Now().After(deadline) {
			t.Fatal("no job started for the alert")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if j.State != remediator.JobSucceeded || j.Target != "4" {
		t.Fatalf("job %s on %q: %s", j.State, j.Target, j.Reason)
	}
	if n, _ := sim.c.Node(4); n.Status != ndb.StatusStarted {
		t.Errorf("node 4 is %s", n.Status)
	}
}

func TestRestartRefusedWhenGroupPeerNotStarted(t *testing.T) {
	sim := newSim(t, 0)
	sim.kill(t, 3)
	// Node 4, node 3's group peer, is itself starting.
	if err := sim.c.SetStatus(4, ndb.StatusStarting, 4); err != nil {
		t.Fatal(err)
	}
	ag := &fakeAgent{sim: sim, id: 3}
	j := runJob(t, func(l *remediator.JobLog) remediator.Runbook { return sim.runbook(ag, l) }, map[string]string{"node_id": "3"})
	if j.State != remediator.JobFailed || !strings.Contains(j.Reason, "refused") || !strings.Contains(j.Reason, "node 4 is STARTING (start phase 4)") {
		t.Errorf("job %s: %s", j.State, j.Reason)
	}
	if starts, _ := ag.calls(); len(starts) != 0 {
		t.Errorf("started despite the refusal: %+v", starts)
	}
}

func TestRestartAbortsWhenNodeAlreadyUp(t *testing.T) {
	sim := newSim(t, 0)
	ag := &fakeAgent{sim: sim, id: 3}
	j := runJob(t, func(l *remediator.JobLog) remediator.Runbook { return sim.runbook(ag, l) }, map[string]string{"node_id": "3"})
	if j.State != remediator.JobAborted || !strings.Contains(j.Reason, "data node 3 is STARTED again") {
		t.Errorf("job %s: %s", j.State, j.Reason)
	}
	if starts, _ := ag.calls(); len(starts) != 0 {
		t.Errorf("started a running node: %+v", starts)
	}
}

func TestRestartTimesOutWhenNodeNeverStarts(t *testing.T) {
	sim := newSim(t, 0) // phases never advance: the node stays at phase 0
	sim.kill(t, 3)
	ag := &fakeAgent{sim: sim, id: 3}
	j := runJob(t, func(l *remediator.JobLog) remediator.Runbook { return sim.runbook(ag, l) }, map[string]string{"node_id": "3", "timeout": "300ms"})
	if j.State != remediator.JobFailed || !strings.Contains(j.Reason, "data node 3 not STARTED after 300ms (last seen STARTING (start phase 0))") {
		t.Errorf("job %s: %s", j.State, j.Reason)
	}
}

func TestRestartFailsWhenNodeFallsBack(t *testing.T) {
	sim := newSim(t, 20*time.Millisecond)
	sim.kill(t, 3)
	ag := &fakeAgent{sim: sim, id: 3}
	// The node dies in start phase 4 (say, out of redo space).
	ag.afterStart = func() {
		for {
			if n, _ := sim.c.Node(3); n.Status == ndb.StatusStarting && n.StartPhase >= 4 {
				_ = sim.c.SetStatus(3, ndb.StatusNotStarted, 0)
				return
			}
			time.Sleep(time.Millisecond)
		}
	}
	j := runJob(t, func(l *remediator.JobLog) remediator.Runbook { return sim.runbook(ag, l) }, map[string]string{"node_id": "3"})
	if j.State != remediator.JobFailed || !strings.Contains(j.Reason, "fell back to NOT_STARTED after starting") {
		t.Errorf("job %s: %s", j.State, j.Reason)
	}
}

func TestRestartInitialOnlyWhenAsked(t *testing.T) {
	sim := newSim(t, 5*time.Millisecond)
	sim.kill(t, 3)
	ag := &fakeAgent{sim: sim, id: 3}
	j := runJob(t, func(l *remediator.JobLog) remediator.Runbook { return sim.runbook(ag, l) }, map[string]string{"node_id": "3", "initial": "true"})
	if j.State != remediator.JobSucceeded {
		t.Fatalf("job %s: %s", j.State, j.Reason)
	}
	if starts, _ := ag.calls(); len(starts) != 1 || !starts[0].Initial || !sim.c.LastStartInitial(3) {
		t.Errorf("initial=true: starts %+v, model initial %v", starts, sim.c.LastStartInitial(3))
	}
	if len(steps(j, "initial")) != 1 {
		t.Errorf("the initial start is not called out in the log: %+v", j.Steps)
	}
}

func TestRestartHungProcess(t *testing.T) {
	sim := newSim(t, 5*time.Millisecond)
	sim.kill(t, 3)
	ag := &fakeAgent{sim: sim, id: 3, running: true} // runs, but ndb_mgmd has no contact
	j := runJob(t, func(l *remediator.JobLog) remediator.Runbook { return sim.runbook(ag, l) }, map[string]string{"node_id": "3"})
	if j.State != remediator.JobFailed || !strings.Contains(j.Reason, "process runs") || !strings.Contains(j.Reason, "kill_hung=true") {
		t.Errorf("hung process without kill_hung: job %s: %s", j.State, j.Reason)
	}
	if starts, stops := ag.calls(); len(starts) != 0 || stops != 0 {
		t.Errorf("acted on a hung process: starts %+v stops %d", starts, stops)
	}

	j = runJob(t, func(l *remediator.JobLog) remediator.Runbook { return sim.runbook(ag, l) }, map[string]string{"node_id": "3", "kill_hung": "true"})
	if j.State != remediator.JobSucceeded {
		t.Fatalf("kill_hung=true: job %s: %s", j.State, j.Reason)
	}
	if starts, stops := ag.calls(); len(starts) != 1 || stops != 1 {
		t.Errorf("kill_hung=true: starts %+v stops %d, want one stop then one start", starts, stops)
	}
}

func TestRestartPrepareRejectsBadParams(t *testing.T) {
	rb := DataNodeRestart{}
	for _, params := range []map[string]string{
		{},
		{"node_id": "x"},
		{"node_id": "3", "initial": "yes"},
		{"node_id": "3", "timeout": "2h"},
		{"node_id": "3", "colour": "blue"},
	} {
		if _, _, err := rb.Prepare("c1", "", params); err == nil {
			t.Errorf("Prepare(%v) accepted", params)
		}
	}
	params, target, err := rb.Prepare("c1", "3", map[string]string{})
	if err != nil || target != "3" || params["node_id"] != "3" {
		t.Errorf("Prepare with target 3: %v %q %v", params, target, err)
	}
}

func TestRestartDryRunOnlyPlans(t *testing.T) {
	sim := newSim(t, 5*time.Millisecond)
	sim.kill(t, 3)
	ag := &fakeAgent{sim: sim, id: 3}
	log, rem := newRemediator(t, func(l *remediator.JobLog) remediator.Runbook { return sim.runbook(ag, l) })
	job, err := rem.Start(context.Background(), remediator.ManualRequest{Cluster: "c1", Runbook: remediator.RunbookNdbDataNodeRestart,
		Params: map[string]string{"node_id": "3"}, DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	j := waitJob(t, log, job.ID)
	if j.State != remediator.JobPlanned {
		t.Fatalf("dry run ended %s: %s", j.State, j.Reason)
	}
	if starts, _ := ag.calls(); len(starts) != 0 {
		t.Errorf("a dry run started the node: %+v", starts)
	}
	if n, _ := sim.c.Node(3); n.Status != ndb.StatusNoContact {
		t.Errorf("node 3 is %s after a dry run", n.Status)
	}
}

func TestRestartFailsWhenNoManagementServerAnswers(t *testing.T) {
	sim := newSim(t, 0)
	ag := &fakeAgent{sim: sim, id: 3}
	j := runJob(t, func(l *remediator.JobLog) remediator.Runbook {
		rb := sim.runbook(ag, l)
		rb.Mgm = func(string) (StatusSource, error) { return Failover(errSource{}, errSource{}), nil }
		return rb
	}, map[string]string{"node_id": "3"})
	if j.State != remediator.JobFailed || !strings.Contains(j.Reason, "no management server answered") || strings.Count(j.Reason, "192.0.2.1:1186") != 2 {
		t.Errorf("job %s: %s", j.State, j.Reason)
	}
	if starts, _ := ag.calls(); len(starts) != 0 {
		t.Errorf("started without seeing the cluster: %+v", starts)
	}
}
