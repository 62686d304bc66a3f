// Package sandbox runs real MariaDB clusters on 127.0.0.1 (or, with
// Options.Netns, one network namespace per node) for the demo, for
// trying nines out and for the end-to-end tests: an N-node Galera cluster,
// or a GTID primary with replicas.
//
// # Layout
//
// Everything lives under one directory DIR, which survives stops and is
// reused by the next start:
//
//	DIR/sandbox.json   what the sandbox is (read by Open)
//	DIR/nines.yaml     a ready appliance config (nines run --config DIR/nines.yaml)
//	DIR/nines.pass     password of the monitoring user `nines` (0600)
//	DIR/api-token      bearer token for the appliance API, role admin (0600)
//	DIR/webhook-token  Alertmanager's token for the remediator's webhook (0600)
//	DIR/read-token     a read-only API token, for Grafana's data source (0600)
//	DIR/agent-token    bearer token of the node agents (0600)
//	DIR/console-password password of the console's admin user (0600)
//	DIR/repl.pass      replication user's password (replication only, 0600)
//	DIR/app.pass       password of the application account `app` (0600)
//	DIR/app-client.cnf [client] user and password of `app` (0600), for
//	                   mariadb --defaults-extra-file=DIR/app-client.cnf -h HOST -P PORT
//	DIR/haproxy.cfg    HAProxy's configuration, with --haproxy (0600: it
//	                   holds the agent token); haproxy.log, haproxy.sock
//	                   (runtime API, level admin) beside it
//	DIR/appliance/     the appliance's data_dir
//	DIR/n1, DIR/n2 ... one per server: my.cnf, data/, tmp/, mysqld.sock,
//	                   mysqld.pid, error.log, mariadbd.out, recover.log,
//	                   agent.yaml and agent.log of the node's agent
//	DIR/dr1            the same for a Galera sandbox's DR replica
//	                   (Options.DRReplica): SQL on P+90, agent on P+290
//
// Connect to a node with `mariadb --defaults-file=DIR/n1/my.cnf`.
//
// # Ports
//
// With base port P, node i (0-based, so n1 is i=0) listens for SQL on
// P+i. A Galera node also uses, for its group communication (gcomm),
// incremental state transfer (IST) and snapshot state transfer (SST):
//
//	gcomm = P+100+10*i
//	IST   = P+101+10*i
//	SST   = P+102+10*i
//
// and every node's agent (both kinds) listens on 127.0.0.1 at
//
//	agent = P+200+i
//
// and, with Options.HAProxy, HAProxy listens on 127.0.0.1 at
//
//	writer = P+300   (every connection to one node: Galera's n1 while
//	                  healthy, replication's primary)
//	reader = P+301   (every healthy node, roundrobin; replication: the
//	                  replicas)
//
// so with the default P=3306 a 3-node cluster takes 3306-3308 for SQL,
// 3406-3408, 3416-3418, 3426-3428 for Galera, 3506-3508 for the
// agents and 3606-3607 for HAProxy. A Galera sandbox has at most 10 nodes, which keeps the Galera
// ports (up to P+192) below the agents' and clear of the SQL ports;
// clusters on base ports 1000 apart never collide.
//
// # Processes
//
// Every node has a host agent, `nines agent` (package agent), the same
// program production hosts run, and the sandbox controls its servers only
// through the agents' API: recover, bootstrap fields, start, stop. So
// each server is a child of its agent, and tests drive nodes exactly as
// the remediator will. Like production agents, they never restart a server
// that died: a node killed by a drill stays down until someone starts it.
//
// Agents and servers run detached (own session, output to a file), so they
// outlive the command that started them; Stop, or `nines sandbox stop`,
// ends the servers and then the agents. An agent's pid is recorded in
// sandbox.json; a server is found through its pid file. Either is trusted
// only after its command line confirms it, so a stale pid never gets an
// unrelated process signalled. Galera nodes always start through
// --wsrep-recover and --wsrep-start-position, one at a time, each waiting
// until Synced; when no node of an existing cluster runs, the most advanced
// one is chosen with the recovery package and bootstraps the cluster
// again, keeping its state UUID.
//
// The agents run the nines binary that runs the sandbox (os.Executable),
// or Options.AgentBinary. A Go test binary cannot serve as the agent, so
// tests that run the sandbox in-process set AgentBinary to a built nines.
//
// # Network namespaces
//
// With Options.Netns (root only) each node runs in a network namespace of
// its own, nines-<id>-nN, where <id> is a short hash of DIR, with the
// address .10+i of a private /24 chosen at creation (the first
// 10.213.X.0/24 no interface of the host overlaps) and kept in
// sandbox.json. A veth pair joins each namespace (eth0 inside) to a bridge
// nb<id> in the root namespace holding .1, so the appliance reaches every
// node's SQL port and agent: Node.Address and Node.AgentURL name the node's
// address, and the servers, Galera and the agents (started with `ip netns
// exec`, which execs the agent, so its pid is still the agent's) listen
// on it. Ports are as above; sockets, which are files, work from anywhere.
//
// Isolate, Cut, Mend and Heal cut and heal links with blackhole routes in
// the nodes' namespaces: a cut between two nodes is a route to each other's
// address on both sides, a cut from the appliance a route to the bridge
// address in the node's namespace, which also drops its replies. TCP across
// a cut times out, as in a real partition. Status reads the cuts back from
// the routes. Setup is idempotent: a start re-creates what is missing.
// Stop heals every cut (so the agents answer), stops servers and agents,
// then deletes the namespaces, veths and bridge, all named after <id>, so
// a stop from another process finds them and nothing else is touched.
//
// When the calling process is root, servers run as user mysql (the rsync
// state transfer fails for a root-run server) and the node directories are
// given to mysql; DIR and every directory above it must then be
// traversable by mysql.
package sandbox

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"sync"
	"time"

	"github.com/nines-project/nines"
	"github.com/nines-project/nines/agent"
	"github.com/nines-project/nines/internal/mariadbd"
)

