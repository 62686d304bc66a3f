//go:build cluster

package ndbsim

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nines-project/nines/internal/testbin"
	"github.com/nines-project/nines/ndb"
)

// sqlNode is the one mariadbd of this package's cluster tests, standing
// in for an NDB SQL node. Run under flock /tmp/nines-cluster.lock.
var sqlNode *testbin.MariaDB

func TestMain(m *testing.M) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	srv, err := testbin.StartMariaDB(ctx, "ndbsim-sql")
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

// fakeClock is a clock tests move by hand.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// Column kinds of facts A.1.1: "int" INT UNSIGNED, "bigint" BIGINT
// UNSIGNED, "string" a CASE or VARCHAR column, "decimal" a SUM(); ""
// where the facts give no type (the name is still checked).
var wantColumns = map[string][]string{
	"nodes":       {"node_id int", "uptime bigint", "status string", "start_phase int", "config_generation int"},
	"memoryusage": {"node_id int", "memory_type string", "used decimal", "used_pages decimal", "total decimal", "total_pages decimal"},
	"logspaces":   {"node_id int", "log_type string", "log_id int", "log_part int", "total bigint", "used bigint"},
	"logbuffers":  {"node_id int", "log_type string", "log_id int", "log_part int", "total bigint", "used bigint"},
	"counters":    {"node_id int", "block_name string", "block_instance int", "counter_id int", "counter_name string", "val bigint"},
	"transporters": {"node_id int", "remote_node_id int", "status string", "remote_address string", "bytes_sent bigint", "bytes_received bigint",
		"connect_count int", "overloaded int", "overload_count int", "slowdown int", "slowdown_count int", "encrypted "},
	"resources": {"node_id int", "resource_name string", "reserved int", "used int", "max int", "spare int"},
	"membership": {"node_id ", "group_id ", "left_node ", "right_node ", "president ", "successor ", "succession_order ", "Conf_HB_order ",
		"arbitrator ", "arb_ticket string", "arb_state string", "arb_connected string", "connected_rank1_arbs string", "connected_rank2_arbs string"},
	"arbitrator_validity_summary": {"arbitrator ", "arb_ticket ", "arb_connected string", "consensus_count "},
	"restart_info": {"node_id int", "node_restart_status string", "node_restart_status_int int",
		"secs_to_complete_node_failure int", "secs_to_allocate_node_id int", "secs_to_include_in_heartbeat_protocol int",
		"secs_until_wait_for_ndbcntr_master int", "secs_wait_for_ndbcntr_master int", "secs_to_get_start_permitted int",
		"secs_to_wait_for_lcp_for_copy_meta_data int", "secs_to_copy_meta_data int", "secs_to_include_node int",
		"secs_starting_node_to_request_local_recovery int", "secs_for_local_recovery int", "secs_restore_fragments int",
		"secs_undo_disk_data int", "secs_exec_redo_log int", "secs_index_rebuild int", "secs_to_synchronize_starting_node int",
		"secs_wait_lcp_for_restart int", "secs_wait_subscription_handover int", "total_restart_secs int"},
	"cluster_operations": {"node_id ", "block_instance ", "transid ", "operation_type string", "state string", "tableid ", "fragmentid ",
		"client_node_id ", "client_block_ref ", "tc_node_id ", "tc_block_no ", "tc_block_instance "},
	"backup_id":     {"id bigint"},
	"config_values": {"node_id int", "config_param int", "config_value string"},
}

func kind(dataType, columnType string) string {
	unsigned := strings.Contains(columnType, "unsigned")
	switch {
	case dataType == "int" && unsigned:
		return "int"
	case dataType == "bigint" && unsigned:
		return "bigint"
	case dataType == "varchar" || dataType == "char":
		return "string"
	case dataType == "decimal":
		return "decimal"
	}
	return dataType + " " + columnType
}

func install(t *testing.T) *sql.DB {
	t.Helper()
	if err := InstallNdbinfo(context.Background(), sqlNode.DB); err != nil {
		t.Fatal(err)
	}
	return sqlNode.DB
}

