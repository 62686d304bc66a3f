// Package ndbsim simulates an NDB Cluster's management server (ndb_mgmd)
// for the sandbox and the tests: a TCP server speaking the mgm text
// protocol (package ndb's messages) over a small in-memory model of the
// cluster. Later work drives the model from data-node processes and fault
// injection through SetStatus, Emit and the Stop/Restart/Start methods.
//
// The model follows the facts file (part A): node groups of NoOfReplicas
// consecutive data nodes, a cluster that fails as a whole when a node
// group loses its last node, start phases walked one per Step.
package ndbsim

import (
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/nines-project/nines/ndb"
)

// Config describes the simulated cluster. Zero values take the defaults
// named on each field.
type Config struct {
	DataNodes int // default 2; node ids 1..DataNodes
	Replicas  int // NoOfReplicas, default 2; DataNodes must be a multiple
	SQLNodes  int // default 1; node ids 100, 101, ...
	MgmNodeID int // default 50
	// Version is what every connected node reports; default 8.0.44.
	Version ndb.Version
	// Host is the address connected nodes report; default 127.0.0.1.
	Host string
	// DataMemoryPages is each data node's DataMemory in 32 KB pages
	// [DOC8 §25.6.16.45]; default 3200 (100 MiB).
	DataMemoryPages int
	// RedoLogParts is each data node's number of redo log parts; default 4.
	RedoLogParts int
	// RedoPartBytes is one redo log part's size; default 1 GiB, the
	// facts' NoOfFragmentLogFiles default 16 × 4 × 16 MB (A.4).
	RedoPartBytes int64
	// Now is the clock for uptimes; default time.Now.
	Now func() time.Time
	// BackupDataDir returns data node id's BackupDataDir; when set, a
	// completed backup writes each started data node's three files under
	// it (backup_files.go). Nil or "" writes none.
	BackupDataDir func(id int) string
	// StartPartialTimeout is how long a system restart waits for every
	// data node before it goes on with one node of each node group (a
	// partial start); default 30 s, NDB's StartPartialTimeout default
	// of 30000 ms (the manual's data node parameters; not in the facts
	// file). Without a node of every group it waits for ever, as NDB
	// does: the group's data is nowhere else.
	StartPartialTimeout time.Duration
}

