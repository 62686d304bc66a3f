package sandbox

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/nines-project/nines/ndb"
	"github.com/nines-project/nines/sandbox/ndbsim"
)

func TestParseHello(t *testing.T) {
	id, pid, err := parseHello("hello 3 4711")
	if err != nil || id != 3 || pid != 4711 {
		t.Errorf("parseHello: %d %d %v", id, pid, err)
	}
	for _, bad := range []string{"", "hello", "hello x 1", "hello 1 0", "hi 1 2", "hello 1 2 3"} {
		if _, _, err := parseHello(bad); err == nil {
			t.Errorf("parseHello(%q) accepted", bad)
		}
	}
}

func TestNDBLayoutCommands(t *testing.T) {
	l := ndbLayout("/d", "/bin/nines", NDBOptions{DataNodes: 4, Replicas: 2, SQLNodes: 2, BasePort: 30000, Heartbeat: 500 * time.Millisecond})
	if got := strings.Join(l.DataNodes[1].Command, " "); got != "/bin/nines sandbox ndb datanode --dir /d --node-id 2" {
		t.Errorf("data node 2's command: %q", got)
	}
	if l.DataNodes[1].PidFile != "/d/data2/ndbd.pid" || l.MgmPort != 30000 || l.LinkPort != 30001 || l.HeartbeatMs != 500 {
		t.Errorf("layout: %+v", l)
	}
	if len(l.SQLNodeIDs) != 2 || l.SQLNodeIDs[1] != 101 {
		t.Errorf("API node ids: %v", l.SQLNodeIDs)
	}
	if _, err := l.dataNode(5); err == nil {
		t.Error("data node 5 of 4 found")
	}
}

func TestStartNDBRejectsBadShapes(t *testing.T) {
	for _, o := range []NDBOptions{
		{Dir: t.TempDir(), DataNodes: 3, Replicas: 2},
		{Dir: t.TempDir(), Replicas: 5},
		{Dir: t.TempDir(), SQLNodes: 10},
		{Dir: t.TempDir(), Heartbeat: time.Millisecond},
	} {
		if _, err := StartNDB(context.Background(), o); err == nil || !strings.Contains(err.Error(), "sandbox ndb:") {
			t.Errorf("StartNDB(%+v): %v, want a clear refusal", o, err)
		}
	}
}

// The gate follows the model: a lost node group is 4009, full redo 410,
// DataMemory at 99 % 827, else writes pass.
func TestGateFor(t *testing.T) {
	c, err := ndbsim.NewCluster(ndbsim.Config{DataNodes: 4, Replicas: 2})
	if err != nil {
		t.Fatal(err)
	}
	if g := gateFor(c); g.Errno != 0 {
		t.Errorf("healthy cluster: %v", g)
	}
	pages := c.Config().DataMemoryPages
	c.SetDataMemoryUsed(3, pages*98/100)
	if g := gateFor(c); g.Errno != 0 {
		t.Errorf("98%% DataMemory: %v", g)
	}
	c.SetDataMemoryUsed(3, pages*99/100)
	if g := gateFor(c); g != gateDataMemory || !strings.Contains(g.Message, "827") {
		t.Errorf("99%% DataMemory: %v", g)
	}
	c.SetRedoUsed(1, 0, c.Config().RedoPartBytes)
	if g := gateFor(c); g != gateRedoFull {
		t.Errorf("full redo part: %v", g)
	}
	c.SetStatus(1, ndb.StatusNoContact, 0)
	// A dead node's full redo no longer counts; node 3's DataMemory does.
	if g := gateFor(c); g != gateDataMemory {
		t.Errorf("node 1 down, group peer 2 up: %v", g)
	}
	c.SetStatus(2, ndb.StatusNoContact, 0)
	if g := gateFor(c); g != gateClusterFailure || !strings.Contains(g.Message, "4009 'Cluster Failure'") {
		t.Errorf("group 0 lost: %v", g)
	}
}

func TestGateTriggersFitNames(t *testing.T) {
	qs := gateTriggers("app", strings.Repeat("t", 64))
	if len(qs) != 3 {
		t.Fatalf("%d triggers", len(qs))
	}
	for _, q := range qs {
		name := strings.Fields(q)[5] // CREATE TRIGGER IF NOT EXISTS `app`.`ndbsim_..`
		if len(name) > len("`app`.`")+64+1 || !strings.Contains(q, "SIGNAL SQLSTATE 'HY000' SET MYSQL_ERRNO = e") {
			t.Errorf("trigger: %s", q)
		}
	}
	if !strings.Contains(gateTriggers("a`b", "t")[0], "`a``b`") {
		t.Error("schema name not quoted")
	}
}
