//go:build cluster

package sandbox

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	mgm "github.com/nines-project/nines/exporter/ndb"
	"github.com/nines-project/nines/ndb"
)

const ndbBasePort = 34306

// TestNDBSandbox drives the NDB simulator as an operator and the
// appliance would see it: real processes killed, hung and restarted, the
// mgm protocol's events and status, ndbinfo and SQL writes.
func TestNDBSandbox(t *testing.T) {
	sideBySide(t)
	dir := sandboxDir(t)
	stopOnCleanup(t, dir)
	ctx := testContext(t, 4*time.Minute)
	n, err := StartNDB(ctx, NDBOptions{Dir: dir, DataNodes: 4, Replicas: 2, SQLNodes: 1, BasePort: ndbBasePort, Binary: ninesBin, Log: t.Output()})
	if err != nil {
		t.Fatal(err)
	}

	// status lists every node with its type, id, pid and port.
	sts, err := n.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(sts) != 6 {
		t.Fatalf("status lists %d entries, want mgmd, 4 data nodes, 1 SQL node: %+v", len(sts), sts)
	}
	if st := sts[0]; st.Type != NDBTypeMgm || st.NodeID != 50 || st.MgmPort != ndbBasePort || st.Pid == 0 || st.State != "running" {
		t.Errorf("mgmd entry: %+v", st)
	}
	for i, st := range sts[1:5] {
		if st.Type != NDBTypeData || st.NodeID != i+1 || st.Pid == 0 || st.State != "STARTED" || st.Name != fmt.Sprintf("data%d", i+1) {
			t.Errorf("data node entry %d: %+v", i+1, st)
		}
	}
	if st := sts[5]; st.Type != NDBTypeSQL || st.NodeID != 100 || st.SQLPort != ndbBasePort+10 || st.Socket == "" || st.Pid == 0 || st.State != "running" {
		t.Errorf("SQL node entry: %+v", st)
	}

	client := mgm.NewMgm(mgm.MgmConfig{Addr: n.MgmAddress()})
	t.Cleanup(func() { client.Close() })
	events := make(chan ndb.Event, 1000)
	lctx, lcancel := context.WithCancel(ctx)
	t.Cleanup(lcancel)
	go client.ListenEvents(lctx, nil, func(ev ndb.Event) { events <- ev })

	root := rootDB(t, n.Sandbox, "n1")
	probe := monitorDB(t, n.Sandbox, "n1")
	mustExec(t, probe, "CREATE TABLE IF NOT EXISTS nines.ndbprobe (id INT AUTO_INCREMENT PRIMARY KEY, at DATETIME)")
	waitFor(t, 5*time.Second, "the probe table gated", func() (bool, error) {
		var c int
		err := root.QueryRowContext(ctx, "SELECT COUNT(*) FROM information_schema.triggers WHERE event_object_table='ndbprobe'").Scan(&c)
		return c == 3, err
	})
	write := func() error {
		_, err := probe.ExecContext(ctx, "INSERT INTO nines.ndbprobe (at) VALUES (NOW())")
		return err
	}
	if err := write(); err != nil {
		t.Fatalf("write through the SQL node of a started cluster: %v", err)
	}
	// mgmd-up on a running mgmd reports the mgm node connected again: an
	// event that proves the listener is subscribed before the kill.
	subscribed := false
	for deadline := time.Now().Add(5 * time.Second); !subscribed && time.Now().Before(deadline); {
		if err := n.Fault(ctx, FaultMgmdUp, FaultArgs{}); err != nil {
			t.Fatal(err)
		}
		timer := time.After(200 * time.Millisecond)
	wait:
		for {
			select {
			case ev := <-events:
				if node, _ := ev.Get("node"); ev.Type == ndb.EventConnected && node == 50 {
					subscribed = true
					break wait
				}
			case <-timer:
				break wait
			}
		}
	}
	if !subscribed {
		t.Fatal("the listen event client got no event within 5s")
	}
	drain(events)

	// kill -9 of data node 1: a failure event within 1 s, get status and
	// ndbinfo lose it, its group peer 2 serves on.
	t0 := time.Now()
	if err := n.Kill(1); err != nil {
		t.Fatal(err)
	}
	waitEvent(t, events, 1*time.Second, "NODE_FAILREP of node 1", func(ev ndb.Event) bool {
		f, _ := ev.Get("failed_node")
		return ev.Type == ndb.EventNodeFailRep && f == 1
	})
	t.Logf("measured: kill -9 of data node 1 to NODE_FAILREP on listen event: %v", time.Since(t0).Round(time.Millisecond))
	nodes, err := client.GetStatus(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if s := statusOf(nodes, 1); s != ndb.StatusNoContact && s != ndb.StatusNotStarted {
		t.Errorf("get status after the kill: node 1 is %s, want NO_CONTACT or NOT_STARTED", s)
	}
	if s := statusOf(nodes, 2); s != ndb.StatusStarted {
		t.Errorf("get status after the kill: node 2, node 1's group peer, is %s, want STARTED", s)
	}
	waitFor(t, time.Second, "ndbinfo.nodes without node 1", func() (bool, error) {
		var c int
		err := root.QueryRowContext(ctx, "SELECT COUNT(*) FROM ndbinfo.nodes WHERE node_id=1").Scan(&c)
		return c == 0, err
	})
	t.Logf("measured: kill -9 of data node 1 to its row gone from ndbinfo.nodes: %v", time.Since(t0).Round(time.Millisecond))
	if err := write(); err != nil {
		t.Errorf("write with node 2 still serving group 0: %v", err)
	}

	// The same command brings it back through a node restart.
	t0 = time.Now()
	if err := n.StartDataNode(ctx, 1); err != nil {
		t.Fatal(err)
	}
	if err := n.WaitDataNode(ctx, 1, "STARTED", 10*time.Second); err != nil {
		t.Fatal(err)
	}
	t.Logf("measured: restart of data node 1 to STARTED: %v", time.Since(t0).Round(time.Millisecond))

	// Both nodes of group 0 killed: the cluster fails, writes are refused
	// with 4009 and come back once the cluster is started again.
	t0 = time.Now()
	for _, id := range []int{1, 2} {
		if err := n.Kill(id); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, 2*time.Second, "writes refused with 4009", func() (bool, error) {
		err := write()
		return hasMySQLError(err, 1296, "4009 'Cluster Failure'"), nil
	})
	t.Logf("measured: both nodes of group 0 killed to writes refused with 4009: %v", time.Since(t0).Round(time.Millisecond))
	for _, id := range []int{1, 2, 3, 4} {
		if err := n.StartDataNode(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	if err := n.WaitStarted(ctx, 15*time.Second); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 2*time.Second, "writes taken again", func() (bool, error) { return write() == nil, nil })

	// hang: declared dead after 4 missed heartbeats (500 ms); on resume
	// the process learns it and exits.
	pid3, _ := n.DataNodePid(3)
	t0 = time.Now()
	if err := n.Hang(3); err != nil {
		t.Fatal(err)
	}
	if err := n.WaitDataNode(ctx, 3, "NO_CONTACT", 4*time.Second); err != nil {
		t.Fatal(err)
	}
	took := time.Since(t0)
	t.Logf("measured: SIGSTOP of data node 3 to declared dead: %v (bound 4 x 500ms)", took.Round(time.Millisecond))
	// Its last heartbeat may precede the SIGSTOP by up to one send
	// interval (100 ms).
	if took < 2*time.Second-ndbHeartbeatSend {
		t.Errorf("node 3 declared dead after %v, before 4 heartbeats of 500ms were missed", took)
	}
	if err := n.Resume(3); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 3*time.Second, "the resumed node 3 to exit", func() (bool, error) {
		return syscall.Kill(pid3, 0) != nil, nil
	})
	logText, _ := os.ReadFile(n.ndb().DataNodes[2].Log)
	if !strings.Contains(string(logText), "Forced node shutdown completed") {
		t.Errorf("node 3's log does not say it was shut down:\n%s", logText)
	}
	if err := n.StartDataNode(ctx, 3); err != nil {
		t.Fatal(err)
	}
	if err := n.WaitStarted(ctx, 10*time.Second); err != nil {
		t.Fatal(err)
	}

	// DataMemory 99 % full: inserts fail with 827; clear lifts it.
	if err := n.Fault(ctx, FaultDataMemory, FaultArgs{Percent: 99}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 2*time.Second, "inserts refused with 827", func() (bool, error) {
		return hasMySQLError(write(), 1296, "827 'Out of memory in Ndb Kernel, table data (increase DataMemory)'"), nil
	})
	if err := n.Fault(ctx, FaultClear, FaultArgs{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 2*time.Second, "writes taken after clear", func() (bool, error) { return write() == nil, nil })

	// Rows written take DataMemory (sampled every 3 s).
	waitFor(t, 8*time.Second, "DataMemory in use for the probe's rows", func() (bool, error) {
		var used int64
		err := root.QueryRowContext(ctx, "SELECT COALESCE(MIN(used),0) FROM ndbinfo.memoryusage WHERE memory_type='Data memory'").Scan(&used)
		return used > 0, err
	})

	// Redo log full: 410 until cleared.
	if err := n.Fault(ctx, FaultRedoFull, FaultArgs{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 2*time.Second, "writes refused with 410", func() (bool, error) {
		return hasMySQLError(write(), 1297, "410 'Out of log file space temporarily'"), nil
	})
	if err := n.Fault(ctx, FaultClear, FaultArgs{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 2*time.Second, "writes taken after clear", func() (bool, error) { return write() == nil, nil })

	// Arbitration split: node 4 disagrees on the ticket in membership.
	if err := n.Fault(ctx, FaultArbitrationSplit, FaultArgs{Node: 4}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 2*time.Second, "two arbitration tickets in ndbinfo.membership", func() (bool, error) {
		var c int
		err := root.QueryRowContext(ctx, "SELECT COUNT(DISTINCT arb_ticket) FROM ndbinfo.membership").Scan(&c)
		return c == 2, err
	})
	if err := n.Fault(ctx, FaultClear, FaultArgs{}); err != nil {
		t.Fatal(err)
	}

	// GCP stop: node 4 is killed with the documented text and reports
	// NDBStopForced with error 2303 on the event stream.
	pid4, _ := n.DataNodePid(4)
	drain(events)
	if err := n.Fault(ctx, FaultGCPStop, FaultArgs{Node: 4}); err != nil {
		t.Fatal(err)
	}
	waitEvent(t, events, 3*time.Second, "NDBStopForced of node 4 with error 2303", func(ev ndb.Event) bool {
		code, _ := ev.Get("error")
		return ev.Type == ndb.EventNDBStopForced && ev.SourceNodeID == 4 && code == ndb.ExitGCPStop
	})
	waitFor(t, 3*time.Second, "node 4 to exit on GCP stop", func() (bool, error) { return syscall.Kill(pid4, 0) != nil, nil })
	if err := n.WaitDataNode(ctx, 4, "NO_CONTACT", time.Second); err != nil {
		t.Fatal(err)
	}
	logText, _ = os.ReadFile(n.ndb().DataNodes[3].Log)
	if !strings.Contains(string(logText), "killed this node because GCP stop was detected") {
		t.Errorf("node 4's log has no GCP stop:\n%s", logText)
	}
	if err := n.StartDataNode(ctx, 4); err != nil {
		t.Fatal(err)
	}
	if err := n.WaitStarted(ctx, 10*time.Second); err != nil {
		t.Fatal(err)
	}

	// mgmd-down closes the mgm port only: data nodes run on.
	if err := n.Fault(ctx, FaultMgmdDown, FaultArgs{}); err != nil {
		t.Fatal(err)
	}
	fresh := mgm.NewMgm(mgm.MgmConfig{Addr: n.MgmAddress(), DialTimeout: time.Second, Timeout: time.Second})
	defer fresh.Close()
	if _, err := fresh.GetStatus(ctx); err == nil {
		t.Error("get status answered with the mgm port down")
	}
	for id := 1; id <= 4; id++ {
		if pid, _ := n.DataNodePid(id); pid == 0 {
			t.Errorf("data node %d stopped with mgmd-down", id)
		}
	}
	if err := write(); err != nil {
		t.Errorf("write with mgmd down: %v", err)
	}
	if err := n.Fault(ctx, FaultMgmdUp, FaultArgs{}); err != nil {
		t.Fatal(err)
	}
	if nodes, err := fresh.GetStatus(ctx); err != nil || statusOf(nodes, 4) != ndb.StatusStarted {
		t.Errorf("get status after mgmd-up: %v, %v", nodes, err)
	}

	// stop leaves no process.
	var pids []int
	sts, _ = n.Status(ctx)
	for _, st := range sts {
		if st.Pid != 0 {
			pids = append(pids, st.Pid)
		}
	}
	if err := n.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	for _, pid := range pids {
		if err := syscall.Kill(pid, 0); err == nil && processState(pid) != "Z" {
			t.Errorf("pid %d still runs after stop", pid)
		}
	}
}

func statusOf(nodes []ndb.Node, id int) ndb.NodeStatus {
	for _, n := range nodes {
		if n.ID == id {
			return n.Status
		}
	}
	return ndb.StatusUnknown
}

func hasMySQLError(err error, num uint16, text string) bool {
	var me *mysql.MySQLError
	return errors.As(err, &me) && me.Number == num && strings.Contains(me.Message, text)
}

func drain(ch chan ndb.Event) {
	for {
		select {
		case <-ch:
		default:
			return
		}
	}
}

func waitEvent(t *testing.T, ch chan ndb.Event, d time.Duration, what string, ok func(ndb.Event) bool) {
	t.Helper()
	timer := time.NewTimer(d)
	defer timer.Stop()
	for {
		select {
		case ev := <-ch:
			if ok(ev) {
				return
			}
		case <-timer.C:
			t.Fatalf("no %s within %v", what, d)
		}
	}
}

func waitFor(t *testing.T, d time.Duration, what string, ok func() (bool, error)) {
	t.Helper()
	deadline := time.Now().Add(d)
	var last error
	for time.Now().Before(deadline) {
		done, err := ok()
		if done {
			return
		}
		last = err
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no %s within %v (last error: %v)", what, d, last)
}
