package sandbox

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nines-project/nines"
	"github.com/nines-project/nines/agent"
	"github.com/nines-project/nines/appliance/config"
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

// Each data node's agent config is one the agent takes, running exactly
// the node's command; nines.yaml names the management server and every
// data node's agent, and the appliance's config reader takes it.
func TestNDBAgentAndApplianceConfig(t *testing.T) {
	dir := t.TempDir()
	bin, err := exec.LookPath("true")
	if err != nil {
		t.Fatal(err)
	}
	l := ndbLayout(dir, bin, NDBOptions{DataNodes: 4, Replicas: 2, SQLNodes: 2, BasePort: 30000, Heartbeat: 500 * time.Millisecond})
	token := filepath.Join(dir, "agent-token")
	secrets := map[string]string{token: "0123456789abcdef0123456789abcdef\n", filepath.Join(dir, "nines.pass"): "pw\n"}
	for _, f := range []string{"api-token", "webhook-token", "read-token"} {
		secrets[filepath.Join(dir, f)] = "0123456789abcdef0123456789abcdef-" + f + "\n"
	}
	secrets[filepath.Join(dir, "alertmanager.yml")] = renderAlertmanagerConfig(DefaultListen)
	for name, content := range secrets {
		if err := os.WriteFile(name, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	d := l.DataNodes[1]
	if err := os.MkdirAll(d.Dir, 0o755); err != nil {
		t.Fatal(err)
	}
	cfg, err := agent.Parse(d.agentNode().AgentConfigPath(), []byte(renderNDBAgentConfig(d, token, filepath.Join(dir, "backups"))))
	if err != nil {
		t.Fatal(err)
	}
	n := cfg.Server.NdbDataNode
	if cfg.Listen != "127.0.0.1:30302" || n == nil || n.NodeID != 2 || n.PidFile != d.PidFile || n.Dir != d.Dir || n.BackupDataDir != d.Dir ||
		strings.Join(n.Command[1:], " ") != strings.Join(d.Command[1:], " ") {
		t.Errorf("agent config of data2: listen %s, node %+v", cfg.Listen, n)
	}

	m := manifest{Kind: nines.KindNDB, ClusterName: "tel", Listen: DefaultListen, Nodes: layout(dir, nines.KindNDB, 2, 30000), NDB: &l}
	yml := renderConfig(m, "")
	for _, want := range []string{
		"    probe: {engine: InnoDB}\n",
		"      management: [{address: \"127.0.0.1:30000\", agent: \"http://127.0.0.1:30300\"}]\n",
		"        - {node_id: 4, agent: \"http://127.0.0.1:30304\"}\n",
	} {
		if !strings.Contains(yml, want) {
			t.Errorf("nines.yaml lacks %q:\n%s", want, yml)
		}
	}
	c, err := config.Parse(filepath.Join(dir, "nines.yaml"), []byte(yml))
	if err != nil {
		t.Fatalf("the appliance refuses the sandbox's nines.yaml: %v\n%s", err, yml)
	}
	cl := c.Clusters[0]
	if cl.NDB == nil || len(cl.NDB.DataNodes) != 4 || cl.NDB.DataNodes[3].Agent != "http://127.0.0.1:30304" || cl.Probe.Engine != "InnoDB" {
		t.Errorf("cluster as read: ndb %+v probe %+v", cl.NDB, cl.Probe)
	}
}
