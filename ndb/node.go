// Package ndb is pure MySQL NDB Cluster knowledge: node types and states,
// start phases, node groups and the management server (ndb_mgmd) text
// protocol's messages. It does no I/O beyond reading and writing the
// messages on a reader or writer it is given.
//
// Sources are those of the facts file (part A): [SRV-7.6] Services.cpp,
// [MGMAPI-8] mgmapi.cpp, [OPER] Oracle's Go mgm client, [DOC8] the manual.
package ndb

import (
	"fmt"
	"sort"
	"strconv"
)

// NodeType is a cluster node's kind as the mgm protocol names it.
type NodeType int

const (
	TypeNDB NodeType = iota + 1 // data node (ndbd, ndbmtd)
	TypeAPI                     // SQL or API node (mysqld)
	TypeMGM                     // management server (ndb_mgmd)
)

// String gives the wire name: NDB, API, MGM.
func (t NodeType) String() string {
	switch t {
	case TypeNDB:
		return "NDB"
	case TypeAPI:
		return "API"
	case TypeMGM:
		return "MGM"
	}
	return "NodeType(" + strconv.Itoa(int(t)) + ")"
}

// Role is nines' name for the type: data, sql, mgm.
func (t NodeType) Role() string {
	switch t {
	case TypeNDB:
		return "data"
	case TypeAPI:
		return "sql"
	case TypeMGM:
		return "mgm"
	}
	return "unknown"
}

// ParseNodeType reads a wire type name; the aliases ndbd, mysqld and
// ndb_mgmd are accepted on input as mgmapi does [MGMAPI-8].
func ParseNodeType(s string) (NodeType, error) {
	switch s {
	case "NDB", "ndbd":
		return TypeNDB, nil
	case "API", "mysqld":
		return TypeAPI, nil
	case "MGM", "ndb_mgmd":
		return TypeMGM, nil
	}
	return 0, fmt.Errorf("unknown node type %q (want NDB, API or MGM)", s)
}

// NodeStatus is a node's state as `get status` reports it.
type NodeStatus int

// The statuses of mgmapi's status table [MGMAPI-8], in its order.
const (
	StatusUnknown NodeStatus = iota
	StatusNoContact
	StatusNotStarted
	StatusStarting
	StatusStarted
	StatusShuttingDown
	StatusRestarting
	StatusSingleUser
	StatusResume
	StatusConnected
)

var statusNames = [...]string{
	StatusUnknown:      "UNKNOWN",
	StatusNoContact:    "NO_CONTACT",
	StatusNotStarted:   "NOT_STARTED",
	StatusStarting:     "STARTING",
	StatusStarted:      "STARTED",
	StatusShuttingDown: "SHUTTING_DOWN",
	StatusRestarting:   "RESTARTING",
	// The wire text has spaces, unlike the C enum NDB_MGM_NODE_STATUS_SINGLEUSER.
	StatusSingleUser: "SINGLE USER MODE",
	StatusResume:     "RESUME",
	StatusConnected:  "CONNECTED",
}

// String gives the wire text, e.g. STARTED or SINGLE USER MODE.
func (s NodeStatus) String() string {
	if s >= 0 && int(s) < len(statusNames) {
		return statusNames[s]
	}
	return "NodeStatus(" + strconv.Itoa(int(s)) + ")"
}

// ParseNodeStatus reads a wire status. A text outside mgmapi's table is
// an error rather than UNKNOWN, so a server speaking a newer dialect is
// noticed instead of its nodes silently looking unknown. The literal
// UNKNOWN is a valid status.
func ParseNodeStatus(s string) (NodeStatus, error) {
	for i, n := range statusNames {
		if n == s {
			return NodeStatus(i), nil
		}
	}
	return StatusUnknown, fmt.Errorf("unknown node status %q", s)
}

// Up reports whether a node of type t in this status serves: a data node
// when STARTED (or in single user mode, where it still holds its data),
// an MGM or API node when CONNECTED [OPER GetStatus].
func (s NodeStatus) Up(t NodeType) bool {
	if t == TypeNDB {
		return s == StatusStarted || s == StatusSingleUser
	}
	return s == StatusConnected
}

