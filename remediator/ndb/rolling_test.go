package ndb

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nines-project/nines/agent"
	exporterndb "github.com/nines-project/nines/exporter/ndb"
	"github.com/nines-project/nines/ndb"
	"github.com/nines-project/nines/remediator"
	"github.com/nines-project/nines/sandbox/ndbsim"
)

func runRolling(t *testing.T, rb RollingRestart) *remediator.Job {
	t.Helper()
	log, rem := newRemediator(t, func(*remediator.JobLog) remediator.Runbook { return rb })
	job, err := rem.Start(context.Background(), remediator.ManualRequest{Cluster: "c1", Runbook: remediator.RunbookNdbRollingRestart})
	if err != nil {
		t.Fatal(err)
	}
	return waitJob(t, log, job.ID)
}

func TestRollingRestartOneNodeAtATime(t *testing.T) {
	sim := newRollingSim(t)
	// The invariant, checked while the job runs: never more than one
	// data node out of STARTED, so no node group is ever without a
	// serving node.
	var worst atomic.Int32
	stop := make(chan struct{})
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		for {
			select {
			case <-stop:
				return
			default:
			}
			down := int32(0)
			for _, n := range sim.c.Nodes() {
				if n.Type == ndb.TypeNDB && n.Status != ndb.StatusStarted {
					down++
				}
			}
			if down > worst.Load() {
				worst.Store(down)
			}
			time.Sleep(time.Millisecond)
		}
	}()
	j := runRolling(t, sim.runbook())
	close(stop)
	<-watched
	if j.State != remediator.JobSucceeded {
		t.Fatalf("job %s: %s", j.State, j.Reason)
	}
	if w := worst.Load(); w != 1 {
		t.Errorf("at worst %d data nodes were not STARTED at once; want exactly 1", w)
	}
	var order []string
	for _, s := range j.Steps {
		if strings.HasPrefix(s.Name, "restart:node-") {
			order = append(order, s.Name)
		}
	}
	if got := strings.Join(order, " "); got != "restart:node-1 restart:node-2 restart:node-3 restart:node-4" {
		t.Errorf("restart order %s", got)
	}
	for id := 1; id <= 4; id++ {
		n, _ := sim.c.Node(id)
		if n.Status != ndb.StatusStarted || n.ConnectCount != 1 || sim.c.LastStartInitial(id) {
			t.Errorf("node %d after the rolling restart: %s, connect_count %d (want 1 restart), initial %v", id, n.Status, n.ConnectCount, sim.c.LastStartInitial(id))
		}
	}
	if len(steps(j, fmt.Sprintf("phase:node-%d:STARTING", 3))) == 0 {
		t.Error("node 3's start phases were not logged")
	}
}

func TestRollingRestartRefusedWhileNodeDown(t *testing.T) {
	sim := newRollingSim(t)
	if err := sim.c.SetStatus(2, ndb.StatusNoContact, 0); err != nil {
		t.Fatal(err)
	}
	j := runRolling(t, sim.runbook())
	if j.State != remediator.JobFailed || !strings.Contains(j.Reason, "node 2 is NO_CONTACT") {
		t.Errorf("job %s: %s", j.State, j.Reason)
	}
	for _, id := range []int{1, 3, 4} {
		if n, _ := sim.c.Node(id); n.ConnectCount != 0 {
			t.Errorf("node %d was restarted (connect_count %d) while node 2 was down", id, n.ConnectCount)
		}
	}
}

// rollingSim is a cluster of 4 data nodes and 2 SQL nodes (API nodes 100
// and 101) whose management server and SQL nodes have agents.
type rollingSim struct {
	c     *ndbsim.Cluster
	phase time.Duration
	mgm   *exporterndb.Mgm
	mgmAg *fakeMgmAgent
	sqls  []*fakeSQL
	// down is the most SQL nodes seen down at once, watched as the job
	// runs.
	mu       sync.Mutex
	sqlDown  int
	worstSQL int
}

