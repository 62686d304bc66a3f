package sandbox

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nines-project/nines"
)

// TestHAProxyLayout: the listeners sit past every other port of the
// largest sandboxes, and the generated config names each node's SQL
// address and agent port; haproxy -c accepts it.
func TestHAProxyLayout(t *testing.T) {
	dir := t.TempDir()
	s, err := create(Options{Dir: filepath.Join(dir, "sb"), Nodes: 3, BasePort: 3306, ClusterName: "c1", HAProxy: true}, nines.KindGalera, 3)
	if err != nil {
		t.Fatal(err)
	}
	if !s.HAProxy() || s.WriterAddress() != "127.0.0.1:3606" || s.ReaderAddress() != "127.0.0.1:3607" {
		t.Fatalf("haproxy %v, writer %s, reader %s", s.HAProxy(), s.WriterAddress(), s.ReaderAddress())
	}
	top := 0
	for _, kind := range []nines.Kind{nines.KindGalera, nines.KindReplication} {
		nodes := maxGaleraNodes
		if kind == nines.KindReplication {
			nodes = maxNodes
		}
		for _, n := range layout("/sb", kind, nodes, 3306) {
			top = max(top, n.SQLPort, n.SSTPort, n.AgentPort)
		}
	}
	if top >= 3306+haproxyWriterOffset {
		t.Errorf("node ports reach %d, the writer's is %d", top, 3306+haproxyWriterOffset)
	}
	if err := os.WriteFile(s.AgentTokenPath(), []byte(strings.Repeat("ab", 32)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	b, err := s.haproxyConfig()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"listen c1-writer\n    bind 127.0.0.1:3606\n", "listen c1-reader\n    bind 127.0.0.1:3607\n",
		"server n1 127.0.0.1:3306 check port 3506\n", "server n2 127.0.0.1:3307 check port 3507 backup\n",
		"stats socket " + s.HAProxySocket() + " mode 600 level admin", "log stdout format raw local0",
	} {
		if !strings.Contains(string(b), want) {
			t.Errorf("no %q in\n%s", want, b)
		}
	}
	if _, err := os.Stat(HAProxyProgram); err != nil {
		t.Fatalf("%v: install the Debian package haproxy (scripts/install-deps.sh does)", err)
	}
	f := filepath.Join(dir, "haproxy.cfg")
	if err := os.WriteFile(f, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(HAProxyProgram, "-c", "-f", f).CombinedOutput(); err != nil {
		t.Fatalf("haproxy -c: %v\n%s", err, out)
	}
	// Replication: every node in both pools, none a backup (only the
	// primary passes the writer check).
	r, err := create(Options{Dir: filepath.Join(dir, "r"), BasePort: 4306, ClusterName: "r1", HAProxy: true}, nines.KindReplication, 3)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(r.AgentTokenPath(), []byte(strings.Repeat("ab", 32)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	rb, err := r.haproxyConfig()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"for replication cluster r1", "listen r1-writer\n    bind 127.0.0.1:4606\n",
		"server n1 127.0.0.1:4306 check port 4506\n", "server n2 127.0.0.1:4307 check port 4507\n", "server n3 127.0.0.1:4308 check port 4508\n"} {
		if !strings.Contains(string(rb), want) {
			t.Errorf("no %q in\n%s", want, rb)
		}
	}
	if strings.Contains(string(rb), " backup") {
		t.Errorf("a backup server in a replication config:\n%s", rb)
	}
	if keys, want := r.HAProxyConfigKeys(), `    probe: {endpoints: ["127.0.0.1:4606"]}
    haproxy: {stats_socket: "`+r.HAProxySocket()+`", writer_backend: r1-writer, reader_backend: r1-reader}
`; keys != want {
		t.Errorf("nines.yaml's haproxy keys:\n%s\nwant\n%s", keys, want)
	}
	if w := fmt.Sprint(r.haproxyWant()); w != "map[r1-reader/n1:DOWN r1-reader/n2:UP r1-reader/n3:UP r1-writer/n1:UP r1-writer/n2:DOWN r1-writer/n3:DOWN]" {
		t.Errorf("replication sandbox waits for %s", w)
	}
	// A pid that is not this sandbox's haproxy is never trusted.
	if isHAProxyOf(os.Getpid(), s.HAProxyConfigPath()) {
		t.Error("the test process taken for haproxy")
	}
}

func TestWriteStatusHAProxy(t *testing.T) {
	var b bytes.Buffer
	err := WriteStatus(&b, []NodeStatus{
		{Name: "n1", SQLPort: 3306, Pid: 10, State: "Synced", ClusterSize: 1, AgentURL: "http://127.0.0.1:3506", AgentPid: 11},
		{Name: HAProxyName, Pid: 12, State: "running", Writer: "127.0.0.1:3606", Reader: "127.0.0.1:3607"},
	})
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[2], "haproxy") || !strings.Contains(lines[2], "12") ||
		!strings.Contains(lines[2], "writer 127.0.0.1:3606, reader 127.0.0.1:3607") {
		t.Errorf("status table:\n%s", b.String())
	}
}

func TestReplicationRole(t *testing.T) {
	for _, tt := range []struct {
		name     string
		readOnly string
		slave    map[string]string
		role     string
		why      string
	}{
		{"primary", "0", nil, LivePrimary, ""},
		{"fenced", "1", nil, "", "read_only ON and replicating from nobody"},
		{"replica", "1", map[string]string{"Slave_IO_Running": "Yes", "Slave_SQL_Running": "Yes"}, LiveReplica, ""},
		{"replica of a dead primary", "1", map[string]string{"Slave_IO_Running": "Connecting", "Slave_SQL_Running": "Yes"}, LiveReplica, ""},
		{"stopped replication, writable", "0", map[string]string{"Slave_IO_Running": "No", "Slave_SQL_Running": "No"}, LivePrimary, ""},
		{"unreadable", "", nil, "", "read_only unreadable"},
	} {
		role, why := replicationRole(tt.readOnly, tt.slave, tt.slave != nil)
		if role != tt.role || !strings.Contains(why, tt.why) || (tt.why == "") != (why == "") {
			t.Errorf("%s: %q %q, want %q %q", tt.name, role, why, tt.role, tt.why)
		}
	}
}