// Defaults for Options fields left at their zero value.
const (
	DefaultGaleraNodes = 3
	DefaultReplicas    = 2
	DefaultBasePort    = 3306
	DefaultClusterName = "sandbox"
	DefaultListen      = "127.0.0.1:9104"
	// DefaultNodeTimeout bounds each wait for one node. A joiner's full
	// state transfer of a fresh datadir takes 5-8 s here; the margin is for
	// loaded CI machines and datadirs the demo has grown.
	DefaultNodeTimeout = 2 * time.Minute
	// StopGrace is how long a server gets to shut down after SIGTERM
	// before SIGKILL. Graceful stops take 1-3 s; a kill loses Galera's
	// saved seqno and forces the next start through full recovery.
	StopGrace = 30 * time.Second
)

// Ports relative to a node's position, see the package comment.
const (
	galeraPortOffset = 100
	galeraPortStride = 10
	maxNodes         = 100
)

// Options describes a sandbox to start. Zero fields take the defaults
// above. On an existing DIR the recorded layout wins: a non-zero Nodes,
// BasePort or ClusterName that contradicts it is an error, while a new
// Listen rewrites nines.yaml and SemiSync turns semi-sync on.
type Options struct {
	Dir string
	// Nodes is the number of Galera nodes, or 1 + the number of replicas.
	Nodes       int
	BasePort    int
	ClusterName string
	// Listen is the appliance address written into nines.yaml.
	Listen string
	// SemiSync enables semi-synchronous replication (replication only).
	SemiSync bool
	// Log receives one line per step; nil discards them.
	Log io.Writer
	// NodeTimeout bounds each wait for one node; 0 is DefaultNodeTimeout.
	NodeTimeout time.Duration
	// AgentBinary is the nines program the node agents run as
	// `AgentBinary agent --config ...`. Empty means this process's own
	// binary, or, when this process is a Go test binary, the one an
	// earlier start recorded in sandbox.json; failing both, the start is
	// refused with ErrAgentBinary.
	AgentBinary string
	// Netns runs every node in its own network namespace with its own
	// address, joined by a bridge in the root namespace, so partitions can
	// be cut (see Isolate). Needs root.
	Netns bool
	// Hosts adds, with Netns, empty network namespaces on the sandbox's
	// bridge (addresses .100 and up), for what a drill runs beside the
	// nodes: appliances a partition must separate from each other (see
	// Host, Cut). Nothing runs in them until the caller starts it there
	// (`ip netns exec`).
	Hosts []string
	// HAProxy starts Debian's haproxy in front of the cluster: a writer
	// listener (one node at a time) on P+300 and a reader listener
	// (roundrobin) on P+301, every node a server of both, checked through
	// the agents' health endpoints. Galera: the writer's first server
	// active, the others backups; replication: every server active, the
	// writer check passing on the primary only and the reader check on
	// replicas. HAProxy runs in the root namespace (with Netns too,
	// reaching the nodes on the bridge). Once on, later starts of the
	// sandbox keep it; nines.yaml then probes through the writer and
	// reads HAProxy's stats (the cluster's haproxy key).
	HAProxy bool
	// DRReplica adds to a new Galera sandbox one more server outside the
	// cluster, dr1 (SQL on P+90, agent on P+290): read_only, wsrep off,
	// replicating from n1 by GTID, as a disaster-recovery site would.
	// nines.yaml declares it under the cluster's dr_replicas. It can only
	// be chosen when the sandbox is created: a replica added later would
	// need a copy of the data first.
	DRReplica bool
}