// CLIText is the ndb_mgm client's lower-case text for a status, as SHOW and
// STATUS print it [CLI-8 status_string].
func (s NodeStatus) CLIText() string {
	switch s {
	case StatusNoContact:
		return "not connected"
	case StatusNotStarted:
		return "not started"
	case StatusStarting:
		return "starting"
	case StatusStarted:
		return "started"
	case StatusShuttingDown:
		return "shutting down"
	case StatusRestarting:
		return "restarting"
	case StatusSingleUser:
		return "single user mode"
	}
	return "unknown state"
}

// Start phases of a data node [DOC8 §25.6.4]. A node reports the last
// phase it completed while STARTING; 0 when not starting.
const (
	PhaseSetup        = -1  // get node id, fetch config, allocate ports and memory
	PhaseFirst        = 0   // NDBFS/NDBCNTR start; file system cleared if --initial
	PhaseStarted      = 7   // arbitrator selected, node marked Started
	PhaseLast         = 9   // reset internal variables
	PhaseSUMAHandover = 101 // SUMA handover
)

// StartPhases is the order a starting data node walks through [DOC8
// §25.6.4] (phase 100 is obsolete and skipped).
var StartPhases = []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 101}

// NoNodeGroup is the node_group value of a data node in no node group
// (NDB_NO_NODEGROUP in the NDB sources).
const NoNodeGroup = 65536

// Version is an NDB or MySQL version id as the protocol carries it:
// (major<<16)|(minor<<8)|build; 0 means not connected.
type Version uint32

// MakeVersion encodes major.minor.build.
func MakeVersion(major, minor, build int) Version {
	return Version(uint32(major&0xFF)<<16 | uint32(minor&0xFF)<<8 | uint32(build&0xFF))
}

func (v Version) Major() int { return int(v>>16) & 0xFF }
func (v Version) Minor() int { return int(v>>8) & 0xFF }
func (v Version) Build() int { return int(v) & 0xFF }

// String gives 8.0.44, or "" for 0.
func (v Version) String() string {
	if v == 0 {
		return ""
	}
	return fmt.Sprintf("%d.%d.%d", v.Major(), v.Minor(), v.Build())
}

// Node is one node id's entry in the `get status` reply.
type Node struct {
	ID           int
	Type         NodeType
	Status       NodeStatus
	Version      Version
	MySQLVersion Version
	StartPhase   int
	DynamicID    int
	// NodeGroup is reliable only for connected data nodes [OPER].
	NodeGroup    int
	ConnectCount int
	Address      string
	// IsSingleUser is set only when the server sent is_single_user, which
	// an 8.x server may add [MGMAPI-8]; nil otherwise.
	IsSingleUser *bool
}

// Master returns the id of the master data node: the connected data node
// with the lowest non-zero dynamic id [CLI-8 executeShow]; 0 if none.
func Master(nodes []Node) int {
	best, id := 0, 0
	for _, n := range nodes {
		if n.Type != TypeNDB || n.DynamicID == 0 || n.Status == StatusNoContact {
			continue
		}
		if best == 0 || n.DynamicID < best {
			best, id = n.DynamicID, n.ID
		}
	}
	return id
}

// Group is one node group's data nodes as `get status` shows them.
type Group struct {
	ID    int
	Nodes []int // data node ids, ascending
	Up    int   // how many of them serve (Status.Up)
}

// Lost reports that no node of the group serves: NDB cannot serve
// without every node group [DOC8 §25.2.2].
func (g Group) Lost() bool { return g.Up == 0 }

// Exposed reports a group down to its last serving node, where one more
// failure loses it.
func (g Group) Exposed() bool { return g.Up == 1 && len(g.Nodes) > 1 }

// Groups gathers data nodes by node group, ordered by group id. Data
// nodes in no node group (NoNodeGroup) are left out. Callers should
// take node_group from the cluster config for unconnected nodes, for
// which `get status` is not reliable [OPER].
func Groups(nodes []Node) []Group {
	byID := map[int]*Group{}
	var ids []int
	for _, n := range nodes {
		if n.Type != TypeNDB || n.NodeGroup == NoNodeGroup {
			continue
		}
		g, ok := byID[n.NodeGroup]
		if !ok {
			g = &Group{ID: n.NodeGroup}
			byID[n.NodeGroup] = g
			ids = append(ids, n.NodeGroup)
		}
		g.Nodes = append(g.Nodes, n.ID)
		if n.Status.Up(n.Type) {
			g.Up++
		}
	}
	sort.Ints(ids)
	out := make([]Group, 0, len(ids))
	for _, id := range ids {
		g := byID[id]
		sort.Ints(g.Nodes)
		out = append(out, *g)
	}
	return out
}
