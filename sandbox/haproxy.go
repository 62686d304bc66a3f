package sandbox

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/nines-project/nines"
	"github.com/nines-project/nines/haproxy"
	"github.com/nines-project/nines/internal/mariadbd"
)

// HAProxyProgram is Debian's haproxy (package haproxy), which
// scripts/install-deps.sh installs.
const HAProxyProgram = "/usr/sbin/haproxy"

// Ports of the HAProxy listeners relative to the base port: past the
// agents' (P+200 .. P+299 for the most nodes a sandbox may have).
const (
	haproxyWriterOffset = 300
	haproxyReaderOffset = 301
)

// HAProxyName is HAProxy's name in Status.
const HAProxyName = "haproxy"

// haproxyStopGrace is how long HAProxy gets to exit after SIGTERM (it
// exits at once: -db, no soft stop).
const haproxyStopGrace = 5 * time.Second

// haproxyStartTimeout bounds the wait for HAProxy's listeners.
const haproxyStartTimeout = 10 * time.Second

// HAProxyConfigPath is DIR/haproxy.cfg, written at every start of a
// sandbox with HAProxy (0600: it holds the agents' token).
func (s *Sandbox) HAProxyConfigPath() string { return filepath.Join(s.dir, "haproxy.cfg") }

// HAProxySocket is HAProxy's runtime API (stats socket, level admin).
func (s *Sandbox) HAProxySocket() string { return filepath.Join(s.dir, "haproxy.sock") }

// HAProxyLogPath is where HAProxy logs (its stdout and stderr).
func (s *Sandbox) HAProxyLogPath() string { return filepath.Join(s.dir, "haproxy.log") }

// HAProxy reports whether the sandbox puts HAProxy in front of its
// cluster.
func (s *Sandbox) HAProxy() bool { return s.snapshot().HAProxy }

// WriterAddress is HAProxy's writer listener, host:port: every
// connection goes to one node (Galera: n1 while it is healthy;
// replication: the primary, or none while there is none).
func (s *Sandbox) WriterAddress() string {
	return fmt.Sprintf("127.0.0.1:%d", s.snapshot().BasePort+haproxyWriterOffset)
}

// ReaderAddress is HAProxy's reader listener, host:port: connections
// spread over every healthy node (replication: healthy replicas).
func (s *Sandbox) ReaderAddress() string {
	return fmt.Sprintf("127.0.0.1:%d", s.snapshot().BasePort+haproxyReaderOffset)
}

// haproxyConfig is the generated configuration of the sandbox's HAProxy.
func (s *Sandbox) haproxyConfig() ([]byte, error) {
	m := s.snapshot()
	tok, err := os.ReadFile(s.AgentTokenPath())
	if err != nil {
		return nil, fmt.Errorf("haproxy config: agent token: %w", err)
	}
	c := haproxy.Config{
		Cluster:     m.ClusterName,
		WriterBind:  s.WriterAddress(),
		ReaderBind:  s.ReaderAddress(),
		Token:       strings.TrimSpace(string(tok)),
		StatsSocket: s.HAProxySocket(),
		// HAProxy runs in the foreground with its output in haproxy.log.
		Log:         "stdout format raw local0",
		Replication: m.Kind == nines.KindReplication,
	}
	for _, n := range m.Nodes {
		c.Servers = append(c.Servers, haproxy.Server{Name: n.Name, Address: n.Address(), AgentHost: n.host(), AgentPort: n.AgentPort})
	}
	return haproxy.Render(c)
}

