//go:build cluster

package sandbox

import (
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nines-project/nines/agent"
)

// TestQuorumLossRepairedThroughAgents is the drill the remediator will
// run, done by hand through the agents' API: kill -9 two of three nodes,
// so the survivor drops out of the Primary component; pc-bootstrap on the
// survivor makes it Primary again; the two others, started through their
// agents (which recover their positions first), rejoin by IST.
func TestQuorumLossRepairedThroughAgents(t *testing.T) {
	sideBySide(t)
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
	// What the quorum decision reads from a real cluster: each node's
	// saved Primary view (gvwstate.dat, all three members) and, from each
	// host, the Galera ports it reaches (all three).
	for name, c := range agents {
		st, err := c.Status(ctx)
		if err != nil || st.Gvwstate == nil || len(st.Gvwstate.Members) != 3 || !st.Gvwstate.Has(st.Gvwstate.MyUUID) {
			t.Fatalf("%s: gvwstate %+v (%s), %v", name, st.Gvwstate, st.GvwstateError, err)
		}
		if reached := reachedPeers(t, c); reached != 3 {
			t.Errorf("%s reaches %d Galera ports of a healthy 3-node cluster", name, reached)
		}
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
	if reached := reachedPeers(t, agents["n1"]); reached != 1 {
		t.Errorf("after kill -9 of n2 and n3, n1's host reaches %d Galera ports, want its own only", reached)
	}
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

// reachedPeers is how many Galera ports of its cluster address an agent's
// host reaches (GET /v1/peers).
func reachedPeers(t *testing.T, c *agent.Client) int {
	t.Helper()
	res, err := c.Peers(t.Context())
	if err != nil {
		t.Fatalf("peers: %v", err)
	}
	n := 0
	for _, p := range res.Peers {
		if p.Reachable {
			n++
		}
	}
	return n
}
