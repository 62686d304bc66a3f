//go:build cluster

package agent_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nines-project/nines/agent"
	"github.com/nines-project/nines/galera"
	"github.com/nines-project/nines/internal/mariadbd"
)

const token = "fedcba9876543210fedcba9876543210"

// node is a one-node Galera server laid out for an agent, installed but
// not started. Its ports start at 27306 (SQL), 27406 (gcomm), 27407 (IST)
// and 27408 (SST), clear of the sandbox tests' base ports.
type node struct {
	dir string
	srv *mariadbd.Server
}

func newNode(t *testing.T) node {
	t.Helper()
	return newNodeAt(t, 27306)
}

// newNodeAt is newNode with its ports at base (SQL), base+100 (gcomm),
// base+101 (IST) and base+102 (SST).
func newNodeAt(t *testing.T, base int) node {
	t.Helper()
	// Under /tmp with mode 0755: user mysql, which the server runs as
	// when the test runs as root, must reach the datadir.
	dir, err := os.MkdirTemp("/tmp", "nines-agent-test-")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if !t.Failed() {
			os.RemoveAll(dir)
		} else {
			t.Logf("node directory kept for inspection: %s", dir)
		}
	})
	srv := &mariadbd.Server{
		Name:         "a1",
		DefaultsFile: filepath.Join(dir, "my.cnf"),
		Dir:          dir,
		DataDir:      filepath.Join(dir, "data"),
		Socket:       filepath.Join(dir, "mysqld.sock"),
		PidFile:      filepath.Join(dir, "mysqld.pid"),
		ErrorLog:     filepath.Join(dir, "error.log"),
	}
	userLine := ""
	if os.Geteuid() == 0 {
		userLine = "user=mysql\n"
	}
	cnf := fmt.Sprintf(`[mysqld]
%sdatadir=%s
tmpdir=%s/tmp
socket=%s
pid-file=%s
log-error=%s
port=%d
bind-address=127.0.0.1
skip-name-resolve
performance_schema=OFF
innodb_buffer_pool_size=32M
innodb_log_file_size=16M
innodb_flush_log_at_trx_commit=2
binlog_format=ROW
innodb_autoinc_lock_mode=2
log_bin=%s/binlog
wsrep_on=ON
wsrep_provider=/usr/lib/galera/libgalera_smm.so
wsrep_cluster_name=agenttest
wsrep_cluster_address=gcomm://127.0.0.1:%d
wsrep_node_name=a1
wsrep_node_address=127.0.0.1
wsrep_provider_options="base_port=%d;gmcast.listen_addr=tcp://127.0.0.1:%d;ist.recv_addr=127.0.0.1:%d;gcache.size=8M"
wsrep_sst_method=rsync
wsrep_sst_receive_address=127.0.0.1:%d
[client]
socket=%s
user=%s
`, userLine, srv.DataDir, dir, srv.Socket, srv.PidFile, srv.ErrorLog, base, srv.DataDir,
		base+100, base+100, base+100, base+101, base+102, srv.Socket, mariadbd.SocketUser())
	for _, d := range []string{srv.DataDir, filepath.Join(dir, "tmp")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(srv.DefaultsFile, []byte(cnf), 0o644); err != nil {
		t.Fatal(err)
	}
	if os.Geteuid() == 0 {
		chownTo(t, dir, "mysql")
	}
	// A server left over by a failed run would hold the ports.
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := srv.Stop(ctx, 30*time.Second); err != nil {
			t.Errorf("stop server in cleanup: %v", err)
		}
	})
	start := time.Now()
	if err := srv.Install(t.Context()); err != nil {
		t.Fatalf("install (the tests need mariadb-server and galera-4): %v", err)
	}
	t.Logf("TIMING install: %v", time.Since(start).Round(time.Millisecond))
	return node{dir: dir, srv: srv}
}