func newRollingSim(t *testing.T) *rollingSim {
	t.Helper()
	c, err := ndbsim.NewCluster(ndbsim.Config{DataNodes: 4, Replicas: 2, SQLNodes: 2})
	if err != nil {
		t.Fatal(err)
	}
	s := &rollingSim{c: c, phase: 5 * time.Millisecond}
	s.mgmAg = &fakeMgmAgent{sim: s}
	if err := s.mgmAg.serve("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	s.mgm = exporterndb.NewMgm(exporterndb.MgmConfig{Addr: s.mgmAg.addr, Timeout: 2 * time.Second})
	t.Cleanup(func() { s.mgm.Close(); s.mgmAg.close() })
	for i, id := range []int{100, 101} {
		s.sqls = append(s.sqls, &fakeSQL{sim: s, apiID: id, name: fmt.Sprintf("sql%d", i+1), up: true})
	}
	return s
}

func (s *rollingSim) runbook() RollingRestart {
	return RollingRestart{
		Mgm: func(string) (Restarter, error) { return FailoverRestarter(s.mgm), nil },
		MgmServers: func(string) ([]MgmServer, error) {
			return []MgmServer{{Addr: s.mgmAg.addr, Status: s.mgm, Agent: s.mgmAg}}, nil
		},
		SQLNodes: func(string) ([]SQLNode, error) {
			var out []SQLNode
			for _, q := range s.sqls {
				out = append(out, SQLNode{Name: q.name, SQL: q, Agent: q})
			}
			return out, nil
		},
		Poll: 5 * time.Millisecond,
	}
}

// fakeMgmAgent is the management server's agent: Stop closes the mgm
// port (the node shows NO_CONTACT to nobody, as nobody can ask), Start
// serves it again on the same address.
type fakeMgmAgent struct {
	sim    *rollingSim
	mu     sync.Mutex
	srv    *ndbsim.Server
	addr   string
	stops  int
	starts int
}

func (a *fakeMgmAgent) serve(addr string) error {
	srv, err := ndbsim.Serve(a.sim.c, addr, ndbsim.ServerConfig{PhaseInterval: a.sim.phase})
	if err != nil {
		return err
	}
	a.srv, a.addr = srv, srv.Addr()
	return nil
}

func (a *fakeMgmAgent) close() {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.srv != nil {
		a.srv.Close()
		a.srv = nil
	}
}

func (a *fakeMgmAgent) Status(context.Context) (agent.Status, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return agent.Status{Kind: agent.KindNdbMgmd, NdbNodeID: 50, Running: a.srv != nil}, nil
}

func (a *fakeMgmAgent) Stop(context.Context, agent.StopRequest) (agent.StopResult, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.stops++
	was := a.srv != nil
	if was {
		a.srv.Close()
		a.srv = nil
	}
	return agent.StopResult{WasRunning: was}, nil
}

func (a *fakeMgmAgent) Start(context.Context, agent.StartRequest) (agent.StartResult, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.starts++
	if a.srv != nil {
		return agent.StartResult{AlreadyRunning: true}, nil
	}
	if err := a.serve(a.addr); err != nil {
		return agent.StartResult{}, err
	}
	return agent.StartResult{Pid: 5050, State: "running"}, nil
}

// fakeSQL is an SQL node and its agent: it reads ndbinfo.nodes from the
// model while up; Stop disconnects its API node, Start connects it again.
type fakeSQL struct {
	sim   *rollingSim
	apiID int
	name  string

	mu     sync.Mutex
	up     bool
	stops  int
	starts int
	// stale, when set, is the generation this SQL node reports for
	// every data node of it (a node that never took a new config).
	stale map[int]uint64
}

func (q *fakeSQL) ReadNodes(context.Context) ([]exporterndb.NodeRow, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if !q.up {
		return nil, fmt.Errorf("dial %s: connection refused", q.name)
	}
	var rows []exporterndb.NodeRow
	for _, d := range q.sim.c.State().Data {
		if !d.Running {
			continue
		}
		g := uint64(d.ConfigGeneration)
		if s, ok := q.stale[d.ID]; ok {
			g = s
		}
		rows = append(rows, exporterndb.NodeRow{NodeID: d.ID, State: exporterndb.NodeStarted, ConfigGeneration: g})
	}
	return rows, nil
}

func (q *fakeSQL) Status(context.Context) (agent.Status, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return agent.Status{Kind: agent.KindMariaDB, Running: q.up}, nil
}

func (q *fakeSQL) Stop(context.Context, agent.StopRequest) (agent.StopResult, error) {
	q.mu.Lock()
	was := q.up
	q.up = false
	q.stops++
	q.mu.Unlock()
	q.sim.c.SetStatus(q.apiID, ndb.StatusNoContact, 0)
	q.sim.mu.Lock()
	if was {
		q.sim.sqlDown++
		q.sim.worstSQL = max(q.sim.worstSQL, q.sim.sqlDown)
	}
	q.sim.mu.Unlock()
	return agent.StopResult{WasRunning: was}, nil
}

func (q *fakeSQL) Start(context.Context, agent.StartRequest) (agent.StartResult, error) {
	q.mu.Lock()
	was := q.up
	q.up = true
	q.starts++
	q.mu.Unlock()
	if !was {
		q.sim.mu.Lock()
		q.sim.sqlDown--
		q.sim.mu.Unlock()
		// The mysqld connects to the cluster a moment after it answers.
		go func() {
			time.Sleep(20 * time.Millisecond)
			q.sim.c.SetStatus(q.apiID, ndb.StatusConnected, 0)
		}()
	}
	return agent.StartResult{Pid: 7000 + q.apiID, State: "answering"}, nil
}

func (q *fakeSQL) calls() (int, int) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.stops, q.starts
}

