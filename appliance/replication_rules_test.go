package appliance

import (
	"context"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/nines-project/nines"
	"github.com/nines-project/nines/appliance/store"
	"github.com/nines-project/nines/rules"
	"github.com/nines-project/nines/rules/packs"
)

// TestReplicationPackInTheStore runs the built-in replication alerts in
// nines' own engine (the embedded VictoriaMetrics, MetricsQL), not only in
// promtool: five minutes of a cluster in trouble are written to the store,
// and the alerts that say so fire with their values; the healthy node
// fires nothing.
func TestReplicationPackInTheStore(t *testing.T) {
	st, err := store.Open(store.Options{DataDir: t.TempDir(), Retention: 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	now := time.Now().Truncate(time.Second)
	for s := -300; s <= 0; s++ {
		var batch []store.Series
		add := func(name string, v float64, kv ...string) {
			ls := []store.Label{{Name: "__name__", Value: name}, {Name: "cluster", Value: "r"}}
			for i := 0; i+1 < len(kv); i += 2 {
				ls = append(ls, store.Label{Name: kv[i], Value: kv[i+1]})
			}
			batch = append(batch, store.Series{Labels: ls, Value: v, TimestampMs: now.Add(time.Duration(s) * time.Second).UnixMilli()})
		}
		trouble := s >= -200 // things go wrong 200 s ago
		pick := func(healthy, broken float64) float64 {
			if trouble {
				return broken
			}
			return healthy
		}
		add("nines_probe_success", 1, "instance", "r1:3306")
		// r1, the primary: semi-sync enabled, fallen back, no clients,
		// async commits counted, waiting AFTER_COMMIT.
		add("nines_replication_semi_sync_master_enabled", 1, "instance", "r1:3306")
		add("mysql_global_status_rpl_semi_sync_master_status", pick(1, 0), "instance", "r1:3306")
		add("mysql_global_status_rpl_semi_sync_master_clients", pick(2, 0), "instance", "r1:3306")
		add("mysql_global_status_rpl_semi_sync_master_no_tx", pick(0, float64(s+201)), "instance", "r1:3306")
		add("nines_replication_semi_sync_wait_point_info", 1, "instance", "r1:3306", "wait_point", "AFTER_COMMIT")
		add("nines_replication_heartbeat_lag_seconds", 0.5, "instance", "r1:3306")
		// r2: IO thread connecting, heartbeat 90 s behind.
		add("nines_replication_io_thread_state", pick(1, 2), "instance", "r2:3306", "master_host", "r1")
		add("mysql_slave_status_last_io_errno", pick(0, 2003), "instance", "r2:3306", "master_host", "r1")
		add("nines_replication_sql_thread_state", 1, "instance", "r2:3306", "master_host", "r1")
		add("mysql_slave_status_slave_sql_running", 1, "instance", "r2:3306", "master_host", "r1")
		add("nines_replication_heartbeat_lag_seconds", pick(1, 90), "instance", "r2:3306")
		// r3: SQL thread stopped on a duplicate key.
		add("nines_replication_io_thread_state", 1, "instance", "r3:3306", "master_host", "r1")
		add("nines_replication_sql_thread_state", pick(1, 0), "instance", "r3:3306", "master_host", "r1")
		add("mysql_slave_status_last_sql_errno", pick(0, 1062), "instance", "r3:3306", "master_host", "r1")
		add("mysql_slave_status_slave_sql_running", pick(1, 0), "instance", "r3:3306", "master_host", "r1")
		add("nines_replication_heartbeat_lag_seconds", 1, "instance", "r3:3306")
		// r4: healthy.
		add("nines_replication_io_thread_state", 1, "instance", "r4:3306", "master_host", "r1")
		add("nines_replication_sql_thread_state", 1, "instance", "r4:3306", "master_host", "r1")
		add("mysql_slave_status_last_io_errno", 0, "instance", "r4:3306", "master_host", "r1")
		add("mysql_slave_status_last_sql_errno", 0, "instance", "r4:3306", "master_host", "r1")
		add("mysql_slave_status_slave_sql_running", 1, "instance", "r4:3306", "master_host", "r1")
		add("nines_replication_heartbeat_lag_seconds", 1, "instance", "r4:3306")
		st.Write(batch)
	}
	st.Flush()

	var src []rules.Source
	for _, s := range packs.Sources() {
		if s.Name == "builtin/replication.yml" {
			src = append(src, s)
		}
	}
	clock := now.Add(-100 * time.Second)
	m := rules.NewManager(storeQuerier{st}, storeAppender{st, newIngester(st, nil)}, nil, rules.Options{Now: func() time.Time { return clock }})
	if err := m.Load(src); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	// Every `for` of the pack is at most 1 m: pending at the first
	// evaluation, firing at the second.
	m.EvalOnce(ctx, true)
	clock = now
	m.EvalOnce(ctx, true)
	for g, n := range m.Failures() {
		if n > 0 {
			t.Errorf("group %s failed %d times", g, n)
		}
	}

	want := map[string]float64{
		"ReplicationIOThreadConnecting r2:3306":     2,
		"ReplicationLag r2:3306":                    90,
		"ReplicationSQLThreadError r3:3306":         1062,
		"ReplicationSemiSyncFallback r1:3306":       1,
		"ReplicationSemiSyncNoClients r1:3306":      1,
		"ReplicationSemiSyncAsyncCommits r1:3306":   -1, // a count MetricsQL computes; checked below
		"ReplicationSemiSyncAfterCommit r1:3306":    1,
		"ReplicationIOThreadError r2:3306":          0, // connecting, not stopped: must not fire
		"ReplicationSQLThreadStopped r3:3306":       0, // stopped on an error: the Error alert's
		"ReplicationLagSecondsBehindMaster r2:3306": 0,
	}
	got := map[string]nines.Alert{}
	var firing []string
	for _, a := range m.Alerts() {
		if a.State != nines.AlertFiring {
			continue
		}
		k := a.Labels["alertname"] + " " + a.Labels["instance"]
		got[k] = a
		firing = append(firing, k)
	}
	sort.Strings(firing)
	for k, v := range want {
		a, ok := got[k]
		switch {
		case v == 0 && ok:
			t.Errorf("%s fires (%v)", k, a.Value)
		case v == 0:
		case !ok:
			t.Errorf("%s does not fire; firing: %s", k, strings.Join(firing, ", "))
		case v > 0 && a.Value != v:
			t.Errorf("%s value %v, want %v", k, a.Value, v)
		}
	}
	if a := got["ReplicationSemiSyncAsyncCommits r1:3306"]; a.Value < 1 || !strings.Contains(a.Annotations["summary"], "commits on r1:3306 went unacknowledged") {
		t.Errorf("async commits: value %v, summary %q", a.Value, a.Annotations["summary"])
	}
	if s := got["ReplicationLag r2:3306"].Annotations["summary"]; s != "r2:3306 is 90 s behind its primary" {
		t.Errorf("lag summary %q", s)
	}
	for _, k := range firing {
		if strings.HasSuffix(k, " r4:3306") {
			t.Errorf("healthy replica r4: %s fires", k)
		}
	}
	t.Logf("firing: %s", strings.Join(firing, ", "))
}
