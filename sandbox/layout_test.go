package sandbox

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nines-project/nines"
)

func TestLayoutPorts(t *testing.T) {
	nodes := layout("/sb", nines.KindGalera, 3, 3306)
	want := []struct {
		name                    string
		sql, gcomm, ist, sstPrt int
	}{
		{"n1", 3306, 3406, 3407, 3408},
		{"n2", 3307, 3416, 3417, 3418},
		{"n3", 3308, 3426, 3427, 3428},
	}
	for i, w := range want {
		n := nodes[i]
		if n.Name != w.name || n.SQLPort != w.sql || n.GcommPort != w.gcomm || n.ISTPort != w.ist || n.SSTPort != w.sstPrt {
			t.Errorf("node %d: %+v, want %+v", i, n, w)
		}
		if n.DefaultsFile != filepath.Join("/sb", w.name, "my.cnf") || n.Socket != filepath.Join("/sb", w.name, "mysqld.sock") {
			t.Errorf("node %d paths: %+v", i, n)
		}
	}
	repl := layout("/sb", nines.KindReplication, 3, 4000)
	if repl[0].Role != RolePrimary || repl[1].Role != RoleReplica || repl[2].SQLPort != 4002 || repl[2].GcommPort != 0 {
		t.Errorf("replication layout: %+v", repl)
	}
}

func TestRenderMyCnf(t *testing.T) {
	m := manifest{Kind: nines.KindGalera, ClusterName: "c1", Nodes: layout("/sb", nines.KindGalera, 2, 3306)}
	cnf := renderMyCnf(m, 1, osUser{name: "mysql"})
	for _, line := range []string{
		"user=mysql",
		"port=3307",
		"server_id=2",
		"wsrep_cluster_name=c1",
		"wsrep_cluster_address=gcomm://127.0.0.1:3406,127.0.0.1:3416",
		`wsrep_provider_options="base_port=3416;gmcast.listen_addr=tcp://127.0.0.1:3416;ist.recv_addr=127.0.0.1:3417;gcache.size=32M;` +
			`evs.keepalive_period=PT0.25S;evs.inactive_check_period=PT0.25S;evs.join_retrans_period=PT0.25S;evs.suspect_timeout=PT1.5S;evs.inactive_timeout=PT3S;evs.install_timeout=PT3S"`,
		"wsrep_sst_receive_address=127.0.0.1:3418",
		"wsrep_sst_method=rsync",
		"innodb_autoinc_lock_mode=2",
		"log_slave_updates=ON",
		"performance_schema=ON",
		"performance-schema-consumer-events-statements-history=ON",
		"performance-schema-instrument='wait/lock/metadata/sql/mdl=ON'",
	} {
		if !strings.Contains(cnf, "\n"+line+"\n") {
			t.Errorf("my.cnf lacks %q:\n%s", line, cnf)
		}
	}
	if strings.Contains(renderMyCnf(m, 0, osUser{}), "user=mysql") {
		t.Error("my.cnf names user=mysql although the servers do not run as root")
	}

	r := manifest{Kind: nines.KindReplication, SemiSync: true, Nodes: layout("/sb", nines.KindReplication, 2, 3306)}
	primary, replica := renderMyCnf(r, 0, osUser{}), renderMyCnf(r, 1, osUser{})
	for _, c := range []struct {
		cnf, line string
		want      bool
	}{
		{primary, "rpl_semi_sync_master_enabled=ON", true},
		{primary, "read_only=ON", true},
		{replica, "rpl_semi_sync_slave_enabled=ON", true},
		{replica, "read_only=ON", true},
		{replica, "gtid_strict_mode=ON", true},
		{replica, "skip_slave_start=ON", true},
		{replica, "wsrep_on=OFF", true},
	} {
		if got := strings.Contains(c.cnf, "\n"+c.line+"\n"); got != c.want {
			t.Errorf("has %q = %v, want %v in:\n%s", c.line, got, c.want, c.cnf)
		}
	}
}

func TestRenderConfigQuotesOddListen(t *testing.T) {
	m := manifest{Kind: nines.KindReplication, ClusterName: "r", Listen: "[::1]:9104", Nodes: layout("/sb", nines.KindReplication, 1, 3306)}
	got := renderConfig(m, "")
	if !strings.HasPrefix(got, `listen: "[::1]:9104"`+"\n") || !strings.Contains(got, "    kind: replication\n") {
		t.Errorf("config:\n%s", got)
	}
}