// Role is what a server is in its sandbox.
type Role string

const (
	RoleGalera  Role = "galera"
	RolePrimary Role = "primary"
	RoleReplica Role = "replica"
)

// Node is one server of a sandbox, as recorded in sandbox.json. Paths are
// absolute.
type Node struct {
	Name    string `json:"name"`
	Role    Role   `json:"role"`
	SQLPort int    `json:"sql_port"`
	// Galera ports; zero for replication sandboxes.
	GcommPort    int    `json:"gcomm_port,omitempty"`
	ISTPort      int    `json:"ist_port,omitempty"`
	SSTPort      int    `json:"sst_port,omitempty"`
	Dir          string `json:"dir"`
	DefaultsFile string `json:"defaults_file"`
	DataDir      string `json:"data_dir"`
	Socket       string `json:"socket"`
	PidFile      string `json:"pid_file"`
	ErrorLog     string `json:"error_log"`
	// AgentPort is where the node's agent listens (127.0.0.1).
	AgentPort int `json:"agent_port"`
	// AgentPid is the pid of the node's agent when the sandbox started it;
	// it is checked before use, see agentPid.
	AgentPid int `json:"agent_pid,omitempty"`
	// Netns is the node's network namespace and IP its address there, in
	// a sandbox started with Options.Netns.
	Netns string `json:"netns,omitempty"`
	IP    string `json:"ip,omitempty"`
}

// Address is the node's SQL endpoint as nines.yaml names it.
func (n Node) Address() string { return fmt.Sprintf("%s:%d", n.host(), n.SQLPort) }

// host is the address the node's servers listen on.
func (n Node) host() string {
	if n.IP != "" {
		return n.IP
	}
	return "127.0.0.1"
}

