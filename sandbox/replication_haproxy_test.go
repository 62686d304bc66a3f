//go:build cluster

package sandbox

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os/exec"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/nines-project/nines/agent"
	"github.com/nines-project/nines/appliance/config"
	"github.com/nines-project/nines/exporter"
	"github.com/nines-project/nines/haproxy"
)

// replHAProxyBasePort keeps this test's sandbox (SQL 30306-30308, agents
// 30506-30508, HAProxy 30606-30607) clear of the other cluster tests'.
const replHAProxyBasePort = 30306

// TestReplicationHAProxy runs a semi-sync replication sandbox behind
// HAProxy: writes through the writer port land on the primary n1, reads
// through the reader port on the replicas, the application account is
// fenced by read_only; the runtime API moves n1 to maint and back; after
// kill -9 of the primary the writer pool holds no server (no failover
// exists yet: this is the state a failover must end) as the runtime API
// and the nines_haproxy_* series show, and n1 restarted comes back fenced.
func TestReplicationHAProxy(t *testing.T) {
	dir := sandboxDir(t)
	stopOnCleanup(t, dir)
	ctx := testContext(t, 5*time.Minute)
	var s *Sandbox
	timed(t, "semi-sync replication, 2 replicas, haproxy", func() {
		var err error
		s, err = StartReplication(ctx, Options{Dir: dir, Nodes: 3, BasePort: replHAProxyBasePort, ClusterName: "rhap", SemiSync: true,
			Log: t.Output(), AgentBinary: ninesBin, HAProxy: true})
		if err != nil {
			t.Fatalf("start: %v", err)
		}
	})
	writerAddr, readerAddr := s.WriterAddress(), s.ReaderAddress()
	if writerAddr != "127.0.0.1:30606" || readerAddr != "127.0.0.1:30607" {
		t.Fatalf("listeners %s %s", writerAddr, readerAddr)
	}
	rt := s.HAProxyRuntime()

	cfg, err := config.Load(s.ConfigPath())
	if err != nil {
		t.Fatalf("the sandbox's nines.yaml: %v", err)
	}
	cl := cfg.Clusters[0]
	if h := cl.HAProxy; h == nil || h.StatsSocket != s.HAProxySocket() || h.WriterBackend != "rhap-writer" || h.ReaderBackend != "rhap-reader" ||
		fmt.Sprint(cl.ProbeEndpoints()) != "["+writerAddr+"]" {
		t.Errorf("nines.yaml: haproxy %+v, probe endpoints %v; want the sandbox's socket and backends, and the probe through %s", cl.HAProxy, cl.ProbeEndpoints(), writerAddr)
	}

	t.Run("read_only fences the application account", func(t *testing.T) {
		root := rootDB(t, s, "n1")
		for _, acct := range []string{"'app'@'127.0.0.1'", "'app'@'localhost'"} {
			rows, err := root.QueryContext(ctx, "SHOW GRANTS FOR "+acct)
			if err != nil {
				t.Fatal(err)
			}
			for rows.Next() {
				var g string
				_ = rows.Scan(&g)
				if strings.Contains(g, "SUPER") || strings.Contains(g, "READ_ONLY ADMIN") || strings.Contains(g, "ALL PRIVILEGES ON *.*") {
					t.Errorf("%s: %s: read_only would not fence it", acct, g)
				}
			}
			rows.Close()
		}
		for name, want := range map[string]int{"n1": 0, "n2": 1, "n3": 1} {
			if got := queryOne[int](t, rootDB(t, s, name), "SELECT @@global.read_only"); got != want {
				t.Errorf("%s read_only = %d, want %d", name, got, want)
			}
		}
	})

	t.Run("health endpoints", func(t *testing.T) {
		for _, tt := range []struct {
			node, role string
			ok         bool
			reason     string
		}{
			{"n1", agent.HealthWriter, true, "writer: primary, read_only OFF"},
			{"n1", agent.HealthReader, false, "not a reader: replicates from nobody"},
			{"n2", agent.HealthWriter, false, "not a writer: a replica: replication running (io=Yes sql=Yes)"},
			{"n2", agent.HealthReader, true, "reader: replica, 0s behind (limit 10s)"},
		} {
			c, err := s.Agent(tt.node)
			if err != nil {
				t.Fatal(err)
			}
			ok, reason, err := c.Health(ctx, tt.role)
			if err != nil || ok != tt.ok || !strings.HasPrefix(reason, tt.reason) {
				t.Errorf("%s %s: %v %q %v; want %v %q", tt.node, tt.role, ok, reason, err, tt.ok, tt.reason)
			}
		}
	})

	mustExec(t, rootDB(t, s, "n1"), "CREATE TABLE app.writes (id BIGINT AUTO_INCREMENT PRIMARY KEY, server_id INT NOT NULL)")
	writer := appDB(t, s, writerAddr)
	reader := appDB(t, s, readerAddr)
	write := func() error {
		wctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		defer cancel()
		_, err := writer.ExecContext(wctx, "INSERT INTO writes (server_id) VALUES (@@server_id)")
		return err
	}

	t.Run("writes go to the primary, reads to the replicas", func(t *testing.T) {
		for i := 0; i < 5; i++ {
			if err := write(); err != nil {
				t.Fatalf("write %d through haproxy's writer: %v", i, err)
			}
		}
		if got := queryOne[string](t, rootDB(t, s, "n1"), "SELECT GROUP_CONCAT(DISTINCT server_id) FROM app.writes"); got != "1" {
			t.Errorf("writes landed on server_id %s, want 1 (n1)", got)
		}
		reader.SetMaxIdleConns(0)
		seen := map[int]int{}
		for i := 0; i < 6; i++ {
			seen[queryOne[int](t, reader, "SELECT @@server_id")]++
		}
		if len(seen) != 2 || seen[2] == 0 || seen[3] == 0 {
			t.Errorf("reader connections reached server_ids %v, want 2 and 3 (the replicas)", seen)
		}
		// A replica refuses the application's writes: it is fenced.
		_, err := appDB(t, s, s.Nodes()[1].Address()).ExecContext(ctx, "INSERT INTO writes (server_id) VALUES (@@server_id)")
		var me *mysql.MySQLError
		if !errors.As(err, &me) || me.Number != 1290 {
			t.Errorf("write to replica n2 as app: %v, want error 1290 (--read-only)", err)
		}
	})

	servers := func() map[string]string {
		ss, err := rt.Servers(ctx)
		if err != nil {
			return map[string]string{"error": err.Error()}
		}
		out := map[string]string{}
		for _, st := range ss {
			out[st.Backend+"/"+st.Server] = st.Status
		}
		return out
	}
	upIn := func(backend string) []string {
		var up []string
		for k, v := range servers() {
			if strings.HasPrefix(k, backend+"/") && (v == "UP" || strings.HasPrefix(v, "UP ")) {
				up = append(up, strings.TrimPrefix(k, backend+"/"))
			}
		}
		sort.Strings(up)
		return up
	}
	if got := fmt.Sprint(upIn("rhap-writer"), upIn("rhap-reader")); got != "[n1] [n2 n3]" {
		t.Errorf("UP servers: writer, reader %s, want [n1] [n2 n3]; all: %v", got, servers())
	}

	t.Run("runtime API maint and ready", func(t *testing.T) {
		if err := rt.SetState(ctx, "rhap-writer", "n1", haproxy.StateMaint); err != nil {
			t.Fatal(err)
		}
		if st := servers()["rhap-writer/n1"]; st != "MAINT" {
			t.Errorf("n1 after maint: %q", st)
		}
		writer.SetMaxIdleConns(0)
		if err := write(); err == nil {
			t.Errorf("a write through the writer with its only server in maint succeeded")
		}
		if err := rt.SetState(ctx, "rhap-writer", "n1", haproxy.StateReady); err != nil {
			t.Fatal(err)
		}
		eventually(t, 5*time.Second, "n1 UP again", func() (bool, string) {
			st := servers()["rhap-writer/n1"]
			return st == "UP", st
		})
		if err := write(); err != nil {
			t.Errorf("write after ready: %v", err)
		}
		var re *haproxy.RuntimeError
		if err := rt.SetState(ctx, "rhap-writer", "n9", haproxy.StateMaint); !errors.As(err, &re) {
			t.Errorf("unknown server: %v, want HAProxy's refusal", err)
		}
	})

	t.Run("status lists roles and haproxy", func(t *testing.T) {
		out, err := exec.CommandContext(ctx, ninesBin, "sandbox", "status", "--dir", dir, "--json").Output()
		if err != nil {
			t.Fatalf("nines sandbox status --json: %v", err)
		}
		var entries []map[string]any
		if err := json.Unmarshal(out, &entries); err != nil {
			t.Fatalf("%v: %s", err, out)
		}
		roles := map[string]any{}
		for _, e := range entries {
			roles[e["name"].(string)] = e["role"]
			if e["name"] == HAProxyName && (e["pid"] == float64(0) || e["writer"] != writerAddr || e["reader"] != readerAddr) {
				t.Errorf("haproxy entry: %v", e)
			}
		}
		if fmt.Sprint(roles) != "map[haproxy:<nil> n1:primary n2:replica n3:replica]" {
			t.Errorf("roles %v in\n%s", roles, out)
		}
	})

	scraper := exporter.NewHAProxyScraper(exporter.HAProxyTarget{Cluster: "rhap", Socket: s.HAProxySocket(),
		WriterBackend: "rhap-writer", ReaderBackend: "rhap-reader"}, time.Second, slog.New(slog.DiscardHandler))
	writerPool := func() string {
		for _, m := range exporter.HAProxyMetrics(scraper.Scrape(ctx)) {
			if m.Name == "nines_haproxy_backend_active_servers" && m.Labels[3].Value == "writer" {
				return fmt.Sprint(m.Value)
			}
		}
		return "missing"
	}
	if got := writerPool(); got != "1" {
		t.Errorf("nines_haproxy_backend_active_servers{pool=writer} = %s, want 1", got)
	}

	// kill -9 of the primary's server: nothing fails over, so the writer
	// pool must end empty, not on a replica.
	pid, err := s.Pid("n1")
	if err != nil || pid == 0 {
		t.Fatalf("n1's pid: %d %v", pid, err)
	}
	killAt := time.Now()
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "haproxy's writer pool empty", func() (bool, string) {
		up := upIn("rhap-writer")
		return len(up) == 0 && strings.HasPrefix(servers()["rhap-writer/n1"], "DOWN"), fmt.Sprint(servers())
	})
	t.Logf("measured: writer pool empty %v after kill -9 of the primary", time.Since(killAt).Round(time.Millisecond))
	if got := writerPool(); got != "0" {
		t.Errorf("after the kill: nines_haproxy_backend_active_servers{pool=writer} = %s, want 0", got)
	}
	for _, n := range []string{"n2", "n3"} {
		if st := servers()["rhap-writer/"+n]; !strings.HasPrefix(st, "DOWN") {
			t.Errorf("replica %s in the writer pool after the primary died: %s", n, st)
		}
	}
	writer.SetMaxIdleConns(0)
	if err := write(); err == nil {
		t.Errorf("a write through the writer succeeded with the primary dead")
	}

	// Back up, n1 is fenced: read_only ON, no role, still out of the pool.
	if err := s.StartNode(ctx, "n1"); err != nil {
		t.Fatalf("restart n1: %v", err)
	}
	st := statusByName(t, s)["n1"]
	if st.Role != "" || !strings.Contains(st.RoleWhy, "read_only ON") {
		t.Errorf("n1 restarted: role %q (%s), want none: fenced", st.Role, st.RoleWhy)
	}
	time.Sleep(1500 * time.Millisecond) // three writer checks
	if up := upIn("rhap-writer"); len(up) != 0 {
		t.Errorf("writer pool %v after the old primary came back read_only, want empty", up)
	}
}
