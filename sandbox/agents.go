package sandbox

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/nines-project/nines"
	"github.com/nines-project/nines/agent"
	"github.com/nines-project/nines/internal/mariadbd"
)

// agentPortOffset puts node i's agent on P+200+i.
const agentPortOffset = 200

// maxGaleraNodes keeps the agent ports (P+200+i) clear of the Galera
// ports (P+100+10*i .. P+102+10*i): node 10 would put its gcomm port on
// P+200. Ten nodes on one machine is more than a loopback cluster needs.
const maxGaleraNodes = 10

// agentStartTimeout bounds the wait for a new agent to answer /healthz; it
// takes some tens of milliseconds.
const agentStartTimeout = 15 * time.Second

// agentStopGrace is how long an agent gets to exit after SIGTERM.
const agentStopGrace = 10 * time.Second

// ErrAgentBinary means the sandbox cannot tell which program to run as
// the nodes' agents.
var ErrAgentBinary = errors.New("no nines binary to run the node agents with")

// AgentURL is the node's agent endpoint, as nines.yaml names it.
func (n Node) AgentURL() string { return fmt.Sprintf("http://%s:%d", n.host(), n.AgentPort) }

// AgentConfigPath is the node's agent.yaml.
func (n Node) AgentConfigPath() string { return filepath.Join(n.Dir, "agent.yaml") }

// AgentLogPath is where the node's agent logs.
func (n Node) AgentLogPath() string { return filepath.Join(n.Dir, "agent.log") }

// BackupDir is where the sandbox's agents allow backups (backup_dirs),
// in it or below it: DIR/backups, created with the agents.
func (s *Sandbox) BackupDir() string { return filepath.Join(s.dir, "backups") }

// AgentTokenPath is the file holding the node agents' bearer token.
func (s *Sandbox) AgentTokenPath() string { return filepath.Join(s.dir, "agent-token") }

// Agent returns a client for the named node's agent, authenticated with
// the sandbox's agent token. Drills drive nodes through it exactly as the
// remediator drives production nodes.
func (s *Sandbox) Agent(name string) (*agent.Client, error) {
	n, err := s.Node(name)
	if err != nil {
		return nil, err
	}
	return s.agentClient(n)
}

// agentClient returns the node's agent client, made once per Sandbox so
// its connections are reused.
func (s *Sandbox) agentClient(n Node) (*agent.Client, error) {
	s.mu.Lock()
	c := s.agents[n.Name]
	s.mu.Unlock()
	if c != nil && c.URL() == n.AgentURL() {
		return c, nil
	}
	b, err := os.ReadFile(s.AgentTokenPath())
	if err != nil {
		return nil, fmt.Errorf("agent of %s: read token: %w", n.Name, err)
	}
	c = agent.NewClient(n.AgentURL(), strings.TrimSpace(string(b)), nil)
	s.mu.Lock()
	if s.agents == nil {
		s.agents = map[string]*agent.Client{}
	}
	s.agents[n.Name] = c
	s.mu.Unlock()
	return c, nil
}

// resolveAgentBinary picks the program run as `PROGRAM agent`: explicit
// beats this process's own binary, which beats the one recorded by an
// earlier start. A Go test binary is never used: run with "agent" it would
// run the tests instead.
func resolveAgentBinary(explicit, recorded string) (string, error) {
	if explicit != "" {
		abs, err := filepath.Abs(explicit)
		if err != nil {
			return "", fmt.Errorf("agent binary %q: %w", explicit, err)
		}
		if err := checkExecutable(abs); err != nil {
			return "", err
		}
		return abs, nil
	}
	self, err := os.Executable()
	if err == nil && !isTestBinary(self) {
		return self, nil
	}
	if recorded != "" {
		if err := checkExecutable(recorded); err != nil {
			return "", fmt.Errorf("agent binary recorded in %s: %w", manifestFile, err)
		}
		return recorded, nil
	}
	return "", fmt.Errorf("%w: this process (%s) is a Go test binary, not nines; set sandbox.Options.AgentBinary to a built nines binary "+
		"(go build -o DIR/nines ./cmd/nines)", ErrAgentBinary, self)
}

// agentBinary is the program a start recorded, or, when it is gone or
// none was recorded (a sandbox only opened), what resolveAgentBinary picks.
func (s *Sandbox) agentBinary() (string, error) {
	if rec := s.snapshot().AgentBinary; rec != "" && checkExecutable(rec) == nil {
		return rec, nil
	}
	return resolveAgentBinary("", "")
}

func isTestBinary(path string) bool { return strings.HasSuffix(filepath.Base(path), ".test") }

func checkExecutable(path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("agent binary: %w", err)
	}
	if fi.IsDir() || fi.Mode().Perm()&0o111 == 0 {
		return fmt.Errorf("agent binary %q is not an executable file", path)
	}
	return nil
}

