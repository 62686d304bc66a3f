package ndb

import (
	"sort"

	ndbmsg "github.com/nines-project/nines/ndb"
)

// View is the cluster as one picture, for rules and the console: data
// nodes by node group with their state and start phase, the management
// and SQL nodes, the president and the arbitrator. It is built from the
// management server's `get status` and an SQL node's ndbinfo; either may
// be missing (nil), and then what only it knows is absent.
type View struct {
	Groups []GroupView
	// Mgm and SQL are the management and API nodes of `get status`.
	Mgm, SQL []ndbmsg.Node
	// President is the master data node (membership.president, agreed
	// by all, else `get status`' lowest dynamic id); 0 if unknown.
	President int
	// Arbitrator is the arbitrator's node id when every started node
	// agrees on it, ticket and state; ArbitrationAgreed is false when
	// they disagree (or nothing was read).
	Arbitrator        int
	ArbState          ArbState
	ArbitrationAgreed bool
}

// GroupView is one node group.
type GroupView struct {
	ID    int
	Nodes []DataNodeView // by node id
	Up    int            // nodes serving (STARTED or SINGLEUSER)
}

// Lost: no node of the group serves, so the cluster cannot serve.
func (g GroupView) Lost() bool { return g.Up == 0 }

// Exposed: down to its last serving node; one more failure loses it.
func (g GroupView) Exposed() bool { return g.Up == 1 && len(g.Nodes) > 1 }

// DataNodeView is one data node. Running means it has ndbinfo rows
// (its process is in the cluster); State and StartPhase then come from
// ndbinfo.nodes, else State is NodeStateUnknown and MgmStatus says what
// the management server sees (NO_CONTACT for a stopped node).
type DataNodeView struct {
	ID               int
	Running          bool
	State            NodeState
	StartPhase       int
	MgmStatus        ndbmsg.NodeStatus // StatusUnknown without `get status`
	Uptime           uint64
	ConfigGeneration uint64
	DataMemoryUsed   uint64 // bytes
	DataMemoryTotal  uint64
	RedoUsed         uint64 // bytes over all redo log parts
	RedoTotal        uint64
}

// Serving reports whether the node serves, by ndbinfo when it has a
// row, else by the management server. A node the management server
// reports not serving is not, whatever ndbinfo says: the two are read
// apart, and `get status` is the fresher after a failure (the event
// stream wakes it), while ndbinfo may still hold the node's last rows.
func (d DataNodeView) Serving() bool {
	if d.MgmStatus != ndbmsg.StatusUnknown && !d.MgmStatus.Up(ndbmsg.TypeNDB) {
		return false
	}
	if d.Running {
		return d.State.Serving()
	}
	return d.MgmStatus.Up(ndbmsg.TypeNDB)
}

// BuildView joins `get status` (status) and ndbinfo (info). Node groups
// come from `get status`, which lists every configured data node, and
// for nodes it does not list from membership.group_id.
func BuildView(status []ndbmsg.Node, info *Ndbinfo) View {
	if info == nil {
		info = &Ndbinfo{}
	}
	nodes := map[int]*DataNodeView{}
	group := map[int]int{}
	get := func(id int) *DataNodeView {
		if nodes[id] == nil {
			nodes[id] = &DataNodeView{ID: id, State: NodeStateUnknown}
		}
		return nodes[id]
	}
	var v View
	for _, n := range status {
		switch n.Type {
		case ndbmsg.TypeNDB:
			get(n.ID).MgmStatus = n.Status
			if n.NodeGroup != ndbmsg.NoNodeGroup {
				group[n.ID] = n.NodeGroup
			}
		case ndbmsg.TypeMGM:
			v.Mgm = append(v.Mgm, n)
		case ndbmsg.TypeAPI:
			v.SQL = append(v.SQL, n)
		}
	}
	for _, r := range info.Nodes {
		d := get(r.NodeID)
		d.Running, d.State, d.StartPhase, d.Uptime, d.ConfigGeneration = true, r.State, r.StartPhase, r.Uptime, r.ConfigGeneration
	}
	for _, r := range info.Memory {
		if r.MemoryType == "Data memory" {
			d := get(r.NodeID)
			d.DataMemoryUsed, d.DataMemoryTotal = r.Used, r.Total
		}
	}
	for _, r := range info.LogSpaces {
		if r.LogType == "REDO" {
			d := get(r.NodeID)
			d.RedoUsed += r.Used
			d.RedoTotal += r.Total
		}
	}
	for _, r := range info.Membership {
		get(r.NodeID)
		if _, ok := group[r.NodeID]; !ok {
			group[r.NodeID] = r.GroupID
		}
	}
	byGroup := map[int]*GroupView{}
	var gids []int
	for id, d := range nodes {
		g, ok := group[id]
		if !ok {
			continue // a node no source places in a group: not shown
		}
		if byGroup[g] == nil {
			byGroup[g] = &GroupView{ID: g}
			gids = append(gids, g)
		}
		byGroup[g].Nodes = append(byGroup[g].Nodes, *d)
		if d.Serving() {
			byGroup[g].Up++
		}
	}
	sort.Ints(gids)
	for _, g := range gids {
		gv := byGroup[g]
		sort.Slice(gv.Nodes, func(i, j int) bool { return gv.Nodes[i].ID < gv.Nodes[j].ID })
		v.Groups = append(v.Groups, *gv)
	}
	v.President = ndbmsg.Master(status)
	if m := info.Membership; len(m) > 0 {
		agreed := true
		for _, r := range m[1:] {
			if r.President != m[0].President || r.Arbitrator != m[0].Arbitrator || r.ArbTicket != m[0].ArbTicket || r.ArbState != m[0].ArbState {
				agreed = false
			}
		}
		if agreed {
			v.President, v.Arbitrator, v.ArbState = m[0].President, m[0].Arbitrator, m[0].ArbState
		} else {
			v.ArbState = ArbUnknown
		}
		v.ArbitrationAgreed = agreed && m[0].ArbState != ArbUnknown
	}
	return v
}