func (c *Config) defaults() error {
	if c.DataNodes == 0 {
		c.DataNodes = 2
	}
	if c.Replicas == 0 {
		c.Replicas = 2
	}
	if c.SQLNodes == 0 {
		c.SQLNodes = 1
	}
	if c.MgmNodeID == 0 {
		c.MgmNodeID = 50
	}
	if c.Version == 0 {
		c.Version = ndb.MakeVersion(8, 0, 44)
	}
	if c.Host == "" {
		c.Host = "127.0.0.1"
	}
	if c.DataMemoryPages == 0 {
		c.DataMemoryPages = 3200
	}
	if c.RedoLogParts == 0 {
		c.RedoLogParts = 4
	}
	if c.RedoPartBytes == 0 {
		c.RedoPartBytes = 1 << 30
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.StartPartialTimeout == 0 {
		c.StartPartialTimeout = 30 * time.Second
	}
	if c.Replicas < 1 || c.Replicas > 4 || c.DataNodes%c.Replicas != 0 {
		// NDB allows 1 to 4 replicas and equal node groups [DOC8 §25.2.2].
		return fmt.Errorf("ndbsim: %d data nodes cannot form node groups of %d replicas", c.DataNodes, c.Replicas)
	}
	if c.DataNodes >= c.MgmNodeID || c.MgmNodeID >= 100 {
		return fmt.Errorf("ndbsim: data nodes 1..%d, mgm node %d and SQL nodes from 100 overlap", c.DataNodes, c.MgmNodeID)
	}
	return nil
}

// Errors of the model, with ndb_mgmd's texts (MgmtSrvr error table).
var (
	ErrNoSuchNode = errors.New("No such node")
	// ErrWouldCrash: stopping the node would leave its node group empty.
	// The manual: "STOP fails if it would leave a node group empty unless
	// -f" [DOC8 §25.6.1]. Text and code 5028 are ndb_mgmd's
	// NODE_SHUTDOWN_WOULD_CAUSE_SYSTEM_CRASH (MgmtSrvr.hpp); the facts do
	// not quote them, so they are an assumption.
	ErrWouldCrash = &CodeError{Code: 5028, Text: "Node shutdown would cause system crash"}
	// ErrNoContact: START of a node whose process is not waiting for it
	// (NO_CONTACT_WITH_PROCESS in MgmtSrvr; assumed text).
	ErrNoContact = &CodeError{Code: 5002, Text: "No contact with the process (dead ?)."}
	// ErrBackupExists: a backup id used before (ndberror 1350; the CLI
	// shows "Backup failed: file already exists" [DOC8 §25.6.8.2]).
	ErrBackupExists = &CodeError{Code: 1350, Text: "Backup failed: file already exists (use 'START BACKUP <backup id>')"}
	// ErrClusterDown: no backup while a node group has no started node.
	ErrClusterDown = &CodeError{Code: 1308, Text: "Backup failed: cluster not started"}
)

// CodeError is an error ndb_mgmd reports with a number.
type CodeError struct {
	Code int
	Text string
}

func (e *CodeError) Error() string { return e.Text }

// node is one node id's state in the model.
type node struct {
	ndb.Node
	initial bool // last start was --initial (RESTART -i)
	noStart bool // stopped with RESTART -n: waits for START

	// Data nodes only: what ndbinfo shows of them (see DataNode).
	started   time.Time // when the process last started
	configGen int       // config generation the node last started with
	dataUsed  int       // DataMemory pages in use
	redoUsed  []int64   // bytes used per redo log part
	restarted bool      // has failed or restarted since the cluster began
	ordered   bool      // last went down on a STOP, not a failure
	absent    bool      // not started since MarkAbsent: its first start is the cluster's
	// sysRestart: the node began while no data node was alive, so its
	// start is part of a system restart (see Step).
	sysRestart bool
	arb        *Arbitration // a forced view of arbitration, nil when healthy
}

// Backup is a backup the model knows.
type Backup struct {
	ID        int
	Completed bool
	Aborted   bool
	// Nodes are the data nodes that took part (STARTED or in single user
	// mode when it completed), ascending.
	Nodes []int
	// FilesError says why a node's files could not be written; the
	// backup was then aborted, as NDB aborts a backup a node cannot
	// write.
	FilesError string
}

// Cluster is the in-memory cluster. Its methods are safe for concurrent
// use; every state change is sent to the listeners as ndb_mgmd would.
type Cluster struct {
	cfg Config

	mu                sync.Mutex
	nodes             map[int]*node
	nextDyn           int // next dynamic id handed to a data node that starts
	backups           map[int]*Backup
	lastBackup        int       // highest backup id used
	lastBackupStarted int       // id of the most recently started backup
	singleUser        int       // API node allowed in single user mode, 0 when off
	configGen         int       // the management server's config generation
	gci               int       // last global checkpoint completed
	gcpStalled        bool      // a fault holds global checkpoints back
	sysSince          time.Time // when the first node of the system restart under way began
	emit              func(ndb.Event)
}

// NewCluster builds a started cluster: every data node STARTED, the mgm
// node and every SQL node CONNECTED.
func NewCluster(cfg Config) (*Cluster, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	c := &Cluster{cfg: cfg, nodes: map[int]*node{}, backups: map[int]*Backup{}, configGen: 1, emit: func(ndb.Event) {}}
	for i := 0; i < cfg.DataNodes; i++ {
		id := i + 1
		c.nodes[id] = &node{Node: ndb.Node{ID: id, Type: ndb.TypeNDB, NodeGroup: i / cfg.Replicas},
			started: cfg.Now(), configGen: c.configGen, redoUsed: make([]int64, cfg.RedoLogParts)}
		c.up(c.nodes[id])
		// connect_count counts reconnections; a node up since the
		// cluster started shows 0, as in the facts' transcript.
		c.nodes[id].ConnectCount = 0
	}
	c.nodes[cfg.MgmNodeID] = &node{Node: ndb.Node{ID: cfg.MgmNodeID, Type: ndb.TypeMGM, Status: ndb.StatusConnected,
		Version: cfg.Version, MySQLVersion: cfg.Version, Address: cfg.Host}}
	for i := 0; i < cfg.SQLNodes; i++ {
		id := 100 + i
		c.nodes[id] = &node{Node: ndb.Node{ID: id, Type: ndb.TypeAPI, Status: ndb.StatusConnected,
			Version: cfg.Version, MySQLVersion: cfg.Version, Address: cfg.Host}}
	}
	return c, nil
}

// Config returns the cluster's configuration with defaults filled in.
func (c *Cluster) Config() Config { return c.cfg }

// up marks a data node STARTED with a fresh dynamic id.
func (c *Cluster) up(n *node) {
	c.nextDyn++
	n.Status, n.StartPhase, n.DynamicID = ndb.StatusStarted, 0, c.nextDyn
	n.ordered, n.sysRestart = false, false
	n.Version, n.MySQLVersion, n.Address = c.cfg.Version, c.cfg.Version, c.cfg.Host
	if !n.absent {
		n.ConnectCount++
	}
	n.absent = false
	if c.singleUser != 0 {
		n.Status = ndb.StatusSingleUser
	}
}

// down marks a data node gone: no contact, no version, no address, as
// `get status` shows an unconnected node. Its node group is kept, since
// the config still places it (the operator reads it from config [OPER]).
func down(n *node) {
	n.Status, n.StartPhase, n.DynamicID = ndb.StatusNoContact, 0, 0
	n.Version, n.MySQLVersion, n.Address = 0, 0, ""
}

// Nodes returns every node as `get status` lists them: data nodes, then
// the management node, then API nodes, each by id.
func (c *Cluster) Nodes() []ndb.Node {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.nodesLocked()
}

func (c *Cluster) nodesLocked() []ndb.Node {
	out := make([]ndb.Node, 0, len(c.nodes))
	for _, n := range c.nodes {
		out = append(out, n.Node)
	}
	ndb.SortNodes(out)
	return out
}

// Node returns one node's state.
func (c *Cluster) Node(id int) (ndb.Node, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	n, ok := c.nodes[id]
	if !ok {
		return ndb.Node{}, false
	}
	return n.Node, true
}

// LastStartInitial reports whether data node id's last start was initial.
func (c *Cluster) LastStartInitial(id int) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	n, ok := c.nodes[id]
	return ok && n.initial
}

