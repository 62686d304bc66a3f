package sandbox

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/nines-project/nines"
	"github.com/nines-project/nines/agent"
)

// An NDB sandbox is the NDB Cluster simulator as real processes:
//
//	DIR/mgmd/       the management server, `nines sandbox ndb mgmd --dir DIR`:
//	                the cluster model (ndbsim.Cluster), the mgm protocol on
//	                P, the simulator's own link for data nodes on P+1,
//	                ndbinfo kept current in every SQL node; mgmd.pid, mgmd.log
//	DIR/dataN/      data node N, `nines sandbox ndb datanode --dir DIR --node-id N`:
//	                a process that heartbeats mgmd over the link; ndbd.pid,
//	                ndbd.log, ndbd.out (its stdout/stderr)
//	DIR/n1, n2 ...  the SQL nodes: real MariaDB servers on P+10+i, API
//	                node ids 100+i, started through their agents like the
//	                other sandboxes' servers
//
// Unlike real NDB the SQL nodes do not share data: each is a separate
// MariaDB server holding only what was written through it. What they do
// share is the cluster's fate: when the cluster cannot serve, writes
// through any of them fail with NDB's errors (see ndb_gate.go).

// NDB defaults.
const (
	DefaultNDBDataNodes = 2
	DefaultNDBReplicas  = 2
	DefaultNDBSQLNodes  = 1
	// DefaultNDBHeartbeat is the simulator's heartbeat interval between
	// data nodes; a node missing 4 in a row is declared dead. Real NDB's
	// HeartbeatIntervalDbDb defaults to 5 s (so ~20 s to declare a hung
	// node dead); the sandbox is 10x faster so drills stay short.
	DefaultNDBHeartbeat = 500 * time.Millisecond
	// ndbMissedHeartbeats is how many intervals without a heartbeat make
	// a node dead, as NDB's 4 missed heartbeats.
	ndbMissedHeartbeats = 4
	ndbSQLPortOffset    = 10 // SQL node i on P+10+i; P is mgm, P+1 the link
	ndbFirstAPIID       = 100
	ndbStopGrace        = 10 * time.Second
)

// RoleNDBSQL is an NDB sandbox's SQL node.
const RoleNDBSQL Role = "ndb-sql"

// Node types in NodeStatus.Type.
const (
	NDBTypeMgm  = "mgm"
	NDBTypeData = "data"
	NDBTypeSQL  = "sql"
)

// NDBOptions describes an NDB sandbox to start. Zero fields take the
// defaults; on an existing DIR the recorded layout wins and a contradicting
// non-zero field is an error.
type NDBOptions struct {
	Dir       string
	DataNodes int // default 2, node ids 1..DataNodes
	Replicas  int // NoOfReplicas, default 2; DataNodes must be a multiple
	SQLNodes  int // default 1
	BasePort  int // mgm port; link P+1, SQL nodes P+10+i and their agents P+200+i, data node N's agent P+300+N
	// Heartbeat is the data nodes' heartbeat interval (default 500 ms);
	// 4 missed make a node dead.
	Heartbeat time.Duration
	// Binary is the nines program run as mgmd, data nodes and agents;
	// as Options.AgentBinary.
	Binary      string
	Log         io.Writer
	NodeTimeout time.Duration
}

// NDBProcess is a simulator process recorded in sandbox.json.
type NDBProcess struct {
	Name    string `json:"name"`
	NodeID  int    `json:"node_id"`
	Dir     string `json:"dir"`
	PidFile string `json:"pid_file"`
	Log     string `json:"log"`
	// Command is exactly what starts the process (argv), to be run by a
	// host agent or by hand; it runs in the foreground.
	Command []string `json:"command"`
	// Data nodes only: the node's host agent (server.ndb_data_node),
	// through which the sandbox and the remediator start the node.
	AgentPort int `json:"agent_port,omitempty"`
	AgentPid  int `json:"agent_pid,omitempty"`
}

