package sandbox

import (
	"context"
	"fmt"
	"io"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/nines-project/nines"
	"github.com/nines-project/nines/galera"
	"github.com/nines-project/nines/internal/mariadbd"
)

// Node states Status reports besides what the server itself says
// (wsrep_local_state_comment such as "Synced" or "Donor/Desynced", a
// cluster status such as "non-Primary", or a replica's "replicating").
const (
	StateStopped     = "stopped"
	StateUnreachable = "unreachable"
	StatePrimary     = "primary"
	StateNoReplica   = "not replicating"
)

// NodeStatus is one node as Status saw it. Pid is 0 when the server is not
// running.
type NodeStatus struct {
	Name    string `json:"name"`
	SQLPort int    `json:"sql_port"`
	Socket  string `json:"socket"`
	Pid     int    `json:"pid"`
	State   string `json:"state"`
	// Role is a replication node's role as read live: "primary"
	// (read_only OFF, replicating from nobody) or "replica" (a
	// replication connection running); empty otherwise, with RoleWhy
	// saying why (fenced, stopped, unreachable). Galera nodes have none.
	Role    string `json:"role,omitempty"`
	RoleWhy string `json:"role_why,omitempty"`
	// Galera only.
	ClusterSize      int    `json:"cluster_size,omitempty"`
	ClusterStateUUID string `json:"cluster_state_uuid,omitempty"`
	// Error says why the node is unreachable.
	Error string `json:"error,omitempty"`
	// AgentURL is the node's agent; AgentPid is 0 when it does not run.
	AgentURL string `json:"agent_url"`
	AgentPid int    `json:"agent_pid"`
	// Netns sandboxes only: the node's namespace, its IP, and the ends
	// ("n1", "appliance") its links to are cut right now, sorted.
	Netns   string   `json:"netns,omitempty"`
	Address string   `json:"address,omitempty"`
	Cut     []string `json:"cut,omitempty"`
	// HAProxy's entry only (name "haproxy"): its listeners, host:port.
	Writer string `json:"writer,omitempty"`
	Reader string `json:"reader,omitempty"`
	// NDB sandboxes only: the node's type (mgm, data or sql), its NDB
	// node id, and the management server's mgm protocol port.
	Type    string `json:"type,omitempty"`
	NodeID  int    `json:"node_id,omitempty"`
	MgmPort int    `json:"mgm_port,omitempty"`
}

// statusTimeout bounds the look at one node: a hung (SIGSTOPped) server
// must not hang the status command.
const statusTimeout = 3 * time.Second

// Status looks at every node at once, DR replicas (role replica, read
// live) after the cluster's nodes; a sandbox with HAProxy lists it
// last, as one more entry named "haproxy" with its pid and listeners. A node that cannot be read is
// reported as unreachable with the reason, not as an error; the error is
// only for a sandbox that cannot be inspected at all.
func (s *Sandbox) Status(ctx context.Context) ([]NodeStatus, error) {
	nodes := s.snapshot().allNodes()
	out := make([]NodeStatus, len(nodes))
	errs := make([]error, len(nodes))
	var wg sync.WaitGroup
	for i, n := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out[i], errs[i] = s.nodeStatus(ctx, n)
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	if s.HAProxy() {
		out = append(out, s.haproxyStatus())
	}
	if s.snapshot().NDB != nil {
		out = s.ndbStatus(ctx, out)
	}
	return out, nil
}

func (s *Sandbox) nodeStatus(ctx context.Context, n Node) (NodeStatus, error) {
	st := NodeStatus{Name: n.Name, SQLPort: n.SQLPort, Socket: n.Socket, State: StateStopped, AgentURL: n.AgentURL(), AgentPid: agentPid(n),
		Netns: n.Netns, Address: n.IP}
	if n.Netns != "" {
		st.Cut = cutsOf(ctx, s.snapshot(), n)
	}
	srv := server(n)
	pid, err := srv.Pid()
	if err != nil {
		return st, fmt.Errorf("status of %s: %w", n.Name, err)
	}
	if pid == 0 {
		return st, nil
	}
	st.Pid = pid
	db, err := srv.DB()
	if err != nil {
		return st, fmt.Errorf("status of %s: %w", n.Name, err)
	}
	defer db.Close()
	ctx, cancel := context.WithTimeout(ctx, statusTimeout)
	defer cancel()
	unreachable := func(err error) (NodeStatus, error) {
		st.State, st.Error = StateUnreachable, err.Error()
		return st, nil
	}
	switch {
	case n.Role == RoleNDBSQL:
		if err := db.PingContext(ctx); err != nil {
			return unreachable(err)
		}
		st.State = "running"
	case n.Role == RoleGalera:
		w, err := mariadbd.QueryWsrep(ctx, db)
		if err != nil {
			return unreachable(err)
		}
		st.State, st.ClusterSize, st.ClusterStateUUID = galera.Describe(w), w.ClusterSize, w.ClusterStateUUID
	default:
		m, found, err := mariadbd.QueryRow(ctx, db, "SHOW SLAVE STATUS")
		if err != nil {
			return unreachable(err)
		}
		ro, _, rerr := mariadbd.QueryRow(ctx, db, "SELECT @@global.read_only AS ro")
		if rerr != nil {
			return unreachable(rerr)
		}
		st.Role, st.RoleWhy = replicationRole(ro["ro"], m, found)
		switch {
		case found:
			st.State = replicaState(m)
		case n.Role == RolePrimary:
			st.State = StatePrimary
		default:
			st.State = StateNoReplica
		}
	}
	return st, nil
}

// Live roles of a replication node in Status.
const (
	LivePrimary = "primary"
	LiveReplica = "replica"
)

