package agent

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/nines-project/nines/internal/mariadbd"
)

// The facts a verification compares a restore with: tables per schema and
// the exact row counts of the largest tables. They are read with the same
// SQL on the source at backup time and on the restored scratch server.
//
// The system schemas are left out, and so is nines, the appliance's probe
// schema: its tables change every second, so their counts would never
// match a restore.
const (
	factsSkipSchemas = `'mysql', 'information_schema', 'performance_schema', 'sys', 'nines'`

	tablesPerSchemaSQL = `SELECT s.schema_name, COUNT(t.table_name)
FROM information_schema.schemata s
LEFT JOIN information_schema.tables t
  ON t.table_schema = s.schema_name AND t.table_type <> 'TEMPORARY'
WHERE s.schema_name NOT IN (` + factsSkipSchemas + `)
GROUP BY s.schema_name`

	// largestTablesSQL picks the 5 tables whose rows are counted (and
	// CHECKed on a restore). It ranks by data_length, InnoDB's estimate:
	// good enough to choose, never compared itself.
	largestTablesSQL = `SELECT table_schema, table_name FROM information_schema.tables
WHERE table_type IN ('BASE TABLE', 'SYSTEM VERSIONED')
  AND table_schema NOT IN (` + factsSkipSchemas + `)
ORDER BY data_length DESC, table_schema, table_name
LIMIT 5`

	// A REPEATABLE READ snapshot that also fixes the binary log position
	// it corresponds to: MariaDB reports it as binlog_snapshot_file and
	// binlog_snapshot_position for the session's snapshot, which is how
	// mariadb-dump --single-transaction --master-data itself reads it.
	isolationSQL   = "SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ"
	snapshotSQL    = "START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY"
	snapshotPosSQL = "SHOW STATUS LIKE 'binlog_snapshot_%'"
)

// tableRef names a table.
type tableRef struct{ Schema, Name string }

// key is how manifests name the table: "schema.table".
func (t tableRef) key() string { return t.Schema + "." + t.Name }

// quoted is the table for SQL text.
func (t tableRef) quoted() string { return quoteIdent(t.Schema) + "." + quoteIdent(t.Name) }

func quoteIdent(s string) string { return "`" + strings.ReplaceAll(s, "`", "``") + "`" }

// sqlConn is what reading the facts needs; *sql.Conn and *sql.DB have it.
type sqlConn interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

var (
	_ sqlConn = (*sql.Conn)(nil)
	_ sqlConn = (*sql.DB)(nil)
)

// adminDB opens a pool to the server behind socket as the local admin
// (mariadbd.SocketUser, by unix_socket authentication), for statements
// that may run long: BACKUP STAGE waits, COUNT(*) and CHECK TABLE of big
// tables. Unlike mariadbd.Server.DB it has no read timeout; ctx bounds
// every statement.
func adminDB(socket string) (*sql.DB, error) {
	cfg := mysql.NewConfig()
	cfg.User = mariadbd.SocketUser()
	cfg.Net = "unix"
	cfg.Addr = socket
	cfg.Timeout = 5 * time.Second
	cfg.Logger = &mysql.NopLogger{}
	c, err := mysql.NewConnector(cfg)
	if err != nil {
		return nil, fmt.Errorf("connect over %s: %w", socket, err)
	}
	db := sql.OpenDB(c)
	db.SetMaxOpenConns(4)
	return db, nil
}

// binlogPos is a binary log position; File is empty when the server
// writes no binary log.
type binlogPos struct {
	File string
	Pos  int64
}

// same reports whether two known positions are one point in history.
func (p binlogPos) same(q binlogPos) bool { return p.File != "" && p == q }

func (p binlogPos) String() string {
	if p.File == "" {
		return "no binlog"
	}
	return p.File + ":" + strconv.FormatInt(p.Pos, 10)
}

// openSnapshot starts a consistent snapshot on conn and returns the binary
// log position it sees. The caller ends the transaction.
func openSnapshot(ctx context.Context, conn sqlConn) (binlogPos, error) {
	for _, q := range []string{isolationSQL, snapshotSQL} {
		if _, err := conn.ExecContext(ctx, q); err != nil {
			return binlogPos{}, fmt.Errorf("%s: %w", q, err)
		}
	}
	rows, err := conn.QueryContext(ctx, snapshotPosSQL)
	if err != nil {
		return binlogPos{}, fmt.Errorf("%s: %w", snapshotPosSQL, err)
	}
	defer rows.Close()
	var p binlogPos
	for rows.Next() {
		var name, value string
		if err := rows.Scan(&name, &value); err != nil {
			return binlogPos{}, err
		}
		switch strings.ToLower(name) {
		case "binlog_snapshot_file":
			p.File = value
		case "binlog_snapshot_position":
			p.Pos, _ = strconv.ParseInt(value, 10, 64)
		}
	}
	return p, rows.Err()
}