// NDBLayout is an NDB sandbox's part of sandbox.json.
type NDBLayout struct {
	Replicas    int        `json:"replicas"`
	MgmPort     int        `json:"mgm_port"`
	LinkPort    int        `json:"link_port"`
	HeartbeatMs int        `json:"heartbeat_ms"`
	MgmNodeID   int        `json:"mgm_node_id"`
	Mgmd        NDBProcess `json:"mgmd"`
	// Mgm is the process serving the mgm port P, run by its host agent
	// on P+300 (ndb_mgm_front.go); mgmd then serves the protocol on P+2.
	// Empty in a sandbox made before it: mgmd serves P itself.
	Mgm       NDBProcess   `json:"mgm"`
	DataNodes []NDBProcess `json:"data_nodes"`
	// SQLNodeIDs are the API node ids of Nodes, in order.
	SQLNodeIDs []int `json:"sql_node_ids"`
}

func (l NDBLayout) heartbeat() time.Duration { return time.Duration(l.HeartbeatMs) * time.Millisecond }

func (l NDBLayout) dataNode(id int) (NDBProcess, error) {
	for _, d := range l.DataNodes {
		if d.NodeID == id {
			return d, nil
		}
	}
	return NDBProcess{}, fmt.Errorf("data node %d: %w (the sandbox has data nodes 1..%d)", id, ErrUnknownNode, len(l.DataNodes))
}

func ndbLayout(dir, bin string, o NDBOptions) NDBLayout {
	l := NDBLayout{Replicas: o.Replicas, MgmPort: o.BasePort, LinkPort: o.BasePort + 1,
		HeartbeatMs: int(o.Heartbeat / time.Millisecond), MgmNodeID: 50}
	d := filepath.Join(dir, "mgmd")
	l.Mgmd = NDBProcess{Name: "mgmd", NodeID: l.MgmNodeID, Dir: d, PidFile: filepath.Join(d, "mgmd.pid"), Log: filepath.Join(d, "mgmd.log"),
		Command: []string{bin, "sandbox", "ndb", "mgmd", "--dir", dir}}
	frontLayout(&l, dir, bin)
	for i := 1; i <= o.DataNodes; i++ {
		name := fmt.Sprintf("data%d", i)
		d := filepath.Join(dir, name)
		l.DataNodes = append(l.DataNodes, NDBProcess{Name: name, NodeID: i, Dir: d, PidFile: filepath.Join(d, "ndbd.pid"),
			Log: filepath.Join(d, "ndbd.log"), Command: []string{bin, "sandbox", "ndb", "datanode", "--dir", dir, "--node-id", strconv.Itoa(i)},
			AgentPort: o.BasePort + ndbDataAgentPortOffset + i})
	}
	for i := 0; i < o.SQLNodes; i++ {
		l.SQLNodeIDs = append(l.SQLNodeIDs, ndbFirstAPIID+i)
	}
	return l
}

// NDB is a running NDB sandbox: the Sandbox plus the simulator's handles.
type NDB struct {
	*Sandbox
}