func findStep(j *remediator.Job, name string) *remediator.Step {
	for i := range j.Steps {
		if j.Steps[i].Name == name {
			return &j.Steps[i]
		}
	}
	return nil
}

func acts(j *remediator.Job) string {
	var out []string
	for _, s := range j.Steps {
		if s.Kind == "act" {
			out = append(out, s.Name)
		}
	}
	return strings.Join(out, " ")
}

func TestRollingRestartAllThreePhasesAfterConfigChange(t *testing.T) {
	sim := newRollingSim(t)
	// A configuration change: the management server serves generation
	// 2; each data node takes it at its restart.
	sim.c.SetConfigGeneration(2)
	j := runRolling(t, sim.runbook())
	if j.State != remediator.JobSucceeded {
		t.Fatalf("job %s: %s\n%s", j.State, j.Reason, acts(j))
	}
	a := sim.mgmAg.addr
	want := "stop:mgm-" + a + " start:mgm-" + a +
		" restart:node-1 restart:node-2 restart:node-3 restart:node-4" +
		" stop:sql-sql1 start:sql-sql1 stop:sql-sql2 start:sql-sql2"
	if got := acts(j); got != want {
		t.Errorf("acts in order:\n got %s\nwant %s", got, want)
	}
	if sim.mgmAg.stops != 1 || sim.mgmAg.starts != 1 {
		t.Errorf("management server: %d stops, %d starts; want 1 each", sim.mgmAg.stops, sim.mgmAg.starts)
	}
	for _, q := range sim.sqls {
		if stops, starts := q.calls(); stops != 1 || starts != 1 {
			t.Errorf("SQL node %s: %d stops, %d starts; want 1 each", q.name, stops, starts)
		}
	}
	if sim.worstSQL != 1 {
		t.Errorf("at worst %d SQL nodes were down at once; want 1", sim.worstSQL)
	}
	for _, d := range sim.c.State().Data {
		if d.ConfigGeneration != 2 || d.Status != ndb.StatusStarted {
			t.Errorf("data node %d: %s on generation %d; want STARTED on 2", d.ID, d.Status, d.ConfigGeneration)
		}
	}
	// The generations are in the job log before and after each node:
	// node 1's restart moved it alone to generation 2.
	var after1 map[string]uint64
	if s := findStep(j, "generations-after:node-1"); s == nil || json.Unmarshal(s.Output, &after1) != nil {
		t.Fatalf("no generations logged after node 1: %+v", s)
	}
	if after1["node-1"] != 2 || after1["node-2"] != 1 || after1["node-4"] != 1 {
		t.Errorf("generations after node 1: %v; want node 1 alone on 2", after1)
	}
	if c := findStep(j, "check-generations"); c == nil || c.State != remediator.StepDone {
		t.Errorf("final generation check: %+v", c)
	}
	if len(steps(j, "not-done")) != 0 {
		t.Error("the job still says a person must finish it")
	}
}

