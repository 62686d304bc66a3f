package agent

import (
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nines-project/nines/internal/yamlfile"
)

// fakeDataNode stands in for ndbmtd: a real process that writes its pid
// file, logs its arguments and runs until SIGTERM (or ignores it).
const fakeDataNode = `echo "args: $*"
echo $$ > "$1"
trap 'kill $! 2>/dev/null; exit 0' TERM
while :; do sleep 1 & wait $!; done
`

// stubbornDataNode ignores SIGTERM, as a hung node would.
const stubbornDataNode = `echo $$ > "$1"
trap '' TERM
while :; do sleep 1; done
`

// ndbAgentConfig writes agent.yaml for a data node running script and
// returns the config and its directory.
func ndbAgentConfig(t *testing.T, script string) (*Config, string) {
	t.Helper()
	dir := writeAgentFiles(t, "")
	if err := os.WriteFile(filepath.Join(dir, "node.sh"), []byte(script), 0o700); err != nil {
		t.Fatal(err)
	}
	body := `name: ndb3
token_file: agent-token
server:
  ndb_data_node:
    node_id: 3
    command: [sh, ` + filepath.Join(dir, "node.sh") + `, ` + filepath.Join(dir, "srv", "ndb_3.pid") + `, --ndb-nodeid=3]
    pid_file: srv/ndb_3.pid
    log: srv/ndbd-3.out
`
	cfg, err := Load(writeAgentConfig(t, dir, body))
	if err != nil {
		t.Fatal(err)
	}
	return cfg, dir
}

// serveNdb runs an agent for a data node and kills whatever process it
// left behind at the end, by pid.
func serveNdb(t *testing.T, script string) (*Agent, *Client, string, string) {
	t.Helper()
	cfg, dir := ndbAgentConfig(t, script)
	a, c, base := serve(t, cfg, Options{})
	t.Cleanup(func() {
		if pid, _ := a.ndb.pid(); pid != 0 {
			_ = syscall.Kill(-pid, syscall.SIGKILL)
		}
	})
	return a, c, base, dir
}

