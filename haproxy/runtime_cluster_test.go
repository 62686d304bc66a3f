//go:build cluster

package haproxy

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nines-project/nines/internal/testbin"
)

// TestRuntimeAgainstHAProxy runs Debian's haproxy with one listener in
// front of two servers, one listening (UP) and one not (DOWN), and drives
// it through Runtime as the remediator will: read, maint, ready, and a
// refused command.
func TestRuntimeAgainstHAProxy(t *testing.T) {
	requireHAProxy(t)
	dir := t.TempDir()
	up, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer up.Close()
	go func() {
		for {
			c, err := up.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	down := freePort(t)
	bind := freePort(t)
	sock := filepath.Join(dir, "h.sock")
	cfg := fmt.Sprintf(`global
    stats socket %s mode 600 level admin
defaults
    mode tcp
    timeout connect 1s
    timeout client 10s
    timeout server 10s
    default-server inter 100ms fall 2 rise 1
listen c-writer
    bind 127.0.0.1:%d
    server n1 %s check
    server n2 127.0.0.1:%d check
`, sock, bind, up.Addr(), down)
	f := filepath.Join(dir, "haproxy.cfg")
	if err := os.WriteFile(f, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(haproxyBin, "-db", "-f", f)
	out, _ := os.Create(filepath.Join(dir, "haproxy.log"))
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Signal(syscall.SIGTERM); _ = cmd.Wait() })

	ctx := context.Background()
	r := Runtime{Socket: sock}
	states := func() map[string]string {
		t.Helper()
		ss, err := r.Servers(ctx)
		if err != nil {
			return map[string]string{"error": err.Error()}
		}
		m := map[string]string{}
		for _, s := range ss {
			m[s.Backend+"/"+s.Server] = s.State()
		}
		return m
	}
	waitFor := func(want string) {
		t.Helper()
		var got map[string]string
		for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
			got = states()
			if fmt.Sprint(got) == want {
				return
			}
		}
		t.Fatalf("servers %v, want %s", got, want)
	}
	waitFor("map[c-writer/n1:UP c-writer/n2:DOWN]")

	c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", bind))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var n1 ServerStat
	for deadline := time.Now().Add(2 * time.Second); time.Now().Before(deadline) && n1.CurrentSessions == 0; time.Sleep(20 * time.Millisecond) {
		ss, err := r.Servers(ctx)
		if err != nil {
			t.Fatal(err)
		}
		n1 = ss[0]
	}
	if n1.CurrentSessions != 1 || n1.TotalSessions != 1 || !n1.Up() || n1.CheckStatus != "L4OK" {
		t.Errorf("n1 with one client: %+v", n1)
	}

	if err := r.SetState(ctx, "c-writer", "n1", StateMaint); err != nil {
		t.Fatal(err)
	}
	waitFor("map[c-writer/n1:MAINT c-writer/n2:DOWN]")
	if err := r.SetState(ctx, "c-writer", "n1", StateDrain); err != nil {
		t.Fatal(err)
	}
	waitFor("map[c-writer/n1:DRAIN c-writer/n2:DOWN]")
	if err := r.SetState(ctx, "c-writer", "n1", StateReady); err != nil {
		t.Fatal(err)
	}
	waitFor("map[c-writer/n1:UP c-writer/n2:DOWN]")

	var re *RuntimeError
	// A fenced writer's clients are closed at once: the client's read
	// ends instead of waiting for its next query to fail.
	if err := r.ShutdownSessions(ctx, "c-writer", "n1"); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("client of n1 after shutdown sessions: read %v, want the connection closed", err)
	}
	// Forced health is accepted for a checked server (the checks overrule
	// it at their next result, so only the answer is asserted here).
	for _, h := range []string{HealthDown, HealthUp} {
		if err := r.SetHealth(ctx, "c-writer", "n1", h); err != nil {
			t.Errorf("set health %s: %v", h, err)
		}
	}
	if err := r.SetHealth(ctx, "c-writer", "n9", HealthUp); !errors.As(err, &re) {
		t.Errorf("health of an unknown server: %v, want HAProxy's refusal", err)
	}
	if err := r.SetHealth(ctx, "c-writer", "n1", "sideways"); err == nil || errors.As(err, &re) {
		t.Errorf("health sideways: %v, want refused before HAProxy is asked", err)
	}

	err = r.SetState(ctx, "c-writer", "n9", StateMaint)
	if !errors.As(err, &re) || re.Reply != "No such server." || !strings.Contains(err.Error(), "set server c-writer/n9 state maint") {
		t.Errorf("unknown server: %v, want HAProxy's refusal", err)
	}
	err = r.SetState(ctx, "nope", "n1", StateMaint)
	if !errors.As(err, &re) || re.Reply != "No such backend." {
		t.Errorf("unknown backend: %v, want HAProxy's refusal", err)
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	p, err := testbin.ClusterPorts.Next()
	if err != nil {
		t.Fatal(err)
	}
	return p
}