// manifest is sandbox.json.
type manifest struct {
	Kind        nines.Kind `json:"kind"`
	ClusterName string     `json:"cluster_name"`
	BasePort    int        `json:"base_port"`
	Listen      string     `json:"listen"`
	SemiSync    bool       `json:"semi_sync,omitempty"`
	// Provisioned is set once the SQL accounts and files exist, so a start
	// interrupted before that finishes the job next time.
	Provisioned bool `json:"provisioned"`
	// AgentBinary is the program the agents were last started with.
	AgentBinary string `json:"agent_binary,omitempty"`
	Nodes       []Node `json:"nodes"`
	// Netns, Subnet and Bridge describe the network of a sandbox started
	// with Options.Netns: its /24 (bridge .1, node i .10+i) and bridge.
	Netns  bool   `json:"netns,omitempty"`
	Subnet string `json:"subnet,omitempty"`
	Bridge string `json:"bridge,omitempty"`
	// Hosts are Options.Hosts' namespaces: Name, Netns and IP set.
	Hosts []Node `json:"hosts,omitempty"`
	// HAProxy puts haproxy in front of the cluster; HAProxyPid is its pid
	// when the sandbox started it, checked before use (haproxyPid).
	HAProxy    bool `json:"haproxy,omitempty"`
	HAProxyPid int  `json:"haproxy_pid,omitempty"`
	// AppProvisioned is set once the application account exists.
	AppProvisioned bool `json:"app_provisioned,omitempty"`
	// DRReplicas are servers outside a Galera cluster replicating from
	// one of its nodes (Options.DRReplica); not part of Nodes, which are
	// the cluster's members.
	DRReplicas []Node `json:"dr_replicas,omitempty"`
	// Generated is the sha256 of nines.yaml and alertmanager.yml as the
	// sandbox last wrote them, to tell a hand edit from an old default.
	Generated map[string]string `json:"generated,omitempty"`
	// NDB is an NDB sandbox's simulator processes (see ndb.go).
	NDB *NDBLayout `json:"ndb,omitempty"`
}

const manifestFile = "sandbox.json"

// Sandbox is a sandbox on disk, running or not. Its methods may be called
// from several goroutines.
type Sandbox struct {
	// Log receives progress lines; Open sets it to io.Discard.
	Log io.Writer

	dir         string
	nodeTimeout time.Duration

	mu            sync.Mutex
	m             manifest
	listenChanged bool                     // nines.yaml must be rewritten
	agents        map[string]*agent.Client // by node name, see agentClient
}

// ErrNoSandbox means a directory holds no sandbox.json.
var ErrNoSandbox = errors.New("no sandbox in directory")

// ErrUnknownNode means a node name is not part of the sandbox.
var ErrUnknownNode = errors.New("no such node")

// Open reads the sandbox in dir without starting or checking anything.
func Open(dir string) (*Sandbox, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("open sandbox %q: %w", dir, err)
	}
	b, err := os.ReadFile(filepath.Join(abs, manifestFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("open sandbox %q: %w (no %s)", abs, ErrNoSandbox, manifestFile)
	}
	if err != nil {
		return nil, fmt.Errorf("open sandbox %q: %w", abs, err)
	}
	var m manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("open sandbox %q: parse %s: %w", abs, manifestFile, err)
	}
	if !m.Kind.Valid() || len(m.Nodes) == 0 {
		return nil, fmt.Errorf("open sandbox %q: %s has kind %q and %d nodes", abs, manifestFile, m.Kind, len(m.Nodes))
	}
	for i := range m.Nodes {
		// Sandboxes made before nodes had agents get the agent port the
		// layout rule gives them.
		if m.Nodes[i].AgentPort == 0 {
			m.Nodes[i].AgentPort = m.BasePort + agentPortOffset + i
		}
	}
	return &Sandbox{Log: io.Discard, dir: abs, nodeTimeout: DefaultNodeTimeout, m: m}, nil
}

// Dir is the sandbox directory.
func (s *Sandbox) Dir() string { return s.dir }

// Kind is galera or replication.
func (s *Sandbox) Kind() nines.Kind { return s.snapshot().Kind }

// ClusterName is the cluster's name in nines.yaml (and wsrep_cluster_name).
func (s *Sandbox) ClusterName() string { return s.snapshot().ClusterName }

// ConfigPath is the appliance config written for this sandbox.
func (s *Sandbox) ConfigPath() string { return filepath.Join(s.dir, "nines.yaml") }

// AlertmanagerConfigPath is the embedded Alertmanager's configuration.
func (s *Sandbox) AlertmanagerConfigPath() string { return filepath.Join(s.dir, "alertmanager.yml") }

// TokenPath is the file holding the API token (role admin).
func (s *Sandbox) TokenPath() string { return filepath.Join(s.dir, "api-token") }