// ensureHAProxy writes DIR/haproxy.cfg and starts HAProxy unless it runs
// already (it is then told to reload nothing: the configuration only
// changes with the layout, which is fixed). It runs detached like the
// agents: its own session, output to haproxy.log, pid in sandbox.json,
// trusted only after its command line confirms it.
func (s *Sandbox) ensureHAProxy(ctx context.Context) error {
	if _, err := os.Stat(HAProxyProgram); err != nil {
		return fmt.Errorf("start haproxy: %w: install the Debian package haproxy (scripts/install-deps.sh does)", err)
	}
	m := s.snapshot()
	if top := m.BasePort + haproxyReaderOffset; top > 65535 {
		return fmt.Errorf("start haproxy: base port %d puts its reader on %d, past 65535", m.BasePort, top)
	}
	if len(s.HAProxySocket()) > maxUnixSocketPath {
		return fmt.Errorf("start haproxy: socket path %q is over the %d bytes a unix socket allows: choose a shorter --dir", s.HAProxySocket(), maxUnixSocketPath)
	}
	cfg, err := s.haproxyConfig()
	if err != nil {
		return err
	}
	if err := writeFileAtomic(s.HAProxyConfigPath(), cfg, 0o600); err != nil {
		return err
	}
	if pid := s.haproxyPid(); pid != 0 {
		s.logf("haproxy already running (pid %d): writer %s, reader %s", pid, s.WriterAddress(), s.ReaderAddress())
		return s.waitHAProxy(ctx, nil)
	}
	for _, addr := range []string{s.WriterAddress(), s.ReaderAddress()} {
		_, port, _ := net.SplitHostPort(addr)
		p, _ := strconv.Atoi(port)
		if err := probePort(p); err != nil {
			return fmt.Errorf("start haproxy: port %d is in use: %w", p, err)
		}
	}
	if out, err := exec.CommandContext(ctx, HAProxyProgram, "-c", "-q", "-f", s.HAProxyConfigPath()).CombinedOutput(); err != nil {
		return fmt.Errorf("start haproxy: haproxy -c %s: %v: %s", s.HAProxyConfigPath(), err, strings.TrimSpace(string(out)))
	}
	out, err := os.OpenFile(s.HAProxyLogPath(), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o640)
	if err != nil {
		return fmt.Errorf("start haproxy: open log: %w", err)
	}
	defer out.Close()
	offset, _ := out.Seek(0, 2)
	// -db: foreground, no master process: the pid is HAProxy itself.
	cmd := exec.Command(HAProxyProgram, "-db", "-f", s.HAProxyConfigPath())
	cmd.Dir = s.dir
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	t0 := time.Now()
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start haproxy: %w", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	s.mu.Lock()
	s.m.HAProxyPid = cmd.Process.Pid
	s.mu.Unlock()
	if err := s.saveManifest(); err != nil {
		return err
	}
	if err := s.waitHAProxy(ctx, exited); err != nil {
		_ = cmd.Process.Kill()
		return fmt.Errorf("%w%s", err, logTail(s.HAProxyLogPath(), offset))
	}
	s.logf("haproxy in front of the cluster in %v (pid %d): writer %s (one node at a time), reader %s",
		time.Since(t0).Round(time.Millisecond), cmd.Process.Pid, s.WriterAddress(), s.ReaderAddress())
	return nil
}

