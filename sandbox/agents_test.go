package sandbox

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nines-project/nines"
	"github.com/nines-project/nines/agent"
)

// TestQuorumLossRepairedThroughAgents is the drill the remediator will
// run, done by hand through the agents' API: kill -9 two of three nodes,
// so the survivor drops out of the Primary component; pc-bootstrap on the
// survivor makes it Primary again; the two others, started through their
// agents (which recover their positions first), rejoin by IST.
func TestQuorumLossRepairedThroughAgents(t *testing.T) {
	dir := sandboxDir(t)
	stopOnCleanup(t, dir)
	ctx := testContext(t, 5*time.Minute)
	var s *Sandbox
	timed(t, "fresh 3-node galera", func() {
		var err error
		s, err = StartGalera(ctx, Options{Dir: dir, Nodes: 3, BasePort: 28306, ClusterName: "quorum", Log: t.Output(), AgentBinary: ninesBin})
		if err != nil {
			t.Fatalf("start: %v", err)
		}
	})
	uuid := requireSynced(t, s, 3)
	mustExec(t, rootDB(t, s, "n1"), "CREATE TABLE nines.q (id INT PRIMARY KEY, note VARCHAR(32))")
	mustExec(t, rootDB(t, s, "n1"), "INSERT INTO nines.q VALUES (1, 'before the crash')")

	agents := map[string]*agent.Client{}
	for _, n := range s.Nodes() {
		c, err := s.Agent(n.Name)
		if err != nil {
			t.Fatal(err)
		}
		agents[n.Name] = c
	}
	if _, err := agents["n1"].PCBootstrap(ctx); !agent.IsConflict(err) {
		t.Fatalf("pc-bootstrap on a node of a healthy Primary component: %v, want 409", err)
	}

	for _, name := range []string{"n2", "n3"} {
		pid, err := s.Pid(name)
		if err != nil || pid == 0 {
			t.Fatalf("pid of %s: %d, %v", name, pid, err)
		}
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
	}
	killed := time.Now()
	var st agent.Status
	eventually(t, 30*time.Second, "n1 out of the Primary component", func() (bool, string) {
		var err error
		st, err = agents["n1"].Status(ctx)
		if err != nil {
			return false, err.Error()
		}
		if st.Wsrep == nil {
			return false, "no wsrep status: " + st.WsrepError
		}
		return !st.Wsrep.Primary(), st.Wsrep.ClusterStatus.String()
	})
	t.Logf("TIMING survivor non-Primary after kill -9 of two: %v (%s, %s, size %d)",
		time.Since(killed).Round(time.Millisecond), st.Wsrep.ClusterStatus, st.Wsrep.LocalStateComment, st.Wsrep.ClusterSize)
	if st.Wsrep.Ready {
		t.Errorf("non-Primary n1 says wsrep_ready=ON: %+v", st.Wsrep)
	}

	var pc agent.PCBootstrapResult
	timed(t, "pc-bootstrap on the survivor", func() {
		var err error
		if pc, err = agents["n1"].PCBootstrap(ctx); err != nil {
			t.Fatalf("pc-bootstrap: %v", err)
		}
	})
	if pc.Before.Primary() || !pc.After.Primary() || pc.After.ClusterSize != 1 || pc.After.ClusterStateUUID != uuid {
		t.Fatalf("pc-bootstrap: before %+v, after %+v", pc.Before, pc.After)
	}
	if _, err := agents["n1"].PCBootstrap(ctx); !agent.IsConflict(err) {
		t.Fatalf("second pc-bootstrap: %v, want 409 now that n1 is Primary", err)
	}
	mustExec(t, rootDB(t, s, "n1"), "INSERT INTO nines.q VALUES (2, 'while alone')")

	for _, name := range []string{"n2", "n3"} {
		n, err := s.Node(name)
		if err != nil {
			t.Fatal(err)
		}
		if st, err := agents[name].Status(ctx); err != nil || st.Running {
			t.Fatalf("%s runs again before anyone started it: %+v, %v", name, st, err)
		}
		offset := fileSize(t, n.ErrorLog)
		var res agent.StartResult
		timed(t, "rejoin "+name+" through /v1/start", func() {
			res, err = agents[name].Start(ctx, agent.StartRequest{Wait: agent.WaitSynced, TimeoutSeconds: 120})
			if err != nil {
				t.Fatalf("start %s: %v", name, err)
			}
		})
		if !strings.HasPrefix(res.Position, uuid+":") || res.State != "Synced" {
			t.Errorf("start %s: %+v, want a recovered position in history %s", name, res, uuid)
		}
		if joined := readFrom(t, n.ErrorLog, offset); !strings.Contains(joined, "Receiving IST") {
			t.Errorf("%s did not rejoin by IST; its error log since the start:\n%s", name, joined)
		}
		if _, err := agents[name].Start(ctx, agent.StartRequest{}); !agent.IsConflict(err) {
			t.Errorf("start of running %s: %v, want 409", name, err)
		}
	}
	if again := requireSynced(t, s, 3); again != uuid {
		t.Fatalf("cluster state UUID changed: %s -> %s", uuid, again)
	}
	if got := queryOne[string](t, rootDB(t, s, "n3"), "SELECT note FROM nines.q WHERE id = 2"); got != "while alone" {
		t.Fatalf("n3 reads %q for the row written while n1 was alone", got)
	}
	for _, name := range []string{"n1", "n2", "n3"} {
		m, err := agents[name].Metrics(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(m, "\nnines_agent_server_running 1\n") {
			t.Errorf("%s's agent metrics do not show the server running", name)
		}
	}
}

func TestLayoutAgentPorts(t *testing.T) {
	for _, kind := range []nines.Kind{nines.KindGalera, nines.KindReplication} {
		for i, n := range layout("/sb", kind, 3, 3306) {
			if n.AgentPort != 3506+i || n.AgentURL() != "http://127.0.0.1:"+itoa(3506+i) || n.AgentConfigPath() != "/sb/n"+itoa(i+1)+"/agent.yaml" {
				t.Errorf("%s node %d: agent port %d, %s, %s", kind, i, n.AgentPort, n.AgentURL(), n.AgentConfigPath())
			}
		}
	}
	// Every port of a 10-node Galera sandbox is distinct.
	seen := map[int]string{}
	for _, n := range layout("/sb", nines.KindGalera, maxGaleraNodes, 3306) {
		for _, p := range []int{n.SQLPort, n.GcommPort, n.ISTPort, n.SSTPort, n.AgentPort} {
			if other, dup := seen[p]; dup {
				t.Fatalf("port %d of %s is also %s's", p, n.Name, other)
			}
			seen[p] = n.Name
		}
	}
	_, err := create(Options{Dir: filepath.Join(t.TempDir(), "sb"), Nodes: maxGaleraNodes + 1, BasePort: 3306}, nines.KindGalera, 3)
	if err == nil || !strings.Contains(err.Error(), "at most 10") {
		t.Fatalf("11 Galera nodes: %v", err)
	}
}

func TestResolveAgentBinary(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	if got, err := resolveAgentBinary(ninesBin, ""); err != nil || got != ninesBin {
		t.Errorf("explicit: %q, %v", got, err)
	}
	if got, err := resolveAgentBinary("", ninesBin); err != nil || got != ninesBin {
		t.Errorf("test binary with a recorded nines: %q, %v", got, err)
	}
	if _, err := resolveAgentBinary("", ""); !errors.Is(err, ErrAgentBinary) || !strings.Contains(err.Error(), "Options.AgentBinary") {
		t.Errorf("test binary without AgentBinary: %v (running %s)", err, self)
	}
	if _, err := resolveAgentBinary(filepath.Join(t.TempDir(), "nines"), ""); err == nil {
		t.Error("a missing explicit binary was accepted")
	}
	if _, err := (Options{Dir: "/x", AgentBinary: t.TempDir()}).normalize(); err == nil {
		t.Error("a directory was accepted as the agent binary")
	}
}

// TestAgentConfigLoads checks that the agent.yaml the sandbox writes is
// one the agent accepts, paths and all.
func TestAgentConfigLoads(t *testing.T) {
	dir := t.TempDir()
	m := manifest{Kind: nines.KindReplication, ClusterName: "r", Nodes: layout(dir, nines.KindReplication, 2, 3306)}
	n := m.Nodes[1]
	if err := os.MkdirAll(n.Dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(n.DefaultsFile, []byte(renderMyCnf(m, 1, osUser{})), 0o644); err != nil {
		t.Fatal(err)
	}
	token := filepath.Join(dir, "agent-token")
	if err := os.WriteFile(token, []byte("0123456789abcdef0123456789abcdef\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := agent.Parse(n.AgentConfigPath(), []byte(renderAgentConfig(m, n, token)))
	if err != nil {
		t.Fatal(err)
	}
	l := cfg.Local()
	if cfg.Listen != "127.0.0.1:3507" || cfg.IsGalera() || cfg.Name != "n2" || l.DataDir != n.DataDir || l.Socket != n.Socket ||
		l.PidFile != n.PidFile || l.ErrorLog != n.ErrorLog || l.Dir != n.Dir {
		t.Errorf("agent config of n2: %+v %+v", cfg, l)
	}
}

func itoa(i int) string { return strconv.Itoa(i) }