// tablesPerSchema counts tables and views per schema, empty schemas
// included.
func tablesPerSchema(ctx context.Context, conn sqlConn) (map[string]int, error) {
	rows, err := conn.QueryContext(ctx, tablesPerSchemaSQL)
	if err != nil {
		return nil, fmt.Errorf("count tables per schema: %w", err)
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var schema string
		var n int
		if err := rows.Scan(&schema, &n); err != nil {
			return nil, fmt.Errorf("count tables per schema: %w", err)
		}
		out[schema] = n
	}
	return out, rows.Err()
}

// largestTables lists up to 5 base tables, largest first.
func largestTables(ctx context.Context, conn sqlConn) ([]tableRef, error) {
	rows, err := conn.QueryContext(ctx, largestTablesSQL)
	if err != nil {
		return nil, fmt.Errorf("find the largest tables: %w", err)
	}
	defer rows.Close()
	var out []tableRef
	for rows.Next() {
		var t tableRef
		if err := rows.Scan(&t.Schema, &t.Name); err != nil {
			return nil, fmt.Errorf("find the largest tables: %w", err)
		}
		out = append(out, t)
	}
	return out, rows.Err()
}

// countRows is SELECT COUNT(*) of one table.
func countRows(ctx context.Context, conn sqlConn, t tableRef) (int64, error) {
	var n int64
	if err := conn.QueryRowContext(ctx, "SELECT COUNT(*) FROM "+t.quoted()).Scan(&n); err != nil {
		return 0, fmt.Errorf("count rows of %s: %w", t.key(), err)
	}
	return n, nil
}

// sourceFacts are the facts read on the source for a manifest.
type sourceFacts struct {
	Tables    map[string]int
	RowCounts map[string]int64
	// At is the binary log position of the snapshot they were read in,
	// and GTID its GTID position.
	At   binlogPos
	GTID string

	largest []tableRef // the tables to count
}

// beginSourceFacts opens a consistent snapshot on conn and reads the
// tables per schema and the largest tables. information_schema is not transactional, so that
// count is only as consistent as the moment it is read: right after the
// snapshot opens, while the backup holds DDL off (see the callers). The
// caller then calls finish, which ends the snapshot.
func beginSourceFacts(ctx context.Context, conn sqlConn) (sourceFacts, error) {
	at, err := openSnapshot(ctx, conn)
	if err != nil {
		return sourceFacts{}, fmt.Errorf("open a consistent snapshot: %w", err)
	}
	f := sourceFacts{At: at, RowCounts: map[string]int64{}}
	if f.Tables, err = tablesPerSchema(ctx, conn); err != nil {
		return f, err
	}
	f.largest, err = largestTables(ctx, conn)
	return f, err
}

// finish counts the rows of the largest tables in the snapshot
// beginSourceFacts opened (MVCC reads of that snapshot, which may take as
// long as they need while the server goes on), reads the GTID position of
// the snapshot, and ends it.
func (f *sourceFacts) finish(ctx context.Context, conn sqlConn) error {
	defer func() { _, _ = conn.ExecContext(context.WithoutCancel(ctx), "ROLLBACK") }()
	for _, t := range f.largest {
		n, err := countRows(ctx, conn, t)
		if err != nil {
			return err
		}
		f.RowCounts[t.key()] = n
	}
	if f.At.File == "" {
		return nil
	}
	// BINLOG_GTID_POS reads the binlog file up to the position; it is
	// done here, after any lock the caller held is gone.
	var gtid sql.NullString
	if err := conn.QueryRowContext(ctx, "SELECT BINLOG_GTID_POS(?, ?)", f.At.File, f.At.Pos).Scan(&gtid); err != nil {
		return fmt.Errorf("GTID position of the facts' snapshot: %w", err)
	}
	f.GTID = gtid.String
	return nil
}

// matches reports whether the facts were read at the backup point: the
// same binary log position, or the same GTID position (mariadb-backup
// rotates the binary log at its backup point, so its position is the
// start of the next file while the facts' snapshot may name the end of
// the previous one; equal GTID positions mean no transaction committed in
// between).
func (f *sourceFacts) matches(pos binlogPos, gtid string) bool {
	return f.At.same(pos) || f.GTID != "" && f.GTID == gtid
}
