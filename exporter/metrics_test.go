package exporter

import (
	"testing"
	"time"

	"github.com/nines-project/nines"
)

func TestSnapshotMetricsLabelsEverySeries(t *testing.T) {
	snap := &nines.Snapshot{
		Cluster: "billing", Instance: "db1:3306", Time: time.Unix(1000, 0), Duration: 3 * time.Millisecond, Up: true,
		Status:    map[string]string{"wsrep_cluster_size": "3", "Com_select": "4", "Uptime": "100"},
		Variables: map[string]string{"max_connections": "151", "version": "10.11.19-MariaDB"}, VariablesTime: time.Unix(990, 0),
		Galera: &nines.GaleraStatus{ClusterStatus: nines.ClusterStatusPrimary, LocalStateComment: "Synced"},
	}
	ms := SnapshotMetrics(snap)
	names := map[string]float64{}
	for _, m := range ms {
		var cluster, instance string
		for _, l := range m.Labels {
			switch l.Name {
			case "cluster":
				cluster = l.Value
			case "instance":
				instance = l.Value
			}
		}
		if cluster != "billing" || instance != "db1:3306" {
			t.Errorf("%s lacks cluster/instance: %+v", m.Name, m.Labels)
		}
		names[m.Name] = m.Value
	}
	for name, want := range map[string]float64{
		"mysql_up": 1, "nines_scrape_success": 1, "mysql_global_status_wsrep_cluster_size": 3,
		"mysql_global_variables_max_connections": 151, "nines_galera_state_info": 1, "nines_variables_age_seconds": 10,
		"nines_scrape_duration_seconds": 0.003,
	} {
		if got, ok := names[name]; !ok || got != want {
			t.Errorf("%s = %v (present %v), want %v", name, got, ok, want)
		}
	}
}

func TestSnapshotMetricsDownNode(t *testing.T) {
	ms := SnapshotMetrics(&nines.Snapshot{Cluster: "c", Instance: "db2:3306", Time: time.Unix(1000, 0), Err: "connection refused", Scrapes: 1, Errors: 1})
	got := map[string]float64{}
	for _, m := range ms {
		got[m.Name] = m.Value
	}
	if got["mysql_up"] != 0 || got["nines_scrape_success"] != 0 {
		t.Errorf("down node: %v", got)
	}
	if _, ok := got["mysql_global_status_wsrep_cluster_size"]; ok || len(got) != 6 {
		t.Errorf("a down node reports only up, success, duration, timestamp and the scrape counters; got %v", got)
	}
}