// StartNDB starts the NDB sandbox in o.Dir, creating it if the directory
// holds none: mgmd, the SQL nodes (provisioned like the other sandboxes'
// servers, ndbinfo installed by mgmd), then every data node not running.
// It returns once every data node is STARTED and every SQL node carries
// ndbinfo. On error what this call started is stopped again.
func StartNDB(ctx context.Context, o NDBOptions) (*NDB, error) {
	asked := o // zero fields: keep what the sandbox recorded
	if o.DataNodes == 0 {
		o.DataNodes = DefaultNDBDataNodes
	}
	if o.Replicas == 0 {
		o.Replicas = DefaultNDBReplicas
	}
	if o.SQLNodes == 0 {
		o.SQLNodes = DefaultNDBSQLNodes
	}
	if o.Heartbeat == 0 {
		o.Heartbeat = DefaultNDBHeartbeat
	}
	switch {
	case o.Replicas < 1 || o.Replicas > 4:
		return nil, fmt.Errorf("sandbox ndb: --replicas %d: NDB allows 1 to 4", o.Replicas)
	case o.DataNodes < 1 || o.DataNodes > 48 || o.DataNodes%o.Replicas != 0:
		return nil, fmt.Errorf("sandbox ndb: --data-nodes %d: want 1 to 48, a multiple of --replicas %d (node groups are equal)", o.DataNodes, o.Replicas)
	case o.SQLNodes < 1 || o.SQLNodes > 9:
		return nil, fmt.Errorf("sandbox ndb: --sql-nodes %d: want 1 to 9", o.SQLNodes)
	case o.Heartbeat < 50*time.Millisecond:
		return nil, fmt.Errorf("sandbox ndb: heartbeat %v: want at least 50ms", o.Heartbeat)
	}
	so, err := Options{Dir: o.Dir, Nodes: asked.SQLNodes, BasePort: o.BasePort, Log: o.Log, NodeTimeout: o.NodeTimeout, AgentBinary: o.Binary}.normalize()
	if err != nil {
		return nil, err
	}
	s, err := prepare(ctx, so, nines.KindNDB, o.SQLNodes)
	if err != nil {
		return nil, err
	}
	m := s.snapshot()
	if m.NDB == nil {
		o.BasePort = m.BasePort
		l := ndbLayout(s.dir, m.AgentBinary, o)
		s.mu.Lock()
		s.m.NDB = &l
		s.mu.Unlock()
	} else if asked.DataNodes != 0 && asked.DataNodes != len(m.NDB.DataNodes) || asked.Replicas != 0 && asked.Replicas != m.NDB.Replicas {
		return nil, fmt.Errorf("start sandbox in %q: it has %d data nodes of %d replicas; use another directory", s.dir, len(m.NDB.DataNodes), m.NDB.Replicas)
	}
	for _, p := range append([]NDBProcess{s.ndb().Mgmd, s.ndb().Mgm}, s.ndb().DataNodes...) {
		if p.Dir == "" {
			continue
		}
		if err := os.MkdirAll(p.Dir, 0o755); err != nil {
			return nil, fmt.Errorf("create %s directory: %w", p.Name, err)
		}
	}
	if err := s.saveManifest(); err != nil {
		return nil, err
	}
	n := &NDB{s}
	start := time.Now()
	if err := n.start(ctx); err != nil {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
		defer cancel()
		if serr := s.Stop(sctx); serr != nil {
			s.logf("after the failed start: %v", serr)
		}
		return nil, err
	}
	s.logf("ndb %q: %d data nodes, %d SQL nodes running in %v", s.ClusterName(), len(s.ndb().DataNodes), len(s.Nodes()), time.Since(start).Round(time.Millisecond))
	return n, nil
}

func (n *NDB) start(ctx context.Context) error {
	s := n.Sandbox
	l := s.ndb()
	if pid := ndbPid(l.Mgmd); pid == 0 {
		if err := probePort(l.modelMgmPort()); err != nil {
			return fmt.Errorf("mgm port %d is in use: %w", l.modelMgmPort(), err)
		}
		if err := probePort(l.LinkPort); err != nil {
			return fmt.Errorf("data node link port %d is in use: %w", l.LinkPort, err)
		}
		if err := spawn(l.Mgmd, filepath.Join(l.Mgmd.Dir, "mgmd.out")); err != nil {
			return err
		}
	}
	if err := n.waitCtl(ctx, "mgmd answering", func(st ndbCtlStatus) bool { return true }); err != nil {
		return err
	}
	if err := n.startMgm(ctx); err != nil {
		return err
	}
	for _, node := range s.Nodes() {
		if _, err := s.startPlain(ctx, node); err != nil {
			return err
		}
	}
	if err := s.provision(ctx); err != nil {
		return err
	}
	if err := s.provisionApp(ctx); err != nil {
		return err
	}
	if err := s.writeApplianceFiles(); err != nil {
		return err
	}
	for _, d := range l.DataNodes {
		if err := n.StartDataNode(ctx, d.NodeID); err != nil {
			return err
		}
	}
	return n.WaitStarted(ctx, s.nodeTimeout)
}

// OpenNDB opens the NDB sandbox in dir.
func OpenNDB(dir string) (*NDB, error) {
	s, err := Open(dir)
	if err != nil {
		return nil, err
	}
	if s.snapshot().NDB == nil {
		return nil, fmt.Errorf("open sandbox %q: it is a %s sandbox, not ndb", s.dir, s.Kind())
	}
	return &NDB{s}, nil
}

func (s *Sandbox) ndb() NDBLayout {
	m := s.snapshot()
	if m.NDB == nil {
		return NDBLayout{}
	}
	return *m.NDB
}

