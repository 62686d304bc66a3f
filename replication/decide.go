package replication

import (
	"fmt"
	"sort"
	"strings"
)

// Node is one configured node of a replication cluster as the appliance
// saw it through the node's agent, read fresh for each decision. A node
// whose agent did not answer has Reachable false and nothing else: it may
// be anything, a running primary included.
type Node struct {
	// Name is the node's SQL address as configured (host:port), the
	// instance label of its alerts.
	Name string `json:"name"`
	// Priority breaks ties between equally advanced candidates: higher
	// first, then configuration order.
	Priority  int    `json:"priority,omitempty"`
	Reachable bool   `json:"reachable"`
	Running   bool   `json:"running"`
	Error     string `json:"error,omitempty"`
	// Readable is true when the agent read the server over its socket;
	// the fields below are set only then.
	Readable bool   `json:"readable"`
	ServerID uint32 `json:"server_id,omitempty"`
	ReadOnly bool   `json:"read_only"`
	// Binlog is @@gtid_binlog_state: every transaction the node holds
	// (replicas log what they apply: log_slave_updates).
	Binlog State `json:"gtid_binlog_state,omitempty"`
	// Link is the node's replica connection; nil when it has none.
	Link           *Link `json:"link,omitempty"`
	SemiSyncMaster bool  `json:"semi_sync_master,omitempty"`
	SemiSyncSlave  bool  `json:"semi_sync_slave,omitempty"`
}

// Link is a replica's connection to its source, from SHOW SLAVE STATUS.
type Link struct {
	// Source is Master_Host:Master_Port.
	Source string `json:"source"`
	// IO is Slave_IO_Running: Yes, Connecting or No.
	IO         string `json:"io"`
	SQLRunning bool   `json:"sql_running"`
	// Received is Gtid_IO_Pos: the last GTID per domain in the relay log,
	// applied or not.
	Received     State  `json:"received,omitempty"`
	LastIOError  string `json:"last_io_error,omitempty"`
	LastSQLErrno int    `json:"last_sql_errno,omitempty"`
	LastSQLError string `json:"last_sql_error,omitempty"`
}

// Holds is what the node holds or will hold once it applied its relay
// log: its binlog state and what its IO thread received.
func (n Node) Holds() State {
	if n.Link == nil {
		return n.Binlog
	}
	return n.Binlog.Merge(n.Link.Received)
}

// Writable reports a node that runs, answers and takes writes.
func (n Node) Writable() bool { return n.Readable && !n.ReadOnly }

// Primary finds the cluster's primary: the source most replicas' links
// name (it may be dead: the replicas still name it), else the one
// writable node that replicates from nobody. ok is false, with the
// reason, when the nodes do not tell.
func Primary(nodes []Node) (name, why string, ok bool) {
	votes := map[string]int{}
	for _, n := range nodes {
		if n.Link != nil && n.Link.Source != "" {
			votes[n.Link.Source]++
		}
	}
	best, bestN, tie := "", 0, false
	for src, v := range votes {
		switch {
		case v > bestN:
			best, bestN, tie = src, v, false
		case v == bestN:
			tie = true
		}
	}
	if bestN > 0 && !tie {
		if _, found := find(nodes, best); !found {
			return "", fmt.Sprintf("the replicas replicate from %s, which is not a configured node", best), false
		}
		return best, fmt.Sprintf("%d replica(s) replicate from it", bestN), true
	}
	if tie {
		return "", fmt.Sprintf("the replicas replicate from different sources: %s", describeVotes(votes)), false
	}
	var writable []string
	for _, n := range nodes {
		if n.Writable() && n.Link == nil {
			writable = append(writable, n.Name)
		}
	}
	if len(writable) == 1 {
		return writable[0], "the one writable node, and no replica names a source", true
	}
	return "", fmt.Sprintf("no replica names a source and %d nodes are writable (%s)", len(writable), strings.Join(writable, ", ")), false
}

func describeVotes(votes map[string]int) string {
	var parts []string
	for src, v := range votes {
		parts = append(parts, fmt.Sprintf("%s by %d", src, v))
	}
	sort.Strings(parts)
	return strings.Join(parts, ", ")
}

func find(nodes []Node, name string) (Node, bool) {
	for _, n := range nodes {
		if n.Name == name {
			return n, true
		}
	}
	return Node{}, false
}

// Verdict is the answer to "is the primary dead?".
type Verdict struct {
	Dead bool   `json:"dead"`
	Why  string `json:"why"`
}

// Assess decides whether primary is dead, asking more than one observer:
// the appliance losing it (the alert) is not enough, nor is one replica.
// Dead when its agent says the server process is gone, or when its agent
// cannot read it either and every replica whose agent answers lost it
// (IO thread not Yes), those being a majority of its replicas. A primary
// that answers its agent is alive whatever the network between it and
// the appliance does.
func Assess(primary string, nodes []Node) Verdict {
	p, _ := find(nodes, primary)
	switch {
	case p.Reachable && !p.Running:
		return Verdict{true, fmt.Sprintf("the agent of %s says its server process is not running", primary)}
	case p.Reachable && p.Readable:
		return Verdict{false, fmt.Sprintf("%s runs and answers its agent (read_only %v): the appliance or the network lost it, not the server", primary, p.ReadOnly)}
	}
	own := "its agent does not answer (" + p.Error + ")"
	if p.Reachable {
		own = "its agent says it runs but cannot read it (" + p.Error + ")"
	}
	var replicas, asked, lost, connected []string
	for _, n := range nodes {
		if n.Link == nil || n.Link.Source != primary {
			continue
		}
		replicas = append(replicas, n.Name)
		if !n.Readable {
			continue
		}
		asked = append(asked, n.Name)
		if n.Link.IO == "Yes" {
			connected = append(connected, n.Name)
		} else {
			lost = append(lost, fmt.Sprintf("%s (IO %s)", n.Name, n.Link.IO))
		}
	}
	switch {
	case len(replicas) == 0:
		return Verdict{false, fmt.Sprintf("%s: %s, and no replica can be asked about it", primary, own)}
	case len(connected) > 0:
		return Verdict{false, fmt.Sprintf("%s: %s, but %s still replicate(s) from it: only the appliance or part of the network lost it", primary, own, strings.Join(connected, ", "))}
	case 2*len(asked) <= len(replicas):
		return Verdict{false, fmt.Sprintf("%s: %s; only %d of its %d replicas could be asked (%s lost it): not a majority of observers", primary, own, len(asked), len(replicas), strings.Join(lost, ", "))}
	}
	return Verdict{true, fmt.Sprintf("%s: %s, and its replicas lost it: %s", primary, own, strings.Join(lost, ", "))}
}