func chownTo(t *testing.T, root, name string) {
	t.Helper()
	u, err := user.Lookup(name)
	if err != nil {
		t.Fatalf("look up user %s (install mariadb-server): %v", name, err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	err = filepath.WalkDir(root, func(p string, _ os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, uid, gid)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// runAgent runs the agent for n through agent.Run, as `nines agent`
// does, on a free port, and returns a client for it. Backups may go to
// backupDirs (the default when none).
func runAgent(t *testing.T, n node, backupDirs ...string) *agent.Client {
	t.Helper()
	tokenFile := filepath.Join(t.TempDir(), "agent-token")
	if err := os.WriteFile(tokenFile, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfgPath := filepath.Join(t.TempDir(), "agent.yaml")
	body := fmt.Sprintf("name: a1\nlisten: 127.0.0.1:0\ntoken_file: %s\nserver:\n  process:\n    defaults_file: %s\n    dir: %s\n",
		tokenFile, n.srv.DefaultsFile, n.dir)
	if len(backupDirs) > 0 {
		body += "backup_dirs: [" + strings.Join(backupDirs, ", ") + "]\n"
	}
	if err := os.WriteFile(cfgPath, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := agent.Load(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	if l := cfg.Local(); l.Socket != n.srv.Socket || l.PidFile != n.srv.PidFile || l.ErrorLog != n.srv.ErrorLog || l.DataDir != n.srv.DataDir {
		t.Fatalf("paths read from my.cnf: %+v", l)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	done := make(chan error, 1)
	log := slog.New(slog.NewTextHandler(t.Output(), nil))
	go func() {
		done <- agent.Run(ctx, cfg, agent.Options{Logger: log, Ready: func(addr string) { ready <- addr }})
	}()
	var addr string
	select {
	case addr = <-ready:
	case err := <-done:
		t.Fatalf("agent: %v", err)
	}
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("agent shutdown: %v", err)
		}
	})
	return agent.NewClient("http://"+addr, token, nil)
}

func timed[T any](t *testing.T, what string, f func() (T, error)) T {
	t.Helper()
	start := time.Now()
	v, err := f()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	t.Logf("TIMING %s: %v", what, time.Since(start).Round(time.Millisecond))
	return v
}

func wantConflict(t *testing.T, what string, err error, msg string) {
	t.Helper()
	if !agent.IsConflict(err) || !strings.Contains(err.Error(), msg) {
		t.Errorf("%s: %v, want 409 saying %q", what, err, msg)
	}
}

// TestAgentControlsRealServer drives one real Galera node through its
// agent's whole API: recover, bootstrap, refusals in the wrong state,
// graceful stop, the bootstrap-fields edit after a crash, kill, and
// that a crashed server stays down.
func TestAgentControlsRealServer(t *testing.T) {
	n := newNode(t)
	c := runAgent(t, n)
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()

	st := timed(t, "status of a stopped node", func() (agent.Status, error) { return c.Status(ctx) })
	if st.Running || st.Pid != 0 || st.FreeBytes == 0 || st.DataDir != n.srv.DataDir || st.Wsrep != nil {
		t.Fatalf("stopped node: %+v", st)
	}
	fresh := timed(t, "recover a fresh node", func() (agent.RecoverResult, error) { return c.Recover(ctx) })
	if fresh.UUID != galera.UndefinedUUID || fresh.Seqno != -1 {
		t.Fatalf("fresh node recovered %+v", fresh)
	}

	started := timed(t, "bootstrap through the agent (recover + start + Synced)", func() (agent.StartResult, error) {
		return c.Start(ctx, agent.StartRequest{NewCluster: true, Wait: agent.WaitSynced, TimeoutSeconds: 60})
	})
	if started.Pid == 0 || started.State != "Synced" || started.Position != fresh.Text {
		t.Fatalf("start: %+v", started)
	}
	st, err := c.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !st.Running || st.Pid != started.Pid || !st.Supervised || st.Wsrep == nil || !st.Wsrep.Synced() ||
		st.Wsrep.ClusterSize != 1 || !st.Wsrep.Primary() || st.Grastate == nil || st.Grastate.Seqno != -1 {
		t.Fatalf("running node: %+v wsrep %+v", st, st.Wsrep)
	}
	uuid := st.Wsrep.ClusterStateUUID
	info, err := c.ServerInfo(ctx)
	if err != nil || info.Pid != started.Pid || !strings.Contains(info.Version, "MariaDB") || info.UptimeSeconds < 0 ||
		info.StateTransfer != "" || info.StartPosition != fresh.Text {
		// A bootstrap receives no state: no IST, no SST.
		t.Fatalf("server info of the bootstrapped node: %+v, %v", info, err)
	}

	// Refusals: nothing is done, and the caller learns why.
	_, err = c.Start(ctx, agent.StartRequest{})
	wantConflict(t, "start while running", err, "running")
	_, err = c.Recover(ctx)
	wantConflict(t, "recover while running", err, "running")
	_, err = c.SetBootstrapFields(ctx, agent.BootstrapFieldsRequest{UUID: uuid, Seqno: 1})
	wantConflict(t, "bootstrap-fields while running", err, "running")
	_, err = c.PCBootstrap(ctx)
	wantConflict(t, "pc-bootstrap on a Primary node", err, "Primary component")

	db, err := n.srv.DB()
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, q := range []string{"CREATE DATABASE app", "CREATE TABLE app.t (id INT PRIMARY KEY)", "INSERT INTO app.t VALUES (1), (2)", "INSERT INTO app.t VALUES (3)"} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	st, err = c.Status(ctx)
	if err != nil || st.Wsrep == nil || st.Wsrep.LastCommitted < 4 {
		t.Fatalf("after 4 writes: %+v, %v", st.Wsrep, err)
	}
	committed := st.Wsrep.LastCommitted

	stopped := timed(t, "graceful stop", func() (agent.StopResult, error) { return c.Stop(ctx, agent.StopRequest{}) })
	if !stopped.WasRunning || stopped.Killed || stopped.Pid != started.Pid {
		t.Fatalf("stop: %+v", stopped)
	}
	g, err := c.Grastate(ctx)
	if err != nil || g.UUID != uuid || g.Seqno != committed || !g.SafeToBootstrap {
		t.Fatalf("grastate after a graceful stop: %+v, %v (want %s:%d, safe)", g, err, uuid, committed)
	}
	pos, err := c.Recover(ctx)
	if err != nil || pos.UUID != uuid || pos.Seqno != committed {
		t.Fatalf("recover after a graceful stop: %+v, %v", pos, err)
	}
	_, err = c.ServerInfo(ctx)
	wantConflict(t, "server info of a stopped server", err, "not running")
	st, err = c.Status(ctx)
	if err != nil || st.Running || st.LastExit == nil || !st.LastExit.Requested || st.LastExit.Pid != started.Pid {
		t.Fatalf("status after the stop: %+v, %v", st, err)
	}

	restarted := timed(t, "restart of a stopped node (= start) as a new cluster", func() (agent.RestartResult, error) {
		return c.Restart(ctx, agent.RestartRequest{StartRequest: agent.StartRequest{NewCluster: true, Wait: agent.WaitSynced}})
	})
	if restarted.Stop.WasRunning || restarted.Start.State != "Synced" {
		t.Fatalf("restart: %+v", restarted)
	}
	restarted = timed(t, "restart of a running node", func() (agent.RestartResult, error) {
		return c.Restart(ctx, agent.RestartRequest{StartRequest: agent.StartRequest{NewCluster: true, Wait: agent.WaitSynced}})
	})
	if !restarted.Stop.WasRunning || restarted.Stop.Killed || restarted.Start.Pid == restarted.Stop.Pid {
		t.Fatalf("restart: %+v", restarted)
	}

	// A crash from outside: the agent sees it and does not restart.
	pid := restarted.Start.Pid
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	crashed := time.Now()
	for {
		st, err = c.Status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if st.LastExit != nil && st.LastExit.Pid == pid {
			break
		}
		if time.Since(crashed) > 10*time.Second {
			t.Fatalf("kill -9 not noticed: %+v", st)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if st.LastExit.Requested || st.LastExit.Status != "signal: killed" {
		t.Fatalf("last exit after kill -9: %+v", st.LastExit)
	}
	time.Sleep(3 * time.Second)
	if st, err = c.Status(ctx); err != nil || st.Running {
		t.Fatalf("3 s after kill -9 the node runs again (nobody asked): %+v, %v", st, err)
	}
	g, err = c.Grastate(ctx)
	if err != nil || g.UUID != uuid || g.Seqno != -1 {
		t.Fatalf("grastate after kill -9: %+v, %v", g, err)
	}
	// A lone node keeps safe_to_bootstrap; a member of a larger cluster
	// loses it, which is the state a whole-cluster crash leaves behind.
	b, err := os.ReadFile(n.srv.GrastatePath())
	if err != nil {
		t.Fatal(err)
	}
	b = []byte(strings.Replace(string(b), "safe_to_bootstrap: 1", "safe_to_bootstrap: 0", 1))
	if err := os.WriteFile(n.srv.GrastatePath(), b, 0o660); err != nil {
		t.Fatal(err)
	}

	// Bootstrapping a crashed node without the edit: Galera refuses, and
	// the agent says why with the error log.
	_, err = c.Start(ctx, agent.StartRequest{NewCluster: true, Wait: agent.WaitSynced, TimeoutSeconds: 60})
	var ae *agent.Error
	if !errors.As(err, &ae) || ae.Status != 500 || !strings.Contains(ae.Message, "safe_to_bootstrap") {
		t.Fatalf("bootstrap without the edit: %v", err)
	}

	pos, err = c.Recover(ctx)
	if err != nil || pos.UUID != uuid || pos.Seqno < committed {
		t.Fatalf("recover after kill -9: %+v, %v", pos, err)
	}
	_, err = c.SetBootstrapFields(ctx, agent.BootstrapFieldsRequest{UUID: "00000000-0000-0000-0000-000000000001", Seqno: pos.Seqno})
	wantConflict(t, "bootstrap-fields of another history", err, "grastate.dat holds cluster "+uuid)
	edited := timed(t, "bootstrap-fields", func() (agent.BootstrapFieldsResult, error) {
		return c.SetBootstrapFields(ctx, agent.BootstrapFieldsRequest{UUID: pos.UUID, Seqno: pos.Seqno})
	})
	if edited.Grastate.UUID != uuid || edited.Grastate.Seqno != pos.Seqno || !edited.Grastate.SafeToBootstrap || edited.Backup != "" {
		t.Fatalf("bootstrap-fields: %+v", edited)
	}
	_, err = c.SetBootstrapFields(ctx, agent.BootstrapFieldsRequest{UUID: pos.UUID, Seqno: pos.Seqno - 1})
	wantConflict(t, "bootstrap-fields lowering the seqno", err, "above the requested")

	started = timed(t, "bootstrap after the edit", func() (agent.StartResult, error) {
		return c.Start(ctx, agent.StartRequest{NewCluster: true, Wait: agent.WaitSynced})
	})
	if st, err = c.Status(ctx); err != nil || st.Wsrep == nil || st.Wsrep.ClusterStateUUID != uuid || st.Wsrep.LastCommitted < committed {
		t.Fatalf("after bootstrapping at the recovered position: %+v, %v (want the history %s kept)", st.Wsrep, err, uuid)
	}
	var rows int
	if err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM app.t").Scan(&rows); err != nil || rows != 3 {
		t.Fatalf("rows after the recovery: %d, %v", rows, err)
	}

	killed := timed(t, "kill through the agent", func() (agent.StopResult, error) {
		return c.Stop(ctx, agent.StopRequest{Graceful: new(false)})
	})
	if !killed.Killed || killed.Pid != started.Pid {
		t.Fatalf("kill: %+v", killed)
	}

	m, err := c.Metrics(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range []string{
		"nines_agent_server_running 0",
		`nines_agent_actions_total{action="start",result="ok"} 2`,
		`nines_agent_actions_total{action="start",result="refused"} 1`,
		`nines_agent_actions_total{action="start",result="error"} 1`,
		`nines_agent_actions_total{action="pc-bootstrap",result="refused"} 1`,
		`nines_agent_actions_total{action="restart",result="ok"} 2`,
	} {
		if !strings.Contains(m, "\n"+line+"\n") {
			t.Errorf("metrics lack %q", line)
		}
	}
}