// Layout is the simulator's part of sandbox.json.
func (n *NDB) Layout() NDBLayout { return n.ndb() }

// MgmAddress is the management server's mgm protocol endpoint.
func (n *NDB) MgmAddress() string { return fmt.Sprintf("127.0.0.1:%d", n.ndb().MgmPort) }

// DataNodeCommand is the argv that runs data node id in the foreground.
func (n *NDB) DataNodeCommand(id int) ([]string, error) {
	d, err := n.ndb().dataNode(id)
	return d.Command, err
}

// DataNodePid is the pid of data node id's process, 0 if it does not run.
func (n *NDB) DataNodePid(id int) (int, error) {
	d, err := n.ndb().dataNode(id)
	if err != nil {
		return 0, err
	}
	return ndbPid(d), nil
}

// StartDataNode starts data node id through its host agent (started
// first if it does not run), as the remediator does, and returns once the
// process is up (not once it is STARTED: see WaitStarted). A node the
// cluster saw fail rejoins through a node restart.
func (n *NDB) StartDataNode(ctx context.Context, id int) error {
	d, err := n.ndb().dataNode(id)
	if err != nil {
		return err
	}
	if ndbPid(d) != 0 {
		return nil
	}
	c, err := n.DataNodeAgent(ctx, id)
	if err != nil {
		return err
	}
	res, err := c.Start(ctx, agent.StartRequest{Wait: agent.WaitNone})
	if err != nil {
		return fmt.Errorf("start %s through its agent: %w", d.Name, err)
	}
	n.logf("started %s through its agent (pid %d)", d.Name, res.Pid)
	return nil
}

// WaitStarted waits until every data node is STARTED and every SQL node
// carries ndbinfo.
func (n *NDB) WaitStarted(ctx context.Context, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	return n.waitCtl(ctx, "every data node STARTED and ndbinfo on every SQL node", func(st ndbCtlStatus) bool {
		for _, nd := range st.Nodes {
			if nd.Type == "NDB" && nd.Status != "STARTED" {
				return false
			}
		}
		for _, id := range n.ndb().SQLNodeIDs {
			if !st.SQLReady[strconv.Itoa(id)] {
				return false
			}
		}
		return true
	})
}

// WaitDataNode waits until data node id has the status given (STARTED,
// NO_CONTACT, ...) in mgmd's model.
func (n *NDB) WaitDataNode(ctx context.Context, id int, status string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	return n.waitCtl(ctx, fmt.Sprintf("data node %d %s", id, status), func(st ndbCtlStatus) bool {
		return st.status(id) == status
	})
}

func (n *NDB) waitCtl(ctx context.Context, what string, ok func(ndbCtlStatus) bool) error {
	var last error
	for {
		st, err := n.ctlStatus(ctx)
		if err == nil && ok(st) {
			return nil
		}
		last = err
		if ctx.Err() != nil || sleepCtx(ctx, 100*time.Millisecond) != nil {
			if last == nil {
				last = errors.New("not yet")
			}
			return fmt.Errorf("wait for %s: %w", what, last)
		}
	}
}

// Kill SIGKILLs data node id: a real process death.
func (n *NDB) Kill(id int) error { return n.signalData(id, syscall.SIGKILL, "SIGKILL") }

// Hang SIGSTOPs data node id: it stops heartbeating and is declared dead
// after 4 missed heartbeats.
func (n *NDB) Hang(id int) error { return n.signalData(id, syscall.SIGSTOP, "SIGSTOP") }

// Resume SIGCONTs data node id. One declared dead meanwhile is told to
// shut down and exits, as a node excluded by its peers does.
func (n *NDB) Resume(id int) error { return n.signalData(id, syscall.SIGCONT, "SIGCONT") }

func (n *NDB) signalData(id int, sig syscall.Signal, name string) error {
	d, err := n.ndb().dataNode(id)
	if err != nil {
		return err
	}
	pid := ndbPid(d)
	if pid == 0 {
		return fmt.Errorf("%s: %s does not run", name, d.Name)
	}
	if err := syscall.Kill(pid, sig); err != nil {
		return fmt.Errorf("%s to %s (pid %d): %w", name, d.Name, pid, err)
	}
	n.logf("sent %s to %s (pid %d)", name, d.Name, pid)
	return nil
}

