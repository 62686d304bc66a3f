//go:build cluster

package ndb

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/nines-project/nines/internal/metric"
	"github.com/nines-project/nines/internal/testbin"
	ndbmsg "github.com/nines-project/nines/ndb"
	"github.com/nines-project/nines/sandbox/ndbsim"
)

// sqlNode stands in for an NDB SQL node: a real mariadbd carrying the
// simulator's ndbinfo schema. Run under flock /tmp/nines-cluster.lock.
var sqlNode *testbin.MariaDB

func TestMain(m *testing.M) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	srv, err := testbin.StartMariaDB(ctx, "exporter-ndb-sql")
	cancel()
	if err != nil {
		fmt.Fprintln(os.Stderr, "start the SQL node:", err)
		os.Exit(1)
	}
	sqlNode = srv
	code := m.Run()
	srv.Stop()
	os.Exit(code)
}

// mirror installs a fresh ndbinfo and writes c's state into it.
func mirror(t testing.TB, c *ndbsim.Cluster) {
	t.Helper()
	ctx := context.Background()
	if err := ndbsim.InstallNdbinfo(ctx, sqlNode.DB); err != nil {
		t.Fatal(err)
	}
	if err := ndbsim.NewSyncer(sqlNode.DB, c).Sync(ctx); err != nil {
		t.Fatal(err)
	}
}