// replicationRole names a replication node's role from @@read_only and
// SHOW SLAVE STATUS (found false: no replication configured). A
// connection counts while either thread runs or tries to (IO
// Connecting), as the agent's writer check counts it.
func replicationRole(readOnly string, slave map[string]string, found bool) (role, why string) {
	if found && (slave["Slave_IO_Running"] != "No" || slave["Slave_SQL_Running"] != "No") {
		return LiveReplica, ""
	}
	switch readOnly {
	case "0":
		return LivePrimary, ""
	case "1":
		return "", "read_only ON and replicating from nobody: fenced, or not yet promoted"
	}
	return "", fmt.Sprintf("read_only unreadable (%q)", readOnly)
}

// WriteStatus prints statuses as a table.
func WriteStatus(w io.Writer, sts []NodeStatus) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE\tSQL PORT\tPID\tSTATE\tSOCKET\tAGENT")
	for _, st := range sts {
		pid := "-"
		if st.Pid != 0 {
			pid = fmt.Sprint(st.Pid)
		}
		agentState := st.AgentURL + " (not running)"
		if st.AgentPid != 0 {
			agentState = fmt.Sprintf("%s (pid %d)", st.AgentURL, st.AgentPid)
		}
		if st.Type == NDBTypeMgm || st.Type == NDBTypeData {
			port := "-"
			if st.MgmPort != 0 {
				port = fmt.Sprintf("mgm %d", st.MgmPort)
			}
			agentCol := "" // mgmd runs without an agent
			if st.AgentURL != "" {
				agentCol = agentState
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\tnode %d\t%s\n", st.Name, port, pid, st.State, st.NodeID, agentCol)
			continue
		}
		if st.Writer != "" {
			fmt.Fprintf(tw, "%s\t-\t%s\t%s\twriter %s, reader %s\t\n", st.Name, pid, st.State, st.Writer, st.Reader)
			continue
		}
		state := st.State
		if st.Role != "" && st.Role != st.State {
			state = st.Role + ", " + state
		}
		if st.ClusterSize > 0 {
			state = fmt.Sprintf("%s (size %d)", state, st.ClusterSize)
		}
		if st.Error != "" {
			state += ": " + st.Error
		} else if st.RoleWhy != "" {
			state += " (" + st.RoleWhy + ")"
		}
		if len(st.Cut) > 0 {
			state += " [cut from " + strings.Join(st.Cut, ", ") + "]"
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\n", st.Name, st.SQLPort, pid, state, st.Socket, agentState)
	}
	return tw.Flush()
}

// WriteSummary prints where everything is and how to use it.
func (s *Sandbox) WriteSummary(w io.Writer) error {
	m := s.snapshot()
	what := "Galera cluster"
	if m.Kind == nines.KindReplication {
		what = fmt.Sprintf("GTID replication (primary n1, %d replicas", len(m.Nodes)-1)
		if m.SemiSync {
			what += ", semi-sync"
		}
		what += ")"
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "%s %q in %s\n\n", what, m.ClusterName, s.dir)
	for _, n := range m.Nodes {
		ports := fmt.Sprintf("sql %d", n.SQLPort)
		if n.IP != "" {
			ports = fmt.Sprintf("ip %s (netns %s)  %s", n.IP, n.Netns, ports)
		}
		if n.GcommPort != 0 {
			ports += fmt.Sprintf("  gcomm %d  ist %d  sst %d", n.GcommPort, n.ISTPort, n.SSTPort)
		}
		ports += fmt.Sprintf("  agent %d", n.AgentPort)
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", n.Name, n.Role, ports, n.Socket)
	}
	fmt.Fprintln(tw)
	if m.Netns {
		fmt.Fprintf(tw, "network\t%s, bridge %s at %s\t(nines sandbox partition --dir %s --isolate n2 / --heal)\n", m.Subnet, m.Bridge, bridgeIP(m.Subnet), s.dir)
	}
	fmt.Fprintf(tw, "appliance config\t%s\t(nines run --config %s)\n", s.ConfigPath(), s.ConfigPath())
	fmt.Fprintf(tw, "API token\t%s\t(role admin)\n", s.TokenPath())
	fmt.Fprintf(tw, "webhook token\t%s\t(role webhook: Alertmanager's, for the remediator)\n", s.WebhookTokenPath())
	fmt.Fprintf(tw, "read token\t%s\t(role read: for Grafana's data source)\n", s.ReadTokenPath())
	fmt.Fprintf(tw, "agent token\t%s\t(curl -H \"Authorization: Bearer $(cat %s)\" %s/v1/status)\n", s.AgentTokenPath(), s.AgentTokenPath(), m.Nodes[0].AgentURL())
	fmt.Fprintf(tw, "SQL user %s\tpassword in %s\n", MonitorUser, s.PasswordPath())
	fmt.Fprintf(tw, "application user %s\tmariadb --defaults-extra-file=%s -h 127.0.0.1 -P %d %s\n", AppUser, s.AppClientConfigPath(), m.Nodes[0].SQLPort, AppDatabase)
	if m.HAProxy {
		writer := "one node at a time: n1 while healthy"
		if m.Kind == nines.KindReplication {
			writer = "the primary only; none while there is none"
		}
		fmt.Fprintf(tw, "haproxy writer\t%s\t(%s; %s)\n", s.WriterAddress(), writer, s.HAProxyConfigPath())
		fmt.Fprintf(tw, "haproxy reader\t%s\t(every healthy node; runtime API %s)\n", s.ReaderAddress(), s.HAProxySocket())
	}
	fmt.Fprintf(tw, "connect\tmariadb --defaults-file=%s\n", m.Nodes[0].DefaultsFile)
	fmt.Fprintf(tw, "status / stop\tnines sandbox status --dir %s / nines sandbox stop --dir %s\n", s.dir, s.dir)
	return tw.Flush()
}
