package appliance

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/nines-project/nines"
	"github.com/nines-project/nines/appliance/config"
)

// The cluster API shows a replication node's positions as the server
// spells them and its heartbeat lag; a node where neither was read shows
// no replication object, and an unread lag is absent, not 0.
func TestReplicationView(t *testing.T) {
	if v := replView(&nines.Snapshot{}); v != nil {
		t.Errorf("Galera-like snapshot: %+v, want none", v)
	}
	lag := 1500 * time.Millisecond
	b, err := json.Marshal(replView(&nines.Snapshot{
		Replication:  &nines.ReplicationState{GTIDBinlogPos: "0-1-10", GTIDSlavePos: "0-1-9", SemiSyncSlaveEnabled: true, SemiSyncWaitPoint: "AFTER_SYNC"},
		HeartbeatLag: &lag,
	}))
	if err != nil {
		t.Fatal(err)
	}
	want := `{"gtid_binlog_pos":"0-1-10","gtid_slave_pos":"0-1-9","semi_sync_master_enabled":false,"semi_sync_slave_enabled":true,"semi_sync_wait_point":"AFTER_SYNC","heartbeat_lag_seconds":1.5}`
	if string(b) != want {
		t.Errorf("view = %s\nwant   %s", b, want)
	}
	b, _ = json.Marshal(replView(&nines.Snapshot{Replication: &nines.ReplicationState{GTIDBinlogPos: "0-1-10"}}))
	if want := `{"gtid_binlog_pos":"0-1-10","gtid_slave_pos":"","semi_sync_master_enabled":false,"semi_sync_slave_enabled":false,"semi_sync_wait_point":""}`; string(b) != want {
		t.Errorf("view without heartbeat = %s\nwant %s", b, want)
	}
}

// The exporter reads the heartbeat of the probe's own source on the nodes
// of replication clusters that have a probe, and nowhere else (a node
// without heartbeat rows would be a scrape error every second).
func TestScrapeTargetsHeartbeatSource(t *testing.T) {
	cfg := &config.Config{Clusters: []config.Cluster{
		{Name: "repl", Kind: nines.KindReplication, Nodes: []config.Node{{Address: "r1:3306"}, {Address: "r2:3306"}}},
		{Name: "noprobe", Kind: nines.KindReplication, Nodes: []config.Node{{Address: "n1:3306"}}, Probe: config.Probe{Disabled: true}},
		{Name: "gal", Kind: nines.KindGalera, Nodes: []config.Node{{Address: "g1:3306"}}},
	}}
	want := map[string]string{"r1:3306": "appliance-1", "r2:3306": "appliance-1", "n1:3306": "", "g1:3306": ""}
	for _, tg := range scrapeTargets(cfg, "appliance-1") {
		if tg.HeartbeatSource != want[tg.Address] {
			t.Errorf("%s: heartbeat source %q, want %q", tg.Address, tg.HeartbeatSource, want[tg.Address])
		}
	}
}

// A replica's row names its source with the port, so the console can
// tell which configured node it replicates from (and so which is the
// primary a switchover moves away from).
func TestNodeViewReplicaSource(t *testing.T) {
	behind := int64(0)
	nv := newNodeView("127.0.0.1:14307", &nines.Snapshot{Up: true, Variables: map[string]string{"read_only": "ON"},
		Replicas: []nines.ReplicaStatus{{SourceHost: "127.0.0.1", SourcePort: 14306, IORunning: true, SQLRunning: true, SecondsBehind: &behind}}})
	b, err := json.Marshal(nv.Replicas)
	if err != nil {
		t.Fatal(err)
	}
	want := `[{"channel":"","source":"127.0.0.1","source_port":14306,"io_running":true,"sql_running":true,"seconds_behind":0}]`
	if string(b) != want {
		t.Errorf("replicas = %s\nwant       %s", b, want)
	}
	if nv.ReadOnly != "ON" {
		t.Errorf("read_only %q, want ON", nv.ReadOnly)
	}
}