// StartKind names how data node id is starting, as its log says it:
// "system restart", "initial node restart" or "node restart".
func (c *Cluster) StartKind(id int) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	n, ok := c.nodes[id]
	if !ok {
		return ""
	}
	switch startType(n) {
	case 1:
		return "system restart"
	case 3:
		return "initial node restart"
	}
	return "node restart"
}

// SetEmitter sets where events go (the server's listeners). Called with
// the model's lock held: it must not block or call back into the Cluster.
func (c *Cluster) SetEmitter(f func(ndb.Event)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.emit = f
}

// Emit sends an event to the listeners, for drivers outside the model
// (data-node processes, fault injection).
func (c *Cluster) Emit(ev ndb.Event) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.emit(ev)
}

// master is the data node with the lowest non-zero dynamic id, the
// source of cluster-wide events.
func (c *Cluster) master() int {
	return ndb.Master(c.nodesLocked())
}

func (c *Cluster) source() int {
	if m := c.master(); m != 0 {
		return m
	}
	return c.cfg.MgmNodeID
}

// SetStatus forces a node's status and start phase, as a data-node
// process or a fault would. A data node leaving service is reported as a
// node failure (NODE_FAILREP from the master); one reaching STARTED as
// NDBStartCompleted; a phase change as StartPhaseCompleted.
func (c *Cluster) SetStatus(id int, st ndb.NodeStatus, phase int) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	n, ok := c.nodes[id]
	if !ok {
		return fmt.Errorf("set status of node %d: %w", id, ErrNoSuchNode)
	}
	was := n.Status
	switch {
	case st == ndb.StatusNoContact:
		c.fail(n)
	case st == ndb.StatusStarted && n.Type == ndb.TypeNDB && was != ndb.StatusStarted:
		c.up(n)
		c.emit(ndb.Event{Type: ndb.EventNDBStartCompleted, SourceNodeID: id}.With("version", int(c.cfg.Version)))
	case st == ndb.StatusConnected && n.Type != ndb.TypeNDB:
		n.Status, n.Version, n.MySQLVersion, n.Address = st, c.cfg.Version, c.cfg.Version, c.cfg.Host
		n.ConnectCount++
		c.emit(ndb.Event{Type: ndb.EventConnected, SourceNodeID: c.cfg.MgmNodeID}.With("node", id))
	default:
		n.Status, n.StartPhase = st, phase
		if st == ndb.StatusStarting && phase > 0 {
			c.emit(ndb.Event{Type: ndb.EventStartPhaseCompleted, SourceNodeID: id}.With("phase", phase, "starttype", startType(n)))
		}
	}
	return nil
}

// StopOrdered reports whether data node id is down because a STOP
// ordered it, rather than failed (killed, excluded, or its cluster lost
// a node group), so a driver can tell a graceful stop from a forced one.
func (c *Cluster) StopOrdered(id int) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	n, ok := c.nodes[id]
	return ok && n.ordered && n.Status == ndb.StatusNoContact
}

// ForcedStop is data node id shutting itself down on error code (e.g.
// ndb.ExitGCPStop): the node reports NDBStopForced as it goes, then the
// survivors see a node failure as for any lost node (SetStatus
// NO_CONTACT). A node already out (failed or stopped) only reports the
// event: its process learnt late that it was excluded and ended then.
func (c *Cluster) ForcedStop(id, code int) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	n, ok := c.nodes[id]
	if !ok || n.Type != ndb.TypeNDB {
		return fmt.Errorf("forced stop of data node %d: %w", id, ErrNoSuchNode)
	}
	c.emit(ndb.ForcedStop(id, code))
	c.fail(n)
	return nil
}

