package appliance

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/nines-project/nines"
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