func TestNdbDataNodeStartStatusStop(t *testing.T) {
	_, c, _, dir := serveNdb(t, fakeDataNode)
	ctx := context.Background()
	logPath := filepath.Join(dir, "srv", "ndbd-3.out")

	st, err := c.Status(ctx)
	if err != nil || st.Running || st.Kind != KindNdbDataNode || st.NdbNodeID != 3 {
		t.Fatalf("status before start: %+v, %v", st, err)
	}
	res, err := c.Start(ctx, StartRequest{})
	if err != nil || res.Pid == 0 || res.AlreadyRunning || res.Initial || res.State != "running" {
		t.Fatalf("start: %+v, %v", res, err)
	}
	pidFile, _ := os.ReadFile(filepath.Join(dir, "srv", "ndb_3.pid"))
	if strings.TrimSpace(string(pidFile)) != strconv.Itoa(res.Pid) {
		t.Errorf("start answered pid %d, the pid file says %q", res.Pid, pidFile)
	}
	st, err = c.Status(ctx)
	if err != nil || !st.Running || st.Pid != res.Pid || !st.Supervised {
		t.Fatalf("status after start: %+v, %v", st, err)
	}
	if log := waitLog(t, logPath, "args:"); strings.Contains(log, "--initial") {
		t.Errorf("a plain start passed --initial:\n%s", log)
	}

	again, err := c.Start(ctx, StartRequest{})
	if err != nil || !again.AlreadyRunning || again.Pid != res.Pid || again.State != "already running" {
		t.Errorf("second start: %+v, %v; want already running pid %d", again, err, res.Pid)
	}
	if _, err := c.Start(ctx, StartRequest{Initial: true}); !IsConflict(err) {
		t.Errorf("initial start of a running node: %v, want 409", err)
	}

	stop, err := c.Stop(ctx, StopRequest{})
	if err != nil || !stop.WasRunning || stop.Pid != res.Pid || stop.Killed {
		t.Fatalf("stop: %+v, %v", stop, err)
	}
	st, err = c.Status(ctx)
	if err != nil || st.Running || st.Pid != 0 {
		t.Fatalf("status after stop: %+v, %v", st, err)
	}
	if st := waitExit(t, c, res.Pid); !st.LastExit.Requested {
		t.Errorf("requested stop recorded as %+v", st.LastExit)
	}
	if stop, err := c.Stop(ctx, StopRequest{}); err != nil || stop.WasRunning {
		t.Errorf("stop of a stopped node: %+v, %v", stop, err)
	}

	// initial only when asked, and then appended.
	res, err = c.Start(ctx, StartRequest{Initial: true})
	if err != nil || !res.Initial {
		t.Fatalf("initial start: %+v, %v", res, err)
	}
	if log := waitLog(t, logPath, "--ndb-nodeid=3 --initial"); strings.Count(log, "--initial") != 2 { // the agent's header and the script's echo
		t.Errorf("log after an initial start:\n%s", log)
	}

	// kill -9 from outside: the status says so, and how it ended.
	if err := syscall.Kill(-res.Pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	st = waitExit(t, c, res.Pid)
	if st.Running || st.Pid != 0 || st.LastExit.Requested || !strings.Contains(st.LastExit.Status, "killed") {
		t.Errorf("status after kill -9: %+v (last exit %+v)", st, st.LastExit)
	}
	// The stale pid file names no process now: a start starts anew.
	res2, err := c.Start(ctx, StartRequest{})
	if err != nil || res2.AlreadyRunning || res2.Pid == res.Pid {
		t.Errorf("start after kill -9: %+v, %v", res2, err)
	}
}

func TestNdbDataNodeStopKillsAfterGrace(t *testing.T) {
	_, c, _, _ := serveNdb(t, stubbornDataNode)
	ctx := context.Background()
	res, err := c.Start(ctx, StartRequest{})
	if err != nil {
		t.Fatal(err)
	}
	stop, err := c.Stop(ctx, StopRequest{GraceSeconds: 1})
	if err != nil || !stop.Killed || stop.Pid != res.Pid {
		t.Fatalf("stop of a node ignoring SIGTERM: %+v, %v", stop, err)
	}
	if stop.TookMs < 1000 {
		t.Errorf("SIGKILL after %d ms, before the 1 s grace", stop.TookMs)
	}
	if st, _ := c.Status(ctx); st.Running {
		t.Errorf("still running after SIGKILL: %+v", st)
	}
}

func TestNdbDataNodeStartFailsWhenProcessExits(t *testing.T) {
	_, c, _, _ := serveNdb(t, "echo 'cannot connect to mgm1:1186' >&2\nexit 3\n")
	_, err := c.Start(context.Background(), StartRequest{})
	if err == nil || !strings.Contains(err.Error(), "exit status 3") || !strings.Contains(err.Error(), "cannot connect to mgm1:1186") {
		t.Errorf("start of a node that exits: %v", err)
	}
}

func TestNdbAgentRefusesMariaDBEndpoints(t *testing.T) {
	_, c, base, _ := serveNdb(t, fakeDataNode)
	for _, tt := range []struct{ method, path string }{
		{"GET", "/v1/grastate"},
		{"GET", "/v1/peers"},
		{"GET", "/v1/health/writer"},
		{"POST", "/v1/recover"},
		{"POST", "/v1/restart"},
		{"POST", "/v1/bootstrap-fields"},
		{"POST", "/v1/pc-bootstrap"},
		{"GET", "/v1/replication"},
		{"POST", "/v1/replication/promote"},
		{"POST", "/v1/backups"},
		{"POST", "/v1/backups/1/verify"},
	} {
		if code, _ := call(t, tt.method, base+tt.path, "", ""); code != http.StatusUnauthorized {
			t.Errorf("%s %s without a token: %d, want 401", tt.method, tt.path, code)
		}
		code, body := call(t, tt.method, base+tt.path, "Bearer "+testToken, "")
		if code != http.StatusConflict || !strings.Contains(body, "this agent runs an ndb data node (node 3)") {
			t.Errorf("%s %s: %d %s, want 409 naming the ndb data node", tt.method, tt.path, code, body)
		}
	}
	for _, path := range []string{"/v1/status", "/v1/start", "/v1/stop"} {
		method := "POST"
		if path == "/v1/status" {
			method = "GET"
		}
		if code, _ := call(t, method, base+path, "", ""); code != http.StatusUnauthorized {
			t.Errorf("%s without a token: %d, want 401", path, code)
		}
	}
	for _, req := range []StartRequest{{Wait: WaitReady}, {Position: "9130690e-e921-11f1-b504-f6cb6679f2e6:1"}, {NewCluster: true}} {
		if _, err := c.Start(context.Background(), req); !hasStatus(err, http.StatusBadRequest) {
			t.Errorf("start %+v: %v, want 400", req, err)
		}
	}
	if st, _ := c.Status(context.Background()); st.Running {
		t.Errorf("a refused start started the node: %+v", st)
	}
}

func TestMariaDBAgentRefusesInitial(t *testing.T) {
	_, c, _ := serveStopped(t, "")
	if _, err := c.Start(context.Background(), StartRequest{Initial: true}); !hasStatus(err, http.StatusBadRequest) {
		t.Errorf("initial start of a MariaDB server: %v, want 400", err)
	}
}

func TestLoadNdbAgentConfigRejects(t *testing.T) {
	dir := writeAgentFiles(t, "")
	const good = `token_file: agent-token
server:
  ndb_data_node:
    node_id: 3
    command: [sh, -c, "sleep 1", --ndb-nodeid=3]
    pid_file: srv/ndb_3.pid
    log: srv/ndbd-3.out
`
	cfg, err := Load(writeAgentConfig(t, dir, good))
	if err != nil {
		t.Fatalf("good config: %v", err)
	}
	n := cfg.Server.NdbDataNode
	if n.InitialArg != "--initial" || n.PidFile != filepath.Join(dir, "srv", "ndb_3.pid") || n.Dir != filepath.Join(dir, "srv") || !filepath.IsAbs(n.Command[0]) {
		t.Errorf("resolved: %+v", n)
	}
	for _, tt := range []struct {
		name, old, new, field, msg string
	}{
		{"node id", "node_id: 3", "node_id: 145", "server.ndb_data_node.node_id", "want a data node id from 1 to 144"},
		{"no command", `    command: [sh, -c, "sleep 1", --ndb-nodeid=3]` + "\n", "", "server.ndb_data_node.command", "required"},
		{"no program", "command: [sh,", "command: [nonexistent-ndbmtd,", "server.ndb_data_node.command", `program "nonexistent-ndbmtd"`},
		{"initial in command", "--ndb-nodeid=3]", "--ndb-nodeid=3, --initial]", "server.ndb_data_node.command[4]", "must start the node normally"},
		{"no pid file", "    pid_file: srv/ndb_3.pid\n", "", "server.ndb_data_node.pid_file", "required"},
		{"log dir", "log: srv/ndbd-3.out", "log: nodir/ndbd-3.out", "server.ndb_data_node.log", "its directory does not exist"},
		{"unit and command", "node_id: 3", "node_id: 3\n    unit: ndbmtd@3.service", "server.ndb_data_node.unit", "either unit or command"},
		{"with process", "server:\n", "server:\n  process: {defaults_file: my.cnf, dir: srv}\n", "server", "ndb_data_node excludes process"},
	} {
		_, err := Load(writeAgentConfig(t, dir, strings.Replace(good, tt.old, tt.new, 1)))
		var errs *yamlfile.Errors
		if !errors.As(err, &errs) {
			t.Errorf("%s: %v, want *yamlfile.Errors", tt.name, err)
			continue
		}
		if !strings.Contains(err.Error(), tt.field+": ") || !strings.Contains(err.Error(), tt.msg) {
			t.Errorf("%s: %v\nwant field %s and %q", tt.name, err, tt.field, tt.msg)
		}
	}
}

// waitLog waits until the node's log holds want and returns it.
func waitLog(t *testing.T, path, want string) string {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		b, _ := os.ReadFile(path)
		if strings.Contains(string(b), want) {
			return string(b)
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never held %q:\n%s", path, want, b)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitExit waits until the agent recorded pid's exit.
func waitExit(t *testing.T, c *Client, pid int) Status {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		st, err := c.Status(context.Background())
		if err == nil && st.LastExit != nil && st.LastExit.Pid == pid && !st.Running {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("exit of pid %d never recorded: %+v, %v", pid, st, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestNdbDataNodeSystemdUnit drives a fake systemctl that records its
// calls: initial reaches the unit only through NINES_NDB_INITIAL, set for
// that one start and unset after it.
func TestNdbDataNodeSystemdUnit(t *testing.T) {
	dir := writeAgentFiles(t, "")
	calls, pidFile := filepath.Join(dir, "calls"), filepath.Join(dir, "mainpid")
	script := "#!/bin/sh\necho \"$@\" >> " + calls + "\ncase \"$1\" in\n" +
		"show) cat " + pidFile + " ;;\n" +
		"start) echo 4243 > " + pidFile + " ;;\n" +
		"stop|kill) echo 0 > " + pidFile + " ;;\n" +
		"esac\n"
	systemctl := filepath.Join(dir, "systemctl")
	if err := os.WriteFile(systemctl, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(pidFile, []byte("0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := Load(writeAgentConfig(t, dir, "token_file: agent-token\nserver:\n  ndb_data_node: {node_id: 3, unit: ndbmtd@3.service}\n"))
	if err != nil {
		t.Fatal(err)
	}
	_, c, _ := serve(t, cfg, Options{Systemctl: systemctl})
	ctx := context.Background()
	if res, err := c.Start(ctx, StartRequest{}); err != nil || res.Pid != 4243 || res.Initial {
		t.Fatalf("start: %+v, %v", res, err)
	}
	if st, err := c.Status(ctx); err != nil || !st.Running || st.Pid != 4243 || st.Mode != ModeSystemd || st.Kind != KindNdbDataNode {
		t.Fatalf("status: %+v, %v", st, err)
	}
	if res, err := c.Start(ctx, StartRequest{}); err != nil || !res.AlreadyRunning {
		t.Errorf("second start: %+v, %v", res, err)
	}
	if res, err := c.Stop(ctx, StopRequest{}); err != nil || !res.WasRunning || res.Pid != 4243 {
		t.Fatalf("stop: %+v, %v", res, err)
	}
	if res, err := c.Start(ctx, StartRequest{Initial: true}); err != nil || !res.Initial {
		t.Fatalf("initial start: %+v, %v", res, err)
	}
	b, err := os.ReadFile(calls)
	if err != nil {
		t.Fatal(err)
	}
	var acts []string
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		if !strings.HasPrefix(l, "show ") {
			acts = append(acts, l)
		}
	}
	want := []string{
		"start ndbmtd@3.service",
		"stop ndbmtd@3.service",
		"set-environment NINES_NDB_INITIAL=--initial",
		"start ndbmtd@3.service",
		"unset-environment NINES_NDB_INITIAL",
	}
	if strings.Join(acts, "\n") != strings.Join(want, "\n") {
		t.Errorf("systemctl calls:\n%s\nwant:\n%s", strings.Join(acts, "\n"), strings.Join(want, "\n"))
	}
}

func TestLoadNdbMgmdAgentConfig(t *testing.T) {
	dir := writeAgentFiles(t, "")
	const good = `token_file: agent-token
server:
  ndb_mgmd:
    node_id: 50
    command: [sh, -c, "sleep 1", --ndb-nodeid=50]
    pid_file: srv/ndb_50.pid
    log: srv/mgmd.out
`
	cfg, err := Load(writeAgentConfig(t, dir, good))
	if err != nil {
		t.Fatalf("good config: %v", err)
	}
	if !cfg.IsNDB() || cfg.Server.NdbMgmd == nil || cfg.Server.NdbMgmd.Dir != filepath.Join(dir, "srv") {
		t.Errorf("resolved: %+v", cfg.Server)
	}
	for _, tt := range []struct {
		name, old, new, field, msg string
	}{
		{"node id", "node_id: 50", "node_id: 256", "server.ndb_mgmd.node_id", "want a node id from 1 to 255"},
		{"backup dir", "log: srv/mgmd.out", "log: srv/mgmd.out\n    backup_data_dir: srv", "server.ndb_mgmd.backup_data_dir", "holds no backup files"},
		{"with data node", "server:\n", "server:\n  ndb_data_node: {node_id: 1, command: [sh], pid_file: srv/x.pid, log: srv/x.out}\n", "server", "ndb_mgmd excludes"},
	} {
		_, err := Load(writeAgentConfig(t, dir, strings.Replace(good, tt.old, tt.new, 1)))
		if err == nil || !strings.Contains(err.Error(), tt.field+": ") || !strings.Contains(err.Error(), tt.msg) {
			t.Errorf("%s: %v\nwant field %s and %q", tt.name, err, tt.field, tt.msg)
		}
	}
}
