package ndbsim

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nines-project/nines/ndb"
)

func newCluster(t *testing.T, data, replicas int) *Cluster {
	t.Helper()
	c, err := NewCluster(Config{DataNodes: data, Replicas: replicas, SQLNodes: 2})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func status(t *testing.T, c *Cluster, id int) ndb.Node {
	t.Helper()
	n, ok := c.Node(id)
	if !ok {
		t.Fatalf("no node %d", id)
	}
	return n
}

func TestNodeGroupsFromReplicas(t *testing.T) {
	c := newCluster(t, 4, 2)
	var got []string
	for _, n := range c.Nodes() {
		got = append(got, fmt.Sprintf("%d:%s:%s:%d", n.ID, n.Type, n.Status, n.NodeGroup))
	}
	want := "1:NDB:STARTED:0 2:NDB:STARTED:0 3:NDB:STARTED:1 4:NDB:STARTED:1 50:MGM:CONNECTED:0 100:API:CONNECTED:0 101:API:CONNECTED:0"
	if strings.Join(got, " ") != want {
		t.Fatalf("nodes %s\nwant  %s", strings.Join(got, " "), want)
	}
	if _, err := NewCluster(Config{DataNodes: 3, Replicas: 2}); err == nil {
		t.Fatal("3 data nodes in groups of 2 accepted")
	}
}

func TestStopLastOfNodeGroup(t *testing.T) {
	c := newCluster(t, 4, 2)
	if n, err := c.Stop([]int{2}, StopOptions{}); err != nil || n != 1 {
		t.Fatalf("stop 2: %d %v", n, err)
	}
	if st := status(t, c, 2); st.Status != ndb.StatusNoContact || st.Version != 0 || st.Address != "" || st.DynamicID != 0 {
		t.Fatalf("stopped node shows %+v", st)
	}
	if _, err := c.Stop([]int{1}, StopOptions{}); !errors.Is(err, ErrWouldCrash) {
		t.Fatalf("stopping the last node of group 0: %v, want ErrWouldCrash", err)
	}
	if status(t, c, 1).Status != ndb.StatusStarted {
		t.Fatal("refused stop changed node 1")
	}
	// -f: the node group is lost, and NDB with it.
	if _, err := c.Stop([]int{1}, StopOptions{Force: true}); err != nil {
		t.Fatal(err)
	}
	for _, id := range []int{1, 3, 4} {
		if st := status(t, c, id).Status; st != ndb.StatusNoContact {
			t.Errorf("node %d is %s after its cluster lost node group 0", id, st)
		}
	}
	if _, err := c.BeginBackup(0); !errors.Is(err, ErrClusterDown) {
		t.Fatalf("backup of a down cluster: %v", err)
	}
}

func TestRestartWalksStartPhases(t *testing.T) {
	c := newCluster(t, 2, 2)
	if _, err := c.Restart([]int{2}, StopOptions{Initial: true}); err != nil {
		t.Fatal(err)
	}
	var phases []int
	for status(t, c, 2).Status == ndb.StatusStarting {
		phases = append(phases, status(t, c, 2).StartPhase)
		c.Step()
		if len(phases) > 20 {
			t.Fatal("never started")
		}
	}
	if fmt.Sprint(phases) != fmt.Sprint(ndb.StartPhases) {
		t.Fatalf("phases %v, want %v", phases, ndb.StartPhases)
	}
	st := status(t, c, 2)
	if st.Status != ndb.StatusStarted || st.ConnectCount != 1 || st.DynamicID != 3 || !c.LastStartInitial(2) {
		t.Fatalf("after restart: %+v initial=%v", st, c.LastStartInitial(2))
	}
	// -n waits in NOT_STARTED for START.
	if _, err := c.Restart([]int{2}, StopOptions{NoStart: true}); err != nil {
		t.Fatal(err)
	}
	c.Step()
	if st := status(t, c, 2).Status; st != ndb.StatusNotStarted {
		t.Fatalf("restart -n: %s", st)
	}
	if err := c.Start(1); !errors.Is(err, ErrNoContact) {
		t.Fatalf("START of a running node: %v", err)
	}
	if err := c.Start(2); err != nil || status(t, c, 2).Status != ndb.StatusStarting {
		t.Fatalf("START: %v %s", err, status(t, c, 2).Status)
	}
}

func TestRestartLastOfGroupNeedsForce(t *testing.T) {
	c := newCluster(t, 4, 2)
	if _, err := c.Restart([]int{1, 2}, StopOptions{}); !errors.Is(err, ErrWouldCrash) {
		t.Fatalf("restart of node group 0: %v", err)
	}
	n, err := c.Restart([]int{1, 2}, StopOptions{Force: true})
	if err != nil || n != 4 {
		t.Fatalf("forced: %d %v; ndb_mgmd restarts the whole DB", n, err)
	}
	for id := 1; id <= 4; id++ {
		if st := status(t, c, id).Status; st != ndb.StatusStarting {
			t.Errorf("node %d: %s", id, st)
		}
	}
}

func TestSingleUserAndBackups(t *testing.T) {
	c := newCluster(t, 2, 2)
	if err := c.EnterSingleUser(1); err == nil {
		t.Fatal("single user mode for a data node accepted")
	}
	if err := c.EnterSingleUser(100); err != nil || status(t, c, 1).Status != ndb.StatusSingleUser {
		t.Fatalf("enter: %v %s", err, status(t, c, 1).Status)
	}
	c.ExitSingleUser()
	if status(t, c, 1).Status != ndb.StatusStarted {
		t.Fatal("exit")
	}
	a, _ := c.BeginBackup(0)
	b, _ := c.BeginBackup(0)
	d, _ := c.BeginBackup(9)
	e, _ := c.BeginBackup(0)
	if a != 1 || b != 2 || d != 9 || e != 10 {
		t.Fatalf("backup ids %d %d %d %d, want 1 2 9 10", a, b, d, e)
	}
	if _, err := c.BeginBackup(2); !errors.Is(err, ErrBackupExists) {
		t.Fatalf("reused id: %v", err)
	}
	if !c.AbortBackup(a) || c.AbortBackup(a) || c.FinishBackup(a) {
		t.Fatal("abort of a running backup, then nothing")
	}
}

// dialSim is a raw protocol session against a served cluster.
func dialSim(t *testing.T, c *Cluster, cfg ServerConfig) (*Server, net.Conn, *bufio.Reader) {
	t.Helper()
	s, err := Serve(c, "127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	conn, err := net.Dial("tcp", s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	return s, conn, bufio.NewReader(conn)
}

func call(t *testing.T, conn net.Conn, r *bufio.Reader, req ndb.Message) ndb.Message {
	t.Helper()
	if _, err := req.WriteTo(conn); err != nil {
		t.Fatal(err)
	}
	m, err := ndb.ReadMessage(r, ":")
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestProtocolRefusals(t *testing.T) {
	c := newCluster(t, 2, 2)
	_, conn, r := dialSim(t, c, ServerConfig{})
	call(t, conn, r, ndb.StopRequest{Nodes: []int{2}}.Message())
	got := string(call(t, conn, r, ndb.StopRequest{Nodes: []int{1}}.Message()).Bytes())
	if got != "stop reply\nresult: Node shutdown would cause system crash\nstopped: 0\ndisconnect: 0\n\n" {
		t.Fatalf("stop of the last node of a group:\n%s", got)
	}
	got = string(call(t, conn, r, ndb.RestartRequest{Nodes: []int{1}}.Message()).Bytes())
	if !strings.Contains(got, "result: 5028-Node shutdown would cause system crash\n") {
		t.Fatalf("restart refusal carries code-text:\n%s", got)
	}
	got = string(call(t, conn, r, ndb.Message{Header: "stop v2", Fields: []ndb.Field{{Key: "node", Value: "2"}}}).Bytes())
	if got != "result: Missing arg., 'abort'\n\n" {
		t.Fatalf("missing argument: %q", got)
	}
	got = string(call(t, conn, r, ndb.Message{Header: "abort backup", Fields: []ndb.Field{{Key: "id", Value: "x"}}}).Bytes())
	if got != "result: Type mismatch, 'id'\n\n" {
		t.Fatalf("type mismatch: %q", got)
	}
	// The session survives refusals and still answers.
	if nodes, err := ndb.ParseStatus(call(t, conn, r, ndb.StatusRequest())); err != nil || nodes[1].Status != ndb.StatusNoContact {
		t.Fatalf("status after refusals: %v %v", nodes, err)
	}
}

// Every field of every node, in ndb_mgmd's order [SRV-7.6 printNodeStatus].
func TestStatusFieldOrder(t *testing.T) {
	c := newCluster(t, 2, 2)
	_, conn, r := dialSim(t, c, ServerConfig{})
	m := call(t, conn, r, ndb.StatusRequest())
	if m.Fields[0].Key != "nodes" || m.Fields[0].Value != "5" || len(m.Fields) != 1+5*len(ndb.StatusFields) {
		t.Fatalf("reply has %d fields, nodes %q", len(m.Fields), m.Fields[0].Value)
	}
	for i, f := range m.Fields[1:] {
		want := ndb.StatusFields[i%len(ndb.StatusFields)]
		if !strings.HasSuffix(f.Key, "."+want) {
			t.Fatalf("field %d is %q, want .%s", i, f.Key, want)
		}
	}
}

func TestListenerGetsPingsAndFilteredEvents(t *testing.T) {
	c := newCluster(t, 4, 2)
	s, conn, r := dialSim(t, c, ServerConfig{PingInterval: 10 * time.Millisecond})
	if err := ndb.CheckListenReply(call(t, conn, r, ndb.ListenRequest(ndb.Filter{ndb.CategoryBackup: 15}))); err != nil {
		t.Fatal(err)
	}
	for s.Listeners() != 1 {
		time.Sleep(time.Millisecond)
	}
	if _, err := c.Stop([]int{2}, StopOptions{}); err != nil { // startup/noderestart events: filtered out
		t.Fatal(err)
	}
	if _, err := c.BeginBackup(0); err != nil {
		t.Fatal(err)
	}
	pings := 0
	for {
		ev, ping, err := ndb.ReadStreamItem(r)
		if err != nil {
			t.Fatal(err)
		}
		if ping {
			pings++
			continue
		}
		if ev.Type != ndb.EventBackupStarted {
			t.Fatalf("a backup-only listener got %s", ev.Type)
		}
		if id, _ := ev.Get("backup_id"); id != 1 {
			t.Fatalf("backup_id %d", id)
		}
		break
	}
	for pings < 2 {
		if _, ping, err := ndb.ReadStreamItem(r); err != nil || !ping {
			t.Fatalf("want pings on an idle stream: %v %v", ping, err)
		}
		pings++
	}
}

// Many clients at once, while the model changes under them.
func TestConcurrentClients(t *testing.T) {
	c := newCluster(t, 4, 2)
	s, err := Serve(c, "127.0.0.1:0", ServerConfig{PhaseInterval: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			conn, err := net.Dial("tcp", s.Addr())
			if err != nil {
				errs <- err
				return
			}
			defer conn.Close()
			conn.SetDeadline(time.Now().Add(5 * time.Second))
			r := bufio.NewReader(conn)
			for j := 0; j < 50; j++ {
				ndb.StatusRequest().WriteTo(conn)
				m, err := ndb.ReadMessage(r, ":")
				if err == nil {
					_, err = ndb.ParseStatus(m)
				}
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	for i := 0; i < 20; i++ {
		c.Restart([]int{1 + i%4}, StopOptions{})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestListenRefusesHumanReadable(t *testing.T) {
	c := newCluster(t, 2, 2)
	_, conn, r := dialSim(t, c, ServerConfig{})
	req := ndb.Message{Header: ndb.CmdListenEvent}
	req.Add("filter", "250=15")
	err := ndb.CheckListenReply(call(t, conn, r, req))
	if err == nil || !strings.Contains(err.Error(), "parsable listeners only") {
		t.Fatalf("listen without parsable: %v", err)
	}
}

func TestMarkAbsentAndCanServe(t *testing.T) {
	c, err := NewCluster(Config{DataNodes: 4, Replicas: 2})
	if err != nil {
		t.Fatal(err)
	}
	if !c.CanServe() {
		t.Error("a started cluster cannot serve")
	}
	c.MarkAbsent()
	if c.CanServe() {
		t.Error("a cluster of absent nodes can serve")
	}
	for _, d := range c.State().Data {
		if d.Status != ndb.StatusNoContact || d.Restarted || d.Running {
			t.Errorf("absent node %d: %+v", d.ID, d)
		}
	}
	for _, id := range []int{1, 3} {
		if err := c.Boot(id, false); err != nil {
			t.Fatal(err)
		}
	}
	for c.Step() > 0 {
	}
	if !c.CanServe() {
		t.Error("one started node per group cannot serve")
	}
	// The first starts are the cluster's (facts A.2.3 get status: node 1
	// STARTED, dynamic_id 1, connect_count 0); a later one reconnects.
	for id, want := range map[int][2]int{1: {1, 0}, 3: {2, 0}} {
		if n := status(t, c, id); n.DynamicID != want[0] || n.ConnectCount != want[1] {
			t.Errorf("node %d first started: dynamic_id %d connect_count %d, want %d %d", id, n.DynamicID, n.ConnectCount, want[0], want[1])
		}
	}
	// Node 1 was group 0's only node: the cluster goes down with it, and
	// both nodes start again as a system restart (node 1 alone would
	// wait in phase 1 for group 1).
	if err := c.SetStatus(1, ndb.StatusNoContact, 0); err != nil {
		t.Fatal(err)
	}
	for _, id := range []int{1, 3} {
		if err := c.Boot(id, false); err != nil {
			t.Fatal(err)
		}
	}
	for c.Step() > 0 {
	}
	if n := status(t, c, 1); n.DynamicID != 3 || n.ConnectCount != 1 {
		t.Errorf("node 1 restarted: dynamic_id %d connect_count %d, want 3 1", n.DynamicID, n.ConnectCount)
	}
}

// TestForcedStopReportsThenFails: a data node killed for a GCP stop
// reports NDBStopForced with error 2303 itself, then the survivors'
// master reports its failure; a node already out only reports the event.
func TestForcedStopReportsThenFails(t *testing.T) {
	c := newCluster(t, 4, 2)
	var got []string
	c.SetEmitter(func(ev ndb.Event) {
		code, _ := ev.Get("error")
		got = append(got, fmt.Sprintf("%s@%d error=%d", ev.Type, ev.SourceNodeID, code))
	})
	if err := c.ForcedStop(3, ndb.ExitGCPStop); err != nil {
		t.Fatal(err)
	}
	if st := status(t, c, 3).Status; st != ndb.StatusNoContact {
		t.Fatalf("node 3 is %s after its GCP stop", st)
	}
	if err := c.ForcedStop(3, 2315); err != nil {
		t.Fatal(err)
	}
	want := "NDBStopForced@3 error=2303 NODE_FAILREP@1 error=0 Disconnected@1 error=0 NDBStopForced@3 error=2315"
	if strings.Join(got, " ") != want {
		t.Fatalf("events %s\nwant   %s", strings.Join(got, " "), want)
	}
	if err := c.ForcedStop(50, ndb.ExitGCPStop); !errors.Is(err, ErrNoSuchNode) {
		t.Fatalf("forced stop of the management node: %v, want ErrNoSuchNode", err)
	}
	if st := status(t, c, 4).Status; st != ndb.StatusStarted {
		t.Fatalf("node 4 of the same group is %s", st)
	}
}

// TestStopOrdered: a STOP is told apart from a failure, also from the
// failure of a node group's survivors it causes with -f.
func TestStopOrdered(t *testing.T) {
	c := newCluster(t, 4, 2)
	if _, err := c.Stop([]int{2}, StopOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := c.SetStatus(3, ndb.StatusNoContact, 0); err != nil {
		t.Fatal(err)
	}
	if !c.StopOrdered(2) || c.StopOrdered(3) || c.StopOrdered(1) {
		t.Fatalf("ordered: node 2 %v (stopped), 3 %v (failed), 1 %v (up), want true false false", c.StopOrdered(2), c.StopOrdered(3), c.StopOrdered(1))
	}
	if _, err := c.Stop([]int{1}, StopOptions{Force: true}); err != nil {
		t.Fatal(err)
	}
	if !c.StopOrdered(1) || c.StopOrdered(4) {
		t.Errorf("after 1 STOP -f: node 1 ordered %v, node 4 (failed with the cluster) %v, want true false", c.StopOrdered(1), c.StopOrdered(4))
	}
	if err := c.Boot(2, false); err != nil {
		t.Fatal(err)
	}
	if c.StopOrdered(2) {
		t.Error("node 2 still counts as stopped after it started again")
	}
}

// TestGlobalCheckpoints: each CompleteGCP is a GlobalCheckpointStarted and
// a GlobalCheckpointCompleted of the next gci from the master; none while
// a fault stalls GCPs or while a node group is lost.
func TestGlobalCheckpoints(t *testing.T) {
	c := newCluster(t, 4, 2)
	var got []string
	c.SetEmitter(func(ev ndb.Event) {
		if ndb.CategoryOf(ev.Type) == ndb.CategoryCheckpoint {
			gci, _ := ev.Get("gci")
			got = append(got, fmt.Sprintf("%s %d from %d", ev.Type, gci, ev.SourceNodeID))
		}
	})
	take := func() string { s := strings.Join(got, ", "); got = nil; return s }
	if !c.CompleteGCP() || !c.CompleteGCP() {
		t.Fatal("a healthy cluster ran no GCP")
	}
	if s := take(); s != "GlobalCheckpointStarted 1 from 1, GlobalCheckpointCompleted 1 from 1, GlobalCheckpointStarted 2 from 1, GlobalCheckpointCompleted 2 from 1" {
		t.Errorf("events: %s", s)
	}
	c.SetGCPStalled(true)
	if c.CompleteGCP() || take() != "" || c.GCI() != 2 {
		t.Errorf("a stalled cluster completed a GCP (gci %d)", c.GCI())
	}
	c.SetGCPStalled(false)
	if _, err := c.Stop([]int{1}, StopOptions{}); err != nil {
		t.Fatal(err)
	}
	// Node 1 gone: node 2 is the master now.
	if !c.CompleteGCP() || take() != "GlobalCheckpointStarted 3 from 2, GlobalCheckpointCompleted 3 from 2" {
		t.Errorf("after node 1 stopped: gci %d", c.GCI())
	}
	if _, err := c.Stop([]int{3, 4}, StopOptions{Force: true}); err != nil {
		t.Fatal(err)
	}
	if c.CompleteGCP() || take() != "" {
		t.Error("a cluster that lost node group 1 completed a GCP")
	}
}

// TestSystemRestartAfterLostNodeGroup: a lost node group takes every
// data node down; the nodes started again hold after phase 1 until all
// are there (or, past StartPartialTimeout, one of every group), then
// reach STARTED together as a system restart (starttype 1), and only
// then does the cluster serve again.
func TestSystemRestartAfterLostNodeGroup(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	clock := func() time.Time { return now }
	newDown := func(t *testing.T) (*Cluster, *[]ndb.Event) {
		t.Helper()
		c, err := NewCluster(Config{DataNodes: 4, Replicas: 2, Now: clock})
		if err != nil {
			t.Fatal(err)
		}
		var evs []ndb.Event
		c.SetEmitter(func(ev ndb.Event) { evs = append(evs, ev) })
		for _, id := range []int{3, 4} {
			if err := c.SetStatus(id, ndb.StatusNoContact, 0); err != nil {
				t.Fatal(err)
			}
		}
		for id := 1; id <= 4; id++ {
			if st := status(t, c, id).Status; st != ndb.StatusNoContact {
				t.Fatalf("after group 1 was lost node %d is %s, want the whole cluster down", id, st)
			}
		}
		return c, &evs
	}
	boot := func(t *testing.T, c *Cluster, ids ...int) {
		t.Helper()
		for _, id := range ids {
			if err := c.Boot(id, false); err != nil {
				t.Fatal(err)
			}
		}
	}
	phases := func(c *Cluster) string {
		var out []string
		for id := 1; id <= 4; id++ {
			n, _ := c.Node(id)
			out = append(out, fmt.Sprintf("%d:%s-%d", id, n.Status, n.StartPhase))
		}
		return strings.Join(out, " ")
	}

	t.Run("all nodes", func(t *testing.T) {
		c, evs := newDown(t)
		boot(t, c, 1, 2)
		for range 5 {
			c.Step()
		}
		if got := phases(c); got != "1:STARTING-1 2:STARTING-1 3:NO_CONTACT-0 4:NO_CONTACT-0" {
			t.Fatalf("with nodes 3 and 4 not started: %s, want 1 and 2 waiting in phase 1", got)
		}
		boot(t, c, 3, 4)
		steps := 0
		for c.Step() > 0 {
			if steps++; steps > 20 {
				t.Fatalf("still starting after %d steps: %s", steps, phases(c))
			}
			if c.CanServe() {
				t.Fatalf("serving while starting: %s", phases(c))
			}
		}
		if got := phases(c); got != "1:STARTED-0 2:STARTED-0 3:STARTED-0 4:STARTED-0" || !c.CanServe() {
			t.Fatalf("after the system restart: %s, serves %v", got, c.CanServe())
		}
		sys := 0
		for _, ev := range *evs {
			if ev.Type == ndb.EventStartPhaseCompleted {
				if st, _ := ev.Get("starttype"); st != 1 {
					t.Errorf("event %+v: starttype %d, want 1 (system restart)", ev, st)
				}
				sys++
			}
		}
		if sys == 0 {
			t.Error("no StartPhaseCompleted events")
		}
		// The same nodes later restarted one at a time are node restarts.
		if err := c.SetStatus(2, ndb.StatusNoContact, 0); err != nil {
			t.Fatal(err)
		}
		*evs = nil
		boot(t, c, 2)
		for c.Step() > 0 {
		}
		for _, ev := range *evs {
			if st, _ := ev.Get("starttype"); ev.Type == ndb.EventStartPhaseCompleted && st != 2 {
				t.Fatalf("node restart event %+v: starttype %d, want 2", ev, st)
			}
		}
	})

	t.Run("partial after StartPartialTimeout", func(t *testing.T) {
		c, _ := newDown(t)
		boot(t, c, 1, 3) // one node of each group
		for range 20 {
			c.Step()
		}
		if got := phases(c); got != "1:STARTING-1 2:NO_CONTACT-0 3:STARTING-1 4:NO_CONTACT-0" {
			t.Fatalf("before StartPartialTimeout: %s, want 1 and 3 waiting in phase 1", got)
		}
		now = now.Add(30 * time.Second)
		for c.Step() > 0 {
		}
		if got := phases(c); got != "1:STARTED-0 2:NO_CONTACT-0 3:STARTED-0 4:NO_CONTACT-0" || !c.CanServe() {
			t.Fatalf("after StartPartialTimeout: %s, serves %v; want a partial system restart", got, c.CanServe())
		}
	})

	t.Run("a node group missing waits for ever", func(t *testing.T) {
		c, _ := newDown(t)
		boot(t, c, 1, 2)
		now = now.Add(time.Hour)
		for range 20 {
			c.Step()
		}
		if got := phases(c); got != "1:STARTING-1 2:STARTING-1 3:NO_CONTACT-0 4:NO_CONTACT-0" || c.CanServe() {
			t.Fatalf("without node group 1: %s, serves %v; want 1 and 2 still in phase 1", got, c.CanServe())
		}
	})
}