// Fault kinds of `nines sandbox ndb fault`, in the order they matter.
const (
	FaultKill       = "kill"
	FaultHang       = "hang"
	FaultResume     = "resume"
	FaultDataMemory = "datamemory"
	FaultRedoFull   = "redo-full"
	FaultClear      = "clear"
	FaultGCPStop    = "gcp-stop"
	// FaultGCPSlow holds global checkpoints back (no GCP completes)
	// until clear: a long GCP, short of the GCP stop.
	FaultGCPSlow          = "gcp-slow"
	FaultArbitrationSplit = "arbitration-split"
	FaultMgmdDown         = "mgmd-down"
	FaultMgmdUp           = "mgmd-up"
)

// FaultKinds lists every fault kind.
var FaultKinds = []string{FaultKill, FaultHang, FaultResume, FaultDataMemory, FaultRedoFull, FaultClear,
	FaultGCPStop, FaultGCPSlow, FaultArbitrationSplit, FaultMgmdDown, FaultMgmdUp}

// FaultArgs are a fault's arguments. Node 0 means every data node for
// datamemory and redo-full, the last data node for arbitration-split.
type FaultArgs struct {
	Node    int
	Percent int // datamemory: DataMemory used, 0..100
}

// Fault injects a fault. kill, hang and resume signal the node's process
// (Node required); the others are done by mgmd.
func (n *NDB) Fault(ctx context.Context, kind string, a FaultArgs) error {
	needNode := func() error {
		if a.Node == 0 {
			return fmt.Errorf("fault %s: --node is required", kind)
		}
		_, err := n.ndb().dataNode(a.Node)
		return err
	}
	switch kind {
	case FaultKill, FaultHang, FaultResume, FaultGCPStop:
		if err := needNode(); err != nil {
			return err
		}
	case FaultDataMemory:
		if a.Percent < 0 || a.Percent > 100 {
			return fmt.Errorf("fault datamemory: --percent %d: want 0 to 100", a.Percent)
		}
	}
	if a.Node != 0 {
		if _, err := n.ndb().dataNode(a.Node); err != nil {
			return fmt.Errorf("fault %s: %w", kind, err)
		}
	}
	switch kind {
	case FaultKill:
		return n.Kill(a.Node)
	case FaultHang:
		return n.Hang(a.Node)
	case FaultResume:
		return n.Resume(a.Node)
	case FaultDataMemory, FaultRedoFull, FaultClear, FaultGCPStop, FaultGCPSlow, FaultArbitrationSplit, FaultMgmdDown, FaultMgmdUp:
		_, err := n.ctl(ctx, fmt.Sprintf("fault %s %d %d", kind, a.Node, a.Percent))
		return err
	}
	return fmt.Errorf("fault %q: unknown; want one of %s", kind, strings.Join(FaultKinds, ", "))
}

