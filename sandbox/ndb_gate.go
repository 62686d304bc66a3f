package sandbox

import (
	"context"
	"database/sql"
	"fmt"
	"hash/crc32"
	"strings"

	"github.com/nines-project/nines/ndb"
	"github.com/nines-project/nines/sandbox/ndbsim"
)

// The write gate makes an SQL node refuse writes as an NDB SQL node does
// when the cluster cannot take them. Each SQL node has a one-row table
// ndbsim.gate (errno, message) that mgmd sets from the model, and every
// user table gets BEFORE INSERT/UPDATE/DELETE triggers that SIGNAL the
// gate's error when errno is not 0. Triggers bind every account, the
// probe's and SUPER ones too, which read_only would not. A table created
// since mgmd last looked (every second) takes writes until it is gated.

// ndbGate is the error writes get; Errno 0 lets them through.
type ndbGate struct {
	Errno   int
	Message string
}

func (g ndbGate) String() string {
	if g.Errno == 0 {
		return "allowed"
	}
	return fmt.Sprintf("refused with ERROR %d: %s", g.Errno, g.Message)
}

// The errors, worst first. The NDB error numbers and texts are the
// facts' (A.4 for 827 and 410; 4009 "Cluster Failure" is ndberror's, the
// facts do not quote it). The MySQL wrappers are assumptions the facts
// are silent on: 1296 ER_GET_ERRMSG "Got error %d '%s' from NDBCLUSTER"
// and, for temporary errors, 1297 ER_GET_TEMPORARY_ERRMSG. A real mysqld
// reports 827 as ER 1114 "The table '...' is full" with the NDB error
// in SHOW WARNINGS; a trigger cannot add a warning, so the simulator
// puts the NDB error in the error itself.
var (
	gateClusterFailure = ndbGate{1296, "Got error 4009 'Cluster Failure' from NDBCLUSTER"}
	gateRedoFull       = ndbGate{1297, "Got temporary error 410 'Out of log file space temporarily' from NDBCLUSTER"}
	gateDataMemory     = ndbGate{1296, "Got error 827 'Out of memory in Ndb Kernel, table data (increase DataMemory)' from NDBCLUSTER"}
)

// ndbDataMemoryFullPct: DataMemory this full refuses inserts. NDB keeps
// MinFreePct (5 %) for restarts (facts A.4), so a real node refuses
// earlier; 99 keeps the sandbox's fault explicit.
const ndbDataMemoryFullPct = 99

// gateFor is the gate the model's state asks for.
func gateFor(c *ndbsim.Cluster) ndbGate {
	if !c.CanServe() {
		return gateClusterFailure
	}
	st := c.State()
	for _, d := range st.Data {
		if !d.Status.Up(ndb.TypeNDB) {
			continue
		}
		for _, p := range d.RedoParts {
			if p.Total > 0 && p.Used >= p.Total {
				return gateRedoFull
			}
		}
	}
	for _, d := range st.Data {
		if d.Status.Up(ndb.TypeNDB) && d.DataMemoryPages > 0 && d.DataMemoryUsed*100 >= ndbDataMemoryFullPct*d.DataMemoryPages {
			return gateDataMemory
		}
	}
	return ndbGate{}
}

func installGate(ctx context.Context, db *sql.DB) error {
	for _, q := range []string{
		"CREATE DATABASE IF NOT EXISTS ndbsim",
		"CREATE TABLE IF NOT EXISTS ndbsim.gate (id INT PRIMARY KEY, errno INT NOT NULL, message VARCHAR(128) NOT NULL) ENGINE=InnoDB",
		"INSERT IGNORE INTO ndbsim.gate VALUES (1, 0, '')",
	} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("install write gate: %w", err)
		}
	}
	return nil
}

func setGate(ctx context.Context, db *sql.DB, g ndbGate) error {
	if _, err := db.ExecContext(ctx, "UPDATE ndbsim.gate SET errno=?, message=? WHERE id=1", g.Errno, g.Message); err != nil {
		return fmt.Errorf("set write gate: %w", err)
	}
	return nil
}

// gateNewTables adds the gate's triggers to every user table without them.
func gateNewTables(ctx context.Context, db *sql.DB) error {
	rows, err := db.QueryContext(ctx, `SELECT t.table_schema, t.table_name FROM information_schema.tables t
		WHERE t.table_type='BASE TABLE'
		  AND t.table_schema NOT IN ('mysql','information_schema','performance_schema','sys','ndbinfo','ndbsim')
		  AND NOT EXISTS (SELECT 1 FROM information_schema.triggers g
		      WHERE g.event_object_schema=t.table_schema AND g.event_object_table=t.table_name AND g.trigger_name LIKE 'ndbsim\_%')`)
	if err != nil {
		return fmt.Errorf("find tables to gate: %w", err)
	}
	var tables [][2]string
	for rows.Next() {
		var sch, tbl string
		if err := rows.Scan(&sch, &tbl); err != nil {
			rows.Close()
			return err
		}
		tables = append(tables, [2]string{sch, tbl})
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	for _, t := range tables {
		for _, q := range gateTriggers(t[0], t[1]) {
			if _, err := db.ExecContext(ctx, q); err != nil {
				// A table dropped meanwhile is not worth failing the tick.
				if strings.Contains(err.Error(), "doesn't exist") {
					break
				}
				return fmt.Errorf("gate %s.%s: %w", t[0], t[1], err)
			}
		}
	}
	return nil
}

func quoteIdent(s string) string { return "`" + strings.ReplaceAll(s, "`", "``") + "`" }

// gateTriggers are the three triggers of one table, named by a hash of
// the table so names stay within 64 characters and unique per schema.
func gateTriggers(schema, table string) []string {
	h := crc32.ChecksumIEEE([]byte(table))
	var out []string
	for _, ev := range []struct{ tag, event string }{{"bi", "INSERT"}, {"bu", "UPDATE"}, {"bd", "DELETE"}} {
		name := fmt.Sprintf("ndbsim_%s_%08x", ev.tag, h)
		out = append(out, fmt.Sprintf("CREATE TRIGGER IF NOT EXISTS %s.%s BEFORE %s ON %s.%s FOR EACH ROW BEGIN "+
			"DECLARE e INT DEFAULT 0; DECLARE m VARCHAR(128) DEFAULT ''; "+
			"SELECT errno, message INTO e, m FROM ndbsim.gate WHERE id=1; "+
			"IF e <> 0 THEN SIGNAL SQLSTATE 'HY000' SET MYSQL_ERRNO = e, MESSAGE_TEXT = m; END IF; END",
			quoteIdent(schema), quoteIdent(name), ev.event, quoteIdent(schema), quoteIdent(table)))
	}
	return out
}