// waitHAProxy waits until the runtime API answers and every server of
// both listeners is in the state its node should give it (haproxyWant):
// the listeners then route as they should.
func (s *Sandbox) waitHAProxy(ctx context.Context, exited <-chan error) error {
	ctx, cancel := context.WithTimeout(ctx, haproxyStartTimeout)
	defer cancel()
	want := s.haproxyWant()
	last := ""
	for {
		states, err := s.HAProxyServers(ctx)
		if err == nil {
			off := []string{}
			for k, w := range want {
				if states[k] != w {
					off = append(off, fmt.Sprintf("%s %s (want %s)", k, states[k], w))
				}
			}
			if len(off) == 0 {
				return nil
			}
			sort.Strings(off)
			last = strings.Join(off, ", ")
		} else {
			last = err.Error()
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("haproxy not ready within %v: %s", haproxyStartTimeout, last)
		case werr := <-exited:
			return fmt.Errorf("haproxy exited at start: %v", werr)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// haproxyWant is the status each server ("listener/server") has once the
// checks settled on a sandbox as it starts: Galera, every server UP;
// replication, the writer's n1 alone UP and the reader's replicas.
func (s *Sandbox) haproxyWant() map[string]string {
	m := s.snapshot()
	want := map[string]string{}
	for _, n := range m.Nodes {
		w, r := "UP", "UP"
		if m.Kind == nines.KindReplication {
			if n.Role == RolePrimary {
				r = "DOWN"
			} else {
				w = "DOWN"
			}
		}
		want[m.ClusterName+"-writer/"+n.Name] = w
		want[m.ClusterName+"-reader/"+n.Name] = r
	}
	return want
}

// HAProxyRuntime is the runtime API of the sandbox's HAProxy.
func (s *Sandbox) HAProxyRuntime() haproxy.Runtime { return haproxy.Runtime{Socket: s.HAProxySocket()} }

// HAProxyServers asks HAProxy's runtime API (show stat) for the status of
// every server, by "listener/server": UP, DOWN, MAINT, "UP 1/2" (going
// down) ...
func (s *Sandbox) HAProxyServers(ctx context.Context) (map[string]string, error) {
	ss, err := s.HAProxyRuntime().Servers(ctx)
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, st := range ss {
		out[st.Backend+"/"+st.Server] = st.Status
	}
	return out, nil
}

// HAProxyCommand sends one command to HAProxy's runtime API and returns
// its answer (see haproxy.Runtime.Command).
func (s *Sandbox) HAProxyCommand(ctx context.Context, command string) (string, error) {
	return s.HAProxyRuntime().Command(ctx, command)
}

// haproxyPid is the pid of the sandbox's running HAProxy, 0 if none runs.
func (s *Sandbox) haproxyPid() int {
	pid := s.snapshot().HAProxyPid
	if isHAProxyOf(pid, s.HAProxyConfigPath()) {
		return pid
	}
	return 0
}

// isHAProxyOf reports whether pid is a live `haproxy ... -f cfg` process.
func isHAProxyOf(pid int, cfg string) bool {
	argv, ok := mariadbd.ProcessArgs(pid)
	if !ok || len(argv) < 3 || filepath.Base(argv[0]) != "haproxy" {
		return false
	}
	for i := 1; i+1 < len(argv); i++ {
		if argv[i] == "-f" && argv[i+1] == cfg {
			return true
		}
	}
	return false
}

// stopHAProxy stops the sandbox's HAProxy: SIGTERM, SIGKILL after
// haproxyStopGrace.
func (s *Sandbox) stopHAProxy(ctx context.Context) error {
	pid := s.haproxyPid()
	cfg := s.HAProxyConfigPath()
	if pid != 0 {
		if err := syscall.Kill(pid, syscall.SIGTERM); err != nil && !errors.Is(err, syscall.ESRCH) {
			return fmt.Errorf("stop haproxy: SIGTERM pid %d: %w", pid, err)
		}
		if !waitUntil(ctx, haproxyStopGrace, func() bool { return !isHAProxyOf(pid, cfg) }) {
			if isHAProxyOf(pid, cfg) {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
			if !waitUntil(ctx, 5*time.Second, func() bool { return !isHAProxyOf(pid, cfg) }) {
				return fmt.Errorf("stop haproxy: pid %d still alive after SIGKILL", pid)
			}
		}
		s.logf("stopped haproxy (pid %d)", pid)
	}
	s.mu.Lock()
	changed := s.m.HAProxyPid != 0
	s.m.HAProxyPid = 0
	s.mu.Unlock()
	if changed {
		return s.saveManifest()
	}
	return nil
}

// haproxyStatus is HAProxy's entry in Status.
func (s *Sandbox) haproxyStatus() NodeStatus {
	st := NodeStatus{Name: HAProxyName, State: StateStopped, Writer: s.WriterAddress(), Reader: s.ReaderAddress()}
	if pid := s.haproxyPid(); pid != 0 {
		st.Pid, st.State = pid, "running"
	}
	return st
}
