package ndbsim

import (
	"context"
	"database/sql"
	_ "embed"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/nines-project/nines/ndb"
)

// ndbinfoDDL builds the ndbinfo schema: base tables ndb$... and the 8.x
// views over them (facts A.1.0, A.1.1).
//
//go:embed ndbinfo.sql
var ndbinfoDDL string

// NdbinfoStatements returns the schema's statements in order.
func NdbinfoStatements() []string {
	var out []string
	var cur []string
	for _, line := range strings.Split(ndbinfoDDL, "\n") {
		t := strings.TrimSpace(line)
		if t == "" || strings.HasPrefix(t, "--") {
			continue
		}
		cur = append(cur, line)
		if strings.HasSuffix(t, ";") {
			stmt := strings.TrimSuffix(strings.TrimSpace(strings.Join(cur, "\n")), ";")
			out = append(out, stmt)
			cur = nil
		}
	}
	return out
}

// InstallNdbinfo (re)creates the ndbinfo database on an SQL node: any
// older one is dropped. It needs a connection allowed to create
// databases and views with DEFINER root@localhost (root over the socket).
func InstallNdbinfo(ctx context.Context, db *sql.DB) error {
	for _, stmt := range NdbinfoStatements() {
		if _, err := db.ExecContext(ctx, stmt); err != nil {
			return fmt.Errorf("install ndbinfo: %.60q: %w", stmt, err)
		}
	}
	return nil
}

// Table is the full content of one base table.
type Table struct {
	Name    string // base table, e.g. ndb$nodes
	Columns []string
	Rows    [][]any
}

// Codes of the base tables, turned into strings by the views (A.1.1).
const (
	nodeStatusStarting   = 2
	nodeStatusStarted    = 3
	nodeStatusSingleUser = 4
	nodeStatusStopping1  = 5

	connConnected    = 0
	connConnecting   = 1
	connDisconnected = 2

	arbitFind = 2
	arbitRun  = 6

	cmvmiBlock = 254 // memoryusage reads block 254 only in 8.x [VIEW-25]
	// Block numbers of DBTC, DBLQH and DBSPJ are ndb's BlockNumbers.h,
	// not in the facts (assumed).
	dbtcBlock  = 245
	dblqhBlock = 247
	dbspjBlock = 267

	dataPageBytes = 32 << 10 // DataMemory page [DOC8 §25.6.16.45]
	lmbPageBytes  = 256      // long message buffer page
	lmbBytes      = 64 << 20 // 67108864 in the facts' example
	// lmbUsedPages is a steady small use of the long message buffer; the
	// model does not simulate signals.
	lmbUsedPages = 1024
	// redoBufferBytes is RedoBuffer's default (32M; manual, not in the
	// facts). backupBufferBytes is BackupDataBufferSize 16777216 from the
	// facts' config_values example, used for both backup buffers.
	redoBufferBytes   = 32 << 20
	backupBufferBytes = 16777216

	// arbTicket is the one arbitration ticket the healthy model shows
	// on every node (a hex string, as NDB prints it).
	arbTicket = "5f2d0a4e00010007"
)

// Config parameter numbers for config_values: CFG_NODE_ID 3,
// CFG_DB_NO_REPLICAS 101 and CFG_DB_DATA_MEM 112 are ndb's
// ConfigParamId.h numbers, not in the facts (assumed).
const (
	cfgNodeID     = 3
	cfgNoReplicas = 101
	cfgDataMemory = 112
)