// fail takes a data node out as a node failure: the survivors' master
// reports NODE_FAILREP; a node group left empty takes the whole cluster
// down, since NDB cannot serve without every node group [DOC8 §25.2.2].
func (c *Cluster) fail(n *node) {
	if n.Type != ndb.TypeNDB {
		n.Status, n.Version, n.MySQLVersion, n.Address = ndb.StatusNoContact, 0, 0, ""
		c.emit(ndb.Event{Type: ndb.EventDisconnected, SourceNodeID: c.cfg.MgmNodeID}.With("node", n.ID))
		return
	}
	if n.Status == ndb.StatusNoContact {
		return
	}
	down(n)
	n.restarted = true
	src := c.source()
	c.emit(ndb.Event{Type: ndb.EventNodeFailRep, SourceNodeID: src}.With("failed_node", n.ID, "failure_state", 0))
	c.emit(ndb.Event{Type: ndb.EventDisconnected, SourceNodeID: src}.With("node", n.ID))
	if !c.groupAlive(n.NodeGroup) {
		for _, o := range c.sortedData() {
			if o.Status != ndb.StatusNoContact && o.Status != ndb.StatusNotStarted {
				c.fail(o)
			}
		}
	}
}

// alive: the node holds its data and takes part in the cluster.
func alive(n *node) bool {
	return n.Status == ndb.StatusStarted || n.Status == ndb.StatusSingleUser || n.Status == ndb.StatusShuttingDown
}

func (c *Cluster) groupAlive(g int) bool {
	for _, n := range c.nodes {
		if n.Type == ndb.TypeNDB && n.NodeGroup == g && alive(n) {
			return true
		}
	}
	return false
}

// wouldEmptyGroup: taking ids out leaves some node group with no live node.
func (c *Cluster) wouldEmptyGroup(ids []int) bool {
	out := map[int]bool{}
	for _, id := range ids {
		out[id] = true
	}
	live := map[int]int{}
	had := map[int]bool{}
	for _, n := range c.nodes {
		if n.Type != ndb.TypeNDB || !alive(n) {
			continue
		}
		had[n.NodeGroup] = true
		if !out[n.ID] {
			live[n.NodeGroup]++
		}
	}
	for g := range had {
		if live[g] == 0 {
			return true
		}
	}
	return false
}

func (c *Cluster) sortedData() []*node {
	var out []*node
	for _, n := range c.nodes {
		if n.Type == ndb.TypeNDB {
			out = append(out, n)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

func (c *Cluster) dataNodes(ids []int) ([]*node, error) {
	var out []*node
	for _, id := range ids {
		n, ok := c.nodes[id]
		if !ok || n.Type != ndb.TypeNDB {
			return nil, fmt.Errorf("node %d: %w", id, ErrNoSuchNode)
		}
		out = append(out, n)
	}
	return out, nil
}

// StopOptions are STOP's and RESTART's flags.
type StopOptions struct {
	Abort   bool // -a
	Force   bool // -f
	Initial bool // -i (restart only)
	NoStart bool // -n (restart only)
}

// Stop shuts data nodes down (ndb_mgm `N STOP`). Refused with
// ErrWouldCrash when a node group would be left empty, unless Force, in
// which case the cluster fails as a whole. Returns how many nodes stopped.
func (c *Cluster) Stop(ids []int, o StopOptions) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	ns, err := c.dataNodes(ids)
	if err != nil {
		return 0, err
	}
	if !o.Force && c.wouldEmptyGroup(ids) {
		return 0, ErrWouldCrash
	}
	stopped := 0
	for _, n := range ns {
		if n.Status == ndb.StatusNoContact {
			continue
		}
		// NDBStopStarted stoptype 0 = stop, 2 = restart (abort adds 1 in
		// ndb_mgmd's StopReq; only the text differs for listeners).
		c.emit(ndb.Event{Type: ndb.EventNDBStopStarted, SourceNodeID: n.ID}.With("stoptype", 0))
		c.emit(ndb.Event{Type: ndb.EventNDBStopCompleted, SourceNodeID: n.ID}.With("action", 1, "signum", 0))
		n.ordered = true
		c.fail(n)
		stopped++
	}
	return stopped, nil
}

// Restart restarts data nodes (ndb_mgm `N RESTART [-n] [-i] [-a] [-f]`):
// each goes down, then to NOT_STARTED with NoStart (waiting for Start) or
// to STARTING phase 0, walked to STARTED by Step. When a node group would
// be left empty it is refused unless Force, which restarts every data
// node, as ndb_mgmd restarts the whole DB then [SRV-7.6].
func (c *Cluster) Restart(ids []int, o StopOptions) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	ns, err := c.dataNodes(ids)
	if err != nil {
		return 0, err
	}
	if c.wouldEmptyGroup(ids) {
		if !o.Force {
			return 0, ErrWouldCrash
		}
		ns = c.sortedData()
	}
	// All go down before any comes back, so a node already starting is
	// not failed again by a node group emptied later in the loop.
	for _, n := range ns {
		if n.Status != ndb.StatusNoContact {
			c.emit(ndb.Event{Type: ndb.EventNDBStopStarted, SourceNodeID: n.ID}.With("stoptype", 2))
		}
		c.fail(n)
	}
	for _, n := range ns {
		n.initial = o.Initial
		c.begin(n, o.NoStart)
	}
	return len(ns), nil
}

// begin brings a stopped node's process back: connected but not started
// with noStart, else starting at phase 0.
func (c *Cluster) begin(n *node, noStart bool) {
	n.Version, n.MySQLVersion, n.Address = c.cfg.Version, c.cfg.Version, c.cfg.Host
	// A new process: its uptime counts from here, through the start
	// phases [A.1.1 nodes], and it reads the current configuration.
	n.started, n.configGen, n.restarted = c.cfg.Now(), c.configGen, true
	n.noStart, n.ordered = noStart, false
	if noStart {
		n.Status, n.StartPhase = ndb.StatusNotStarted, 0
		return
	}
	n.Status, n.StartPhase = ndb.StatusStarting, 0
	// With no data node alive there is no cluster to join: the node
	// takes part in a system restart, from its own checkpoint and redo.
	// A cluster's first start (MarkAbsent) is left as it was.
	n.sysRestart = false
	if !n.absent && !c.anyAlive() {
		n.sysRestart = true
		if c.sysSince.IsZero() {
			c.sysSince = c.cfg.Now()
		}
	}
	c.emit(ndb.Event{Type: ndb.EventNDBStartStarted, SourceNodeID: n.ID}.With("version", int(c.cfg.Version)))
}

// Start starts a data node that waits in NOT_STARTED (after RESTART -n),
// as ndb_mgm `N START`. Any other state gives ErrNoContact.
func (c *Cluster) Start(id int) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	ns, err := c.dataNodes([]int{id})
	if err != nil {
		return err
	}
	if ns[0].Status != ndb.StatusNotStarted {
		return ErrNoContact
	}
	c.begin(ns[0], false)
	return nil
}