// WebhookTokenPath is the file holding the token (role webhook) the
// embedded Alertmanager sends to the remediator's webhook.
func (s *Sandbox) WebhookTokenPath() string { return filepath.Join(s.dir, "webhook-token") }

// ReadTokenPath is the file holding a read-only API token (role read),
// the one to give Grafana's data source.
func (s *Sandbox) ReadTokenPath() string { return filepath.Join(s.dir, "read-token") }

// PasswordPath is the file holding the `nines` SQL user's password.
func (s *Sandbox) PasswordPath() string { return filepath.Join(s.dir, "nines.pass") }

func (s *Sandbox) replPasswordPath() string { return filepath.Join(s.dir, "repl.pass") }

// Nodes returns the sandbox's servers in order (n1 first).
func (s *Sandbox) Nodes() []Node {
	m := s.snapshot()
	return append([]Node(nil), m.Nodes...)
}

// DRReplicas returns the servers replicating from the Galera cluster
// from outside it (Options.DRReplica); none for other sandboxes.
func (s *Sandbox) DRReplicas() []Node {
	return append([]Node(nil), s.snapshot().DRReplicas...)
}

// allNodes is every server of the sandbox: the cluster's nodes, then the
// DR replicas.
func (m manifest) allNodes() []Node {
	return append(append([]Node(nil), m.Nodes...), m.DRReplicas...)
}

// isDR reports whether n is a DR replica of the sandbox.
func (m manifest) isDR(name string) bool {
	for _, d := range m.DRReplicas {
		if d.Name == name {
			return true
		}
	}
	return false
}

// Node returns the node called name, a DR replica included.
func (s *Sandbox) Node(name string) (Node, error) {
	for _, n := range s.snapshot().allNodes() {
		if n.Name == name {
			return n, nil
		}
	}
	return Node{}, fmt.Errorf("node %q of sandbox %q: %w", name, s.dir, ErrUnknownNode)
}

// Pid returns the pid of the node's running server, 0 if it is not running.
func (s *Sandbox) Pid(name string) (int, error) {
	n, err := s.Node(name)
	if err != nil {
		return 0, err
	}
	return server(n).Pid()
}

// DB opens a connection pool to the node over its unix socket, as the
// account mariadb-install-db made for this OS user (root when running as
// root): all privileges, no password. The caller closes it.
func (s *Sandbox) DB(name string) (*sql.DB, error) {
	n, err := s.Node(name)
	if err != nil {
		return nil, err
	}
	return server(n).DB()
}

// StartNode starts one stopped node through its agent and waits until it
// serves: for Galera, the agent recovers its position and the node joins
// the running Primary component (used to bring back a node a drill
// killed); for replication, start it and, for a replica, point it at the
// primary again; the primary n1 comes back read_only (fenced), since a
// replica may have been promoted meanwhile. A Galera node that already runs is only waited for. If
// the start fails the node is stopped again. The node's agent is started
// first if it does not run.
func (s *Sandbox) StartNode(ctx context.Context, name string) error {
	n, err := s.Node(name)
	if err != nil {
		return err
	}
	if err := s.ensureAgent(ctx, n); err != nil {
		return err
	}
	if s.snapshot().isDR(name) {
		return s.startDRNode(ctx, n)
	}
	if s.Kind() == nines.KindReplication {
		return s.startReplicationNode(ctx, n)
	}
	return s.startGaleraNode(ctx, n)
}

