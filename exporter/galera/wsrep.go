// Package galera reads a Galera node's wsrep status into the typed
// nines.GaleraStatus that decisions are made on, and keeps the string
// states that mysqld_exporter drops as info series.
package galera

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/nines-project/nines"
	"github.com/nines-project/nines/internal/metric"
)

// Enabled reports whether a node runs wsrep: the provider answers with a
// cluster status, or the variables say wsrep is on.
func Enabled(status, vars map[string]string) bool {
	if _, ok := status["wsrep_cluster_status"]; ok && status["wsrep_provider_name"] != "" {
		return true
	}
	return strings.EqualFold(vars["wsrep_on"], "ON") && vars["wsrep_provider"] != "" && vars["wsrep_provider"] != "none"
}

// Parse builds the typed status. A value the server reports in an
// unexpected shape is never guessed at: the field keeps its zero value
// (ClusterStatusUnknown, LocalStateUndefined, not ready) and a problem
// naming the variable and the value is returned, so nothing reads an odd
// value as healthy.
func Parse(status, vars map[string]string) (*nines.GaleraStatus, []error) {
	var problems []error
	bad := func(name, why string) {
		problems = append(problems, fmt.Errorf("%s: %s (value %q)", name, why, status[name]))
	}
	g := &nines.GaleraStatus{
		ClusterStateUUID:  status["wsrep_cluster_state_uuid"],
		LocalStateUUID:    status["wsrep_local_state_uuid"],
		LocalStateComment: status["wsrep_local_state_comment"],
		EVSState:          status["wsrep_evs_state"],
		EVSDelayed:        status["wsrep_evs_delayed"],
		NodeName:          vars["wsrep_node_name"],
		ClusterName:       vars["wsrep_cluster_name"],
	}

	switch s := status["wsrep_cluster_status"]; strings.ToLower(s) {
	case "primary":
		g.ClusterStatus = nines.ClusterStatusPrimary
	case "non-primary", "non_primary":
		g.ClusterStatus = nines.ClusterStatusNonPrimary
	case "disconnected":
		g.ClusterStatus = nines.ClusterStatusDisconnected
	default:
		bad("wsrep_cluster_status", "not one of Primary, non-Primary, Disconnected")
	}

	intVar := func(name string, dst *int64) {
		s, ok := status[name]
		if !ok {
			bad(name, "missing")
			return
		}
		s = strings.TrimSpace(s)
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			// Galera prints -1 of some counters as an unsigned 64-bit value:
			// wsrep_cluster_conf_id is 18446744073709551615 on a node
			// outside any Primary component.
			u, uerr := strconv.ParseUint(s, 10, 64)
			if uerr != nil {
				bad(name, "not an integer")
				return
			}
			n = int64(u)
		}
		*dst = n
	}
	var size, state int64
	intVar("wsrep_cluster_size", &size)
	intVar("wsrep_cluster_conf_id", &g.ClusterConfID)
	intVar("wsrep_last_committed", &g.LastCommitted)
	intVar("wsrep_local_recv_queue", &g.LocalRecvQueue)
	if s, ok := status["wsrep_local_state"]; ok {
		if n, err := strconv.ParseInt(s, 10, 64); err != nil || n < 0 {
			bad("wsrep_local_state", "not a member state number")
		} else {
			state = n
		}
	} else {
		bad("wsrep_local_state", "missing")
	}
	if size < 0 {
		bad("wsrep_cluster_size", "negative")
		size = 0
	}
	g.ClusterSize = int(size)
	g.LocalState = nines.LocalState(state)

	onOff := func(name string) bool {
		switch strings.ToUpper(status[name]) {
		case "ON":
			return true
		case "OFF":
			return false
		}
		bad(name, "not ON or OFF")
		return false
	}
	g.Ready = onOff("wsrep_ready")
	g.Connected = onOff("wsrep_connected")

	if s, ok := status["wsrep_flow_control_paused"]; ok {
		f, err := strconv.ParseFloat(s, 64)
		if err != nil || f < 0 || f > 1 {
			bad("wsrep_flow_control_paused", "not a fraction between 0 and 1")
		} else {
			g.FlowControlPaused = f
		}
	}
	return g, problems
}

// Metrics adds nines_galera_state_info, the string states an operator
// reads first when a node misbehaves, as labels of a constant 1.
func Metrics(set *metric.Set, g *nines.GaleraStatus) {
	if g == nil {
		return
	}
	set.Add("nines_galera_state_info", "Galera string states as labels: wsrep_local_state_comment, wsrep_evs_state, wsrep_cluster_status and the cluster state UUID.", metric.Gauge, 1,
		"local_state_comment", g.LocalStateComment,
		"evs_state", g.EVSState,
		"cluster_status", g.ClusterStatus.String(),
		"cluster_state_uuid", g.ClusterStateUUID,
		"node_name", g.NodeName)
	evsDelayed := 0.0
	if d := strings.TrimSpace(g.EVSDelayed); d != "" {
		evsDelayed = float64(len(strings.Split(d, ",")))
	}
	set.Add("nines_galera_evs_delayed_nodes", "Entries in wsrep_evs_delayed: peers this node sees as slow to answer.", metric.Gauge, evsDelayed)
}
