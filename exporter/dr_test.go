package exporter

import (
	"testing"

	"github.com/nines-project/nines"
)

// TestDRMetrics: each DR replica is marked, and its source counts as
// Synced only when it is a node of the cluster, up, Synced, ready and
// Primary.
func TestDRMetrics(t *testing.T) {
	synced := &nines.GaleraStatus{ClusterStatus: nines.ClusterStatusPrimary, LocalState: nines.LocalStateSynced, Ready: true}
	c := nines.Cluster{Name: "g", Kind: nines.KindGalera,
		Nodes:      []nines.Node{{Address: "n1:3306"}, {Address: "n2:3306"}, {Address: "n9:3306"}},
		DRReplicas: []nines.Node{{Address: "dr1:3306"}, {Address: "dr2:3306"}, {Address: "dr3:3306"}, {Address: "dr5:3306"}}}
	replicaOf := func(inst, host string, port int) *nines.Snapshot {
		return &nines.Snapshot{Cluster: "g", Instance: inst, Up: true, Replicas: []nines.ReplicaStatus{{SourceHost: host, SourcePort: port}}}
	}
	snaps := []*nines.Snapshot{
		{Cluster: "g", Instance: "n1:3306", Up: false},
		{Cluster: "g", Instance: "n2:3306", Up: true, Galera: synced},
		replicaOf("dr1:3306", "n1", 3306), // source down
		replicaOf("dr2:3306", "n2", 3306), // source Synced
		replicaOf("dr3:3306", "n3", 3306), // not a node: lost
		replicaOf("dr5:3306", "n9", 3306), // a node not scraped yet: unknown
	}
	got := map[string]float64{}
	for _, m := range DRMetrics(c, snaps) {
		key := m.Name
		for _, l := range m.Labels {
			key += "," + l.Name + "=" + l.Value
		}
		got[key] = m.Value
	}
	want := map[string]float64{
		"nines_galera_dr_replica_info,cluster=g,instance=dr1:3306":                         1,
		"nines_galera_dr_replica_info,cluster=g,instance=dr2:3306":                         1,
		"nines_galera_dr_replica_info,cluster=g,instance=dr3:3306":                         1,
		"nines_galera_dr_replica_source_synced,cluster=g,instance=dr1:3306,source=n1:3306": 0,
		"nines_galera_dr_replica_source_synced,cluster=g,instance=dr2:3306,source=n2:3306": 1,
		"nines_galera_dr_replica_source_synced,cluster=g,instance=dr3:3306,source=n3:3306": 0,
		"nines_galera_dr_replica_info,cluster=g,instance=dr5:3306":                         1,
	}
	if len(got) != len(want) {
		t.Errorf("got %d series, want %d: %v", len(got), len(want), got)
	}
	for k, v := range want {
		if g, ok := got[k]; !ok || g != v {
			t.Errorf("%s = %v (present %v), want %v", k, g, ok, v)
		}
	}
	if DRMetrics(nines.Cluster{Name: "x", Kind: nines.KindGalera}, snaps) != nil {
		t.Error("a cluster without DR replicas has DR series")
	}
}
