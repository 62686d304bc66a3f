package mysql

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nines-project/nines"
	"github.com/nines-project/nines/internal/metric"
)

func TestParseThreadState(t *testing.T) {
	tests := []struct {
		v              string
		null, withConn bool
		want           nines.ThreadState
		errHas         string // "" for no error
	}{
		{"Yes", false, true, nines.ThreadRunning, ""},
		{"no", false, true, nines.ThreadStopped, ""},
		{"Connecting", false, true, nines.ThreadConnecting, ""},
		{"", true, true, nines.ThreadUnknown, `Slave_IO_Running is NULL`},
		{"", false, true, nines.ThreadUnknown, `Slave_IO_Running "": want Yes, No or Connecting`},
		{"Preparing", false, true, nines.ThreadUnknown, `Slave_IO_Running "Preparing"`},
		// The SQL thread never connects: Connecting there is unknown.
		{"Connecting", false, false, nines.ThreadUnknown, `Slave_IO_Running "Connecting": want Yes or No`},
	}
	for _, tt := range tests {
		got, err := ParseThreadState("Slave_IO_Running", tt.v, tt.null, tt.withConn)
		if got != tt.want || (err == nil) != (tt.errHas == "") || (err != nil && !strings.Contains(err.Error(), tt.errHas)) {
			t.Errorf("ParseThreadState(%q, null %v, connecting %v) = %v, %v; want %v, error containing %q", tt.v, tt.null, tt.withConn, got, err, tt.want, tt.errHas)
		}
	}
}

