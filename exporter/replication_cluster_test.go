//go:build cluster

package exporter_test

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/nines-project/nines"
	"github.com/nines-project/nines/exporter"
	"github.com/nines-project/nines/internal/metric"
	"github.com/nines-project/nines/internal/testbin"
	"github.com/nines-project/nines/probe"
	"github.com/nines-project/nines/sandbox"
)

// replBasePort keeps this test's sandbox clear of the other packages'.
const replBasePort = 32306

// TestReplicationMonitoring: a real semi-sync primary and replica, the
// real probe writing its heartbeat on the primary, and the exporter
// reading both nodes as the appliance does. An operator sees: the
// replica's heartbeat lag near the probe interval and semi-sync ON with
// one client; after STOP SLAVE SQL_THREAD, the SQL thread at 0, the IO
// thread still at 1 and the lag growing second by second while the
// primary's binlog runs ahead of what the replica applied; after STOP
// SLAVE IO_THREAD, the primary still enabled for semi-sync but fallen
// back to async, with no client and async commits counted.
func TestReplicationMonitoring(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	dir, err := os.MkdirTemp("/tmp", "nines-repl-mon-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil { // the servers run as mysql
		t.Fatal(err)
	}
	races, err := testbin.WatchRaces()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { races.Check(t); races.Close() })
	ninesBin, cleanupBin, err := testbin.Build(true)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cleanupBin)
	sb, err := sandbox.StartReplication(ctx, sandbox.Options{Dir: dir + "/sandbox", Nodes: 2, BasePort: replBasePort,
		ClusterName: "replmon", SemiSync: true, Log: t.Output(), AgentBinary: ninesBin})
	if err != nil {
		t.Fatalf("start a semi-sync primary and replica: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		if err := sb.Stop(ctx); err != nil {
			t.Errorf("stop sandbox: %v", err)
		}
	})
	pw, err := os.ReadFile(sb.PasswordPath())
	if err != nil {
		t.Fatal(err)
	}
	password := strings.TrimSpace(string(pw))
	primary, replica := sb.Nodes()[0], sb.Nodes()[1]
	rootPrimary, rootReplica := rootDB(t, sb, primary.Name), rootDB(t, sb, replica.Name)
	// Fall back to async after 300 ms without an acknowledgement instead
	// of the default 10 s, so the fallback below is quick.
	mustExec(t, rootPrimary, "SET GLOBAL rpl_semi_sync_master_timeout=300")

	const source = "replmon-test"
	p, err := probe.New("replmon", []probe.Endpoint{{Address: primary.Address(), User: sandbox.MonitorUser, Password: password}}, probe.Options{Source: source})
	if err != nil {
		t.Fatal(err)
	}
	pctx, stopProbe := context.WithCancel(ctx)
	probeDone := make(chan struct{})
	go func() { defer close(probeDone); p.Run(pctx) }()
	t.Cleanup(func() { stopProbe(); <-probeDone })

	scraper := func(n sandbox.Node, heartbeatSource string) *exporter.Scraper {
		t.Helper()
		s, err := exporter.NewScraper(exporter.Target{Cluster: "replmon", Kind: nines.KindReplication, Address: n.Address(),
			User: sandbox.MonitorUser, Password: password, ReplicaStatus: true, HeartbeatSource: heartbeatSource}, exporter.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	onPrimary, onReplica := scraper(primary, source), scraper(replica, source)
	// metrics scrapes s and returns its series by name and labels.
	metrics := func(s *exporter.Scraper) (map[string]float64, *nines.Snapshot) {
		t.Helper()
		snap := s.Scrape(ctx)
		out := map[string]float64{}
		for _, m := range exporter.SnapshotMetrics(snap) {
			out[seriesKey(m)] = m.Value
		}
		return out, snap
	}

	// Caught up: the replica's lag is the probe's cadence, a second or so.
	var rm, pm map[string]float64
	eventually(t, 10*time.Second, "the replica reads the probe's heartbeat", func() (bool, string) {
		var snap *nines.Snapshot
		rm, snap = metrics(onReplica)
		lag, ok := rm["nines_replication_heartbeat_lag_seconds"]
		return ok && lag < 2.5, fmt.Sprintf("lag %v (present %v), scrape error %q", lag, ok, snap.Err)
	})
	pm, _ = metrics(onPrimary)
	waitPoint := queryString(t, rootPrimary, "SELECT @@global.rpl_semi_sync_master_wait_point")
	for key, want := range map[string]float64{
		"nines_replication_io_thread_state{master_host=127.0.0.1}":  1,
		"nines_replication_sql_thread_state{master_host=127.0.0.1}": 1,
		"nines_replication_semi_sync_slave_enabled":                 1,
	} {
		if got, ok := rm[key]; !ok || got != want {
			t.Errorf("replica %s = %v (present %v), want %v", key, got, ok, want)
		}
	}
	for key, want := range map[string]float64{
		"nines_replication_semi_sync_master_enabled":                                1,
		"mysql_global_status_rpl_semi_sync_master_status":                           1,
		"mysql_global_status_rpl_semi_sync_master_clients":                          1,
		"nines_replication_semi_sync_wait_point_info{wait_point=" + waitPoint + "}": 1,
	} {
		if got, ok := pm[key]; !ok || got != want {
			t.Errorf("primary %s = %v (present %v), want %v", key, got, ok, want)
		}
	}
	if lag := pm["nines_replication_heartbeat_lag_seconds"]; lag > 2.5 {
		t.Errorf("primary's heartbeat age %v s, want about the probe interval", lag)
	}

	// The SQL thread stops: the IO thread still receives (and acknowledges
	// semi-sync), nothing is applied, the lag grows with the clock.
	mustExec(t, rootReplica, "STOP SLAVE SQL_THREAD")
	time.Sleep(3 * time.Second) // let the probe write a few rows the replica will not apply
	rm, snap := metrics(onReplica)
	first, ok := rm["nines_replication_heartbeat_lag_seconds"]
	if !ok || first < 2.5 {
		t.Fatalf("3 s after STOP SLAVE SQL_THREAD the lag is %v s (present %v, scrape error %q), want over 2.5", first, ok, snap.Err)
	}
	if rm["nines_replication_sql_thread_state{master_host=127.0.0.1}"] != 0 || rm["nines_replication_io_thread_state{master_host=127.0.0.1}"] != 1 {
		t.Errorf("threads after STOP SLAVE SQL_THREAD: sql %v io %v, want 0 and 1",
			rm["nines_replication_sql_thread_state{master_host=127.0.0.1}"], rm["nines_replication_io_thread_state{master_host=127.0.0.1}"])
	}
	time.Sleep(time.Second)
	rm, _ = metrics(onReplica)
	if again := rm["nines_replication_heartbeat_lag_seconds"]; again < first+0.5 {
		t.Errorf("lag went from %v s to %v s in a second while the SQL thread was stopped", first, again)
	}
	pm, _ = metrics(onPrimary)
	ahead := false
	for key, seq := range pm {
		if strings.HasPrefix(key, "nines_replication_gtid_binlog_seq{") {
			applied := rm[strings.Replace(key, "gtid_binlog_seq", "gtid_slave_seq", 1)]
			t.Logf("%s: primary's binlog %v, replica applied %v", key, seq, applied)
			ahead = ahead || seq > applied
		}
	}
	if !ahead {
		t.Errorf("no GTID stream of the primary's binlog is ahead of the replica's gtid_slave_pos: primary %v, replica %v", pm, rm)
	}

	// The IO thread stops too: the primary, still enabled, falls back to
	// async on its next commit and counts the commits nobody acknowledged.
	mustExec(t, rootReplica, "STOP SLAVE IO_THREAD")
	eventually(t, 10*time.Second, "the primary falls back to async", func() (bool, string) {
		pm, _ = metrics(onPrimary)
		return pm["nines_replication_semi_sync_master_enabled"] == 1 && pm["mysql_global_status_rpl_semi_sync_master_status"] == 0 &&
				pm["mysql_global_status_rpl_semi_sync_master_clients"] == 0 && pm["mysql_global_status_rpl_semi_sync_master_no_tx"] > 0,
			fmt.Sprintf("enabled %v status %v clients %v no_tx %v", pm["nines_replication_semi_sync_master_enabled"],
				pm["mysql_global_status_rpl_semi_sync_master_status"], pm["mysql_global_status_rpl_semi_sync_master_clients"],
				pm["mysql_global_status_rpl_semi_sync_master_no_tx"])
	})
	rm, _ = metrics(onReplica)
	if got := rm["nines_replication_io_thread_state{master_host=127.0.0.1}"]; got != 0 {
		t.Errorf("IO thread after STOP SLAVE IO_THREAD: %v, want 0 (stopped)", got)
	}

	// Another appliance's source has no rows here: no lag series, and a
	// scrape error that says why.
	other := scraper(replica, "no-such-appliance")
	om, osnap := metrics(other)
	if _, ok := om["nines_replication_heartbeat_lag_seconds"]; ok {
		t.Error("a lag series without a heartbeat row")
	}
	if !strings.Contains(osnap.Err, `no row of probe source "no-such-appliance"`) || om["nines_scrape_success"] != 0 {
		t.Errorf("scrape error %q, success %v; want the missing row named", osnap.Err, om["nines_scrape_success"])
	}
}

// seriesKey is name{label=value,...} without cluster and instance.
func seriesKey(m metric.Metric) string {
	var ls []string
	for _, l := range m.Labels {
		if l.Name != "cluster" && l.Name != "instance" && l.Value != "" {
			ls = append(ls, l.Name+"="+l.Value)
		}
	}
	if len(ls) == 0 {
		return m.Name
	}
	return m.Name + "{" + strings.Join(ls, ",") + "}"
}

func rootDB(t *testing.T, sb *sandbox.Sandbox, name string) *sql.DB {
	t.Helper()
	db, err := sb.DB(name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func mustExec(t *testing.T, db *sql.DB, q string) {
	t.Helper()
	if _, err := db.Exec(q); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}

func queryString(t *testing.T, db *sql.DB, q string) string {
	t.Helper()
	var s string
	if err := db.QueryRow(q).Scan(&s); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return s
}

// eventually polls cond every 200 ms until it holds or limit passes.
func eventually(t *testing.T, limit time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		ok, state := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v; last: %s", what, limit, state)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
