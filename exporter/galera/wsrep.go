// Package galera exports the Galera string states that mysqld_exporter
// drops, as info series. The status itself is read by the one parser,
// the top-level galera package.
package galera

import (
	"strings"

	"github.com/nines-project/nines"
	"github.com/nines-project/nines/internal/metric"
)

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
