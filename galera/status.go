package galera

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/nines-project/nines"
)

// ErrBadStatus is wrapped by every complaint of ParseStatus about a wsrep
// status value.
var ErrBadStatus = errors.New("unexpected wsrep status")

// Enabled reports whether a node runs wsrep: the provider answers with a
// cluster status, or the variables say wsrep is on with a provider.
// Either map may be nil.
func Enabled(status, vars map[string]string) bool {
	if _, ok := status["wsrep_cluster_status"]; ok && status["wsrep_provider_name"] != "" {
		return true
	}
	return strings.EqualFold(vars["wsrep_on"], "ON") && vars["wsrep_provider"] != "" && vars["wsrep_provider"] != "none"
}

// ParseStatus is the one reading of a Galera node's wsrep status: status
// is SHOW GLOBAL STATUS as name → value (names as the server spells
// them), vars SHOW GLOBAL VARIABLES for the node and cluster names (may
// be nil).
//
// A value in an unexpected shape is never guessed at. The error then
// names every such variable and its value (each wraps ErrBadStatus), and
// the returned status, still usable for display, leaves those fields at
// the zero value that reads as unhealthy (ClusterStatusUnknown,
// LocalStateUndefined, not ready), so Synced is never true on an odd
// reading. Callers that decide on the state treat the error as "cannot
// tell"; the exporter publishes what parsed and reports the error.
func ParseStatus(status, vars map[string]string) (*nines.GaleraStatus, error) {
	var problems []error
	bad := func(name, why string) {
		v, ok := status[name]
		if !ok {
			problems = append(problems, fmt.Errorf("%w: %s is missing", ErrBadStatus, name))
			return
		}
		problems = append(problems, fmt.Errorf("%w: %s %q: %s", ErrBadStatus, name, v, why))
	}
	g := &nines.GaleraStatus{
		LocalStateComment: status["wsrep_local_state_comment"],
		EVSState:          status["wsrep_evs_state"],
		EVSDelayed:        status["wsrep_evs_delayed"],
		NodeName:          vars["wsrep_node_name"],
		ClusterName:       vars["wsrep_cluster_name"],
	}

	switch s := status["wsrep_cluster_status"]; strings.ToLower(strings.TrimSpace(s)) {
	case "primary":
		g.ClusterStatus = nines.ClusterStatusPrimary
	case "non-primary", "non_primary":
		g.ClusterStatus = nines.ClusterStatusNonPrimary
	case "disconnected":
		g.ClusterStatus = nines.ClusterStatusDisconnected
	default:
		bad("wsrep_cluster_status", "not one of Primary, non-Primary, Disconnected")
	}

	// UUIDs may be empty (a node that never joined has no history); any
	// other value must be a UUID.
	uuidVar := func(name string, dst *string) {
		s := strings.TrimSpace(status[name])
		if s == "" {
			return
		}
		u, err := parseUUID(s)
		if err != nil {
			bad(name, "not a UUID")
			return
		}
		*dst = u
	}
	uuidVar("wsrep_cluster_state_uuid", &g.ClusterStateUUID)
	uuidVar("wsrep_local_state_uuid", &g.LocalStateUUID)

	intVar := func(name string, min int64, dst *int64) {
		s, ok := status[name]
		if !ok {
			bad(name, "")
			return
		}
		n, err := parseStatusInt(strings.TrimSpace(s))
		if err != nil {
			bad(name, err.Error())
			return
		}
		if n < min {
			bad(name, fmt.Sprintf("below %d", min))
			return
		}
		*dst = n
	}
	var size, state int64
	intVar("wsrep_cluster_size", 0, &size)
	intVar("wsrep_cluster_conf_id", -1, &g.ClusterConfID)
	intVar("wsrep_last_committed", -1, &g.LastCommitted)
	intVar("wsrep_local_recv_queue", 0, &g.LocalRecvQueue)
	intVar("wsrep_local_state", 0, &state)
	if state > int64(nines.LocalStateError) {
		bad("wsrep_local_state", fmt.Sprintf("not a member state number (0 to %d)", nines.LocalStateError))
		state = 0
	}
	if size > math.MaxInt32 {
		bad("wsrep_cluster_size", "implausibly large")
		size = 0
	}
	g.ClusterSize = int(size)
	g.LocalState = nines.LocalState(state)

	onOff := func(name string) bool {
		switch strings.ToUpper(strings.TrimSpace(status[name])) {
		case "ON":
			return true
		case "OFF":
			return false
		}
		if _, ok := status[name]; !ok {
			bad(name, "")
		} else {
			bad(name, "not ON or OFF")
		}
		return false
	}
	g.Ready = onOff("wsrep_ready")
	g.Connected = onOff("wsrep_connected")

	// Optional: older providers and the status subsets some callers read
	// lack it.
	if s, ok := status["wsrep_flow_control_paused"]; ok {
		f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
		if err != nil || !(f >= 0 && f <= 1) {
			bad("wsrep_flow_control_paused", "not a fraction between 0 and 1")
		} else {
			g.FlowControlPaused = f
		}
	}
	return g, errors.Join(problems...)
}

// parseStatusInt reads a status counter. Galera prints -1 of some
// counters as the unsigned 64-bit value: wsrep_cluster_conf_id is
// 18446744073709551615 on a node outside any Primary component. That
// one value reads as -1; any other above the int64 range is an error.
func parseStatusInt(s string) (int64, error) {
	n, err := strconv.ParseInt(s, 10, 64)
	if err == nil {
		return n, nil
	}
	if u, uerr := strconv.ParseUint(s, 10, 64); uerr == nil {
		if u == math.MaxUint64 {
			return -1, nil
		}
		return 0, errors.New("out of the int64 range")
	}
	return 0, errors.New("not an integer")
}

// Describe is one word for a node's condition: its local state comment
// inside a Primary component, otherwise its cluster status (non-Primary,
// Disconnected), since the local state of a node outside a Primary
// component says little.
func Describe(g *nines.GaleraStatus) string {
	if g == nil {
		return "unknown"
	}
	if g.ClusterStatus != nines.ClusterStatusPrimary {
		return g.ClusterStatus.String()
	}
	if g.LocalStateComment != "" {
		return g.LocalStateComment
	}
	return g.LocalState.String()
}

// CommittedPosition is the position a running node has committed: the
// cluster state UUID (else the node's own) and wsrep_last_committed.
func CommittedPosition(g *nines.GaleraStatus) Position {
	if g == nil {
		return Position{UUID: UndefinedUUID, Seqno: UndefinedSeqno}
	}
	uuid := g.ClusterStateUUID
	if uuid == "" {
		uuid = g.LocalStateUUID
	}
	if uuid == "" {
		uuid = UndefinedUUID
	}
	return Position{UUID: uuid, Seqno: g.LastCommitted}
}