// TestNdbinfoSchemaMatchesFacts: every view of A.1.1 exists with the
// documented columns, in order, of the documented types, and the
// facts' own queries run unchanged.
func TestNdbinfoSchemaMatchesFacts(t *testing.T) {
	db := install(t)
	for view, cols := range wantColumns {
		rows, err := db.Query(`SELECT COLUMN_NAME, DATA_TYPE, COLUMN_TYPE FROM information_schema.COLUMNS
			WHERE TABLE_SCHEMA = 'ndbinfo' AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION`, view)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for rows.Next() {
			var name, dt, ct string
			if err := rows.Scan(&name, &dt, &ct); err != nil {
				t.Fatal(err)
			}
			got = append(got, name+" "+kind(dt, ct))
		}
		rows.Close()
		want := make([]string, len(cols))
		for i, c := range cols {
			want[i] = c
			if strings.HasSuffix(c, " ") && i < len(got) && strings.HasPrefix(got[i], c) {
				want[i] = got[i] // type not in the facts: the name must match
			}
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("ndbinfo.%s columns:\n got %q\nwant %q", view, got, want)
		}
		var isView string
		if err := db.QueryRow(`SELECT TABLE_TYPE FROM information_schema.TABLES WHERE TABLE_SCHEMA='ndbinfo' AND TABLE_NAME=?`, view).Scan(&isView); err != nil || isView != "VIEW" {
			t.Errorf("ndbinfo.%s is %q (%v), want a VIEW over ndb$ base tables (A.1.0)", view, isView, err)
		}
	}
	c, err := NewCluster(Config{DataNodes: 4, Replicas: 2})
	if err != nil {
		t.Fatal(err)
	}
	if err := NewSyncer(db, c).Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		"SELECT * FROM ndbinfo.nodes",
		"SELECT node_id, memory_type, total FROM ndbinfo.memoryusage",
		"SELECT node_id, remote_node_id, status FROM ndbinfo.transporters",
		"SELECT node_id,left_node,right_node FROM ndbinfo.membership",
		"SELECT * FROM ndbinfo.arbitrator_validity_summary",
		"SELECT * FROM ndbinfo.restart_info",
		"SELECT * FROM ndbinfo.cluster_operations",
		"SELECT id FROM ndbinfo.backup_id",
		"SELECT * FROM ndbinfo.counters",
		"SELECT * FROM ndbinfo.logbuffers",
		"SELECT * FROM ndbinfo.resources",
		"SELECT v.node_id, v.config_param, v.config_value FROM ndbinfo.config_values v ORDER BY v.node_id",
	} {
		rows, err := db.Query(q)
		if err != nil {
			t.Errorf("%s: %v", q, err)
			continue
		}
		rows.Close()
	}
}