func TestRollingRestartFailsNamingNodesBehind(t *testing.T) {
	sim := newRollingSim(t)
	sim.c.SetConfigGeneration(2)
	// Both SQL nodes see node 3 still on generation 1 (its restart did
	// not take the new config).
	for _, q := range sim.sqls {
		q.stale = map[int]uint64{3: 1}
	}
	j := runRolling(t, sim.runbook())
	if j.State != remediator.JobFailed || !strings.Contains(j.Reason, "node 3 (generation 1)") || strings.Contains(j.Reason, "node 4") {
		t.Errorf("job %s: %s", j.State, j.Reason)
	}
}

func TestRollingRestartRefusesSQLNodeWhileAnotherIsDown(t *testing.T) {
	sim := newRollingSim(t)
	sim.sqls[1].Stop(context.Background(), agent.StopRequest{})
	j := runRolling(t, sim.runbook())
	if j.State != remediator.JobFailed || !strings.Contains(j.Reason, "SQL node sql2 does not answer") {
		t.Errorf("job %s: %s", j.State, j.Reason)
	}
	if stops, _ := sim.sqls[0].calls(); stops != 0 {
		t.Errorf("sql1 was stopped %d times while sql2 was down", stops)
	}
}

func TestRollingRestartRefusesMgmWhenTheOtherIsDown(t *testing.T) {
	sim := newRollingSim(t)
	rb := sim.runbook()
	rb.MgmServers = func(string) ([]MgmServer, error) {
		return []MgmServer{{Addr: sim.mgmAg.addr, Status: sim.mgm, Agent: sim.mgmAg}, {Addr: "192.0.2.1:1186", Status: errSource{}}}, nil
	}
	j := runRolling(t, rb)
	if j.State != remediator.JobFailed || !strings.Contains(j.Reason, "no management server") {
		t.Errorf("job %s: %s", j.State, j.Reason)
	}
	if sim.mgmAg.stops != 0 {
		t.Error("the only answering management server was stopped")
	}
	for id := 1; id <= 4; id++ {
		if n, _ := sim.c.Node(id); n.ConnectCount != 0 {
			t.Errorf("data node %d restarted after the refusal", id)
		}
	}
}

func TestRollingRestartSingleMgmLogsWhatIsMissing(t *testing.T) {
	sim := newRollingSim(t)
	j := runRolling(t, sim.runbook())
	if j.State != remediator.JobSucceeded {
		t.Fatalf("job %s: %s", j.State, j.Reason)
	}
	s := findStep(j, "check-before:mgm-"+sim.mgmAg.addr)
	if s == nil || !strings.Contains(string(s.Output), "only management server") || !strings.Contains(string(s.Output), "keep serving") {
		t.Errorf("check before the only management server: %+v", s)
	}
}