// renderAgentConfig is a node's agent.yaml. It is rewritten on every
// start, like my.cnf. Backups may go to backupDir only.
func renderAgentConfig(m manifest, n Node, tokenPath, backupDir string) string {
	// In a netns sandbox the agent listens on the node's address, which
	// only the sandbox's own bridge reaches: no TLS there.
	insecure := ""
	if n.IP != "" {
		insecure = "insecure: true\n"
	}
	// The replication account, for the failover runbooks' CHANGE MASTER:
	// its password stays in the sandbox dir, next to the agent's token.
	repl := ""
	dr := m.isDR(n.Name)
	if m.Kind == nines.KindReplication || dr {
		repl = fmt.Sprintf("replication:\n  user: repl\n  password_file: %s\n", filepath.Join(filepath.Dir(tokenPath), "repl.pass"))
	}
	return fmt.Sprintf(`# Generated by `+"`nines sandbox`"+`; rewritten on every start.
name: %s
listen: %s:%d
`+insecure+repl+`token_file: %s
backup_dirs: [%s]
# A sandbox is for trying failures: nines drill may kill -9 its servers.
drill: {allowed: true}
server:
  galera: %t
  process:
    defaults_file: %s
    dir: %s
`, n.Name, n.host(), n.AgentPort, tokenPath, backupDir, m.Kind == nines.KindGalera && !dr, n.DefaultsFile, n.Dir)
}

// agentHosts are the hosts the sandbox runs an agent for: its database
// nodes, its DR replicas and an NDB sandbox's data nodes.
func (m manifest) agentHosts() []Node {
	out := m.allNodes()
	if m.NDB != nil {
		for _, d := range m.NDB.DataNodes {
			out = append(out, d.agentNode())
		}
		if m.NDB.hasFront() {
			out = append(out, m.NDB.Mgm.agentNode())
		}
	}
	return out
}

// ensureAgents starts the agent of every node that has none running.
func (s *Sandbox) ensureAgents(ctx context.Context) error {
	for _, n := range s.snapshot().allNodes() {
		if err := s.ensureAgent(ctx, n); err != nil {
			return err
		}
	}
	return nil
}

// ensureAgent starts the node's agent unless it runs, and waits until it
// answers. The agent runs detached, like the servers: in its own session,
// logging to the node's agent.log, outliving this process.
func (s *Sandbox) ensureAgent(ctx context.Context, n Node) error {
	if pid := agentPid(n); pid != 0 {
		return s.waitAgent(ctx, n, nil)
	}
	bin, err := s.agentBinary()
	if err != nil {
		return fmt.Errorf("start agent of %s: %w", n.Name, err)
	}
	// 0755: verification runs a scratch server as mysql under it.
	if err := os.MkdirAll(s.BackupDir(), 0o755); err != nil {
		return fmt.Errorf("start agent of %s: %w", n.Name, err)
	}
	if s.Kind() == nines.KindReplication || len(s.snapshot().DRReplicas) > 0 {
		// The agent reads the replication password at start.
		if _, err := ensureSecret(s.replPasswordPath(), passwordBytes); err != nil {
			return err
		}
	}
	return s.launchAgent(ctx, n, bin, renderAgentConfig(s.snapshot(), n, s.AgentTokenPath(), s.BackupDir()))
}

// launchAgent writes the agent's config, starts `bin agent` detached for
// n (a database node, or an NDB data node's host as a Node) and waits
// until it answers.
func (s *Sandbox) launchAgent(ctx context.Context, n Node, bin, config string) error {
	if err := writeFileAtomic(n.AgentConfigPath(), []byte(config), 0o600); err != nil {
		return fmt.Errorf("start agent of %s: %w", n.Name, err)
	}
	// In a namespace of its own the port is free: the namespace is new.
	if n.Netns == "" {
		if err := probePort(n.AgentPort); err != nil {
			return fmt.Errorf("start agent of %s: agent port %d is in use: %w", n.Name, n.AgentPort, err)
		}
	}
	out, err := os.OpenFile(n.AgentLogPath(), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o640)
	if err != nil {
		return fmt.Errorf("start agent of %s: open log: %w", n.Name, err)
	}
	defer out.Close()
	offset, _ := out.Seek(0, 2)
	cmd := exec.Command(bin, "agent", "--config", n.AgentConfigPath())
	if n.Netns != "" {
		// ip execs the agent in the namespace: the pid stays the
		// agent's, and its servers inherit the namespace.
		cmd = exec.Command(ipProgram, "netns", "exec", n.Netns, bin, "agent", "--config", n.AgentConfigPath())
	}
	cmd.Dir = s.dir
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	t0 := time.Now()
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start agent of %s: %s: %w", n.Name, bin, err)
	}
	exited := make(chan error, 1)
	// Reaped here so an agent that exits does not linger as a zombie.
	go func() { exited <- cmd.Wait() }()
	s.setAgentPid(n.Name, cmd.Process.Pid)
	if err := s.saveManifest(); err != nil {
		return err
	}
	if err := s.waitAgent(ctx, n, exited); err != nil {
		_ = cmd.Process.Kill()
		return fmt.Errorf("%w%s", err, logTail(n.AgentLogPath(), offset))
	}
	s.logf("agent of %s listening on %s in %v (pid %d)", n.Name, n.AgentURL(), time.Since(t0).Round(time.Millisecond), cmd.Process.Pid)
	return nil
}

