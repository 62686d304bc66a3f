package agent

import (
	"github.com/nines-project/nines/galera"
	"net"

	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// serveStopped runs an agent for a server that is not running (and not
// even installed): enough for everything the agent decides before it
// touches the server.
func serveStopped(t *testing.T, yamlExtra string) (*Agent, *Client, string) {
	t.Helper()
	dir := writeAgentFiles(t, "datadir="+t.TempDir()+"\nsocket=/nonexistent/mysqld.sock\npid-file=/nonexistent/mysqld.pid\n")
	cfg, err := Load(writeAgentConfig(t, dir, goodAgent+yamlExtra))
	if err != nil {
		t.Fatal(err)
	}
	return serve(t, cfg, Options{})
}

func serve(t *testing.T, cfg *Config, opts Options) (*Agent, *Client, string) {
	t.Helper()
	opts.Logger = slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
	a, err := New(cfg, opts)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(a.Handler())
	t.Cleanup(hs.Close)
	return a, NewClient(hs.URL, testToken, nil), hs.URL
}

func call(t *testing.T, method, url, token, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestAuthentication(t *testing.T) {
	_, _, base := serveStopped(t, "")
	for _, tt := range []struct {
		method, path, auth string
		want               int
	}{
		{"GET", "/healthz", "", http.StatusOK},
		{"GET", "/v1/status", "", http.StatusUnauthorized},
		{"GET", "/v1/status", "Bearer wrong-token-of-some-length", http.StatusUnauthorized},
		{"GET", "/v1/status", "Basic " + testToken, http.StatusUnauthorized},
		{"GET", "/v1/status", "Bearer " + testToken + "x", http.StatusUnauthorized},
		{"POST", "/v1/start", "", http.StatusUnauthorized},
		{"POST", "/v1/pc-bootstrap", "", http.StatusUnauthorized},
		{"GET", "/metrics", "", http.StatusUnauthorized},
		{"GET", "/v1/nothing", "", http.StatusUnauthorized},
		{"GET", "/v1/status", "Bearer " + testToken, http.StatusOK},
		{"GET", "/metrics", "Bearer " + testToken, http.StatusOK},
		{"GET", "/v1/nothing", "Bearer " + testToken, http.StatusNotFound},
	} {
		code, body := call(t, tt.method, base+tt.path, tt.auth, "")
		if code != tt.want {
			t.Errorf("%s %s with %q: %d %s, want %d", tt.method, tt.path, tt.auth, code, body, tt.want)
		}
		if code == http.StatusUnauthorized && !strings.Contains(body, `"error":"a valid bearer token is required"`) {
			t.Errorf("401 body %s", body)
		}
	}
	c := NewClient(base, "wrong-token-of-some-length", nil)
	if _, err := c.Status(t.Context()); !IsUnauthorized(err) {
		t.Errorf("client with a wrong token: %v", err)
	}
	if err := c.Healthz(t.Context()); err != nil {
		t.Errorf("healthz: %v", err)
	}
}

func TestRequestsRefusedBeforeActing(t *testing.T) {
	_, c, base := serveStopped(t, "")
	auth := "Bearer " + testToken
	for _, tt := range []struct {
		path, body string
		want       int
		msg        string
	}{
		{"/v1/start", `{"wait":"soon"}`, 400, `wait \"soon\"`},
		{"/v1/start", `{"position":"nope"}`, 400, "malformed position"},
		{"/v1/start", `{"newcluster":true}`, 400, `unknown field \"newcluster\"`},
		{"/v1/start", `{"timeout_seconds":-1}`, 400, "timeout_seconds"},
		{"/v1/start", `{`, 400, "request body"},
		{"/v1/stop", `{"grace_seconds":-5}`, 400, "grace_seconds"},
		{"/v1/bootstrap-fields", `{"uuid":"x","seqno":5}`, 400, "malformed position"},
		{"/v1/bootstrap-fields", `{"uuid":"2d131d03-e921-11f1-93c0-7bfc10d240cf","seqno":-1}`, 400, "not a committed position"},
		{"/v1/pc-bootstrap", ``, 409, "not running"},
		{"/v1/stop", ``, 200, `"was_running":false`},
	} {
		code, body := call(t, "POST", base+tt.path, auth, tt.body)
		if code != tt.want || !strings.Contains(body, tt.msg) {
			t.Errorf("POST %s %s: %d %s, want %d with %q", tt.path, tt.body, code, body, tt.want, tt.msg)
		}
	}

	st, err := c.Status(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if st.Running || st.Pid != 0 || st.FreeBytes == 0 || st.TotalBytes < st.FreeBytes || st.Grastate != nil ||
		!strings.Contains(st.GrastateError, "no such file") || st.Mode != ModeProcess || !st.Galera {
		t.Errorf("status of a stopped, uninstalled server: %+v", st)
	}
	var e *Error
	if _, err := c.Grastate(t.Context()); !errors.As(err, &e) || e.Status != http.StatusNotFound || e.Op != "grastate" {
		t.Errorf("grastate of a server without one: %v", err)
	}

	m, err := c.Metrics(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range []string{
		"nines_agent_up 1",
		"nines_agent_server_running 0",
		`nines_agent_actions_total{action="start",result="refused"} 5`,
		`nines_agent_actions_total{action="pc-bootstrap",result="refused"} 1`,
		`nines_agent_actions_total{action="stop",result="ok"} 1`,
		`nines_agent_actions_total{action="recover",result="ok"} 0`,
		"nines_agent_datadir_free_bytes ",
	} {
		if !strings.Contains(m, "\n"+line) {
			t.Errorf("metrics lack %q", line)
		}
	}
}

func TestOneActionAtATime(t *testing.T) {
	a, c, _ := serveStopped(t, "")
	release, err := a.acquire("start")
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Stop(t.Context(), StopRequest{})
	if !IsConflict(err) || !strings.Contains(err.Error(), "start is in progress") {
		t.Fatalf("stop during a start: %v", err)
	}
	release()
	if _, err := c.Stop(t.Context(), StopRequest{}); err != nil {
		t.Fatalf("stop after the start: %v", err)
	}
}

// TestSystemdMode drives a fake systemctl that records its calls: the
// real one needs systemd as PID 1, which test machines and containers
// rarely have.
func TestSystemdMode(t *testing.T) {
	dir := writeAgentFiles(t, "datadir="+t.TempDir()+"\nsocket=/nonexistent/mysqld.sock\n")
	calls, pidFile := filepath.Join(dir, "calls"), filepath.Join(dir, "mainpid")
	script := "#!/bin/sh\necho \"$@\" >> " + calls + "\ncase \"$1\" in\n" +
		"show) cat " + pidFile + " ;;\n" +
		"start) echo 4242 > " + pidFile + " ;;\n" +
		"stop|kill) echo 0 > " + pidFile + " ;;\n" +
		"esac\n"
	systemctl := filepath.Join(dir, "systemctl")
	if err := os.WriteFile(systemctl, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(pidFile, []byte("0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	body := strings.Replace(goodAgent, "  process:\n    defaults_file: my.cnf", "  systemd:\n    unit: mariadb.service\n    defaults_file: my.cnf", 1)
	cfg, err := Load(writeAgentConfig(t, dir, body))
	if err != nil {
		t.Fatal(err)
	}
	a, c, _ := serve(t, cfg, Options{Systemctl: systemctl})
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()

	// The unit recovers its start position itself (galera_recovery): the
	// agent accepts the position the unit will recover, found by its own
	// --wsrep-recover (a stand-in here), and refuses another one before
	// it changes anything, grastate.dat included.
	const recovered, other = "2d131d03-e921-11f1-93c0-7bfc10d240cf:9,0-1-9", "2d131d03-e921-11f1-93c0-7bfc10d240cf:8"
	a.srv.Mariadbd = fakeRecover(t, dir, recovered)
	grastate := filepath.Join(a.cfg.Local().DataDir, "grastate.dat")
	crashed := "# GALERA saved state\nversion: 2.1\nuuid:    2d131d03-e921-11f1-93c0-7bfc10d240cf\nseqno:   -1\nsafe_to_bootstrap: 0\n"
	if err := os.WriteFile(grastate, []byte(crashed), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Start(ctx, StartRequest{Position: other, Wait: WaitNone}); !IsConflict(err) || !strings.Contains(err.Error(), recovered) {
		t.Fatalf("start at a position the unit would not recover: %v", err)
	}
	if _, err := c.SetBootstrapFields(ctx, BootstrapFieldsRequest{UUID: "2d131d03-e921-11f1-93c0-7bfc10d240cf", Seqno: 8}); !IsConflict(err) {
		t.Fatalf("bootstrap-fields at a position the unit would not recover: %v", err)
	}
	if b, _ := os.ReadFile(grastate); string(b) != crashed {
		t.Fatalf("grastate.dat edited by a refused bootstrap-fields:\n%s", b)
	}
	if _, err := c.SetBootstrapFields(ctx, BootstrapFieldsRequest{UUID: "2d131d03-e921-11f1-93c0-7bfc10d240cf", Seqno: 9}); err != nil {
		t.Fatalf("bootstrap-fields at the recovered position: %v", err)
	}
	res, err := c.Start(ctx, StartRequest{Position: recovered, NewCluster: true, Wait: WaitNone})
	if err != nil || res.Pid != 4242 || res.Position != recovered {
		t.Fatalf("start: %+v, %v", res, err)
	}
	st, err := c.Status(ctx)
	if err != nil || !st.Running || st.Pid != 4242 || st.Mode != ModeSystemd || st.WsrepError == "" {
		t.Fatalf("status: %+v, %v", st, err)
	}
	if _, err := c.Start(ctx, StartRequest{Wait: WaitNone}); !IsConflict(err) {
		t.Fatalf("second start: %v", err)
	}
	if res, err := c.Stop(ctx, StopRequest{}); err != nil || !res.WasRunning || res.Killed || res.Pid != 4242 {
		t.Fatalf("stop: %+v, %v", res, err)
	}
	if _, err := c.Start(ctx, StartRequest{Wait: WaitNone}); err != nil {
		t.Fatal(err)
	}
	if res, err := c.Stop(ctx, StopRequest{Graceful: new(false)}); err != nil || !res.Killed {
		t.Fatalf("kill: %+v, %v", res, err)
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
		"set-environment _WSREP_NEW_CLUSTER=--wsrep-new-cluster",
		"start mariadb.service",
		"unset-environment _WSREP_NEW_CLUSTER",
		"stop mariadb.service",
		"start mariadb.service",
		"kill --signal=SIGKILL --kill-whom=main mariadb.service",
	}
	if strings.Join(acts, "\n") != strings.Join(want, "\n") {
		t.Errorf("systemctl calls:\n%s\nwant:\n%s", strings.Join(acts, "\n"), strings.Join(want, "\n"))
	}
}

// fakeRecover writes a stand-in for mariadbd whose --wsrep-recover
// prints pos, as the real one does, into its --log-error file.
func fakeRecover(t *testing.T, dir, pos string) string {
	t.Helper()
	p := filepath.Join(dir, "fake-mariadbd")
	script := "#!/bin/sh\nfor a in \"$@\"; do case \"$a\" in --log-error=*) log=\"${a#--log-error=}\";; esac; done\n" +
		"echo \"0 [Note] WSREP: Recovered position: " + pos + "\" >> \"$log\"\n"
	if err := os.WriteFile(p, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestBootstrapFieldsForce edits grastate.dat of a stopped server; the
// refusals and the forced replacement need no running server.
func TestBootstrapFieldsForce(t *testing.T) {
	a, c, _ := serveStopped(t, "")
	const mine, other = "2d131d03-e921-11f1-93c0-7bfc10d240cf", "9130690e-e921-11f1-b504-f6cb6679f2e6"
	crashed := "# GALERA saved state\nversion: 2.1\nuuid:    " + other + "\nseqno:   -1\nsafe_to_bootstrap: 0\n"
	if err := os.WriteFile(a.srv.GrastatePath(), []byte(crashed), 0o660); err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	if _, err := c.SetBootstrapFields(ctx, BootstrapFieldsRequest{UUID: mine, Seqno: 22}); !IsConflict(err) {
		t.Fatalf("another history without force: %v", err)
	}
	res, err := c.SetBootstrapFields(ctx, BootstrapFieldsRequest{UUID: mine, Seqno: 22, Force: true})
	if err != nil {
		t.Fatal(err)
	}
	if res.Grastate != (galera.Grastate{UUID: mine, Seqno: 22, SafeToBootstrap: true, Version: "2.1"}) || res.Backup == "" {
		t.Fatalf("forced edit: %+v", res)
	}
	if b, err := os.ReadFile(res.Backup); err != nil || string(b) != crashed {
		t.Fatalf("backup %s: %q, %v", res.Backup, b, err)
	}
	if _, err := c.SetBootstrapFields(ctx, BootstrapFieldsRequest{UUID: mine, Seqno: 21}); !IsConflict(err) {
		t.Fatalf("lowering the seqno without force: %v", err)
	}
	res, err = c.SetBootstrapFields(ctx, BootstrapFieldsRequest{UUID: mine, Seqno: 21, Force: true})
	if err != nil || res.Grastate.Seqno != 21 || res.Backup != "" {
		t.Fatalf("forced lower seqno: %+v, %v", res, err)
	}
	if g, err := c.Grastate(ctx); err != nil || g.Seqno != 21 || g.UUID != mine {
		t.Fatalf("grastate: %+v, %v", g, err)
	}
	// After a failed bootstrap start: safe_to_bootstrap back to 0, the
	// position kept.
	res, err = c.SetBootstrapFields(ctx, BootstrapFieldsRequest{Clear: true})
	if err != nil || res.Grastate != (galera.Grastate{UUID: mine, Seqno: 21, Version: "2.1"}) {
		t.Fatalf("clear: %+v, %v", res, err)
	}
}

// TestStatusReadsGvwstate: the last Primary view a node saved reaches the
// remediator through /v1/status; a missing file is said, not an error.
func TestStatusReadsGvwstate(t *testing.T) {
	a, c, _ := serveStopped(t, "")
	st, err := c.Status(t.Context())
	if err != nil || st.Gvwstate != nil || !strings.Contains(st.GvwstateError, "no such file") {
		t.Fatalf("without gvwstate.dat: %+v, %v", st, err)
	}
	const view = "my_uuid: 9130690e-e921-11f1-b504-f6cb6679f2e6\n#vwbeg\nview_id: 3 9130690e-e921-11f1-b504-f6cb6679f2e6 5\nbootstrap: 0\n" +
		"member: 9130690e-e921-11f1-b504-f6cb6679f2e6 0\nmember: 2d131d03-e921-11f1-93c0-7bfc10d240cf 0\n#vwend\n"
	if err := os.WriteFile(a.srv.GvwstatePath(), []byte(view), 0o660); err != nil {
		t.Fatal(err)
	}
	st, err = c.Status(t.Context())
	if err != nil || st.Gvwstate == nil || st.Gvwstate.View.Seq != 5 || len(st.Gvwstate.Members) != 2 || st.GvwstateError != "" {
		t.Fatalf("with gvwstate.dat: %+v, %v", st.Gvwstate, err)
	}
}

// TestPeers: the agent dials every peer of wsrep_cluster_address in its
// option file and says which Galera ports it reaches.
func TestPeers(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	gone := refusingAddr(t)
	dir := writeAgentFiles(t, "datadir="+t.TempDir()+"\nsocket=/nonexistent/mysqld.sock\npid-file=/nonexistent/mysqld.pid\n"+
		"wsrep_cluster_address=gcomm://"+ln.Addr().String()+","+gone+"\n")
	cfg, err := Load(writeAgentConfig(t, dir, goodAgent))
	if err != nil {
		t.Fatal(err)
	}
	_, c, _ := serve(t, cfg, Options{})
	res, err := c.Peers(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Peers) != 2 || !res.Peers[0].Reachable || res.Peers[1].Reachable || res.Peers[1].Error == "" {
		t.Fatalf("peers: %+v", res)
	}
}

// refusingAddr is a loopback address that refuses connections for the
// whole test: a socket bound there but never listening holds the port,
// so no other test's listener can take it (a port merely closed again
// was reused at once once the ephemeral range was narrowed).
func refusingAddr(t *testing.T) string {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Close(fd) })
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(sa.(*syscall.SockaddrInet4).Port))
}

// TestOptionFileIncludes: the cluster address in a conf.d file, as Debian
// lays it out, is found.
func TestOptionFileIncludes(t *testing.T) {
	dir := t.TempDir()
	confd := filepath.Join(dir, "conf.d")
	if err := os.Mkdir(confd, 0o755); err != nil {
		t.Fatal(err)
	}
	files := map[string]string{
		filepath.Join(dir, "my.cnf"):          "[client]\nport=3306\n!includedir " + confd + "\n",
		filepath.Join(confd, "50-server.cnf"): "[mysqld]\ndatadir=/var/lib/mysql\n",
		filepath.Join(confd, "60-galera.cnf"): "[galera]\nwsrep_cluster_address=gcomm://db1,db2,db3\n",
	}
	for p, c := range files {
		if err := os.WriteFile(p, []byte(c), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	b, err := readOptionFiles(filepath.Join(dir, "my.cnf"), 0)
	if err != nil || galera.ClusterAddressOf(b) != "gcomm://db1,db2,db3" {
		t.Fatalf("%q %v", b, err)
	}
}

// TestRecoverTimeout: --wsrep-recover runs within server.recover_timeout
// and the error names the setting.
func TestRecoverTimeout(t *testing.T) {
	a, c, _ := serveStopped(t, "  recover_timeout: 300ms\n")
	slow := filepath.Join(t.TempDir(), "slow-mariadbd")
	if err := os.WriteFile(slow, []byte("#!/bin/sh\nexec sleep 30\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	a.srv.Mariadbd = slow
	start := time.Now()
	_, err := c.Recover(t.Context())
	if err == nil || !strings.Contains(err.Error(), "server.recover_timeout 300ms") {
		t.Fatalf("recover: %v", err)
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("recover took %v with a 300ms limit", took)
	}
}

// TestRecoverKeepsGTID: the MariaDB GTID printed after the position
// reaches the caller, so the start position is exactly what the server
// printed.
func TestRecoverKeepsGTID(t *testing.T) {
	a, c, _ := serveStopped(t, "")
	a.srv.Mariadbd = fakeRecover(t, t.TempDir(), "2d131d03-e921-11f1-93c0-7bfc10d240cf:9,0-1-9")
	res, err := c.Recover(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if res.GTID != "0-1-9" || res.Seqno != 9 || res.Position.String() != "2d131d03-e921-11f1-93c0-7bfc10d240cf:9,0-1-9" {
		t.Errorf("recovered %+v: the GTID was dropped", res)
	}
}
