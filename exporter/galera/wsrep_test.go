package galera

import (
	"strings"
	"testing"

	"github.com/nines-project/nines"
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

func TestParse(t *testing.T) {
	tests := []struct {
		name     string
		edit     map[string]string
		check    func(*nines.GaleraStatus) bool
		problems []string
	}{
		{"synced", nil, func(g *nines.GaleraStatus) bool {
			return g.Synced() && g.ClusterSize == 3 && g.LastCommitted == 31 && g.LocalState == nines.LocalStateSynced
		}, nil},
		{"lost quorum", map[string]string{"wsrep_cluster_status": "non-Primary", "wsrep_cluster_size": "1", "wsrep_local_state": "0", "wsrep_local_state_comment": "Initialized", "wsrep_ready": "OFF"},
			func(g *nines.GaleraStatus) bool {
				return !g.Synced() && g.ClusterStatus == nines.ClusterStatusNonPrimary && g.LocalState == nines.LocalStateUndefined
			}, nil},
		{"non-Primary conf_id as unsigned -1", map[string]string{"wsrep_cluster_status": "non-Primary", "wsrep_cluster_conf_id": "18446744073709551615", "wsrep_local_state": "0", "wsrep_ready": "OFF"},
			func(g *nines.GaleraStatus) bool { return g.ClusterConfID == -1 && !g.Synced() }, nil},
		{"donor", map[string]string{"wsrep_local_state": "2", "wsrep_local_state_comment": "Donor/Desynced"},
			func(g *nines.GaleraStatus) bool { return !g.Synced() && g.LocalState == nines.LocalStateDonor }, nil},
		{"disconnected", map[string]string{"wsrep_cluster_status": "Disconnected", "wsrep_connected": "OFF"},
			func(g *nines.GaleraStatus) bool {
				return g.ClusterStatus == nines.ClusterStatusDisconnected && !g.Connected
			}, nil},
		{"odd cluster status is not healthy", map[string]string{"wsrep_cluster_status": "Primaryish"},
			func(g *nines.GaleraStatus) bool { return !g.Synced() && g.ClusterStatus == nines.ClusterStatusUnknown },
			[]string{`wsrep_cluster_status: not one of Primary, non-Primary, Disconnected (value "Primaryish")`}},
		{"odd size", map[string]string{"wsrep_cluster_size": "three"},
			func(g *nines.GaleraStatus) bool { return g.ClusterSize == 0 },
			[]string{`wsrep_cluster_size: not an integer (value "three")`}},
		{"odd ready", map[string]string{"wsrep_ready": "MAYBE"},
			func(g *nines.GaleraStatus) bool { return !g.Ready && !g.Synced() },
			[]string{`wsrep_ready: not ON or OFF (value "MAYBE")`}},
		{"flow control out of range", map[string]string{"wsrep_flow_control_paused": "1.5"},
			func(g *nines.GaleraStatus) bool { return g.FlowControlPaused == 0 },
			[]string{"wsrep_flow_control_paused: not a fraction"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := synced()
			for k, v := range tt.edit {
				st[k] = v
			}
			g, problems := Parse(st, map[string]string{"wsrep_node_name": "n1"})
			if !tt.check(g) {
				t.Errorf("unexpected status %+v", g)
			}
			if len(problems) != len(tt.problems) {
				t.Fatalf("problems = %v, want %v", problems, tt.problems)
			}
			for i, p := range tt.problems {
				if !strings.Contains(problems[i].Error(), p) {
					t.Errorf("problem %q does not contain %q", problems[i], p)
				}
			}
		})
	}
}

func TestMetricsKeepStringStates(t *testing.T) {
	g, _ := Parse(synced(), map[string]string{"wsrep_node_name": "n1"})
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

func FuzzParse(f *testing.F) {
	f.Add("Primary", "3", "4", "ON", "0.5")
	f.Add("non-Primary", "-1", "x", "", "NaN")
	f.Fuzz(func(t *testing.T, status, size, state, ready, fc string) {
		st := synced()
		st["wsrep_cluster_status"], st["wsrep_cluster_size"], st["wsrep_local_state"], st["wsrep_ready"], st["wsrep_flow_control_paused"] = status, size, state, ready, fc
		g, problems := Parse(st, nil)
		if g == nil {
			t.Fatal("nil status")
		}
		// Whatever the server says, a node is only Synced when every value
		// parsed cleanly to the healthy state.
		if g.Synced() && !strings.EqualFold(status, "primary") {
			t.Fatalf("synced with cluster status %q", status)
		}
		if g.ClusterSize < 0 {
			t.Fatalf("negative size from %q", size)
		}
		_ = problems
	})
}