func TestAdoptRejectsContradictions(t *testing.T) {
	s := &Sandbox{dir: "/sb", m: manifest{Kind: nines.KindGalera, ClusterName: "c", BasePort: 3306, Listen: DefaultListen,
		Nodes: layout("/sb", nines.KindGalera, 3, 3306)}}
	for _, tt := range []struct {
		name string
		o    Options
		kind nines.Kind
		want string
	}{
		{"kind", Options{}, nines.KindReplication, "not replication"},
		{"nodes", Options{Nodes: 5}, nines.KindGalera, "3 nodes, not 5"},
		{"port", Options{BasePort: 4000}, nines.KindGalera, "base port is 3306, not 4000"},
		{"name", Options{ClusterName: "d"}, nines.KindGalera, `cluster is "c", not "d"`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := s.adopt(tt.o, tt.kind)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to say %q", err, tt.want)
			}
		})
	}
	if err := s.adopt(Options{Nodes: 3, BasePort: 3306, ClusterName: "c", Listen: "127.0.0.1:9200"}, nines.KindGalera); err != nil {
		t.Fatalf("matching options: %v", err)
	}
	if s.m.Listen != "127.0.0.1:9200" || !s.listenChanged {
		t.Fatalf("listen not taken over: %+v", s.m)
	}
}

func TestNormalize(t *testing.T) {
	for _, tt := range []struct {
		name string
		o    Options
	}{
		{"no dir", Options{}},
		{"too many nodes", Options{Dir: "/x", Nodes: 101}},
		{"bad port", Options{Dir: "/x", BasePort: 70000}},
		{"bad listen", Options{Dir: "/x", Listen: "9104"}},
		{"bad name", Options{Dir: "/x", ClusterName: "a b"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := tt.o.normalize(); err == nil {
				t.Fatal("accepted")
			}
		})
	}
}

func TestCreateRefusesForeignDirectory(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "precious"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := create(Options{Dir: dir}, nines.KindGalera, 3)
	if err == nil || !strings.Contains(err.Error(), "not empty") {
		t.Fatalf("err = %v", err)
	}
}

func TestEnsureTraversable(t *testing.T) {
	u := osUser{name: "someone", uid: 12345, gids: []int{12345}}
	base := t.TempDir()
	if err := os.Chmod(base, 0o755); err != nil {
		t.Fatal(err)
	}
	closed := filepath.Join(base, "closed")
	dir := filepath.Join(closed, "sb")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(closed, 0o700); err != nil {
		t.Fatal(err)
	}
	// Ancestors of t.TempDir are 0700 too; only check what is ours.
	err := ensureTraversableUpTo(dir, u, base, true)
	if err == nil || !strings.Contains(err.Error(), `"`+closed+`"`) {
		t.Fatalf("err = %v, want it to name %q", err, closed)
	}
	if err := os.Chmod(closed, 0o711); err != nil {
		t.Fatal(err)
	}
	if err := ensureTraversableUpTo(dir, u, base, true); err != nil {
		t.Fatalf("after chmod: %v", err)
	}
	if m := fileMode(t, dir); m != 0o755 {
		t.Fatalf("sandbox dir itself has mode %v, want it opened to 0755", m)
	}
}

// TestApplianceFilesRegenerated: the generated nines.yaml and
// alertmanager.yml follow nines' defaults at every start unless edited by
// hand; files from a nines that kept no hash are kept as .old.
func TestApplianceFilesRegenerated(t *testing.T) {
	dir := t.TempDir()
	s := &Sandbox{dir: dir, m: manifest{Kind: nines.KindGalera, ClusterName: "c", BasePort: 3306, Listen: DefaultListen,
		Nodes: layout(dir, nines.KindGalera, 3, 3306)}}
	read := func(p string) string {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	write := func(p, content string) {
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.writeApplianceFiles(); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(read(s.ConfigPath()), "console:\n  users:\n") || !strings.Contains(read(s.AlertmanagerConfigPath()), `remediation=""`) {
		t.Fatalf("first start: missing console users or the inhibit rule's remediation matcher")
	}

	// An old default (no hash recorded) is replaced and kept as .old.
	write(s.AlertmanagerConfigPath(), "# old default\n")
	s.m.Generated = nil
	if err := s.writeApplianceFiles(); err != nil {
		t.Fatal(err)
	}
	if read(s.AlertmanagerConfigPath()+".old") != "# old default\n" || !strings.Contains(read(s.AlertmanagerConfigPath()), "remediator") {
		t.Errorf("legacy alertmanager.yml not regenerated with a copy kept")
	}

	// A hand edit survives the next start.
	edited := read(s.AlertmanagerConfigPath()) + "# my receiver\n"
	write(s.AlertmanagerConfigPath(), edited)
	if err := s.writeApplianceFiles(); err != nil {
		t.Fatal(err)
	}
	if got := read(s.AlertmanagerConfigPath()); got != edited {
		t.Errorf("hand-edited alertmanager.yml was overwritten:\n%s", got)
	}
	// An untouched file is rewritten (its console hash is new each time).
	before := read(s.ConfigPath())
	if err := s.writeApplianceFiles(); err != nil {
		t.Fatal(err)
	}
	if read(s.ConfigPath()) == before {
		t.Errorf("untouched nines.yaml was not regenerated")
	}
}

func fileMode(t *testing.T, path string) os.FileMode {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode().Perm()
}