// StartAll starts every data node waiting in NOT_STARTED; returns how many.
func (c *Cluster) StartAll() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	started := 0
	for _, n := range c.sortedData() {
		if n.Status == ndb.StatusNotStarted {
			c.begin(n, false)
			started++
		}
	}
	return started
}

// Boot brings a data node whose process was gone back as a normal start,
// as a restarted ndbd would (initial for --initial).
func (c *Cluster) Boot(id int, initial bool) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	ns, err := c.dataNodes([]int{id})
	if err != nil {
		return err
	}
	if ns[0].Status != ndb.StatusNoContact {
		return fmt.Errorf("boot node %d: it is %s, not %s", id, ns[0].Status, ndb.StatusNoContact)
	}
	ns[0].initial = initial
	c.begin(ns[0], false)
	return nil
}

// Step advances every STARTING data node by one start phase (in the
// order of ndb.StartPhases); after the last it is STARTED. Returns how
// many nodes are still starting. The server calls it on a ticker; tests
// call it directly.
//
// Nodes of a system restart hold after phase 1 (connections and
// heartbeats; phase 2 is where NDBCNTR checks the nodes [facts A.4])
// until the restart may go on: every data node is there, or
// StartPartialTimeout has passed and every node group has a node (a
// partial system restart). They then walk the phases together and reach
// STARTED in the same step, node groups formed again, so the cluster
// serves only once every group has a node, as in NDB.
func (c *Cluster) Step() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	ready := c.sysRestartReady()
	starting := 0
	for _, n := range c.sortedData() {
		if n.Status != ndb.StatusStarting {
			continue
		}
		if n.sysRestart && n.StartPhase >= 1 && !ready {
			starting++
			continue
		}
		i := sort.SearchInts(ndb.StartPhases, n.StartPhase)
		c.emit(ndb.Event{Type: ndb.EventStartPhaseCompleted, SourceNodeID: n.ID}.With("phase", n.StartPhase, "starttype", startType(n)))
		if i+1 >= len(ndb.StartPhases) {
			c.up(n)
			c.emit(ndb.Event{Type: ndb.EventNDBStartCompleted, SourceNodeID: n.ID}.With("version", int(c.cfg.Version)))
			continue
		}
		n.StartPhase = ndb.StartPhases[i+1]
		starting++
	}
	if !c.sysRestartUnderWay() {
		c.sysSince = time.Time{}
	}
	return starting
}

// anyAlive: some data node holds its data and takes part in the cluster.
func (c *Cluster) anyAlive() bool {
	for _, n := range c.nodes {
		if n.Type == ndb.TypeNDB && alive(n) {
			return true
		}
	}
	return false
}

func (c *Cluster) sysRestartUnderWay() bool {
	for _, n := range c.nodes {
		if n.Type == ndb.TypeNDB && n.sysRestart && n.Status == ndb.StatusStarting {
			return true
		}
	}
	return false
}