// Choice is the replica to promote and why the others were passed over.
type Choice struct {
	Node    string   `json:"node"`
	Holds   string   `json:"holds"`
	Passed  []string `json:"passed_over,omitempty"`
	Forced  bool     `json:"forced,omitempty"`
	Reasons string   `json:"reason"`
}

// candidate is a node to promote or copy from, with its place in the
// configuration.
type candidate struct {
	n     Node
	order int
}

// rank sorts candidates most advanced first (by GTID, per domain), ties
// broken by configured priority, then configuration order.
func rank(cands []candidate) {
	sort.SliceStable(cands, func(i, j int) bool {
		a, b := cands[i], cands[j]
		if c, ok := a.n.Holds().Ahead(b.n.Holds()); ok && c != 0 {
			return c > 0
		}
		if a.n.Priority != b.n.Priority {
			return a.n.Priority > b.n.Priority
		}
		return a.order < b.order
	})
}

// Choose picks the replica of primary to promote: the most advanced by
// GTID (what it holds once its relay log is applied), ties broken by
// priority, then configuration order. Never a replica that cannot be
// read, whose SQL thread failed, or that holds errant transactions
// (written on it, held by no other node), unless force names it.
func Choose(primary string, nodes []Node, force string) (Choice, error) {
	var cands []candidate
	var passed []string
	for i, n := range nodes {
		if n.Name == primary || n.Link == nil || n.Link.Source != primary {
			continue
		}
		why := Ineligible(n, nodes)
		if why != "" && n.Name != force {
			passed = append(passed, n.Name+": "+why)
			continue
		}
		cands = append(cands, candidate{n, i})
	}
	if force != "" {
		for _, c := range cands {
			if c.n.Name == force {
				return Choice{Node: force, Holds: c.n.Holds().String(), Passed: passed, Forced: true,
					Reasons: "an admin forced it" + forcedNote(Ineligible(c.n, nodes))}, nil
			}
		}
		return Choice{}, fmt.Errorf("force_node %s is not a readable replica of %s", force, primary)
	}
	if len(cands) == 0 {
		return Choice{Passed: passed}, fmt.Errorf("no replica of %s can be promoted: %s", primary, strings.Join(passed, "; "))
	}
	rank(cands)
	best := cands[0]
	for _, c := range cands[1:] {
		if _, ok := best.n.Holds().Ahead(c.n.Holds()); !ok {
			return Choice{Passed: passed}, fmt.Errorf("%s (%s) and %s (%s) hold different histories: a person must choose", best.n.Name, best.n.Holds(), c.n.Name, c.n.Holds())
		}
	}
	reason := "the most advanced replica"
	if len(cands) > 1 {
		if c, _ := best.n.Holds().Ahead(cands[1].n.Holds()); c == 0 {
			reason = fmt.Sprintf("as advanced as %s; chosen by priority %d, then configuration order", cands[1].n.Name, best.n.Priority)
		}
	}
	return Choice{Node: best.n.Name, Holds: best.n.Holds().String(), Passed: passed, Reasons: reason}, nil
}

func forcedNote(why string) string {
	if why == "" {
		return ""
	}
	return " (otherwise passed over: " + why + ")"
}

// Ineligible says why n may not be promoted, or "": it cannot be read,
// its SQL thread failed, or it holds errant transactions.
func Ineligible(n Node, nodes []Node) string {
	switch {
	case !n.Readable:
		return "cannot be read (" + n.Error + ")"
	case n.Link.LastSQLErrno != 0:
		return fmt.Sprintf("its SQL thread failed (error %d: %s)", n.Link.LastSQLErrno, n.Link.LastSQLError)
	}
	if errant := Errant(n, nodes); len(errant) > 0 {
		return "errant transactions " + strings.Join(errant, ", ")
	}
	return ""
}

// Errant lists the transactions n wrote itself (its own server_id's
// stream) that no other node holds: written on a replica, never on the
// primary. A former primary's writes that the others replicated are not
// errant.
func Errant(n Node, nodes []Node) []string {
	own := State{}
	for k, v := range n.Binlog {
		if k.Server == n.ServerID {
			own[k] = v
		}
	}
	if len(own) == 0 {
		return nil
	}
	others := State{}
	for _, o := range nodes {
		if o.Name != n.Name {
			others = others.Merge(o.Holds())
		}
	}
	return own.Lacking(others)
}

// Rejoin says whether old (a former primary, or any node not replicating)
// may replicate from primary: its history must be a prefix of the
// primary's. diverged lists what old holds that primary lacks; when it is
// not empty the node must be rebuilt (replication-reseed), and those
// transactions are lost to the cluster unless a person recovers them.
func Rejoin(old, primary Node) (diverged []string) {
	return old.Binlog.Lacking(primary.Holds())
}
