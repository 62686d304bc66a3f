package sandbox

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/nines-project/nines"
	"github.com/nines-project/nines/agent"
)

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
	// Any executable file will do: resolveAgentBinary only picks a path.
	ninesBin := filepath.Join(t.TempDir(), "nines")
	if err := os.WriteFile(ninesBin, []byte("#!/bin/sh\n"), 0o755); err != nil {
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
	// The replication account's password sits beside the token.
	if err := os.WriteFile(filepath.Join(dir, "repl.pass"), []byte("replpass\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := agent.Parse(n.AgentConfigPath(), []byte(renderAgentConfig(m, n, token, filepath.Join(dir, "backups"))))
	if err != nil {
		t.Fatal(err)
	}
	l := cfg.Local()
	if cfg.Listen != "127.0.0.1:3507" || cfg.IsGalera() || cfg.Name != "n2" || l.DataDir != n.DataDir || l.Socket != n.Socket ||
		l.PidFile != n.PidFile || l.ErrorLog != n.ErrorLog || l.Dir != n.Dir || len(cfg.BackupDirs) != 1 || cfg.BackupDirs[0] != filepath.Join(dir, "backups") {
		t.Errorf("agent config of n2: %+v %+v", cfg, l)
	}
	if r := cfg.Replication; r == nil || r.User != "repl" || r.Password.Reveal() != "replpass" {
		t.Errorf("replication account of n2: %+v", r)
	}
}

func itoa(i int) string { return strconv.Itoa(i) }

// TestDRReplicaLayout: a Galera sandbox's DR replica has its own ports,
// server_id and GTID domain, a plain read-only replica's my.cnf, an agent
// with galera false and the replication account, and nines.yaml declares
// it under dr_replicas; the nodes write consistent GTIDs.
func TestDRReplicaLayout(t *testing.T) {
	dir := t.TempDir()
	m := manifest{Kind: nines.KindGalera, ClusterName: "g", Nodes: layout(dir, nines.KindGalera, 3, 3306), DRReplicas: []Node{drLayout(dir, 3306, 0)}}
	d := m.DRReplicas[0]
	if d.Name != "dr1" || d.SQLPort != 3396 || d.AgentPort != 3596 || d.Role != RoleReplica || d.Dir != filepath.Join(dir, "dr1") {
		t.Errorf("DR replica layout: %+v", d)
	}
	node, dr := renderMyCnf(m, 1, osUser{}), renderDRMyCnf(m, 0, osUser{})
	for _, c := range []struct {
		cnf, line string
		want      bool
	}{
		{node, "wsrep_gtid_mode=ON", true},
		{node, "wsrep_gtid_domain_id=1", true},
		{node, "gtid_domain_id=12", true},
		{node, "log_slave_updates=ON", true},
		{dr, "server_id=101", true},
		{dr, "gtid_domain_id=101", true},
		{dr, "wsrep_on=OFF", true},
		{dr, "read_only=ON", true},
		{dr, "skip_slave_start=ON", true},
		{dr, "port=3396", true},
		{dr, "wsrep_gtid_mode=ON", false},
	} {
		if got := strings.Contains(c.cnf, "\n"+c.line+"\n"); got != c.want {
			t.Errorf("has %q = %v, want %v in:\n%s", c.line, got, c.want, c.cnf)
		}
	}
	if err := os.MkdirAll(d.Dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(d.DefaultsFile, []byte(dr), 0o644); err != nil {
		t.Fatal(err)
	}
	token := filepath.Join(dir, "agent-token")
	for name, content := range map[string]string{token: "0123456789abcdef0123456789abcdef\n", filepath.Join(dir, "repl.pass"): "replpass\n"} {
		if err := os.WriteFile(name, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	cfg, err := agent.Parse(d.AgentConfigPath(), []byte(renderAgentConfig(m, d, token, filepath.Join(dir, "backups"))))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.IsGalera() || cfg.Listen != "127.0.0.1:3596" || cfg.Replication == nil || cfg.Replication.User != "repl" {
		t.Errorf("agent config of dr1: galera %v, listen %s, replication %+v", cfg.IsGalera(), cfg.Listen, cfg.Replication)
	}
	if got := renderConfig(m, ""); !strings.Contains(got, "    dr_replicas:\n      - {address: \"127.0.0.1:3396\", agent: \"http://127.0.0.1:3596\"}\n") {
		t.Errorf("nines.yaml does not declare dr1:\n%s", got)
	}
	if _, err := create(Options{Dir: filepath.Join(dir, "r"), DRReplica: true}, nines.KindReplication, 3); err == nil || !strings.Contains(err.Error(), "DR replica is for Galera") {
		t.Errorf("a replication sandbox with a DR replica: %v", err)
	}
}