// waitAgent polls the agent's /healthz until it answers, the agent
// process exits (exited, may be nil) or agentStartTimeout passes.
func (s *Sandbox) waitAgent(ctx context.Context, n Node, exited <-chan error) error {
	c, err := s.agentClient(n)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, agentStartTimeout)
	defer cancel()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		hctx, hcancel := context.WithTimeout(ctx, time.Second)
		err := c.Healthz(hctx)
		hcancel()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("agent of %s not answering on %s: %w", n.Name, n.AgentURL(), err)
		case werr := <-exited:
			return fmt.Errorf("agent of %s exited at start: %v", n.Name, werr)
		case <-tick.C:
		}
	}
}

// stopAgents stops every node's agent: SIGTERM, SIGKILL after
// agentStopGrace. The servers are stopped before, by Stop.
func (s *Sandbox) stopAgents(ctx context.Context) error {
	var errs []error
	for _, n := range s.snapshot().agentHosts() {
		pid := agentPid(n)
		if pid != 0 {
			if err := stopAgentPID(ctx, n, pid); err != nil {
				errs = append(errs, err)
				continue
			}
			s.logf("stopped agent of %s (pid %d)", n.Name, pid)
		}
		s.setAgentPid(n.Name, 0)
	}
	if err := s.saveManifest(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func stopAgentPID(ctx context.Context, n Node, pid int) error {
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("stop agent of %s: SIGTERM pid %d: %w", n.Name, pid, err)
	}
	if waitUntil(ctx, agentStopGrace, func() bool { return !isAgentOf(pid, n) }) {
		return nil
	}
	if isAgentOf(pid, n) {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	if !waitUntil(ctx, 5*time.Second, func() bool { return !isAgentOf(pid, n) }) {
		return fmt.Errorf("stop agent of %s: pid %d still alive after SIGKILL", n.Name, pid)
	}
	return nil
}

func waitUntil(ctx context.Context, limit time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) || ctx.Err() != nil {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
	return true
}

// agentPid is the pid of the node's running agent, 0 if none runs. Like a
// server's pid file, the recorded pid is only trusted when the process is
// still this node's agent.
func agentPid(n Node) int {
	if isAgentOf(n.AgentPid, n) {
		return n.AgentPid
	}
	return 0
}

// isAgentOf reports whether pid is a live `... agent --config
// <n's agent.yaml>` process.
func isAgentOf(pid int, n Node) bool {
	argv, ok := mariadbd.ProcessArgs(pid)
	if !ok || len(argv) < 3 || argv[1] != "agent" {
		return false
	}
	for i, a := range argv[2:] {
		if a == "--config="+n.AgentConfigPath() || a == "--config" && i+3 < len(argv) && argv[i+3] == n.AgentConfigPath() {
			return true
		}
	}
	return false
}

func (s *Sandbox) setAgentPid(name string, pid int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range s.m.Nodes {
		if s.m.Nodes[i].Name == name {
			s.m.Nodes[i].AgentPid = pid
		}
	}
	for i := range s.m.DRReplicas {
		if s.m.DRReplicas[i].Name == name {
			s.m.DRReplicas[i].AgentPid = pid
		}
	}
	if s.m.NDB != nil {
		for i := range s.m.NDB.DataNodes {
			if s.m.NDB.DataNodes[i].Name == name {
				s.m.NDB.DataNodes[i].AgentPid = pid
			}
		}
		if s.m.NDB.Mgm.Name == name {
			s.m.NDB.Mgm.AgentPid = pid
		}
	}
}

// logTail formats the end of a log written since offset for an error.
func logTail(path string, offset int64) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	if _, err := f.Seek(offset, 0); err != nil {
		return ""
	}
	var b bytes.Buffer
	_, _ = b.ReadFrom(f)
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	if len(lines) > 20 {
		lines = lines[len(lines)-20:]
	}
	t := strings.TrimSpace(strings.Join(lines, "\n"))
	if t == "" {
		return ""
	}
	return fmt.Sprintf("\n--- last lines of %s ---\n%s", path, t)
}
