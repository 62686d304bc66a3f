//go:build cluster

package sandbox

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/nines-project/nines/appliance/config"
)

// TestGaleraSandbox starts a real 3-node cluster, stops it and starts it
// again on the same directory: the cluster must keep its state UUID and its
// data. It then kills one node and brings it back with StartNode.
func TestGaleraSandbox(t *testing.T) {
	sideBySide(t)
	dir := sandboxDir(t)
	stopOnCleanup(t, dir)
	ctx := testContext(t, 5*time.Minute)
	opts := Options{Dir: dir, Nodes: 3, BasePort: 23306, ClusterName: "e2e", Log: t.Output(), AgentBinary: ninesBin}

	var s *Sandbox
	timed(t, "fresh 3-node galera", func() {
		var err error
		if s, err = StartGalera(ctx, opts); err != nil {
			t.Fatalf("start: %v", err)
		}
	})
	uuid := requireSynced(t, s, 3)

	t.Run("status JSON", func(t *testing.T) {
		sts, err := s.Status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		b, err := json.Marshal(sts)
		if err != nil {
			t.Fatal(err)
		}
		var decoded []map[string]any
		if err := json.Unmarshal(b, &decoded); err != nil {
			t.Fatal(err)
		}
		for i, d := range decoded {
			for _, k := range []string{"name", "sql_port", "socket", "pid", "state", "agent_url", "agent_pid"} {
				if _, ok := d[k]; !ok {
					t.Errorf("node %d: no %q in %s", i, k, b)
				}
			}
			if d["state"] != "Synced" || d["sql_port"] != float64(23306+i) || d["pid"] == float64(0) ||
				d["agent_url"] != fmt.Sprintf("http://127.0.0.1:%d", 23506+i) || d["agent_pid"] == float64(0) {
				t.Errorf("node %d: %v", i, d)
			}
		}
	})

	t.Run("files", func(t *testing.T) {
		want := `listen: 127.0.0.1:9104
data_dir: appliance
api:
  tokens:
    - {name: sandbox, role: admin, token_file: api-token}
    - {name: alertmanager, role: webhook, token_file: webhook-token}
    - {name: grafana, role: read, token_file: read-token}
clusters:
  - name: e2e
    kind: galera
    nodes:
      - {address: "127.0.0.1:23306", agent: "http://127.0.0.1:23506"}
      - {address: "127.0.0.1:23307", agent: "http://127.0.0.1:23507"}
      - {address: "127.0.0.1:23308", agent: "http://127.0.0.1:23508"}
    agent_token_file: agent-token
    remediation: {mode: auto}
    credentials: {user: nines, password_file: nines.pass}
alertmanager: {embedded: alertmanager.yml}
console:
  users:
    - {name: admin, role: admin, password_hash: "HASH"}
`
		got, err := os.ReadFile(s.ConfigPath())
		if err != nil {
			t.Fatal(err)
		}
		// The hash is salted: compare the rest, then check the hash
		// against the password file.
		hashRE := regexp.MustCompile(`password_hash: "([^"]+)"`)
		hash := hashRE.FindSubmatch(got)
		if hash == nil {
			t.Fatalf("nines.yaml has no console password hash:\n%s", got)
		}
		if string(hashRE.ReplaceAll(got, []byte(`password_hash: "HASH"`))) != want {
			t.Errorf("nines.yaml:\n%s\nwant:\n%s", got, want)
		}
		pw, err := os.ReadFile(s.ConsolePasswordPath())
		if err != nil {
			t.Fatal(err)
		}
		if err := bcrypt.CompareHashAndPassword(hash[1], bytes.TrimSpace(pw)); err != nil {
			t.Errorf("the console hash does not match console-password: %v", err)
		}
		for _, p := range []string{s.TokenPath(), s.WebhookTokenPath(), s.AgentTokenPath()} {
			token, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			if !regexp.MustCompile(`^[0-9a-f]{32,}\n$`).Match(token) {
				t.Errorf("%s: %q is not 32+ hex characters", p, token)
			}
		}
		if _, err := config.Load(s.ConfigPath()); err != nil {
			t.Errorf("the appliance does not accept nines.yaml: %v", err)
		}
		for _, p := range []string{s.TokenPath(), s.WebhookTokenPath(), s.PasswordPath(), s.AgentTokenPath(), s.ConsolePasswordPath(), s.ConfigPath()} {
			if m := fileMode(t, p); m != 0o600 {
				t.Errorf("%s has mode %v, want 0600", p, m)
			}
		}
		o, err := Open(dir)
		if err != nil {
			t.Fatal(err)
		}
		if n := o.Nodes(); len(n) != 3 || n[2].GcommPort != 23306+120 || n[2].ISTPort != 23306+121 || n[2].SSTPort != 23306+122 ||
			n[2].AgentPort != 23306+202 || n[2].AgentPid == 0 {
			t.Errorf("sandbox.json nodes: %+v", n)
		}
	})

	// The monitoring user works over TCP with its password file and may
	// write in schema nines, as the exporter and the probe will.
	mon := monitorDB(t, s, "n2")
	mustExec(t, mon, "CREATE TABLE probe (id INT PRIMARY KEY, note VARCHAR(32))")
	mustExec(t, mon, "INSERT INTO probe VALUES (1, 'before stop')")
	if got := queryOne[string](t, mon, "SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME = 'WSREP_CLUSTER_SIZE'"); got != "3" {
		t.Errorf("nines user sees cluster size %q", got)
	}

	agentPids := map[string]int{}
	for _, n := range s.Nodes() {
		agentPids[n.Name] = n.AgentPid
	}
	timed(t, "stop 3-node galera", func() {
		if err := s.Stop(ctx); err != nil {
			t.Fatalf("stop: %v", err)
		}
	})
	for name, st := range statusByName(t, s) {
		if st.State != StateStopped || st.Pid != 0 || st.AgentPid != 0 {
			t.Errorf("%s after stop: %+v", name, st)
		}
		if running(agentPids[name]) {
			t.Errorf("agent of %s (pid %d) still runs after Stop", name, agentPids[name])
		}
	}

	timed(t, "restart 3-node galera on the same dir", func() {
		var err error
		if s, err = StartGalera(ctx, Options{Dir: dir, Log: t.Output(), AgentBinary: ninesBin}); err != nil {
			t.Fatalf("restart: %v", err)
		}
	})
	if again := requireSynced(t, s, 3); again != uuid {
		t.Fatalf("cluster state UUID changed across stop/start: %s -> %s", uuid, again)
	}
	if got := queryOne[string](t, rootDB(t, s, "n3"), "SELECT note FROM nines.probe WHERE id = 1"); got != "before stop" {
		t.Fatalf("row written before the stop reads %q on n3", got)
	}

	// kill -9 a node, as the drills will: it stays down, since neither
	// its agent nor the sandbox restarts anything, until StartNode asks
	// its agent to start it; it then catches up by IST.
	pid, err := s.Pid("n2")
	if err != nil || pid == 0 {
		t.Fatalf("pid of n2: %d, %v", pid, err)
	}
	n2, err := s.Agent("n2")
	if err != nil {
		t.Fatal(err)
	}
	if st, err := n2.Status(ctx); err != nil || !st.Supervised || st.Pid != pid {
		t.Fatalf("n2's agent does not supervise pid %d: %+v, %v", pid, st, err)
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	mustExec(t, rootDB(t, s, "n1"), "INSERT INTO nines.probe VALUES (2, 'while n2 was down')")
	eventually(t, 10*time.Second, "n2 seen as stopped", func() (bool, string) {
		st := statusByName(t, s)["n2"]
		return st.State == StateStopped, st.State
	})
	for time.Since(killed) < 5*time.Second {
		if st := statusByName(t, s)["n2"]; st.State != StateStopped || st.Pid != 0 {
			t.Fatalf("n2 came back by itself %v after kill -9: %+v", time.Since(killed).Round(time.Millisecond), st)
		}
		time.Sleep(250 * time.Millisecond)
	}
	st, err := n2.Status(ctx)
	if err != nil || st.Running || st.LastExit == nil || st.LastExit.Pid != pid || st.LastExit.Requested || st.LastExit.Status != "signal: killed" {
		t.Fatalf("n2's agent after kill -9: %+v, %v", st, err)
	}
	node2, err := s.Node("n2")
	if err != nil {
		t.Fatal(err)
	}
	logOffset := fileSize(t, node2.ErrorLog)
	timed(t, "rejoin killed n2 through its agent", func() {
		if err := s.StartNode(ctx, "n2"); err != nil {
			t.Fatalf("start n2 again: %v", err)
		}
	})
	if joined := readFrom(t, node2.ErrorLog, logOffset); !strings.Contains(joined, "Receiving IST") {
		t.Errorf("n2 did not rejoin by IST; its error log since the start:\n%s", joined)
	}
	if st, err := n2.Status(ctx); err != nil || !st.Running || !st.Supervised || st.Wsrep == nil || !st.Wsrep.Synced() {
		t.Fatalf("n2's agent after the rejoin: %+v, %v", st, err)
	}
	if again := requireSynced(t, s, 3); again != uuid {
		t.Fatalf("cluster state UUID changed after the rejoin: %s -> %s", uuid, again)
	}
	if got := queryOne[string](t, rootDB(t, s, "n2"), "SELECT note FROM nines.probe WHERE id = 2"); got != "while n2 was down" {
		t.Fatalf("rejoined n2 reads %q", got)
	}
}

// requireSynced checks every node is Synced in one component of size n
// and returns the cluster state UUID.
func requireSynced(t *testing.T, s *Sandbox, n int) string {
	t.Helper()
	uuid := ""
	for _, node := range s.Nodes() {
		st := statusByName(t, s)[node.Name]
		if st.State != "Synced" || st.ClusterSize != n || st.Pid == 0 {
			t.Fatalf("%s: %+v, want Synced in a cluster of %d", node.Name, st, n)
		}
		if uuid == "" {
			uuid = st.ClusterStateUUID
		} else if st.ClusterStateUUID != uuid {
			t.Fatalf("%s is in cluster %s, others in %s", node.Name, st.ClusterStateUUID, uuid)
		}
	}
	return uuid
}