func queryStrings(t *testing.T, db *sql.DB, q string) []string {
	t.Helper()
	rows, err := db.Query(q)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	var out []string
	for rows.Next() {
		vals := make([]sql.NullString, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		var parts []string
		for _, v := range vals {
			if v.Valid {
				parts = append(parts, v.String)
			} else {
				parts = append(parts, "NULL")
			}
		}
		out = append(out, strings.Join(parts, " "))
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func expectRows(t *testing.T, db *sql.DB, q string, want ...string) {
	t.Helper()
	got := queryStrings(t, db, q)
	if !reflect.DeepEqual(got, want) && !(len(got) == 0 && len(want) == 0) {
		t.Errorf("%s:\n got %q\nwant %q", q, got, want)
	}
}

// TestSyncerFollowsModel walks the facts' scenarios on a 4-node, 2-replica
// cluster: the documented healthy rows, `2 STOP` (node 2 gone from nodes
// and from the reporting side of transporters, its peers CONNECTING),
// DataMemory and redo filling, a restart through the start phases with
// a new config generation, and a backup id.
func TestSyncerFollowsModel(t *testing.T) {
	db := install(t)
	clk := &fakeClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	c, err := NewCluster(Config{DataNodes: 4, Replicas: 2, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	s := NewSyncer(db, c)
	sync := func() {
		t.Helper()
		if err := s.Sync(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	clk.Add(10462 * time.Second)
	sync()
	expectRows(t, db, "SELECT * FROM ndbinfo.nodes ORDER BY node_id",
		"1 10462 STARTED 0 1", "2 10462 STARTED 0 1", "3 10462 STARTED 0 1", "4 10462 STARTED 0 1")
	expectRows(t, db, "SELECT node_id, remote_node_id, status, remote_address FROM ndbinfo.transporters WHERE node_id = 1 ORDER BY remote_node_id",
		"1 1 DISCONNECTED -", "1 2 CONNECTED 127.0.0.1", "1 3 CONNECTED 127.0.0.1", "1 4 CONNECTED 127.0.0.1",
		"1 50 CONNECTED 127.0.0.1", "1 100 CONNECTED 127.0.0.1")
	expectRows(t, db, "SELECT node_id, memory_type, used, total FROM ndbinfo.memoryusage WHERE node_id = 1 ORDER BY memory_type",
		"1 Data memory 0 104857600", "1 Long message buffer 262144 67108864")
	expectRows(t, db, "SELECT node_id, left_node, right_node, president, successor, succession_order, arbitrator, arb_state, arb_connected FROM ndbinfo.membership ORDER BY node_id",
		"1 4 2 1 2 1 50 ARBIT_RUN Yes", "2 1 3 1 2 2 50 ARBIT_RUN Yes", "3 2 4 1 2 3 50 ARBIT_RUN Yes", "4 3 1 1 2 4 50 ARBIT_RUN Yes")
	expectRows(t, db, "SELECT arbitrator, arb_ticket, arb_connected, consensus_count FROM ndbinfo.arbitrator_validity_summary",
		"50 "+arbTicket+" Yes 4")
	expectRows(t, db, "SELECT * FROM ndbinfo.restart_info")
	expectRows(t, db, "SELECT id FROM ndbinfo.backup_id", "0")
	expectRows(t, db, "SELECT COUNT(*) FROM ndbinfo.counters WHERE node_id = 1 AND counter_name <> '<unknown>' AND block_name IS NOT NULL", "31")

	// `2 STOP` [DOC8 §25.6.16.47, §25.6.16.65].
	if _, err := c.Stop([]int{2}, StopOptions{}); err != nil {
		t.Fatal(err)
	}
	sync()
	expectRows(t, db, "SELECT node_id FROM ndbinfo.nodes ORDER BY node_id", "1", "3", "4")
	expectRows(t, db, "SELECT COUNT(*) FROM ndbinfo.transporters WHERE node_id = 2", "0")
	expectRows(t, db, "SELECT node_id, status, remote_address, bytes_sent FROM ndbinfo.transporters WHERE remote_node_id = 2 ORDER BY node_id",
		"1 CONNECTING - 0", "3 CONNECTING - 0", "4 CONNECTING - 0")
	expectRows(t, db, "SELECT node_id, node_restart_status, node_restart_status_int FROM ndbinfo.restart_info",
		"2 Node failure handling completed 14")
	expectRows(t, db, "SELECT DISTINCT president, successor FROM ndbinfo.membership", "1 3")

	// DataMemory at 90 % on node 1, a redo part 3/4 full on node 3.
	if err := c.SetDataMemoryUsed(1, 2880); err != nil {
		t.Fatal(err)
	}
	if err := c.SetRedoUsed(3, 1, 3<<28); err != nil {
		t.Fatal(err)
	}
	sync()
	expectRows(t, db, "SELECT used, used_pages, total, total_pages FROM ndbinfo.memoryusage WHERE node_id = 1 AND memory_type = 'Data memory'",
		"94371840 2880 104857600 3200")
	expectRows(t, db, "SELECT resource_name, used, max FROM ndbinfo.resources WHERE node_id = 1 AND resource_name = 'DATA_MEMORY'",
		"DATA_MEMORY 2880 3200")
	expectRows(t, db, "SELECT node_id, log_type, log_part, used, total FROM ndbinfo.logspaces WHERE used > 0",
		"3 REDO 1 805306368 1073741824")
	expectRows(t, db, "SELECT COUNT(*) FROM ndbinfo.logspaces", "12")

	// A new configuration, then node 2 boots: it counts uptime from its
	// start, walks the phases and comes back on the new generation.
	c.SetConfigGeneration(2)
	if err := c.Boot(2, false); err != nil {
		t.Fatal(err)
	}
	clk.Add(5 * time.Second)
	c.Step()
	c.Step()
	sync()
	expectRows(t, db, "SELECT * FROM ndbinfo.nodes WHERE node_id = 2", "2 5 STARTING 2 2")
	expectRows(t, db, "SELECT node_restart_status_int FROM ndbinfo.restart_info WHERE node_id = 2", "8")
	for c.Step() > 0 {
	}
	sync()
	expectRows(t, db, "SELECT node_id, status, config_generation FROM ndbinfo.nodes ORDER BY node_id",
		"1 STARTED 1", "2 STARTED 2", "3 STARTED 1", "4 STARTED 1")
	expectRows(t, db, "SELECT status FROM ndbinfo.transporters WHERE remote_node_id = 2 AND node_id <> 2", "CONNECTED", "CONNECTED", "CONNECTED")
	expectRows(t, db, "SELECT node_restart_status FROM ndbinfo.restart_info WHERE node_id = 2", "Restart completed")

	// Backups 1, 5, 6, 3: backup_id is the last started, 3 [A.1.1];
	// a running backup adds BACKUP-DATA and BACKUP-LOG buffer rows.
	for _, id := range []int{1, 5, 6, 3} {
		if _, err := c.BeginBackup(id); err != nil {
			t.Fatal(err)
		}
		if id != 3 {
			c.FinishBackup(id)
		}
	}
	sync()
	expectRows(t, db, "SELECT id FROM ndbinfo.backup_id", "3")
	expectRows(t, db, "SELECT log_type FROM ndbinfo.logbuffers WHERE node_id = 1 AND log_type LIKE 'BACKUP%' ORDER BY log_type", "BACKUP-DATA", "BACKUP-LOG")

	// An arbitration split: node 3 follows another arbitrator and ticket,
	// so the summary has two rows [DOC8 §25.6.16.2].
	if err := c.SetArbitration(3, &Arbitration{Arbitrator: 100, Ticket: "00000000000000a2", State: 6, Connected: true}); err != nil {
		t.Fatal(err)
	}
	sync()
	expectRows(t, db, "SELECT arbitrator, arb_ticket, arb_connected, consensus_count FROM ndbinfo.arbitrator_validity_summary ORDER BY arbitrator",
		"50 "+arbTicket+" Yes 3", "100 00000000000000a2 Yes 1")
	if err := c.SetArbitration(3, nil); err != nil {
		t.Fatal(err)
	}

	// The management server gone: no arbitrator.
	if err := c.SetStatus(50, ndb.StatusNoContact, 0); err != nil {
		t.Fatal(err)
	}
	sync()
	expectRows(t, db, "SELECT arbitrator, arb_connected, consensus_count FROM ndbinfo.arbitrator_validity_summary", "0 No 4")
}