// sysRestartReady: the system restart under way may pass phase 1. Every
// data node through phase 1, or, after StartPartialTimeout, a node of
// every node group, and none of its nodes still before phase 1.
func (c *Cluster) sysRestartReady() bool {
	all, groups, covered := true, map[int]bool{}, map[int]bool{}
	for _, n := range c.nodes {
		if n.Type != ndb.TypeNDB {
			continue
		}
		groups[n.NodeGroup] = true
		switch {
		case n.sysRestart && n.Status == ndb.StatusStarting && n.StartPhase < 1:
			// Not through phase 1 yet: the others wait for it, so that
			// every node goes on together.
			return false
		case n.sysRestart && n.Status == ndb.StatusStarting:
			covered[n.NodeGroup] = true
		default:
			all = false
		}
	}
	if all {
		return true
	}
	if len(covered) < len(groups) || c.sysSince.IsZero() {
		return false
	}
	return c.cfg.Now().Sub(c.sysSince) >= c.cfg.StartPartialTimeout
}

// startType is the StartPhaseCompleted starttype: NodeState's
// ST_SYSTEM_RESTART 1, ST_NODE_RESTART 2, ST_INITIAL_NODE_RESTART 3 (ndb
// NodeState.hpp; not in the facts).
func startType(n *node) int {
	switch {
	case n.sysRestart:
		return 1
	case n.initial:
		return 3
	}
	return 2
}

// EnterSingleUser puts every live data node in single user mode for API
// node api. Refused for an id that is not an API node.
func (c *Cluster) EnterSingleUser(api int) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	n, ok := c.nodes[api]
	if !ok || n.Type != ndb.TypeAPI {
		return fmt.Errorf("enter single user mode for node %d: %w", api, ErrNoSuchNode)
	}
	c.singleUser = api
	for _, d := range c.sortedData() {
		if d.Status == ndb.StatusStarted {
			d.Status = ndb.StatusSingleUser
		}
	}
	// SingleUser type 1 = entering (ndb_logevent_SingleUser; assumed).
	c.emit(ndb.Event{Type: ndb.EventSingleUser, SourceNodeID: c.source()}.With("type", 1, "node_id", api))
	return nil
}

// ExitSingleUser returns the data nodes from single user mode.
func (c *Cluster) ExitSingleUser() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.singleUser = 0
	for _, d := range c.sortedData() {
		if d.Status == ndb.StatusSingleUser {
			d.Status = ndb.StatusStarted
		}
	}
	c.emit(ndb.Event{Type: ndb.EventSingleUser, SourceNodeID: c.source()}.With("type", 2, "node_id", 0))
}

// BeginBackup allocates a backup id (the next after the highest used, or
// id when given) and reports BackupStarted. The cluster must be able to
// serve: every node group with a live node.
func (c *Cluster) BeginBackup(id int) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, n := range c.nodes {
		if n.Type == ndb.TypeNDB && !c.groupAlive(n.NodeGroup) {
			return 0, ErrClusterDown
		}
	}
	if id == 0 {
		id = c.lastBackup + 1
		for c.backups[id] != nil {
			id++
		}
	} else if c.backups[id] != nil {
		return 0, ErrBackupExists
	}
	c.backups[id] = &Backup{ID: id}
	c.lastBackupStarted = id
	if id > c.lastBackup {
		c.lastBackup = id
	}
	c.emit(ndb.Event{Type: ndb.EventBackupStarted, SourceNodeID: c.source()}.With("starting_node", c.cfg.MgmNodeID, "backup_id", id))
	return id, nil
}

// FinishBackup completes a running backup and reports BackupCompleted;
// false if it was not running.
func (c *Cluster) FinishBackup(id int) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	b := c.backups[id]
	if b == nil || b.Completed || b.Aborted {
		return false
	}
	for _, n := range c.sortedData() {
		if n.Status != ndb.StatusStarted && n.Status != ndb.StatusSingleUser {
			continue
		}
		b.Nodes = append(b.Nodes, n.ID)
		if c.cfg.BackupDataDir == nil {
			continue
		}
		if dir := c.cfg.BackupDataDir(n.ID); dir != "" {
			if err := writeBackupFiles(dir, id, n); err != nil {
				// The facts give no error code for a failed backup
				// write; 1321's event shape is reused with error 0.
				b.Aborted, b.FilesError = true, err.Error()
				c.emit(ndb.Event{Type: ndb.EventBackupAborted, SourceNodeID: c.source()}.With("starting_node", c.cfg.MgmNodeID, "backup_id", id, "error", 0))
				return false
			}
		}
	}
	b.Completed = true
	c.emit(ndb.Event{Type: ndb.EventBackupCompleted, SourceNodeID: c.source()}.With(
		"starting_node", c.cfg.MgmNodeID, "backup_id", id, "start_gci", 0, "stop_gci", 0,
		"n_records", 0, "n_log_records", 0, "n_bytes", 0, "n_log_bytes", 0))
	return true
}

