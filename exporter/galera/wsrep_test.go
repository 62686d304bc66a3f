package galera

import (
	"testing"

	"github.com/nines-project/nines/galera"
	"github.com/nines-project/nines/internal/metric"
)

// synced is a trimmed SHOW GLOBAL STATUS of a healthy node (from a real
// MariaDB 10.11 / Galera 4.23 node).
func synced() map[string]string {
	return map[string]string{
		"wsrep_cluster_status":      "Primary",
		"wsrep_cluster_size":        "3",
		"wsrep_cluster_conf_id":     "7",
		"wsrep_cluster_state_uuid":  "9130690e-e921-11f1-b504-f6cb6679f2e6",
		"wsrep_local_state_uuid":    "9130690e-e921-11f1-b504-f6cb6679f2e6",
		"wsrep_local_state":         "4",
		"wsrep_local_state_comment": "Synced",
		"wsrep_ready":               "ON",
		"wsrep_connected":           "ON",
		"wsrep_last_committed":      "31",
		"wsrep_local_recv_queue":    "0",
		"wsrep_flow_control_paused": "0",
		"wsrep_evs_state":           "OPERATIONAL",
		"wsrep_evs_delayed":         "",
		"wsrep_provider_name":       "Galera",
	}
}

func TestMetricsKeepStringStates(t *testing.T) {
	g, err := galera.ParseStatus(synced(), map[string]string{"wsrep_node_name": "n1"})
	if err != nil {
		t.Fatal(err)
	}
	g.EVSDelayed = "uuid1:tcp://127.0.0.1:4567:2,uuid2:tcp://127.0.0.1:4577:1"
	set := &metric.Set{}
	Metrics(set, g)
	got := map[string]metric.Metric{}
	for _, m := range set.Metrics {
		got[m.Name] = m
	}
	info := got["nines_galera_state_info"]
	labels := map[string]string{}
	for _, l := range info.Labels {
		labels[l.Name] = l.Value
	}
	if labels["local_state_comment"] != "Synced" || labels["evs_state"] != "OPERATIONAL" || labels["cluster_state_uuid"] != "9130690e-e921-11f1-b504-f6cb6679f2e6" || labels["cluster_status"] != "Primary" {
		t.Errorf("info labels = %v", labels)
	}
	if v := got["nines_galera_evs_delayed_nodes"].Value; v != 2 {
		t.Errorf("evs delayed = %v, want 2", v)
	}
}