// Stop stops the sandbox's HAProxy, if any, then every server of the
// sandbox, last node first, each with SIGTERM and, after StopGrace,
// SIGKILL, and then the node agents. Data
// stays, so a later start brings the same cluster back. The last node of a
// Galera cluster to stop is n1, which Galera then marks safe to bootstrap.
//
// In a netns sandbox every cut is healed first (so the agents answer),
// and once servers and agents are stopped the namespaces, veths and bridge
// are removed.
func (s *Sandbox) Stop(ctx context.Context) error {
	// DR replicas last in the list, so stopped first: they replicate
	// from the cluster, not the other way round.
	nodes := s.snapshot().allNodes()
	var errs []error
	// HAProxy first: applications lose their endpoint with the cluster
	// anyway, and it must not outlive the sandbox.
	if err := s.stopHAProxy(ctx); err != nil {
		errs = append(errs, err)
	}
	m := s.snapshot()
	if m.Netns {
		if err := s.heal(ctx, m); err != nil {
			errs = append(errs, err)
		}
	}
	for i := len(nodes) - 1; i >= 0; i-- {
		if err := s.stopNode(ctx, nodes[i], StopGrace); err != nil {
			errs = append(errs, err)
		}
	}
	if m.NDB != nil {
		if err := s.stopNDB(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	if err := s.stopAgents(ctx); err != nil {
		errs = append(errs, err)
	}
	if err := s.teardownNetwork(ctx); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// StopNode stops one server gracefully, as Stop does.
func (s *Sandbox) StopNode(ctx context.Context, name string) error {
	n, err := s.Node(name)
	if err != nil {
		return err
	}
	return s.stopNode(ctx, n, StopGrace)
}

// stopNode stops a server through its agent, or, when the agent does not
// run or answer, directly: a sandbox must be stoppable whatever state a
// drill left it in.
func (s *Sandbox) stopNode(ctx context.Context, n Node, grace time.Duration) error {
	if agentPid(n) != 0 {
		start := time.Now()
		res, err := s.agentStop(ctx, n, grace)
		var ae *agent.Error
		switch {
		case err == nil && !res.WasRunning:
			return nil
		case err == nil && res.Killed:
			s.logf("killed %s (pid %d): still running %v after SIGTERM", n.Name, res.Pid, grace)
			return nil
		case err == nil:
			s.logf("stopped %s (pid %d) through its agent in %v", n.Name, res.Pid, time.Since(start).Round(time.Millisecond))
			return nil
		case agent.IsFenced(err):
			// Appliances in HA act through this agent: it refuses the
			// sandbox, which has no fencing token. The sandbox owns its
			// servers, so it stops them itself.
			s.logf("stop %s through its agent: %v; stopping it directly", n.Name, err)
		case errors.As(err, &ae):
			return fmt.Errorf("stop %s: %w", n.Name, err)
		default:
			s.logf("stop %s through its agent: %v; stopping it directly", n.Name, err)
		}
	}
	srv := server(n)
	pid, err := srv.Pid()
	if err != nil {
		return fmt.Errorf("stop %s: %w", n.Name, err)
	}
	if pid == 0 {
		return nil
	}
	start := time.Now()
	killed, err := srv.StopPID(ctx, pid, grace)
	if err != nil {
		return err
	}
	if killed {
		s.logf("killed %s (pid %d): still running %v after SIGTERM", n.Name, pid, grace)
	} else {
		s.logf("stopped %s (pid %d) in %v", n.Name, pid, time.Since(start).Round(time.Millisecond))
	}
	return nil
}

// failedStartGrace is the SIGTERM grace for the server whose start
// failed. A joiner in the middle of a state transfer ignores SIGTERM, and
// its half-copied datadir is worth nothing, so it is not given StopGrace.
const failedStartGrace = 5 * time.Second

// abandon stops what a failed start of the whole sandbox left running
// besides its servers: HAProxy, the agents and the namespaces. Left, they
// held the test's lock and ports (a later run waited on the lock for
// good).
func (s *Sandbox) abandon(ctx context.Context, started []string) {
	s.stopAfterFailure(ctx, started)
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*StopGrace)
	defer cancel()
	for _, err := range []error{s.stopHAProxy(ctx), s.stopAgents(ctx), s.teardownNetwork(ctx)} {
		if err != nil {
			s.logf("after the failed start: %v", err)
		}
	}
}

// stopAfterFailure stops the named servers, last started first, even when
// ctx is already cancelled (a Ctrl-C should not leave half a cluster). The
// last one is the one that failed.
func (s *Sandbox) stopAfterFailure(ctx context.Context, names []string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*StopGrace)
	defer cancel()
	grace := failedStartGrace
	for i := len(names) - 1; i >= 0; i-- {
		n, err := s.Node(names[i])
		if err != nil {
			continue
		}
		s.logf("stopping %s after the failed start", n.Name)
		if err := s.stopNode(ctx, n, grace); err != nil {
			s.logf("%v", err)
		}
		grace = StopGrace
	}
}

// agentStop asks the node's agent for a graceful stop.
func (s *Sandbox) agentStop(ctx context.Context, n Node, grace time.Duration) (agent.StopResult, error) {
	c, err := s.agentClient(n)
	if err != nil {
		return agent.StopResult{}, err
	}
	return c.Stop(ctx, agent.StopRequest{GraceSeconds: int((grace + time.Second - 1) / time.Second)})
}

func (s *Sandbox) snapshot() manifest {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.m
}

// server is the mariadbd handle of a node.
func server(n Node) *mariadbd.Server {
	return &mariadbd.Server{
		Name:         n.Name,
		DefaultsFile: n.DefaultsFile,
		Dir:          n.Dir,
		DataDir:      n.DataDir,
		Socket:       n.Socket,
		PidFile:      n.PidFile,
		ErrorLog:     n.ErrorLog,
	}
}

func (s *Sandbox) logf(format string, args ...any) {
	if s.Log == nil {
		return
	}
	fmt.Fprintf(s.Log, "sandbox: "+format+"\n", args...)
}

// saveManifest writes sandbox.json atomically: a torn file would make the
// sandbox impossible to open, and so to stop.
func (s *Sandbox) saveManifest() error {
	b, err := json.MarshalIndent(s.snapshot(), "", "  ")
	if err != nil {
		return fmt.Errorf("write %s: %w", manifestFile, err)
	}
	return writeFileAtomic(filepath.Join(s.dir, manifestFile), append(b, '\n'), 0o644)
}

var clusterNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$`)

// normalize fills defaults and checks the options that do not depend on
// what is on disk.
func (o Options) normalize() (Options, error) {
	if o.Dir == "" {
		return o, errors.New("sandbox: no directory given")
	}
	dir, err := filepath.Abs(o.Dir)
	if err != nil {
		return o, fmt.Errorf("sandbox directory %q: %w", o.Dir, err)
	}
	o.Dir = dir
	if o.Log == nil {
		o.Log = io.Discard
	}
	if o.NodeTimeout <= 0 {
		o.NodeTimeout = DefaultNodeTimeout
	}
	if o.AgentBinary != "" {
		if err := checkExecutable(o.AgentBinary); err != nil {
			return o, fmt.Errorf("sandbox: %w", err)
		}
	}
	if o.Nodes < 0 || o.Nodes > maxNodes {
		return o, fmt.Errorf("sandbox: %d nodes: want 1 to %d", o.Nodes, maxNodes)
	}
	if o.BasePort < 0 || o.BasePort > 65535 {
		return o, fmt.Errorf("sandbox: base port %d is not a TCP port", o.BasePort)
	}
	if o.Listen != "" {
		if _, _, err := net.SplitHostPort(o.Listen); err != nil {
			return o, fmt.Errorf("sandbox: listen address %q: %w", o.Listen, err)
		}
	}
	if o.Netns {
		if err := checkNetnsAllowed(); err != nil {
			return o, err
		}
	}
	if o.ClusterName != "" && !clusterNameRE.MatchString(o.ClusterName) {
		return o, fmt.Errorf("sandbox: cluster name %q: use up to 32 letters, digits, '_' and '-'", o.ClusterName)
	}
	return o, nil
}

// writeFileAtomic replaces path with data so readers never see a partial
// file.
func writeFileAtomic(path string, data []byte, perm os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+"-*")
	if err != nil {
		return fmt.Errorf("write %q: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	_, err = tmp.Write(data)
	if err == nil {
		err = tmp.Chmod(perm)
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		return fmt.Errorf("write %q: %w", path, err)
	}
	return nil
}