func exec(t testing.TB, stmts ...string) {
	t.Helper()
	for _, s := range stmts {
		if _, err := sqlNode.DB.Exec(s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
}

// TestNdbinfoCollectors: a 4-node, 2-replica cluster after `2 STOP`, with
// node 1's DataMemory at 90 % and a redo part of node 3 three quarters
// full, read from a real server as mysqld_exporter's ndbinfo fork names
// it; then node 2 starting, in phase 3.
func TestNdbinfoCollectors(t *testing.T) {
	c, err := ndbsim.NewCluster(ndbsim.Config{DataNodes: 4, Replicas: 2})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Stop([]int{2}, ndbsim.StopOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := c.SetDataMemoryUsed(1, 2880); err != nil {
		t.Fatal(err)
	}
	if err := c.SetRedoUsed(3, 1, 3<<28); err != nil {
		t.Fatal(err)
	}
	if _, err := c.BeginBackup(7); err != nil {
		t.Fatal(err)
	}
	mirror(t, c)
	// The model runs no transactions; two TRANSACTIONS counters of node
	// 1's DBTC (instances 0 and 1) are summed as the fork sums them.
	exec(t, "UPDATE ndbinfo.`ndb$counters` SET val = 40 WHERE node_id = 1 AND counter_id = 2",
		"INSERT INTO ndbinfo.`ndb$counters` VALUES (1, 245, 1, 2, 2)")
	info := ReadNdbinfo(context.Background(), sqlNode.DB)
	if len(info.Errors) != 0 {
		t.Fatalf("errors on a well-formed ndbinfo: %v", info.Errors)
	}
	set := &metric.Set{}
	Metrics(set, info)
	got := series(set)
	want := map[string]float64{
		`mysql_ndbinfo_nodes_status{node_id="1"}`:                                                          3,
		`mysql_ndbinfo_nodes_config_generation{node_id="4"}`:                                               1,
		`mysql_ndbinfo_memoryusage_used{node_id="1",memory_type="Data memory"}`:                            94371840,
		`mysql_ndbinfo_memoryusage_total{node_id="1",memory_type="Data memory"}`:                           104857600,
		`mysql_ndbinfo_memoryusage_total{node_id="3",memory_type="Long message buffer"}`:                   67108864,
		`mysql_ndbinfo_logspaces_bytes_used{node_id="3",log_type="REDO",log_id="0",log_part="1"}`:          805306368,
		`mysql_ndbinfo_logspaces_bytes_total{node_id="3",log_type="REDO",log_id="0",log_part="1"}`:         1073741824,
		`mysql_ndbinfo_logbuffers_bytes_total{node_id="1",log_type="BACKUP-DATA",log_id="0",log_part="0"}`: 16777216,
		`mysql_ndbinfo_transporters_status{node_id="1",remote_node_id="2",remote_address="-"}`:             1,
		`mysql_ndbinfo_transporters_status{node_id="1",remote_node_id="3",remote_address="127.0.0.1"}`:     0,
		`mysql_ndbinfo_transporters_status{node_id="1",remote_node_id="1",remote_address="-"}`:             2,
		`mysql_ndbinfo_transporters_encrypted{node_id="1",remote_node_id="3"}`:                             0,
		`mysql_ndbinfo_resources_used{node_id="1",resource_name="DATA_MEMORY"}`:                            2880,
		`mysql_ndbinfo_membership_president{node_id="3",group_id="1"}`:                                     1,
		`mysql_ndbinfo_membership_arbitrator{node_id="3",group_id="1"}`:                                    50,
		`mysql_ndbinfo_membership_arb_state{node_id="4",group_id="1"}`:                                     6,
		`mysql_ndbinfo_membership_arb_connected{node_id="1",group_id="0"}`:                                 1,
		`mysql_ndbinfo_membership_arb_ticket{node_id="1",group_id="0"}`:                                    0x5f2d0a4e00010007,
		`mysql_ndbinfo_last_backup_id{}`:                                                                   7,
		`nines_ndbinfo_view_success{view="transporters"}`:                                                  1,
		`mysql_ndbinfo_counters{node_id="1",block_name="DBTC",counter_name="TRANSACTIONS"}`:                42,
		`mysql_ndbinfo_counters{node_id="4",block_name="DBLQH",counter_name="OPERATIONS"}`:                 0,
		`nines_ndbinfo_view_success{view="nodes"}`:                                                         1,
	}
	expectSeries(t, got, want)
	expectNoSeries(t, got, `mysql_ndbinfo_nodes_status{node_id="2"}`, `mysql_ndbinfo_transporters_status{node_id="2"`)
	if n := len(info.Nodes); n != 3 {
		t.Errorf("%d nodes rows, want 3 (node 2 stopped)", n)
	}

	// The cluster view: group 0 down to node 1 (exposed), group 1 whole.
	v := BuildView(c.Nodes(), info)
	if len(v.Groups) != 2 || v.Groups[0].Up != 1 || !v.Groups[0].Exposed() || v.Groups[1].Up != 2 || v.Groups[1].Exposed() {
		t.Fatalf("groups = %+v", v.Groups)
	}
	n2 := v.Groups[0].Nodes[1]
	if n2.ID != 2 || n2.Running || n2.MgmStatus != ndbmsg.StatusNoContact || n2.Serving() {
		t.Errorf("node 2 in the view = %+v, want not running, NO_CONTACT", n2)
	}
	n1 := v.Groups[0].Nodes[0]
	if n1.State != NodeStarted || n1.DataMemoryUsed != 94371840 || n1.DataMemoryTotal != 104857600 || n1.RedoTotal != 4<<30 {
		t.Errorf("node 1 in the view = %+v", n1)
	}
	if !v.ArbitrationAgreed || v.Arbitrator != 50 || v.President != 1 || len(v.Mgm) != 1 || len(v.SQL) != 1 {
		t.Errorf("view = president %d arbitrator %d agreed %v mgm %v sql %v", v.President, v.Arbitrator, v.ArbitrationAgreed, v.Mgm, v.SQL)
	}

	// Node 2 boots and completes phases 0, 1 and 2: STARTING in phase 3,
	// the fork's 2.3.
	if err := c.Boot(2, false); err != nil {
		t.Fatal(err)
	}
	c.Step()
	c.Step()
	c.Step()
	mirror(t, c)
	info = ReadNdbinfo(context.Background(), sqlNode.DB)
	set = &metric.Set{}
	Metrics(set, info)
	expectSeries(t, series(set), map[string]float64{`mysql_ndbinfo_nodes_status{node_id="2"}`: 2.3})
	v = BuildView(c.Nodes(), info)
	if n2 := v.Groups[0].Nodes[1]; !n2.Running || n2.State != NodeStarting || n2.StartPhase != 3 || n2.Serving() || v.Groups[0].Up != 1 {
		t.Errorf("starting node 2 in the view = %+v (group up %d)", n2, v.Groups[0].Up)
	}
}

// TestNdbinfoOddValues: a server that says something nines cannot read
// (NULLs, negatives, unknown state names, a missing view, two backup
// ids) gives errors naming the view, row and column; the states become
// explicit unknowns (-1), and every other view is still read.
func TestNdbinfoOddValues(t *testing.T) {
	c, err := ndbsim.NewCluster(ndbsim.Config{DataNodes: 2, Replicas: 2})
	if err != nil {
		t.Fatal(err)
	}
	mirror(t, c)
	exec(t,
		`CREATE OR REPLACE VIEW ndbinfo.nodes AS SELECT 1 AS node_id, NULL AS uptime, 'BOOTING' AS status, -1 AS start_phase, 3 AS config_generation`,
		"UPDATE ndbinfo.`ndb$transporters` SET connection_status = 9 WHERE node_id = 1 AND remote_node_id = 2",
		"UPDATE ndbinfo.`ndb$membership` SET arb_state = 42, arb_ticket = 'zz' WHERE node_id = 2",
		"INSERT INTO ndbinfo.`ndb$backup_id` VALUES (4, 0, 1)",
		`DROP VIEW ndbinfo.memoryusage`,
	)
	info := ReadNdbinfo(context.Background(), sqlNode.DB)
	var msgs []string
	for _, e := range info.Errors {
		msgs = append(msgs, e.Error())
	}
	all := strings.Join(msgs, "\n")
	for _, want := range []string{
		"ndbinfo.nodes: row 1 column uptime: NULL",
		`ndbinfo.nodes: row 1 column status: unknown value "BOOTING"`,
		"row 1 column start_phase: \"-1\" is not an unsigned integer",
		"ndbinfo.memoryusage: ",
		"column status: NULL",
		`ndbinfo.membership: row 2 column arb_state: unknown value "UNKNOWN"`,
		`row 2 column arb_ticket: "zz" is not a hexadecimal ticket`,
		"ndbinfo.backup_id: 2 rows where one was expected",
	} {
		if !strings.Contains(all, want) {
			t.Errorf("errors lack %q; got:\n%s", want, all)
		}
	}
	if !errors.Is(info.Errors[0], ErrBadValue) {
		t.Errorf("%v does not wrap ErrBadValue", info.Errors[0])
	}
	for _, ok := range []string{"logspaces", "logbuffers", "resources"} {
		if info.Failed(ok) {
			t.Errorf("view %s failed although only others were broken", ok)
		}
	}
	set := &metric.Set{}
	Metrics(set, info)
	got := series(set)
	expectSeries(t, got, map[string]float64{
		`mysql_ndbinfo_nodes_status{node_id="1"}`:                                                      -1,
		`mysql_ndbinfo_transporters_status{node_id="1",remote_node_id="2",remote_address="127.0.0.1"}`: -1,
		`mysql_ndbinfo_membership_arb_state{node_id="2",group_id="0"}`:                                 -1,
		`mysql_ndbinfo_membership_arb_ticket{node_id="2",group_id="0"}`:                                -1,
		`mysql_ndbinfo_logspaces_bytes_total{node_id="1",log_type="REDO",log_id="0",log_part="0"}`:     1 << 30,
		`nines_ndbinfo_view_success{view="nodes"}`:                                                     0,
		`nines_ndbinfo_view_success{view="memoryusage"}`:                                               0,
		`nines_ndbinfo_view_success{view="logspaces"}`:                                                 1,
	})
	expectNoSeries(t, got, "mysql_ndbinfo_last_backup_id", "mysql_ndbinfo_memoryusage")
	v := BuildView(nil, info)
	if v.ArbitrationAgreed || v.ArbState != ArbUnknown {
		t.Errorf("view of disagreeing membership: agreed %v state %v", v.ArbitrationAgreed, v.ArbState)
	}
}

// TestTransportersBefore83: an 8.0 transporters view without encrypted
// is read through the fallback query.
func TestTransportersBefore83(t *testing.T) {
	c, err := ndbsim.NewCluster(ndbsim.Config{DataNodes: 2, Replicas: 2})
	if err != nil {
		t.Fatal(err)
	}
	mirror(t, c)
	exec(t, "CREATE OR REPLACE VIEW ndbinfo.transporters AS SELECT node_id, remote_node_id, CASE connection_status WHEN 0 THEN \"CONNECTED\" WHEN 1 THEN \"CONNECTING\" WHEN 2 THEN \"DISCONNECTED\" WHEN 3 THEN \"DISCONNECTING\" ELSE NULL END AS status, remote_address, bytes_sent, bytes_received, connect_count, overloaded, overload_count, slowdown, slowdown_count FROM ndbinfo.`ndb$transporters`")
	info := ReadNdbinfo(context.Background(), sqlNode.DB)
	if len(info.Errors) != 0 || len(info.Transporters) != 2*4 {
		t.Fatalf("errors %v, %d transporter rows (want 8: 2 data nodes × 4 configured nodes)", info.Errors, len(info.Transporters))
	}
	set := &metric.Set{}
	Metrics(set, info)
	got := series(set)
	expectSeries(t, got, map[string]float64{`mysql_ndbinfo_transporters_slowdown{node_id="1",remote_node_id="2"}`: 0})
	expectNoSeries(t, got, "mysql_ndbinfo_transporters_encrypted")
}
