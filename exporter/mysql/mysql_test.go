package mysql

import (
	"github.com/nines-project/nines"
	"testing"

	"github.com/nines-project/nines/internal/metric"
)

func TestParseValue(t *testing.T) {
	tests := []struct {
		in   string
		want float64
		ok   bool
	}{
		{"ON", 1, true}, {"off", 0, true}, {"Yes", 1, true}, {"No", 0, true},
		{"Primary", 1, true}, {"non-Primary", 0, true}, {"Disconnected", 0, true},
		{"Connecting", 0, true}, {"DISABLED", 0, true},
		{"42", 42, true}, {"0.25", 0.25, true}, {"-3", -3, true},
		{"2026-11-25 22:40:58", 1795646458, true},
		{"", 0, false}, {"Synced", 0, false}, {"9130690e-e921-11f1-b504-f6cb6679f2e6", 0, false},
	}
	for _, tt := range tests {
		got, ok := ParseValue(tt.in)
		if ok != tt.ok || got != tt.want {
			t.Errorf("ParseValue(%q) = %v, %v; want %v, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

func TestGcacheSize(t *testing.T) {
	opts := "base_dir = /var/lib/mysql/; gcache.page_size = 128M; gcache.size = 32M; gcs.fc_limit = 16"
	if v, ok := GcacheSize(opts); !ok || v != 32<<20 {
		t.Errorf("GcacheSize = %v, %v; want 32 MiB", v, ok)
	}
	for _, bad := range []string{"", "gcache.size = lots", "gcache.size = -1"} {
		if v, ok := GcacheSize(bad); ok {
			t.Errorf("GcacheSize(%q) = %v, want not ok", bad, v)
		}
	}
}

func index(ms []metric.Metric) map[string]metric.Metric {
	out := map[string]metric.Metric{}
	for _, m := range ms {
		key := m.Name
		for _, l := range m.Labels {
			key += "," + l.Name + "=" + l.Value
		}
		out[key] = m
	}
	return out
}

func TestGlobalStatusMetricsNames(t *testing.T) {
	set := &metric.Set{}
	GlobalStatusMetrics(set, map[string]string{
		"Com_select":                       "10",
		"Handler_read_key":                 "5",
		"Innodb_buffer_pool_pages_free":    "100",
		"Innodb_buffer_pool_pages_flushed": "7",
		"Questions":                        "99",
		"wsrep_cluster_status":             "Primary",
		"wsrep_cluster_size":               "3",
		"wsrep_ready":                      "ON",
		"wsrep_local_state_comment":        "Synced",
		"wsrep_local_state_uuid":           "u1",
		"wsrep_cluster_state_uuid":         "u1",
		"wsrep_provider_version":           "26.4.23",
		"wsrep_evs_repl_latency":           "0.0002/0.0003/0.0004/4e-05/2",
	})
	got := index(set.Metrics)
	for key, want := range map[string]float64{
		"mysql_global_status_commands_total,command=select":                                                             10,
		"mysql_global_status_handlers_total,handler=read_key":                                                           5,
		"mysql_global_status_buffer_pool_pages,state=free":                                                              100,
		"mysql_global_status_buffer_pool_page_changes_total,operation=flushed":                                          7,
		"mysql_global_status_questions":                                                                                 99,
		"mysql_global_status_wsrep_cluster_status":                                                                      1,
		"mysql_global_status_wsrep_cluster_size":                                                                        3,
		"mysql_global_status_wsrep_ready":                                                                               1,
		"mysql_galera_evs_repl_latency_avg_seconds":                                                                     0.0003,
		"mysql_galera_evs_repl_latency_sample_size":                                                                     2,
		"mysql_galera_status_info,wsrep_local_state_uuid=u1,wsrep_cluster_state_uuid=u1,wsrep_provider_version=26.4.23": 1,
	} {
		if m, ok := got[key]; !ok || m.Value != want {
			t.Errorf("%s = %+v (present %v), want %v", key, m.Value, ok, want)
		}
	}
	if _, ok := got["mysql_global_status_wsrep_local_state_comment"]; ok {
		t.Error("a string status became a number")
	}
}

func TestReplicaFields(t *testing.T) {
	fields := map[string]string{
		"Connection_name": "", "Master_Host": "127.0.0.1", "Master_Port": "3331",
		"Slave_IO_Running": "Connecting", "Slave_SQL_Running": "Yes",
		"Seconds_Behind_Master": "", "Gtid_IO_Pos": "0-101-7", "Last_IO_Error": "error reconnecting",
		"Last_IO_Errno": "2003", "Last_SQL_Errno": "0",
	}
	r, err := replicaFromFields(fields, map[string]bool{"seconds_behind_master": true})
	if err != nil {
		t.Fatal(err)
	}
	if r.IORunning || !r.SQLRunning || r.IOState != "Connecting" || r.SecondsBehind != nil || r.SourcePort != 3331 || r.GTIDIOPos != "0-101-7" ||
		r.IOThread != nines.ThreadConnecting || r.SQLThread != nines.ThreadRunning || r.LastIOErrno != 2003 || r.LastSQLErrno != 0 {
		t.Errorf("replica = %+v", r)
	}
	set := &metric.Set{}
	ReplicaStatusMetrics(set, []nines.ReplicaStatus{r})
	got := index(set.Metrics)
	if _, ok := got["mysql_slave_status_seconds_behind_master,master_host=127.0.0.1,master_uuid=,channel_name=,connection_name="]; ok {
		t.Error("NULL Seconds_Behind_Master produced a series")
	}
	if m, ok := got["mysql_slave_status_slave_io_running,master_host=127.0.0.1,master_uuid=,channel_name=,connection_name="]; !ok || m.Value != 0 {
		t.Errorf("slave_io_running = %+v, %v; want 0", m, ok)
	}
	// nines tells Connecting (2) from No (0).
	if m, ok := got["nines_replication_io_thread_state,master_host=127.0.0.1,master_uuid=,channel_name=,connection_name="]; !ok || m.Value != 2 {
		t.Errorf("nines_replication_io_thread_state = %+v, %v; want 2", m, ok)
	}
	if m, ok := got["nines_replication_sql_thread_state,master_host=127.0.0.1,master_uuid=,channel_name=,connection_name="]; !ok || m.Value != 1 {
		t.Errorf("nines_replication_sql_thread_state = %+v, %v; want 1", m, ok)
	}

	// MySQL 8 spelling.
	r, err = replicaFromFields(map[string]string{"Channel_Name": "c1", "Source_Host": "db1", "Replica_IO_Running": "Yes", "Replica_SQL_Running": "Yes", "Seconds_Behind_Source": "4"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !r.IORunning || !r.SQLRunning || r.SecondsBehind == nil || *r.SecondsBehind != 4 || r.Channel != "c1" || r.SourceHost != "db1" {
		t.Errorf("mysql 8 replica = %+v", r)
	}
}

func FuzzParseValue(f *testing.F) {
	for _, s := range []string{"ON", "1e3", "2026-11-25 22:40:58", "Jan 02 15:04:05 2006 MST", "", "NaN"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ParseValue(s)
	})
}