// AbortBackup aborts a running backup: BackupAborted with error 1321
// "Backup aborted by user request" [DOC8 §25.6.8.2]. ndb_mgmd answers Ok
// whether or not the backup runs (the CLI says "Abort of backup n
// ordered"), so this returns only whether something was aborted. The
// event is sent once, by the master: NDB's Backup::masterAbort reports
// NDB_LE_BackupAborted (client, backup id, error) before it orders the
// other nodes to abort; the CLI's "Node 1: Backup 3 started from 5 has
// been aborted" [facts A.3] is that one event, printed by the master.
func (c *Cluster) AbortBackup(id int) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	b := c.backups[id]
	if b == nil || b.Completed || b.Aborted {
		return false
	}
	b.Aborted = true
	c.emit(ndb.Event{Type: ndb.EventBackupAborted, SourceNodeID: c.source()}.With("starting_node", c.cfg.MgmNodeID, "backup_id", id, "error", 1321))
	return true
}

// Backup returns a backup's state.
func (c *Cluster) Backup(id int) (Backup, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	b, ok := c.backups[id]
	if !ok {
		return Backup{}, false
	}
	out := *b
	out.Nodes = append([]int(nil), b.Nodes...)
	return out, true
}

// dataIDs lists the data node ids, ascending.
func (c *Cluster) dataIDs() []int {
	c.mu.Lock()
	defer c.mu.Unlock()
	var ids []int
	for _, n := range c.sortedData() {
		ids = append(ids, n.ID)
	}
	return ids
}

// reserve marks a free node id of type t as connected.
func (c *Cluster) reserve(want int, t ndb.NodeType) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	free := func(n *node) bool { return n.Type == t && n.Status == ndb.StatusNoContact }
	if want == 0 {
		for _, n := range c.nodesLocked() {
			if free(c.nodes[n.ID]) {
				want = n.ID
				break
			}
		}
		if want == 0 {
			return 0, fmt.Errorf("No free node id found for %s.", t.Role())
		}
	}
	n, ok := c.nodes[want]
	if !ok || n.Type != t {
		return 0, fmt.Errorf("No node defined with id=%d in config file.", want)
	}
	if !free(n) {
		return 0, fmt.Errorf("Id %d already allocated by another node.", want)
	}
	if t != ndb.TypeNDB {
		n.Status, n.Version, n.MySQLVersion, n.Address = ndb.StatusConnected, c.cfg.Version, c.cfg.Version, c.cfg.Host
		n.ConnectCount++
	}
	return want, nil
}

// DataNode is what a data node's ndbinfo rows are made from.
type DataNode struct {
	ID, NodeGroup int
	Status        ndb.NodeStatus
	StartPhase    int
	DynamicID     int
	// Running: the process is up and part of the cluster (starting,
	// started, single user or stopping), so it has ndbinfo rows; a
	// stopped node, or one waiting in NOT_STARTED, has none [A.1.0].
	Running bool
	// Restarted: the node failed or restarted since the cluster began.
	Restarted        bool
	Uptime           time.Duration
	ConfigGeneration int
	DataMemoryPages  int // total, 32 KB pages
	DataMemoryUsed   int // pages in use
	RedoParts        []RedoPart
	// Arbitration is a forced view of arbitration (a fault); nil when
	// the node agrees with the cluster.
	Arbitration *Arbitration
}

// Arbitration is one data node's view of arbitration, as
// ndbinfo.membership shows it [A.1.1]. State is the base code: 0
// ARBIT_NULL .. 6 ARBIT_RUN .. 8 ARBIT_CRASH.
type Arbitration struct {
	Arbitrator int
	Ticket     string // hex
	State      int
	Connected  bool
}

// SetArbitration forces data node id's view of arbitration, as an
// arbitration split does (nodes disagreeing on arbitrator, ticket or
// state [A.4]); nil restores the cluster's common view.
func (c *Cluster) SetArbitration(id int, a *Arbitration) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	ns, err := c.dataNodes([]int{id})
	if err != nil {
		return err
	}
	if a != nil {
		cp := *a
		a = &cp
	}
	ns[0].arb = a
	return nil
}

// RedoPart is one redo log part's space.
type RedoPart struct{ Total, Used int64 }

// State is the whole model at one instant, what the ndbinfo syncer
// writes from.
type State struct {
	Nodes []ndb.Node // every node, as `get status` lists them
	Data  []DataNode // data nodes, by id
	// LastBackupID is the most recently started backup, 0 if none
	// (ndbinfo.backup_id: after backups 1,5,6,3 it is 3 [A.1.1]).
	LastBackupID  int
	BackupRunning bool
}

// State returns the model's state under one lock.
func (c *Cluster) State() State {
	c.mu.Lock()
	defer c.mu.Unlock()
	st := State{Nodes: c.nodesLocked(), Data: c.dataNodesLocked(), LastBackupID: c.lastBackupStarted}
	for _, b := range c.backups {
		if !b.Completed && !b.Aborted {
			st.BackupRunning = true
		}
	}
	return st
}