// A replica row with values nines cannot read: the error names each
// column and value, and neither the state nor the error number becomes a
// series (a 0 would read as "stopped" or "no error").
func TestReplicaFieldsUnreadable(t *testing.T) {
	fields := map[string]string{
		"Connection_name": "c2", "Master_Host": "db1",
		"Slave_IO_Running": "Preparing", "Slave_SQL_Running": "",
		"Last_IO_Errno": "", "Last_SQL_Errno": "x",
	}
	r, err := replicaFromFields(fields, map[string]bool{"slave_sql_running": true})
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{`channel "c2"`, `Slave_IO_Running "Preparing"`, `Slave_SQL_Running is NULL`, `Last_IO_Errno "": not an error number`, `Last_SQL_Errno "x"`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	if r.IOThread != nines.ThreadUnknown || r.SQLThread != nines.ThreadUnknown || r.IORunning || r.SQLRunning {
		t.Errorf("replica = %+v, want unknown threads", r)
	}
	set := &metric.Set{}
	ReplicaStatusMetrics(set, []nines.ReplicaStatus{r})
	for _, m := range set.Metrics {
		switch m.Name {
		case "nines_replication_io_thread_state", "nines_replication_sql_thread_state", "mysql_slave_status_slave_io_running",
			"mysql_slave_status_slave_sql_running", "mysql_slave_status_last_io_errno", "mysql_slave_status_last_sql_errno":
			t.Errorf("unreadable value became a series: %s = %v", m.Name, m.Value)
		}
	}
}

func strp(s string) *string { return &s }

func goodState() map[string]*string {
	return map[string]*string{
		"gtid_binlog_pos":                 strp("0-1-100,1-2-7"),
		"gtid_slave_pos":                  strp("0-1-99"),
		"rpl_semi_sync_master_enabled":    strp("1"),
		"rpl_semi_sync_slave_enabled":     strp("0"),
		"rpl_semi_sync_master_wait_point": strp("AFTER_SYNC"),
	}
}

func TestParseReplicationState(t *testing.T) {
	st, err := parseReplicationState(goodState())
	if err != nil {
		t.Fatal(err)
	}
	want := nines.ReplicationState{GTIDBinlogPos: "0-1-100,1-2-7", GTIDSlavePos: "0-1-99", SemiSyncMasterEnabled: true, SemiSyncWaitPoint: "AFTER_SYNC"}
	if *st != want {
		t.Errorf("state = %+v, want %+v", *st, want)
	}

	// Each bad value: nil state, an error naming the variable and value.
	tests := []struct {
		name   string
		value  *string
		errHas string
	}{
		{"gtid_binlog_pos", nil, "@@gtid_binlog_pos is NULL"},
		{"gtid_slave_pos", strp("0-1"), `@@gtid_slave_pos: gtid "0-1"`},
		{"rpl_semi_sync_master_enabled", strp("2"), `@@rpl_semi_sync_master_enabled "2": want 0 or 1`},
		{"rpl_semi_sync_slave_enabled", strp(""), `@@rpl_semi_sync_slave_enabled "": want 0 or 1`},
		{"rpl_semi_sync_slave_enabled", nil, `@@rpl_semi_sync_slave_enabled is NULL`},
		{"rpl_semi_sync_master_wait_point", strp("AFTER_LUNCH"), `@@rpl_semi_sync_master_wait_point "AFTER_LUNCH": want AFTER_SYNC or AFTER_COMMIT`},
	}
	for _, tt := range tests {
		raw := goodState()
		raw[tt.name] = tt.value
		st, err := parseReplicationState(raw)
		if st != nil || err == nil || !strings.Contains(err.Error(), tt.errHas) {
			t.Errorf("%s = %v: state %+v, error %v; want nil and an error containing %q", tt.name, tt.value, st, err, tt.errHas)
		}
	}

	// A position too long to export whole is an error, and the state
	// is kept.
	var long []string
	for i := 1; i <= maxGTIDStreams+1; i++ {
		long = append(long, fmt.Sprintf("0-%d-1", i))
	}
	raw := goodState()
	raw["gtid_binlog_pos"] = strp(strings.Join(long, ","))
	st, err = parseReplicationState(raw)
	if st == nil || err == nil || !strings.Contains(err.Error(), "65 (domain, server) streams") {
		t.Errorf("long position: state %v, error %v", st, err)
	}
	set := &metric.Set{}
	ReplicationMetrics(set, st)
	n := 0
	for _, m := range set.Metrics {
		if m.Name == "nines_replication_gtid_binlog_seq" {
			n++
		}
	}
	if n != maxGTIDStreams {
		t.Errorf("%d binlog stream series, want %d", n, maxGTIDStreams)
	}
}

func TestReplicationMetrics(t *testing.T) {
	st, err := parseReplicationState(goodState())
	if err != nil {
		t.Fatal(err)
	}
	set := &metric.Set{}
	ReplicationMetrics(set, st)
	lag := 1500 * time.Millisecond
	HeartbeatMetrics(set, &lag)
	got := index(set.Metrics)
	for key, want := range map[string]float64{
		"nines_replication_gtid_binlog_seq,domain=0,server_id=1":            100,
		"nines_replication_gtid_binlog_seq,domain=1,server_id=2":            7,
		"nines_replication_gtid_slave_seq,domain=0,server_id=1":             99,
		"nines_replication_semi_sync_master_enabled":                        1,
		"nines_replication_semi_sync_slave_enabled":                         0,
		"nines_replication_semi_sync_wait_point_info,wait_point=AFTER_SYNC": 1,
		"nines_replication_heartbeat_lag_seconds":                           1.5,
	} {
		if m, ok := got[key]; !ok || m.Value != want {
			t.Errorf("%s = %v (present %v), want %v", key, m.Value, ok, want)
		}
	}
	if len(set.Metrics) != 7 {
		t.Errorf("%d series, want 7: %v", len(set.Metrics), got)
	}

	// Not read: no series at all, never a lag of 0.
	set = &metric.Set{}
	ReplicationMetrics(set, nil)
	HeartbeatMetrics(set, nil)
	if len(set.Metrics) != 0 {
		t.Errorf("series without a reading: %v", index(set.Metrics))
	}
}

// The replica-status and replication-state parsers meet whatever a server
// prints: they must not panic, and whatever they accept must be a known
// state.
func FuzzReplicaFields(f *testing.F) {
	f.Add("Yes", "No", "0", "1062", false)
	f.Add("Connecting", "Yes", "2003", "0", true)
	f.Add("", "Preparing", "", "x", false)
	f.Fuzz(func(t *testing.T, io, sqlState, ioErrno, sqlErrno string, null bool) {
		r, err := replicaFromFields(map[string]string{
			"Slave_IO_Running": io, "Slave_SQL_Running": sqlState, "Last_IO_Errno": ioErrno, "Last_SQL_Errno": sqlErrno,
		}, map[string]bool{"slave_io_running": null})
		if err == nil && (r.IOThread == nines.ThreadUnknown || r.SQLThread == nines.ThreadUnknown) {
			t.Fatalf("accepted an unknown state: %+v", r)
		}
	})
}

func FuzzParseReplicationState(f *testing.F) {
	f.Add("0-1-100", "0-1-99", "1", "0", "AFTER_SYNC")
	f.Add("", "", "ON", "off", "after_commit")
	f.Fuzz(func(t *testing.T, binlog, slave, master, replica, wait string) {
		st, err := parseReplicationState(map[string]*string{
			"gtid_binlog_pos": &binlog, "gtid_slave_pos": &slave, "rpl_semi_sync_master_enabled": &master,
			"rpl_semi_sync_slave_enabled": &replica, "rpl_semi_sync_master_wait_point": &wait,
		})
		if err == nil && st == nil {
			t.Fatal("nil state without an error")
		}
		if st != nil && st.SemiSyncWaitPoint != "AFTER_SYNC" && st.SemiSyncWaitPoint != "AFTER_COMMIT" {
			t.Fatalf("accepted wait point %q", st.SemiSyncWaitPoint)
		}
	})
}