// TestRollingRestartResumesWithoutRepeatingActs: the appliance died
// after the data node phase and after SQL node sql1 was stopped. The
// resumed job restarts nothing again: it starts sql1 (no second stop,
// and no check that would refuse with sql1 down), then restarts sql2.
func TestRollingRestartResumesWithoutRepeatingActs(t *testing.T) {
	sim := newRollingSim(t)
	sim.sqls[0].Stop(context.Background(), agent.StopRequest{})
	log, err := remediator.OpenJobLog(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	steps := []remediator.Step{{Name: "restarted:mgm-" + sim.mgmAg.addr, Kind: "observe", State: remediator.StepDone, Attempts: 1}}
	for id := 1; id <= 4; id++ {
		steps = append(steps, remediator.Step{Name: fmt.Sprintf("restart:node-%d", id), Kind: "act", State: remediator.StepDone, Output: []byte("4"), Attempts: 1},
			remediator.Step{Name: fmt.Sprintf("restarted:node-%d", id), Kind: "observe", State: remediator.StepDone, Attempts: 1})
	}
	steps = append(steps, remediator.Step{Name: "stop:sql-sql1", Kind: "act", State: remediator.StepDone, Input: []byte(`{"sql":"sql1","api_connected_before":2}`), Output: []byte(`{"was_running":true}`), Attempts: 1})
	if err := log.Save(&remediator.Job{ID: "j1", Cluster: "c1", Runbook: remediator.RunbookNdbRollingRestart, State: remediator.JobRunning, CreatedAt: time.Now(), Steps: steps}); err != nil {
		t.Fatal(err)
	}
	rem, err := remediator.New(remediator.Options{Log: log, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Runbooks: []remediator.Runbook{sim.runbook()},
		Policies: map[string]remediator.Policy{"c1": {Mode: remediator.ModeAuto, Kind: "ndb", MaxRecoveries: 100}}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go rem.Run(ctx)
	j := waitJob(t, log, "j1")
	if j.State != remediator.JobSucceeded {
		t.Fatalf("resumed job %s: %s\n%s", j.State, j.Reason, acts(j))
	}
	if sim.mgmAg.stops != 0 || sim.mgmAg.starts != 0 {
		t.Errorf("the management server was restarted again: %d stops, %d starts", sim.mgmAg.stops, sim.mgmAg.starts)
	}
	for id := 1; id <= 4; id++ {
		if n, _ := sim.c.Node(id); n.ConnectCount != 0 {
			t.Errorf("data node %d was restarted again", id)
		}
	}
	if stops, starts := sim.sqls[0].calls(); stops != 1 || starts != 1 {
		t.Errorf("sql1: %d stops (1 before the resume), %d starts; want 1 each", stops, starts)
	}
	if stops, starts := sim.sqls[1].calls(); stops != 1 || starts != 1 {
		t.Errorf("sql2: %d stops, %d starts; want 1 each", stops, starts)
	}
	if sim.worstSQL != 1 {
		t.Errorf("%d SQL nodes down at once", sim.worstSQL)
	}
}

func TestRollingRestartRefusesAgentOfAnotherKind(t *testing.T) {
	sim := newRollingSim(t)
	rb := sim.runbook()
	// The mapping names a data node's agent for the management server.
	rb.MgmServers = func(string) ([]MgmServer, error) {
		return []MgmServer{{Addr: sim.mgmAg.addr, Status: sim.mgm, Agent: &fakeAgent{id: 1}}}, nil
	}
	j := runRolling(t, rb)
	if j.State != remediator.JobFailed || !strings.Contains(j.Reason, `controls "ndb_data_node", not ndb_mgmd`) {
		t.Errorf("job %s: %s", j.State, j.Reason)
	}
	if acts(j) != "" {
		t.Errorf("acted: %s", acts(j))
	}
}

func TestRollingRestartDryRunOnlyPlans(t *testing.T) {
	sim := newRollingSim(t)
	sim.c.SetConfigGeneration(2)
	log, rem := newRemediator(t, func(*remediator.JobLog) remediator.Runbook { return sim.runbook() })
	job, err := rem.Start(context.Background(), remediator.ManualRequest{Cluster: "c1", Runbook: remediator.RunbookNdbRollingRestart, DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	j := waitJob(t, log, job.ID)
	if j.State != remediator.JobPlanned {
		t.Fatalf("dry run %s: %s", j.State, j.Reason)
	}
	planned := 0
	for _, s := range j.Steps {
		if s.State == remediator.StepPlanned {
			planned++
		}
	}
	// 2 acts and a wait for the management server, an act and a wait per
	// data node, 2 acts and a wait per SQL node.
	if planned != 3+4*2+2*3 {
		t.Errorf("%d steps planned, want 17: %s", planned, acts(j))
	}
	if sim.mgmAg.stops != 0 || sim.sqls[0].stops != 0 {
		t.Error("a dry run acted")
	}
	for id := 1; id <= 4; id++ {
		if n, _ := sim.c.Node(id); n.ConnectCount != 0 {
			t.Errorf("a dry run restarted data node %d", id)
		}
	}
}
