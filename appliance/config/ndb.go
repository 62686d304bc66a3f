package config

import (
	"fmt"
	"net/url"

	"github.com/nines-project/nines"
)

// NDB is what a kind ndb cluster has beyond its SQL nodes (the cluster's
// nodes, scraped as MySQL servers, probed and read for ndbinfo: the
// credentials' user needs SELECT on ndbinfo.* besides what every node
// needs).
//
// NDB's management protocol (port 1186) is plain text: NDB 8.0 has no TLS
// on it, and anyone who reaches the port can stop data nodes. Keep the
// management servers on a private network that only the cluster's hosts
// and this appliance reach.
type NDB struct {
	// Management are the ndb_mgmd servers, tried in this order: the
	// first that answers is read each round. At least one.
	Management []NDBManagement `yaml:"management"`
	// DataNodes optionally name the nines agent on each data node's host,
	// through which a data node is restarted.
	DataNodes []NDBDataNode `yaml:"data_nodes"`
}

// NDBManagement is one management server.
type NDBManagement struct {
	Address string `yaml:"address"` // host:port, usually port 1186
	// Agent optionally names the nines agent on the server's host,
	// through which ndb-rolling-restart restarts it.
	Agent string `yaml:"agent"`
	// Insecure allows http:// to a host other than loopback, as on nodes.
	Insecure bool `yaml:"insecure"`
}

// NDBDataNode is one data node and the agent on its host.
type NDBDataNode struct {
	NodeID int    `yaml:"node_id"` // NDB node id, 1..144
	Agent  string `yaml:"agent"`
	// Insecure allows http:// to a host other than loopback, as on nodes.
	Insecure bool `yaml:"insecure"`
}

// MaxDataNodeID is the highest node id NDB gives a data node (MAX_NDB_NODES
// is 145 in NDB 8.0: ids 1..144).
const MaxDataNodeID = 144

// ManagementAddresses returns the management servers' addresses in order.
func (n *NDB) ManagementAddresses() []string {
	if n == nil {
		return nil
	}
	out := make([]string, len(n.Management))
	for i, m := range n.Management {
		out[i] = m.Address
	}
	return out
}

// checkNDB checks the ndb block: required for kind ndb, refused for the
// other kinds.
func checkNDB(cl *Cluster, p string, at func(path, format string, args ...any)) {
	if cl.Kind != nines.KindNDB {
		if cl.NDB != nil {
			at(p+".ndb", "only for kind ndb; this cluster is kind %s", cl.Kind)
		}
		return
	}
	if cl.NDB == nil {
		at(p+".ndb", "required for kind ndb: list the management servers (ndb: {management: [{address: HOST:1186}]})")
		return
	}
	if len(cl.NDB.Management) == 0 {
		at(p+".ndb.management", "at least one management server (ndb_mgmd) is required")
	}
	seen := map[string]bool{}
	for i, m := range cl.NDB.Management {
		mp := fmt.Sprintf("%s.ndb.management[%d].address", p, i)
		if err := checkHostPort(m.Address); err != nil {
			at(mp, "bad address %q: %v", m.Address, err)
		} else if seen[m.Address] {
			at(mp, "%q is listed twice", m.Address)
		}
		seen[m.Address] = true
		checkAgentURL(fmt.Sprintf("%s.ndb.management[%d]", p, i), m.Agent, m.Insecure, at)
	}
	ids := map[int]bool{}
	for i, d := range cl.NDB.DataNodes {
		dp := fmt.Sprintf("%s.ndb.data_nodes[%d]", p, i)
		switch {
		case d.NodeID < 1 || d.NodeID > MaxDataNodeID:
			at(dp+".node_id", "%d is not a data node id in 1..%d", d.NodeID, MaxDataNodeID)
		case ids[d.NodeID]:
			at(dp+".node_id", "data node %d is listed twice", d.NodeID)
		}
		ids[d.NodeID] = true
		checkAgentURL(dp, d.Agent, d.Insecure, at)
	}
}

// checkAgentURL checks an agent URL as nodes' agents are checked: http or
// https with a host, and https unless loopback or insecure. "" is allowed.
func checkAgentURL(p, agentURL string, insecure bool, at func(path, format string, args ...any)) {
	if agentURL == "" {
		return
	}
	if u, err := url.Parse(agentURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		at(p+".agent", "bad agent URL %q: want http(s)://host:port", agentURL)
	} else if u.Scheme == "http" && !isLoopback(u.Hostname()) && !insecure {
		at(p+".agent", "%q is http:// to a host other than loopback: the agent token and every action would cross the network in clear text; use https:// (agent_ca_file for a private CA), or insecure: true on the node to accept that", agentURL)
	}
}
