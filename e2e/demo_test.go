//go:build cluster

package e2e

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os/exec"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nines-project/nines/sandbox"
)

// TestDemo runs `nines demo` as a new user would: it prints the API URL and
// token, answers queries about its 3-node cluster, and Ctrl-C stops the
// appliance and every server of the sandbox.
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
	if err != nil || strings.Count(string(status), `"stopped"`) != 3 {
		t.Errorf("sandbox status after the demo: %v\n%s", err, status)
	}
}