// stopNDB stops the data nodes, then mgmd (the SQL nodes are stopped
// before, as the other sandboxes' servers).
func (s *Sandbox) stopNDB(ctx context.Context) error {
	l := s.ndb()
	var errs []error
	for i := len(l.DataNodes) - 1; i >= 0; i-- {
		if err := s.stopNDBProcess(ctx, l.DataNodes[i]); err != nil {
			errs = append(errs, err)
		}
	}
	if l.hasFront() {
		if err := s.stopNDBProcess(ctx, l.Mgm); err != nil {
			errs = append(errs, err)
		}
	}
	if err := s.stopNDBProcess(ctx, l.Mgmd); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func (s *Sandbox) stopNDBProcess(ctx context.Context, p NDBProcess) error {
	pid := ndbPid(p)
	if pid == 0 {
		return nil
	}
	// A hung (stopped) process cannot act on SIGTERM until continued.
	_ = syscall.Kill(pid, syscall.SIGCONT)
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("stop %s (pid %d): %w", p.Name, pid, err)
	}
	deadline := time.Now().Add(ndbStopGrace)
	for ndbPid(p) == pid {
		if time.Now().After(deadline) || ctx.Err() != nil {
			_ = syscall.Kill(pid, syscall.SIGKILL)
			s.logf("killed %s (pid %d): still running %v after SIGTERM", p.Name, pid, ndbStopGrace)
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	for i := 0; i < 100 && ndbPid(p) == pid; i++ {
		time.Sleep(20 * time.Millisecond)
	}
	s.logf("stopped %s (pid %d)", p.Name, pid)
	return nil
}

// ndbPid is the pid in p's pid file if that process runs p's command
// (checked on /proc, so a stale pid never gets another process
// signalled, and a zombie counts as gone); else 0.
func ndbPid(p NDBProcess) int {
	b, err := os.ReadFile(p.PidFile)
	if err != nil {
		return 0
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return 0
	}
	cmd, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil || len(cmd) == 0 {
		return 0
	}
	args := strings.Split(strings.TrimRight(string(cmd), "\x00"), "\x00")
	// The program path may differ (a rebuilt binary); the arguments not,
	// but for the --initial an agent appends to an initial start.
	if len(args) == len(p.Command)+1 && args[len(args)-1] == "--initial" {
		args = args[:len(args)-1]
	}
	if len(args) != len(p.Command) || strings.Join(args[1:], "\x00") != strings.Join(p.Command[1:], "\x00") {
		return 0
	}
	return pid
}

// processState is /proc's one-letter state of pid (R, S, T stopped ...).
func processState(pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return ""
	}
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 || i+2 >= len(b) {
		return ""
	}
	return string(b[i+2])
}

// spawn runs p's command detached (own session, output to out), so it
// outlives the caller. It is reaped by a goroutine while this process
// lives: an unreaped zombie would still look like a running node.
func spawn(p NDBProcess, out string) error {
	f, err := os.OpenFile(out, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("start %s: %w", p.Name, err)
	}
	defer f.Close()
	cmd := exec.Command(p.Command[0], p.Command[1:]...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", p.Name, err)
	}
	go cmd.Wait()
	return nil
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// ndbStatus puts mgmd and the data nodes before the SQL nodes' entries
// and gives every entry its type and node id. A data node's state is its
// status in mgmd's model (STARTED, STARTING, NO_CONTACT ...), "stopped"
// when its process does not run, with " (hung)" for a stopped process.
func (s *Sandbox) ndbStatus(ctx context.Context, sqlNodes []NodeStatus) []NodeStatus {
	l := s.ndb()
	ctx, cancel := context.WithTimeout(ctx, statusTimeout)
	defer cancel()
	cs, cerr := s.ctlStatus(ctx)
	mg := NodeStatus{Name: l.Mgmd.Name, Type: NDBTypeMgm, NodeID: l.MgmNodeID, MgmPort: l.MgmPort, Pid: ndbPid(l.Mgmd), State: StateStopped}
	switch {
	case mg.Pid == 0:
	case cerr != nil:
		mg.State, mg.Error = StateUnreachable, cerr.Error()
	case l.hasFront() && ndbPid(l.Mgm) == 0:
		mg.State = "running, mgm port closed (its process, mgm/, is stopped)"
	case cs.MgmUp:
		mg.State = "running"
	default:
		mg.State = "running, mgm port closed (mgmd-down)"
	}
	if l.hasFront() {
		mg.AgentURL, mg.AgentPid = l.MgmAgentURL(), agentPid(l.Mgm.agentNode())
	}
	out := []NodeStatus{mg}
	for _, d := range l.DataNodes {
		an := d.agentNode()
		st := NodeStatus{Name: d.Name, Type: NDBTypeData, NodeID: d.NodeID, Pid: ndbPid(d), State: StateStopped, AgentURL: an.AgentURL(), AgentPid: agentPid(an)}
		if st.Pid != 0 {
			st.State = "running"
			if cerr == nil {
				st.State = cs.status(d.NodeID)
			}
			if processState(st.Pid) == "T" {
				st.State += " (hung)"
			}
		}
		out = append(out, st)
	}
	for i, st := range sqlNodes {
		if i < len(l.SQLNodeIDs) {
			st.Type, st.NodeID = NDBTypeSQL, l.SQLNodeIDs[i]
		}
		out = append(out, st)
	}
	return out
}