// NdbinfoTables computes every base table's rows from a model state at
// one instant. Only running data nodes report rows (A.1.0); with none
// running every data-node table is empty.
func NdbinfoTables(st State, cfg Config) []Table {
	var running []DataNode
	for _, d := range st.Data {
		if d.Running {
			running = append(running, d)
		}
	}
	nodes := Table{Name: "ndb$nodes", Columns: []string{"node_id", "uptime", "status", "start_phase", "config_generation"}}
	pools := Table{Name: "ndb$pools", Columns: []string{"node_id", "block_number", "block_instance", "pool_name", "used", "total", "high", "entry_size"}}
	spaces := Table{Name: "ndb$logspaces", Columns: []string{"node_id", "log_type", "log_id", "log_part", "total", "used", "high"}}
	buffers := Table{Name: "ndb$logbuffers", Columns: spaces.Columns}
	blocks := Table{Name: "ndb$blocks", Columns: []string{"block_number", "block_name"}, Rows: [][]any{
		{dbtcBlock, "DBTC"}, {dblqhBlock, "DBLQH"}, {248, "DBACC"}, {cmvmiBlock, "CMVMI"}, {dbspjBlock, "DBSPJ"}}}
	counters := Table{Name: "ndb$counters", Columns: []string{"node_id", "block_number", "block_instance", "counter_id", "val"}}
	trans := Table{Name: "ndb$transporters", Columns: []string{"node_id", "remote_node_id", "connection_status", "remote_address",
		"bytes_sent", "bytes_received", "connect_count", "overloaded", "overload_count", "slowdown", "slowdown_count", "encrypted"}}
	res := Table{Name: "ndb$resources", Columns: []string{"node_id", "resource_id", "reserved", "used", "max", "high", "spare"}}
	member := Table{Name: "ndb$membership", Columns: []string{"node_id", "group_id", "left_node", "right_node", "president", "successor",
		"dynamic_id", "arbitrator", "arb_ticket", "arb_state", "arb_connected", "conn_rank1_arbs", "conn_rank2_arbs"}}
	restart := Table{Name: "ndb$restart_info", Columns: restartColumns}
	backup := Table{Name: "ndb$backup_id", Columns: []string{"id", "fragment", "row_id"}, Rows: [][]any{{st.LastBackupID, 0, 0}}}
	values := Table{Name: "ndb$config_values", Columns: []string{"node_id", "config_param", "config_value"}}

	// Counters by block, as A.1.1 associates them: OPERATIONS and the
	// overload counters in DBLQH, the *_RECEIVED/*_SENT/SCAN_* in DBSPJ,
	// the rest in DBTC. The model runs no transactions: all are 0.
	counterBlocks := map[int][]int{
		dbtcBlock:  {1, 2, 3, 4, 5, 6, 7, 8, 9, 24, 25},
		dblqhBlock: {10, 26, 27, 28, 29, 30, 31},
		dbspjBlock: {11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23},
	}
	arbitrator := 0
	for _, n := range st.Nodes {
		if n.Type == ndb.TypeMGM && n.Status == ndb.StatusConnected {
			arbitrator = n.ID // the management server arbitrates (A.4)
		}
	}
	for _, d := range running {
		id := d.ID
		code, phase := nodeStatusStarted, 0
		switch d.Status {
		case ndb.StatusStarting:
			code, phase = nodeStatusStarting, d.StartPhase
		case ndb.StatusSingleUser:
			code = nodeStatusSingleUser
		case ndb.StatusShuttingDown:
			code = nodeStatusStopping1
		}
		nodes.Rows = append(nodes.Rows, []any{id, int64(d.Uptime / time.Second), code, phase, d.ConfigGeneration})
		pools.Rows = append(pools.Rows,
			[]any{id, cmvmiBlock, 0, "Data memory", d.DataMemoryUsed, d.DataMemoryPages, d.DataMemoryUsed, dataPageBytes},
			[]any{id, cmvmiBlock, 0, "Long message buffer", lmbUsedPages, lmbBytes / lmbPageBytes, lmbUsedPages, lmbPageBytes})
		for part, p := range d.RedoParts {
			spaces.Rows = append(spaces.Rows, []any{id, 0, 0, part, p.Total, p.Used, p.Used})
			buffers.Rows = append(buffers.Rows, []any{id, 0, 0, part, redoBufferBytes, 0, 0})
		}
		if st.BackupRunning {
			// One BACKUP-DATA and one BACKUP-LOG row per node while a
			// backup runs [DOC8 §25.6.16.42].
			buffers.Rows = append(buffers.Rows, []any{id, 2, 0, 0, backupBufferBytes, 0, 0}, []any{id, 3, 0, 0, backupBufferBytes, 0, 0})
		}
		for _, blk := range []int{dbtcBlock, dblqhBlock, dbspjBlock} {
			for _, c := range counterBlocks[blk] {
				counters.Rows = append(counters.Rows, []any{id, blk, 0, c, 0})
			}
		}
		for _, r := range st.Nodes {
			status, addr, connects := connDisconnected, "-", 0
			switch {
			case r.ID == id:
				// A node's row for itself is DISCONNECTED (A.1.1).
			case r.Type == ndb.TypeNDB:
				if runningID(running, r.ID) {
					status, addr, connects = connConnected, cfg.Host, 1
				} else {
					status = connConnecting // a stopped peer (A.1.1)
				}
			case r.Status == ndb.StatusConnected:
				status, addr, connects = connConnected, r.Address, 1
			}
			trans.Rows = append(trans.Rows, []any{id, r.ID, status, addr, 0, 0, connects, 0, 0, 0, 0, 0})
		}
		for rid := 0; rid <= 9; rid++ {
			used, max := 0, 0
			if rid == 3 { // DATA_MEMORY
				used, max = d.DataMemoryUsed, d.DataMemoryPages
			}
			res.Rows = append(res.Rows, []any{id, rid, 0, used, max, used, 0})
		}
		values.Rows = append(values.Rows, []any{id, cfgNodeID, strconv.Itoa(id)},
			[]any{id, cfgNoReplicas, strconv.Itoa(cfg.Replicas)},
			[]any{id, cfgDataMemory, strconv.FormatInt(int64(d.DataMemoryPages)*dataPageBytes, 10)})
	}
	member.Rows = membershipRows(running, arbitrator)
	if len(running) > 0 {
		restart.Rows = restartRows(st.Data)
	}
	return []Table{nodes, pools, spaces, buffers, blocks, counters, trans, res, member, restart, backup, values}
}