func (c *Cluster) dataNodesLocked() []DataNode {
	now := c.cfg.Now()
	var out []DataNode
	for _, n := range c.sortedData() {
		d := DataNode{ID: n.ID, NodeGroup: n.NodeGroup, Status: n.Status, StartPhase: n.StartPhase, DynamicID: n.DynamicID,
			Running:   n.Status == ndb.StatusStarting || alive(n),
			Restarted: n.restarted, Uptime: now.Sub(n.started), ConfigGeneration: n.configGen,
			DataMemoryPages: c.cfg.DataMemoryPages, DataMemoryUsed: n.dataUsed}
		if n.arb != nil {
			a := *n.arb
			d.Arbitration = &a
		}
		for _, u := range n.redoUsed {
			d.RedoParts = append(d.RedoParts, RedoPart{Total: c.cfg.RedoPartBytes, Used: u})
		}
		out = append(out, d)
	}
	return out
}

// SetDataMemoryUsed sets how many DataMemory pages data node id uses, as
// rows written or a DataMemory-pressure fault would. It may not exceed
// the node's DataMemory.
func (c *Cluster) SetDataMemoryUsed(id, pages int) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	ns, err := c.dataNodes([]int{id})
	if err != nil {
		return err
	}
	if pages < 0 || pages > c.cfg.DataMemoryPages {
		return fmt.Errorf("set DataMemory of node %d: %d pages outside 0..%d", id, pages, c.cfg.DataMemoryPages)
	}
	ns[0].dataUsed = pages
	return nil
}

// SetRedoUsed sets the bytes used in one redo log part of data node id.
func (c *Cluster) SetRedoUsed(id, part int, used int64) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	ns, err := c.dataNodes([]int{id})
	if err != nil {
		return err
	}
	if part < 0 || part >= len(ns[0].redoUsed) || used < 0 || used > c.cfg.RedoPartBytes {
		return fmt.Errorf("set redo of node %d part %d: %d bytes outside 0..%d or no such part", id, part, used, c.cfg.RedoPartBytes)
	}
	ns[0].redoUsed[part] = used
	return nil
}

// SetConfigGeneration installs a new configuration generation on the
// management server. Data nodes take it on their next start, so
// ndbinfo.nodes shows an unfinished rolling restart [A.4].
func (c *Cluster) SetConfigGeneration(gen int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.configGen = gen
}

// ConfigGeneration is the generation the management server serves.
func (c *Cluster) ConfigGeneration() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.configGen
}

// MarkAbsent marks every data node as never started: no contact, no
// failure reported, no restart recorded. A sandbox's management server
// starts this way and each data node comes in when its process connects
// (Boot), as in a real cluster started one process at a time. Those
// first starts are the cluster's start, as NewCluster's are: dynamic ids
// from 1 in the order nodes reach STARTED, connect_count 0 (facts A.2.3
// get status: node 1 STARTED with dynamic_id 1, connect_count 0).
func (c *Cluster) MarkAbsent() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.nextDyn = 0
	for _, n := range c.sortedData() {
		down(n)
		n.ConnectCount = 0
		n.absent = true
	}
}

// CanServe reports whether every node group has a live node, the
// condition for the cluster to take transactions [DOC8 §25.2.2].
func (c *Cluster) CanServe() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, n := range c.sortedData() {
		if !c.groupAlive(n.NodeGroup) {
			return false
		}
	}
	return true
}

// CompleteGCP runs one global checkpoint: the master data node reports
// GlobalCheckpointStarted and GlobalCheckpointCompleted with the next gci
// (the events a real master reports every TimeBetweenGlobalCheckpoints,
// default 2 s [DOC8 config; EventLogger "Global checkpoint %u
// completed"]). None runs while the cluster cannot serve or a fault
// stalls GCPs; it returns whether one ran.
func (c *Cluster) CompleteGCP() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	m := c.master()
	if c.gcpStalled || m == 0 {
		return false
	}
	for _, n := range c.sortedData() {
		if !c.groupAlive(n.NodeGroup) {
			return false
		}
	}
	c.gci++
	c.emit(ndb.Event{Type: ndb.EventGlobalCheckpointStarted, SourceNodeID: m}.With("gci", c.gci))
	c.emit(ndb.Event{Type: ndb.EventGlobalCheckpointCompleted, SourceNodeID: m}.With("gci", c.gci))
	return true
}

// SetGCPStalled holds global checkpoints back (true), as redo that does
// not reach disk fast enough does on a real cluster, or lets them run
// again. A real cluster kills a node when the stall passes
// TimeBetweenGlobalCheckpointsTimeout (the GCP stop, fault gcp-stop);
// the model leaves that to the driver.
func (c *Cluster) SetGCPStalled(stalled bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gcpStalled = stalled
}

// GCI is the last global checkpoint completed.
func (c *Cluster) GCI() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.gci
}
