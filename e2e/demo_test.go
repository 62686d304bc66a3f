//go:build cluster

package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os/exec"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nines-project/nines/sandbox"
)

// TestDemo runs `nines demo` as a new user would: it prints the API URL and
// token, answers queries about its 3-node cluster, its console user logs
// in, and Ctrl-C stops the appliance and every server of the sandbox.
func TestDemo(t *testing.T) {
	dir := sandboxDir(t, false)
	listen := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	cmd := exec.Command(ninesBin, "demo", "--dir", dir, "--listen", listen, "--base-port", fmt.Sprint(basePort()))
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr := &safeBuffer{}
	cmd.Stderr = stderr
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		select {
		case <-exited:
		default:
			_ = cmd.Process.Kill()
			if sb, err := sandbox.Open(dir); err == nil {
				// t.Context() is already cancelled when cleanups run: a stop with
				// it would give up at once and leave the servers running.
				ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
				defer cancel()
				if err := sb.Stop(ctx); err != nil {
					t.Errorf("stop the demo sandbox: %v", err)
				}
			}
		}
	})

	out := &safeBuffer{}
	tokenRe := regexp.MustCompile(`API token:\s+(\S+)`)
	up := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			fmt.Fprintln(out, sc.Text())
			if m := tokenRe.FindStringSubmatch(sc.Text()); m != nil {
				up <- m[1]
			}
		}
		_, _ = io.Copy(io.Discard, stdout)
	}()

	var token string
	select {
	case token = <-up:
	case err := <-exited:
		t.Fatalf("nines demo exited early: %v\n%s\n%s", err, out.String(), stderr.String())
	case <-time.After(3 * time.Minute):
		t.Fatalf("nines demo not up within 3 minutes:\n%s\n%s", out.String(), stderr.String())
	}
	t.Logf("measured: nines demo up in %s", time.Since(start).Round(time.Millisecond))
	if !strings.Contains(out.String(), "http://"+listen+"/") {
		t.Errorf("demo does not print its URL:\n%s", out.String())
	}

	a := &appliance{tb: t, base: "http://" + listen, token: token}
	waitFor(t, time.Now(), 10*time.Second, "demo cluster size 3 on 3 nodes", func() bool {
		got := a.query(`mysql_global_status_wsrep_cluster_size{cluster="demo"}`)
		return len(got) == 3 && got[0].Value == 3 && got[1].Value == 3 && got[2].Value == 3
	})

	sb, err := sandbox.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	demoHAProxy(t, a, sb, out.String())
	demoConsoleLogin(t, listen, dir, out)
	var pids []int
	for _, n := range sb.Nodes() {
		pid, err := sb.Pid(n.Name)
		if err != nil || pid <= 0 {
			t.Fatalf("pid of %s: %d %v", n.Name, pid, err)
		}
		pids = append(pids, pid)
	}

	// Ctrl-C.
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Errorf("nines demo exit after Ctrl-C: %v\n%s", err, stderr.String())
		}
	case <-time.After(90 * time.Second):
		t.Fatalf("nines demo still running 90 s after Ctrl-C")
	}
	for _, pid := range pids {
		if syscall.Kill(pid, 0) == nil {
			t.Errorf("mariadbd pid %d still running after the demo stopped", pid)
		}
	}
	status, err := exec.Command(ninesBin, "sandbox", "status", "--dir", dir, "--json").CombinedOutput()
	if err != nil || strings.Count(string(status), `"stopped"`) != 4 { // three nodes and HAProxy
		t.Errorf("sandbox status after the demo: %v\n%s", err, status)
	}
}

// demoHAProxy checks the demo's HAProxy: listed in `sandbox status
// --json` with its pid and listeners, printed in the banner with the
// command an application's user would run, which writes through the
// writer listener with app-client.cnf's credentials and lands on n1; and
// the probe writes through the writer too.
func demoHAProxy(t *testing.T, a *appliance, sb *sandbox.Sandbox, banner string) {
	t.Helper()
	if !sb.HAProxy() {
		t.Fatal("the demo's sandbox has no HAProxy")
	}
	status, err := exec.Command(ninesBin, "sandbox", "status", "--dir", sb.Dir(), "--json").Output()
	if err != nil {
		t.Fatalf("nines sandbox status --json: %v", err)
	}
	var entries []struct {
		Name, State, Writer, Reader string
		Pid                         int
	}
	if err := json.Unmarshal(status, &entries); err != nil {
		t.Fatalf("%v: %s", err, status)
	}
	var hap bool
	for _, e := range entries {
		if e.Name == sandbox.HAProxyName {
			hap = e.Pid > 0 && e.State == "running" && e.Writer == sb.WriterAddress() && e.Reader == sb.ReaderAddress()
		}
	}
	if !hap {
		t.Errorf("sandbox status --json does not list a running haproxy at %s / %s:\n%s", sb.WriterAddress(), sb.ReaderAddress(), status)
	}
	host, port, _ := net.SplitHostPort(sb.WriterAddress())
	app := fmt.Sprintf("mariadb --defaults-extra-file=%s -h %s -P %s app", sb.AppClientConfigPath(), host, port)
	for _, want := range []string{"HAProxy writer:   " + sb.WriterAddress(), "HAProxy reader:   " + sb.ReaderAddress(), app} {
		if !strings.Contains(banner, want) {
			t.Errorf("the demo's banner lacks %q:\n%s", want, banner)
		}
	}
	root, err := sb.DB("n1")
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	if _, err := root.Exec("CREATE TABLE IF NOT EXISTS app.demo_check (id INT AUTO_INCREMENT PRIMARY KEY, port INT NOT NULL)"); err != nil {
		t.Fatal(err)
	}
	// The banner's command, as a user would run it.
	args := append(strings.Fields(app)[1:], "-N", "-e", "INSERT INTO demo_check (port) VALUES (@@port); SELECT @@port")
	got, err := exec.Command("mariadb", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", app, err, got)
	}
	if p := strings.TrimSpace(string(got)); p != fmt.Sprint(sb.Nodes()[0].SQLPort) {
		t.Errorf("a write through HAProxy's writer landed on port %s, want n1's %d", p, sb.Nodes()[0].SQLPort)
	}
	var n int
	if err := root.QueryRow("SELECT COUNT(*) FROM app.demo_check").Scan(&n); err != nil || n == 0 {
		t.Errorf("the write through HAProxy is not on n1: %d rows, %v", n, err)
	}
	waitFor(t, time.Now(), 20*time.Second, "probe writes acknowledged through HAProxy's writer", func() bool {
		return len(a.query(fmt.Sprintf(`nines_probe_writes_acknowledged_total{cluster="demo", instance=%q} > 0`, sb.WriterAddress()))) == 1
	})
	t.Logf("the demo's HAProxy: writer %s, reader %s; a write as the application account through the writer reached n1; the probe writes through the writer", sb.WriterAddress(), sb.ReaderAddress())
}