func runningID(ds []DataNode, id int) bool {
	for _, d := range ds {
		if d.ID == id {
			return true
		}
	}
	return false
}

// membershipRows: the heartbeat ring of the started data nodes, by node
// id; president and successor are the lowest dynamic ids, as in a
// healthy cluster every node agrees (A.1.1 membership).
func membershipRows(running []DataNode, arbitrator int) [][]any {
	var ring []DataNode
	for _, d := range running {
		if d.DynamicID != 0 {
			ring = append(ring, d)
		}
	}
	byDyn := append([]DataNode(nil), ring...)
	sort.Slice(byDyn, func(i, j int) bool { return byDyn[i].DynamicID < byDyn[j].DynamicID })
	order := map[int]int{}
	for i, d := range byDyn {
		order[d.ID] = i + 1
	}
	president, successor := 0, 0
	if len(byDyn) > 0 {
		president = byDyn[0].ID
	}
	if len(byDyn) > 1 {
		successor = byDyn[1].ID
	}
	state, connected, rank1 := arbitFind, 0, ""
	if arbitrator != 0 {
		state, connected, rank1 = arbitRun, 1, strconv.Itoa(arbitrator)
	}
	var rows [][]any
	for i, d := range ring {
		left := ring[(i+len(ring)-1)%len(ring)].ID
		right := ring[(i+1)%len(ring)].ID
		dyn := order[d.ID] | (i+1)<<16
		row := []any{d.ID, d.NodeGroup, left, right, president, successor, dyn, arbitrator, arbTicket, state, connected, rank1, ""}
		if a := d.Arbitration; a != nil {
			row[7], row[8], row[9], row[10] = a.Arbitrator, a.Ticket, a.State, 0
			if a.Connected {
				row[10] = 1
			}
		}
		rows = append(rows, row)
	}
	return rows
}

var restartColumns = []string{"node_id", "node_restart_status", "node_restart_status_int",
	"secs_to_complete_node_failure", "secs_to_allocate_node_id", "secs_to_include_in_heartbeat_protocol",
	"secs_until_wait_for_ndbcntr_master", "secs_wait_for_ndbcntr_master", "secs_to_get_start_permitted",
	"secs_to_wait_for_lcp_for_copy_meta_data", "secs_to_copy_meta_data", "secs_to_include_node",
	"secs_starting_node_to_request_local_recovery", "secs_for_local_recovery", "secs_restore_fragments",
	"secs_undo_disk_data", "secs_exec_redo_log", "secs_index_rebuild", "secs_to_synchronize_starting_node",
	"secs_wait_lcp_for_restart", "secs_wait_subscription_handover", "total_restart_secs"}

// restartRows: one row per data node that failed or restarted, in the
// status codes of [DOC8 §25.6.16.52]: 14 after a failure, 8 while it
// restores, 12 when its restart completed. Timings are not simulated.
func restartRows(data []DataNode) [][]any {
	var rows [][]any
	for _, d := range data {
		if !d.Restarted {
			continue
		}
		code, text := 14, "Node failure handling completed"
		switch {
		case d.Status == ndb.StatusStarting:
			code, text = 8, "Restore fragments ongoing"
		case d.Running:
			code, text = 12, "Restart completed"
		}
		row := []any{d.ID, text, code}
		for len(row) < len(restartColumns) {
			row = append(row, 0)
		}
		rows = append(rows, row)
	}
	return rows
}

// StateSource gives the state to mirror; *Cluster is one. A sandbox
// process that learns the cluster's state another way supplies its own.
type StateSource interface {
	State() State
}

// Syncer keeps one SQL node's ndbinfo base tables equal to the model.
// Each Sync replaces every table in one transaction, so readers see
// one instant of the model.
type Syncer struct {
	DB     *sql.DB // root on the SQL node, e.g. over its unix socket
	Source StateSource
	Config Config // the cluster's config (Host, Replicas), defaults filled
}

// NewSyncer mirrors c into db.
func NewSyncer(db *sql.DB, c *Cluster) *Syncer {
	return &Syncer{DB: db, Source: c, Config: c.Config()}
}

// Sync writes the current state.
func (s *Syncer) Sync(ctx context.Context) error {
	tables := NdbinfoTables(s.Source.State(), s.Config)
	tx, err := s.DB.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sync ndbinfo: %w", err)
	}
	defer tx.Rollback()
	for _, t := range tables {
		if _, err := tx.ExecContext(ctx, "DELETE FROM ndbinfo.`"+t.Name+"`"); err != nil {
			return fmt.Errorf("sync ndbinfo.%s: %w", t.Name, err)
		}
		if len(t.Rows) == 0 {
			continue
		}
		row := "(" + strings.TrimSuffix(strings.Repeat("?,", len(t.Columns)), ",") + ")"
		q := "INSERT INTO ndbinfo.`" + t.Name + "` (`" + strings.Join(t.Columns, "`,`") + "`) VALUES " +
			strings.TrimSuffix(strings.Repeat(row+",", len(t.Rows)), ",")
		args := make([]any, 0, len(t.Rows)*len(t.Columns))
		for _, r := range t.Rows {
			if len(r) != len(t.Columns) {
				return fmt.Errorf("sync ndbinfo.%s: a row of %d values for %d columns", t.Name, len(r), len(t.Columns))
			}
			args = append(args, r...)
		}
		if _, err := tx.ExecContext(ctx, q, args...); err != nil {
			return fmt.Errorf("sync ndbinfo.%s: %w", t.Name, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("sync ndbinfo: commit: %w", err)
	}
	return nil
}

// Run syncs every interval until ctx ends. A failed sync is passed to
// onErr (may be nil) and retried on the next tick: an SQL node that
// restarts catches up by itself.
func (s *Syncer) Run(ctx context.Context, every time.Duration, onErr func(error)) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		if err := s.Sync(ctx); err != nil && onErr != nil && ctx.Err() == nil {
			onErr(err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
